/**
 * Turns the per-runtime results (`bench/results/<runtime>.json`) into `bench/RESULTS.md` — the
 * targets with met/missed on the measured figures, the v1 → current ratio per row, the raw loops a
 * JS log can have, tables per suite — and a hand-written SVG chart. No dependencies.
 *
 * Ratio figures come from the interleaved rounds of `bench/paired.bench.ts` (rows `paired <name>`):
 * the median of the per-round ratios, because on this shared machine the cost of an fsync drifts
 * by several times within a minute. A missed target is shown with its figure; nothing is tuned.
 *
 * @example
 * ```ts
 * import { renderMarkdown, renderSvg } from "./report.ts";
 * import type { RunResult } from "./main.ts";
 * const results: RunResult[] = [];
 * console.log(renderMarkdown(results, "results/durable.svg"), renderSvg(results).length);
 * ```
 * @module
 */
import { type RunResult, SUITES } from "./main.ts";
import type { Row } from "./harness.ts";

/** Colours of the runtimes in the chart. */
const COLORS: Record<string, string> = { deno: "#2a9d8f", bun: "#e9a23b", node: "#5b6ee1" };

/** Row-name prefix of the v1 code's rows (see `./impls.ts`). */
const V1 = "v1 ";

function row(r: RunResult, name: string): Row | undefined {
  return r.rows.find((x) => x.name === name);
}

function rate(r: RunResult, name: string): number | undefined {
  const x = row(r, name);
  return x?.skipped ? undefined : x?.recordsPerSec;
}

/** `12345` → `12.3 k`; keeps three significant digits. */
function fmt(n: number | undefined, unit = ""): string {
  if (n === undefined || !Number.isFinite(n)) return "n/a";
  const a = Math.abs(n);
  const [v, s] = a >= 1e9
    ? [n / 1e9, " G"]
    : a >= 1e6
    ? [n / 1e6, " M"]
    : a >= 1e3
    ? [n / 1e3, " k"]
    : [n, unit ? " " : ""];
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${s}${unit}`;
}

function ms(ns: number | undefined): string {
  if (ns === undefined || !Number.isFinite(ns)) return "n/a";
  // Follow latencies can be negative (a record yielded before its append resolved).
  return Math.abs(ns) >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`;
}

function us(ns: number): string {
  return `${(ns / 1000).toFixed(0)} µs`;
}

function mib(bytes: unknown): string {
  return typeof bytes === "number" ? `${(bytes / 1048576).toFixed(1)} MiB` : "n/a";
}

function x2(v: number): string {
  return `${v.toFixed(2)}x`;
}

/** A ratio that may be in the thousands: `1,130x`, or `x2` below 100. */
function times(v: unknown): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "n/a";
  return v >= 100 ? `${Math.round(v).toLocaleString("en-US")}x` : x2(v);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function hasV1(results: RunResult[]): boolean {
  return results.some((r) => r.rows.some((x) => x.name.startsWith(V1)));
}

/** A measured ratio `num / den` and how it was measured. */
interface Ratio {
  /** The ratio (median of per-round ratios when interleaved). */
  x: number;
  /** Lowest and highest per-round ratio (interleaved only). */
  lo?: number;
  hi?: number;
  /** Rounds (interleaved only). */
  rounds?: number;
  /** Medians (or means) of the two sides. */
  a: number;
  b: number;
}

/**
 * `num / den` on one runtime: from the interleaved rounds (`paired <name>` rows) when both were
 * measured, the median of the per-round ratios; otherwise the ratio of the two suite figures.
 */
function ratio(r: RunResult, num: string, den: string): Ratio | undefined {
  const pa = row(r, `paired ${num}`), pb = row(r, `paired ${den}`);
  if (pa?.rounds && pb?.rounds && !pa.skipped && !pb.skipped) {
    const n = Math.min(pa.rounds.length, pb.rounds.length);
    if (n > 0) {
      const rs = Array.from({ length: n }, (_, i) => pa.rounds![i] / pb.rounds![i]);
      return {
        x: median(rs),
        lo: Math.min(...rs),
        hi: Math.max(...rs),
        rounds: n,
        a: median(pa.rounds),
        b: median(pb.rounds),
      };
    }
  }
  const a = rate(r, num), b = rate(r, den);
  if (a === undefined || b === undefined) return undefined;
  return { x: a / b, a, b };
}

function ratioText(q: Ratio, unit = "/s"): string {
  const how = q.rounds
    ? ` (${q.lo!.toFixed(2)}–${q.hi!.toFixed(2)}x over ${q.rounds} interleaved rounds; `
    : " (separate runs; ";
  return `${x2(q.x)}${how}${fmt(q.a)}${unit} vs ${fmt(q.b)}${unit})`;
}

/** Why a row was not measured, if it was skipped. */
function skippedWhy(r: RunResult, ...names: string[]): string | undefined {
  for (const n of names) {
    const x = row(r, n) ?? row(r, `paired ${n}`);
    if (x?.skipped) return x.skipped;
  }
  return undefined;
}

/** One cell of a target: text, and met/missed (undefined: no verdict). */
interface Cell {
  text: string;
  pass?: boolean;
}

/** One target: what is measured, the bar, and a cell per runtime. */
export interface TargetLine {
  /** What is measured. */
  row: string;
  /** The bar it must clear. */
  target: string;
  /** Per runtime: the figure and met/missed. */
  cells: Record<string, Cell>;
}

/**
 * A target's figure on one runtime for the rows of `prefix` (`""` current, `"v1 "` v1): a value
 * with its text (judged), a text alone (no verdict), or undefined when the target has no rows of
 * that code (the consumer suites measure the current code only).
 */
type Eval = (r: RunResult, prefix: string) => { v: number; text: string } | string | undefined;

function evalTarget(
  results: RunResult[],
  rowLabel: string,
  target: string,
  get: Eval,
  ok?: (v: number) => boolean,
): TargetLine {
  const cells: Record<string, Cell> = {};
  for (const r of results) {
    const cur = get(r, "");
    const v1 = hasV1([r]) ? get(r, V1) : undefined;
    const v1Text = v1 === undefined
      ? ""
      : typeof v1 === "string"
      ? `; v1: ${v1}`
      : `; v1: ${v1.text.replace(/ \(.*$/, "")}`;
    cells[r.runtime] = cur === undefined || typeof cur === "string"
      ? { text: `${cur ?? "n/a"}${v1Text}` }
      : { text: `${cur.text}${v1Text}`, pass: ok?.(cur.v) };
  }
  return { row: rowLabel, target, cells };
}

function ratioEval(num: (p: string) => string, den: (p: string) => string): Eval {
  return (r, p) => {
    const why = skippedWhy(r, num(p), den(p));
    if (why) return `n/a: skipped (${why})`;
    const q = ratio(r, num(p), den(p));
    return q ? { v: q.x, text: ratioText(q) } : "n/a (not measured)";
  };
}

const always1 = (size: number) => (p: string) => `${p}khipu always() x1 append ${size}B`;
const policy1 = (policy: string, size: number) => (p: string) =>
  `${p}khipu ${policy} x1 append ${size}B`;
const fixed = (name: string) => () => name;

function scanRow(r: RunResult, size: number, prefix: string): Row | undefined {
  return r.rows.find((x) =>
    x.suite === "read" && x.recordBytes === size && !x.skipped &&
    x.name.startsWith(`${prefix}scan `)
  );
}

function openRows(r: RunResult, prefix: string): { full?: Row; empty?: Row } {
  const open = r.rows.filter((x) => x.suite === "read" && x.name.startsWith(`${prefix}open `));
  return {
    full: open.find((x) => x.name.endsWith(" active segment") && !x.name.includes(" empty ")),
    empty: open.find((x) => x.name === `${prefix}open empty active segment`),
  };
}

/** Followers of the follow suite, in the order shown; a latency row's name ends with one. */
const FOLLOWERS = ["in-process", "read-only", "read-only committed"] as const;

/** Follow latency target (issue 14): p99 from the append resolving to the follower's yield. */
const FOLLOW_TARGET_MS = 50;

