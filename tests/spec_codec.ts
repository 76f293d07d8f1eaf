// FORMAT.md's byte layout, encoded from the document alone with DataView and zlib.crc32 and
// independent of src/format, so tests that build segments by hand do not trust the code they test.
// The first part is version 1 (FORMAT.md "Version 1 (read only)": specHeader, specFrame, specSeal,
// decodeV1Segment); the second is version 2 (v2Header, v2Slot, v2Entry, v2Frame, v2Seal, the
// whole-segment builder and decoder, and FORMAT.md's recovery of a newest segment as a model).
import { crc32 } from "node:zlib";

const enc = new TextEncoder();
export const MAGIC: Uint8Array = enc.encode("KHIPUSEG");
export const HEADER = 32;
export const FH = 28;

export function u32(n: number): number {
  return n >>> 0;
}

/** FORMAT.md "Segment header". */
export function specHeader(firstSeq: number, maxRecordBytes: number, version = 1): Uint8Array {
  const b = new Uint8Array(HEADER);
  const v = new DataView(b.buffer);
  b.set(MAGIC, 0); // 0..7 magic
  v.setUint16(8, version, true); // 8..9 version
  v.setUint8(10, HEADER); // 10 header length
  v.setUint8(11, 0); // 11 reserved
  v.setUint32(12, maxRecordBytes, true); // 12..15 max record bytes
  v.setBigUint64(16, BigInt(firstSeq), true); // 16..23 first seq
  v.setUint32(24, 0, true); // 24..27 reserved
  v.setUint32(28, u32(crc32(b.subarray(0, 28))), true); // 28..31 CRC-32 of 0..27
  return b;
}

/** FORMAT.md "Frame". */
export function specFrame(
  type: number,
  seq: number,
  timestamp: number,
  payload: Uint8Array,
): Uint8Array {
  const b = new Uint8Array(FH + payload.length);
  const v = new DataView(b.buffer);
  v.setUint8(4, type);
  // 5..7 reserved zero (already zero)
  v.setUint32(8, payload.length, true);
  v.setBigUint64(12, BigInt(seq), true);
  v.setBigUint64(20, BigInt(timestamp), true);
  b.set(payload, FH);
  v.setUint32(0, u32(crc32(b.subarray(4))), true);
  return b;
}

/** FORMAT.md "Seal": u32 n, n x (u64 seq, u64 offset), u32 size of the whole seal frame. */
export function specSeal(
  nextSeq: number,
  timestamp: number,
  index: [number, number][],
): Uint8Array {
  const payload = new Uint8Array(4 + 16 * index.length + 4);
  const v = new DataView(payload.buffer);
  v.setUint32(0, index.length, true);
  index.forEach(([seq, off], i) => {
    v.setBigUint64(4 + 16 * i, BigInt(seq), true);
    v.setBigUint64(12 + 16 * i, BigInt(off), true);
  });
  v.setUint32(payload.length - 4, FH + payload.length, true);
  return specFrame(2, nextSeq, timestamp, payload);
}

/** FORMAT.md "Files": 20 zero-padded digits of the first sequence number, then `.seg`. */
export const segName = (firstSeq: number): string => `${String(firstSeq).padStart(20, "0")}.seg`;

export interface V1Frame {
  offset: number;
  type: number;
  seq: number;
  timestamp: number;
  payload: Uint8Array;
}

/** FORMAT.md "Version 1 (read only)": a whole v1 segment, strictly; throws on anything it forbids. */
export function decodeV1Segment(bytes: Uint8Array, sealed: boolean): {
  firstSeq: number;
  maxRecordBytes: number;
  frames: V1Frame[];
  seal: { offset: number; seq: number; timestamp: number; index: [number, number][] } | null;
} {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (m: string): never => {
    throw new Error(`spec v1: ${m}`);
  };
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC[i]) fail("magic");
  if (v.getUint32(28, true) !== u32(crc32(bytes.subarray(0, 28)))) fail("header crc");
  if (v.getUint16(8, true) !== 1 || v.getUint8(10) !== HEADER) fail("version / header length");
  if (v.getUint8(11) !== 0 || v.getUint32(24, true) !== 0) fail("reserved");
  const maxRecordBytes = v.getUint32(12, true);
  const firstSeq = Number(v.getBigUint64(16, true));
  const end = sealed ? bytes.length - v.getUint32(bytes.length - 4, true) : bytes.length;
  const read = (at: number, seq: number): V1Frame => {
    if (bytes.length - at < FH) fail(`short frame at ${at}`);
    const type = v.getUint8(at + 4);
    if (type !== 1 && type !== 2) fail(`type ${type} at ${at}`);
    if (bytes[at + 5] || bytes[at + 6] || bytes[at + 7]) fail(`reserved at ${at}`);
    const len = v.getUint32(at + 8, true);
    if (Number(v.getBigUint64(at + 12, true)) !== seq) fail(`seq at ${at}`);
    if (at + FH + len > bytes.length) fail(`short frame at ${at}`);
    if (v.getUint32(at, true) !== u32(crc32(bytes.subarray(at + 4, at + FH + len)))) {
      fail(`crc at ${at}`);
    }
    return {
      offset: at,
      type,
      seq,
      timestamp: Number(v.getBigUint64(at + 20, true)),
      payload: bytes.subarray(at + FH, at + FH + len),
    };
  };
  const frames: V1Frame[] = [];
  let off = HEADER;
  let seq = firstSeq;
  while (off < end) {
    const f = read(off, seq);
    if (f.type !== 1 || f.payload.length > maxRecordBytes) fail(`record at ${off}`);
    frames.push(f);
    off += FH + f.payload.length;
    seq++;
  }
  if (off !== end) fail("frames do not end at the seal");
  if (!sealed) return { firstSeq, maxRecordBytes, frames, seal: null };
  const f = read(end, seq);
  if (f.type !== 2) fail("seal type");
  const p = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength);
  const n = p.getUint32(0, true);
  if (f.payload.length !== 8 + 16 * n) fail("seal length");
  if (p.getUint32(f.payload.length - 4, true) !== bytes.length - end) fail("trailer");
  const index: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    index.push([
      Number(p.getBigUint64(4 + 16 * i, true)),
      Number(p.getBigUint64(12 + 16 * i, true)),
    ]);
  }
  return {
    firstSeq,
    maxRecordBytes,
    frames,
    seal: { offset: end, seq, timestamp: f.timestamp, index },
  };
}

