/**
 * Verifying one segment file for `verify` (`./verify.ts` walks the log): its header (version, log
 * id, first seq = file name), then every frame through `./verify_walk.ts`, checked against what the
 * segment says of itself.
 *
 * - **A sealed segment** (every one but the newest): its seal and its chain to the next segment
 *   through `checkSealed`, as an open checks them; then its frames must hold exactly
 *   `[firstSeq, endSeq)`, end at the seal with a complete batch, start and end with the seal's
 *   timestamps, and every seal index entry must name a frame start with its seq and previous
 *   timestamp. A broken chain (a deleted or misplaced neighbour) leaves those checks to the seal
 *   itself (`readSeal`); with a damaged seal, the frames are still read, to the first that does
 *   not decode or a seal, and counted.
 * - **The newest segment**: its mark must fit the file, its stored index entries must be valid and
 *   name frame starts, and every frame before the mark must decode (an fdatasync covered them).
 *   After the mark the segment ends at its last complete batch, and whatever follows is no
 *   problem: a batch being written, preallocated zeros, or a torn tail a writer's crash left
 *   (recovery cuts it). A newest segment whose header is not written yet (short, or zeros after a
 *   torn header) is being created, or is what recovery recreates: no problem either. A version-1
 *   newest segment (no mark) is judged as recovery judges it: an invalid frame with no valid frame
 *   after it is a torn tail.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { LogIdCheck } from "./open_context.ts";
 * import { verifyNewestSegment } from "./verify_segment.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim });
 * await (await store.log("l")).appendBatch(["a", "b"]);
 * await store.close();
 * const path = "/s/l/00000000000000000000.seg";
 * const v = await verifyNewestSegment(sim, path, 0, new LogIdCheck(), () => Promise.resolve());
 * if (v.records !== 2 || v.endSeq !== 2 || v.problems.length !== 0) throw new Error();
 * ```
 * @module
 */
import { CorruptionError } from "./errors.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { checkSealed, readSeal } from "./check_sealed.ts";
import { readU32 } from "./format/bytes.ts";
import { codecFor } from "./format/codec.ts";
import {
  decodeHeader,
  HEADER_BYTES,
  INDEX_AREA_START,
  seedOf,
  type SegmentHeader,
} from "./format/header.ts";
import { checkMark, entryOffset, readFileMark, slotOffset } from "./format/mark.ts";
import { decodeSealPayload } from "./format/seal.ts";
import type { SparseIndex } from "./format/sparse_index.ts";
import { decodeSealPayload as decodeSealPayloadV1 } from "./format/v1/seal.ts";
import { type LogIdCheck, readHeader } from "./open_context.ts";
import { readStoredIndex } from "./recover_active.ts";
import { isZeroRange, judgeTail } from "./torn_tail.ts";
import {
  type FramePoint,
  type IndexPoint,
  type Pause,
  type Walk,
  walkFrames,
  type WalkPlan,
} from "./verify_walk.ts";

/** One thing `verify` found wrong: the file, where in it, the seq concerned, and what. */
export interface VerifyProblem {
  /** The file. */
  path: string;
  /** Byte offset in it. */
  offset: number;
  /** The sequence number concerned, when there is one. */
  seq: number | null;
  /** What is wrong. */
  reason: string;
}

/** What verifying one segment found. */
export interface SegmentVerdict {
  /** Records found in it (in complete batches). */
  records: number;
  /**
   * One past its last record: its seal's end, or the end of the last complete batch its frames
   * were read to (its first seq if none).
   */
  endSeq: number;
  /** Its header, if it is valid and the log's. */
  header: SegmentHeader | null;
  /** The damage found, in file order. */
  problems: VerifyProblem[];
}