/** One latency row of the follow suite: its case (`always() paced 2-5ms`) and its follower. */
interface FollowRow {
  case: string;
  follower: string;
  row: Row;
}

function followRows(r: RunResult): FollowRow[] {
  return r.rows.flatMap((x) => {
    if (x.suite !== "follow" || !x.name.startsWith("follow ")) return [];
    const follower = FOLLOWERS.find((f) => x.name.endsWith(` ${f}`));
    if (!follower) return [];
    return [{ case: x.name.slice("follow ".length, -follower.length - 1), follower, row: x }];
  });
}

const IDLE_ROW = "follow idle read-only follower cpu";

/** The idle follower's CPU, as one sentence; undefined when not measured. */
function idleText(r: RunResult): string | undefined {
  const x = row(r, IDLE_ROW);
  if (!x) return undefined;
  if (x.skipped) return `n/a (skipped: ${x.skipped})`;
  const e = x.extra ?? {};
  const cpuMs = (e.cpuUs as number) / 1000, idleMs = (e.idleProcessCpuUs as number) / 1000;
  return `${(e.cpuPercent as number).toFixed(3)} % CPU (${cpuMs.toFixed(1)} ms over ${
    ((e.windowMs as number) / 1000).toFixed(1)
  } s; an idle process with no store open: ${idleMs.toFixed(1)} ms)`;
}

/** Policies of the retention suite (`bench/retention.bench.ts`), in the order shown. */
const RETENTION_POLICIES = ["always()", "osManaged()"] as const;

/** The retention suite's row of `policy`, with a pass running or without. */
function retentionRow(r: RunResult, policy: string, passRunning: boolean): Row | undefined {
  return r.rows.find((x) =>
    x.suite === "retention" && x.extra?.policy === policy && x.extra?.passRunning === passRunning
  );
}

/** `p50 / p99 / max` of a latency row. */
function latencies(x: Row): string {
  return `${ms(x.p50Ns)} / ${ms(x.p99Ns)} / ${ms(x.extra?.maxNs as number)}`;
}

/**
 * Append p99 with a retention pass running against without, as one sentence (no verdict: the
 * target is "no stall", which has no bar); undefined when not measured.
 */
function retentionText(r: RunResult, policy: string): string | undefined {
  const a = retentionRow(r, policy, true), b = retentionRow(r, policy, false);
  if (!a && !b) return undefined;
  if (a?.skipped || b?.skipped) return `n/a: skipped (${a?.skipped ?? b?.skipped})`;
  if (!a || !b) return "n/a (one side not measured)";
  const e = a.extra ?? {};
  return `p99 ${x2(e.p99ToNoPass as number)} (${ms(a.p99Ns)} vs ${ms(b.p99Ns)}; per round ${
    (e.roundP99RatioMin as number).toFixed(2)
  }–${(e.roundP99RatioMax as number).toFixed(2)}x, median ${
    x2(e.roundP99RatioMedian as number)
  } over ${e.windows} rounds); max ${ms(e.maxNs as number)} vs ${ms(b.extra?.maxNs as number)}`;
}

/**
 * Largest index interval of the seek suite's stores: entries are at least 64 KiB apart and start
 * flush chunks (FORMAT.md), and `bench/seek.bench.ts` writes with 256 KiB chunks (`bufferBytes`,
 * records of 1 KiB), so an interval is under 64 + 256 KiB; a seek scans one interval at most.
 */
const SEEK_INTERVAL_BOUND_BYTES = (64 + 256) * 1024;

const SEEK_PREFIX = "seek by time random ";

/** The seek suite's stores (`1GiB 1024B batch1000`), in the order measured, over all runtimes. */
function seekStores(results: RunResult[]): string[] {
  return [
    ...new Set(
      results.flatMap((r) =>
        r.rows.filter((x) => x.suite === "seek" && x.name.startsWith(SEEK_PREFIX))
          .map((x) => x.name.slice(SEEK_PREFIX.length))
      ),
    ),
  ];
}

/** `1GiB 1024B batch1000` → `1 GiB of 1 KiB records, appendBatch of 1000`. */
function storeLabel(store: string): string {
  const m = /^(\d+)(MiB|GiB) (\d+)B batch(\d+)$/.exec(store);
  if (!m) return store;
  const size = m[3] === "1024" ? "1 KiB" : `${m[3]} B`;
  return `${m[1]} ${m[2]} of ${size} records, \`appendBatch\` of ${m[4]}`;
}

function kib(bytes: unknown): string {
  return typeof bytes === "number" ? `${(bytes / 1024).toFixed(1)} KiB` : "n/a";
}

/**
 * Evaluates the targets on the measured figures (never adjusted to pass). Each cell also shows
 * the v1 code's figure for the same target when v1 ran side by side.
 *
 * @example
 * ```ts
 * import { targets } from "./report.ts";
 * console.log(targets([]).length);
 * ```
 */
export function targets(results: RunResult[]): TargetLine[] {
  const lines: TargetLine[] = [];
  for (const size of [100, 1024]) {
    const B = size === 1024 ? "1 KiB" : `${size} B`;
    lines.push(evalTarget(
      results,
      `\`always()\` x1 awaiting each append, ${B}`,
      "≥ 1.15x raw (a) append + async fdatasync",
      ratioEval(always1(size), fixed(`raw append+async fdatasync ${size}B`)),
      (v) => v >= 1.15,
    ));
    lines.push(evalTarget(
      results,
      `\`always()\` x1 awaiting each append, ${B}`,
      "≥ 1.0x SQLite WAL `synchronous=FULL`",
      ratioEval(always1(size), fixed(`sqlite WAL FULL insert ${size}B`)),
      (v) => v >= 1,
    ));
  }
  for (const size of [100, 1024]) {
    const B = size === 1024 ? "1 KiB" : `${size} B`;
    lines.push(evalTarget(
      results,
      `\`everyN(1000, { maxDelayMs: 20 })\` x1 awaiting each append, ${B}`,
      "≥ 0.8x `osManaged()` x1",
      ratioEval(policy1("everyN(1000,20ms)", size), policy1("osManaged()", size)),
      (v) => v >= 0.8,
    ));
  }
  for (const size of [100, 1024]) {
    const B = size === 1024 ? "1 KiB" : `${size} B`;
    lines.push(evalTarget(
      results,
      `\`osManaged()\` x1 awaiting each append, ${B}`,
      "≥ 0.8x raw `write` + `await` per record",
      ratioEval(policy1("osManaged()", size), fixed(`raw write+await ${size}B`)),
      (v) => v >= 0.8,
    ));
  }
  lines.push(evalTarget(
    results,
    "Full scan, every checksum verified (`log.read()` over a closed store), 1 KiB",
    "≥ 1 GB/s",
    (r, p) => {
      const x = scanRow(r, 1024, p);
      return x?.mbPerSec
        ? { v: x.mbPerSec, text: `${(x.mbPerSec / 1000).toFixed(2)} GB/s` }
        : "n/a";
    },
    (v) => v >= 1000,
  ));
  lines.push(evalTarget(
    results,
    "Full scan, every checksum verified (`log.read()` over a closed store), 100 B",
    "≥ 3,000,000 records/s",
    (r, p) => {
      const x = scanRow(r, 100, p);
      return x?.recordsPerSec
        ? { v: x.recordsPerSec, text: `${Math.round(x.recordsPerSec).toLocaleString("en-US")}/s` }
        : "n/a";
    },
    (v) => v >= 3_000_000,
  ));
  lines.push(evalTarget(
    results,
    "Open: active segment holding ~64 MiB (closed cleanly) vs empty active segment",
    "≤ 2x",
    (r, p) => {
      const { full, empty } = openRows(r, p);
      if (!full?.avgNs || !empty?.avgNs) return "n/a";
      const v = full.avgNs / empty.avgNs;
      return { v, text: `${x2(v)} (${ms(full.avgNs)} vs ${ms(empty.avgNs)}, medians)` };
    },
    (v) => v <= 2,
  ));
  for (const follower of FOLLOWERS) {
    lines.push(evalTarget(
      results,
      `Follow latency, ${follower} follower: append resolved → yielded, 100 B, worst case`,
      `p99 ≤ ${FOLLOW_TARGET_MS} ms`,
      (r, p) => {
        if (p) return undefined;
        const rows = followRows(r).filter((f) => f.follower === follower);
        const measured = rows.filter((f) => !f.row.skipped && f.row.p99Ns !== undefined);
        if (measured.length === 0) return rows.length ? "n/a: skipped" : "n/a (not measured)";
        const worst = measured.reduce((a, b) => b.row.p99Ns! > a.row.p99Ns! ? b : a);
        const skipped = rows.length - measured.length;
        return {
          v: worst.row.p99Ns! / 1e6,
          text: `p99 ${ms(worst.row.p99Ns)} (${worst.case}; worst of ${measured.length} cases${
            skipped ? `, ${skipped} skipped` : ""
          })`,
        };
      },
      (v) => v <= FOLLOW_TARGET_MS,
    ));
  }
  lines.push(evalTarget(
    results,
    "Idle read-only follower: writer open, nothing appended",
    "no busy polling (CPU ~0; no bar, beside an idle process)",
    (r, p) => p ? undefined : idleText(r) ?? "n/a (not measured)",
  ));
  for (const policy of RETENTION_POLICIES) {
    lines.push(evalTarget(
      results,
      `Append latency, \`${policy}\` x1 awaiting each append, 100 B, while a retention pass ` +
        "unlinks tens of segments",
      "no stall: append p99 with the pass running / without (no bar: the ratio and both p99s)",
      (r, p) => p ? undefined : retentionText(r, policy) ?? "n/a (not measured)",
    ));
  }
  for (const store of seekStores(results)) {
    lines.push(evalTarget(
      results,
      `Seek by time (\`seqAtTime\`, random time), ${storeLabel(store)}`,
      `reads at most one index interval (< ${SEEK_INTERVAL_BOUND_BYTES / 1024} KiB here); ` +
        "the ratio to a full scan",
      (r, p) => {
        if (p) return undefined;
        const x = row(r, `${SEEK_PREFIX}${store}`);
        if (!x) return "n/a (not measured)";
        if (x.skipped) return `n/a: skipped (${x.skipped})`;
        const e = x.extra ?? {};
        const max = e.maxBytesReadPerSeek as number;
        return {
          v: max,
          text: `max ${kib(max)}, mean ${kib(e.meanBytesReadPerSeek)} read per seek, of ${
            mib(e.storeBytes)
          }; ${times(e.fullScanOverSeek)} faster than a full scan (${ms(x.avgNs)} vs ${
            ms(e.fullScanNs as number)
          })`,
        };
      },
      (v) => v < SEEK_INTERVAL_BOUND_BYTES,
    ));
  }
  return lines;
}

