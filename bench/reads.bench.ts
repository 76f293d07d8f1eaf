/**
 * Reads, open and memory, for every implementation of `./impls.ts` side by side (v1 rows carry the
 * prefix `v1 `), through the public API only:
 *
 * - **open**: `Store.open` + `store.log()` of a store whose active (only) segment holds 64 MiB of
 *   1 KiB records, written and closed cleanly, against a store whose active segment is empty (same
 *   options, `segmentBytes` 128 MiB so the 64 MiB stay in one segment); median of 9 warm-cache opens,
 *   the four stores (two per implementation) opened in turn. The target: ≤ 2x.
 * - **write**: 1 GiB (128 MiB with `--quick`) of 1 KiB and of 100 B records with `appendBatch` of
 *   1000 under `osManaged()`, then `store.close()`; peak RSS above the baseline measured just before.
 * - **scan**: over the closed store: `Store.open` + `store.log()` (not timed), then
 *   `log.read({ from: 0 })` over all of it (the reader verifies every checksum; the loop checks each
 *   record's sequence number and length) timed, records/s and payload GB/s, median of 3 scans, the
 *   implementations alternating; peak RSS.
 * - **seek**: `log.read({ from })` to a random sequence number until the first record arrives
 *   (latency, through mitata), on the 1 KiB store.
 *
 * Runs last in `bench/main.ts`: it leaves gigabytes of writeback behind, which would slow the
 * fsync-bound benchmarks. Row names and counts depend on nothing in the file format.
 *
 * Run alone: `npx tsx bench/reads.bench.ts [--quick]`.
 *
 * @example
 * ```ts
 * import { readSuite } from "./reads.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await readSuite(new Recorder());
 * ```
 * @module
 */
import {
  collectGarbage,
  freshDir,
  GiB,
  isMain,
  median,
  MiB,
  payload,
  QUICK,
  Recorder,
  removeDir,
  rss,
  runThroughput,
  SMOKE,
} from "./harness.ts";
import { type Impl, type KhipuStoreOptions, loadImpls } from "./impls.ts";

/** Bytes of payload in the scanned stores. */
const TOTAL_BYTES = SMOKE ? 8 * MiB : QUICK ? 128 * MiB : GiB;
/** Label for sizes in row names. */
const TOTAL_LABEL = SMOKE ? "8MiB" : QUICK ? "128MiB" : "1GiB";
/** Payload in the active segment of the open benchmark (the target names 64 MiB, quick or not). */
const ACTIVE_BYTES = SMOKE ? 4 * MiB : 64 * MiB;
const ACTIVE_LABEL = `${ACTIVE_BYTES / MiB}MiB`;
/** Opens per store in the open benchmark. */
const OPEN_RUNS = SMOKE ? 3 : 9;
/** Scans per store. */
const SCAN_RUNS = SMOKE ? 1 : 3;
/** Records per `appendBatch` while filling stores. */
const FILL_BATCH = 1000;
const LOG = "bench";

interface Filled {
  records: number;
  peakRssAboveBaseline: number;
  seconds: number;
}

/**
 * Appends `records` records of `size` bytes to a fresh store of `impl` (osManaged, batches of
 * 1000), closes it cleanly, and returns the count, the time and the peak RSS above baseline.
 */
async function fill(
  impl: Impl,
  dir: string,
  size: number,
  records: number,
  opts: KhipuStoreOptions = {},
): Promise<Filled> {
  const rec = payload(size);
  const full: Uint8Array[] = Array.from({ length: FILL_BATCH }, () => rec);
  collectGarbage();
  const base = rss();
  let peak = base;
  const t0 = performance.now();
  const store = await impl.mod.Store.open(dir, {
    ...opts,
    syncPolicy: impl.mod.SyncPolicy.osManaged(),
  });
  const log = await store.log(LOG);
  let done = 0;
  while (done < records) {
    const want = Math.min(FILL_BATCH, records - done);
    const seqs = await log.appendBatch(want === FILL_BATCH ? full : full.slice(0, want));
    if (seqs.length !== want || seqs[0] !== done) {
      throw new Error(`fill: batch at ${done} got seqs from ${seqs[0]} (${seqs.length})`);
    }
    done += want;
    const now = rss();
    if (now > peak) peak = now;
  }
  await store.close();
  return { records, peakRssAboveBaseline: peak - base, seconds: (performance.now() - t0) / 1000 };
}

