/**
 * The frame walk of `verify` (`./verify_segment.ts` plans it for each segment): every frame of a
 * segment read in order through one {@linkcode FrameScanner} (so memory is its 256 KiB buffer, not
 * the segment), and checked against the index entries and the durable mark where it passes them.
 * A frame that does not decode in bytes that must hold whole frames is a problem; the walk then
 * goes on from the next index entry (or the mark) whose frame decodes, since the frames between
 * can no longer be placed by seq. Past the bytes that must be whole (a newest segment after its
 * mark), the walk just ends: what follows is a batch being written, or a torn tail.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { crc32 } from "./format/checksum.ts";
 * import { v2Codec } from "./format/codec.ts";
 * import { encodeFrame, FRAME_RECORD } from "./format/frame.ts";
 * import { walkFrames } from "./verify_walk.ts";
 * const idCrc = crc32(new Uint8Array(16).fill(7));
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * file.writeAt(encodeFrame(FRAME_RECORD, idCrc, 0, 5, new Uint8Array(3)), 160);
 * file.writeAt(encodeFrame(FRAME_RECORD, idCrc, 1, 0, new Uint8Array(3)), file.size());
 * const w = await walkFrames(file, {
 *   codec: v2Codec(idCrc), maxPayload: 1024, start: { offset: 160, seq: 0, prevTimestamp: 0 },
 *   limit: file.size(), trusted: file.size(), entries: [], mark: null, bound: Infinity,
 *   sealEnds: true,
 * }, () => Promise.resolve());
 * if (w.records !== 2 || w.stop.kind !== "end" || w.problems.length !== 0) throw new Error();
 * ```
 * @module
 */
import type { PlatformFile } from "./platform/types.ts";
import { FRAME_RECORD, FRAME_SEAL, type FrameCodec } from "./format/codec.ts";
import { FrameScanner, SCAN_CHUNK_BYTES } from "./format/scanner.ts";

/** A place in a segment where a frame starts: its offset, seq and the timestamp before it. */
export interface FramePoint {
  /** Byte offset of the frame. */
  offset: number;
  /** Its sequence number. */
  seq: number;
  /** Timestamp of the record before it (version 2 deltas count from it; 0 in version 1). */
  prevTimestamp: number;
}

/** An index entry to check: where it points, and where it is written (for a problem). */
export interface IndexPoint extends FramePoint {
  /** Offset of the entry's own bytes in the file (a stored entry, or the seal holding it). */
  at: number;
  /** What it is, for a problem's reason: `stored index entry 3`, `seal index entry 2`. */
  what: string;
}

/** The durable mark of a newest version-2 segment: where its durable records end. */
export interface MarkPoint extends FramePoint {
  /** Offset of the slot that holds it (a problem's offset). */
  at: number;
}

/** What to walk and what to check on the way. */
export interface WalkPlan {
  /** The segment's codec. */
  codec: FrameCodec;
  /** Largest record payload the segment's header allows. */
  maxPayload: number;
  /** The first frame: the segment's `dataStart`, `firstSeq` and base timestamp. */
  start: FramePoint;
  /** Read no further than this offset. */
  limit: number;
  /**
   * Bytes before this offset must be whole frames: a frame that does not decode there is a
   * problem. At or after it, the walk just ends.
   */
  trusted: number;
  /** Index entries after entry 0 (which is `start`), ascending by offset. */
  entries: readonly IndexPoint[];
  /** The mark to check where the walk reaches its offset (after every entry), or null. */
  mark: MarkPoint | null;
  /** Stop before the first record whose seq is at least this one (it is not there yet). */
  bound: number;
  /**
   * True if a seal after a complete batch ends the walk (a seal found, not known beforehand);
   * false if the seal is at `limit` and any seal frame before it is damage.
   */
  sealEnds: boolean;
}

/** A problem the walk found: offset, seq and reason (the caller adds the path). */
export interface WalkProblem {
  /** Where in the file. */
  offset: number;
  /** The seq concerned, if known. */
  seq: number | null;
  /** What is wrong. */
  reason: string;
}

/** Why the walk ended. */
export type WalkStop =
  /** At `limit`, every frame read. */
  | { kind: "end" }
  /** At a seal after a complete batch (`sealEnds`); its payload is valid until the next read. */
  | { kind: "seal"; offset: number; frameBytes: number; seq: number; payload: Uint8Array }
  /** At the first record at or past `bound`. */
  | { kind: "bound" }
  /** At bytes past `trusted` that are not a frame there (yet): `reason` says what they are. */
  | { kind: "untrusted"; offset: number; seq: number; reason: string }
  /** At damage it found no way past. */
  | { kind: "damage" };