function table(header: string[], rows: string[][]): string {
  const out = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const r of rows) out.push(`| ${r.join(" | ")} |`);
  return out.join("\n");
}

/** "v1 → current" of two figures where higher is better for current. */
function gain(cur: number | undefined, v1: number | undefined): string {
  return cur && v1 ? x2(cur / v1) : "n/a";
}

/**
 * A table of records/s (and MB/s) per runtime for the named rows, with a "v1 → current" column per
 * runtime when v1 rows exist (ratio of the two figures: separate mitata runs, one after the other).
 */
function rateTable(
  results: RunResult[],
  names: { label: string; name: string }[],
  khipuRows = false,
): string {
  const v1 = khipuRows && hasV1(results);
  const header = ["benchmark"];
  for (const r of results) {
    header.push(`${r.runtime} records/s (MB/s)`);
    if (v1) header.push(`${r.runtime} v1 → current`);
  }
  return table(
    header,
    names.map(({ label, name }) => {
      const cells = [label];
      for (const r of results) {
        const x = row(r, name);
        cells.push(
          !x
            ? "—"
            : x.skipped
            ? "n/a"
            : `${fmt(x.recordsPerSec)} (${(x.mbPerSec ?? 0).toFixed(1)})`,
        );
        if (v1) {
          const y = row(r, `${V1}${name}`);
          cells.push(!y ? "—" : y.skipped ? "n/a" : gain(x?.recordsPerSec, y.recordsPerSec));
        }
      }
      return cells;
    }),
  );
}

/** The policy configurations shown in the policy tables. */
const POLICIES = [
  { policy: "always()", c: 1 },
  { policy: "always()", c: 8 },
  { policy: "always()", c: 64 },
  { policy: "always()", c: 512 },
  { policy: "everyN(64)", c: 1 },
  { policy: "everyN(1000,20ms)", c: 1 },
  { policy: "interval(10)", c: 1 },
  { policy: "osManaged()", c: 1 },
];

/** What a power cut can lose, per policy. */
const LOSS: Record<string, string> = {
  "always()": "nothing that resolved",
  "everyN(64)": "at most 63 resolved records",
  "everyN(1000,20ms)": "at most 999 resolved records, and at most ~20 ms of them",
  "interval(10)": "what resolved in the last 10 ms (plus one fdatasync)",
  "osManaged()": "everything since the last `sync()` (the kernel writes back within ~30 s)",
};

/** The interleaved rows of one group and the reference their ratios are to. */
interface PairedGroup {
  title: string;
  reference: string;
  rows: { label: string; name: string; reference?: boolean }[];
}

function durableGroup(size: number): PairedGroup {
  const B = `${size}B`;
  return {
    title: `Durable when the append resolves, ${size} B`,
    reference: `raw append+async fdatasync ${B}`,
    rows: [
      {
        label: "(a) raw append + async fdatasync",
        name: `raw append+async fdatasync ${B}`,
        reference: true,
      },
      {
        label: "(b) raw overwrite of preallocated space + async fdatasync",
        name: `raw overwrite+async fdatasync ${B}`,
        reference: true,
      },
      {
        label: "(c) raw append + sync fdatasync (calling thread)",
        name: `raw append+sync fdatasync ${B}`,
        reference: true,
      },
      {
        label: "(d) raw overwrite + sync fdatasync (calling thread)",
        name: `raw overwrite+sync fdatasync ${B}`,
        reference: true,
      },
      {
        label: "raw `FileHandle.write` + `datasync` (pre-v2 reference)",
        name: `raw async write+datasync ${B}`,
        reference: true,
      },
      {
        label: "SQLite WAL `synchronous=FULL`",
        name: `sqlite WAL FULL insert ${B}`,
        reference: true,
      },
      { label: "`always()` x1", name: `khipu always() x1 append ${B}` },
      { label: "v1 `always()` x1", name: `${V1}khipu always() x1 append ${B}` },
      { label: "`always()` x64", name: `khipu always() x64 append ${B}` },
      { label: "v1 `always()` x64", name: `${V1}khipu always() x64 append ${B}` },
    ],
  };
}

function laterGroup(size: number): PairedGroup {
  const B = `${size}B`;
  const rows: PairedGroup["rows"] = [
    { label: "raw `write` + `await`", name: `raw write+await ${B}`, reference: true },
  ];
  for (const p of ["osManaged()", "everyN(1000,20ms)", "everyN(64)", "interval(10)"]) {
    rows.push({ label: `\`${p}\` x1`, name: `khipu ${p} x1 append ${B}` });
    rows.push({ label: `v1 \`${p}\` x1`, name: `${V1}khipu ${p} x1 append ${B}` });
  }
  return {
    title: `Durable later (in the OS when the append resolves), ${size} B`,
    reference: `raw write+await ${B}`,
    rows,
  };
}

/** A table of an interleaved group: per runtime the median records/s and the ratio to the reference. */
function pairedTable(results: RunResult[], g: PairedGroup): string {
  const header = ["benchmark"];
  for (const r of results) header.push(`${r.runtime} records/s`, `${r.runtime} ratio`);
  const rows = g.rows.filter((x) => results.some((r) => row(r, `paired ${x.name}`) !== undefined));
  return table(
    header,
    rows.map((x) => {
      const cells = [x.label];
      for (const r of results) {
        const pr = row(r, `paired ${x.name}`);
        if (!pr) {
          cells.push("—", "—");
          continue;
        }
        if (pr.skipped) {
          cells.push("n/a (skipped)", "—");
          continue;
        }
        const q = ratio(r, x.name, g.reference);
        cells.push(
          fmt(pr.recordsPerSec),
          q ? `${x2(q.x)}${q.rounds ? ` (${q.lo!.toFixed(2)}–${q.hi!.toFixed(2)})` : ""}` : "n/a",
        );
      }
      return cells;
    }),
  );
}

