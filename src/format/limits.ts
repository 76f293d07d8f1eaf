/**
 * The limits every format version shares: how large a record or a seal may be, and how far apart
 * sparse index entries are.
 *
 * @example
 * ```ts
 * import { INDEX_INTERVAL_BYTES, MAX_RECORD_BYTES } from "./limits.ts";
 * if (MAX_RECORD_BYTES !== 2 ** 28 || INDEX_INTERVAL_BYTES !== 65_536) throw new Error("limits");
 * ```
 * @module
 */

/**
 * The largest record khipu-log writes or reads: 256 MiB. Every runtime writes a frame in one
 * call (Node refuses buffers over 2 GiB - 1, Deno's V8 once wrapped frame offsets past 2^31), the
 * encoder's chunk and the reader's copy keep every offset far below 2^31, and a record costs about
 * three times its size in memory while it is appended and read back. Segment headers that claim a
 * larger cap (crafted, or written by older code) are read as this cap, so no length in a file can
 * make a reader allocate more.
 */
export const MAX_RECORD_BYTES: number = 256 * 1024 * 1024;

/** Largest seal payload accepted (the seal's sparse index), independent of `maxRecordBytes`. */
export const MAX_SEAL_PAYLOAD: number = 16 * 1024 * 1024;

/** Index entries are at least this many bytes apart, so a segment's size bounds its index. */
export const INDEX_INTERVAL_BYTES: number = 64 * 1024;
