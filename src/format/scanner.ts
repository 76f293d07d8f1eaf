/**
 * Reads frames from a segment file in order, through a bounded buffer (default 256 KiB, grown only
 * to fit one frame), verifying each, in the segment's format version (its {@linkcode FrameCodec}).
 * Used by recovery and by readers: memory never depends on the segment's size.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { codecFor } from "./codec.ts";
 * import { crc32 } from "./checksum.ts";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./header.ts";
 * import { FrameScanner } from "./scanner.ts";
 * const logId = newLogId();
 * const header = encodeHeader({ firstSeq: 0, maxRecordBytes: 1 << 20, logId, prevEndSeq: 0,
 *   baseTimestamp: 0, indexCapacity: 0 });
 * const h = decodeHeader(header);
 * if (!h.ok) throw new Error(h.reason);
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, crc32(logId), seq, 0, new Uint8Array(5));
 * file.writev([header, new Uint8Array(80), frame(0), frame(1)]); // header, empty slots, 2 records
 * const at = { start: 160, limit: file.size(), seq: 0, timestamp: 0, maxPayload: 1 << 20 };
 * const s = new FrameScanner(file, codecFor(h.header), at);
 * let n = 0;
 * for (let f = s.next(); f.kind === "frame"; f = s.next()) n++;
 * if (n !== 2) throw new Error(`${n}`);
 * ```
 * @module
 */
import type { PlatformFile } from "../platform/types.ts";
import { endsBatch, FRAME_SEAL, type FrameCodec } from "./codec.ts";

/** Default read-buffer size. */
export const SCAN_CHUNK_BYTES: number = 256 * 1024;

/** One valid frame; `payload` is a view that is only valid until the next `next()` call. */
export interface ScannedFrame {
  /** A frame was read. */
  kind: "frame";
  /** Frame type (a record, a record whose batch goes on, or a seal). */
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

/** Where a scan starts and what it may read. */
export interface ScanStart {
  /** Byte offset of the first frame to read. */
  start: number;
  /** Read no further than this offset. */
  limit: number;
  /** Sequence number of the frame at `start`. */
  seq: number;
  /** Timestamp of the record before `start` (version 2 deltas count from it). */
  timestamp: number;
  /** Largest record payload the segment's header allows. */
  maxPayload: number;
}

/**
 * Sequential frame reader over `[start, limit)` of a file, expecting sequence numbers from
 * `seq` upward. `short` means the bytes end inside a frame; `bad` that the bytes at the offset are
 * not the expected frame. After either, the scanner stays there.
 *
 * @example
 * ```ts
 * import type { PlatformFile } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { codecFor } from "./codec.ts";
 * import { crc32 } from "./checksum.ts";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./header.ts";
 * import { FrameScanner } from "./scanner.ts";
 * const logId = newLogId();
 * const header = encodeHeader({ firstSeq: 0, maxRecordBytes: 1 << 20, logId, prevEndSeq: 0,
 *   baseTimestamp: 0, indexCapacity: 0 });
 * const h = decodeHeader(header);
 * if (!h.ok) throw new Error(h.reason);
 * const header2 = h.header;
 * function lastSeq(file: PlatformFile): number {
 *   const at = { start: 160, limit: file.size(), seq: 0, timestamp: 0, maxPayload: 1 << 20 };
 *   const s = new FrameScanner(file, codecFor(header2), at);
 *   let seq = -1;
 *   for (let f = s.next(); f.kind === "frame"; f = s.next()) seq = f.seq;
 *   return seq;
 * }
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, crc32(logId), seq, 0, new Uint8Array(5));
 * file.writev([header, new Uint8Array(80), frame(0), frame(1), frame(1)]); // the last 1 is misplaced
 * if (lastSeq(file) !== 1) throw new Error(`${lastSeq(file)}`);
 * ```
 */
export class FrameScanner {
  #file: PlatformFile;
  #codec: FrameCodec;
  #limit: number;
  #maxPayload: number;
  #chunk: number;
  #buf: Uint8Array;
  #bufStart: number;
  #bufLen = 0;
  #pos: number;
  #expected: number;
  #timestamp: number;
  #batchEnd: number;

  /** Reads frames of `codec`'s version from `at.start`, no further than `at.limit`. */
  constructor(
    file: PlatformFile,
    codec: FrameCodec,
    at: ScanStart,
    chunkBytes: number = SCAN_CHUNK_BYTES,
  ) {
    this.#file = file;
    this.#codec = codec;
    this.#limit = at.limit;
    this.#maxPayload = at.maxPayload;
    this.#chunk = chunkBytes;
    // Sized to what is readable now (a young segment is small); #fill grows it up to the chunk.
    this.#buf = new Uint8Array(Math.min(chunkBytes, Math.max(32, at.limit - at.start)));
    this.#bufStart = at.start;
    this.#pos = at.start;
    this.#expected = at.seq;
    this.#timestamp = at.timestamp;
    this.#batchEnd = at.start;
  }

  /** Byte offset of the next frame. */
  get offset(): number {
    return this.#pos;
  }

  /** Sequence number the next frame must carry. */
  get expectedSeq(): number {
    return this.#expected;
  }

  /** Timestamp of the last record read (or the starting one). */
  get timestamp(): number {
    return this.#timestamp;
  }

  /** End of the last frame that ended a batch: where a log may end. */
  get batchEnd(): number {
    return this.#batchEnd;
  }

  /** Lets a follower read further once the writer has flushed more bytes. */
  extendLimit(limit: number): void {
    if (limit > this.#limit) this.#limit = limit;
  }

  /**
   * Forgets the bytes buffered past the next frame and reads no further than `limit`: for a scan
   * that follows a file another process writes, where bytes read as zeros or as half a frame may
   * since have become whole frames.
   */
  reread(limit: number): void {
    this.#bufLen = this.#pos - this.#bufStart;
    this.#limit = limit;
  }

  /** Reads the next frame. */
  next(): ScanStep {
    if (this.#pos >= this.#limit) return { kind: "end", offset: this.#pos };
    for (;;) {
      const rel = this.#pos - this.#bufStart;
      const r = this.#codec.decode(
        this.#buf,
        rel,
        this.#bufLen,
        this.#expected,
        this.#timestamp,
        this.#maxPayload,
      );
      if (r.status === "ok") {
        const offset = this.#pos;
        this.#pos += r.frameBytes;
        if (r.type !== FRAME_SEAL) {
          this.#expected++;
          this.#timestamp = r.timestamp;
        }
        if (endsBatch(r.type)) this.#batchEnd = this.#pos;
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