/** The khipu rows measured for both codes, and how to compare them. */
function v1Rows(results: RunResult[]): {
  label: string;
  cell: (r: RunResult) => string;
}[] {
  const out: { label: string; cell: (r: RunResult) => string }[] = [];
  const names = [
    ...new Set(
      results.flatMap((r) =>
        r.rows.filter((x) =>
          x.suite !== "policy" && (x.name.startsWith(V1) || x.name.startsWith(`paired ${V1}`))
        ).map((x) => x.name)
      ),
    ),
  ];
  for (const v1Name of names) {
    const paired = v1Name.startsWith("paired ");
    const base = paired ? v1Name.slice(`paired ${V1}`.length) : v1Name.slice(V1.length);
    const curName = paired ? `paired ${base}` : base;
    const suite = results.map((r) => row(r, v1Name)?.suite).find((s) => s) ?? "";
    const time = /^open /.test(base);
    const space = suite === "space";
    const label = paired ? `${base} (interleaved)` : base;
    out.push({
      label,
      cell: (r) => {
        const c = row(r, curName), v = row(r, v1Name);
        if (!c || !v) return "—";
        if (c.skipped || v.skipped) return "n/a (skipped)";
        if (paired) {
          const q = ratio(r, base, `${V1}${base}`);
          return q ? `${ratioText(q)}` : "n/a";
        }
        if (time) {
          return c.avgNs && v.avgNs
            ? `${x2(v.avgNs / c.avgNs)} (${ms(c.avgNs)} vs ${ms(v.avgNs)})`
            : "n/a";
        }
        if (space) {
          const cb = c.extra?.bytes as number | undefined,
            vb = v.extra?.bytes as number | undefined;
          return cb && vb
            ? `${x2(vb / cb)} (${(cb / 1e6).toFixed(1)} MB vs ${(vb / 1e6).toFixed(1)} MB)`
            : "n/a";
        }
        if (base.startsWith("seek ")) {
          return c.avgNs && v.avgNs
            ? `${x2(v.avgNs / c.avgNs)} (${ms(c.avgNs)} vs ${ms(v.avgNs)} mean)`
            : "n/a";
        }
        return c.recordsPerSec && v.recordsPerSec
          ? `${x2(c.recordsPerSec / v.recordsPerSec)} (${fmt(c.recordsPerSec)}/s vs ${
            fmt(v.recordsPerSec)
          }/s)`
          : "n/a";
      },
    });
  }
  return out;
}

/**
 * Renders `bench/RESULTS.md` from the runtimes' results. `svgPath` is the chart's path relative to
 * the Markdown file.
 *
 * @example
 * ```ts
 * import { renderMarkdown } from "./report.ts";
 * console.log(renderMarkdown([], "results/durable.svg").split("\n")[0]); // "# khipu-log benchmarks"
 * ```
 */
