/**
 * Little-endian integer helpers for the on-disk format. Sequence numbers, offsets and timestamps are
 * stored as u64 but handled as JS numbers, so they are limited to 2^53 - 1 (checked on write).
 *
 * @example
 * ```ts
 * import { readU64, writeU64 } from "./bytes.ts";
 * const b = new Uint8Array(8);
 * writeU64(b, 0, 2 ** 40 + 7);
 * if (readU64(b, 0) !== 2 ** 40 + 7) throw new Error(`${readU64(b, 0)}`);
 * ```
 * @module
 */

const TWO_32 = 0x1_0000_0000;

/**
 * Writes a little-endian u32.
 *
 * @example
 * ```ts
 * import { writeU32 } from "./bytes.ts";
 * const b = new Uint8Array(4);
 * writeU32(b, 0, 258);
 * if (b.join() !== "2,1,0,0") throw new Error(b.join());
 * ```
 */
export function writeU32(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value & 0xff;
  buf[off + 1] = (value >>> 8) & 0xff;
  buf[off + 2] = (value >>> 16) & 0xff;
  buf[off + 3] = (value >>> 24) & 0xff;
}

/**
 * Reads a little-endian u32.
 *
 * @example
 * ```ts
 * import { readU32 } from "./bytes.ts";
 * if (readU32(new Uint8Array([2, 1, 0, 0]), 0) !== 258) throw new Error("readU32");
 * ```
 */
export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)) >>> 0;
}

/**
 * Writes a little-endian u64 from a non-negative safe integer.
 *
 * @example
 * ```ts
 * import { readU64, writeU64 } from "./bytes.ts";
 * const b = new Uint8Array(8);
 * writeU64(b, 0, Number.MAX_SAFE_INTEGER);
 * if (readU64(b, 0) !== Number.MAX_SAFE_INTEGER) throw new Error(b.join());
 * ```
 */
export function writeU64(buf: Uint8Array, off: number, value: number): void {
  writeU32(buf, off, value % TWO_32);
  writeU32(buf, off + 4, Math.floor(value / TWO_32));
}

/**
 * Reads a little-endian u64; values above 2^53 - 1 come back as `NaN` so that callers' range checks
 * reject them instead of silently rounding.
 *
 * @example
 * ```ts
 * import { readU64 } from "./bytes.ts";
 * if (!Number.isNaN(readU64(new Uint8Array(8).fill(0xff), 0))) throw new Error("not NaN");
 * ```
 */
export function readU64(buf: Uint8Array, off: number): number {
  const hi = readU32(buf, off + 4);
  if (hi > 0x1f_ffff) return NaN;
  return hi * TWO_32 + readU32(buf, off);
}
