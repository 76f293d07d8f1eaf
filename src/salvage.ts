/**
 * Finding every intact record of a damaged version-2 segment, each at its own sequence number.
 *
 * A frame does not store its seq: the seq follows from its position, counted from a place whose
 * seq is known. Such places are **anchors**: the segment's first frame (its header), every index
 * entry (the seal's, or the stored ones the mark vouches for), the mark itself and the seal. A scan
 * starts at an anchor and goes until a frame fails. From there, the next anchor after the damage
 * fixes the seqs again: the first offset after the damage whose chain of frames (each one's length
 * leads to the next) lands exactly on that anchor, every frame's CRC valid with the seq it gets by
 * counting back from the anchor, is where intact records start again (**resync**). The timestamps
 * come back the same way: the anchor knows the timestamp before it, and the deltas on the chain
 * count back from it. So the records after the damage keep their seqs, data and timestamps, and
 * only the frames the damaged bytes touch are lost. The rules are in RECOVERY.md ("Repair mode").
 *
 * Memory: the scan's 256 KiB buffer, and for a resync the bytes from the damage to the next
 * anchor (index entries are at most 64 KiB plus one write-buffer flush apart, or one record).
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { crc32 } from "./format/checksum.ts";
 * import { encodeFrame, FRAME_RECORD } from "./format/frame.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./format/header.ts";
 * import { salvageSegment } from "./salvage.ts";
 * const logId = newLogId();
 * const bytes = encodeHeader({ firstSeq: 0, maxRecordBytes: 1024, logId, prevEndSeq: 0,
 *   baseTimestamp: 0, indexCapacity: 0 });
 * const h = decodeHeader(bytes);
 * if (!h.ok) throw new Error(h.reason);
 * const frames = [0, 1, 2, 3].map((seq) =>
 *   encodeFrame(FRAME_RECORD, crc32(logId), seq, 0, new Uint8Array(20).fill(seq)));
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * file.writev([bytes, new Uint8Array(80), ...frames]);
 * const end = file.size();
 * file.writeAt(new Uint8Array([0xff]), 160 + 27 + 10); // a byte of record 1's payload
 * // Mark at the end of the data (seq 4): it anchors the records after the damage.
 * const mark = { offset: end, seq: 4, prevTimestamp: 0 };
 * const s = salvageSegment(file, h.header, { kind: "open", limit: end, mark, trusted: end }, []);
 * const kept = s.runs.map((r) => `${r.firstSeq}-${r.endSeq}`).join();
 * if (kept !== "0-1,2-4" || s.damage[0].fromSeq !== 1) throw new Error(kept);
 * ```
 * @module
 */
import type { PlatformFile } from "./platform/types.ts";
import { codecFor, endsBatch } from "./format/codec.ts";
import { crc32 } from "./format/checksum.ts";
import { decodeFrame, FRAME_SEAL, peekFrame } from "./format/frame.ts";
import type { SegmentHeader } from "./format/header.ts";
import { INDEX_INTERVAL_BYTES } from "./format/limits.ts";
import { FrameScanner } from "./format/scanner.ts";
import { isZeroRange } from "./torn_tail.ts";

/** A frame start whose seq, and the timestamp of the record before it, are known. */
export interface Anchor {
  /** Byte offset of the frame. */
  offset: number;
  /** Its sequence number. */
  seq: number;
  /** Timestamp of the record before it (the header's base timestamp for the first). */
  prevTimestamp: number;
}

/**
 * How a segment ends. **seal**: a valid seal at `at` (its seq and last timestamp are an anchor);
 * every frame before it must be whole. **open**: no valid seal; `mark` is the mark's anchor (null
 * if there is no usable mark). Frames before `trusted` were durable and are kept whole, even a
 * batch the damage cut; past it (a newest segment's data after its mark) only whole batches
 * count, and a frame that fails there is a torn tail, not damage.
 */
export type SegmentEnd =
  | { kind: "seal"; at: number; seq: number; lastTimestamp: number }
  | { kind: "open"; limit: number; mark: Anchor | null; trusted: number };

/** An index entry of a run, at its offset in the damaged file. */
export interface RunEntry {
  /** Sequence number of the frame. */
  seq: number;
  /** Its offset in the damaged file. */
  offset: number;
  /** Timestamp of the record before it. */
  prevTimestamp: number;
}