export function renderMarkdown(results: RunResult[], svgPath: string): string {
  const out: string[] = ["# khipu-log benchmarks", ""];
  if (results.length === 0) {
    return out.concat("No results yet: run `npm run bench`.", "").join("\n");
  }
  const first = results[0];
  const m = first.machine;
  const quick = results.some((r) => r.quick);
  const smoke = results.some((r) => r.smoke);
  const v1 = hasV1(results);
  const impls = [
    ...new Set(
      results.flatMap((r) => (r.impls ?? []).map((i) => `${i.label}: ${i.commit ?? "?"}`)),
    ),
  ];
  if (smoke) {
    out.push(
      "**Smoke run**: tiny data sets, one short round per row. It checks that the rows run; " +
        "its figures mean nothing.",
      "",
    );
  }
  out.push(
    `Measured ${results.map((r) => r.date.slice(0, 16).replace("T", " ")).sort()[0]} UTC on ` +
      `${m.cpu} (${m.cpus} cores, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB), ${m.os}, ` +
      `in \`${m.benchDir}\`. Runtimes: ${results.map((r) => r.version).join(", ")}. ` +
      (impls.length ? `Code measured: ${impls.join("; ")}. ` : "") +
      (results.some((r) => r.commit)
        ? `Benchmark checkout: ${
          [...new Set(results.map((r) => r.commit ?? "unknown"))].join(", ")
        }. `
        : "") +
      `Runs: ${
        results.map((r) =>
          `${r.runtime} ${Math.round(r.seconds)} s from ${r.date.slice(11, 16)} UTC ${
            r.date.slice(0, 10)
          }`
        ).join(", ")
      }.` +
      (quick && !smoke ? " **Quick run**: scan data sets are 128 MiB instead of 1 GiB." : ""),
    "",
  );
  const fsyncs = results.map((r) => {
    const x = row(r, "raw append+sync fdatasync 100B");
    return x?.avgNs && x.p50Ns
      ? `${r.runtime} ${us(x.p50Ns)} median, ${us(x.avgNs)} mean`
      : `${r.runtime} n/a`;
  });
  const loads = results.map((r) =>
    r.loadAverage
      ? `${r.runtime} ${r.loadAverage.start.toFixed(1)} → ${r.loadAverage.end.toFixed(1)}`
      : `${r.runtime} n/a`
  );
  out.push(
    `**This machine's fsync**: one \`write\` + \`fdatasync\` (calling thread) of a 100 B append ` +
      `takes ${
        fsyncs.join("; ")
      } (raw loop (c), same run). Every durable figure below is bounded ` +
      `by it. Load average (1 min) at start → end of each runtime's run: ${loads.join(", ")} ` +
      `(on ${m.cpus} cores; above ~1, other work shared the CPUs and the disk).`,
    "",
    "How to run: `npm run bench` (Deno, Bun and Node 24 one after the other, then this report). " +
      "It creates a temporary `git worktree` of the v1 code (c8ac77d) with `node_modules` " +
      "symlinked in, and every khipu row runs against both `mod.ts` files in the same process " +
      "(imported by path; `bench/impls.ts`), interleaved round by round in the ratio rows; the " +
      "worktree is removed afterwards. `--no-v1` skips it, `--quick` uses 128 MiB scans, " +
      "`--smoke` runs every row tiny and short (into `$TMPDIR/khipu-bench-smoke/`), " +
      `\`--suites=${SUITES.join(",")}\` picks suites (rows merge into the JSON). One runtime: ` +
      "`KHIPU_BENCH_V1=<checkout> node_modules/node24/bin/node --expose-gc bench/main.ts` (or " +
      "`npx deno run -A --v8-flags=--expose-gc` / `npx bun run`). Absolute times on this " +
      "machine (virtual disk, 2 shared cores) are noise: the targets are ratios measured side by " +
      "side in one run, or throughput bounds.",
    "",
  );

  out.push("## Targets", "");
  const tl = targets(results);
  out.push(
    table(
      ["row", "target", ...results.map((r) => r.runtime)],
      tl.map((t) => [
        t.row,
        t.target,
        ...results.map((r) => {
          const c = t.cells[r.runtime];
          if (!c) return "—";
          return c.pass === undefined ? c.text : `${c.pass ? "✅ met" : "❌ missed"}: ${c.text}`;
        }),
      ]),
    ),
    "",
    "Evaluated on the figures as measured; a miss is reported with its figure, never tuned away. " +
      "Ratio rows are the median of per-round ratios over interleaved rounds " +
      "(`bench/paired.bench.ts`: subject and references alternate in short mitata measurements, " +
      "order rotated each round), with the lowest–highest round and both medians." +
      (v1
        ? " After `v1:` each cell gives the v1 code's figure for the same row, measured in the same " +
          "rounds (v1 has no `everyN` options: its `everyN(1000, { maxDelayMs: 20 })` row is plain " +
          "`everyN(1000)`). The follow and seek rows measure the current code only (v1 has no " +
          "read-only stores and no seek by time)."
        : ""),
    "",
  );

  const failed = results.flatMap((r) =>
    r.rows.filter((x) => x.name.startsWith("suite ") && x.skipped).map((x) =>
      `${r.runtime} ${x.name}: ${x.skipped!.split("\n")[0]}`
    )
  );
  if (failed.length) {
    out.push(
      "**Suites that failed** (their rows are missing): " + failed.map((f) =>
        `\`${f}\``
      ).join("; ") +
        ".",
      "",
    );
  }

  if (v1) {
    out.push(
      "## v1 → current, per row",
      "",
      "How many times better the current code is than v1 (c8ac77d) on each khipu row measured " +
        "for both in the same process: records/s current / v1; for open and seek times and for " +
        "bytes on disk, v1 / current. Interleaved rows: median of the per-round ratios; the others " +
        "were measured one right after the other. The full policy matrix (8, 64, 512 appenders, " +
        "batches) has its v1 → current columns in the policy tables below.",
      "",
    );
    out.push(
      table(
        ["row", ...results.map((r) => r.runtime)],
        v1Rows(results).map((x) => [x.label, ...results.map((r) => x.cell(r))]),
      ),
      "",
    );
  }

  out.push(
    "## Durable single writer: what a JS log can have",
    "",
    "One appender awaiting each record, interleaved rounds; ratio = median per-round ratio to " +
      "(a). The raw loops use the runtime's own file API (`Deno.FsFile` on Deno, `node:fs` on " +
      "Node and Bun) with one sync `write` per record: (a)/(c) append, (b)/(d) overwrite 16 MiB " +
      "preallocated by writing zeros and fsyncing; (a)/(b) await an fdatasync on a pool thread " +
      "(`fs.fdatasync` / `FsFile.syncData()`), (c)/(d) call it on the calling thread " +
      "(`fs.fdatasyncSync` / `FsFile.syncDataSync()`), which blocks the event loop for the whole " +
      "flush.",
    "",
  );
  for (const size of [100, 1024]) {
    const g = durableGroup(size);
    out.push(`### ${g.title}`, "", pairedTable(results, g), "");
  }
  out.push(
    "## Durable later: `osManaged()`, `everyN`, `interval`",
    "",
    "One appender awaiting each append; ratio to a raw loop of one sync `write` and one `await` " +
      "of a resolved promise per record (interleaved rounds).",
    "",
  );
  for (const size of [100, 1024]) {
    const g = laterGroup(size);
    out.push(`### ${g.title}`, "", pairedTable(results, g), "");
  }

  out.push(
    "## Chart",
    "",
    `![Throughput by policy and runtime, as ratios to the matching raw loop](${svgPath})`,
    "",
    "Top: durable when the append resolves (`always()`), against the raw loops (a)–(d) and " +
      "SQLite; each bar's ratio is to raw loop (a), append + async fdatasync, the `always()` " +
      "target's reference. Bottom: durable later (`osManaged()`, `everyN`, `interval`), each ratio " +
      "to the raw `write` + `await` loop. 100 B records, one appender unless noted, interleaved " +
      "rounds (the same figures as the tables above).",
    "",
  );

  out.push("## Policies and what a power cut can lose", "");
  out.push(
    table(
      ["policy", "a power cut can lose"],
      Object.entries(LOSS).map(([p, l]) => [`\`${p}\``, l]),
    ),
    "",
    "Under `always()` a resolved append is durable; under the other policies it resolves once " +
      "written to the OS and becomes durable at the next fdatasync.",
    "",
  );

  for (const size of [100, 1024]) {
    out.push(`## Policies, ${size} B records (mitata, one benchmark after the other)`, "");
    out.push(
      rateTable(
        results,
        POLICIES.flatMap((p) =>
          (["append", "batch100"] as const).map((mode) => ({
            label: `\`${p.policy}\` x${p.c}, ${
              mode === "append" ? "await each append" : "appendBatch(100)"
            }`,
            name: `khipu ${p.policy} x${p.c} ${mode} ${size}B`,
          }))
        ),
        true,
      ),
      "",
    );
  }

  out.push("## Physical limits and the naive loop (mitata)", "");
  out.push(
    rateTable(
      results,
      [100, 1024].flatMap((s) => [
        { label: `(a) append + async fdatasync, ${s} B`, name: `raw append+async fdatasync ${s}B` },
        {
          label: `(b) overwrite + async fdatasync, ${s} B`,
          name: `raw overwrite+async fdatasync ${s}B`,
        },
        { label: `(c) append + sync fdatasync, ${s} B`, name: `raw append+sync fdatasync ${s}B` },
        {
          label: `(d) overwrite + sync fdatasync, ${s} B`,
          name: `raw overwrite+sync fdatasync ${s}B`,
        },
        { label: `\`write\` + \`await\`, no sync, ${s} B`, name: `raw write+await ${s}B` },
        {
          label: `\`FileHandle.write\` + \`datasync\`, ${s} B`,
          name: `raw async write+datasync ${s}B`,
        },
        { label: `buffered (256 KiB) write, no sync, ${s} B`, name: `raw buffered write ${s}B` },
        {
          label: `naive \`appendFileSync\` + \`fsyncSync\`, ${s} B`,
          name: `naive appendFileSync+fsync ${s}B`,
        },
      ]),
    ),
    "",
  );

  out.push(
    "## SQLite (WAL mode)",
    "",
    `Drivers: ${results.map((r) => `${r.runtime}: ${r.sqliteDriver ?? "n/a"}`).join("; ")}.`,
    "",
  );
  out.push(
    rateTable(
      results,
      [100, 1024].flatMap((s) => [
        {
          label: `\`synchronous=FULL\`, one insert per commit, ${s} B`,
          name: `sqlite WAL FULL insert ${s}B`,
        },
        { label: `\`synchronous=NORMAL\`, ${s} B`, name: `sqlite WAL NORMAL insert ${s}B` },
        { label: `\`synchronous=OFF\`, ${s} B`, name: `sqlite WAL OFF insert ${s}B` },
        {
          label: `\`FULL\`, 100 inserts per transaction, ${s} B`,
          name: `sqlite WAL FULL tx100 ${s}B`,
        },
      ]),
    ),
    "",
  );

  const spaceNames = [
    ...new Set(
      results.flatMap((r) => r.rows.filter((x) => x.suite === "space").map((x) => x.name)),
    ),
  ];
  if (spaceNames.length) {
    out.push(
      "## Space on disk",
      "",
      "Records of 100 B written with `appendBatch` of 1000 and closed (khipu: default options, " +
        "`osManaged()`; SQLite: WAL, `seq INTEGER PRIMARY KEY, ts INTEGER, data BLOB`, 1000 rows per " +
        "transaction, closed so the WAL is checkpointed). Framing = (bytes − payload) / records, " +
        "from file sizes; allocated = `st_blocks * 512` (differs for preallocated or sparse files).",
      "",
      table(
        ["row", ...results.map((r) => r.runtime)],
        spaceNames.map((name) => [
          name,
          ...results.map((r) => {
            const x = row(r, name);
            if (!x) return "—";
            if (x.skipped) return `n/a (${x.skipped})`;
            const e = x.extra ?? {};
            const fb = e.framingBytesPerRecord as number,
              ab = e.allocatedFramingBytesPerRecord as number;
            return `${((e.bytes as number) / 1e6).toFixed(2)} MB; ${
              fb.toFixed(2)
            } B/record over the payload ` +
              `(allocated ${((e.allocatedBytes as number) / 1e6).toFixed(2)} MB, ${
                ab.toFixed(2)
              } B/record)`;
          }),
        ]),
      ),
      "",
    );
  }

  out.push("## Reads, open and memory", "");
  const readNames = [
    ...new Set(results.flatMap((r) => r.rows.filter((x) => x.suite === "read").map((x) => x.name))),
  ];
  out.push(
    table(
      ["benchmark", ...results.map((r) => r.runtime)],
      readNames.map((name) => [
        name,
        ...results.map((r) => {
          const x = row(r, name);
          if (!x) return "—";
          if (x.skipped) return "n/a";
          const e = x.extra ?? {};
          const base = name.startsWith(V1) ? name.slice(V1.length) : name;
          if (base.startsWith("scan")) {
            return `${fmt(x.recordsPerSec)} records/s, ${
              ((x.mbPerSec ?? 0) / 1000).toFixed(2)
            } GB/s, peak RSS +${mib(e.peakRssAboveBaselineBytes)}`;
          }
          if (base.startsWith("write")) {
            return `${fmt(x.recordsPerSec)} records/s, ${(x.mbPerSec ?? 0).toFixed(0)} MB/s, ` +
              `peak RSS +${mib(e.peakRssAboveBaselineBytes)}`;
          }
          if (base.startsWith("open")) {
            return `${ms(x.avgNs)} median of ${x.samples} (${e.records} records` +
              (typeof e.ratioToEmpty === "number" ? `; ${x2(e.ratioToEmpty)} the empty one)` : ")");
          }
          if (base.startsWith("seek")) {
            return `mean ${ms(x.avgNs)}, p50 ${ms(x.p50Ns)}, p99 ${ms(x.p99Ns)}`;
          }
          return fmt(x.recordsPerSec);
        }),
      ]),
    ),
    "",
    "Opens are warm-cache (the files were just written) and include `store.log()`; scans run over " +
      "a store closed cleanly and reopened (the open is not timed), verify every checksum and " +
      "check each record's sequence number and length.",
    "",
  );

  out.push(
    ...followSection(results),
    ...retentionSection(results),
    ...seekSection(results),
    ...verifySection(results),
    ...relaySection(results),
  );

  const formatNames = [
    "crc32 64MiB",
    "encode+checksum 100B",
    "encode+checksum 1024B",
    "scan 64MiB in memory 100B",
    "scan 64MiB in memory 1024B",
  ].filter((n) => results.some((r) => row(r, n)));
  if (formatNames.length) {
    out.push("## Record format in memory (no I/O)", "");
    out.push(
      table(
        ["benchmark", ...results.map((r) => `${r.runtime}`)],
        formatNames.map((name) => [
          name,
          ...results.map((r) => {
            const x = row(r, name);
            if (!x) return "—";
            if (x.skipped) return "n/a";
            return name.startsWith("crc32")
              ? `${((x.mbPerSec ?? 0) / 1000).toFixed(1)} GB/s`
              : `${fmt(x.recordsPerSec)} records/s, ${(x.mbPerSec ?? 0).toFixed(0)} MB/s`;
          }),
        ]),
      ),
      "",
    );
  }
  return out.join("\n");
}

