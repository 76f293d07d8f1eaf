/**
 * Reads, open and memory, on stores of 1 GiB (128 MiB with `--quick` / `KHIPU_BENCH_QUICK=1`):
 *
 * - **write**: 1 GiB of 1 KiB records with `appendBatch` of 1000 under `osManaged()`, peak RSS
 *   above the baseline measured just before;
 * - **open**: `Store.open` + `store.log()` of a store whose 1 GiB sits in 16 segments of 64 MiB,
 *   against a store holding only one segment exactly as full as that last one (open must not grow
 *   with history); median of 7 warm-cache opens;
 * - **scan**: `log.read({ from: 0 })` over all of it (every checksum verified by the reader), records/s
 *   and payload GB/s, median of 3 scans (fewer if they take over 20 s), peak RSS; for 1 KiB and
 *   100 B records (the timed scan includes `Store.open`, a few ms);
 * - **seek**: `log.read({ from })` to a random sequence number until the first record arrives
 *   (latency, through mitata).
 *
 * Runs last in `bench/main.ts`: it leaves gigabytes of writeback behind, which would slow the
 * fsync-bound benchmarks.
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
import * as fs from "node:fs";
import { Store, SyncPolicy } from "../mod.ts";
import {
  collectGarbage,
  freshDir,
  GiB,
  isMain,
  MiB,
  payload,
  QUICK,
  Recorder,
  removeDir,
  rss,
  runThroughput,
  timeRuns,
} from "./harness.ts";

/** Bytes of payload in the big stores. */
const TOTAL_BYTES = QUICK ? 128 * MiB : GiB;
/** Segment size of the open benchmark: TOTAL_BYTES over 16 segments. */
const SEGMENT_BYTES = TOTAL_BYTES / 16;
/** Records per `appendBatch` while filling stores. */
const FILL_BATCH = 1000;
/** Label for sizes in row names. */
const TOTAL_LABEL = QUICK ? "128MiB" : "1GiB";
const SEGMENT_LABEL = QUICK ? "8MiB" : "64MiB";
const LOG = "bench";

interface Filled {
  records: number;
  peakRssAboveBaseline: number;
  seconds: number;
}

/** Segment files of a log directory (`<firstSeq>.seg`), oldest first. */
function segmentFiles(dir: string): string[] {
  return fs.readdirSync(`${dir}/${LOG}`).filter((n) => n.endsWith(".seg")).sort();
}

/** Records the write throughput of a {@linkcode fill} as a row. */
function addFillRow(rec: Recorder, size: number, filled: Filled, segments: number): void {
  rec.add({
    suite: "read",
    name: `write ${TOTAL_LABEL} ${size}B osManaged batch${FILL_BATCH}`,
    recordBytes: size,
    recordsPerSec: filled.records / filled.seconds,
    mbPerSec: (filled.records * size) / filled.seconds / 1e6,
    extra: {
      records: filled.records,
      segments,
      peakRssAboveBaselineBytes: filled.peakRssAboveBaseline,
    },
  });
}

/**
 * Appends `size`-byte records to a fresh store until `stop(nextSeq)` returns a target count, in
 * batches, sampling RSS after every batch. `segmentBytes` is passed to the store.
 */
