/**
 * Format v2 frames (see FORMAT.md, "Frame"): a CRC, a type byte, the payload length and the
 * timestamp delta as varints, then the payload. The sequence number is not stored: it is the one
 * that belongs at the frame's position, and the CRC covers it together with the log id, so a frame
 * of another log, or a stale one at another position, never decodes.
 *
 * | bytes | field |
 * |---|---|
 * | 4 | CRC-32 of (log id, u64 seq, the frame from its type byte to the end of the payload) |
 * | 1 | type: 1 = record ending its batch, 3 = record whose batch goes on, 2 = seal; 0 never valid |
 * | 1-5 | payload length |
 * | 1-8 | timestamp minus the previous record's (ms) |
 *
 * @example
 * ```ts
 * import { crc32 } from "./checksum.ts";
 * import { decodeFrame, encodeFrame, FRAME_RECORD } from "./frame.ts";
 * const idCrc = crc32(new Uint8Array(16).fill(7)); // the log id's CRC seeds every frame
 * const f = encodeFrame(FRAME_RECORD, idCrc, 7, 3, new Uint8Array([1, 2, 3]));
 * const d = decodeFrame(f, 0, f.length, idCrc, 7, 1_000, 1024);
 * if (d.status !== "ok" || d.timestamp !== 1_003 || f.length !== 10) throw new Error(d.status);
 * ```
 * @module
 */
import { crc32, crc32U64 } from "./checksum.ts";
import { readU32, writeU32 } from "./bytes.ts";
import { MAX_SEAL_PAYLOAD } from "./limits.ts";
import { readVarint, VARINT_SHORT, varintBytes, varintEnd, writeVarint } from "./varint.ts";

/** Frame type of a record that ends its batch (or stands alone). */
export const FRAME_RECORD = 1;
/** Frame type of the seal that ends a sealed segment. */
export const FRAME_SEAL = 2;
/** Frame type of a record whose batch continues in the next frame. */
export const FRAME_RECORD_MORE = 3;
/** Bytes of the smallest frame: CRC, type, a one-byte length and a one-byte delta. */
export const MIN_FRAME_BYTES = 7;
/** Most bytes a frame's header (CRC, type, both varints) takes. */
export const MAX_FRAME_HEADER_BYTES = 18;

/** A frame that checked out. Payload is `buf[payloadStart, payloadEnd)`. */
export interface FrameOk {
  /** Frame is whole and valid. */
  status: "ok";
  /** {@linkcode FRAME_RECORD}, {@linkcode FRAME_RECORD_MORE} or {@linkcode FRAME_SEAL}. */
  type: number;
  /** Sequence number (the expected one). */
  seq: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** Start of the payload in the buffer. */
  payloadStart: number;
  /** End (exclusive) of the payload in the buffer. */
  payloadEnd: number;
  /** Whole frame size, header included. */
  frameBytes: number;
}

/** The bytes available end before the frame does; `need` is the frame size known so far. */
export interface FrameShort {
  /** More bytes are needed. */
  status: "short";
  /** Bytes the frame needs from its start. */
  need: number;
}

/** The bytes at this offset are not a valid frame for this position. */
export interface FrameBad {
  /** Not a frame. */
  status: "bad";
  /** Why, for error messages. */
  reason: string;
}

/** Result of {@linkcode decodeFrame}. */
export type FrameResult = FrameOk | FrameShort | FrameBad;

/**
 * Bytes the frame of a `length`-byte payload with timestamp delta `delta` takes.
 *
 * @example
 * ```ts
 * import { frameBytes } from "./frame.ts";
 * if (frameBytes(100, 0) !== 107) throw new Error(`${frameBytes(100, 0)}`); // 7 bytes of framing
 * ```
 */
export function frameBytes(length: number, delta: number): number {
  return 5 + varintBytes(length) + varintBytes(delta) + length;
}

/**
 * Encodes one frame into `buf` at `off` (room for {@linkcode frameBytes} bytes) and returns the
 * offset after it. `idCrc` is the CRC-32 of the log id; `delta` is the timestamp minus the
 * previous record's.
 *
 * @example
 * ```ts
 * import { encodeFrameInto, FRAME_RECORD } from "./frame.ts";
 * const buf = new Uint8Array(64);
 * const end = encodeFrameInto(buf, 0, FRAME_RECORD, 0, 0, 0, new Uint8Array(4));
 * if (end !== 11) throw new Error(`${end}`);
 * ```
 */
export function encodeFrameInto(
  buf: Uint8Array,
  off: number,
  type: number,
  idCrc: number,
  seq: number,
  delta: number,
  payload: Uint8Array,
): number {
  buf[off + 4] = type;
  let p = writeVarint(buf, off + 5, payload.length);
  p = writeVarint(buf, p, delta);
  buf.set(payload, p);
  const end = p + payload.length;
  writeU32(buf, off, crc32(buf.subarray(off + 4, end), crc32U64(seq, idCrc)));
  return end;
}

/**
 * Encodes one frame into a new buffer.
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * const bytes = encodeFrame(FRAME_RECORD, 0, 0, 0, new TextEncoder().encode("hello"));
 * if (bytes.length !== 12) throw new Error(`${bytes.length}`);
 * ```
 */