/** "Consumers: follow latency": per case and follower, p50 / p99 per runtime and the verdict. */
function followSection(results: RunResult[]): string[] {
  const keys: { case: string; follower: string }[] = [];
  for (const r of results) {
    for (const f of followRows(r)) {
      if (!keys.some((k) => k.case === f.case && k.follower === f.follower)) keys.push(f);
    }
  }
  if (keys.length === 0) return [];
  const cases = [...new Set(keys.map((k) => k.case))];
  const find = (r: RunResult, c: string, follower: string) =>
    followRows(r).find((f) => f.case === c && f.follower === follower)?.row;
  const rows: string[][] = [];
  for (const c of cases) {
    rows.push([
      c,
      "_append: called → resolved_",
      ...results.map((r) => {
        const e = find(r, c, "in-process")?.extra;
        return typeof e?.appendP50Ns === "number"
          ? `${ms(e.appendP50Ns)} / ${ms(e.appendP99Ns as number)}`
          : "—";
      }),
    ]);
    for (const follower of FOLLOWERS) {
      if (!keys.some((k) => k.case === c && k.follower === follower)) continue;
      rows.push([
        c,
        follower,
        ...results.map((r) => {
          const x = find(r, c, follower);
          if (!x) return "—";
          if (x.skipped) return "n/a (skipped)";
          const e = x.extra ?? {};
          const met = x.p99Ns! / 1e6 <= FOLLOW_TARGET_MS;
          const vs = typeof e.p99ToInProcess === "number" && follower !== "in-process"
            ? `; p99 ${x2(e.p99ToInProcess)} in-process`
            : "";
          const early = e.yieldedBeforeResolve
            ? `; ${e.yieldedBeforeResolve}/${x.samples} early`
            : "";
          return `${met ? "✅" : "❌"} ${ms(x.p50Ns)} / ${ms(x.p99Ns)} (max ${
            ms(e.maxNs as number)
          }${vs}${early})`;
        }),
      ]);
    }
  }
  const clocks = results.map((r) => {
    const e = followRows(r).find((f) => typeof f.row.extra?.clockOffsetMs === "number")?.row.extra;
    return e
      ? `${r.runtime} ${(e.clockOffsetMs as number).toFixed(3)} ms ± ${
        (e.clockBoundMs as number).toFixed(3)
      } ms`
      : `${r.runtime} n/a`;
  });
  return [
    "## Consumers: follow latency",
    "",
    "Time from a writer's `append` resolving to a follower yielding the record (`bench/follow.bench.ts`), " +
    "100 B records, under `always()` and `osManaged()`, appended paced (one at a time, 2–5 ms apart) " +
    "or in bursts (50 concurrent appends every 100 ms). Followers: `log.follow()` in the writer's " +
    "process; `follow()` of a read-only store (`Store.open(dir, { readOnly: true })`) in another " +
    "process of the same runtime; the same with `{ committed: true }` (under `always()` only: " +
    `\`osManaged()\` publishes nothing durable before \`sync()\`). Cells: p50 / p99 and ✅/❌ for ` +
    `p99 ≤ ${FOLLOW_TARGET_MS} ms, max, the p99 as a multiple of the in-process follower's, and ` +
    "how many records were yielded before their append resolved (a negative latency: a read-only " +
    "follower can read a record the OS holds while the writer's fdatasync is still running). " +
    "Every process stamps one wall clock; the follower processes' offset from the writer's " +
    `(fastest of 30 ping-pongs, ± half its round trip): ${clocks.join("; ")}.`,
    "",
    table(
      ["case", "follower", ...results.map((r) => `${r.runtime} p50 / p99`)],
      rows,
    ),
    "",
    `Idle (writer open, nothing appended; a read-only follower waiting): ${
      results.map((r) => `${r.runtime} ${idleText(r) ?? "n/a"}`).join("; ")
    }.`,
    "",
  ];
}

/** "Retention": append latency per policy with and without a retention pass, per runtime. */
function retentionSection(results: RunResult[]): string[] {
  const measured = results.filter((r) => r.rows.some((x) => x.suite === "retention"));
  if (measured.length === 0) return [];
  const rows: string[][] = [];
  for (const policy of RETENTION_POLICIES) {
    const cell = (passRunning: boolean) => (r: RunResult) => {
      const x = retentionRow(r, policy, passRunning);
      if (!x) return "—";
      return x.skipped ? "n/a (skipped)" : `${latencies(x)} (${x.samples})`;
    };
    rows.push([`\`${policy}\``, "no pass", ...measured.map(cell(false))]);
    rows.push([`\`${policy}\``, "pass running", ...measured.map(cell(true))]);
    rows.push([
      `\`${policy}\``,
      "_pass running / no pass_",
      ...measured.map((r) => {
        const e = retentionRow(r, policy, true)?.extra;
        if (typeof e?.p99ToNoPass !== "number") return "—";
        return `${x2(e.p50ToNoPass as number)} / ${x2(e.p99ToNoPass)} / ${
          x2(e.maxToNoPass as number)
        } (p99 per round ${(e.roundP99RatioMin as number).toFixed(2)}–${
          (e.roundP99RatioMax as number).toFixed(2)
        }x)`;
      }),
    ]);
    rows.push([
      `\`${policy}\``,
      "_what each pass removed_",
      ...measured.map((r) => {
        const e = retentionRow(r, policy, true)?.extra;
        if (typeof e?.removedSegmentsMin !== "number") return "—";
        return `at least ${e.removedSegmentsMin} segments (mean ${
          (e.removedSegmentsMean as number).toFixed(1)
        }), in a median ${(e.windowMsMedian as number).toFixed(0)} ms`;
      }),
    ]);
  }
  return [
    "## Retention: appends while a pass runs",
    "",
    "Latency of single appends (`append` called → resolved, one appender awaiting each, 100 B) " +
    "with and without a retention pass running (`bench/retention.bench.ts`). Each window starts " +
    "from a fresh log of 4 KiB segments (a rollover every ~30 appends) holding a backlog of " +
    "sealed segments; with a pass, the log has `retention: { maxRecords: 64 }` and one " +
    "`enforceRetention()` unlinks the backlog, each unlink made durable by a directory fsync, " +
    "while the appends run until it resolves (their rollovers queue background passes too); " +
    "without, the same backlog and as long a window with no retention. The four cases run in " +
    "interleaved rounds, order rotated; figures pool every round's samples. Cells: p50 / p99 / " +
    "max (samples); the ratio row divides the pass-running figures by the no-pass ones, with " +
    "the range of the per-round p99 ratios; the last row gives the segments the explicit pass " +
    'unlinked per window and how long it ran. There is no bar: "no stall" is read off the ratio ' +
    "and the absolute figures.",
    "",
    table(["policy", "case", ...measured.map((r) => `${r.runtime} p50 / p99 / max`)], rows),
    "",
  ];
}

