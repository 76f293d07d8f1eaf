/**
 * The v2 seal: the frame (type 2) that ends a sealed segment. Its payload says where the segment
 * ends (`endSeq`), its first and last record timestamps, and its sparse index of
 * (seq, offset, previous timestamp) entries, so a later open trusts the segment without scanning
 * it and a reader seeks into it by sequence number or by time. The last four bytes of the file
 * give the seal frame's size, so the seal is found from the end.
 *
 * @example
 * ```ts
 * import { decodeSealPayload, encodeSealFrame, SEAL_PAYLOAD_START } from "./seal.ts";
 * import { SparseIndex } from "./sparse_index.ts";
 * const index = new SparseIndex();
 * index.push(0, 160, 1_000);
 * const frame = encodeSealFrame({ idCrc: 0, endSeq: 10, firstTimestamp: 1_000,
 *   lastTimestamp: 1_009, sealTimestamp: 1_010, index });
 * const bounds = { firstSeq: 0, endSeq: 10, sealAt: 500, dataStart: 160, baseTimestamp: 1_000 };
 * const payload = frame.subarray(frame.length - (SEAL_PAYLOAD_START + 24 + 4));
 * const seal = decodeSealPayload(payload, frame.length, bounds);
 * if (typeof seal === "string" || seal.lastTimestamp !== 1_009) throw new Error(String(seal));
 * ```
 * @module
 */
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { encodeFrame, FRAME_SEAL, frameBytes, MAX_FRAME_HEADER_BYTES } from "./frame.ts";
import { INDEX_INTERVAL_BYTES } from "./limits.ts";
import { SparseIndex } from "./sparse_index.ts";
import { readVarint, varintEnd } from "./varint.ts";

/** Bytes of the seal payload before its index entries: endSeq, two timestamps, the count. */
export const SEAL_PAYLOAD_START = 28;
/** Bytes of one index entry in a seal. */
const SEAL_ENTRY_BYTES = 24;

/**
 * Most index entries a seal at byte `sealAt` of a segment whose frames start at `dataStart` may
 * list: the first entry is at `dataStart` and each later one at least 64 KiB further on.
 *
 * @example
 * ```ts
 * import { maxIndexEntries } from "./seal.ts";
 * if (maxIndexEntries(160 + 65_536, 160) !== 2) throw new Error("two entries fit");
 * ```
 */
export function maxIndexEntries(sealAt: number, dataStart: number): number {
  return Math.floor(Math.max(0, sealAt - dataStart) / INDEX_INTERVAL_BYTES) + 1;
}

/**
 * The largest seal frame a segment whose records end at `sealAt` can have, so a trailer claiming
 * more is damage, found before anything is allocated.
 *
 * @example
 * ```ts
 * import { maxSealFrameBytes } from "./seal.ts";
 * if (maxSealFrameBytes(1000, 160) !== 18 + 28 + 24 + 4) throw new Error("one entry");
 * ```
 */
export function maxSealFrameBytes(sealAt: number, dataStart: number): number {
  return MAX_FRAME_HEADER_BYTES + SEAL_PAYLOAD_START + 4 +
    SEAL_ENTRY_BYTES * maxIndexEntries(sealAt, dataStart);
}

/** What a seal records. */
export interface SealFields {
  /** CRC-32 of the log id (the frame's CRC seed). */
  idCrc: number;
  /** One past the segment's last record: the seal's own sequence number. */
  endSeq: number;
  /** Timestamp of the segment's first record. */
  firstTimestamp: number;
  /** Timestamp of its last record. */
  lastTimestamp: number;
  /** When it was sealed (at least `lastTimestamp`). */
  sealTimestamp: number;
  /** Its sparse index. */
  index: SparseIndex;
}

/**
 * Encodes the seal frame of a segment.
 *
 * @example
 * ```ts
 * import { encodeSealFrame } from "./seal.ts";
 * import { SparseIndex } from "./sparse_index.ts";
 * const index = new SparseIndex();
 * index.push(0, 160, 0);
 * const seal = encodeSealFrame({ idCrc: 0, endSeq: 1, firstTimestamp: 5, lastTimestamp: 5,
 *   sealTimestamp: 6, index });
 * if (seal.length !== 7 + 56) throw new Error(`${seal.length}`); // frame header, payload
 * ```
 */
export function encodeSealFrame(s: SealFields): Uint8Array {
  const n = s.index.length;
  const payload = new Uint8Array(SEAL_PAYLOAD_START + SEAL_ENTRY_BYTES * n + 4);
  writeU64(payload, 0, s.endSeq);
  writeU64(payload, 8, s.firstTimestamp);
  writeU64(payload, 16, s.lastTimestamp);
  writeU32(payload, 24, n);
  let o = SEAL_PAYLOAD_START;
  for (let i = 0; i < n; i++, o += SEAL_ENTRY_BYTES) {
    writeU64(payload, o, s.index.seqAt(i));
    writeU64(payload, o + 8, s.index.offsetAt(i));
    writeU64(payload, o + 16, s.index.timestampAt(i));
  }
  const delta = s.sealTimestamp - s.lastTimestamp;
  writeU32(payload, o, frameBytes(payload.length, delta));
  return encodeFrame(FRAME_SEAL, s.idCrc, s.endSeq, delta, payload);
}

