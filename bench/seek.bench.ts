/**
 * Seek by time (`seqAtTime`, `src/time_seek.ts`, what `read({ fromTime })` uses) on a 1 GiB store
 * (128 MiB with `--quick`, 8 MiB with `--smoke`) of 1 KiB records under `osManaged()` (real
 * `Date.now()` timestamps, so runs of equal ones), against a full scan of the store. Two stores:
 * `appendBatch` of 1000, where each batch starts a flush chunk and so (mostly) an index entry,
 * which is where a seek to a time between batches lands; and of 10, where records of one
 * millisecond span many batches and a seek lands anywhere in an index interval.
 *
 * - **scan**: `log.read({ from: 0 })` over all of it (every checksum verified), median of 3; this
 *   is what finding a time costs without the time index (a linear search reads half of it on
 *   average). It also collects every record's timestamp, to check the seeks against.
 * - **seek**: `seqAtTime` for a uniformly random time between the first and last timestamps (a
 *   few ms either side), over the segment views recovery gives (as the log holds them), through
 *   mitata: seeks/s and the ratio to the scan's time.
 * - **bytes per seek**: the same seeks through a recording platform, summing the bytes asked of
 *   every `readAt` (mean and max over 1000 seeks), and the files opened per seek.
 *
 * Every seek's answer is checked against a binary search over the scanned timestamps. The page
 * cache is warm (the store was just written and scanned): the figures are CPU and syscalls, not
 * the disk. The temp store is removed at the end.
 *
 * Run alone: `npx tsx bench/seek.bench.ts [--quick|--smoke]` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { seekSuite } from "./seek.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await seekSuite(new Recorder());
 * ```
 * @module
 */
import { Store, SyncPolicy } from "../mod.ts";
import { defaultPlatform } from "../platform.ts";
import { recordingPlatform } from "../testing.ts";
import type { Platform } from "../src/platform/types.ts";
import { recoverLog } from "../src/recovery.ts";
import { readableEnd, type SegmentView } from "../src/segment_view.ts";
import { seqAtTime } from "../src/time_seek.ts";
import {
  freshDir,
  GiB,
  human,
  isMain,
  MiB,
  payload,
  QUICK,
  Recorder,
  removeDir,
  runThroughput,
  SMOKE,
  timeRuns,
} from "./harness.ts";

const TOTAL_BYTES = SMOKE ? 8 * MiB : QUICK ? 128 * MiB : GiB;
const TOTAL_LABEL = SMOKE ? "8MiB" : QUICK ? "128MiB" : "1GiB";
const RECORD_BYTES = 1024;
/** Records per `appendBatch` of the two stores. */
const FILL_BATCHES = [1000, 10];
const SCAN_RUNS = SMOKE ? 1 : 3;
/** Seeks whose bytes are counted. */
const COUNTED_SEEKS = 1000;
const LOG = "bench";
/** The store's segment size (the default) and buffer: recovery is given the same. */
const SEGMENT_BYTES = 64 * MiB;
const BUFFER_BYTES = 256 * 1024;

/** Fills a fresh store in `dir` with `records` 1 KiB records, `size` per batch, and closes it. */
async function fill(dir: string, records: number, size: number): Promise<void> {
  const batch = Array.from({ length: size }, () => payload(RECORD_BYTES));
  const store = await Store.open(dir, {
    syncPolicy: SyncPolicy.osManaged(),
    segmentBytes: SEGMENT_BYTES,
    bufferBytes: BUFFER_BYTES,
  });
  const log = await store.log(LOG);
  for (let done = 0; done < records; done += size) {
    await log.appendBatch(batch.slice(0, Math.min(size, records - done)));
  }
  await store.close();
}

/** One full checked scan; every record's timestamp lands in `stamps`. */
async function scan(dir: string, stamps: Float64Array): Promise<void> {
  const store = await Store.open(dir);
  try {
    let n = 0;
    for await (const r of (await store.log(LOG)).read({ from: 0 })) {
      if (r.seq !== n || r.data.length !== RECORD_BYTES) throw new Error(`scan: record ${n}`);
      stamps[n++] = r.timestamp;
    }
    if (n !== stamps.length) throw new Error(`scan: ${n} records, expected ${stamps.length}`);
  } finally {
    await store.close();
  }
}

