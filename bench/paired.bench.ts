/**
 * Interleaved measurements for the ratio targets in bench/RESULTS.md. On a shared or virtualised machine the cost
 * of an fsync drifts by several times within seconds, so two benchmarks measured a minute apart can
 * disagree for reasons that have nothing to do with the code. Here the subject and its references
 * run in alternating rounds (order rotated each round), each round a short mitata `measure`, and
 * the report takes the **median of the per-round ratios**.
 *
 * Per record size (100 B, 1 KiB), two interleaved groups:
 *
 * - **durable at resolve**: the raw loops (a)–(d) of `raw.bench.ts` (append / overwrite of
 *   preallocated space, async / calling-thread fdatasync), the `FileHandle` write+datasync loop,
 *   SQLite WAL `synchronous=FULL`, and `always()` with 1 and 64 appenders;
 * - **durable later**: the raw `write` + `await` loop, `osManaged()`, `everyN(1000, { maxDelayMs: 20 })`,
 *   `everyN(64)` and `interval(10)`, one appender each.
 *
 * Every khipu row runs for each implementation (`./impls.ts`: current, and v1 when
 * `KHIPU_BENCH_V1` is set) inside the same rounds, so v1 → current ratios are per-round too.
 *
 * Run alone: `npx tsx bench/paired.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { pairedSuite } from "./paired.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await pairedSuite(new Recorder());
 * ```
 * @module
 */
import { measure } from "mitata";
import process from "node:process";
import { isMain, median, RECORD_SIZES, Recorder, SMOKE, type ThroughputSpec } from "./harness.ts";
import { durableLoopSpecs, fileHandleSpec, writeAwaitSpec } from "./raw.bench.ts";
import { sqliteFullSpec } from "./sqlite.bench.ts";
import { EVERY_N_DELAY, policyCase, policySpec } from "./policies.bench.ts";
import { type Impl, loadImpls } from "./impls.ts";

/** Rounds per benchmark (`KHIPU_BENCH_ROUNDS`, default 5; 1 in a smoke test). */
const ROUNDS = Number(process.env.KHIPU_BENCH_ROUNDS ?? (SMOKE ? 1 : 5));
/** Measured time per benchmark per round (`KHIPU_BENCH_ROUND_MS`, default 250; 20 in a smoke test). */
const ROUND_NS = Number(process.env.KHIPU_BENCH_ROUND_MS ?? (SMOKE ? 20 : 250)) * 1e6;

/**
 * The row name of an interleaved measurement: `paired raw async write+datasync 100B`.
 *
 * @example
 * ```ts
 * import { pairedName } from "./paired.bench.ts";
 * console.log(pairedName("khipu always() x1 append 100B"));
 * ```
 */
export function pairedName(name: string): string {
  return `paired ${name}`;
}

async function once(spec: ThroughputSpec): Promise<number> {
  const prepared = await spec.setup();
  try {
    const c = spec.concurrency ?? 1;
    const stats = await measure(prepared.call, { min_cpu_time: ROUND_NS, concurrency: c });
    return ((spec.recordsPerCall ?? 1) * c) / (stats.avg / 1e9);
  } finally {
    await prepared.teardown();
  }
}

/**
 * Runs the interleaved rounds into `rec` (rows `paired <name>`, with `rounds` = records/s per
 * round and `recordsPerSec` = their median).
 *
 * @example
 * ```ts
 * import { pairedSuite } from "./paired.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await pairedSuite(new Recorder());
 * ```
 */
export async function pairedSuite(rec: Recorder): Promise<void> {
  const impls = await loadImpls();
  for (const size of RECORD_SIZES) {
    const durable: ThroughputSpec[] = [...durableLoopSpecs(size), fileHandleSpec(size)];
    const sqlite = await sqliteFullSpec(size);
    if (sqlite) durable.push(sqlite);
    durable.push(...khipu(rec, impls, size, [["always()", 1], ["always()", 64]]));
    await interleave(rec, `durable at resolve, ${size} B`, size, durable);

    const later: ThroughputSpec[] = [
      writeAwaitSpec(size),
      ...khipu(rec, impls, size, [
        ["osManaged()", 1],
        [EVERY_N_DELAY, 1],
        ["everyN(64)", 1],
        ["interval(10)", 1],
      ]),
    ];
    await interleave(rec, `durable later, ${size} B`, size, later);
  }
}

/** The khipu specs of `cases` for each implementation; cases an implementation lacks become skipped rows. */
function khipu(
  rec: Recorder,
  impls: readonly Impl[],
  size: number,
  cases: [string, number][],
): ThroughputSpec[] {
  const out: ThroughputSpec[] = [];
  for (const [policy, c] of cases) {
    for (const impl of impls) {
      const s = policySpec(impl, policyCase(policy, c), "append", size);
      if (typeof s !== "string") {
        out.push(s);
        continue;
      }
      const name = pairedName(`${impl.prefix}khipu ${policy} x${c} append ${size}B`);
      console.log(`${name}: skipped (${s})`);
      rec.add({ suite: "paired", name, recordBytes: size, skipped: s });
    }
  }
  return out;
}

/** Runs `specs` in `ROUNDS` rotated rounds and records one `paired` row per spec. */
async function interleave(
  rec: Recorder,
  title: string,
  size: number,
  specs: ThroughputSpec[],
): Promise<void> {
  console.log(`\n--- interleaved: ${title} (${specs.length} benchmarks x ${ROUNDS} rounds) ---`);
  const rates = new Map<string, number[]>(specs.map((s) => [s.name, []]));
  const failed = new Map<string, string>();
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no benchmark always follows the same one.
    const order = specs.map((_, i) => specs[(i + round) % specs.length]);
    for (const spec of order) {
      if (failed.has(spec.name)) continue;
      try {
        rates.get(spec.name)!.push(await once(spec));
      } catch (e) {
        console.error(`${spec.name} failed:`, e);
        failed.set(spec.name, String(e));
      }
    }
  }
  for (const spec of specs) {
    const name = pairedName(spec.name);
    const err = failed.get(spec.name);
    if (err) {
      rec.add({ suite: "paired", name, recordBytes: size, skipped: err });
      continue;
    }
    const r = rates.get(spec.name)!;
    const m = median(r);
    rec.add({
      suite: "paired",
      name,
      recordBytes: size,
      recordsPerSec: m,
      mbPerSec: (m * size) / 1e6,
      samples: r.length,
      rounds: r,
      ...(spec.extra ? { extra: spec.extra } : {}),
    });
    console.log(`${name}: median ${Math.round(m)}/s; rounds ${r.map(Math.round).join(", ")}`);
  }
}

if (isMain(import.meta.url)) {
  await pairedSuite(new Recorder());
}