/**
 * Verifies the sealed segment `path` (first seq `firstSeq`, named by its file) and its chain to
 * `next`, the segment after it. `ids` holds the log id the segments before it carry.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { LogIdCheck } from "./open_context.ts";
 * import { verifySealedSegment } from "./verify_segment.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim });
 * const log = await store.log("l");
 * await log.appendBatch(["a", "b", "c"]);
 * await log.roll();
 * await store.close();
 * const path = "/s/l/00000000000000000000.seg";
 * const next = { path: "/s/l/00000000000000000003.seg", firstSeq: 3 };
 * const bytes = sim.fileBytes(path)!;
 * bytes[bytes.length - 30] ^= 1; // a flipped bit in the seal
 * sim.setFileBytes(path, bytes);
 * const v = await verifySealedSegment(sim, path, 0, next, new LogIdCheck(), () => Promise.resolve());
 * if (v.records !== 3 || v.problems.length !== 1) throw new Error(JSON.stringify(v.problems));
 * ```
 */
export async function verifySealedSegment(
  platform: Platform,
  path: string,
  firstSeq: number,
  next: { path: string; firstSeq: number },
  ids: LogIdCheck,
  pause: Pause,
): Promise<SegmentVerdict> {
  const checked = await checkSealed(platform, path, firstSeq, next, ids);
  const problems: VerifyProblem[] = [];
  if (checked instanceof CorruptionError) problems.push(problemOf(checked, path));
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const h = decodeHeader(readHeader(file));
    // checkSealed refused this header (and said why): nothing tells how to read the frames.
    if (!h.ok || h.header.firstSeq !== firstSeq || ids.check(h.header, path)) {
      return { records: 0, endSeq: firstSeq, header: null, problems };
    }
    const header = h.header;
    const add = (w: Walk) => problems.push(...w.problems.map((p) => ({ path, ...p })));
    // Refused for its chain alone, a v2 segment's seal still stands by itself.
    let sealed = checked instanceof CorruptionError ? null : checked;
    if (!sealed && header.version === 2) {
      const found = readSeal(file, size, header, path);
      if (!(found instanceof CorruptionError)) sealed = found.view;
    }
    if (!sealed) {
      // The seal cannot be trusted: read the frames to the first seal, or to what stops them
      // (unless that is the damage checkSealed found).
      const told = problems[0];
      const w = await walkFrames(file, planFor(header, size, size, [], true), pause);
      add({
        ...w,
        problems: w.problems.filter((p) => told.path !== path || p.offset !== told.offset),
      });
      const endSeq = w.stop.kind === "seal" ? w.stop.seq : w.end.seq;
      return { records: w.records, endSeq, header, problems };
    }
    const endSeq = sealed.endSeq;
    const sealAt = size - readTrailer(file, size);
    const entries = indexPoints(sealed.index, () => ({ at: sealAt, what: "seal index entry" }));
    const w = await walkFrames(file, planFor(header, sealAt, sealAt, entries, false), pause);
    add(w);
    if (w.stop.kind === "end") {
      const wrong = (reason: string) =>
        problems.push({ path, offset: sealAt, seq: endSeq, reason });
      if (w.end.offset !== sealAt) wrong("segment ends inside a batch");
      else if (w.end.seq !== endSeq) {
        wrong(`the frames end at seq ${w.end.seq}, the seal says ${endSeq}`);
      } else if (header.version === 2) {
        const { firstTimestamp, lastTimestamp } = sealed;
        const first = w.firstTimestamp;
        const last = w.end.prevTimestamp;
        if (first !== null && first !== firstTimestamp) {
          wrong(`the first record's timestamp is ${first}, the seal says ${firstTimestamp}`);
        } else if (last !== lastTimestamp) {
          wrong(`the last record's timestamp is ${last}, the seal says ${lastTimestamp}`);
        }
      }
    }
    return { records: w.records, endSeq, header, problems };
  } finally {
    file.close();
  }
}

