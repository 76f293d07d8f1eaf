/**
 * Segment headers (see FORMAT.md, "Segment header"). New segments get an 80-byte version 2 header;
 * version 1 headers (32 bytes) are still read. Both keep the magic, the version, the header length
 * and a CRC of bytes 0..27 at the same positions, so any reader names the version it finds.
 *
 * @example
 * ```ts
 * import { decodeHeader, encodeHeader, newLogId } from "./header.ts";
 * const logId = newLogId();
 * const bytes = encodeHeader({ firstSeq: 42, maxRecordBytes: 1024, logId, prevEndSeq: 42,
 *   baseTimestamp: 1_700_000_000_000, indexCapacity: 2 });
 * const h = decodeHeader(bytes);
 * if (!h.ok || h.header.firstSeq !== 42 || h.header.dataStart !== 224) throw new Error("round trip");
 * ```
 * @module
 */
import { crc32 } from "./checksum.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { MAX_RECORD_BYTES } from "./limits.ts";

/** Bytes of a version 2 header. */
export const HEADER_BYTES = 80;
/** Bytes of a version 1 header. */
export const V1_HEADER_BYTES = 32;
/** The format version new segments are written in. */
export const FORMAT_VERSION = 2;
/** `KHIPUSEG` in ASCII. */
export const SEGMENT_MAGIC: Uint8Array = new TextEncoder().encode("KHIPUSEG");
/** Where the v2 mark slots and stored index entries begin: right after the header and two slots. */
export const INDEX_AREA_START = 160;
/** Bytes of one stored index entry. */
export const INDEX_ENTRY_BYTES = 32;
/** Most stored index entries a v2 header may reserve room for. */
export const MAX_INDEX_CAPACITY = 65_536;
/** Bytes of a log id. */
export const LOG_ID_BYTES = 16;

/** What a version 2 header records (the writer's input). */
export interface HeaderFields {
  /** Sequence number of the segment's first record (also in its file name). */
  firstSeq: number;
  /** The record-size cap in force when the segment was written; recovery trusts no longer length. */
  maxRecordBytes: number;
  /** The log's 128-bit identity. */
  logId: Uint8Array;
  /** One past the last record of the segment before this one (`< firstSeq`: seqs skipped). */
  prevEndSeq: number;
  /** No record in the segment is older; the first record's timestamp delta counts from it. */
  baseTimestamp: number;
  /** Stored index entries the file reserves room for after the mark slots (entry 0 is implied). */
  indexCapacity: number;
}

/** A decoded header of either version. Version 1 has no id, gap or base time. */
export interface SegmentHeader {
  /** 1 or 2. */
  version: 1 | 2;
  /** Sequence number of the segment's first record. */
  firstSeq: number;
  /** The record cap of the segment (at most 256 MiB, whatever the bytes say). */
  maxRecordBytes: number;
  /** Offset of the first frame: 32 in version 1. */
  dataStart: number;
  /** The log id (version 2), or null. */
  logId: Uint8Array | null;
  /** One past the previous segment's last record; `firstSeq` in version 1. */
  prevEndSeq: number;
  /** The base timestamp (version 2); 0 in version 1, whose frames carry whole timestamps. */
  baseTimestamp: number;
  /** Stored index entries the file has room for (0 in version 1). */
  indexCapacity: number;
}

/** The outcome of {@linkcode decodeHeader}: the header, or why it is not one. */
export type HeaderResult =
  | { ok: true; header: SegmentHeader }
  | { ok: false; reason: string; foreignVersion?: number };

/**
 * Offset of the first frame in a v2 segment reserving `indexCapacity` stored entries.
 *
 * @example
 * ```ts
 * import { dataStartFor } from "./header.ts";
 * if (dataStartFor(0) !== 160 || dataStartFor(2) !== 224) throw new Error(`${dataStartFor(2)}`);
 * ```
 */
export function dataStartFor(indexCapacity: number): number {
  return INDEX_AREA_START + INDEX_ENTRY_BYTES * indexCapacity;
}

/**
 * A new random log id (16 bytes from the runtime's cryptographic generator).
 *
 * @example
 * ```ts
 * import { logIdHex, newLogId } from "./header.ts";
 * if (logIdHex(newLogId()).length !== 32) throw new Error("32 hex digits");
 * ```
 */
export function newLogId(): Uint8Array {
  const id = new Uint8Array(LOG_ID_BYTES);
  do crypto.getRandomValues(id); while (id.every((b) => b === 0));
  return id;
}

/**
 * A log id as 32 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { logIdHex } from "./header.ts";
 * if (logIdHex(new Uint8Array(16).fill(171)) !== "ab".repeat(16)) throw new Error("hex");
 * ```
 */
