/**
 * The durable mark of a v2 active segment (see FORMAT.md, "Mark slots" and "Index area"): two
 * 40-byte slots after the header, written alternately right after each fdatasync with what it made
 * durable (each slot durable itself with the next fdatasync), and the stored sparse index entries
 * after them. Open starts from the newer valid slot, so its work does not grow with the segment;
 * read-only stores read it as what is durable.
 *
 * @example
 * ```ts
 * import { decodeSlot, encodeSlot, slotOffset } from "./mark.ts";
 * const seed = 12345;
 * const mark = { generation: 3, durableEnd: 4096, nextSeq: 10, lastTimestamp: 5, storedEntries: 0 };
 * const bytes = encodeSlot(mark, seed);
 * if (slotOffset(3) !== 80 || decodeSlot(bytes, 0, seed, 3)?.durableEnd !== 4096) throw new Error();
 * ```
 * @module
 */
import { crc32 } from "./checksum.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import type { PlatformFile } from "../platform/types.ts";
import { HEADER_BYTES, INDEX_AREA_START, INDEX_ENTRY_BYTES } from "./header.ts";

/** Bytes of one mark slot. */
export const SLOT_BYTES = 40;

/** What a mark slot says: `[dataStart, durableEnd)` is whole, complete batches, on disk. */
export interface Mark {
  /** Counts up from 1; odd ones live in slot A, even ones in slot B. */
  generation: number;
  /** Offset up to which every byte was covered by a completed fdatasync (a batch boundary). */
  durableEnd: number;
  /** Sequence number of the frame at `durableEnd`. */
  nextSeq: number;
  /** Timestamp of the record before `durableEnd` (the base timestamp if none). */
  lastTimestamp: number;
  /** Stored index entries that are durable (entry 0 is implied and not counted). */
  storedEntries: number;
}

/**
 * Offset of the slot a mark of `generation` is written to: A (80) for odd, B (120) for even.
 *
 * @example
 * ```ts
 * import { slotOffset } from "./mark.ts";
 * if (slotOffset(1) !== 80 || slotOffset(2) !== 120) throw new Error("A then B");
 * ```
 */
export function slotOffset(generation: number): number {
  return generation % 2 === 1 ? HEADER_BYTES : HEADER_BYTES + SLOT_BYTES;
}

/**
 * Encodes a mark slot, its CRC seeded with the segment's seed (log id and first seq).
 *
 * @example
 * ```ts
 * import { encodeSlot } from "./mark.ts";
 * const m = { generation: 1, durableEnd: 192, nextSeq: 0, lastTimestamp: 0, storedEntries: 0 };
 * if (encodeSlot(m, 0).length !== 40) throw new Error("40 bytes");
 * ```
 */
export function encodeSlot(m: Mark, seed: number): Uint8Array {
  const b = new Uint8Array(SLOT_BYTES);
  writeU64(b, 0, m.generation);
  writeU64(b, 8, m.durableEnd);
  writeU64(b, 16, m.nextSeq);
  writeU64(b, 24, m.lastTimestamp);
  writeU32(b, 32, m.storedEntries);
  writeU32(b, 36, crc32(b.subarray(0, 36), seed));
  return b;
}

/**
 * Decodes the slot at `buf[off]` if its CRC matches and its generation has the slot's parity
 * (`expectedParity`: 1 for slot A, 0 for slot B); null otherwise (never written, torn, stale).
 * The range checks against the header are the caller's ({@linkcode checkMark}).
 *
 * @example
 * ```ts
 * import { decodeSlot } from "./mark.ts";
 * if (decodeSlot(new Uint8Array(40), 0, 99, 1) !== null) throw new Error("zeros are no slot");
 * ```
 */
export function decodeSlot(
  buf: Uint8Array,
  off: number,
  seed: number,
  expectedParity: number,
): Mark | null {
  if (buf.length < off + SLOT_BYTES) return null;
  if (readU32(buf, off + 36) !== crc32(buf.subarray(off, off + 36), seed)) return null;
  const generation = readU64(buf, off);
  if (!(generation >= 1) || generation % 2 !== expectedParity % 2) return null;
  return {
    generation,
    durableEnd: readU64(buf, off + 8),
    nextSeq: readU64(buf, off + 16),
    lastTimestamp: readU64(buf, off + 24),
    storedEntries: readU32(buf, off + 32),
  };
}

/**
 * The mark a segment's two slots give (`slots` = bytes 80..159): the valid one with the larger
 * generation, or null when neither is valid (a new segment: start from its data).
 *
 * @example
 * ```ts
 * import { encodeSlot, readMark } from "./mark.ts";
 * const slots = new Uint8Array(80);
 * const m = { generation: 2, durableEnd: 300, nextSeq: 4, lastTimestamp: 9, storedEntries: 0 };
 * slots.set(encodeSlot(m, 7), 40);
 * if (readMark(slots, 7)?.generation !== 2) throw new Error("slot B");
 * ```
 */
export function readMark(slots: Uint8Array, seed: number): Mark | null {
  const a = decodeSlot(slots, 0, seed, 1);
  const b = decodeSlot(slots, SLOT_BYTES, seed, 0);
  if (a && b) return a.generation > b.generation ? a : b;
  return a ?? b;
}