/**
 * Verifies the newest segment `path` of a log (first seq `firstSeq`), reading no record at or past
 * `bound` (for a log that has seen no further). `ids` holds the log id of the segments before it.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { LogIdCheck } from "./open_context.ts";
 * import { verifyNewestSegment } from "./verify_segment.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim });
 * await (await store.log("l")).appendBatch(["a", "b", "c"]);
 * await store.close();
 * const path = "/s/l/00000000000000000000.seg";
 * const pause = () => Promise.resolve();
 * const v = await verifyNewestSegment(sim, path, 0, new LogIdCheck(), pause, 2);
 * if (v.records !== 0 || v.endSeq !== 0) throw new Error("a batch of 3 is past seq 2");
 * ```
 */
export async function verifyNewestSegment(
  platform: Platform,
  path: string,
  firstSeq: number,
  ids: LogIdCheck,
  pause: Pause,
  bound: number = Infinity,
): Promise<SegmentVerdict> {
  const file = await platform.open(path, "read");
  try {
    const h = decodeHeader(readHeader(file));
    const nothing = (problems: VerifyProblem[]) => ({
      records: 0,
      endSeq: firstSeq,
      header: null,
      problems,
    });
    if (!h.ok || h.header.firstSeq !== firstSeq) {
      // A header that never reached the disk (the file is being created, or recovery recreates
      // it) is followed by nothing; a header of an unknown version is never taken for one.
      const size = file.size();
      const foreign = !h.ok && h.foreignVersion !== undefined;
      if (!foreign && (size < HEADER_BYTES || isZeroRange(file, HEADER_BYTES, size))) {
        return nothing([]);
      }
      const reason = h.ok
        ? `header says first seq ${h.header.firstSeq}, the name says ${firstSeq}`
        : h.reason;
      return nothing([{ path, offset: 0, seq: null, reason: `segment header: ${reason}` }]);
    }
    const header = h.header;
    const foreign = ids.check(header, path);
    if (foreign) return nothing([problemOf(foreign, path)]);
    return header.version === 1
      ? await newestV1(file, header, pause, bound)
      : await newestV2(file, header, pause, bound);
  } finally {
    file.close();
  }
}

/** The newest v2 segment: mark, stored entries, then the walk, trusted up to the mark. */
async function newestV2(
  file: PlatformFile,
  header: SegmentHeader,
  pause: Pause,
  bound: number,
): Promise<SegmentVerdict> {
  const path = file.path;
  const problems: VerifyProblem[] = [];
  const seed = seedOf(header.logId!, header.firstSeq);
  // The mark before the size: a writer's next mark may claim bytes written after a size read.
  let mark = readFileMark(file, seed);
  const size = file.size();
  if (mark) {
    const wrong = checkMark(mark, { ...header, fileSize: size });
    if (wrong) {
      problems.push({ path, offset: slotOffset(mark.generation), seq: null, reason: wrong });
      mark = null;
    }
  }
  let entries: IndexPoint[] = [];
  if (mark) {
    const index = readStoredIndex(file, header, mark, seed);
    if (typeof index === "string") {
      problems.push({ path, offset: INDEX_AREA_START, seq: null, reason: index });
    } else {
      entries = indexPoints(index, (i) => ({ at: entryOffset(i), what: "stored index entry" }));
    }
  }
  const trusted = mark ? mark.durableEnd : header.dataStart;
  const plan: WalkPlan = {
    ...planFor(header, size, trusted, entries, true),
    bound,
    mark: mark && {
      offset: mark.durableEnd,
      seq: mark.nextSeq,
      prevTimestamp: mark.lastTimestamp,
      at: slotOffset(mark.generation),
    },
  };
  const w = await walkFrames(file, plan, pause);
  problems.push(...w.problems.map((p) => ({ path, ...p })));
  if (w.stop.kind === "seal" && w.stop.offset < trusted) {
    // A seal after the mark that fails its checks is a torn tail; one before it is damage.
    const { offset, frameBytes, seq, payload } = w.stop;
    const seal = decodeSealPayload(payload, frameBytes, {
      firstSeq: header.firstSeq,
      endSeq: seq,
      sealAt: offset,
      dataStart: header.dataStart,
      baseTimestamp: header.baseTimestamp,
    });
    if (typeof seal === "string") problems.push({ path, offset, seq, reason: seal });
  }
  return { records: w.records, endSeq: w.end.seq, header, problems };
}

