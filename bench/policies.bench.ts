/**
 * khipu-log's append throughput under each sync policy, on a fresh store in a fresh temp directory
 * per benchmark, with the store's default options:
 *
 * - `always()` with 1, 8, 64 and 512 concurrent appenders (mitata's `concurrency`: that many
 *   calls in flight under one `Promise.all`, so they share writes and fdatasyncs — group commit);
 * - `everyN(64)`, `everyN(1000, { maxDelayMs: 20 })` (new in v2: skipped with a note where
 *   `SyncPolicy.everyN(2, { maxDelayMs: 5 })` throws; v1 accepts and ignores the options, so its row
 *   is plain `everyN(1000)`), `interval(10)`, `osManaged()` with one appender;
 * - each awaiting every `append`, and with `appendBatch` of 100;
 * - 100 B and 1 KiB records;
 * - for every implementation of `./impls.ts` (current, and v1 when `KHIPU_BENCH_V1` is set), the
 *   two side by side (v1 rows carry the prefix `v1 `).
 *
 * A resolved append under `always()` is durable, so its records/s is durable throughput; under the
 * other policies an append resolves once written to the OS.
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
import {
  everyNDelaySupported,
  type Impl,
  type KhipuPolicy,
  type KhipuSyncPolicyClass,
  loadImpls,
} from "./impls.ts";

/** One measured configuration. */
export interface PolicyCase {
  /** Label, e.g. `always()`. */
  policy: string;
  /** Builds the policy (fresh per store) from an implementation's `SyncPolicy`. */
  make: (P: KhipuSyncPolicyClass) => KhipuPolicy;
  /** Concurrent appenders. */
  concurrency: number;
  /** `true`, or why this implementation cannot run the case. */
  supported?: (impl: Impl) => true | string;
  /** A note for an implementation's row (e.g. v1 ignores an option). */
  note?: (impl: Impl) => string | undefined;
}

/** The label of the new v2 policy the targets name. */
export const EVERY_N_DELAY = "everyN(1000,20ms)";

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
  { policy: "always()", make: (P) => P.always(), concurrency: 1 },
  { policy: "always()", make: (P) => P.always(), concurrency: 8 },
  { policy: "always()", make: (P) => P.always(), concurrency: 64 },
  { policy: "always()", make: (P) => P.always(), concurrency: 512 },
  { policy: "everyN(64)", make: (P) => P.everyN(64), concurrency: 1 },
  {
    policy: EVERY_N_DELAY,
    make: (P) => P.everyN(1000, { maxDelayMs: 20 }),
    concurrency: 1,
    supported: everyNDelaySupported,
    note: (impl) =>
      impl.key === "v1" ? "v1 ignores the options object: plain everyN(1000)" : undefined,
  },
  { policy: "interval(10)", make: (P) => P.interval(10), concurrency: 1 },
  { policy: "osManaged()", make: (P) => P.osManaged(), concurrency: 1 },
];

/**
 * The case called `policy` with `concurrency` appenders.
 *
 * @example
 * ```ts
 * import { policyCase } from "./policies.bench.ts";
 * console.log(policyCase("always()", 64).concurrency); // 64
 * ```
 */
export function policyCase(policy: string, concurrency: number): PolicyCase {
  const c = POLICY_CASES.find((x) => x.policy === policy && x.concurrency === concurrency);
  if (!c) throw new Error(`no policy case ${policy} x${concurrency}`);
  return c;
}

/**
 * The row name of a policy benchmark: `khipu always() x64 append 100B` (v1: `v1 khipu ...`).
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
  prefix = "",
): string {
  return `${prefix}khipu ${policy} x${concurrency} ${mode} ${size}B`;
}

/**
 * One policy benchmark of `impl`, or the reason it cannot run there (a string).
 *
 * @example
 * ```ts
 * import { policyCase, policySpec } from "./policies.bench.ts";
 * import { loadImpls } from "./impls.ts";
 * const [current] = await loadImpls();
 * const s = policySpec(current, policyCase("always()", 1), "append", 100);
 * console.log(typeof s === "string" ? s : s.name);
 * ```
 */
export function policySpec(
  impl: Impl,
  c: PolicyCase,
  mode: "append" | "batch100",
  size: number,
): ThroughputSpec | string {
  const ok = c.supported ? c.supported(impl) : true;
  if (ok !== true) return ok;
  const rec = payload(size);
  const batch: Uint8Array[] = Array.from({ length: 100 }, () => rec);
  const note = c.note?.(impl);
  const { Store, SyncPolicy } = impl.mod;
  return {
    name: policyRowName(c.policy, c.concurrency, mode, size, impl.prefix),
    recordBytes: size,
    recordsPerCall: mode === "append" ? 1 : 100,
    concurrency: c.concurrency,
    extra: { impl: impl.label, policy: String(c.make(SyncPolicy)), ...(note ? { note } : {}) },
    setup: async () => {
      const dir = freshDir(`${impl.key}${c.policy}${c.concurrency}`);
      const store = await Store.open(dir, { syncPolicy: c.make(SyncPolicy) });
      const log = await store.log("bench");
      return {
        call: mode === "append" ? () => log.append(rec) : () => log.appendBatch(batch),
        teardown: async () => {
          await store.close();
          removeDir(dir);
        },
      };
    },
  };
}

/**
 * The policy benchmarks for `size`-byte records (every case, awaited appends and batches of 100,
 * each implementation right after the other), and the rows that cannot run (name and reason).
 *
 * @example
 * ```ts
 * import { policySpecs } from "./policies.bench.ts";
 * import { loadImpls } from "./impls.ts";
 * console.log(policySpecs(100, await loadImpls()).specs.length);
 * ```
 */
export function policySpecs(
  size: number,
  impls: readonly Impl[],
): { specs: ThroughputSpec[]; skipped: { name: string; reason: string }[] } {
  const specs: ThroughputSpec[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const mode of ["append", "batch100"] as const) {
    for (const c of POLICY_CASES) {
      for (const impl of impls) {
        const s = policySpec(impl, c, mode, size);
        if (typeof s === "string") {
          skipped.push({
            name: policyRowName(c.policy, c.concurrency, mode, size, impl.prefix),
            reason: s,
          });
        } else specs.push(s);
      }
    }
  }
  return { specs, skipped };
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
  const impls = await loadImpls();
  for (const size of RECORD_SIZES) {
    const { specs, skipped } = policySpecs(size, impls);
    for (const s of skipped) {
      console.log(`${s.name}: skipped (${s.reason})`);
      rec.add({ suite: "policy", name: s.name, recordBytes: size, skipped: s.reason });
    }
    await runThroughput("policy", specs, rec, `khipu-log policies, ${size} B records`);
  }
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await policySuite(rec);
  rec.printTable();
}