/** What the walk found. */
export interface Walk {
  /** Records read: those of complete batches, and in bytes before `trusted`, every one. */
  records: number;
  /** Where the last complete batch ends: its offset, the next seq, its timestamp. */
  end: FramePoint;
  /** Timestamp of the segment's first record, if its frame was read. */
  firstTimestamp: number | null;
  /** Why the walk ended. */
  stop: WalkStop;
  /** The damage found, in file order. */
  problems: WalkProblem[];
}

/**
 * Called every {@linkcode SCAN_CHUNK_BYTES} of the walk (between two frames) with the offset
 * reached and the records read so far: it reports progress, rejects on abort, and yields.
 */
export type Pause = (offset: number, records: number) => Promise<void>;

/**
 * Walks the frames of `plan` in `file`. Checks where it passes them that each index entry names
 * a frame start with its seq and previous timestamp, and that the mark falls at a batch end with
 * its seq and timestamp. After damage it resumes at the next entry or the mark past it whose frame
 * decodes (records in between go uncounted).
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { crc32 } from "./format/checksum.ts";
 * import { v2Codec } from "./format/codec.ts";
 * import { encodeFrame, FRAME_RECORD } from "./format/frame.ts";
 * import { walkFrames } from "./verify_walk.ts";
 * const idCrc = crc32(new Uint8Array(16).fill(7));
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, idCrc, seq, 0, new Uint8Array(9));
 * for (const seq of [0, 1, 2]) file.writeAt(frame(seq), 160 + 16 * seq);
 * file.writeAt(new Uint8Array([0xff]), 160 + 16 + 10); // a flipped payload byte in record 1
 * const w = await walkFrames(file, {
 *   codec: v2Codec(idCrc), maxPayload: 1024, start: { offset: 160, seq: 0, prevTimestamp: 0 },
 *   limit: file.size(), trusted: file.size(), bound: Infinity, sealEnds: true,
 *   entries: [{ offset: 192, seq: 2, prevTimestamp: 0, at: 160, what: "index entry 1" }],
 *   mark: null,
 * }, () => Promise.resolve());
 * // Record 1 is the problem; the walk goes on at the entry for record 2.
 * if (w.problems[0]?.seq !== 1 || w.records !== 2 || w.end.seq !== 3) throw new Error();
 * ```
 */
