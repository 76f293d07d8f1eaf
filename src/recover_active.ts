/**
 * Recovering the newest segment of a log. Format v2: start at the durable mark (the newer valid
 * mark slot), trust what is before it, scan what follows, and end the log at the last complete
 * batch: whatever is invalid after the mark was never known to be durable, so it is a torn tail,
 * and an incomplete batch is dropped whole. Zeros after the end are preallocated space, kept and
 * not reported. A version 1 newest segment is recovered by the v1 torn-tail rule
 * (`./torn_tail.ts`), then sealed, so that the log goes on in a v2 segment. The rules are in
 * RECOVERY.md.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { recoverActive } from "./recover_active.ts";
 * import { LogIdCheck } from "./open_context.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * sim.setFileBytes("/l/00000000000000000000.seg", new Uint8Array(0)); // created, header lost
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4096, repair: false };
 * const report = { segments: 0, truncatedBytes: 0, truncatedAt: null, tornHole: false,
 *   recreatedSegment: null, repaired: [], skippedSeqs: null };
 * const ctx = { opts, report, ids: new LogIdCheck(), prev: null };
 * const r = await recoverActive(sim, "/l/00000000000000000000.seg", 0, ctx);
 * if (r.kind !== "active" || report.recreatedSegment === null) throw new Error(r.kind);
 * r.active.close();
 * ```
 * @module
 */
import { CorruptionError } from "./errors.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { codecFor, type FrameCodec } from "./format/codec.ts";
import { FRAME_RECORD, FRAME_SEAL } from "./format/frame.ts";
import {
  decodeHeader,
  HEADER_BYTES,
  INDEX_ENTRY_BYTES,
  seedOf,
  type SegmentHeader,
} from "./format/header.ts";
import { INDEX_INTERVAL_BYTES } from "./format/limits.ts";
import {
  checkMark,
  decodeEntry,
  type Mark,
  readFileMark,
  SLOT_BYTES,
  slotOffset,
} from "./format/mark.ts";
import { FrameScanner } from "./format/scanner.ts";
import { decodeSealPayload } from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";
import {
  decodeSealPayload as decodeSealPayloadV1,
  encodeSealFrame as encodeSealFrameV1,
} from "./format/v1/seal.ts";
import { type NewestContext, type NewestResult, readHeader } from "./open_context.ts";
import { Segment, type SegmentStart } from "./segment.ts";
import type { SealedSegment } from "./segment_view.ts";
import { isZeroRange, judgeTail } from "./torn_tail.ts";

/** The newest segment recovered, or the damage found (`final`: never repaired). */
export type ActiveResult =
  | NewestResult
  | { kind: "damage"; damage: CorruptionError; final: boolean };

/**
 * Recovers the newest segment file `path` (first seq `firstSeq`): the writable segment, a sealed
 * one (a crash at rollover, or a v1 segment sealed now), or damage.
 */
export async function recoverActive(
  platform: Platform,
  path: string,
  firstSeq: number,
  ctx: NewestContext,
): Promise<ActiveResult> {
  const file = await platform.open(path, "append");
  let keep = false;
  try {
    const size = file.size();
    const h = decodeHeader(readHeader(file));
    if (!h.ok || h.header.firstSeq !== firstSeq) {
      // A header that never reached the disk: a short file, zeros (size grew, data lost), or a
      // header torn into garbage with nothing after it. The header is synced before anything
      // else is written, so a bad header followed by nothing but zeros holds no record.
      // A well-formed header of another format version is never "torn": refuse, don't downgrade.
      const foreign = !h.ok && h.foreignVersion !== undefined;
      if (!foreign && (size < HEADER_BYTES || isZeroRange(file, HEADER_BYTES, size))) {
        const active = await Segment.rewriteEmpty(
          platform,
          file,
          startAfter(firstSeq, ctx),
          ctx.opts,
        );
        ctx.report.recreatedSegment = path;
        keep = true;
        return { kind: "active", active };
      }
      const reason = h.ok ? "header first seq does not match the file name" : h.reason;
      const damage = new CorruptionError({ message: `segment header: ${reason}`, path, offset: 0 });
      return { kind: "damage", damage, final: foreign };
    }
    const foreign = ctx.ids.check(h.header, path);
    if (foreign) return { kind: "damage", damage: foreign, final: false };
    const r = h.header.version === 1
      ? await recoverV1(platform, file, size, h.header, ctx)
      : await recoverV2(platform, file, size, h.header, ctx);
    keep = r.kind === "active";
    return r;
  } finally {
    if (!keep) file.close();
  }
}