// ---------------------------------------------------------------------------------------------
// Format version 2 (FORMAT.md "Segment layout" .. "What open checks"), from the document alone.
// The version-1 helpers above stay as they are: FORMAT.md "Version 1 (read only)".
// ---------------------------------------------------------------------------------------------

/** The largest value a u64 field may hold (FORMAT.md: larger values are invalid). */
export const MAX_U64: number = 2 ** 53 - 1;
/** Header length of a version-2 segment. */
export const V2_HEADER = 80;
/** Offsets and sizes of the mark slots and the index area. */
export const SLOT_A_AT = 80;
export const SLOT_B_AT = 120;
export const SLOT_BYTES = 40;
export const INDEX_AT = 160;
export const ENTRY_BYTES = 32;
/** The most stored index entries a header may give room for. */
export const MAX_INDEX_CAPACITY = 65536;
/** The smallest v2 frame: CRC 4, type 1, length varint 1, delta varint 1, empty payload. */
export const MIN_FRAME = 7;
/** Frame types. */
export const T_LAST = 1;
export const T_SEAL = 2;
export const T_MORE = 3;
/** Index entries are at least this far apart. */
export const INDEX_SPACING = 65536;
/** A seal's payload length cap, and the most a header's maxRecordBytes is read as. */
export const SEAL_CAP: number = 16 << 20;
export const RECORD_CAP: number = 256 << 20;
/** Varint byte limits. */
export const LEN_VARINT_MAX = 5;
export const DELTA_VARINT_MAX = 8;
/** Seal payload bytes before its entries (endSeq, firstTimestamp, lastTimestamp, n). */
export const SEAL_HEAD = 28;
/** Bytes of one seal entry. */
export const SEAL_ENTRY = 24;
/** FORMAT.md "Mark slots": the writer adds a slot at a clean close only past this much data. */
export const MARK_ON_CLOSE: number = 1 << 20;

const dview = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Bytes one after another. */
export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function putU64(v: DataView, at: number, n: number): void {
  v.setBigUint64(at, BigInt(n), true);
}

/** A u64 field, or null if it is above 2^53 - 1. */
function getU64(v: DataView, at: number): number | null {
  const n = v.getBigUint64(at, true);
  return n > BigInt(MAX_U64) ? null : Number(n);
}

/** u64 little-endian bytes of `n`. */
export function u64le(n: number): Uint8Array {
  const b = new Uint8Array(8);
  putU64(dview(b), 0, n);
  return b;
}

/**
 * `length` bytes of `file` from `at`, bytes past its end read as zeros (FORMAT.md: slots and the
 * index area of a file shorter than `dataStart`).
 */
export function bytesAt(file: Uint8Array, at: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (at < file.length) out.set(file.subarray(at, Math.min(file.length, at + length)));
  return out;
}

/** FORMAT.md "Segment layout": the indexCapacity a writer chooses for a given segmentBytes. */
export function indexCapacityFor(segmentBytes: number): number {
  return Math.min(MAX_INDEX_CAPACITY, Math.floor(segmentBytes / INDEX_SPACING));
}

/** FORMAT.md: dataStart = 160 + 32 * indexCapacity. */
export function dataStartFor(indexCapacity: number): number {
  return INDEX_AT + ENTRY_BYTES * indexCapacity;
}

/** FORMAT.md "Index area": where stored entry `i` (i >= 1; entry 0 is implied) lives. */
export function storedEntryAt(i: number): number {
  if (i < 1) throw new Error("entry 0 is implied, never stored");
  return INDEX_AT + ENTRY_BYTES * (i - 1);
}

/** FORMAT.md "Seeded CRC": CRC-32 of seed ‖ bytes (one CRC over the concatenation). */
export function seededCrc(seed: Uint8Array, bytes: Uint8Array): number {
  return u32(crc32(cat(seed, bytes)));
}

/** The seed of a frame (log id ‖ u64 seq), and of a slot or an index entry (log id ‖ u64 firstSeq). */
export function seed(logId: Uint8Array, n: number): Uint8Array {
  if (logId.length !== 16) throw new Error("a log id is 16 bytes");
  return cat(logId, u64le(n));
}

/** FORMAT.md "Varint": unsigned LEB128, low group first, 0x80 = more bytes follow. */
export function varint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`varint of ${n}`);
  const out: number[] = [];
  for (;;) {
    const low = n % 128;
    n = Math.floor(n / 128);
    if (n === 0) {
      out.push(low);
      return Uint8Array.from(out);
    }
    out.push(low | 0x80);
  }
}

export type VarintResult =
  | { status: "ok"; value: number; next: number }
  | { status: "short" }
  | { status: "bad"; reason: string };

/**
 * Reads a varint of at most `maxBytes` bytes at `at`, with bytes available up to `end`: short if
 * the bytes end before it does, bad if it is not minimal or runs past `maxBytes` bytes.
 */
export function readVarint(b: Uint8Array, at: number, end: number, maxBytes: number): VarintResult {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (at + i >= end) return { status: "short" };
    const x = b[at + i];
    value += (x & 0x7f) * scale;
    scale *= 128;
    if ((x & 0x80) === 0) {
      if (i > 0 && x === 0) return { status: "bad", reason: "varint not minimal" };
      return { status: "ok", value, next: at + i + 1 };
    }
  }
  return { status: "bad", reason: `varint longer than ${maxBytes} bytes` };
}

// ---- header ----

export interface V2Header {
  maxRecordBytes: number;
  firstSeq: number;
  logId: Uint8Array;
  prevEndSeq: number;
  baseTimestamp: number;
  indexCapacity: number;
}

/** Decoded header fields; `dataStart` is derived from indexCapacity (and checked against byte 24). */
export interface V2HeaderDecoded extends V2Header {
  version: 2;
  dataStart: number;
}