export async function walkFrames(file: PlatformFile, plan: WalkPlan, pause: Pause): Promise<Walk> {
  const { codec, entries, mark, bound, start } = plan;
  const problems: WalkProblem[] = [];
  /** Places to resume after damage: the entries, then the mark (past every entry). */
  const resumes: FramePoint[] = mark ? [...entries, mark] : [...entries];
  let nextResume = 0;
  let nextEntry = 0;
  let markPending = mark !== null;
  let nextPause = start.offset + SCAN_CHUNK_BYTES;
  let records = 0;
  /**
   * Records of the batch being read (frames of type 3 so far): counted when it completes, or, in
   * bytes that must be whole, when damage or the end cuts it short (they are intact records).
   */
  let pending = 0;
  let end: FramePoint = { ...start };
  let firstTimestamp: number | null = null;
  /** The resume point being tried: a frame that fails there is part of the damage already told. */
  let resumedAt = -1;
  let scanner = scanFrom(start);

  function scanFrom(p: FramePoint): FrameScanner {
    return new FrameScanner(file, codec, {
      start: p.offset,
      limit: plan.limit,
      seq: p.seq,
      timestamp: p.prevTimestamp,
      maxPayload: plan.maxPayload,
    });
  }

  /** The next offset at which something must be checked. */
  function nextCheck(): number {
    let at = nextPause;
    if (nextEntry < entries.length && entries[nextEntry].offset < at) {
      at = entries[nextEntry].offset;
    }
    if (markPending && mark!.offset < at) at = mark!.offset;
    return at;
  }

  /** Checks the entries and the mark at or before `pos`, the start of the next frame. */
  function checkAt(pos: number): void {
    const seq = scanner.expectedSeq;
    const ts = scanner.timestamp;
    for (; nextEntry < entries.length && entries[nextEntry].offset <= pos; nextEntry++) {
      const e = entries[nextEntry];
      let wrong: string | null = null;
      if (e.offset < pos) wrong = `points at offset ${e.offset}, inside a frame`;
      else if (e.seq !== seq) {
        wrong = `names seq ${e.seq}, but the frame at offset ${pos} is seq ${seq}`;
      } else if (codec.version === 2 && e.prevTimestamp !== ts) {
        wrong = `says the record before seq ${seq} has timestamp ${e.prevTimestamp}, not ${ts}`;
      }
      if (wrong) problems.push({ offset: e.at, seq: e.seq, reason: `${e.what} ${wrong}` });
    }
    if (markPending && mark!.offset <= pos) {
      markPending = false;
      const m = mark!;
      const fits = m.offset === pos && end.offset === pos && m.seq === seq &&
        m.prevTimestamp === ts;
      if (!fits) {
        const frames = end.offset === m.offset
          ? `the frames there say seq ${seq}, timestamp ${ts}`
          : "no batch of the frames ends there";
        problems.push({
          offset: m.at,
          seq: m.seq,
          reason: `mark slot says the durable records end at offset ${m.offset} (seq ${m.seq}, ` +
            `timestamp ${m.prevTimestamp}), but ${frames}`,
        });
      }
    }
  }

  /** Moves to the first resume point past `offset`; false if there is none. */
  function resumeAfter(offset: number): boolean {
    while (nextResume < resumes.length && resumes[nextResume].offset <= offset) nextResume++;
    if (nextResume === resumes.length) return false;
    const p = resumes[nextResume++];
    // Entries between the damage and `p` cannot be checked: the frames they name were not read.
    while (nextEntry < entries.length && entries[nextEntry].offset < p.offset) nextEntry++;
    if (mark && p === mark) {
      markPending = false;
      end = { ...mark };
    }
    pending = 0;
    resumedAt = p.offset;
    scanner = scanFrom(p);
    return true;
  }

  let check = nextCheck();
  let stop: WalkStop | null = null;
  while (stop === null) {
    const pos = scanner.offset;
    if (pos >= check) {
      checkAt(pos);
      if (pos >= nextPause) {
        await pause(pos, records);
        nextPause = pos + SCAN_CHUNK_BYTES;
      }
      check = nextCheck();
    }
    const step = scanner.next();
    if (step.kind === "frame") {
      if (step.type !== FRAME_SEAL) {
        if (step.seq >= bound) stop = { kind: "bound" };
        else if (step.type === FRAME_RECORD) {
          records += pending + 1;
          pending = 0;
          end = {
            offset: step.offset + step.frameBytes,
            seq: step.seq + 1,
            prevTimestamp: step.timestamp,
          };
        } else pending++;
        if (step.offset === start.offset) firstTimestamp = step.timestamp;
        continue;
      }
      if (plan.sealEnds && step.offset === end.offset) {
        const { offset, frameBytes, seq, payload } = step;
        stop = { kind: "seal", offset, frameBytes, seq, payload };
        continue;
      }
      const where = plan.sealEnds ? "inside a batch" : "before the end of the segment";
      stop = damaged(step.offset, step.seq, `seal frame ${where}`);
      continue;
    }
    if (step.kind === "end") {
      stop = { kind: "end" };
      continue;
    }
    const reason = step.kind === "bad" ? step.reason : "truncated frame";
    stop = damaged(step.offset, scanner.expectedSeq, reason);
  }
  // A batch the bound cuts is not there yet, like one past `trusted`.
  const cut = stop.kind === "untrusted" ? stop.offset : scanner.offset;
  if (stop.kind !== "bound" && cut <= plan.trusted) records += pending;
  // Entries and the mark the walk reached with no frame after them (inside or after the last).
  if (stop.kind === "end") checkAt(scanner.offset);
  else if (stop.kind === "seal") checkAt(stop.offset);
  return { records, end, firstTimestamp, stop, problems };

  /** A frame that is not what belongs at `offset`: a problem (once) and a resume, or the end. */
  function damaged(offset: number, seq: number, reason: string): WalkStop | null {
    if (offset >= plan.trusted) return { kind: "untrusted", offset, seq, reason };
    records += pending;
    pending = 0;
    if (offset !== resumedAt) problems.push({ offset, seq, reason });
    if (resumeAfter(offset)) {
      check = nextCheck();
      return null;
    }
    return { kind: "damage" };
  }
}