/** Where a new segment at `firstSeq` starts, after the previous one. */
function startAfter(firstSeq: number, ctx: NewestContext): SegmentStart {
  return {
    firstSeq,
    prevEndSeq: Math.min(firstSeq, ctx.prev?.endSeq ?? firstSeq),
    baseTimestamp: Math.max(Date.now(), ctx.prev?.lastTimestamp ?? 0),
    log: ctx.ids.identity(),
  };
}

/** The last complete batch seen by a scan: where the log may end. */
interface BatchEnd {
  end: number;
  nextSeq: number;
  lastTimestamp: number;
}

/** Recovers a newest segment of one format version, its file open and its header decoded. */
type VersionRecovery = (
  platform: Platform,
  file: PlatformFile,
  size: number,
  header: SegmentHeader,
  ctx: NewestContext,
) => Promise<ActiveResult>;

const recoverV2: VersionRecovery = async (platform, file, size, header, ctx) => {
  const path = file.path;
  const firstSeq = header.firstSeq;
  const seed = seedOf(header.logId!, firstSeq);
  const damage = (message: string, offset: number, seq?: number): ActiveResult => ({
    kind: "damage",
    damage: new CorruptionError({ message, path, offset, seq }),
    final: false,
  });
  const found = readFileMark(file, seed);
  if (found) {
    const problem = checkMark(found, { ...header, fileSize: size });
    if (problem) return damage(problem, slotOffset(found.generation));
  }
  const mark: Mark = found ?? {
    generation: 0,
    durableEnd: header.dataStart,
    nextSeq: firstSeq,
    lastTimestamp: header.baseTimestamp,
    storedEntries: 0,
  };
  const index = readStoredIndex(file, header, mark, seed);
  if (typeof index === "string") return damage(index, HEADER_BYTES + 2 * SLOT_BYTES);
  const codec = codecFor(header);
  const scanner = new FrameScanner(file, codec, {
    start: mark.durableEnd,
    limit: size,
    seq: mark.nextSeq,
    timestamp: mark.lastTimestamp,
    maxPayload: header.maxRecordBytes,
  });
  let last: BatchEnd = {
    end: mark.durableEnd,
    nextSeq: mark.nextSeq,
    lastTimestamp: mark.lastTimestamp,
  };
  let prevTimestamp = mark.lastTimestamp;
  let seal: { end: number; view: SealedSegment } | null = null;
  for (let step = scanner.next(); step.kind === "frame"; step = scanner.next()) {
    if (step.type === FRAME_SEAL) {
      // A seal directly after a complete batch ends the segment; anything else ends the scan.
      if (step.offset !== last.end) break;
      const s = decodeSealPayload(step.payload, step.frameBytes, {
        firstSeq,
        endSeq: step.seq,
        sealAt: step.offset,
        dataStart: header.dataStart,
        baseTimestamp: header.baseTimestamp,
      });
      if (typeof s === "string") break;
      const end = step.offset + step.frameBytes;
      seal = {
        end,
        view: {
          kind: "sealed",
          firstSeq,
          path,
          endSeq: step.seq,
          index: s.index,
          bytes: end,
          maxRecordBytes: header.maxRecordBytes,
          codec,
          dataStart: header.dataStart,
          firstTimestamp: s.firstTimestamp,
          lastTimestamp: s.lastTimestamp,
        },
      };
      break;
    }
    if (step.offset - index.lastOffset >= INDEX_INTERVAL_BYTES) {
      index.push(step.seq, step.offset, prevTimestamp);
    }
    prevTimestamp = step.timestamp;
    if (step.type === FRAME_RECORD) {
      last = {
        end: step.offset + step.frameBytes,
        nextSeq: step.seq + 1,
        lastTimestamp: step.timestamp,
      };
    }
  }
  // The seal will need the first record's timestamp; read it (and refuse damage in it) before
  // anything is cut, so a refused open changes no byte.
  let firstTimestamp: number | null = null;
  if (!seal && last.nextSeq > firstSeq) {
    const first = new FrameScanner(file, codec, {
      start: header.dataStart,
      limit: last.end,
      seq: firstSeq,
      timestamp: header.baseTimestamp,
      maxPayload: header.maxRecordBytes,
    }).next();
    if (first.kind !== "frame") {
      const why = first.kind === "bad" ? first.reason : "truncated frame";
      return damage(`first record: ${why}`, header.dataStart, firstSeq);
    }
    firstTimestamp = first.timestamp;
  }
  const end = seal ? seal.end : last.end;
  let kept = index.length;
  while (kept > 1 && index.offsetAt(kept - 1) >= last.end) kept--;
  index.truncate(kept);
  const torn = !isZeroRange(file, end, size);
  if (torn) {
    // A torn tail: bytes after the mark that never formed a complete batch.
    ctx.report.truncatedBytes = size - end;
    ctx.report.truncatedAt = { path, offset: end };
  }
  // Cut a torn tail, so that no stale frame lies in space later writes overwrite; and a sealed
  // file ends at its seal (its trailer is the file's last bytes), so its zeros go too.
  if (size > end && (torn || seal)) file.truncate(end);
  await file.datasync();
  if (seal) return { kind: "sealed", view: seal.view };
  if (firstTimestamp === null && header.maxRecordBytes < ctx.opts.maxRecordBytes) {
    // An empty segment whose header caps records below the current maxRecordBytes gets the new
    // cap (a non-empty one is rolled over by the log when a record needs it).
    const start = { firstSeq, prevEndSeq: header.prevEndSeq, baseTimestamp: header.baseTimestamp };
    return {
      kind: "active",
      active: await Segment.rewriteEmpty(
        platform,
        file,
        { ...start, log: ctx.ids.identity() },
        ctx.opts,
      ),
    };
  }
  return {
    kind: "active",
    active: Segment.recovered({
      platform,
      file,
      start: {
        firstSeq,
        prevEndSeq: header.prevEndSeq,
        baseTimestamp: header.baseTimestamp,
        log: ctx.ids.identity(),
      },
      indexCapacity: header.indexCapacity,
      // The segment keeps the cap its header was written with, whatever the current option says.
      options: { ...ctx.opts, maxRecordBytes: header.maxRecordBytes },
      flushedBytes: last.end,
      nextSeq: last.nextSeq,
      firstTimestamp,
      lastTimestamp: last.lastTimestamp,
      index,
      persistedEntries: 1 + mark.storedEntries,
      mark: { generation: mark.generation, end: mark.durableEnd },
    }),
  };
};

