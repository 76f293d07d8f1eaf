/**
 * Interleaved measurements for the ratio targets in bench/RESULTS.md. On a shared or virtualised machine the cost
 * of an fsync drifts by several times within seconds, so two benchmarks measured a minute apart can
 * disagree for reasons that have nothing to do with the code. Here the subject and its references
 * run in alternating rounds (order rotated each round), each round a short mitata `measure`, and
 * the report takes the **median of the per-round ratios**.
 *
 * Per record size (100 B, 1 KiB): raw async write+datasync loop, SQLite WAL `synchronous=FULL`,
 * `always()` with 1 appender and with 64 appenders.
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
import { isMain, RECORD_SIZES, Recorder, type ThroughputSpec } from "./harness.ts";
import { rawSpecs } from "./raw.bench.ts";
import { sqliteFullSpec } from "./sqlite.bench.ts";
import { policyRowName, policySpecs } from "./policies.bench.ts";

/** Rounds per benchmark (`KHIPU_BENCH_ROUNDS`, default 5). */
const ROUNDS = Number(process.env.KHIPU_BENCH_ROUNDS ?? 5);
/** Measured time per benchmark per round. */
const ROUND_NS = 250e6;

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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
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
  for (const size of RECORD_SIZES) {
    const wanted = new Set([
      policyRowName("always()", 1, "append", size),
      policyRowName("always()", 64, "append", size),
    ]);
    const specs: ThroughputSpec[] = [
      ...rawSpecs(size).filter((s) => s.name.startsWith("raw async write+datasync")),
      ...policySpecs(size).filter((s) => wanted.has(s.name)),
    ];
    const sqlite = await sqliteFullSpec(size);
    if (sqlite) specs.push(sqlite);
    const rates = new Map<string, number[]>(specs.map((s) => [s.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so no benchmark always follows the same one.
      const order = specs.map((_, i) => specs[(i + round) % specs.length]);
      for (const spec of order) rates.get(spec.name)!.push(await once(spec));
    }
    for (const spec of specs) {
      const r = rates.get(spec.name)!;
      const m = median(r);
      rec.add({
        suite: "paired",
        name: pairedName(spec.name),
        recordBytes: size,
        recordsPerSec: m,
        mbPerSec: (m * size) / 1e6,
        samples: r.length,
        rounds: r,
      });
      console.log(
        `${pairedName(spec.name)}: median ${Math.round(m)}/s; rounds ${
          r.map((x) => Math.round(x)).join(", ")
        }`,
      );
    }
  }
}

if (isMain(import.meta.url)) {
  await pairedSuite(new Recorder());
}
