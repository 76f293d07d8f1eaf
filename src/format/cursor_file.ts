/**
 * The bytes of a cursor file (see FORMAT.md, "Cursor files"): a 48-byte header naming the log,
 * then two 32-byte slots written alternately, each holding a generation, a position and the time
 * of the commit, under a CRC seeded with the log id and the cursor's name. A torn slot write
 * leaves the other slot, which holds the previous resolved commit.
 *
 * @example
 * ```ts
 * import { cursorSeed, decodeCursorFile, encodeCursorFile } from "./cursor_file.ts";
 * const logId = new Uint8Array(16).fill(7);
 * const seed = cursorSeed(logId, "billing");
 * const bytes = encodeCursorFile(logId, { generation: 1, position: 42, commitTime: 5 }, seed);
 * const r = decodeCursorFile(bytes, logId, seed);
 * if (!r.ok || r.slot.position !== 42 || bytes.length !== 112) throw new Error("round trip");
 * ```
 * @module
 */
import { crc32 } from "./checksum.ts";
import { readU32, readU64, writeU32, writeU64 } from "./bytes.ts";
import { LOG_ID_BYTES } from "./header.ts";

/** `KHIPUCUR` in ASCII. */
export const CURSOR_MAGIC: Uint8Array = new TextEncoder().encode("KHIPUCUR");
/** The cursor file format version this release writes and reads. */
export const CURSOR_VERSION = 1;
/** Bytes of the header. */
export const CURSOR_HEADER_BYTES = 48;
/** Bytes of one slot. */
export const CURSOR_SLOT_BYTES = 32;
/** Bytes of a whole cursor file: header, slot A, slot B. */
export const CURSOR_FILE_BYTES: number = CURSOR_HEADER_BYTES + 2 * CURSOR_SLOT_BYTES;

/** What one slot says. */
export interface CursorSlot {
  /** Counts up from 1 with every write; odd ones live in slot A, even ones in slot B. */
  generation: number;
  /** The next sequence number the consumer has not processed. */
  position: number;
  /** When the slot was written, in ms since the Unix epoch (for people; never compared). */
  commitTime: number;
}

/** The outcome of {@linkcode decodeCursorFile}: the newer valid slot, or why there is none. */
export type CursorFileResult =
  | { ok: true; slot: CursorSlot }
  | { ok: false; reason: string; offset: number };

/**
 * The seed of a cursor's slot CRCs: CRC-32 of the log id followed by the cursor's name in UTF-8,
 * so that a slot copied from another log's or another cursor's file never validates.
 *
 * @example
 * ```ts
 * import { cursorSeed } from "./cursor_file.ts";
 * const id = new Uint8Array(16).fill(1);
 * if (cursorSeed(id, "a") === cursorSeed(id, "b")) throw new Error("names share a seed");
 * ```
 */
export function cursorSeed(logId: Uint8Array, name: string): number {
  return crc32(new TextEncoder().encode(name), crc32(logId));
}

/**
 * Offset of the slot a write of `generation` goes to: A (48) for odd, B (80) for even.
 *
 * @example
 * ```ts
 * import { cursorSlotOffset } from "./cursor_file.ts";
 * if (cursorSlotOffset(1) !== 48 || cursorSlotOffset(2) !== 80) throw new Error("A then B");
 * ```
 */
export function cursorSlotOffset(generation: number): number {
  return generation % 2 === 1 ? CURSOR_HEADER_BYTES : CURSOR_HEADER_BYTES + CURSOR_SLOT_BYTES;
}

/**
 * Encodes one slot under `seed` ({@linkcode cursorSeed}).
 *
 * @example
 * ```ts
 * import { encodeCursorSlot } from "./cursor_file.ts";
 * const b = encodeCursorSlot({ generation: 2, position: 9, commitTime: 0 }, 0);
 * if (b.length !== 32 || b[0] !== 2 || b[8] !== 9) throw new Error(b.join());
 * ```
 */
export function encodeCursorSlot(s: CursorSlot, seed: number): Uint8Array {
  const b = new Uint8Array(CURSOR_SLOT_BYTES);
  writeU64(b, 0, s.generation);
  writeU64(b, 8, s.position);
  writeU64(b, 16, s.commitTime);
  writeU32(b, 28, crc32(b.subarray(0, 28), seed));
  return b;
}