/**
 * FORMAT.md "Segment header (version 2)". `raw` overrides fields to craft invalid headers; the
 * CRCs are computed over whatever bytes result (unless `crc0`/`crc1` are given).
 */
export function v2Header(
  h: V2Header,
  raw: {
    version?: number;
    headerLength?: number;
    reserved11?: number;
    dataStart?: number;
    reserved68?: Uint8Array;
    crc0?: number;
    crc1?: number;
  } = {},
): Uint8Array {
  const b = new Uint8Array(V2_HEADER);
  const v = dview(b);
  b.set(MAGIC, 0); // 0..7 magic
  v.setUint16(8, raw.version ?? 2, true); // 8..9 version
  v.setUint8(10, raw.headerLength ?? V2_HEADER); // 10 header length
  v.setUint8(11, raw.reserved11 ?? 0); // 11 reserved
  v.setUint32(12, h.maxRecordBytes, true); // 12..15 maxRecordBytes
  putU64(v, 16, h.firstSeq); // 16..23 firstSeq
  v.setUint32(24, raw.dataStart ?? dataStartFor(h.indexCapacity), true); // 24..27 dataStart
  v.setUint32(28, raw.crc0 ?? u32(crc32(b.subarray(0, 28))), true); // 28..31 CRC of 0..27
  b.set(h.logId, 32); // 32..47 log id
  putU64(v, 48, h.prevEndSeq); // 48..55 prevEndSeq
  putU64(v, 56, h.baseTimestamp); // 56..63 baseTimestamp
  v.setUint32(64, h.indexCapacity, true); // 64..67 indexCapacity
  if (raw.reserved68) b.set(raw.reserved68, 68); // 68..75 reserved
  v.setUint32(76, raw.crc1 ?? u32(crc32(b.subarray(32, 76))), true); // 76..79 CRC of 32..75
  return b;
}

export type HeaderResult =
  | { ok: true; header: V2HeaderDecoded }
  | { ok: true; header: { version: 1; firstSeq: number; maxRecordBytes: number } }
  | { ok: false; reason: string };

/** FORMAT.md's header check order, for both versions (readers accept 1 and 2). */
export function decodeAnyHeader(b: Uint8Array): HeaderResult {
  const bad = (reason: string): HeaderResult => ({ ok: false, reason });
  if (b.length < HEADER) return bad("short header");
  const v = dview(b);
  for (let i = 0; i < 8; i++) if (b[i] !== MAGIC[i]) return bad("bad magic");
  if (v.getUint32(28, true) !== u32(crc32(b.subarray(0, 28)))) return bad("bad header checksum");
  const version = v.getUint16(8, true);
  if (version !== 1 && version !== 2) return bad(`unsupported format version ${version}`);
  const maxRecordBytes = Math.min(v.getUint32(12, true), RECORD_CAP);
  if (version === 1) {
    if (v.getUint8(10) !== HEADER) return bad("bad header length");
    if (v.getUint8(11) !== 0 || v.getUint32(24, true) !== 0) return bad("bad reserved field");
    const firstSeq = getU64(v, 16);
    if (firstSeq === null) return bad("firstSeq above 2^53 - 1");
    return { ok: true, header: { version: 1, firstSeq, maxRecordBytes } };
  }
  if (v.getUint8(10) !== V2_HEADER) return bad("bad header length");
  if (v.getUint8(11) !== 0) return bad("bad reserved field");
  if (b.length < V2_HEADER) return bad("short header");
  if (v.getUint32(76, true) !== u32(crc32(b.subarray(32, 76)))) {
    return bad("bad header checksum (bytes 32..75)");
  }
  for (let i = 68; i < 76; i++) if (b[i] !== 0) return bad("bad reserved field");
  const indexCapacity = v.getUint32(64, true);
  if (indexCapacity > MAX_INDEX_CAPACITY) return bad("bad indexCapacity");
  const dataStart = v.getUint32(24, true);
  if (dataStart !== dataStartFor(indexCapacity)) return bad("bad dataStart");
  const firstSeq = getU64(v, 16);
  const prevEndSeq = getU64(v, 48);
  const baseTimestamp = getU64(v, 56);
  if (firstSeq === null || prevEndSeq === null || baseTimestamp === null) {
    return bad("u64 above 2^53 - 1");
  }
  if (prevEndSeq > firstSeq) return bad("prevEndSeq above firstSeq");
  const logId = b.slice(32, 48);
  if (logId.every((x) => x === 0)) return bad("all-zero log id");
  return {
    ok: true,
    header: {
      version: 2,
      maxRecordBytes,
      firstSeq,
      dataStart,
      logId,
      prevEndSeq,
      baseTimestamp,
      indexCapacity,
    },
  };
}

// ---- mark slots ----

export interface Mark {
  generation: number;
  durableEnd: number;
  nextSeq: number;
  lastTimestamp: number;
  /** Stored index entries [1, storedEntries] are durable (entry 0 is implied). */
  storedEntries: number;
}

/** FORMAT.md "Mark slots": 40 bytes, CRC-32 of (log id ‖ u64 firstSeq ‖ bytes 0..35). */
export function v2Slot(logId: Uint8Array, firstSeq: number, m: Mark): Uint8Array {
  const b = new Uint8Array(SLOT_BYTES);
  const v = dview(b);
  putU64(v, 0, m.generation);
  putU64(v, 8, m.durableEnd);
  putU64(v, 16, m.nextSeq);
  putU64(v, 24, m.lastTimestamp);
  v.setUint32(32, m.storedEntries, true);
  v.setUint32(36, seededCrc(seed(logId, firstSeq), b.subarray(0, 36)), true);
  return b;
}

export type SlotResult =
  /** Not a slot (never written, torn, stale, another segment's): ignored. */
  | { ok: false; reason: string }
  /** A slot: `damage` says why its mark does not fit the segment (null if it does). */
  | { ok: true; mark: Mark; damage: string | null };

