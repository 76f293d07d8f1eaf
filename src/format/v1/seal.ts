/**
 * The seal: the frame (type 2) that ends a sealed segment and carries its sparse index, so a later
 * open trusts the segment without scanning it and a reader seeks into it directly.
 *
 * Seal payload: u32 entry count, then per entry u64 sequence number and u64 byte offset of a frame
 * that starts there, then u32 = size of the whole seal frame (header included), so the seal can be
 * found from the end of the file. The seal's own sequence number is one past the segment's last
 * record, which is the first sequence number of the next segment.
 *
 * @example
 * ```ts
 * import { decodeSealPayload, encodeSealFrame } from "./seal.ts";
 * import { SparseIndex } from "../sparse_index.ts";
 * const index = new SparseIndex();
 * index.push(0, 32);
 * const frame = encodeSealFrame(10, Date.now(), index);
 * const bounds = { firstSeq: 0, endSeq: 10, sealAt: 100 };
 * const idx = decodeSealPayload(frame.subarray(28), frame.length, bounds);
 * if (typeof idx === "string" || idx.offsetAt(0) !== 32) throw new Error(String(idx));
 * ```
 * @module
 */
import { readU32, readU64, writeU32, writeU64 } from "../bytes.ts";
import { INDEX_INTERVAL_BYTES } from "../limits.ts";
import { encodeFrame, FRAME_HEADER_BYTES, FRAME_SEAL } from "./frame.ts";
import { V1_HEADER_BYTES as HEADER_BYTES } from "../header.ts";
import { SparseIndex } from "../sparse_index.ts";

/** Bytes of the smallest seal frame (no index entry). */
export const MIN_SEAL_FRAME_BYTES: number = FRAME_HEADER_BYTES + 8;

/**
 * Most index entries a seal at byte `sealAt` may list: the first entry is at or after byte 32 and
 * each later one at least {@linkcode INDEX_INTERVAL_BYTES} further on.
 *
 * @example
 * ```ts
 * import { maxIndexEntries } from "./seal.ts";
 * if (maxIndexEntries(32 + 65_536) !== 2) throw new Error(`${maxIndexEntries(32 + 65_536)}`);
 * ```
 */
export function maxIndexEntries(sealAt: number): number {
  return Math.floor(Math.max(0, sealAt - HEADER_BYTES) / INDEX_INTERVAL_BYTES) + 1;
}

/**
 * Size of the seal frame of a segment whose records end at byte `sealAt`: the largest a valid
 * seal there can be, so a trailer claiming more is damage, found before anything is allocated.
 *
 * @example
 * ```ts
 * import { maxSealFrameBytes } from "./seal.ts";
 * if (maxSealFrameBytes(100) !== 52) throw new Error(`${maxSealFrameBytes(100)}`);
 * ```
 */
export function maxSealFrameBytes(sealAt: number): number {
  return MIN_SEAL_FRAME_BYTES + 16 * maxIndexEntries(sealAt);
}

/**
 * Encodes the seal frame of a segment whose next sequence number is `nextSeq`.
 *
 * @example
 * ```ts
 * import { encodeSealFrame } from "./seal.ts";
 * import { SparseIndex } from "../sparse_index.ts";
 * const seal = encodeSealFrame(64, Date.now(), new SparseIndex());
 * if (seal.length !== 36) throw new Error(`${seal.length}`); // header, count, trailer
 * ```
 */
export function encodeSealFrame(
  nextSeq: number,
  timestamp: number,
  index: SparseIndex,
): Uint8Array {
  const payload = new Uint8Array(8 + 16 * index.length);
  writeU32(payload, 0, index.length);
  let o = 4;
  for (let i = 0; i < index.length; i++, o += 16) {
    writeU64(payload, o, index.seqAt(i));
    writeU64(payload, o + 8, index.offsetAt(i));
  }
  writeU32(payload, o, FRAME_HEADER_BYTES + payload.length);
  return encodeFrame(FRAME_SEAL, nextSeq, timestamp, payload);
}

/** Where a seal sits, which bounds what its index may say. */
export interface SealBounds {
  /** The segment's first sequence number. */
  firstSeq: number;
  /** The seal's sequence number (one past the last record). */
  endSeq: number;
  /** Byte offset of the seal frame (the end of the records). */
  sealAt: number;
}

/**
 * Decodes a seal payload (already checksum-verified as part of its frame of `frameBytes` bytes) and
 * checks that its index fits the segment: at most {@linkcode maxIndexEntries} entries, ascending,
 * sequence numbers in `[firstSeq, endSeq)`, offsets in `[32, sealAt)`. Returns the index, or the
 * reason it is malformed.
 *
 * @example
 * ```ts
 * import { decodeSealPayload } from "./seal.ts";
 * const r = decodeSealPayload(new Uint8Array(3), 31, { firstSeq: 0, endSeq: 1, sealAt: 64 });
 * if (r !== "seal payload too short") throw new Error(String(r));
 * ```
 */
export function decodeSealPayload(
  payload: Uint8Array,
  frameBytes: number,
  bounds: SealBounds,
): SparseIndex | string {
  if (payload.length < 8) return "seal payload too short";
  const n = readU32(payload, 0);
  if (payload.length !== 8 + 16 * n) return "seal index length does not match its entry count";
  if (readU32(payload, payload.length - 4) !== frameBytes) return "seal trailer mismatch";
  if (n > maxIndexEntries(bounds.sealAt)) {
    return `seal index lists ${n} entries, more than ${maxIndexEntries(bounds.sealAt)} fit`;
  }
  const index = new SparseIndex(n);
  let prevSeq = bounds.firstSeq - 1;
  let prevOffset = HEADER_BYTES - 1;
  for (let i = 0, o = 4; i < n; i++, o += 16) {
    const seq = readU64(payload, o);
    const offset = readU64(payload, o + 8);
    if (!(seq > prevSeq && seq < bounds.endSeq && offset > prevOffset && offset < bounds.sealAt)) {
      return `seal index entry ${i} (seq ${seq}, offset ${offset}) is out of order or range`;
    }
    index.push(seq, offset);
    prevSeq = seq;
    prevOffset = offset;
  }
  return index;
}

/** Reads the trailing u32 of a sealed segment: the size of its seal frame. */
export function sealSizeFromTrailer(last4: Uint8Array): number {
  return readU32(last4, 0);
}