/** "Seek by time": per store and runtime, `seqAtTime` against a full scan. */
function seekSection(results: RunResult[]): string[] {
  const stores = seekStores(results);
  if (stores.length === 0) return [];
  const rows: string[][] = [];
  for (const store of stores) {
    for (const r of results) {
      const x = row(r, `${SEEK_PREFIX}${store}`);
      if (!x) continue;
      if (x.skipped) {
        rows.push([
          storeLabel(store),
          r.runtime,
          `n/a (skipped: ${x.skipped})`,
          "",
          "",
          "",
          "",
          "",
        ]);
        continue;
      }
      const e = x.extra ?? {};
      const scan = row(r, `full scan ${store}`);
      rows.push([
        storeLabel(store),
        r.runtime,
        fmt(x.recordsPerSec),
        ms(x.p50Ns),
        `${kib(e.meanBytesReadPerSeek)} / ${kib(e.maxBytesReadPerSeek)}`,
        String(e.filesOpenedPerSeek ?? "n/a"),
        scan && !scan.skipped
          ? `${ms(scan.avgNs)} (${((scan.mbPerSec ?? 0) / 1000).toFixed(2)} GB/s)`
          : "n/a",
        times(e.fullScanOverSeek),
      ]);
    }
  }
  return [
    "## Seek by time",
    "",
    "`seqAtTime` (what `read({ fromTime })` uses) for a uniformly random time over a store of 1 KiB " +
    "records written under `osManaged()` (`bench/seek.bench.ts`), against a full checked scan " +
    "(`log.read({ from: 0 })`, median of 3), which is what finding a time costs without the time " +
    "index. Batches of 1000 start a flush chunk, and mostly an index entry, each; in batches of 10 " +
    "one millisecond spans many batches and a seek lands anywhere in an index interval. Bytes read " +
    "per seek are summed over every `readAt` of 1000 seeks (mean / max); every answer is checked " +
    "against a binary search of the scanned timestamps. Warm page cache: CPU and syscalls, not " +
    "the disk.",
    "",
    table(
      [
        "store",
        "runtime",
        "seeks/s",
        "p50",
        "read per seek (mean / max)",
        "files opened per seek",
        "full scan",
        "full scan / seek",
      ],
      rows,
    ),
    "",
  ];
}

/** "Verify": `store.verify()` against a full read of the same store, per runtime. */
function verifySection(results: RunResult[]): string[] {
  const rows: string[][] = [];
  for (const r of results) {
    for (const v of r.rows.filter((x) => x.suite === "verify" && x.name.startsWith("verify "))) {
      const size = v.name.slice("verify 1KiB ".length);
      if (v.skipped) {
        rows.push([size, r.runtime, `n/a (skipped: ${v.skipped})`, "", "", "", ""]);
        continue;
      }
      const e = v.extra ?? {};
      const read = row(r, `read 1KiB ${size}`);
      rows.push([
        size,
        r.runtime,
        fmt(v.mbPerSec, "MB/s"),
        fmt(e.fileMBPerSec as number | undefined, "MB/s"),
        fmt(read?.mbPerSec, "MB/s"),
        times(e.toRead),
        mib(e.peakRssGrowthBytes),
      ]);
    }
  }
  if (rows.length === 0) return [];
  return [
    "## Verify",
    "",
    "`store.verify()` (every frame, seal, index entry and mark checked) against `log.read()` of " +
    "every record, over the same closed store of 1 KiB records in 64 MiB segments " +
    "(`bench/verify.bench.ts`; `KHIPU_VERIFY_BYTES` sets the size). Payload MB/s (10^6 bytes), " +
    "and for verify the segment files' bytes per second too; peak RSS growth during one verify, " +
    "sampled every 256 KiB. Warm page cache.",
    "",
    table(
      ["store", "runtime", "verify", "verify (files)", "read", "verify / read", "peak RSS growth"],
      rows,
    ),
    "",
  ];
}

/** "Relay": `relay()` into JetStream against a bare publish-and-await-ack loop, same client and run. */
function relaySection(results: RunResult[]): string[] {
  const rows: string[][] = [];
  for (const r of results) {
    for (
      const v of r.rows.filter((x) => x.suite === "relay" && x.name.startsWith("relay relay() "))
    ) {
      const size = v.name.slice("relay relay() ".length);
      if (v.skipped) {
        rows.push([size, r.runtime, `n/a (skipped: ${v.skipped})`, "", "", "", ""]);
        continue;
      }
      const e = v.extra ?? {};
      rows.push([
        size,
        r.runtime,
        fmt(row(r, `relay bare ${size}`)?.recordsPerSec, "rec/s"),
        fmt(row(r, `relay bare + relay headers ${size}`)?.recordsPerSec, "rec/s"),
        fmt(v.recordsPerSec, "rec/s"),
        times(e.ratioToBare),
        times(e.ratioToBareWithHeaders),
      ]);
    }
  }
  if (rows.length === 0) return [];
  return [
    "## Relay",
    "",
    "`relay()` of a closed log into a JetStream stream (one local nats-server 2.9, window 256) " +
    "against a loop that publishes the same payloads and awaits acks 256 at a time with the same " +
    "client, and the same loop sending the relay's headers, message ids and expectations " +
    "(`bench/relay.bench.ts`; median of rounds, the three cases rotated). Target: relay >= 0.8x " +
    "the bare loop.",
    "",
    table(
      [
        "record",
        "runtime",
        "bare loop",
        "bare + headers",
        "relay()",
        "relay / bare",
        "relay / bare+headers",
      ],
      rows,
    ),
    "",
  ];
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** One bar group of the chart. */
interface ChartGroup {
  label: [string, string];
  name: string;
  reference?: boolean;
}

/** One panel of the chart: its title, its groups and the reference every ratio is to. */
interface ChartPanel {
  title: string;
  reference: string;
  referenceLabel: string;
  groups: ChartGroup[];
}

function chartPanels(v1: boolean): ChartPanel[] {
  const withV1 = (gs: (ChartGroup & { v1?: boolean })[]) => gs.filter((g) => v1 || !g.v1);
  return [
    {
      title: "Durable when the append resolves: always(), against raw loops and SQLite",
      reference: "raw append+async fdatasync 100B",
      referenceLabel: "raw (a) append + async fdatasync",
      groups: withV1([
        {
          label: ["(a) append +", "async fdatasync"],
          name: "raw append+async fdatasync 100B",
          reference: true,
        },
        {
          label: ["(b) overwrite +", "async fdatasync"],
          name: "raw overwrite+async fdatasync 100B",
          reference: true,
        },
        {
          label: ["(c) append +", "sync fdatasync"],
          name: "raw append+sync fdatasync 100B",
          reference: true,
        },
        {
          label: ["(d) overwrite +", "sync fdatasync"],
          name: "raw overwrite+sync fdatasync 100B",
          reference: true,
        },
        {
          label: ["SQLite WAL", "sync=FULL"],
          name: "sqlite WAL FULL insert 100B",
          reference: true,
        },
        { label: ["always()", "1 appender"], name: "khipu always() x1 append 100B" },
        {
          label: ["v1 always()", "1 appender"],
          name: "v1 khipu always() x1 append 100B",
          v1: true,
        },
        { label: ["always()", "64 appenders"], name: "khipu always() x64 append 100B" },
        {
          label: ["v1 always()", "64 appenders"],
          name: "v1 khipu always() x64 append 100B",
          v1: true,
        },
      ]),
    },
    {
      title: "Durable later: in the OS when the append resolves, durable at a later fdatasync",
      reference: "raw write+await 100B",
      referenceLabel: "raw write + await",
      groups: withV1([
        { label: ["raw write", "+ await"], name: "raw write+await 100B", reference: true },
        { label: ["osManaged()", ""], name: "khipu osManaged() x1 append 100B" },
        { label: ["v1", "osManaged()"], name: "v1 khipu osManaged() x1 append 100B", v1: true },
        { label: ["everyN(1000,", "20 ms)"], name: "khipu everyN(1000,20ms) x1 append 100B" },
        {
          label: ["v1", "everyN(1000)"],
          name: "v1 khipu everyN(1000,20ms) x1 append 100B",
          v1: true,
        },
        { label: ["everyN(64)", ""], name: "khipu everyN(64) x1 append 100B" },
        { label: ["v1", "everyN(64)"], name: "v1 khipu everyN(64) x1 append 100B", v1: true },
        { label: ["interval(10)", ""], name: "khipu interval(10) x1 append 100B" },
        { label: ["v1", "interval(10)"], name: "v1 khipu interval(10) x1 append 100B", v1: true },
      ]),
    },
  ];
}

/** Short value label: 211, 8.1k, 45k, 1.3M. */
function short(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(v));
}