/**
 * FORMAT.md "Mark slots": a slot counts if its CRC matches and its generation is 1..2^53-1 with
 * the slot's parity (A odd, B even); otherwise it is ignored. A slot that counts must fit the
 * segment (u64 ranges, durableEnd >= dataStart, nextSeq >= firstSeq, lastTimestamp >=
 * baseTimestamp, storedEntries <= indexCapacity): if the mark does not, the segment is damaged.
 * (durableEnd against the file's size is checked by {@linkcode chooseMark}.)
 */
export function decodeV2Slot(b: Uint8Array, h: V2HeaderDecoded, which: "A" | "B"): SlotResult {
  const v = dview(b);
  if (v.getUint32(36, true) !== seededCrc(seed(h.logId, h.firstSeq), b.subarray(0, 36))) {
    return { ok: false, reason: "bad slot checksum" };
  }
  const generation = getU64(v, 0);
  if (generation === null || generation < 1 || generation % 2 !== (which === "A" ? 1 : 0)) {
    return { ok: false, reason: "bad generation" };
  }
  const raw = (at: number) => Number(v.getBigUint64(at, true));
  const mark: Mark = {
    generation,
    durableEnd: raw(8),
    nextSeq: raw(16),
    lastTimestamp: raw(24),
    storedEntries: v.getUint32(32, true),
  };
  let damage: string | null = null;
  if ([8, 16, 24].some((o) => getU64(v, o) === null)) damage = "u64 above 2^53 - 1";
  else if (mark.durableEnd < h.dataStart) damage = "durableEnd below dataStart";
  else if (mark.nextSeq < h.firstSeq) damage = "nextSeq below firstSeq";
  else if (mark.lastTimestamp < h.baseTimestamp) damage = "lastTimestamp below baseTimestamp";
  else if (mark.storedEntries > h.indexCapacity) damage = "storedEntries above indexCapacity";
  return { ok: true, mark, damage };
}

/** FORMAT.md: the mark when neither slot counts. */
export function defaultMark(h: V2HeaderDecoded): Mark {
  return {
    generation: 0,
    durableEnd: h.dataStart,
    nextSeq: h.firstSeq,
    lastTimestamp: h.baseTimestamp,
    storedEntries: 0,
  };
}

/**
 * FORMAT.md: the mark is the slot that counts with the larger generation, else the default mark.
 * `damage` is why it does not fit the segment (including a durableEnd past the end of the file),
 * or null. Slots past the end of the file read as zeros.
 */
export function chooseMark(
  file: Uint8Array,
  h: V2HeaderDecoded,
): { mark: Mark; from: "A" | "B" | null; damage: string | null } {
  const a = decodeV2Slot(bytesAt(file, SLOT_A_AT, SLOT_BYTES), h, "A");
  const b = decodeV2Slot(bytesAt(file, SLOT_B_AT, SLOT_BYTES), h, "B");
  let pick: { r: SlotResult & { ok: true }; from: "A" | "B" } | null = null;
  if (a.ok && (!b.ok || a.mark.generation > b.mark.generation)) pick = { r: a, from: "A" };
  else if (b.ok) pick = { r: b, from: "B" };
  if (!pick) return { mark: defaultMark(h), from: null, damage: null };
  const { mark, damage } = pick.r;
  const past = mark.durableEnd > file.length ? "mark past the end of the file" : null;
  return { mark, from: pick.from, damage: damage ?? past };
}

// ---- index entries ----

export interface IndexEntry {
  seq: number;
  offset: number;
  prevTimestamp: number;
}

/** FORMAT.md "Index area": 32 bytes, CRC-32 of (log id ‖ u64 firstSeq ‖ bytes 0..23), 4 reserved. */
export function v2Entry(logId: Uint8Array, firstSeq: number, e: IndexEntry): Uint8Array {
  const b = new Uint8Array(ENTRY_BYTES);
  const v = dview(b);
  putU64(v, 0, e.seq);
  putU64(v, 8, e.offset);
  putU64(v, 16, e.prevTimestamp);
  v.setUint32(24, seededCrc(seed(logId, firstSeq), b.subarray(0, 24)), true);
  return b;
}

/** One stored entry, or why it is invalid (checksum, reserved bytes, u64 range). */
export function decodeV2Entry(
  b: Uint8Array,
  h: V2HeaderDecoded,
): { ok: true; entry: IndexEntry } | { ok: false; reason: string } {
  const v = dview(b);
  if (v.getUint32(24, true) !== seededCrc(seed(h.logId, h.firstSeq), b.subarray(0, 24))) {
    return { ok: false, reason: "bad index entry checksum" };
  }
  if (v.getUint32(28, true) !== 0) return { ok: false, reason: "bad reserved field" };
  const [seq, offset, prevTimestamp] = [0, 8, 16].map((o) => getU64(v, o));
  if (seq === null || offset === null || prevTimestamp === null) {
    return { ok: false, reason: "u64 above 2^53 - 1" };
  }
  return { ok: true, entry: { seq, offset, prevTimestamp } };
}

/** FORMAT.md: entry 0, implied by the header. */
export function entry0(h: V2HeaderDecoded | V2Header): IndexEntry {
  return { seq: h.firstSeq, offset: dataStartFor(h.indexCapacity), prevTimestamp: h.baseTimestamp };
}

/**
 * FORMAT.md "Index area": entry 0 (implied), then the stored entries [1, storedEntries] of the
 * mark, which must be valid, strictly ascending in seq and offset after entry 0, prevTimestamp
 * non-decreasing, and before the mark (seq < nextSeq, offset < durableEnd, prevTimestamp <=
 * lastTimestamp). Throws on damage. Bytes past the end of the file read as zeros.
 */