/** First index whose timestamp is >= `time` (the records' timestamps never decrease). */
function expectedSeq(stamps: Float64Array, time: number): number {
  let lo = 0;
  let hi = stamps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (stamps[mid] >= time) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Runs the seek suite into `rec`.
 *
 * @example
 * ```ts
 * import { seekSuite } from "./seek.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await seekSuite(new Recorder());
 * ```
 */
export async function seekSuite(rec: Recorder): Promise<void> {
  for (const batch of FILL_BATCHES) await seekRows(rec, batch);
}

/** Fills a store in batches of `batch`, then measures its scan and seeks. */
async function seekRows(rec: Recorder, batch: number): Promise<void> {
  const records = Math.floor(TOTAL_BYTES / RECORD_BYTES);
  const dir = freshDir("seek");
  const platform = await defaultPlatform();
  let active: { close(): void } | null = null;
  try {
    console.log(`filling ${TOTAL_LABEL} of ${RECORD_BYTES} B records, batches of ${batch}...`);
    await fill(dir, records, batch);
    const stamps = new Float64Array(records);
    const scanned = await timeRuns(SCAN_RUNS, () => scan(dir, stamps));
    const r = await recoverLog(platform, `${dir}/${LOG}`, {
      bufferBytes: BUFFER_BYTES,
      maxRecordBytes: 16 * MiB,
      segmentBytes: SEGMENT_BYTES,
      repair: false,
    });
    active = r.active;
    const views: readonly SegmentView[] = r.segments;
    const end = r.active.flushedSeq;
    if (end !== records) throw new Error(`recovered ${end} records, wrote ${records}`);
    const first = stamps[0];
    const span = stamps[records - 1] - first + 10;
    let x = 12345;
    const randomTime = () => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return first - 5 + (x % span);
    };
    const seek = async (p: Platform) => {
      const time = randomTime();
      const seq = await seqAtTime(p, views, time, end);
      const want = expectedSeq(stamps, time);
      if (seq !== want) throw new Error(`seek to ${time}: seq ${seq}, expected ${want}`);
    };

    const recording = recordingPlatform(platform, { ignore: ["close"] });
    const bytes: number[] = [];
    let opens = 0;
    for (let i = 0; i < COUNTED_SEEKS; i++) {
      recording.clear();
      await seek(recording);
      opens += recording.count("open");
      bytes.push(recording.calls.reduce((n, c) => n + (c.op === "readAt" ? c.bytes ?? 0 : 0), 0));
    }
    const meanBytes = bytes.reduce((a, b) => a + b, 0) / bytes.length;
    const maxBytes = Math.max(...bytes);

    const label = `${TOTAL_LABEL} ${RECORD_BYTES}B batch${batch}`;
    const name = `seek by time random ${label}`;
    await runThroughput(
      "seek",
      [{
        name,
        recordBytes: RECORD_BYTES,
        setup: () => Promise.resolve({ call: () => seek(platform), teardown: () => {} }),
      }],
      rec,
      "seqAtTime(random time) vs a full scan",
    );
    const row = rec.get(name);
    const seekNs = row?.avgNs ?? NaN;
    const scanNs = scanned.medianNs;
    const storeBytes = views.reduce((n, v) => n + readableEnd(v), 0);
    if (row) {
      row.extra = {
        segments: views.length,
        meanBytesReadPerSeek: Math.round(meanBytes),
        maxBytesReadPerSeek: maxBytes,
        filesOpenedPerSeek: opens / COUNTED_SEEKS,
        fullScanNs: Math.round(scanNs),
        fullScanOverSeek: scanNs / seekNs,
        storeBytes,
      };
    }
    rec.add({
      suite: "seek",
      name: `full scan ${label}`,
      recordBytes: RECORD_BYTES,
      recordsPerSec: records / (scanNs / 1e9),
      mbPerSec: (records * RECORD_BYTES) / (scanNs / 1e3),
      avgNs: scanNs,
      samples: scanned.allNs.length,
      extra: { records, allNs: scanned.allNs.map(Math.round).join(",") },
    });
    console.log(
      `${name}: ${human(1e9 / seekNs)} seeks/s (${(seekNs / 1e3).toFixed(1)} µs); ` +
        `full scan ${(scanNs / 1e9).toFixed(2)} s: ${human(scanNs / seekNs)}x; ` +
        `read per seek: mean ${(meanBytes / 1024).toFixed(1)} KiB, max ${
          (maxBytes / 1024).toFixed(1)
        } KiB of ${(storeBytes / MiB).toFixed(0)} MiB, ${opens / COUNTED_SEEKS} files opened`,
    );
  } finally {
    active?.close();
    removeDir(dir);
  }
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await seekSuite(rec);
  for (const r of rec.rows) console.log(JSON.stringify(r));
}
