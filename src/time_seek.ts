/**
 * Seek by time: the sequence number of the first record with a timestamp at or after a given time,
 * found through what the segments already know instead of a scan of the log. Timestamps never
 * decrease along a log (the writer stamps each record with the larger of `Date.now()` and the last
 * timestamp), so each step is a binary search:
 *
 * 1. **Which segment**, in memory: the first whose last timestamp is at or after the time (a
 *    sealed segment's seal says it; version 1 seals hold the sealing time, no earlier than any of
 *    its records). The live segment, last, is the candidate when no sealed one is.
 * 2. **Which index interval**: the last sparse index entry whose key is before the time. A format
 *    version 2 entry carries the timestamp of the record before it, so this is in memory too; a
 *    version 1 entry has no timestamp, so its key is the (absolute) timestamp of the frame it
 *    points at, read and verified for each of the log2(entries) probes.
 * 3. **Which record**: a checked scan of that one interval (at most one index interval, ~64 KiB or
 *    one flush chunk, is read), through {@linkcode FrameScanner}.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { recoverLog } from "./recovery.ts";
 * import { seqAtTime } from "./time_seek.ts";
 * const sim = new SimPlatform();
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 1 << 20, repair: false };
 * const { active, segments } = await recoverLog(sim, "/events", opts);
 * const t = active.lastTimestamp + 1_000; // records are never older than their segment's start
 * [t, t, t + 1_000, t + 2_000].forEach((ts, seq) => active.append(seq, ts, new Uint8Array(8), true));
 * active.flush();
 * const at = (time: number) => seqAtTime(sim, segments, time, active.flushedSeq);
 * const got = [await at(0), await at(t), await at(t + 1), await at(t + 2_000), await at(t + 2_001)];
 * active.close();
 * if (got.join() !== "0,0,2,3,4") throw new Error(got.join());
 * ```
 * @module
 */
import { CorruptionError } from "./errors.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { FRAME_SEAL } from "./format/frame.ts";
import { FrameScanner, type ScanStep } from "./format/scanner.ts";
import { readableEnd, type SegmentView } from "./segment_view.ts";

/** Read buffer of a version 1 probe: one typical frame, grown by the scanner for a larger one. */
const PROBE_BYTES = 4096;

/**
 * Read step of the interval scan. It stops at its match, so small steps read about half an
 * interval on average instead of all of it (an interval is one flush chunk, 256 KiB by default,
 * when the writer flushes large batches); a larger frame grows the buffer to fit.
 */
const SCAN_STEP_BYTES = 16 * 1024;

/**
 * Sequence number of the first record with timestamp >= `time` (ms since the Unix epoch), or
 * `endSeq` if there is none below `endSeq`. `segments` are the log's views, oldest first (sealed
 * ones, then the live one); `endSeq` is one past the last record the caller may see (what bounds
 * a live segment's scan). Reads at most one index interval of one segment (plus, in version 1
 * segments, one frame per binary-search probe); a segment whose seal's time overstates its
 * records (a version 1 sealing time, an empty segment) costs one more such search in the next.
 *
 * The search relies on timestamps never decreasing along the log, which the writer guarantees.
 * Version 1 writers stamped plain `Date.now()`: in a v1 segment written while the clock stepped
 * back, the result may be a later record than a linear scan's first match (never one before
 * `time`).
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { recoverLog } from "./recovery.ts";
 * import { seqAtTime } from "./time_seek.ts";
 * const sim = new SimPlatform();
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 1 << 20, repair: false };
 * const { active, segments } = await recoverLog(sim, "/empty", opts);
 * const seq = await seqAtTime(sim, segments, Date.now(), active.flushedSeq);
 * active.close();
 * if (seq !== 0) throw new Error(`an empty log's end is 0, got ${seq}`);
 * ```
 */
