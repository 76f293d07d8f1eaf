// FORMAT.md's byte layout, encoded from the document alone with DataView and zlib.crc32 and
// independent of src/format, so tests that build segments by hand do not trust the code they test.
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