export function verifyStoredEntries(
  file: Uint8Array,
  h: V2HeaderDecoded,
  mark: Mark,
): IndexEntry[] {
  const out: IndexEntry[] = [entry0(h)];
  for (let i = 1; i <= mark.storedEntries; i++) {
    const r = decodeV2Entry(bytesAt(file, storedEntryAt(i), ENTRY_BYTES), h);
    if (!r.ok) throw new Error(`spec: stored index entry ${i}: ${r.reason}`);
    const e = r.entry;
    const p = out[i - 1];
    if (e.seq <= p.seq || e.offset <= p.offset || e.prevTimestamp < p.prevTimestamp) {
      throw new Error(`spec: stored index entry ${i} not ascending`);
    }
    if (e.seq >= mark.nextSeq || e.offset >= mark.durableEnd) {
      throw new Error(`spec: stored index entry ${i} past the mark`);
    }
    if (e.prevTimestamp > mark.lastTimestamp) {
      throw new Error(`spec: stored index entry ${i} prevTimestamp after the mark's`);
    }
    out.push(e);
  }
  return out;
}

// ---- frames ----

/**
 * FORMAT.md "Frame (version 2)": u32 seeded CRC, u8 type, varint length, varint timestamp delta,
 * payload. The CRC is CRC-32 of (log id ‖ u64 seq ‖ bytes 4 .. end of payload).
 */
export function v2Frame(
  logId: Uint8Array,
  seq: number,
  type: number,
  delta: number,
  payload: Uint8Array,
): Uint8Array {
  const body = cat(Uint8Array.of(type), varint(payload.length), varint(delta), payload);
  const b = new Uint8Array(4 + body.length);
  b.set(body, 4);
  dview(b).setUint32(0, seededCrc(seed(logId, seq), body), true);
  return b;
}

export interface FrameContext {
  logId: Uint8Array;
  /** The sequence number that belongs at this position (it seeds the CRC). */
  seq: number;
  /** The previous record's timestamp (baseTimestamp before the first record). */
  prevTimestamp: number;
  /** The header's maxRecordBytes (read as at most 256 MiB). */
  maxRecordBytes: number;
}

export interface V2FrameOk {
  status: "ok";
  offset: number;
  type: number;
  seq: number;
  delta: number;
  timestamp: number;
  payload: Uint8Array;
  size: number;
}

export type V2FrameResult = V2FrameOk | { status: "short" } | { status: "bad"; reason: string };

/** FORMAT.md's frame check order (1)..(6); `end` is where the available bytes end. */
export function decodeV2Frame(
  b: Uint8Array,
  at: number,
  end: number,
  ctx: FrameContext,
): V2FrameResult {
  if (end - at < MIN_FRAME) return { status: "short" }; // (1)
  const type = b[at + 4];
  if (type !== T_LAST && type !== T_SEAL && type !== T_MORE) {
    return { status: "bad", reason: `bad frame type ${type}` }; // (2)
  }
  const len = readVarint(b, at + 5, end, LEN_VARINT_MAX); // (3)
  if (len.status !== "ok") return len;
  const cap = type === T_SEAL ? SEAL_CAP : Math.min(ctx.maxRecordBytes, RECORD_CAP);
  if (len.value > cap) return { status: "bad", reason: `length ${len.value} exceeds ${cap}` };
  const delta = readVarint(b, len.next, end, DELTA_VARINT_MAX); // (4)
  if (delta.status !== "ok") return delta;
  if (delta.value > MAX_U64 - ctx.prevTimestamp) {
    return { status: "bad", reason: "timestamp above 2^53 - 1" };
  }
  const size = delta.next - at + len.value;
  if (at + size > end) return { status: "short" }; // (5)
  const stored = dview(b).getUint32(at, true); // (6)
  if (stored !== seededCrc(seed(ctx.logId, ctx.seq), b.subarray(at + 4, at + size))) {
    return { status: "bad", reason: "bad frame checksum" };
  }
  return {
    status: "ok",
    offset: at,
    type,
    seq: ctx.seq,
    delta: delta.value,
    timestamp: ctx.prevTimestamp + delta.value,
    payload: b.subarray(delta.next, at + size),
    size,
  };
}

// ---- seal ----

export interface SealBody {
  firstTimestamp: number;
  lastTimestamp: number;
  entries: IndexEntry[];
}

/** Size of a seal frame with `n` entries and timestamp delta `delta`. */
export function v2SealSize(n: number, delta: number): number {
  const plen = SEAL_HEAD + SEAL_ENTRY * n + 4;
  return 4 + 1 + varint(plen).length + varint(delta).length + plen;
}

/** FORMAT.md: the most entries a seal starting at `sealAt` may list. */
export function maxSealEntries(sealAt: number, dataStart: number): number {
  return Math.floor(Math.max(0, sealAt - dataStart) / INDEX_SPACING) + 1;
}

/** FORMAT.md: the largest seal frame a seal starting at `sealAt` may be (18 + 32 + 24 n). */
export function maxSealSize(sealAt: number, dataStart: number): number {
  return 18 + SEAL_HEAD + 4 + SEAL_ENTRY * maxSealEntries(sealAt, dataStart);
}

/**
 * FORMAT.md "Seal (version 2)": payload u64 endSeq, u64 firstTimestamp, u64 lastTimestamp, u32 n,
 * n x (u64 seq, u64 offset, u64 prevTimestamp), u32 trailer = size of the whole seal frame. `seq`
 * seeds the CRC and is the payload's endSeq unless `raw.endSeq` says otherwise.
 */
export function v2Seal(
  logId: Uint8Array,
  seq: number,
  delta: number,
  body: SealBody,
  raw: { endSeq?: number; n?: number; trailer?: number } = {},
): Uint8Array {
  const n = body.entries.length;
  const p = new Uint8Array(SEAL_HEAD + SEAL_ENTRY * n + 4);
  const v = dview(p);
  putU64(v, 0, raw.endSeq ?? seq);
  putU64(v, 8, body.firstTimestamp);
  putU64(v, 16, body.lastTimestamp);
  v.setUint32(24, raw.n ?? n, true);
  body.entries.forEach((e, i) => {
    putU64(v, SEAL_HEAD + SEAL_ENTRY * i, e.seq);
    putU64(v, SEAL_HEAD + SEAL_ENTRY * i + 8, e.offset);
    putU64(v, SEAL_HEAD + SEAL_ENTRY * i + 16, e.prevTimestamp);
  });
  v.setUint32(SEAL_HEAD + SEAL_ENTRY * n, raw.trailer ?? v2SealSize(n, delta), true);
  return v2Frame(logId, seq, T_SEAL, delta, p);
}

