/**
 * Unsigned LEB128 varints, as format v2 stores lengths and timestamp deltas: seven bits a byte, low
 * group first, the high bit set on every byte but the last. Only the minimal encoding decodes (a
 * last byte of 0 after others is refused), so every value has exactly one encoding.
 *
 * @example
 * ```ts
 * import { readVarint, varintBytes, writeVarint } from "./varint.ts";
 * const buf = new Uint8Array(8);
 * const end = writeVarint(buf, 0, 300);
 * if (end !== 2 || varintBytes(300) !== 2 || readVarint(buf, 0, end, 5) !== 300) throw new Error();
 * ```
 * @module
 */

/** {@linkcode readVarint}: the bytes ended inside the varint. */
export const VARINT_SHORT = -1;
/** {@linkcode readVarint}: more than `maxBytes` bytes, or not the minimal encoding. */
export const VARINT_BAD = -2;

/** Where the last {@linkcode readVarint} that succeeded stopped (one past its last byte). */
export let varintEnd: number = 0;

/**
 * Bytes the varint of `value` (a safe integer >= 0) takes: 1 to 8.
 *
 * @example
 * ```ts
 * import { varintBytes } from "./varint.ts";
 * if (varintBytes(127) !== 1 || varintBytes(128) !== 2) throw new Error("7 bits a byte");
 * ```
 */
export function varintBytes(value: number): number {
  let n = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/**
 * Writes the varint of `value` at `buf[off]`; returns the offset after it.
 *
 * @example
 * ```ts
 * import { writeVarint } from "./varint.ts";
 * const buf = new Uint8Array(4);
 * writeVarint(buf, 0, 129);
 * if (buf[0] !== 0x81 || buf[1] !== 0x01) throw new Error(buf.join());
 * ```
 */
export function writeVarint(buf: Uint8Array, off: number, value: number): number {
  while (value >= 128) {
    buf[off++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[off++] = value;
  return off;
}

/**
 * Reads a varint of at most `maxBytes` bytes from `buf[off, end)`. Returns the value (and sets
 * {@linkcode varintEnd}), {@linkcode VARINT_SHORT} if the bytes end first, or
 * {@linkcode VARINT_BAD} if it runs longer than `maxBytes` or is not minimal.
 *
 * @example
 * ```ts
 * import { readVarint, VARINT_BAD, VARINT_SHORT } from "./varint.ts";
 * if (readVarint(new Uint8Array([0x80]), 0, 1, 5) !== VARINT_SHORT) throw new Error("short");
 * if (readVarint(new Uint8Array([0x80, 0x00]), 0, 2, 5) !== VARINT_BAD) throw new Error("minimal");
 * ```
 */
export function readVarint(buf: Uint8Array, off: number, end: number, maxBytes: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (off + i >= end) return VARINT_SHORT;
    const b = buf[off + i];
    if (b < 128) {
      if (b === 0 && i > 0) return VARINT_BAD;
      varintEnd = off + i + 1;
      return value + b * scale;
    }
    value += (b - 128) * scale;
    scale *= 128;
  }
  return VARINT_BAD;
}
