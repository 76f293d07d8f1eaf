/**
 * What tamper evidence costs (issue 18): append throughput of a log with `integrity: "merkle"`
 * against the same log without, side by side in one mitata group per policy, on fresh stores with
 * default options and 100 B records:
 *
 * - `always()` with 64 concurrent appenders, `everyN(64)` and `osManaged()` with one; rows
 *   `merkle|plain <policy> x<n> append 100B`; the merkle row's `extra.toPlain` is its records/s
 *   over the plain row's (target >= 0.9 for the first two);
 * - proofs: `proveInclusion` and `verifyInclusion` per second on a log of 2^16 records (2^12 with
 *   `--smoke`), random seqs against the full tree, and `proveConsistency` + `verifyConsistency`
 *   from a random older size: timed loops, rows `prove inclusion`, `verify inclusion`,
 *   `prove consistency`, `verify consistency` (`recordsPerSec` = proofs per second).
 *
 * Run alone: `npx tsx bench/integrity.bench.ts` (or `npx deno run -A` / `npx bun run`); in the
 * whole run: suite `integrity` of `bench/main.ts`.
 *
 * @example
 * ```ts
 * import { integritySpecs } from "./integrity.bench.ts";
 * const specs = integritySpecs();
 * if (!specs.some((s) => s.name === "merkle always() x64 append 100B")) throw new Error("rows");
 * ```
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import { Store, SyncPolicy } from "../mod.ts";
import {
  leafHashOf,
  leafSource,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from "../integrity.ts";
import {
  freshDir,
  isMain,
  payload,
  Recorder,
  removeDir,
  runThroughput,
  SMOKE,
  type ThroughputSpec,
} from "./harness.ts";

const SIZE = 100;
const CASES = [
  { policy: "always()", make: () => SyncPolicy.always(), concurrency: 64 },
  { policy: "everyN(64)", make: () => SyncPolicy.everyN(64), concurrency: 1 },
  { policy: "osManaged()", make: () => SyncPolicy.osManaged(), concurrency: 1 },
] as const;

/**
 * The append benchmarks: each policy case with integrity on and off.
 *
 * @example
 * ```ts
 * import { integritySpecs } from "./integrity.bench.ts";
 * if (integritySpecs().length !== 6) throw new Error("two rows per policy");
 * ```
 */
export function integritySpecs(): ThroughputSpec[] {
  const rec = payload(SIZE);
  return CASES.flatMap((c) =>
    (["plain", "merkle"] as const).map((kind): ThroughputSpec => ({
      name: `${kind} ${c.policy} x${c.concurrency} append ${SIZE}B`,
      recordBytes: SIZE,
      concurrency: c.concurrency,
      extra: { policy: c.policy, integrity: kind === "merkle" ? "merkle" : "none" },
      setup: async () => {
        const dir = freshDir(`integrity-${kind}`);
        const store = await Store.open(dir, { syncPolicy: c.make() });
        const log = await store.log("bench", { integrity: kind === "merkle" ? "merkle" : "none" });
        return {
          call: () => log.append(rec),
          teardown: async () => {
            await store.close();
            removeDir(dir);
          },
        };
      },
    }))
  );
}

/** Proofs per second of `fn` over `n` calls. */
async function perSecond(n: number, fn: (i: number) => Promise<unknown> | unknown) {
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return n / ((performance.now() - t) / 1000);
}

/**
 * Runs the module doc's measurements into `rec` (suite `integrity`).
 *
 * @example
 * ```ts
 * import { integritySuite } from "./integrity.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await integritySuite(rec, { appends: false });
 * if (!rec.rows.some((r) => r.name === "verify inclusion")) throw new Error("proof rows");
 * ```
 */
export async function integritySuite(
  rec: Recorder,
  opts: { appends?: boolean } = {},
): Promise<void> {
  if (opts.appends !== false) {
    for (const c of CASES) {
      const specs = integritySpecs().filter((s) => s.extra?.policy === c.policy);
      await runThroughput("integrity", specs, rec, `integrity on vs off, ${c.policy}`);
      const [plain, merkle] = specs.map((s) => rec.rows.find((r) => r.name === s.name));
      if (plain?.recordsPerSec && merkle?.recordsPerSec) {
        const toPlain = merkle.recordsPerSec / plain.recordsPerSec;
        merkle.extra = { ...merkle.extra, toPlain };
        console.log(`${c.policy}: merkle/plain = ${toPlain.toFixed(3)}`);
      }
    }
  }
  const records = SMOKE ? 1 << 12 : 1 << 16;
  const dir = freshDir("integrity-proofs");
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged() });
  try {
    const log = await store.log("proofs", { integrity: "merkle" });
    const data = payload(SIZE);
    for (let i = 0; i < records; i += 1000) {
      await log.appendBatch(Array.from({ length: Math.min(1000, records - i) }, () => data));
    }
    const { privateKey } = generateKeyPairSync("ed25519");
    const cp = await log.checkpoint({ origin: "bench", sign: privateKey });
    const leaves: Uint8Array[] = [];
    for await (const r of log.read({ from: 0 })) leaves.push(leafHashOf(r));
    const n = SMOKE ? 500 : 20_000;
    const seqs = Array.from({ length: n }, (_, i) => (i * 2654435761) % records);
    const proofs = await Promise.all(
      seqs.slice(0, 1000).map((s) => log.proveInclusion(s, cp.size)),
    );
    const olds = seqs.map((s) => Math.max(1, s));
    const figures: [string, number][] = [
      ["prove inclusion", await perSecond(n, (i) => log.proveInclusion(seqs[i], cp.size))],
      [
        "verify inclusion",
        await perSecond(n, (i) => {
          const p = proofs[i % proofs.length];
          if (!verifyInclusion(leaves[p.index], p, cp.root)) throw new Error("inclusion");
        }),
      ],
      ["prove consistency", await perSecond(n, (i) => log.proveConsistency(olds[i], cp.size))],
    ];
    // The old roots an auditor would have from old checkpoints: computed once, not timed.
    const src = leafSource(leaves);
    const cons = await Promise.all(
      olds.slice(0, 20).map(async (m) => ({
        proof: await log.proveConsistency(m, cp.size),
        old: rootOf(src, m),
      })),
    );
    figures.push([
      "verify consistency",
      await perSecond(n, (i) => {
        const c = cons[i % cons.length];
        if (!verifyConsistency(c.old, cp.root, c.proof)) throw new Error("consistency");
      }),
    ]);
    for (const [name, perSec] of figures) {
      console.log(`${name}: ${Math.round(perSec)}/s (tree of ${records})`);
      rec.add({
        suite: "integrity",
        name,
        recordBytes: 0,
        recordsPerSec: perSec,
        extra: { treeSize: records },
      });
    }
  } finally {
    await store.close();
    removeDir(dir);
  }
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await integritySuite(rec);
  rec.printTable();
}