/**
 * The newest v1 segment: no mark, so a frame that does not decode is judged as recovery judges
 * it (`./torn_tail.ts`): damage only if a valid frame follows it.
 */
async function newestV1(
  file: PlatformFile,
  header: SegmentHeader,
  pause: Pause,
  bound: number,
): Promise<SegmentVerdict> {
  const size = file.size();
  const w = await walkFrames(
    file,
    { ...planFor(header, size, header.dataStart, [], true), bound },
    pause,
  );
  let stop: FramePoint & { reason: string } | null = null;
  if (w.stop.kind === "untrusted") {
    stop = { offset: w.stop.offset, seq: w.stop.seq, prevTimestamp: 0, reason: w.stop.reason };
  } else if (w.stop.kind === "seal") {
    const { offset, frameBytes, seq, payload } = w.stop;
    const index = decodeSealPayloadV1(payload, frameBytes, {
      firstSeq: header.firstSeq,
      endSeq: seq,
      sealAt: offset,
    });
    if (typeof index === "string") stop = { offset, seq, prevTimestamp: 0, reason: index };
  }
  const problems: VerifyProblem[] = [];
  if (stop) {
    const verdict = judgeTail(file, stop.offset, size, stop.seq, header.maxRecordBytes);
    if (verdict.kind === "damage") {
      const reason = `${stop.reason}, followed by ${verdict.followedBy}`;
      problems.push({ path: file.path, offset: stop.offset, seq: stop.seq, reason });
    }
  }
  return { records: w.records, endSeq: w.end.seq, header, problems };
}

/** A walk of a segment's frames from its first, reading up to `limit`, whole before `trusted`. */
function planFor(
  header: SegmentHeader,
  limit: number,
  trusted: number,
  entries: IndexPoint[],
  sealEnds: boolean,
): WalkPlan {
  return {
    codec: codecFor(header),
    maxPayload: header.maxRecordBytes,
    start: { offset: header.dataStart, seq: header.firstSeq, prevTimestamp: header.baseTimestamp },
    limit,
    trusted,
    entries,
    mark: null,
    bound: Infinity,
    sealEnds,
  };
}

/** Entries 1.. of `index` (entry 0 is the segment's first frame), with where each is written. */
function indexPoints(
  index: SparseIndex,
  source: (i: number) => { at: number; what: string },
): IndexPoint[] {
  const points: IndexPoint[] = [];
  for (let i = 1; i < index.length; i++) {
    const { at, what } = source(i);
    points.push({
      offset: index.offsetAt(i),
      seq: index.seqAt(i),
      prevTimestamp: index.timestampAt(i),
      at,
      what: `${what} ${i}`,
    });
  }
  return points;
}

/** The seal size a sealed segment's last 4 bytes give (`checkSealed` has checked it). */
function readTrailer(file: PlatformFile, size: number): number {
  const trailer = new Uint8Array(4);
  file.readAt(trailer, size - 4);
  return readU32(trailer, 0);
}

/**
 * `err` as a problem: its path (`path` if it names none), offset and seq, and its message without
 * the "(path, offset, seq)" that `KhipuError` appends to it.
 */
function problemOf(err: CorruptionError, path: string): VerifyProblem {
  const where: string[] = [];
  if (err.path !== undefined) where.push(err.path);
  if (err.offset !== undefined) where.push(`offset ${err.offset}`);
  if (err.seq !== undefined) where.push(`seq ${err.seq}`);
  const suffix = ` (${where.join(", ")})`;
  const reason = where.length > 0 && err.message.endsWith(suffix)
    ? err.message.slice(0, -suffix.length)
    : err.message;
  return { path: err.path ?? path, offset: err.offset ?? 0, seq: err.seq ?? null, reason };
}