/**
 * FORMAT.md's seal checks, in order, for the seal frame `f` (decoded at its position, so `f.seq`
 * is the sequence number its CRC was checked with): the seal, or why it is malformed.
 */
export function checkSeal(f: V2FrameOk, h: V2HeaderDecoded): SealBody | string {
  const p = f.payload;
  if (p.length < SEAL_HEAD + 4) return "seal payload too short";
  const v = dview(p);
  const n = v.getUint32(24, true);
  if (p.length !== SEAL_HEAD + SEAL_ENTRY * n + 4) return "seal payload length is not 32 + 24 n";
  if (v.getUint32(SEAL_HEAD + SEAL_ENTRY * n, true) !== f.size) return "trailer is not the size";
  if (getU64(v, 0) !== f.seq) return "seal endSeq is not its sequence number";
  if (f.seq <= h.firstSeq) return "a seal of a segment without records";
  const firstTimestamp = getU64(v, 8);
  const lastTimestamp = getU64(v, 16);
  if (
    firstTimestamp === null || lastTimestamp === null || firstTimestamp < h.baseTimestamp ||
    lastTimestamp < firstTimestamp
  ) return "seal timestamps out of order";
  const sealAt = f.offset;
  if (n < 1 || n > maxSealEntries(sealAt, h.dataStart)) return `seal lists ${n} entries`;
  const entries: IndexEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = SEAL_HEAD + SEAL_ENTRY * i;
    const [seq, offset, prevTimestamp] = [0, 8, 16].map((o) => getU64(v, at + o));
    if (seq === null || offset === null || prevTimestamp === null) {
      return `seal entry ${i}: u64 above 2^53 - 1`;
    }
    const e = { seq, offset, prevTimestamp };
    if (i === 0) {
      const z = entry0(h);
      if (seq !== z.seq || offset !== z.offset || prevTimestamp !== z.prevTimestamp) {
        return "seal entry 0 is not (firstSeq, dataStart, baseTimestamp)";
      }
    } else {
      const q = entries[i - 1];
      if (seq <= q.seq || offset <= q.offset || prevTimestamp < q.prevTimestamp) {
        return `seal entry ${i} not ascending`;
      }
    }
    if (seq >= f.seq || offset >= sealAt || prevTimestamp > lastTimestamp) {
      return `seal entry ${i} out of range`;
    }
    entries.push(e);
  }
  return { firstTimestamp, lastTimestamp, entries };
}

/** {@linkcode checkSeal}, throwing on a malformed seal. */
export function verifySeal(f: V2FrameOk, h: V2HeaderDecoded): SealBody {
  const r = checkSeal(f, h);
  if (typeof r === "string") throw new Error(`spec: ${r}`);
  return r;
}

/**
 * FORMAT.md "What open checks", a sealed segment: the seal found through the trailer, decoded with
 * the endSeq and lastTimestamp its payload states (its CRC then proves both). Throws on damage.
 */
export function sealFromTrailer(
  file: Uint8Array,
  h: V2HeaderDecoded,
): V2FrameOk & { body: SealBody } {
  if (file.length < h.dataStart + 4) throw new Error("spec: no seal");
  const trailer = dview(file).getUint32(file.length - 4, true);
  const sealAt = file.length - trailer;
  if (trailer < MIN_FRAME || trailer > maxSealSize(file.length, h.dataStart)) {
    throw new Error("spec: no seal (trailer)");
  }
  if (sealAt < h.dataStart) throw new Error("spec: no seal");
  const frame = file.subarray(sealAt);
  if (frame[4] !== T_SEAL) throw new Error("spec: not a seal frame");
  const len = readVarint(frame, 5, frame.length, LEN_VARINT_MAX);
  if (len.status !== "ok") throw new Error("spec: not a seal frame");
  const delta = readVarint(frame, len.next, frame.length, DELTA_VARINT_MAX);
  if (delta.status !== "ok" || delta.next + SEAL_HEAD > frame.length) {
    throw new Error("spec: not a seal frame");
  }
  const p = dview(frame.subarray(delta.next));
  const endSeq = getU64(p, 0);
  const lastTimestamp = getU64(p, 16);
  if (endSeq === null || lastTimestamp === null) throw new Error("spec: seal u64 range");
  const f = decodeV2Frame(file, sealAt, file.length, {
    logId: h.logId,
    seq: endSeq,
    prevTimestamp: lastTimestamp,
    maxRecordBytes: h.maxRecordBytes,
  });
  if (f.status !== "ok" || f.type !== T_SEAL || f.size !== trailer) {
    throw new Error(`spec: bad seal at ${sealAt}: ${JSON.stringify(f)}`);
  }
  return { ...f, body: verifySeal(f, h) };
}

// ---- whole segments ----

export interface V2Record {
  data: Uint8Array;
  /** Milliseconds after the previous record (after baseTimestamp for the first). */
  delta: number;
}

export interface BuiltFrame {
  offset: number;
  seq: number;
  type: number;
  timestamp: number;
  /** Timestamp of the record before this frame (baseTimestamp for the first). */
  prevTimestamp: number;
  size: number;
  data: Uint8Array;
}

export interface V2Layout {
  header: V2Header;
  dataStart: number;
  frames: BuiltFrame[];
  /** Offset just past each batch (index i: after batch i). */
  batchEnds: number[];
  /** End of the last frame (where the seal, if any, starts). */
  end: number;
  /** One past the last record. */
  endSeq: number;
  lastTimestamp: number;
  /** A mark claiming every batch before `batches` (0: none), as a writer would leave it. */
  markAfter(batches: number, generation: number, storedEntries?: number): Mark;
  /** Entry 0 and, per FORMAT.md's recovery rule, each first frame >= 64 KiB after the previous. */
  defaultEntries(): IndexEntry[];
}