/**
 * The mark of the segment open as `file`: its two slots read (bytes 80..159) and
 * {@linkcode readMark} applied. A slot being rewritten by another process fails its CRC, so the
 * other one counts.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeSlot, readFileMark } from "./mark.ts";
 * const file = await new SimPlatform().open("/seg", "createExclusive");
 * const m = { generation: 1, durableEnd: 160, nextSeq: 0, lastTimestamp: 0, storedEntries: 0 };
 * file.writeAt(encodeSlot(m, 5), 80);
 * if (readFileMark(file, 5)?.generation !== 1 || readFileMark(file, 6) !== null) throw new Error();
 * ```
 */
export function readFileMark(file: PlatformFile, seed: number): Mark | null {
  const slots = new Uint8Array(2 * SLOT_BYTES);
  file.readAt(slots, HEADER_BYTES);
  return readMark(slots, seed);
}

/** What a mark must fit in its segment. */
export interface MarkBounds {
  /** The segment's first sequence number. */
  firstSeq: number;
  /** Offset of its first frame. */
  dataStart: number;
  /** Its base timestamp. */
  baseTimestamp: number;
  /** Stored index entries it has room for. */
  indexCapacity: number;
  /** The file's size now. */
  fileSize: number;
}

/**
 * Why a mark does not fit its segment, or null if it does. A valid slot that points past the end
 * of the file says durable data is gone: damage, never a torn tail.
 *
 * @example
 * ```ts
 * import { checkMark } from "./mark.ts";
 * const m = { generation: 1, durableEnd: 5000, nextSeq: 3, lastTimestamp: 0, storedEntries: 0 };
 * const bounds = { firstSeq: 0, dataStart: 160, baseTimestamp: 0, indexCapacity: 0, fileSize: 4096 };
 * if (checkMark(m, bounds) === null) throw new Error("the durable end is past the file");
 * ```
 */
export function checkMark(m: Mark, b: MarkBounds): string | null {
  if (m.durableEnd < b.dataStart || m.nextSeq < b.firstSeq || m.lastTimestamp < b.baseTimestamp) {
    return "mark slot out of range";
  }
  if (m.storedEntries > b.indexCapacity) return "mark slot lists more index entries than fit";
  if (Number.isNaN(m.durableEnd) || Number.isNaN(m.nextSeq) || Number.isNaN(m.lastTimestamp)) {
    return "mark slot out of range";
  }
  if (m.durableEnd > b.fileSize) {
    return `durable data missing: the mark says ${m.durableEnd} bytes, the file has ${b.fileSize}`;
  }
  return null;
}

/** One sparse index entry: a frame start, its sequence number, and the timestamp before it. */
export interface IndexEntry {
  /** Sequence number of the record frame. */
  seq: number;
  /** Its offset in the file. */
  offset: number;
  /** Timestamp of the record before it (the base timestamp for the first record). */
  prevTimestamp: number;
}

/**
 * Offset of stored index entry `i` (entry 0, the first record, is implied and never stored, so
 * `i >= 1`).
 *
 * @example
 * ```ts
 * import { entryOffset } from "./mark.ts";
 * if (entryOffset(1) !== 160) throw new Error(`${entryOffset(1)}`);
 * ```
 */
export function entryOffset(i: number): number {
  return INDEX_AREA_START + INDEX_ENTRY_BYTES * (i - 1);
}

/**
 * Encodes a stored index entry.
 *
 * @example
 * ```ts
 * import { encodeEntry } from "./mark.ts";
 * if (encodeEntry({ seq: 5, offset: 70_000, prevTimestamp: 1 }, 0).length !== 32) throw new Error();
 * ```
 */
export function encodeEntry(e: IndexEntry, seed: number): Uint8Array {
  const b = new Uint8Array(INDEX_ENTRY_BYTES);
  writeU64(b, 0, e.seq);
  writeU64(b, 8, e.offset);
  writeU64(b, 16, e.prevTimestamp);
  writeU32(b, 24, crc32(b.subarray(0, 24), seed));
  return b;
}

/**
 * Decodes the stored entry at `buf[off]`, or null if its CRC or reserved bytes are wrong.
 *
 * @example
 * ```ts
 * import { decodeEntry, encodeEntry } from "./mark.ts";
 * const e = decodeEntry(encodeEntry({ seq: 5, offset: 70_000, prevTimestamp: 1 }, 3), 0, 3);
 * if (e?.offset !== 70_000) throw new Error("round trip");
 * ```
 */
export function decodeEntry(buf: Uint8Array, off: number, seed: number): IndexEntry | null {
  if (readU32(buf, off + 24) !== crc32(buf.subarray(off, off + 24), seed)) return null;
  if (readU32(buf, off + 28) !== 0) return null;
  const e = {
    seq: readU64(buf, off),
    offset: readU64(buf, off + 8),
    prevTimestamp: readU64(buf, off + 16),
  };
  if (Number.isNaN(e.seq) || Number.isNaN(e.offset) || Number.isNaN(e.prevTimestamp)) return null;
  return e;
}
