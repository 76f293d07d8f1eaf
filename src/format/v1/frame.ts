/**
 * Format version 1 record frames (see FORMAT.md, "Version 1"), read only: new segments are v2. A frame is a 28-byte header followed by its payload:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | CRC-32 of bytes 4 .. end of payload |
 * | 4 | 1 | type: 1 = record, 2 = seal; 0 is never valid, so zero-filled space never decodes |
 * | 5 | 3 | reserved, zero |
 * | 8 | 4 | payload length |
 * | 12 | 8 | sequence number |
 * | 20 | 8 | timestamp, ms since the Unix epoch |
 *
 * @example
 * ```ts
 * import { decodeFrame, encodeFrame, FRAME_RECORD } from "./frame.ts";
 * const f = encodeFrame(FRAME_RECORD, 7, 1_700_000_000_000, new Uint8Array([1, 2, 3]));
 * const d = decodeFrame(f, 0, f.length, 7, 1024);
 * if (d.status !== "ok" || d.seq !== 7) throw new Error(d.status);
 * ```
 * @module
 */
import { crc32 } from "../checksum.ts";
import { readU32, readU64, writeU32, writeU64 } from "../bytes.ts";
import { MAX_SEAL_PAYLOAD } from "../limits.ts";
import type { FrameResult } from "../frame.ts";

/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 28;
/** Frame type of a user record. */
export const FRAME_RECORD = 1;
/** Frame type of the seal that ends a sealed segment. */
export const FRAME_SEAL = 2;

/** What {@linkcode decodeFrame} returns: the same shapes as a version 2 frame's decoding. */
export type { FrameResult };

/**
 * Encodes one frame into `buf` at `off` and returns the offset after it. `buf` must have room for
 * `FRAME_HEADER_BYTES + payload.length` bytes.
 *
 * @example
 * ```ts
 * import { encodeFrameInto, FRAME_RECORD } from "./frame.ts";
 * const buf = new Uint8Array(64);
 * const end = encodeFrameInto(buf, 0, FRAME_RECORD, 0, Date.now(), new Uint8Array(4));
 * if (end !== 32) throw new Error(`${end}`); // a 28-byte header, then the payload
 * ```
 */
export function encodeFrameInto(
  buf: Uint8Array,
  off: number,
  type: number,
  seq: number,
  timestamp: number,
  payload: Uint8Array,
): number {
  buf[off + 4] = type;
  buf[off + 5] = 0;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  writeU32(buf, off + 8, payload.length);
  writeU64(buf, off + 12, seq);
  writeU64(buf, off + 20, timestamp);
  const end = off + FRAME_HEADER_BYTES + payload.length;
  buf.set(payload, off + FRAME_HEADER_BYTES);
  writeU32(buf, off, crc32(buf.subarray(off + 4, end)));
  return end;
}

/**
 * Encodes one frame into a new buffer.
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * const bytes = encodeFrame(FRAME_RECORD, 0, 0, new TextEncoder().encode("hello"));
 * if (bytes.length !== 33) throw new Error(`${bytes.length}`);
 * ```
 */
export function encodeFrame(
  type: number,
  seq: number,
  timestamp: number,
  payload: Uint8Array,
): Uint8Array {
  const buf = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  encodeFrameInto(buf, 0, type, seq, timestamp, payload);
  return buf;
}

/**
 * Checks the frame at `buf[off, end)`: its type, reserved bytes, length (at most `maxPayload` for
 * records, {@linkcode MAX_SEAL_PAYLOAD} for seals), that its sequence number is `expectedSeq` (so a
 * valid frame copied elsewhere does not decode there) and its checksum.
 *
 * @example
 * ```ts
 * import { decodeFrame } from "./frame.ts";
 * const zeros = new Uint8Array(4096);
 * const d = decodeFrame(zeros, 0, zeros.length, 0, 1024);
 * if (d.status !== "bad" || d.reason !== "bad frame type 0") throw new Error(d.status);
 * ```
 */
export function decodeFrame(
  buf: Uint8Array,
  off: number,
  end: number,
  expectedSeq: number,
  maxPayload: number,
): FrameResult {
  if (end - off < FRAME_HEADER_BYTES) return { status: "short", need: FRAME_HEADER_BYTES };
  const problem = frameHeaderProblem(buf, off, maxPayload);
  if (problem !== null) return { status: "bad", reason: problem };
  const seq = readU64(buf, off + 12);
  if (seq !== expectedSeq) {
    return { status: "bad", reason: `sequence number ${seq} where ${expectedSeq} belongs` };
  }
  const frameBytes = FRAME_HEADER_BYTES + readU32(buf, off + 8);
  if (end - off < frameBytes) return { status: "short", need: frameBytes };
  const payloadEnd = off + frameBytes;
  if (readU32(buf, off) !== crc32(buf.subarray(off + 4, payloadEnd))) {
    return { status: "bad", reason: "checksum mismatch" };
  }
  return {
    status: "ok",
    type: buf[off + 4],
    seq,
    timestamp: readU64(buf, off + 20),
    payloadStart: off + FRAME_HEADER_BYTES,
    payloadEnd,
    frameBytes,
  };
}

/**
 * The checks of a frame that need only the 28 header bytes at `buf[off]` and no position: its type,
 * its reserved bytes, and its length against the cap (`maxPayload` for records,
 * {@linkcode MAX_SEAL_PAYLOAD} for seals). Returns why it is no frame, or `null` if it may be one.
 * Every decoder and the search for the next frame after a bad one use this one rule.
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_RECORD, frameHeaderProblem } from "./frame.ts";
 * const f = encodeFrame(FRAME_RECORD, 0, 0, new Uint8Array(100));
 * if (frameHeaderProblem(f, 0, 1024) !== null) throw new Error("a record of 100 bytes fits");
 * if (frameHeaderProblem(f, 0, 50) === null) throw new Error("over the cap");
 * ```
 */
export function frameHeaderProblem(
  buf: Uint8Array,
  off: number,
  maxPayload: number,
): string | null {
  const type = buf[off + 4];
  if (type !== FRAME_RECORD && type !== FRAME_SEAL) return `bad frame type ${type}`;
  if (buf[off + 5] !== 0 || buf[off + 6] !== 0 || buf[off + 7] !== 0) {
    return "nonzero reserved bytes";
  }
  const len = readU32(buf, off + 8);
  const cap = type === FRAME_SEAL ? MAX_SEAL_PAYLOAD : maxPayload;
  return len > cap ? `length ${len} exceeds ${cap}` : null;
}