/**
 * The index entries the mark vouches for: entry 0 (implied), then the stored ones, which must be
 * valid, ascending and before the mark. Returns the index, or why the stored entries are damaged.
 * Also what a read-only store starts a live segment's index from (`./log_tail.ts`).
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { decodeHeader, encodeHeader, newLogId } from "./format/header.ts";
 * import { readStoredIndex } from "./recover_active.ts";
 * const bytes = encodeHeader({ firstSeq: 5, maxRecordBytes: 1024, logId: newLogId(),
 *   prevEndSeq: 5, baseTimestamp: 0, indexCapacity: 0 });
 * const h = decodeHeader(bytes);
 * if (!h.ok) throw new Error(h.reason);
 * const file = await new SimPlatform().open("/s", "createExclusive");
 * const mark = { generation: 0, durableEnd: 160, nextSeq: 5, lastTimestamp: 0, storedEntries: 0 };
 * const index = readStoredIndex(file, h.header, mark, 0);
 * if (typeof index === "string" || index.seqAt(0) !== 5) throw new Error("entry 0 is implied");
 * ```
 */
export function readStoredIndex(
  file: PlatformFile,
  header: SegmentHeader,
  mark: Mark,
  seed: number,
): SparseIndex | string {
  const index = new SparseIndex(mark.storedEntries + 1);
  index.push(header.firstSeq, header.dataStart, header.baseTimestamp);
  if (mark.storedEntries === 0) return index;
  const bytes = new Uint8Array(mark.storedEntries * INDEX_ENTRY_BYTES);
  file.readAt(bytes, HEADER_BYTES + 2 * SLOT_BYTES);
  let prev = { seq: header.firstSeq, offset: header.dataStart, ts: header.baseTimestamp };
  for (let i = 0; i < mark.storedEntries; i++) {
    const e = decodeEntry(bytes, i * INDEX_ENTRY_BYTES, seed);
    if (
      !e || !(e.seq > prev.seq && e.seq < mark.nextSeq && e.offset > prev.offset &&
        e.offset < mark.durableEnd && e.prevTimestamp >= prev.ts &&
        e.prevTimestamp <= mark.lastTimestamp)
    ) {
      return `stored index entry ${i + 1} is damaged or out of order`;
    }
    index.push(e.seq, e.offset, e.prevTimestamp);
    prev = { seq: e.seq, offset: e.offset, ts: e.prevTimestamp };
  }
  return index;
}