export function encodeFrame(
  type: number,
  idCrc: number,
  seq: number,
  delta: number,
  payload: Uint8Array,
): Uint8Array {
  const buf = new Uint8Array(frameBytes(payload.length, delta));
  encodeFrameInto(buf, 0, type, idCrc, seq, delta, payload);
  return buf;
}

/** What a frame's first bytes say, before its checksum is checked (see {@linkcode peekFrame}). */
export interface FramePeek {
  /** Its type, length and delta are well formed. */
  status: "ok";
  /** {@linkcode FRAME_RECORD}, {@linkcode FRAME_RECORD_MORE} or {@linkcode FRAME_SEAL}. */
  type: number;
  /** Timestamp delta from the previous record. */
  delta: number;
  /** Start of the payload in the buffer. */
  payloadStart: number;
  /** Payload length. */
  length: number;
  /** Whole frame size, header included (the bytes may not all be available). */
  frameBytes: number;
}

/**
 * Checks a frame's type, length (at most `maxPayload` for records, {@linkcode MAX_SEAL_PAYLOAD}
 * for seals) and delta varint, FORMAT.md's steps 1 to 3 and the delta's form: what can be known
 * without the sequence number the CRC is seeded with. Repair walks damaged bytes with it to find
 * where whole frames start again (`../salvage.ts`).
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_RECORD, peekFrame } from "./frame.ts";
 * const f = encodeFrame(FRAME_RECORD, 0, 9, 2, new Uint8Array(300));
 * const p = peekFrame(f, 0, f.length, 1024);
 * if (p.status !== "ok" || p.frameBytes !== f.length || p.delta !== 2) throw new Error(p.status);
 * ```
 */
export function peekFrame(
  buf: Uint8Array,
  off: number,
  end: number,
  maxPayload: number,
): FramePeek | FrameShort | FrameBad {
  if (end - off < MIN_FRAME_BYTES) return { status: "short", need: MIN_FRAME_BYTES };
  const type = buf[off + 4];
  if (type !== FRAME_RECORD && type !== FRAME_RECORD_MORE && type !== FRAME_SEAL) {
    return { status: "bad", reason: `bad frame type ${type}` };
  }
  // One-byte varints (lengths below 128, deltas below 128 ms) are the common case: no call.
  let length = buf[off + 5];
  let p = off + 6;
  if (length >= 128) {
    length = readVarint(buf, off + 5, end, 5);
    if (length < 0) return varintProblem(length, "length", end - off);
    p = varintEnd;
  }
  const cap = type === FRAME_SEAL ? MAX_SEAL_PAYLOAD : maxPayload;
  if (length > cap) return { status: "bad", reason: `length ${length} exceeds ${cap}` };
  if (p >= end) return { status: "short", need: p - off + 1 };
  let delta = buf[p];
  if (delta < 128) p++;
  else {
    delta = readVarint(buf, p, end, 8);
    if (delta < 0) return varintProblem(delta, "timestamp delta", end - off);
    p = varintEnd;
  }
  return { status: "ok", type, delta, payloadStart: p, length, frameBytes: p - off + length };
}

/**
 * Checks the frame at `buf[off, end)` in the order FORMAT.md gives: its type, its length (at most
 * `maxPayload` for records, {@linkcode MAX_SEAL_PAYLOAD} for seals), its timestamp delta, then its
 * CRC seeded with the log id's CRC and `expectedSeq`, the sequence number that belongs here.
 * `prevTimestamp` is the previous record's timestamp (the segment's base timestamp for the first).
 *
 * @example
 * ```ts
 * import { decodeFrame } from "./frame.ts";
 * const zeros = new Uint8Array(4096);
 * const d = decodeFrame(zeros, 0, zeros.length, 0, 0, 0, 1024);
 * if (d.status !== "bad" || d.reason !== "bad frame type 0") throw new Error(d.status);
 * ```
 */
export function decodeFrame(
  buf: Uint8Array,
  off: number,
  end: number,
  idCrc: number,
  expectedSeq: number,
  prevTimestamp: number,
  maxPayload: number,
): FrameResult {
  const f = peekFrame(buf, off, end, maxPayload);
  if (f.status !== "ok") return f;
  const timestamp = prevTimestamp + f.delta;
  if (timestamp > Number.MAX_SAFE_INTEGER) return { status: "bad", reason: "timestamp too large" };
  const payloadStart = f.payloadStart;
  const payloadEnd = payloadStart + f.length;
  if (end < payloadEnd) return { status: "short", need: f.frameBytes };
  if (
    readU32(buf, off) !== crc32(buf.subarray(off + 4, payloadEnd), crc32U64(expectedSeq, idCrc))
  ) {
    return { status: "bad", reason: "checksum mismatch" };
  }
  return {
    status: "ok",
    type: f.type,
    seq: expectedSeq,
    timestamp,
    payloadStart,
    payloadEnd,
    frameBytes: f.frameBytes,
  };
}

/** A varint that ran past the available bytes needs more of them; any other problem is bad. */
function varintProblem(code: number, what: string, available: number): FrameShort | FrameBad {
  if (code === VARINT_SHORT) return { status: "short", need: available + 1 };
  return { status: "bad", reason: `malformed ${what}` };
}