/**
 * The bytes of a new cursor file: the header for `logId`, `first` in its slot (A for an odd
 * generation), the other slot zeros.
 *
 * @example
 * ```ts
 * import { encodeCursorFile } from "./cursor_file.ts";
 * const b = encodeCursorFile(new Uint8Array(16).fill(3), { generation: 1, position: 0, commitTime: 1 }, 0);
 * if (new TextDecoder().decode(b.subarray(0, 8)) !== "KHIPUCUR" || b[48] !== 1) throw new Error();
 * ```
 */
export function encodeCursorFile(logId: Uint8Array, first: CursorSlot, seed: number): Uint8Array {
  const b = new Uint8Array(CURSOR_FILE_BYTES);
  b.set(CURSOR_MAGIC, 0);
  b[8] = CURSOR_VERSION & 0xff;
  b[9] = CURSOR_VERSION >>> 8;
  b[10] = CURSOR_HEADER_BYTES;
  b.set(logId, 16);
  writeU32(b, 44, crc32(b.subarray(0, 44)));
  b.set(encodeCursorSlot(first, seed), cursorSlotOffset(first.generation));
  return b;
}

/**
 * Checks a cursor file's bytes against the log id and seed it must have and returns the valid slot
 * with the larger generation. A slot whose CRC or parity fails does not count (never written, or
 * torn); a slot whose CRC matches but whose fields are out of range is damage, and so is a file with
 * no slot that counts (every file is created with one, and only one slot is written at a time).
 *
 * @example
 * ```ts
 * import { cursorSeed, decodeCursorFile, encodeCursorFile } from "./cursor_file.ts";
 * const id = new Uint8Array(16).fill(9);
 * const bytes = encodeCursorFile(id, { generation: 1, position: 3, commitTime: 0 }, cursorSeed(id, "a"));
 * const r = decodeCursorFile(bytes, id, cursorSeed(id, "b")); // the file of cursor "a" read as "b"
 * if (r.ok || r.offset !== 48) throw new Error("another cursor's slot validated");
 * ```
 */
export function decodeCursorFile(
  b: Uint8Array,
  logId: Uint8Array,
  seed: number,
): CursorFileResult {
  if (b.length !== CURSOR_FILE_BYTES) {
    return {
      ok: false,
      reason: `a cursor file is ${CURSOR_FILE_BYTES} bytes, this one ${b.length}`,
      offset: Math.min(b.length, CURSOR_FILE_BYTES),
    };
  }
  for (let i = 0; i < CURSOR_MAGIC.length; i++) {
    if (b[i] !== CURSOR_MAGIC[i]) return { ok: false, reason: "bad magic", offset: 0 };
  }
  if (readU32(b, 44) !== crc32(b.subarray(0, 44))) {
    return { ok: false, reason: "header checksum mismatch", offset: 44 };
  }
  const version = b[8] | (b[9] << 8);
  if (version !== CURSOR_VERSION) {
    return { ok: false, reason: `unsupported cursor file version ${version}`, offset: 8 };
  }
  if (b[10] !== CURSOR_HEADER_BYTES || !zeros(b, 11, 16) || !zeros(b, 32, 44)) {
    return { ok: false, reason: "bad header length or reserved bytes", offset: 10 };
  }
  for (let i = 0; i < LOG_ID_BYTES; i++) {
    if (b[16 + i] !== logId[i]) {
      return { ok: false, reason: "the cursor file belongs to another log", offset: 16 };
    }
  }
  let best: CursorSlot | null = null;
  for (const parity of [1, 0]) {
    const off = cursorSlotOffset(parity === 1 ? 1 : 2);
    if (readU32(b, off + 28) !== crc32(b.subarray(off, off + 28), seed)) continue;
    const generation = readU64(b, off);
    if (!(generation >= 1) || generation % 2 !== parity) continue;
    const slot = { generation, position: readU64(b, off + 8), commitTime: readU64(b, off + 16) };
    if (
      Number.isNaN(slot.position) || Number.isNaN(slot.commitTime) || !zeros(b, off + 24, off + 28)
    ) {
      return { ok: false, reason: "cursor slot out of range", offset: off };
    }
    if (!best || slot.generation > best.generation) best = slot;
  }
  if (!best) {
    return {
      ok: false,
      reason: "no valid slot (neither holds a checksum that fits this log and cursor name)",
      offset: CURSOR_HEADER_BYTES,
    };
  }
  return { ok: true, slot: best };
}

function zeros(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}
