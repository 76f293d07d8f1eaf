/**
 * `verify` against a full read (issue 16): `store.verify()` checks every frame with the reader's
 * scanner, so it should run at the reader's full-scan speed, in memory that does not grow with the
 * store.
 *
 * One store is built once: `KHIPU_VERIFY_BYTES` of 1 KiB records (default 128 MiB, `--smoke`
 * 8 MiB), `appendBatch` of 1000 under `osManaged()`, default options (64 MiB segments), closed
 * cleanly. Then, through a read-only store opened on it (not timed):
 *
 * - **verify**: one `store.verify()` of the whole store; **read**: one `log.read({ from: 0 })` of
 *   every record (checking each seq). Up to 256 MiB both run through mitata (`runThroughput`);
 *   above, timed runs alternating the two (median of 3), each far longer than mitata's sample.
 *   Rows `verify 1KiB <size>` and `read 1KiB <size>`: payload MB/s; the verify row's `extra`
 *   has the file bytes per second, `toRead` (verify MB/s / read MB/s) and the peak RSS growth.
 * - **memory**: one more verify, RSS sampled at each `onProgress` call (every 256 KiB) against a
 *   baseline taken after a GC just before: `extra.peakRssGrowthBytes` of the verify row.
 *
 * Warm page cache when the store fits in memory (it was just written): CPU, not the disk.
 *
 * Run alone: `npx tsx --expose-gc bench/verify.bench.ts`; the figure for a 1 GiB store:
 * `KHIPU_VERIFY_BYTES=1073741824 npx tsx --expose-gc bench/verify.bench.ts`.
 *
 * @example
 * ```ts
 * import { verifySuite } from "./verify.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await verifySuite(rec);
 * const row = rec.rows.find((r) => r.name.startsWith("verify 1KiB"));
 * if (!row || !((row.extra?.toRead as number) > 0)) throw new Error("no verify row");
 * ```
 * @module
 */
import process from "node:process";
import {
  collectGarbage,
  freshDir,
  GiB,
  human,
  isMain,
  MiB,
  payload,
  Recorder,
  removeDir,
  rss,
  runThroughput,
  runtimeVersion,
  SMOKE,
  timeRuns,
} from "./harness.ts";
import { type KhipuPolicy, type KhipuSyncPolicyClass, loadImpls } from "./impls.ts";

/** The slice of the current API this benchmark uses (v1 has no verify). */
interface VerifyStore {
  log(name: string): Promise<{
    appendBatch(items: readonly Uint8Array[]): Promise<number[]>;
    read(opts: { from: number }): AsyncIterable<{ seq: number }>;
  }>;
  verify(opts?: { onProgress?: () => void }): Promise<{
    ok: boolean;
    logs: { records: number; segments: number; bytes: number }[];
  }>;
  close(): Promise<void>;
}
interface VerifyModule {
  Store: {
    open(
      dir: string,
      opts?: { readOnly?: boolean; syncPolicy?: KhipuPolicy },
    ): Promise<VerifyStore>;
  };
  SyncPolicy: KhipuSyncPolicyClass;
}

const LOG = "verify";
const RECORD_BYTES = 1024;
const BATCH = 1000;
/** Above this, mitata's dozen samples per row would take minutes: timed runs instead. */
const MITATA_MAX_BYTES = 256 * MiB;
/** Timed runs of each (verify, read) in big-store mode. */
const TIMED_RUNS = 3;

/** Payload bytes of the store: `KHIPU_VERIFY_BYTES`, or the small default. */
function storeBytes(): number {
  const given = process.env.KHIPU_VERIFY_BYTES;
  if (given === undefined || given === "") return SMOKE ? 8 * MiB : 128 * MiB;
  const n = Number(given);
  if (!Number.isSafeInteger(n) || n < RECORD_BYTES) {
    throw new Error(`KHIPU_VERIFY_BYTES must be a whole number of bytes, got ${given}`);
  }
  return n;
}

/** `1GiB`, `128MiB`, or bytes. */
function sizeLabel(bytes: number): string {
  if (bytes % GiB === 0) return `${bytes / GiB}GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB}MiB`;
  return `${bytes}B`;
}

/** Writes the store of the module doc into `dir`; returns its record count. */
async function fill(mod: VerifyModule, dir: string, bytes: number): Promise<number> {
  const records = Math.floor(bytes / RECORD_BYTES);
  const data = payload(RECORD_BYTES);
  const full = Array.from({ length: BATCH }, () => data);
  const store = await mod.Store.open(dir, { syncPolicy: mod.SyncPolicy.osManaged() });
  try {
    const log = await store.log(LOG);
    for (let done = 0; done < records; done += BATCH) {
      await log.appendBatch(full.slice(0, Math.min(BATCH, records - done)));
    }
  } finally {
    await store.close();
  }
  return records;
}

