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
 * const frame = encodeSealFrame(10, Date.now(), [{ seq: 0, offset: 32 }]);
 * const idx = decodeSealPayload(frame.subarray(28), frame.length);
 * console.assert(idx !== null && idx[0].offset === 32);
 * ```
 * @module
 */
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { encodeFrame, FRAME_HEADER_BYTES, FRAME_SEAL } from "./frame.ts";

/** One sparse-index entry: a frame with sequence number `seq` starts at byte `offset`. */
export interface IndexEntry {
  /** Sequence number of the frame. */
  seq: number;
  /** Byte offset of the frame in its segment file. */
  offset: number;
}

/**
 * Encodes the seal frame of a segment whose next sequence number is `nextSeq`.
 *
 * @example
 * ```ts
 * import { encodeSealFrame } from "./seal.ts";
 * const seal = encodeSealFrame(64, Date.now(), []); // 36 bytes
 * ```
 */
export function encodeSealFrame(
  nextSeq: number,
  timestamp: number,
  index: readonly IndexEntry[],
): Uint8Array {
  const payload = new Uint8Array(8 + 16 * index.length);
  writeU32(payload, 0, index.length);
  let o = 4;
  for (const e of index) {
    writeU64(payload, o, e.seq);
    writeU64(payload, o + 8, e.offset);
    o += 16;
  }
  writeU32(payload, o, FRAME_HEADER_BYTES + payload.length);
  return encodeFrame(FRAME_SEAL, nextSeq, timestamp, payload);
}

/**
 * Decodes a seal payload (already checksum-verified as part of its frame). Returns `null` if its
 * structure is inconsistent with `frameBytes`, the size of the frame it came from.
 *
 * @example
 * ```ts
 * import { decodeSealPayload } from "./seal.ts";
 * console.log(decodeSealPayload(new Uint8Array(3), 31)); // null
 * ```
 */
export function decodeSealPayload(payload: Uint8Array, frameBytes: number): IndexEntry[] | null {
  if (payload.length < 8) return null;
  const n = readU32(payload, 0);
  if (payload.length !== 8 + 16 * n) return null;
  if (readU32(payload, payload.length - 4) !== frameBytes) return null;
  const out: IndexEntry[] = [];
  for (let i = 0, o = 4; i < n; i++, o += 16) {
    const seq = readU64(payload, o);
    const offset = readU64(payload, o + 8);
    if (Number.isNaN(seq) || Number.isNaN(offset)) return null;
    out.push({ seq, offset });
  }
  return out;
}

/** Reads the trailing u32 of a sealed segment: the size of its seal frame. */
export function sealSizeFromTrailer(last4: Uint8Array): number {
  return readU32(last4, 0);
}