/** Consecutive intact records: the bytes `[start, end)` of the damaged file. */
export interface Run {
  /** Offset of its first frame. */
  start: number;
  /** End of its last frame. */
  end: number;
  /** Seq of its first record. */
  firstSeq: number;
  /** One past its last record. */
  endSeq: number;
  /** Timestamp of the record before its first (what its first frame's delta counts from). */
  prevTimestamp: number;
  /** Timestamp of its first record. */
  firstTimestamp: number;
  /** Timestamp of its last record. */
  lastTimestamp: number;
  /** Offset of its last frame. */
  lastOffset: number;
  /** Type of its last frame: a batch the damage cut ends with a "more follows" frame. */
  lastType: number;
  /** The 64 KiB index entries after its first frame. */
  index: RunEntry[];
}

/** Bytes no intact record could be read from. */
export interface DamagedRange {
  /** First damaged byte: the start of the frame that failed. */
  offset: number;
  /** Where intact frames start again (the segment's end if they never do). */
  end: number;
  /** Seq of the record that failed. */
  fromSeq: number;
  /** Seq of the first record after the damage (null: unknown, no anchor after it). */
  toSeq: number | null;
  /** Why the frame failed. */
  reason: string;
}

/** What {@linkcode salvageSegment} found. */
export interface Salvage {
  /** Intact runs, in order; consecutive runs are separated by a damaged range. */
  runs: Run[];
  /** The damaged ranges, in order. */
  damage: DamagedRange[];
}

/** A run being scanned, and the last batch end in it (where an open segment's data may end). */
class RunBuilder {
  run: Run;
  #batch: { end: number; endSeq: number; lastTimestamp: number; lastOffset: number; n: number };

  constructor(at: Anchor) {
    this.run = {
      start: at.offset,
      end: at.offset,
      firstSeq: at.seq,
      endSeq: at.seq,
      prevTimestamp: at.prevTimestamp,
      firstTimestamp: at.prevTimestamp,
      lastTimestamp: at.prevTimestamp,
      lastOffset: at.offset,
      lastType: 0,
      index: [],
    };
    this.#batch = {
      end: at.offset,
      endSeq: at.seq,
      lastTimestamp: at.prevTimestamp,
      lastOffset: 0,
      n: 0,
    };
  }

  add(type: number, offset: number, frameBytes: number, seq: number, timestamp: number): void {
    const r = this.run;
    const lastIndexed = r.index.length > 0 ? r.index[r.index.length - 1].offset : r.start;
    if (offset - lastIndexed >= INDEX_INTERVAL_BYTES) {
      r.index.push({ seq, offset, prevTimestamp: r.lastTimestamp });
    }
    if (r.endSeq === r.firstSeq) r.firstTimestamp = timestamp;
    r.end = offset + frameBytes;
    r.endSeq = seq + 1;
    r.lastTimestamp = timestamp;
    r.lastOffset = offset;
    r.lastType = type;
    if (endsBatch(type)) {
      this.#batch = {
        end: r.end,
        endSeq: r.endSeq,
        lastTimestamp: timestamp,
        lastOffset: offset,
        n: r.index.length,
      };
    }
  }

  /** Drops the frames after the last whole batch. */
  toBatchEnd(): void {
    const r = this.run;
    const b = this.#batch;
    if (r.end === b.end) return;
    r.end = b.end;
    r.endSeq = b.endSeq;
    r.lastTimestamp = b.lastTimestamp;
    r.lastOffset = b.lastOffset;
    r.lastType = b.end === r.start ? 0 : 1;
    r.index.length = b.n;
  }

  get empty(): boolean {
    return this.run.endSeq === this.run.firstSeq;
  }
}

/**
 * The intact runs and damaged ranges of the v2 segment in `file` (header `header`): scanned from
 * its first frame, resynced after each damage at the next of `anchors` (index entries, in any
 * order) or of the end's anchor. A segment with no damage is one run (or none, if it is empty).
 */