export interface V2SegmentSpec {
  logId: Uint8Array;
  firstSeq: number;
  /** Default: firstSeq. */
  prevEndSeq?: number;
  baseTimestamp: number;
  /** Default 16 MiB. */
  maxRecordBytes?: number;
  /** Default 1 (what segmentBytes 64 KiB gives). */
  indexCapacity?: number;
  batches: V2Record[][];
  /** Slots as a writer left them (default: both zero); given the layout. */
  slots?: (l: V2Layout) => { A?: Mark; B?: Mark };
  /** Stored index entries 1, 2, ... (default: none, the area is zeros); given the layout. */
  stored?: (l: V2Layout) => IndexEntry[];
  /** Seal the segment: delta of the seal, and its entries (default: defaultEntries()). */
  seal?: { delta: number; entries?: (l: V2Layout) => IndexEntry[] };
  /** Zero bytes after the frames (an active segment's preallocated tail). */
  zeroTail?: number;
}

export interface BuiltSegment {
  bytes: Uint8Array;
  layout: V2Layout;
  /** The seal frame's offset and sequence number, if sealed. */
  seal: { offset: number; seq: number; timestamp: number } | null;
}

/** Lays out a v2 segment's frames (batches as type-3 frames then one type-1 frame). */
export function layoutV2(s: V2SegmentSpec): V2Layout {
  const header: V2Header = {
    maxRecordBytes: s.maxRecordBytes ?? 16 << 20,
    firstSeq: s.firstSeq,
    logId: s.logId,
    prevEndSeq: s.prevEndSeq ?? s.firstSeq,
    baseTimestamp: s.baseTimestamp,
    indexCapacity: s.indexCapacity ?? 1,
  };
  const dataStart = dataStartFor(header.indexCapacity);
  const frames: BuiltFrame[] = [];
  const batchEnds: number[] = [];
  let off = dataStart;
  let seq = s.firstSeq;
  let ts = s.baseTimestamp;
  for (const batch of s.batches) {
    batch.forEach((r, i) => {
      const type = i === batch.length - 1 ? T_LAST : T_MORE;
      const size = v2Frame(s.logId, seq, type, r.delta, r.data).length;
      frames.push({
        offset: off,
        seq,
        type,
        timestamp: ts + r.delta,
        prevTimestamp: ts,
        size,
        data: r.data,
      });
      off += size;
      seq++;
      ts += r.delta;
    });
    batchEnds.push(off);
  }
  const layout: V2Layout = {
    header,
    dataStart,
    frames,
    batchEnds,
    end: off,
    endSeq: seq,
    lastTimestamp: ts,
    markAfter(batches, generation, storedEntries = 0) {
      if (batches === 0) {
        return {
          generation,
          durableEnd: dataStart,
          nextSeq: s.firstSeq,
          lastTimestamp: s.baseTimestamp,
          storedEntries,
        };
      }
      const end = batchEnds[batches - 1];
      const last = frames.filter((f) => f.offset < end).at(-1)!;
      return {
        generation,
        durableEnd: end,
        nextSeq: last.seq + 1,
        lastTimestamp: last.timestamp,
        storedEntries,
      };
    },
    defaultEntries() {
      const out: IndexEntry[] = [];
      for (const f of frames) {
        if (out.length === 0 || f.offset >= out[out.length - 1].offset + INDEX_SPACING) {
          out.push({ seq: f.seq, offset: f.offset, prevTimestamp: f.prevTimestamp });
        }
      }
      return out;
    },
  };
  return layout;
}

/** Builds a v2 segment file byte by byte (FORMAT.md "Segment layout"). */
export function buildV2Segment(s: V2SegmentSpec): BuiltSegment {
  const l = layoutV2(s);
  const h = l.header;
  const prefix = new Uint8Array(l.dataStart);
  prefix.set(v2Header(h), 0);
  const slots = s.slots?.(l) ?? {};
  if (slots.A) prefix.set(v2Slot(h.logId, h.firstSeq, slots.A), SLOT_A_AT);
  if (slots.B) prefix.set(v2Slot(h.logId, h.firstSeq, slots.B), SLOT_B_AT);
  const stored = s.stored?.(l) ?? [];
  if (stored.length > h.indexCapacity) throw new Error("more stored entries than the area holds");
  stored.forEach((e, i) => prefix.set(v2Entry(h.logId, h.firstSeq, e), storedEntryAt(i + 1)));
  const frames = l.frames.map((f) =>
    v2Frame(h.logId, f.seq, f.type, f.timestamp - f.prevTimestamp, f.data)
  );
  let seal: BuiltSegment["seal"] = null;
  const tail: Uint8Array[] = [];
  if (s.seal) {
    const se = s.seal.entries?.(l) ?? l.defaultEntries();
    const records = l.frames.length > 0;
    tail.push(v2Seal(h.logId, l.endSeq, s.seal.delta, {
      firstTimestamp: records ? l.frames[0].timestamp : h.baseTimestamp,
      lastTimestamp: l.lastTimestamp,
      entries: se,
    }));
    seal = { offset: l.end, seq: l.endSeq, timestamp: l.lastTimestamp + s.seal.delta };
  }
  if (s.zeroTail) tail.push(new Uint8Array(s.zeroTail));
  return { bytes: cat(prefix, ...frames, ...tail), layout: l, seal };
}

export interface DecodedV2Segment {
  header: V2HeaderDecoded;
  /** Each slot's own verdict (a slot past the end of the file reads as zeros). */
  slots: { A: SlotResult; B: SlotResult };
  mark: Mark;
  markFrom: "A" | "B" | null;
  /** Entry 0 (implied) and the stored entries [1, storedEntries], verified. */
  entries: IndexEntry[];
  /** Every record frame, in order. */
  frames: V2FrameOk[];
  /** End of the last complete batch (the log's end in this segment; dataStart if none). */
  end: number;
  seal: (V2FrameOk & { body: SealBody }) | null;
  /** Active: whether every byte from `end` to the end of the file is zero. */
  zeroTail: boolean;
}

/**
 * Decodes a whole v2 segment strictly by FORMAT.md and throws on anything it forbids. A sealed
 * segment is found through its trailer and every frame before the seal must decode; an active one
 * is scanned from dataStart, every frame before the mark must decode, and the log ends at the last
 * complete batch (or at a seal, then `seal` is set: a sealed newest segment). The file may be
 * shorter than dataStart (a new segment holds only its header): its slots and index area read as
 * zeros.
 */