/** Where a seal sits, which bounds what it may say. */
export interface SealBounds {
  /** The segment's first sequence number. */
  firstSeq: number;
  /** The seal's sequence number, which seeded its CRC: the payload must say the same. */
  endSeq: number;
  /** Byte offset of the seal frame (the end of the records). */
  sealAt: number;
  /** Offset of the segment's first frame. */
  dataStart: number;
  /** The segment's base timestamp. */
  baseTimestamp: number;
}

/** A decoded seal. */
export interface Seal {
  /** Timestamp of the first record. */
  firstTimestamp: number;
  /** Timestamp of the last record. */
  lastTimestamp: number;
  /** The sparse index. */
  index: SparseIndex;
}

/**
 * What a v2 seal frame says its sequence number and last record timestamp are, read before its
 * CRC can be checked (the CRC is seeded with the seq, and the frame's delta counts from that
 * timestamp): decoding the frame with them then proves both. Null if the bytes cannot be a seal.
 *
 * @example
 * ```ts
 * import { encodeSealFrame, peekSeal } from "./seal.ts";
 * import { SparseIndex } from "./sparse_index.ts";
 * const index = new SparseIndex();
 * index.push(4, 160, 0);
 * const f = encodeSealFrame({ idCrc: 1, endSeq: 9, firstTimestamp: 2, lastTimestamp: 3,
 *   sealTimestamp: 3, index });
 * if (peekSeal(f)?.endSeq !== 9) throw new Error("peek");
 * ```
 */
export function peekSeal(frame: Uint8Array): { endSeq: number; lastTimestamp: number } | null {
  if (frame.length < 7 || frame[4] !== FRAME_SEAL) return null;
  if (readVarint(frame, 5, frame.length, 5) < 0) return null;
  if (readVarint(frame, varintEnd, frame.length, 8) < 0) return null;
  const at = varintEnd;
  if (frame.length < at + SEAL_PAYLOAD_START) return null;
  return { endSeq: readU64(frame, at), lastTimestamp: readU64(frame, at + 16) };
}

/**
 * Decodes a seal payload (already checksum-verified as part of its frame of `frameBytes` bytes)
 * and checks that it fits the segment (FORMAT.md, "Seal"). Returns the seal, or why it is
 * malformed.
 *
 * @example
 * ```ts
 * import { decodeSealPayload } from "./seal.ts";
 * const bounds = { firstSeq: 0, endSeq: 1, sealAt: 200, dataStart: 160, baseTimestamp: 0 };
 * const r = decodeSealPayload(new Uint8Array(3), 10, bounds);
 * if (r !== "seal payload too short") throw new Error(String(r));
 * ```
 */
export function decodeSealPayload(
  payload: Uint8Array,
  frameBytes: number,
  b: SealBounds,
): Seal | string {
  if (payload.length < SEAL_PAYLOAD_START + 4) return "seal payload too short";
  const n = readU32(payload, 24);
  if (payload.length !== SEAL_PAYLOAD_START + SEAL_ENTRY_BYTES * n + 4) {
    return "seal index length does not match its entry count";
  }
  if (readU32(payload, payload.length - 4) !== frameBytes) return "seal trailer mismatch";
  if (readU64(payload, 0) !== b.endSeq) return "seal sequence number does not match its position";
  if (b.endSeq <= b.firstSeq) return "seal of a segment without records";
  const firstTimestamp = readU64(payload, 8);
  const lastTimestamp = readU64(payload, 16);
  if (!(firstTimestamp >= b.baseTimestamp && lastTimestamp >= firstTimestamp)) {
    return "seal timestamps out of order";
  }
  const most = maxIndexEntries(b.sealAt, b.dataStart);
  if (n < 1 || n > most) return `seal index lists ${n} entries, not 1 to ${most}`;
  const index = new SparseIndex(n);
  let prev = { seq: b.firstSeq - 1, offset: b.dataStart - 1, ts: b.baseTimestamp };
  for (let i = 0, o = SEAL_PAYLOAD_START; i < n; i++, o += SEAL_ENTRY_BYTES) {
    const seq = readU64(payload, o);
    const offset = readU64(payload, o + 8);
    const ts = readU64(payload, o + 16);
    const first = i > 0 ||
      (seq === b.firstSeq && offset === b.dataStart && ts === b.baseTimestamp);
    if (
      !first || !(seq > prev.seq && seq < b.endSeq && offset > prev.offset && offset < b.sealAt &&
        ts >= prev.ts && ts <= lastTimestamp)
    ) {
      return `seal index entry ${i} (seq ${seq}, offset ${offset}) is out of order or range`;
    }
    index.push(seq, offset, ts);
    prev = { seq, offset, ts };
  }
  return { firstTimestamp, lastTimestamp, index };
}