export async function seqAtTime(
  platform: Platform,
  segments: readonly SegmentView[],
  time: number,
  endSeq: number,
): Promise<number> {
  let lo = 0;
  let hi = segments.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (mayReach(segments[mid], time)) hi = mid;
    else lo = mid + 1;
  }
  // Every record before segment `lo` is older than `time`: the first match is at or after it.
  for (let k = lo; k < segments.length && segments[k].firstSeq < endSeq; k++) {
    const seq = await seekInSegment(platform, segments[k], time, endSeq);
    if (seq !== null) return seq;
  }
  return endSeq;
}

/** False only if no record in or before `view` can have a timestamp >= `time`. */
function mayReach(view: SegmentView, time: number): boolean {
  return view.kind === "live" || view.lastTimestamp >= time;
}

/**
 * The first record of `view` with timestamp >= `time` (or `endSeq` if the scan reaches it first),
 * given that every record before the segment is older; `null` if the segment holds none.
 */
async function seekInSegment(
  platform: Platform,
  view: SegmentView,
  time: number,
  endSeq: number,
): Promise<number | null> {
  // Taken before the await: a live segment's index and end grow with its writer's flushes, always
  // together, so this pair is consistent.
  const limit = readableEnd(view);
  const entries = view.index.length;
  // Nothing flushed yet (a new segment's file may not even exist).
  if (limit <= view.dataStart) return null;
  const file = await platform.open(view.path, "read");
  try {
    const key = view.codec.version === 1
      ? (i: number) => v1TimestampAt(file, view, i, limit)
      : (i: number) => view.index.timestampAt(i);
    const i = Math.max(0, lastBelow(entries, key, time));
    const next = i + 1 < entries ? i + 1 : -1;
    const idx = view.index;
    // The record at entry `next` (v1), or the one just before it (v2), is at or after `time`:
    // the first match ends by `next`'s offset, and is entry `next`'s record if none came before.
    const scanner = new FrameScanner(file, view.codec, {
      start: entries === 0 ? view.dataStart : idx.offsetAt(i),
      limit: next < 0 ? limit : idx.offsetAt(next),
      seq: entries === 0 ? view.firstSeq : idx.seqAt(i),
      timestamp: entries === 0 ? 0 : idx.timestampAt(i),
      maxPayload: view.maxRecordBytes,
    }, SCAN_STEP_BYTES);
    for (;;) {
      const step = scanner.next();
      if (step.kind === "frame") {
        if (step.type === FRAME_SEAL) return null;
        if (step.seq >= endSeq) return endSeq;
        if (step.timestamp >= time) return step.seq;
        continue;
      }
      if (step.kind === "end") return next < 0 ? null : Math.min(idx.seqAt(next), endSeq);
      throw damage(view, step.offset, scanner.expectedSeq, step);
    }
  } finally {
    file.close();
  }
}

/** Index of the last entry `i < n` whose `key(i)` is before `time`, or -1 if there is none. */
function lastBelow(n: number, key: (i: number) => number, time: number): number {
  let lo = 0;
  let hi = n - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (key(mid) < time) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Timestamp of the record at index entry `i` of a version 1 segment: its frame, verified. */
function v1TimestampAt(file: PlatformFile, view: SegmentView, i: number, limit: number): number {
  const at = view.index.offsetAt(i);
  const seq = view.index.seqAt(i);
  const step = new FrameScanner(file, view.codec, {
    start: at,
    limit,
    seq,
    timestamp: 0,
    maxPayload: view.maxRecordBytes,
  }, PROBE_BYTES).next();
  if (step.kind === "frame" && step.type !== FRAME_SEAL) return step.timestamp;
  throw damage(view, at, seq, step);
}

/** The error for a frame where `view`'s index or scan expects a record. */
function damage(view: SegmentView, offset: number, seq: number, step: ScanStep): CorruptionError {
  const message = step.kind === "bad"
    ? step.reason
    : step.kind === "frame"
    ? "sparse index entry points at the seal"
    : "truncated frame";
  return new CorruptionError({ message, path: view.path, offset, seq });
}