/** A read-only store on `dir` and the two measured calls, each checked. */
async function prepare(mod: VerifyModule, dir: string, records: number) {
  const store = await mod.Store.open(dir, { readOnly: true });
  const log = await store.log(LOG);
  const verify = async (onProgress?: () => void) => {
    const r = await store.verify({ onProgress });
    if (!r.ok || r.logs[0].records !== records) {
      throw new Error(`verify: ${JSON.stringify(r.logs)}`);
    }
    return r.logs[0];
  };
  const read = async () => {
    let n = 0;
    for await (const r of log.read({ from: 0 })) {
      if (r.seq !== n++) throw new Error(`read: record ${n - 1} came back as seq ${r.seq}`);
    }
    if (n !== records) throw new Error(`read: ${n} records, expected ${records}`);
  };
  return { store, verify, read };
}

/**
 * Runs the module doc's measurements into `rec` (suite `verify`): rows `verify 1KiB <size>` and
 * `read 1KiB <size>`.
 *
 * @example
 * ```ts
 * import { verifySuite } from "./verify.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await verifySuite(rec);
 * const read = rec.rows.find((r) => r.name.startsWith("read 1KiB"));
 * if (!read || !(read.mbPerSec! > 0)) throw new Error("no read row");
 * ```
 */
export async function verifySuite(rec: Recorder): Promise<void> {
  const [impl] = await loadImpls();
  const mod = impl.mod as unknown as VerifyModule;
  const bytes = storeBytes();
  const label = sizeLabel(bytes);
  const dir = freshDir("verify");
  try {
    const t0 = performance.now();
    const records = await fill(mod, dir, bytes);
    console.log(
      `${label} store of ${records} records written in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    const p = await prepare(mod, dir, records);
    try {
      const shape = await p.verify();
      const names = { verify: `verify 1KiB ${label}`, read: `read 1KiB ${label}` };
      const extra = { storeBytes: shape.bytes, segments: shape.segments, records };
      if (bytes <= MITATA_MAX_BYTES) {
        const spec = (name: string, call: () => Promise<unknown>) => ({
          name,
          recordBytes: RECORD_BYTES,
          recordsPerCall: records,
          extra: { ...extra, method: "mitata" },
          setup: () => Promise.resolve({ call, teardown: () => {} }),
        });
        await runThroughput(
          "verify",
          [spec(names.verify, () => p.verify()), spec(names.read, p.read)],
          rec,
          `verify vs full read, ${label} of 1 KiB records (${runtimeVersion()})`,
        );
      } else {
        // Alternating, so both see the same page cache and machine load.
        const verifyNs: number[] = [];
        const readNs: number[] = [];
        await timeRuns(2 * TIMED_RUNS, async (i) => {
          const t = performance.now();
          await (i % 2 === 0 ? p.verify() : p.read());
          (i % 2 === 0 ? verifyNs : readNs).push((performance.now() - t) * 1e6);
        });
        for (const [name, ns] of [[names.verify, verifyNs], [names.read, readNs]] as const) {
          const mid = [...ns].sort((a, b) => a - b)[Math.floor(ns.length / 2)];
          const recordsPerSec = records / (mid / 1e9);
          rec.add({
            suite: "verify",
            name,
            recordBytes: RECORD_BYTES,
            recordsPerSec,
            mbPerSec: (recordsPerSec * RECORD_BYTES) / 1e6,
            avgNs: mid,
            samples: ns.length,
            extra: { ...extra, method: `timed, median of ${ns.length}` },
          });
        }
      }
      collectGarbage();
      const base = rss();
      let peak = base;
      await p.verify(() => {
        const now = rss();
        if (now > peak) peak = now;
      });
      const v = rec.get(names.verify);
      const r = rec.get(names.read);
      if (v?.mbPerSec && r?.mbPerSec && v.avgNs) {
        v.extra = {
          ...v.extra,
          toRead: v.mbPerSec / r.mbPerSec,
          fileMBPerSec: shape.bytes / (v.avgNs / 1e9) / 1e6,
          peakRssGrowthBytes: peak - base,
          rssBaselineBytes: base,
        };
        const seconds = (ns: number) => `${(ns / 1e9).toFixed(2)} s`;
        console.log(
          `${label}: verify ${seconds(v.avgNs)}, ${human(v.mbPerSec)} MB/s of payload (${
            human(v.extra.fileMBPerSec as number)
          } MB/s of files); read ${seconds(r.avgNs!)}, ${human(r.mbPerSec)} MB/s; verify/read x${
            (v.extra.toRead as number).toFixed(2)
          }; peak RSS growth during verify ${((peak - base) / MiB).toFixed(1)} MiB (over ${
            (base / MiB).toFixed(0)
          } MiB)`,
        );
      }
    } finally {
      await p.store.close();
    }
  } finally {
    removeDir(dir);
  }
}

if (isMain(import.meta.url)) {
  console.log(`verify against a full read (${runtimeVersion()})`);
  await verifySuite(new Recorder());
}
