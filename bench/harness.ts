/**
 * Shared pieces of the benchmarks: which runtime this is, sizes (full or `--quick`), temp
 * directories, a results collector, and {@linkcode runThroughput}, which runs throughput benchmarks
 * through mitata (`bench`/`group`/`summary`/`run`) and turns mitata's returned statistics into
 * records/s and MB/s.
 *
 * Everything here runs unchanged under `npx tsx`, `npx deno run -A` and `npx bun run`.
 *
 * @example
 * ```ts
 * import { Recorder, runThroughput } from "./harness.ts";
 * const rec = new Recorder();
 * let n = 0;
 * await runThroughput("demo", [{
 *   name: "count",
 *   recordBytes: 0,
 *   setup: () => Promise.resolve({ call: () => n++, teardown: () => Promise.resolve() }),
 * }], rec);
 * console.log(rec.rows[0].recordsPerSec);
 * ```
 * @module
 */
import { bench, group, measure, run, summary } from "mitata";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The runtimes the benchmarks compare. */
export type RuntimeName = "deno" | "bun" | "node";

/**
 * Which runtime runs this process, told by its globals (`Deno` first, then `Bun`: both also define
 * `process`). Local to the benchmarks so they import nothing from `src/`.
 */
function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: { version?: unknown }; Bun?: unknown };
  if (typeof g.Deno === "object" && g.Deno !== null && g.Deno.version !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}

/**
 * The runtime running this process.
 *
 * @example
 * ```ts
 * import { RUNTIME } from "./harness.ts";
 * console.log(RUNTIME); // "node", "deno" or "bun"
 * ```
 */
export const RUNTIME: RuntimeName = detectRuntime();

/**
 * The runtime's version string, e.g. `"bun 1.4.5"`.
 *
 * @example
 * ```ts
 * import { runtimeVersion } from "./harness.ts";
 * console.log(runtimeVersion());
 * ```
 */
export function runtimeVersion(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  switch (RUNTIME) {
    case "bun":
      return `bun ${g.Bun!.version}`;
    case "deno":
      return `deno ${g.Deno!.version.deno}`;
    case "node":
      return `node ${process.versions.node}`;
  }
}

/**
 * True when the run should be short: `KHIPU_BENCH_QUICK=1` or a `--quick` argument. Shrinks the
 * data sets of the read/open benchmarks (1 GiB becomes 128 MiB); throughput benchmarks are the same.
 *
 * @example
 * ```ts
 * import { QUICK } from "./harness.ts";
 * console.log(QUICK ? "quick run" : "full run");
 * ```
 */
export const QUICK: boolean = process.env.KHIPU_BENCH_QUICK === "1" ||
  process.argv.includes("--quick") || process.env.KHIPU_BENCH_SMOKE === "1" ||
  process.argv.includes("--smoke");

/**
 * True for a smoke test (`KHIPU_BENCH_SMOKE=1` or `--smoke`): every row runs, with tiny data sets,
 * one short round and ~20 ms per measurement, to check that the rows work. Its figures mean nothing.
 *
 * @example
 * ```ts
 * import { SMOKE } from "./harness.ts";
 * console.log(SMOKE ? "smoke test" : "measuring");
 * ```
 */
export const SMOKE: boolean = process.env.KHIPU_BENCH_SMOKE === "1" ||
  process.argv.includes("--smoke");

/**
 * Nearest-rank percentile (`q` in [0, 1]) of unsorted `xs`: the smallest sample with at least `q`
 * of the samples at or below it.
 *
 * @example
 * ```ts
 * import { percentile } from "./harness.ts";
 * if (percentile([5, 1, 4, 2, 3], 0.5) !== 3 || percentile([1, 2], 0.99) !== 2) throw new Error();
 * ```
 */
export function percentile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)];
}

/**
 * The median of `xs` (the mean of the middle two for an even count); NaN when empty.
 *
 * @example
 * ```ts
 * import { median } from "./harness.ts";
 * console.log(median([3, 1, 2])); // 2
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Bytes a directory tree takes: sum of file sizes, and of allocated blocks (`st_blocks * 512`). */
export interface DirBytes {
  /** Sum of `st_size` over regular files. */
  apparent: number;
  /** Sum of `st_blocks * 512` (what the file system allocated; NaN where blocks are unknown). */
  allocated: number;
  /** Regular files counted. */
  files: number;
}