export function logIdHex(id: Uint8Array): string {
  let s = "";
  for (const b of id) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * Encodes a version 2 segment header.
 *
 * @example
 * ```ts
 * import { encodeHeader, newLogId } from "./header.ts";
 * const bytes = encodeHeader({ firstSeq: 0, maxRecordBytes: 16 << 20, logId: newLogId(),
 *   prevEndSeq: 0, baseTimestamp: Date.now(), indexCapacity: 1025 });
 * if (bytes.length !== 80) throw new Error(`${bytes.length}`);
 * ```
 */
export function encodeHeader(h: HeaderFields): Uint8Array {
  const b = new Uint8Array(HEADER_BYTES);
  b.set(SEGMENT_MAGIC, 0);
  b[8] = FORMAT_VERSION & 0xff;
  b[9] = FORMAT_VERSION >>> 8;
  b[10] = HEADER_BYTES;
  writeU32(b, 12, h.maxRecordBytes);
  writeU64(b, 16, h.firstSeq);
  writeU32(b, 24, dataStartFor(h.indexCapacity));
  writeU32(b, 28, crc32(b.subarray(0, 28)));
  b.set(h.logId, 32);
  writeU64(b, 48, h.prevEndSeq);
  writeU64(b, 56, h.baseTimestamp);
  writeU32(b, 64, h.indexCapacity);
  writeU32(b, 76, crc32(b.subarray(32, 76)));
  return b;
}

/**
 * Decodes and checks a segment header of either version, in the order FORMAT.md gives. `b` holds
 * the file's first bytes (up to 80; a version 1 header needs 32).
 *
 * @example
 * ```ts
 * import { decodeHeader } from "./header.ts";
 * const h = decodeHeader(new Uint8Array(80));
 * if (h.ok || h.reason !== "bad magic") throw new Error("zeros decoded as a header");
 * ```
 */
export function decodeHeader(b: Uint8Array): HeaderResult {
  if (b.length < V1_HEADER_BYTES) return { ok: false, reason: "shorter than a header" };
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (b[i] !== SEGMENT_MAGIC[i]) return { ok: false, reason: "bad magic" };
  }
  if (readU32(b, 28) !== crc32(b.subarray(0, 28))) {
    return { ok: false, reason: "header checksum mismatch" };
  }
  const version = b[8] | (b[9] << 8);
  if (version !== 1 && version !== 2) {
    return { ok: false, reason: `unsupported format version ${version}`, foreignVersion: version };
  }
  const firstSeq = readU64(b, 16);
  // A reader never trusts a longer record than any writer may write, whatever the header says.
  const maxRecordBytes = Math.min(readU32(b, 12), MAX_RECORD_BYTES);
  if (version === 1) {
    if (b[10] !== V1_HEADER_BYTES || b[11] !== 0 || readU32(b, 24) !== 0) {
      return { ok: false, reason: "bad header length or reserved bits" };
    }
    if (Number.isNaN(firstSeq)) return { ok: false, reason: "first sequence number out of range" };
    return {
      ok: true,
      header: {
        version: 1,
        firstSeq,
        maxRecordBytes,
        dataStart: V1_HEADER_BYTES,
        logId: null,
        prevEndSeq: firstSeq,
        baseTimestamp: 0,
        indexCapacity: 0,
      },
    };
  }
  return decodeV2(b, firstSeq, maxRecordBytes);
}

function decodeV2(b: Uint8Array, firstSeq: number, maxRecordBytes: number): HeaderResult {
  if (b[10] !== HEADER_BYTES || b[11] !== 0) {
    return { ok: false, reason: "bad header length or reserved bits" };
  }
  if (b.length < HEADER_BYTES) return { ok: false, reason: "shorter than a header" };
  if (readU32(b, 76) !== crc32(b.subarray(32, 76))) {
    return { ok: false, reason: "header checksum mismatch (bytes 32..75)" };
  }
  for (let i = 68; i < 76; i++) {
    if (b[i] !== 0) return { ok: false, reason: "nonzero reserved header bytes" };
  }
  const indexCapacity = readU32(b, 64);
  if (indexCapacity > MAX_INDEX_CAPACITY) {
    return { ok: false, reason: `index capacity ${indexCapacity} out of range` };
  }
  const dataStart = readU32(b, 24);
  if (dataStart !== dataStartFor(indexCapacity)) {
    return { ok: false, reason: `data start ${dataStart} does not fit index capacity` };
  }
  const prevEndSeq = readU64(b, 48);
  const baseTimestamp = readU64(b, 56);
  if (Number.isNaN(firstSeq) || Number.isNaN(prevEndSeq) || prevEndSeq > firstSeq) {
    return { ok: false, reason: "sequence numbers out of range" };
  }
  if (Number.isNaN(baseTimestamp)) return { ok: false, reason: "base timestamp out of range" };
  const logId = b.slice(32, 48);
  if (logId.every((x) => x === 0)) return { ok: false, reason: "log id is zero" };
  return {
    ok: true,
    header: {
      version: 2,
      firstSeq,
      maxRecordBytes,
      dataStart,
      logId,
      prevEndSeq,
      baseTimestamp,
      indexCapacity,
    },
  };
}

/**
 * The CRC every v2 structure after the header is seeded with: CRC-32 of the log id followed by a
 * little-endian u64 (`firstSeq` for mark slots and index entries).
 *
 * @example
 * ```ts
 * import { crc32 } from "./checksum.ts";
 * import { seedOf } from "./header.ts";
 * const id = new Uint8Array(16).fill(1);
 * const bytes = new Uint8Array(24);
 * bytes.set(id);
 * bytes[16] = 5;
 * if (seedOf(id, 5) !== crc32(bytes)) throw new Error("seed");
 * ```
 */
export function seedOf(logId: Uint8Array, value: number): number {
  const b = new Uint8Array(LOG_ID_BYTES + 8);
  b.set(logId);
  writeU64(b, LOG_ID_BYTES, value);
  return crc32(b);
}
