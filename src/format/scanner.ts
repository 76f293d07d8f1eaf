/**
 * Reads frames from a segment file in order, through a bounded buffer (default 256 KiB, grown only
 * to fit one frame), verifying each. Used by recovery and by readers: memory never depends on the
 * segment's size.
 *
 * @example
 * ```ts
 * import type { PlatformFile } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { FrameScanner } from "./scanner.ts";
 * function count(file: PlatformFile, size: number): number {
 *   const s = new FrameScanner(file, 32, size, 0, 16 << 20);
 *   let n = 0;
 *   for (let f = s.next(); f.kind === "frame"; f = s.next()) n++;
 *   return n;
 * }
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, seq, Date.now(), new Uint8Array(5));
 * file.writev([new Uint8Array(32), frame(0), frame(1)]); // room for the header, then two records
 * if (count(file, file.size()) !== 2) throw new Error(`${count(file, file.size())}`);
 * ```
 * @module
 */
import type { PlatformFile } from "../platform/types.ts";
import {
  decodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_RECORD,
  FRAME_SEAL,
  frameHeaderProblem,
} from "./frame.ts";
import { readU32, readU64 } from "./bytes.ts";

/** Default read-buffer size. */
export const SCAN_CHUNK_BYTES: number = 256 * 1024;

/** One valid frame; `payload` is a view that is only valid until the next `next()` call. */
export interface ScannedFrame {
  /** A frame was read. */
  kind: "frame";
  /** Frame type (record or seal). */
  type: number;
  /** Sequence number. */
  seq: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** Byte offset of the frame in the file. */
  offset: number;
  /** Frame size including its header. */
  frameBytes: number;
  /** The payload (a view into the scanner's buffer). */
  payload: Uint8Array;
}

/** What {@linkcode FrameScanner.next} returns. */
export type ScanStep =
  | ScannedFrame
  | { kind: "end"; offset: number }
  | { kind: "short"; offset: number }
  | { kind: "bad"; offset: number; reason: string };

/**
 * Sequential frame reader over `[start, limit)` of a file, expecting sequence numbers from
 * `expectedSeq` upward. `short` means the bytes end inside a frame; `bad` that the bytes at the
 * offset are not the expected frame. After either, the scanner stays there.
 *
 * @example
 * ```ts
 * import type { PlatformFile } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { FrameScanner } from "./scanner.ts";
 * function lastSeq(file: PlatformFile): number {
 *   const s = new FrameScanner(file, 32, file.size(), 0, 1 << 20);
 *   let seq = -1;
 *   for (let f = s.next(); f.kind === "frame"; f = s.next()) seq = f.seq;
 *   return seq;
 * }
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, seq, Date.now(), new Uint8Array(5));
 * file.writev([new Uint8Array(32), frame(0), frame(1), frame(1)]); // the second 1 is out of order
 * if (lastSeq(file) !== 1) throw new Error(`${lastSeq(file)}`);
 * ```
 */
export class FrameScanner {
  #file: PlatformFile;
  #limit: number;
  #maxPayload: number;
  #chunk: number;
  #buf: Uint8Array;
  #bufStart: number;
  #bufLen = 0;
  #pos: number;
  #expected: number;

  /** Starts at byte `start`, reading no further than byte `limit`. */
  constructor(
    file: PlatformFile,
    start: number,
    limit: number,
    expectedSeq: number,
    maxPayload: number,
    chunkBytes: number = SCAN_CHUNK_BYTES,
  ) {
    this.#file = file;
    this.#limit = limit;
    this.#maxPayload = maxPayload;
    this.#chunk = chunkBytes;
    // Sized to what is readable now (a young segment is small); #fill grows it up to the chunk.
    this.#buf = new Uint8Array(Math.min(chunkBytes, Math.max(FRAME_HEADER_BYTES, limit - start)));
    this.#bufStart = start;
    this.#pos = start;
    this.#expected = expectedSeq;
  }

  /** Byte offset of the next frame. */
  get offset(): number {
    return this.#pos;
  }

  /** Sequence number the next frame must carry. */
  get expectedSeq(): number {
    return this.#expected;
  }