/** Opens the closed store (untimed), times a full checked scan, closes; ns and peak RSS. */
async function scanOnce(
  impl: Impl,
  dir: string,
  size: number,
  expected: number,
): Promise<{ ns: number; peak: number }> {
  collectGarbage();
  const store = await impl.mod.Store.open(dir);
  const log = await store.log(LOG);
  const base = rss();
  let peak = base;
  let n = 0;
  const t0 = performance.now();
  for await (const r of log.read({ from: 0 })) {
    if (r.seq !== n || r.data.length !== size) {
      throw new Error(`scan: record ${n} came back as seq ${r.seq}, ${r.data.length} bytes`);
    }
    n++;
    if ((n & 4095) === 0) {
      const now = rss();
      if (now > peak) peak = now;
    }
  }
  const ns = (performance.now() - t0) * 1e6;
  await store.close();
  if (n !== expected) throw new Error(`scan: ${n} records, expected ${expected}`);
  return { ns, peak: peak - base };
}

/** The open benchmark of the module doc. */
async function openRows(rec: Recorder, impls: readonly Impl[]): Promise<void> {
  const opts: KhipuStoreOptions = { segmentBytes: 2 * ACTIVE_BYTES };
  const records = Math.floor(ACTIVE_BYTES / 1024);
  const stores: { impl: Impl; full: boolean; dir: string; times: number[] }[] = [];
  try {
    for (const impl of impls) {
      const full = freshDir(`${impl.key}open${ACTIVE_LABEL}`);
      stores.push({ impl, full: true, dir: full, times: [] });
      await fill(impl, full, 1024, records, opts);
      const empty = freshDir(`${impl.key}openempty`);
      stores.push({ impl, full: false, dir: empty, times: [] });
      await fill(impl, empty, 1024, 0, opts);
    }
    for (let i = 0; i < OPEN_RUNS; i++) {
      for (const s of stores) {
        const t0 = performance.now();
        const store = await s.impl.mod.Store.open(s.dir, opts);
        await store.log(LOG);
        s.times.push((performance.now() - t0) * 1e6);
        // Close is not timed: only one store may hold the lock.
        await store.close();
      }
    }
    for (const impl of impls) {
      const full = stores.find((s) => s.impl === impl && s.full)!;
      const empty = stores.find((s) => s.impl === impl && !s.full)!;
      const tFull = median(full.times), tEmpty = median(empty.times);
      rec.add({
        suite: "read",
        name: `${impl.prefix}open empty active segment`,
        recordBytes: 1024,
        avgNs: tEmpty,
        samples: empty.times.length,
        extra: { records: 0, impl: impl.label, allNs: empty.times.map(Math.round).join(",") },
      });
      rec.add({
        suite: "read",
        name: `${impl.prefix}open ${ACTIVE_LABEL} active segment`,
        recordBytes: 1024,
        avgNs: tFull,
        samples: full.times.length,
        extra: {
          records,
          impl: impl.label,
          ratioToEmpty: tFull / tEmpty,
          allNs: full.times.map(Math.round).join(","),
        },
      });
      console.log(
        `${impl.prefix}open: ${(tFull / 1e6).toFixed(2)} ms (${ACTIVE_LABEL} active segment) vs ` +
          `${(tEmpty / 1e6).toFixed(2)} ms (empty): ${(tFull / tEmpty).toFixed(2)}x`,
      );
    }
  } finally {
    for (const s of stores) removeDir(s.dir);
  }
}