/**
 * Walks `dir` and sums the sizes of its regular files (symlinks are not followed).
 *
 * @example
 * ```ts
 * import { dirBytes, freshDir, removeDir } from "./harness.ts";
 * const d = freshDir("bytes");
 * console.log(dirBytes(d).files); // 0
 * removeDir(d);
 * ```
 */
export function dirBytes(dir: string): DirBytes {
  const out: DirBytes = { apparent: 0, allocated: 0, files: 0 };
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.lstatSync(p);
        out.apparent += st.size;
        out.allocated += typeof st.blocks === "number" ? st.blocks * 512 : NaN;
        out.files++;
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * Record payload sizes every write benchmark uses.
 *
 * @example
 * ```ts
 * import { RECORD_SIZES } from "./harness.ts";
 * console.log(RECORD_SIZES); // [100, 1024]
 * ```
 */
export const RECORD_SIZES: readonly number[] = [100, 1024];

/** One mebibyte. */
export const MiB: number = 1024 * 1024;
/** One gibibyte. */
export const GiB: number = 1024 * MiB;

/**
 * A deterministic, incompressible-looking payload of `size` bytes (xorshift), so no layer can
 * shortcut zeros.
 *
 * @example
 * ```ts
 * import { payload } from "./harness.ts";
 * console.log(payload(100).length); // 100
 * ```
 */
export function payload(size: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed | 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * The directory benchmarks write in: `KHIPU_BENCH_DIR`, or the OS temp directory. Raw, SQLite and
 * khipu benchmarks all use it, so they measure the same file system.
 *
 * @example
 * ```ts
 * import { benchRoot } from "./harness.ts";
 * console.log(benchRoot());
 * ```
 */
export function benchRoot(): string {
  return process.env.KHIPU_BENCH_DIR ?? os.tmpdir();
}

/**
 * Creates a fresh empty directory under {@linkcode benchRoot}.
 *
 * @example
 * ```ts
 * import { freshDir, removeDir } from "./harness.ts";
 * const dir = freshDir("example");
 * removeDir(dir);
 * ```
 */
export function freshDir(label: string): string {
  return fs.mkdtempSync(path.join(benchRoot(), `khipu-bench-${label.replace(/\W+/g, "_")}-`));
}

/**
 * Removes a directory tree. Deleting unsynced files also drops their dirty pages, so one
 * benchmark's writeback does not slow the next one's fsyncs.
 *
 * @example
 * ```ts
 * import { freshDir, removeDir } from "./harness.ts";
 * removeDir(freshDir("example"));
 * ```
 */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Resident set size of this process in bytes.
 *
 * @example
 * ```ts
 * import { rss } from "./harness.ts";
 * console.log(rss() > 0);
 * ```
 */
export function rss(): number {
  return process.memoryUsage.rss();
}

/** Runs the runtime's garbage collector if it is exposed (`--expose-gc`, Bun); else does nothing. */
export function collectGarbage(): void {
  const g = globalThis as { Bun?: { gc(full: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else if (typeof g.gc === "function") g.gc();
}

/** One measured figure. Throughput rows have `recordsPerSec`; latency rows have `p50Ns`/`p99Ns`. */
export interface Row {
  /** Suite, e.g. `"raw"`, `"sqlite"`, `"policy"`, `"read"`, `"format"`. */
  suite: string;
  /** Unique name within the run, e.g. `"always x64 append 100B"`. */
  name: string;
  /** Payload bytes per record (0 when not applicable). */
  recordBytes: number;
  /** Records per second (payloads, not counting framing). */
  recordsPerSec?: number;
  /** Payload megabytes (10^6 bytes) per second. */
  mbPerSec?: number;
  /** Mean time of one measured call in nanoseconds. */
  avgNs?: number;
  /** Median call time in nanoseconds. */
  p50Ns?: number;
  /** 99th percentile call time in nanoseconds. */
  p99Ns?: number;
  /** Number of mitata samples (or timed runs). */
  samples?: number;
  /** Any other figure (bytes, RSS, segment count). */
  extra?: Record<string, number | string | boolean>;
  /** Per-round records/s of an interleaved measurement (`paired` suite). */
  rounds?: number[];
  /** Set when the benchmark could not run (e.g. no SQLite on this runtime). */
  skipped?: string;
}

/**
 * Collects {@linkcode Row}s from every suite of one process.
 *
 * @example
 * ```ts
 * import { Recorder } from "./harness.ts";
 * const r = new Recorder();
 * r.add({ suite: "raw", name: "x", recordBytes: 100, recordsPerSec: 1 });
 * console.log(r.get("x")?.recordsPerSec); // 1
 * ```
 */
export class Recorder {
  /** Rows in the order they were measured. */
  readonly rows: Row[] = [];

  /** Adds (or replaces, by name) a row. */
  add(row: Row): void {
    const i = this.rows.findIndex((r) => r.name === row.name);
    if (i >= 0) this.rows[i] = row;
    else this.rows.push(row);
  }

  /** The row called `name`, if measured. */
  get(name: string): Row | undefined {
    return this.rows.find((r) => r.name === name);
  }

  /** Prints records/s and MB/s per row: what a suite run on its own shows. */
  printTable(): void {
    console.table(
      this.rows.map((r) => ({
        name: r.name,
        "records/s": Math.round(r.recordsPerSec ?? 0),
        "MB/s": Number((r.mbPerSec ?? 0).toFixed(2)),
      })),
    );
  }
}

/** What {@linkcode ThroughputSpec.setup} returns: the measured call and its cleanup. */
export interface Prepared {
  /** One measured call; may return a promise (mitata then awaits it). */
  call: () => unknown;
  /** Runs after measuring (close files, remove the temp directory). */
  teardown: () => Promise<void> | void;
}

/** One throughput benchmark for {@linkcode runThroughput}. */
export interface ThroughputSpec {
  /** Unique name, used as the row name. */
  name: string;
  /** Payload bytes per record. */
  recordBytes: number;
  /** Records one call writes (100 for a batch of 100). Default 1. */
  recordsPerCall?: number;
  /** Concurrent calls in flight (mitata runs `concurrency` calls under one `Promise.all`). */
  concurrency?: number;
  /** Fresh state (a new file, database or store in a new temp directory). */
  setup: () => Promise<Prepared>;
  /** Copied into the row's `extra` (e.g. which implementation, a note). */
  extra?: Record<string, number | string | boolean>;
}

/** Whether mitata may call `gc()`: without an exposed gc, its fallback allocates 1 GiB. */
function gcMode(): "once" | false {
  const g = globalThis as { Bun?: unknown; gc?: unknown };
  return g.Bun !== undefined || typeof g.gc === "function" ? "once" : false;
}

/**
 * Runs throughput benchmarks with mitata, one `group`/`summary` per suite, printing mitata's
 * report, and records records/s and MB/s for each from the statistics `run()` returns:
 * `records/s = recordsPerCall * concurrency / mean time of one sample`.
 *
 * A name filter can be given with `KHIPU_BENCH_FILTER` (a regular expression).
 *
 * @example
 * ```ts
 * import { Recorder, runThroughput } from "./harness.ts";
 * await runThroughput("noop", [{
 *   name: "noop",
 *   recordBytes: 1,
 *   setup: () => Promise.resolve({ call: () => {}, teardown: () => {} }),
 * }], new Recorder());
 * ```
 */
export async function runThroughput(
  suite: string,
  specs: readonly ThroughputSpec[],
  rec: Recorder,
  title: string = suite,
): Promise<void> {
  const filter = process.env.KHIPU_BENCH_FILTER ? new RegExp(process.env.KHIPU_BENCH_FILTER) : /.*/;
  const chosen = specs.filter((s) => filter.test(s.name));
  if (chosen.length === 0) return;
  const byName = new Map(chosen.map((s) => [s.name, s]));
  group(title, () => {
    summary(() => {
      for (const spec of chosen) {
        bench(spec.name, async function* () {
          const prepared = await spec.setup();
          try {
            yield { bench: prepared.call, concurrency: spec.concurrency ?? 1 };
          } finally {
            await prepared.teardown();
          }
        }).gc(gcMode());
      }
    });
  });
  if (SMOKE) {
    // Smoke test: one short measurement per row, without mitata's report (see SMOKE).
    for (const spec of chosen) {
      try {
        const prepared = await spec.setup();
        try {
          const stats = await measure(prepared.call, {
            min_cpu_time: 20e6,
            min_samples: 2,
            concurrency: spec.concurrency ?? 1,
          });
          const perSample = (spec.recordsPerCall ?? 1) * (spec.concurrency ?? 1);
          const recordsPerSec = perSample / (stats.avg / 1e9);
          rec.add({
            suite,
            name: spec.name,
            recordBytes: spec.recordBytes,
            recordsPerSec,
            mbPerSec: (recordsPerSec * spec.recordBytes) / 1e6,
            avgNs: stats.avg,
            p50Ns: stats.p50,
            p99Ns: stats.p99,
            samples: stats.samples.length,
            ...(spec.extra ? { extra: spec.extra } : {}),
          });
          console.log(`${spec.name}: ${human(recordsPerSec)} records/s (smoke)`);
        } finally {
          await prepared.teardown();
        }
      } catch (e) {
        console.error(`${spec.name} failed:`, e);
        rec.add({ suite, name: spec.name, recordBytes: spec.recordBytes, skipped: String(e) });
      }
    }
    return;
  }
  const out = await run({ colors: process.stdout.isTTY === true });
  for (const trial of out.benchmarks) {
    for (const r of trial.runs) {
      const spec = byName.get(r.name);
      if (!spec) continue;
      if (!r.stats) {
        console.error(`${spec.name} failed:`, r.error);
        rec.add({
          suite,
          name: spec.name,
          recordBytes: spec.recordBytes,
          skipped: String(r.error),
        });
        continue;
      }
      const perSample = (spec.recordsPerCall ?? 1) * (spec.concurrency ?? 1);
      const recordsPerSec = perSample / (r.stats.avg / 1e9);
      rec.add({
        suite,
        name: spec.name,
        recordBytes: spec.recordBytes,
        recordsPerSec,
        mbPerSec: (recordsPerSec * spec.recordBytes) / 1e6,
        avgNs: r.stats.avg,
        p50Ns: r.stats.p50,
        p99Ns: r.stats.p99,
        samples: r.stats.samples.length,
        ...(spec.extra ? { extra: spec.extra } : {}),
      });
    }
  }
}

/**
 * Times `fn` up to `runs` times with `performance.now()` (for work too big for mitata's minimum of
 * 12 samples, like scanning 1 GiB), stopping early once `budgetMs` has passed, and returns the
 * median and all durations in nanoseconds.
 *
 * @example
 * ```ts
 * import { timeRuns } from "./harness.ts";
 * const t = await timeRuns(3, async () => {});
 * console.log(t.medianNs >= 0);
 * ```
 */
export async function timeRuns(
  runs: number,
  fn: (i: number) => Promise<unknown> | unknown,
  budgetMs: number = Infinity,
): Promise<{ medianNs: number; allNs: number[] }> {
  const all: number[] = [];
  const start = performance.now();
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn(i);
    all.push((performance.now() - t0) * 1e6);
    // Slow runs stop early (at least one run): the suite's time budget matters more than a median.
    if (performance.now() - start > budgetMs) break;
  }
  const sorted = [...all].sort((a, b) => a - b);
  return { medianNs: sorted[Math.floor(sorted.length / 2)], allNs: all };
}

/**
 * True when the module at `metaUrl` is the program's entry point (works on Node 20, which has no
 * `import.meta.main`, and on Deno and Bun).
 *
 * @example
 * ```ts
 * import { isMain } from "./harness.ts";
 * if (isMain(import.meta.url)) console.log("run directly");
 * ```
 */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return fs.realpathSync(entry) === fs.realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

/**
 * Formats a number with k/M suffixes for tables: `8123` → `"8.12 k"`.
 *
 * @example
 * ```ts
 * import { human } from "./harness.ts";
 * console.log(human(2_500_000)); // "2.50 M"
 * ```
 */
export function human(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "n/a";
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(2)} k`;
  return n.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}