/**
 * A version 1 newest segment: the v1 rules keep its whole frames and cut a torn tail (or report
 * damage); then a segment with records is sealed (v1 seal) so that the log continues in v2, and an
 * empty one is rewritten as an empty v2 segment.
 */
const recoverV1: VersionRecovery = async (platform, file, size, header, ctx) => {
  const path = file.path;
  const firstSeq = header.firstSeq;
  const max = header.maxRecordBytes;
  const codec: FrameCodec = codecFor(header);
  const scanner = new FrameScanner(file, codec, {
    start: header.dataStart,
    limit: size,
    seq: firstSeq,
    timestamp: 0,
    maxPayload: max,
  });
  const index = new SparseIndex();
  let step = scanner.next();
  let seal: { seq: number; end: number; index: SparseIndex; timestamp: number } | null = null;
  let lastTimestamp = ctx.prev?.lastTimestamp ?? 0;
  for (; step.kind === "frame"; step = scanner.next()) {
    if (step.type === FRAME_SEAL) {
      const idx = decodeSealPayloadV1(step.payload, step.frameBytes, {
        firstSeq,
        endSeq: step.seq,
        sealAt: step.offset,
      });
      if (typeof idx === "string") {
        step = { kind: "bad", offset: step.offset, reason: idx };
        break;
      }
      seal = {
        seq: step.seq,
        end: step.offset + step.frameBytes,
        index: idx,
        timestamp: step.timestamp,
      };
      step = scanner.next();
      break;
    }
    const lastOffset = index.lastOffset;
    if (lastOffset < 0 || step.offset - lastOffset >= INDEX_INTERVAL_BYTES) {
      index.push(step.seq, step.offset);
    }
    lastTimestamp = Math.max(lastTimestamp, step.timestamp);
  }
  const validEnd = seal ? seal.end : step.offset;
  const nextSeq = seal ? seal.seq : scanner.expectedSeq;
  if (step.kind !== "end") {
    // Anything after a seal is a torn tail: the next segment was never created.
    const verdict = seal
      ? { kind: "torn" as const }
      : judgeTail(file, validEnd, size, nextSeq, max);
    if (verdict.kind === "damage") {
      const reason = step.kind === "bad" ? step.reason : "truncated frame";
      const damage = new CorruptionError({
        message: `${reason}, followed by ${verdict.followedBy}`,
        path,
        offset: validEnd,
        seq: nextSeq,
      });
      return { kind: "damage", damage, final: false };
    }
    file.truncate(validEnd);
    ctx.report.truncatedBytes = size - validEnd;
    ctx.report.truncatedAt = { path, offset: validEnd };
    ctx.report.tornHole = verdict.kind === "hole";
  }
  if (!seal && nextSeq === firstSeq) {
    return {
      kind: "active",
      active: await Segment.rewriteEmpty(platform, file, startAfter(firstSeq, ctx), ctx.opts),
    };
  }
  let bytes = validEnd;
  const sealTime = seal?.timestamp ?? Math.max(Date.now(), lastTimestamp);
  if (!seal) {
    // Sealed now, in its own version, so that it never changes again and the log goes on in v2.
    const frame = encodeSealFrameV1(nextSeq, sealTime, index);
    file.writeAt(frame, validEnd);
    bytes += frame.length;
  }
  await file.datasync();
  return {
    kind: "sealed",
    view: {
      kind: "sealed",
      firstSeq,
      path,
      endSeq: nextSeq,
      index: seal?.index ?? index,
      bytes,
      maxRecordBytes: max,
      codec,
      dataStart: header.dataStart,
      firstTimestamp: 0,
      lastTimestamp: sealTime,
    },
  };
};