  /** Lets a follower read further once the writer has flushed more bytes. */
  extendLimit(limit: number): void {
    if (limit > this.#limit) this.#limit = limit;
  }

  /** Reads the next frame. */
  next(): ScanStep {
    if (this.#pos >= this.#limit) return { kind: "end", offset: this.#pos };
    for (;;) {
      const rel = this.#pos - this.#bufStart;
      const r = decodeFrame(this.#buf, rel, this.#bufLen, this.#expected, this.#maxPayload);
      if (r.status === "ok") {
        const offset = this.#pos;
        this.#pos += r.frameBytes;
        if (r.type === FRAME_RECORD) this.#expected++;
        return {
          kind: "frame",
          type: r.type,
          seq: r.seq,
          timestamp: r.timestamp,
          offset,
          frameBytes: r.frameBytes,
          payload: this.#buf.subarray(r.payloadStart, r.payloadEnd),
        };
      }
      if (r.status === "bad") return { kind: "bad", offset: this.#pos, reason: r.reason };
      // Short: the frame needs r.need bytes from #pos. More may exist in the file.
      if (this.#pos + r.need > this.#limit) return { kind: "short", offset: this.#pos };
      if (!this.#fill(r.need)) return { kind: "short", offset: this.#pos };
    }
  }

  /** Makes `need` bytes from #pos available in the buffer; false if the file ended first. */
  #fill(need: number): boolean {
    const rel = this.#pos - this.#bufStart;
    const keep = this.#bufLen - rel;
    const size = Math.max(need, Math.min(this.#chunk, this.#limit - this.#pos));
    if (size > this.#buf.length) {
      const bigger = new Uint8Array(size);
      bigger.set(this.#buf.subarray(rel, this.#bufLen));
      this.#buf = bigger;
    } else if (rel > 0) {
      this.#buf.copyWithin(0, rel, this.#bufLen);
    }
    this.#bufStart = this.#pos;
    this.#bufLen = keep;
    const want = Math.min(this.#buf.length, this.#limit - this.#bufStart);
    if (this.#bufLen < want) {
      this.#bufLen += this.#file.readAt(
        this.#buf.subarray(this.#bufLen, want),
        this.#bufStart + this.#bufLen,
      );
    }
    return this.#bufLen >= need;
  }
}

/**
 * Looks for any valid frame starting after `from` and before `limit` whose sequence number is at
 * least `minSeq`: recovery's test for whether invalid bytes are a torn tail (nothing valid follows)
 * or damage in the middle of acknowledged data (valid frames follow). Returns its offset, -1 if
 * there is none, or -2 if crafted bytes held more plausible frame headers than it would check.
 *
 * The work is linear in `limit - from`: one pass over the bytes, a header test at each offset, and
 * checksums of candidate frames (headers that pass every test but the checksum) of at most
 * `limit - from + 1 MiB` bytes in all. Torn or zeroed space holds essentially no candidates, so
 * only bytes built to look like frames reach the bound, and -2 makes recovery call them damage.
 *
 * @example
 * ```ts
 * import type { PlatformFile } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { findNextValidFrame } from "./scanner.ts";
 * function tornTail(f: PlatformFile, at: number, seq: number): boolean {
 *   return findNextValidFrame(f, at, f.size(), seq, 1 << 20) === -1;
 * }
 * const sim = new SimPlatform();
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, seq, 0, new Uint8Array(100));
 * const torn = await sim.open("/torn.seg", "createExclusive");
 * torn.writev([new Uint8Array(32), frame(0).subarray(0, 60)]); // the last write, cut short
 * const damaged = await sim.open("/damaged.seg", "createExclusive");
 * damaged.writev([new Uint8Array(32), frame(0).fill(0xee, 40), frame(1)]); // a whole one follows
 * if (!tornTail(torn, 32, 0) || tornTail(damaged, 32, 0)) throw new Error("misjudged");
 * ```
 */
export function findNextValidFrame(
  file: PlatformFile,
  from: number,
  limit: number,
  minSeq: number,
  maxPayload: number,
): number {
  // Every frame is at least FRAME_HEADER_BYTES long, which bounds how far sequence numbers can run.
  const maxSeq = minSeq + Math.ceil((limit - from) / FRAME_HEADER_BYTES);
  let budget = limit - from + (1 << 20);
  const chunk = new Uint8Array(SCAN_CHUNK_BYTES + FRAME_HEADER_BYTES);
  for (let base = from + 1; base < limit; base += SCAN_CHUNK_BYTES) {
    const len = file.readAt(chunk.subarray(0, Math.min(chunk.length, limit - base)), base);
    const last = Math.min(SCAN_CHUNK_BYTES, len - FRAME_HEADER_BYTES + 1);
    const view = chunk.subarray(0, len);
    // Where the next record and seal type bytes are (-2: not looked up yet, -1: none left), found
    // with native indexOf, so zeroed or sparse space is skipped at memory speed.
    let nextRecord = -2;
    let nextSeal = -2;
    for (let i = 0; i < last; i++) {
      if (nextRecord !== -1 && nextRecord < i + 4) nextRecord = view.indexOf(FRAME_RECORD, i + 4);
      if (nextSeal !== -1 && nextSeal < i + 4) nextSeal = view.indexOf(FRAME_SEAL, i + 4);
      const typeAt = nextRecord < 0
        ? nextSeal
        : nextSeal < 0
        ? nextRecord
        : Math.min(nextRecord, nextSeal);
      if (typeAt < 0 || typeAt - 4 >= last) break;
      i = typeAt - 4;
      if (frameHeaderProblem(chunk, i, maxPayload) !== null) continue;
      const seq = readU64(chunk, i + 12);
      if (!(seq >= minSeq && seq <= maxSeq)) continue;
      const at = base + i;
      const frameBytes = FRAME_HEADER_BYTES + readU32(chunk, i + 8);
      if (at + frameBytes > limit) continue;
      budget -= frameBytes;
      if (budget < 0) return -2;
      let frame: Uint8Array;
      if (i + frameBytes <= len) frame = chunk.subarray(i, i + frameBytes);
      else {
        frame = new Uint8Array(frameBytes);
        file.readAt(frame, at);
      }
      if (decodeFrame(frame, 0, frameBytes, seq, maxPayload).status === "ok") return at;
    }
  }
  return -1;
}