/** Fills a `size`-byte store per implementation, then scans them in turn; optionally seeks. */
async function scanRows(
  rec: Recorder,
  impls: readonly Impl[],
  size: number,
  seek: boolean,
): Promise<void> {
  const records = Math.floor(TOTAL_BYTES / size);
  const dirs: string[] = [];
  try {
    for (const impl of impls) {
      const dir = freshDir(`${impl.key}scan${size}`);
      dirs.push(dir);
      console.log(`${impl.prefix}filling ${TOTAL_LABEL} of ${size} B records...`);
      const f = await fill(impl, dir, size, records);
      rec.add({
        suite: "read",
        name: `${impl.prefix}write ${TOTAL_LABEL} ${size}B osManaged batch${FILL_BATCH}`,
        recordBytes: size,
        recordsPerSec: f.records / f.seconds,
        mbPerSec: (f.records * size) / f.seconds / 1e6,
        extra: {
          records: f.records,
          impl: impl.label,
          peakRssAboveBaselineBytes: f.peakRssAboveBaseline,
        },
      });
    }
    const times = impls.map(() => [] as number[]);
    const peaks = impls.map(() => 0);
    for (let i = 0; i < SCAN_RUNS; i++) {
      for (let k = 0; k < impls.length; k++) {
        const s = await scanOnce(impls[k], dirs[k], size, records);
        times[k].push(s.ns);
        peaks[k] = Math.max(peaks[k], s.peak);
      }
    }
    impls.forEach((impl, k) => {
      const secs = median(times[k]) / 1e9;
      rec.add({
        suite: "read",
        name: `${impl.prefix}scan ${TOTAL_LABEL} ${size}B`,
        recordBytes: size,
        recordsPerSec: records / secs,
        mbPerSec: (records * size) / secs / 1e6,
        avgNs: secs * 1e9,
        samples: times[k].length,
        extra: {
          records,
          impl: impl.label,
          payloadBytes: records * size,
          peakRssAboveBaselineBytes: peaks[k],
        },
      });
      console.log(
        `${impl.prefix}scan ${TOTAL_LABEL} ${size}B: ${
          (records / secs / 1e6).toFixed(2)
        } M records/s, ` +
          `${((records * size) / secs / 1e9).toFixed(2)} GB/s, peak RSS +${
            (peaks[k] / MiB).toFixed(1)
          } MiB`,
      );
    });
    if (seek) {
      let x = 12345;
      await runThroughput(
        "read",
        impls.map((impl, k) => ({
          name: `${impl.prefix}seek random ${TOTAL_LABEL} ${size}B`,
          recordBytes: size,
          extra: { impl: impl.label },
          setup: async () => {
            const store = await impl.mod.Store.open(dirs[k]);
            const log = await store.log(LOG);
            return {
              call: async () => {
                x = (x * 1103515245 + 12345) & 0x7fffffff;
                const from = x % records;
                for await (const r of log.read({ from })) {
                  if (r.seq !== from) throw new Error(`seek to ${from} gave ${r.seq}`);
                  break;
                }
              },
              teardown: () => store.close(),
            };
          },
        })),
        rec,
        "read({ from }) to a random seq, first record",
      );
    }
  } finally {
    for (const d of dirs) removeDir(d);
  }
}

/**
 * Runs the read/open/memory suite into `rec`.
 *
 * @example
 * ```ts
 * import { readSuite } from "./reads.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await readSuite(new Recorder());
 * ```
 */
export async function readSuite(rec: Recorder): Promise<void> {
  const impls = await loadImpls();
  await openRows(rec, impls);
  await scanRows(rec, impls, 1024, true);
  await scanRows(rec, impls, 100, false);
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await readSuite(rec);
  for (const r of rec.rows) console.log(JSON.stringify(r));
}
