/**
 * The 32-byte segment header (see FORMAT.md, "Segment header").
 *
 * @example
 * ```ts
 * import { decodeHeader, encodeHeader } from "./header.ts";
 * const h = decodeHeader(encodeHeader({ firstSeq: 42, maxRecordBytes: 1024 }));
 * if (!h.ok || h.header.firstSeq !== 42) throw new Error("header did not round-trip");
 * ```
 * @module
 */
import { crc32 } from "./checksum.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { MAX_RECORD_BYTES } from "./frame.ts";

/** Bytes in a segment header. */
export const HEADER_BYTES = 32;
/** The format version written by this code; bumped on any change to the bytes. */
export const FORMAT_VERSION = 1;
/** `KHIPUSEG` in ASCII. */
export const SEGMENT_MAGIC: Uint8Array = new TextEncoder().encode("KHIPUSEG");

/** What a segment header records. */
export interface SegmentHeader {
  /** Sequence number of the segment's first record (also in its file name). */
  firstSeq: number;
  /** The record-size cap in force when the segment was written; recovery trusts no longer length. */
  maxRecordBytes: number;
}

/** The outcome of {@linkcode decodeHeader}: the header, or why it is not one. */
export type HeaderResult =
  | { ok: true; header: SegmentHeader }
  | { ok: false; reason: string; foreignVersion?: number };

/**
 * Encodes a segment header.
 *
 * @example
 * ```ts
 * import { encodeHeader } from "./header.ts";
 * const bytes = encodeHeader({ firstSeq: 0, maxRecordBytes: 16 << 20 });
 * if (bytes.length !== 32) throw new Error(`${bytes.length}`);
 * ```
 */
export function encodeHeader(h: SegmentHeader): Uint8Array {
  const b = new Uint8Array(HEADER_BYTES);
  b.set(SEGMENT_MAGIC, 0);
  b[8] = FORMAT_VERSION & 0xff;
  b[9] = FORMAT_VERSION >>> 8;
  b[10] = HEADER_BYTES;
  b[11] = 0;
  writeU32(b, 12, h.maxRecordBytes);
  writeU64(b, 16, h.firstSeq);
  writeU32(b, 24, 0);
  writeU32(b, 28, crc32(b.subarray(0, 28)));
  return b;
}

/**
 * Decodes and checks a segment header (magic, version, length, reserved bits and checksum).
 *
 * @example
 * ```ts
 * import { decodeHeader } from "./header.ts";
 * const h = decodeHeader(new Uint8Array(32));
 * if (h.ok || h.reason !== "bad magic") throw new Error("zeros decoded as a header");
 * ```
 */
export function decodeHeader(b: Uint8Array): HeaderResult {
  if (b.length < HEADER_BYTES) return { ok: false, reason: "shorter than a header" };
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (b[i] !== SEGMENT_MAGIC[i]) return { ok: false, reason: "bad magic" };
  }
  if (readU32(b, 28) !== crc32(b.subarray(0, 28))) {
    return { ok: false, reason: "header checksum mismatch" };
  }
  const version = b[8] | (b[9] << 8);
  if (version !== FORMAT_VERSION) {
    return { ok: false, reason: `unsupported format version ${version}`, foreignVersion: version };
  }
  if (b[10] !== HEADER_BYTES || b[11] !== 0 || readU32(b, 24) !== 0) {
    return { ok: false, reason: "bad header length or reserved bits" };
  }
  const firstSeq = readU64(b, 16);
  if (Number.isNaN(firstSeq)) return { ok: false, reason: "first sequence number out of range" };
  // A reader never trusts a longer record than any writer may write, whatever the header says.
  const maxRecordBytes = Math.min(readU32(b, 12), MAX_RECORD_BYTES);
  return { ok: true, header: { firstSeq, maxRecordBytes } };
}
