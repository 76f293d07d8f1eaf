/**
 * khipu-log's append throughput under each sync policy, on a fresh store in a fresh temp directory
 * per benchmark, with the store's default options:
 *
 * - `always()` with 1, 8, 64 and 512 concurrent appenders (mitata's `concurrency`: that many
 *   calls in flight under one `Promise.all`, so they share writes and fdatasyncs — group commit);
 * - `everyN(64)`, `interval(10)`, `osManaged()` with one appender;
 * - each awaiting every `append`, and with `appendBatch` of 100;
 * - 100 B and 1 KiB records.
 *
 * A resolved append under `always()` is durable, so its records/s is durable throughput; under the
 * other policies an append resolves once written to the OS (see `src/sync_policy.ts`).
 *
 * Run alone: `npx tsx bench/policies.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { policySuite } from "./policies.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await policySuite(new Recorder());
 * ```
 * @module
 */
import { Store, SyncPolicy } from "../mod.ts";
import {
  freshDir,
  isMain,
  payload,
  RECORD_SIZES,
  Recorder,
  removeDir,
  runThroughput,
  type ThroughputSpec,
} from "./harness.ts";

/** One measured configuration. */
export interface PolicyCase {
  /** Label, e.g. `always()`. */
  policy: string;
  /** Builds the policy (fresh per store). */
  make: () => SyncPolicy;
  /** Concurrent appenders. */
  concurrency: number;
}

/**
 * The policy configurations the benchmark targets name.
 *
 * @example
 * ```ts
 * import { POLICY_CASES } from "./policies.bench.ts";
 * console.log(POLICY_CASES.map((c) => `${c.policy} x${c.concurrency}`));
 * ```
 */
export const POLICY_CASES: readonly PolicyCase[] = [
  { policy: "always()", make: () => SyncPolicy.always(), concurrency: 1 },
  { policy: "always()", make: () => SyncPolicy.always(), concurrency: 8 },
  { policy: "always()", make: () => SyncPolicy.always(), concurrency: 64 },
  { policy: "always()", make: () => SyncPolicy.always(), concurrency: 512 },
  { policy: "everyN(64)", make: () => SyncPolicy.everyN(64), concurrency: 1 },
  { policy: "interval(10)", make: () => SyncPolicy.interval(10), concurrency: 1 },
  { policy: "osManaged()", make: () => SyncPolicy.osManaged(), concurrency: 1 },
];

/**
 * The row name of a policy benchmark: `khipu always() x64 append 100B`.
 *
 * @example
 * ```ts
 * import { policyRowName } from "./policies.bench.ts";
 * console.log(policyRowName("osManaged()", 1, "batch100", 1024)); // khipu osManaged() x1 batch100 1024B
 * ```
 */
export function policyRowName(
  policy: string,
  concurrency: number,
  mode: "append" | "batch100",
  size: number,
): string {
  return `khipu ${policy} x${concurrency} ${mode} ${size}B`;
}

/**
 * The policy benchmarks for `size`-byte records (every case, awaited appends and batches of 100).
 *
 * @example
 * ```ts
 * import { policySpecs } from "./policies.bench.ts";
 * console.log(policySpecs(100).length); // 14
 * ```
 */
export function policySpecs(size: number): ThroughputSpec[] {
  const rec = payload(size);
  const batch: Uint8Array[] = Array.from({ length: 100 }, () => rec);
  const out: ThroughputSpec[] = [];
  for (const mode of ["append", "batch100"] as const) {
    for (const c of POLICY_CASES) {
      out.push({
        name: policyRowName(c.policy, c.concurrency, mode, size),
        recordBytes: size,
        recordsPerCall: mode === "append" ? 1 : 100,
        concurrency: c.concurrency,
        setup: async () => {
          const dir = freshDir(`${c.policy}${c.concurrency}`);
          const store = await Store.open(dir, { syncPolicy: c.make() });
          const log = await store.log("bench");
          return {
            call: mode === "append" ? () => log.append(rec) : () => log.appendBatch(batch),
            teardown: async () => {
              await store.close();
              removeDir(dir);
            },
          };
        },
      });
    }
  }
  return out;
}

/**
 * Runs the policy suite for every record size into `rec`.
 *
 * @example
 * ```ts
 * import { policySuite } from "./policies.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await policySuite(new Recorder());
 * ```
 */
export async function policySuite(rec: Recorder): Promise<void> {
  for (const size of RECORD_SIZES) {
    await runThroughput("policy", policySpecs(size), rec, `khipu-log policies, ${size} B records`);
  }
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await policySuite(rec);
  rec.printTable();
}