/** An axis label for 10^e: 100, 1k, 10k, 100k, 1M, 10M. */
function tick(e: number): string {
  if (e < 3) return String(10 ** e);
  const unit = e < 6 ? "k" : e < 9 ? "M" : "G";
  return `${10 ** (e % 3)}${unit}`;
}

/** Records/s of a chart bar: the interleaved median, else the suite figure. */
function chartRate(r: RunResult, name: string): number | undefined {
  const p = row(r, `paired ${name}`);
  if (p && !p.skipped && p.recordsPerSec) return p.recordsPerSec;
  return rate(r, name);
}

/**
 * The chart: two panels (log scale) of records/s per runtime, 100 B records, one appender awaiting
 * each append unless noted. Top: policies durable when the append resolves (`always()`) with the
 * raw loops (a)–(d) and SQLite; each bar is labelled with its ratio to raw loop (a). Bottom: the
 * durable-later policies, each labelled with its ratio to the raw `write` + `await` loop.
 * Hand-written SVG, no dependencies.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./report.ts";
 * console.log(renderSvg([]).startsWith("<svg"));
 * ```
 */
export function renderSvg(results: RunResult[]): string {
  const panels = chartPanels(hasV1(results));
  const W = 1040, left = 64, right = 16;
  const panelH = 330, plotTop = 46, plotBottom = 62;
  const H = 40 + panels.length * panelH + 56;
  const plotW = W - left - right, plotH = panelH - plotTop - plotBottom;
  const date = results.map((r) => r.date.slice(0, 10)).sort()[0] ?? "";
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="600">khipu-log: records/s and ratio to ` +
      `the matching raw loop (100 B records, each append awaited; log scale)</text>`,
  );
  panels.forEach((panel, pi) => {
    const top = 40 + pi * panelH + plotTop;
    const values = panel.groups.flatMap((g) =>
      results.map((r) => chartRate(r, g.name)).filter((v): v is number => v !== undefined)
    );
    const lo = Math.max(0, Math.floor(Math.log10(Math.max(1, Math.min(...values, 1e9)))));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values, 10)) + 0.15));
    const y = (v: number) => {
      const l = Math.min(hi, Math.max(lo, Math.log10(Math.max(v, 1))));
      return top + plotH - ((l - lo) / (hi - lo)) * plotH;
    };
    parts.push(
      `<text x="${left}" y="${top - 24}" font-size="13" font-weight="600">${
        esc(panel.title)
      }</text>`,
      `<text x="${left}" y="${top - 9}" fill="#555" font-size="11">ratio under each value: to ` +
        `${esc(panel.referenceLabel)} (median per-round ratio, same runtime)</text>`,
    );
    for (let e = lo; e <= hi; e++) {
      const yy = y(10 ** e);
      parts.push(
        `<line x1="${left}" x2="${W - right}" y1="${yy}" y2="${yy}" stroke="#e3e3e3"/>`,
        `<text x="${left - 8}" y="${yy + 4}" text-anchor="end" fill="#444">${tick(e)}</text>`,
      );
    }
    parts.push(
      `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" ` +
        `fill="#444">records/s</text>`,
    );
    const groupW = plotW / panel.groups.length;
    const barW = Math.min(30, (groupW - 10) / Math.max(1, results.length));
    panel.groups.forEach((g, gi) => {
      const gx = left + gi * groupW;
      if (g.reference) {
        parts.push(
          `<rect x="${gx.toFixed(1)}" y="${top}" width="${groupW.toFixed(1)}" height="${plotH}" ` +
            `fill="#f4f4f4"/>`,
        );
      }
      const x0 = gx + (groupW - barW * results.length) / 2;
      results.forEach((r, ri) => {
        const v = chartRate(r, g.name);
        const x = x0 + ri * barW;
        const cx = (x + (barW - 2) / 2).toFixed(1);
        if (v === undefined) {
          parts.push(
            `<text x="${cx}" y="${top + plotH - 4}" text-anchor="middle" font-size="9" ` +
              `fill="#999">n/a</text>`,
          );
          return;
        }
        const q = g.name === panel.reference ? undefined : ratio(r, g.name, panel.reference);
        const yy = y(v);
        const ratioLabel = g.name === panel.reference
          ? "1x"
          : q
          ? `${q.x.toFixed(q.x >= 10 ? 1 : 2)}x`
          : "";
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 2).toFixed(1)}" ` +
            `height="${(top + plotH - yy).toFixed(1)}" fill="${COLORS[r.runtime] ?? "#888"}"` +
            `${g.name.startsWith(V1) ? ` fill-opacity="0.45"` : ""}>` +
            `<title>${
              esc(
                `${r.version}: ${g.label.join(" ")}: ${Math.round(v)} records/s` +
                  (q ? `, ${q.x.toFixed(2)}x ${panel.referenceLabel}` : ""),
              )
            }</title></rect>`,
          `<text x="${cx}" y="${(yy - 14).toFixed(1)}" text-anchor="middle" font-size="9" ` +
            `fill="#333">${short(v)}</text>`,
          `<text x="${cx}" y="${(yy - 4).toFixed(1)}" text-anchor="middle" font-size="9" ` +
            `font-weight="600" fill="#111">${ratioLabel}</text>`,
        );
      });
      const color = g.reference ? "#777" : "#222";
      parts.push(
        `<text x="${(gx + groupW / 2).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" ` +
          `fill="${color}" font-size="11">${esc(g.label[0])}</text>`,
        `<text x="${(gx + groupW / 2).toFixed(1)}" y="${top + plotH + 30}" text-anchor="middle" ` +
          `fill="${color}" font-size="11">${esc(g.label[1])}</text>`,
      );
    });
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${top + plotH}" y2="${
        top + plotH
      }" stroke="#333"/>`,
      `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`,
    );
  });
  results.forEach((r, i) => {
    const x = left + i * 170;
    parts.push(
      `<rect x="${x}" y="${H - 46}" width="14" height="14" fill="${COLORS[r.runtime] ?? "#888"}"/>`,
      `<text x="${x + 20}" y="${H - 35}">${esc(r.version)}</text>`,
    );
  });
  parts.push(
    `<text x="${left}" y="${H - 12}" fill="#777">grey background: references without khipu-log; ` +
      `pale bars: the v1 code (c8ac77d), same rounds. Measured ${esc(date)}; ` +
      `bench/RESULTS.md</text>`,
    `</svg>`,
  );
  return parts.join("\n") + "\n";
}
