/**
 * Write loops shared by the runtime adapters. `write(2)` and `writev(2)` may write fewer bytes than
 * asked (a signal, a full pipe, a >2 GiB request, a quota edge); every adapter funnels its writes
 * through these loops so "write all bytes" is implemented, and tested, once.
 *
 * The loops take the single-call primitive as a function so a test can hand in a fake that writes a
 * few bytes at a time.
 *
 * @example
 * ```ts
 * import { writeAll } from "./write_all.ts";
 * const out: number[] = [];
 * // a writer that accepts at most 3 bytes per call
 * const writeSome = (b: Uint8Array) => {
 *   const n = Math.min(3, b.length);
 *   out.push(...b.subarray(0, n));
 *   return n;
 * };
 * writeAll(writeSome, new Uint8Array([1, 2, 3, 4, 5, 6, 7]), "write", "/tmp/x");
 * if (out.join() !== "1,2,3,4,5,6,7") throw new Error(out.join());
 * ```
 * @module
 */
import { IoError } from "../errors.ts";

/** Writes some prefix of `buf` and returns how many bytes it wrote (like `write(2)`). */
export type WriteSome = (buf: Uint8Array) => number;

/** Writes some prefix of the concatenation of `chunks` and returns the byte count (like `writev(2)`). */
export type WritevSome = (chunks: Uint8Array[]) => number;

/**
 * Most chunks handed to one `writev` call. Linux's `IOV_MAX` is 1024; libuv caps at it too.
 */
export const MAX_IOV = 1024;

/**
 * Calls `writeSome` until every byte of `data` is written. A call that writes nothing for a non-empty
 * buffer would loop forever, so it becomes an {@linkcode IoError}. Errors thrown by `writeSome`
 * propagate unchanged (the caller maps OS errors); a prefix of `data` may have been written then.
 *
 * @example
 * ```ts
 * import { IoError } from "@khipu/log";
 * import { writeAll } from "./write_all.ts";
 * const sink: Uint8Array[] = [];
 * const twoAtATime = (b: Uint8Array) => {
 *   sink.push(b.slice(0, 2));
 *   return Math.min(2, b.length);
 * };
 * writeAll(twoAtATime, new TextEncoder().encode("hello"), "write", "/tmp/x");
 * if (sink.length !== 3) throw new Error(`${sink.length} calls`); // "he", "ll", "o"
 * try {
 *   writeAll(() => 0, new Uint8Array(1), "write", "/tmp/x"); // a writer that never progresses
 *   throw new Error("looped");
 * } catch (e) {
 *   if (!(e instanceof IoError)) throw e;
 * }
 * ```
 */
export function writeAll(writeSome: WriteSome, data: Uint8Array, op: string, path: string): void {
  let off = 0;
  while (off < data.length) {
    const n = writeSome(off === 0 ? data : data.subarray(off));
    if (!(n > 0)) throw new IoError({ op, path, osCode: "EZEROWRITE" });
    off += n;
  }
}

/**
 * Calls `writevSome` until every byte of every chunk is written, in order, at most
 * `maxChunks` chunks per call. After a partial write the next call starts inside the chunk where the
 * previous one stopped. Empty chunks are skipped.
 *
 * @example
 * ```ts
 * import { writevAll } from "./write_all.ts";
 * let total = 0;
 * const fourAtATime = (cs: Uint8Array[]) => {
 *   const n = Math.min(4, cs.reduce((s, c) => s + c.length, 0));
 *   total += n;
 *   return n;
 * };
 * writevAll(fourAtATime, [new Uint8Array(3), new Uint8Array(5)], "writev", "/tmp/x");
 * if (total !== 8) throw new Error(`${total}`);
 * ```
 */
export function writevAll(
  writevSome: WritevSome,
  chunks: readonly Uint8Array[],
  op: string,
  path: string,
  maxChunks: number = MAX_IOV,
): void {
  let i = 0; // first chunk not fully written
  let off = 0; // bytes of chunks[i] already written
  while (true) {
    while (i < chunks.length && chunks[i].length === off) {
      i++;
      off = 0;
    }
    if (i >= chunks.length) return;
    const batch: Uint8Array[] = [];
    let want = 0;
    for (let j = i; j < chunks.length && batch.length < maxChunks; j++) {
      const c = j === i ? chunks[j].subarray(off) : chunks[j];
      if (c.length === 0) continue;
      batch.push(c);
      want += c.length;
    }
    let n = writevSome(batch);
    if (!(n > 0)) throw new IoError({ op, path, osCode: "EZEROWRITE" });
    if (n > want) n = want; // a misbehaving primitive must not make us skip unwritten bytes
    // Advance (i, off) by n bytes.
    while (n > 0) {
      const left = chunks[i].length - off;
      if (n < left) {
        off += n;
        n = 0;
      } else {
        n -= left;
        i++;
        off = 0;
      }
    }
  }
}

/**
 * Returns `position` if it is a file offset a positional write can take (a safe integer ≥ 0), and
 * throws an {@linkcode IoError} with `osCode: "EINVAL"` (what `pwrite(2)` says of a negative
 * offset) otherwise. `node:fs` would take a negative or fractional position for "the current
 * offset" or round it, so every adapter checks before writing.
 *
 * @example
 * ```ts
 * import { IoError } from "@khipu/log";
 * import { checkPosition } from "./write_all.ts";
 * if (checkPosition(4096, "pwrite", "/tmp/x") !== 4096) throw new Error("changed the offset");
 * for (const bad of [-1, 0.5, NaN, 2 ** 53]) {
 *   try {
 *     checkPosition(bad, "pwrite", "/tmp/x");
 *     throw new Error(`took ${bad}`);
 *   } catch (e) {
 *     if (!(e instanceof IoError) || e.osCode !== "EINVAL") throw e;
 *   }
 * }
 * ```
 */
export function checkPosition(position: number, op: string, path: string): number {
  if (Number.isSafeInteger(position) && position >= 0) return position;
  throw new IoError({ op, path, osCode: "EINVAL" });
}

/**
 * The chunks' bytes in one new buffer: how a platform without `writev` (Deno) keeps an append a
 * single `write(2)`, and how a wrapper sees what a `writev` would have written.
 *
 * @example
 * ```ts
 * import { concatChunks } from "./write_all.ts";
 * const bytes = concatChunks([new Uint8Array([1]), new Uint8Array([2, 3])]);
 * if (bytes.join() !== "1,2,3") throw new Error(bytes.join());
 * ```
 */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