async function fill(
  dir: string,
  size: number,
  segmentBytes: number | undefined,
  target: (log: { nextSeq: number; segmentCount: number }) => number,
): Promise<Filled> {
  const rec = payload(size);
  const full: Uint8Array[] = Array.from({ length: FILL_BATCH }, () => rec);
  collectGarbage();
  const base = rss();
  let peak = base;
  const t0 = performance.now();
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged(), segmentBytes });
  const log = await store.log(LOG);
  for (;;) {
    const want = target(log) - log.nextSeq;
    if (want <= 0) break;
    await log.appendBatch(want >= FILL_BATCH ? full : full.slice(0, want));
    const now = rss();
    if (now > peak) peak = now;
  }
  const records = log.nextSeq;
  await store.close();
  return {
    records,
    peakRssAboveBaseline: peak - base,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Scans the whole log, checking count, order and length; returns peak RSS above baseline. */
async function scan(dir: string, size: number, expected: number): Promise<number> {
  collectGarbage();
  const base = rss();
  let peak = base;
  const store = await Store.open(dir);
  const log = await store.log(LOG);
  let n = 0;
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
  await store.close();
  if (n !== expected) throw new Error(`scan: ${n} records, expected ${expected}`);
  return peak - base;
}

async function scanRows(rec: Recorder, dir: string, size: number, records: number) {
  let peak = 0;
  const t = await timeRuns(3, async () => {
    peak = Math.max(peak, await scan(dir, size, records));
  }, 20_000);
  const secs = t.medianNs / 1e9;
  rec.add({
    suite: "read",
    name: `scan ${TOTAL_LABEL} ${size}B`,
    recordBytes: size,
    recordsPerSec: records / secs,
    mbPerSec: (records * size) / secs / 1e6,
    avgNs: t.medianNs,
    samples: t.allNs.length,
    extra: { records, payloadBytes: records * size, peakRssAboveBaselineBytes: peak },
  });
  console.log(
    `scan ${TOTAL_LABEL} ${size}B: ${(records / secs / 1e6).toFixed(2)} M records/s, ` +
      `${((records * size) / secs / 1e9).toFixed(2)} GB/s, peak RSS +${
        (peak / MiB).toFixed(1)
      } MiB`,
  );
}

/** Times open + `store.log()` (close is not timed: only one store may hold the lock); median. */
async function openTime(dir: string, runs = 7): Promise<number> {
  const all: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const store = await Store.open(dir);
    await store.log(LOG);
    all.push((performance.now() - t0) * 1e6);
    await store.close();
  }
  all.sort((a, b) => a - b);
  return all[Math.floor(runs / 2)];
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
  const big = freshDir("big1k");
  const small = freshDir("small1k");
  const b100 = freshDir("big100");
  try {
    // 1 KiB records, 16 segments; the 16th exactly as full as the one-segment store below.
    const perSegment = Math.floor((SEGMENT_BYTES * 0.95) / (1024 + 28));
    console.log(`filling ${TOTAL_LABEL} of 1 KiB records in ${SEGMENT_LABEL} segments...`);
    let lastTarget = Number.MAX_SAFE_INTEGER;
    const bigFill = await fill(big, 1024, SEGMENT_BYTES, (log) => {
      if (log.segmentCount >= 16 && lastTarget === Number.MAX_SAFE_INTEGER) {
        const files = segmentFiles(big);
        lastTarget = Number(files[files.length - 1].replace(".seg", "")) + perSegment;
      }
      return Math.min(lastTarget, log.nextSeq + FILL_BATCH);
    });
    const bigSegs = segmentFiles(big);
    const lastFirst = Number(bigSegs[bigSegs.length - 1].replace(".seg", ""));
    const lastCount = bigFill.records - lastFirst;
    addFillRow(rec, 1024, bigFill, bigSegs.length);
    console.log(
      `  ${bigFill.records} records in ${bigSegs.length} segments, ${
        bigFill.seconds.toFixed(1)
      } s, ` +
        `peak RSS +${(bigFill.peakRssAboveBaseline / MiB).toFixed(1)} MiB`,
    );
    const smallFill = await fill(small, 1024, SEGMENT_BYTES, () => lastCount);
    const smallSegs = segmentFiles(small).length;

    const tBig = await openTime(big);
    const tSmall = await openTime(small);
    rec.add({
      suite: "read",
      name: `open ${SEGMENT_LABEL} 1 segment`,
      recordBytes: 1024,
      avgNs: tSmall,
      extra: { records: smallFill.records, segments: smallSegs },
    });
    rec.add({
      suite: "read",
      name: `open ${TOTAL_LABEL} ${bigSegs.length} segments`,
      recordBytes: 1024,
      avgNs: tBig,
      extra: {
        records: bigFill.records,
        segments: bigSegs.length,
        ratioToOneSegment: tBig / tSmall,
      },
    });
    console.log(
      `open: ${(tBig / 1e6).toFixed(2)} ms (${bigSegs.length} segments) vs ${
        (tSmall / 1e6).toFixed(2)
      } ms (${smallSegs} segment, ${smallFill.records} records): ${(tBig / tSmall).toFixed(2)}x`,
    );
    removeDir(small);

    await scanRows(rec, big, 1024, bigFill.records);

    // Random seeks on the 1 KiB store.
    const store = await Store.open(big);
    const log = await store.log(LOG);
    const n = log.nextSeq;
    let x = 12345;
    await runThroughput(
      "read",
      [{
        name: `seek random ${TOTAL_LABEL} 1024B`,
        recordBytes: 1024,
        setup: () =>
          Promise.resolve({
            call: async () => {
              x = (x * 1103515245 + 12345) & 0x7fffffff;
              const from = x % n;
              for await (const r of log.read({ from })) {
                if (r.seq !== from) throw new Error(`seek to ${from} gave ${r.seq}`);
                break;
              }
            },
            teardown: () => {},
          }),
      }],
      rec,
      "read({ from }) to a random seq, first record",
    );
    await store.close();
    removeDir(big);

    console.log(`filling ${TOTAL_LABEL} of 100 B records...`);
    const target = Math.floor(TOTAL_BYTES / 100);
    const f100 = await fill(b100, 100, undefined, () => target);
    addFillRow(rec, 100, f100, segmentFiles(b100).length);
    await scanRows(rec, b100, 100, f100.records);
  } finally {
    removeDir(big);
    removeDir(small);
    removeDir(b100);
  }
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await readSuite(rec);
  for (const r of rec.rows) console.log(JSON.stringify(r));
}