export function salvageSegment(
  file: PlatformFile,
  header: SegmentHeader,
  end: SegmentEnd,
  anchors: readonly Anchor[],
): Salvage {
  const codec = codecFor(header);
  const limit = end.kind === "seal" ? end.at : end.limit;
  const endAnchor: Anchor | null = end.kind === "seal"
    ? { offset: end.at, seq: end.seq, prevTimestamp: end.lastTimestamp }
    : end.mark;
  const sorted = [...anchors, ...(endAnchor ? [endAnchor] : [])]
    .filter((a) => a.offset > header.dataStart && a.offset <= limit)
    .sort((a, b) => a.offset - b.offset);
  const trusted = end.kind === "seal" ? limit : end.trusted;
  const runs: Run[] = [];
  const damage: DamagedRange[] = [];
  let at: Anchor = {
    offset: header.dataStart,
    seq: header.firstSeq,
    prevTimestamp: header.baseTimestamp,
  };
  for (;;) {
    const b = new RunBuilder(at);
    const scanner = new FrameScanner(file, codec, {
      start: at.offset,
      limit,
      seq: at.seq,
      timestamp: at.prevTimestamp,
      maxPayload: header.maxRecordBytes,
    });
    let step = scanner.next();
    for (; step.kind === "frame"; step = scanner.next()) {
      // A seal is the segment's end, never inside its data; an open segment's scan stops at one
      // (a seal after its last batch: the segment was sealed by a crash at rollover).
      if (step.type === FRAME_SEAL) break;
      b.add(step.type, step.offset, step.frameBytes, step.seq, step.timestamp);
    }
    const failedAt = step.offset;
    const next = sorted.find((a) => a.offset > failedAt);
    // Zeros to the end, with no anchor in them: space never written, not damage.
    const unwritten = !next && step.kind !== "end" && isZeroRange(file, failedAt, limit);
    if (step.kind === "end" || failedAt >= trusted || unwritten) {
      if (failedAt > trusted) b.toBatchEnd();
      if (!b.empty) runs.push(b.run);
      return { runs, damage };
    }
    if (!b.empty) runs.push(b.run);
    const reason = step.kind === "bad"
      ? step.reason
      : step.kind === "short"
      ? "truncated frame"
      : "a seal inside the data";
    if (!next) {
      damage.push({
        offset: failedAt,
        end: limit,
        fromSeq: scanner.expectedSeq,
        toSeq: null,
        reason,
      });
      return { runs, damage };
    }
    const lastGood = b.empty ? at.prevTimestamp : b.run.lastTimestamp;
    at = resync(file, header, failedAt, scanner.expectedSeq, lastGood, next);
    damage.push({
      offset: failedAt,
      end: at.offset,
      fromSeq: scanner.expectedSeq,
      toSeq: at.seq,
      reason,
    });
  }
}

/**
 * The first offset after `failedAt` (the frame of seq `failedSeq` failed there) from which whole
 * frames, their CRCs valid, lead exactly to `anchor`; `anchor` itself if none does. Each offset is
 * walked once: a chain that fails marks every offset on it dead, one that reaches the anchor marks
 * them live with their distance (frames and summed deltas) to it.
 */
function resync(
  file: PlatformFile,
  header: SegmentHeader,
  failedAt: number,
  failedSeq: number,
  minTimestamp: number,
  anchor: Anchor,
): Anchor {
  const w = anchor.offset - failedAt;
  const buf = new Uint8Array(w);
  file.readAt(buf, failedAt);
  const idCrc = crc32(header.logId!);
  const max = header.maxRecordBytes;
  const DEAD = -1, LIVE = 1;
  const state = new Int8Array(w + 1);
  // For a live offset: frames from it to the anchor, and the sum of their deltas.
  const frames = new Map<number, number>([[w, 0]]);
  const deltas = new Map<number, number>([[w, 0]]);
  state[w] = LIVE;
  const found = (o: number): Anchor => ({
    offset: failedAt + o,
    seq: anchor.seq - frames.get(o)!,
    prevTimestamp: anchor.prevTimestamp - deltas.get(o)!,
  });
  const path: number[] = [];
  const pathDeltas: number[] = [];
  for (let o = 1; o < w; o++) {
    if (state[o] === LIVE) return found(o);
    if (state[o] === DEAD) continue;
    path.length = 0;
    pathDeltas.length = 0;
    let p = o;
    while (p < w && state[p] === 0) {
      const f = peekFrame(buf, p, w, max);
      if (f.status !== "ok" || f.type === FRAME_SEAL || p + f.frameBytes > w) break;
      path.push(p);
      pathDeltas.push(f.delta);
      p += f.frameBytes;
    }
    let i = path.length - 1;
    if (p <= w && state[p] === LIVE) {
      let n = frames.get(p)!;
      let d = deltas.get(p)!;
      for (; i >= 0; i--) {
        n++;
        d += pathDeltas[i];
        const seq = anchor.seq - n;
        const prev = anchor.prevTimestamp - d;
        // Past the failed record, and no timestamp before the last intact one: else not a frame.
        if (seq <= failedSeq || prev < minTimestamp) break;
        if (decodeFrame(buf, path[i], w, idCrc, seq, prev, max).status !== "ok") break;
        state[path[i]] = LIVE;
        frames.set(path[i], n);
        deltas.set(path[i], d);
      }
    } else if (p < w) {
      state[p] = DEAD;
    }
    for (; i >= 0; i--) state[path[i]] = DEAD;
    if (state[o] === LIVE) return found(o);
  }
  return anchor;
}