export function decodeV2Segment(file: Uint8Array, sealed: boolean): DecodedV2Segment {
  const hr = decodeAnyHeader(file);
  if (!hr.ok) throw new Error(`spec: header: ${hr.reason}`);
  if (hr.header.version !== 2) throw new Error("spec: not a version-2 segment");
  const h = hr.header as V2HeaderDecoded;
  const slots = {
    A: decodeV2Slot(bytesAt(file, SLOT_A_AT, SLOT_BYTES), h, "A"),
    B: decodeV2Slot(bytesAt(file, SLOT_B_AT, SLOT_BYTES), h, "B"),
  };
  const { mark, from, damage } = chooseMark(file, h);
  if (damage) throw new Error(`spec: the mark is damaged: ${damage}`);
  const entries = verifyStoredEntries(file, h, mark);
  let limit = file.length;
  let trailerSeal: DecodedV2Segment["seal"] = null;
  if (sealed) {
    trailerSeal = sealFromTrailer(file, h);
    limit = trailerSeal.offset;
  }
  const frames: V2FrameOk[] = [];
  let off = h.dataStart;
  let seq = h.firstSeq;
  let ts = h.baseTimestamp;
  let end = off;
  /** Batch ends (and dataStart): offset -> [nextSeq, lastTimestamp] there. */
  const batchEnds = new Map<number, [number, number]>([[off, [seq, ts]]]);
  let seal: DecodedV2Segment["seal"] = null;
  while (off < limit) {
    const f = decodeV2Frame(file, off, limit, {
      logId: h.logId,
      seq,
      prevTimestamp: ts,
      maxRecordBytes: h.maxRecordBytes,
    });
    if (f.status !== "ok") {
      if (sealed) throw new Error(`spec: frame at ${off}: ${JSON.stringify(f)}`);
      if (off < mark.durableEnd) throw new Error(`spec: damage before the mark at ${off}`);
      break;
    }
    if (f.type === T_SEAL) {
      if (sealed) throw new Error(`spec: a seal before the trailer's seal at ${off}`);
      if (off !== end) throw new Error(`spec: a seal inside a batch at ${off}`);
      seal = { ...f, body: verifySeal(f, h) };
      off += f.size;
      break;
    }
    frames.push(f);
    off += f.size;
    seq++;
    ts = f.timestamp;
    if (f.type === T_LAST) {
      end = off;
      batchEnds.set(end, [seq, ts]);
    }
  }
  const atMark = batchEnds.get(mark.durableEnd);
  if (!atMark) throw new Error("spec: the mark is not at the end of a batch");
  if (atMark[0] !== mark.nextSeq || atMark[1] !== mark.lastTimestamp) {
    throw new Error("spec: the mark disagrees with the frames at durableEnd");
  }
  for (const e of entries.slice(1)) {
    const f = frames.find((x) => x.offset === e.offset);
    if (!f || f.seq !== e.seq) {
      throw new Error(`spec: stored entry at ${e.offset} is no frame start`);
    }
  }
  if (sealed) {
    if (off !== limit || end !== limit) throw new Error("spec: records do not end at the seal");
    if (trailerSeal!.seq !== seq) throw new Error("spec: the seal's seq is not the records' end");
    seal = trailerSeal;
  }
  const zeroTail = seal !== null
    ? file.length === seal.offset + seal.size
    : file.subarray(end).every((x) => x === 0);
  return { header: h, slots, mark, markFrom: from, entries, frames, end, seal, zeroTail };
}

/**
 * FORMAT.md "What open checks", the newest v2 segment (with a valid header): the mark, its stored
 * entries, a scan from durableEnd, the verdict on the bytes after the log's end, and the first
 * record's frame. Throws on damage.
 */
export function recoverV2Active(file: Uint8Array): {
  end: number;
  nextSeq: number;
  /** Bytes a recovery cuts and reports (0 for a zero tail or a file ending at the log's end). */
  truncatedBytes: number;
  sealed: boolean;
} {
  const hr = decodeAnyHeader(file);
  if (!hr.ok || hr.header.version !== 2) throw new Error("spec: not a valid v2 header");
  const h = hr.header as V2HeaderDecoded;
  const { mark, damage } = chooseMark(file, h);
  if (damage) throw new Error(`spec: the mark is damaged: ${damage}`);
  verifyStoredEntries(file, h, mark);
  let off = mark.durableEnd;
  let seq = mark.nextSeq;
  let ts = mark.lastTimestamp;
  let end = off;
  let endSeq = seq;
  let sealEnd = -1;
  for (;;) {
    const f = decodeV2Frame(file, off, file.length, {
      logId: h.logId,
      seq,
      prevTimestamp: ts,
      maxRecordBytes: h.maxRecordBytes,
    });
    if (f.status !== "ok") break;
    if (f.type === T_SEAL) {
      // A seal ends the segment only directly after a complete batch, and only if well formed.
      if (off === end && typeof checkSeal(f, h) !== "string") sealEnd = f.offset + f.size;
      break;
    }
    off += f.size;
    seq++;
    ts = f.timestamp;
    if (f.type === T_LAST) {
      end = off;
      endSeq = seq;
    }
  }
  const logEnd = sealEnd >= 0 ? sealEnd : end;
  if (endSeq > h.firstSeq) {
    const first = decodeV2Frame(file, h.dataStart, logEnd, {
      logId: h.logId,
      seq: h.firstSeq,
      prevTimestamp: h.baseTimestamp,
      maxRecordBytes: h.maxRecordBytes,
    });
    if (first.status !== "ok") throw new Error("spec: the first record does not decode");
  }
  const cut = file.subarray(logEnd).some((x) => x !== 0) ? file.length - logEnd : 0;
  return { end: logEnd, nextSeq: endSeq, truncatedBytes: cut, sealed: sealEnd >= 0 };
}

/** The lowercase hex of a log id (the form of `log.id`). */
export function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
