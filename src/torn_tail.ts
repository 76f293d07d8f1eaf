/**
 * The version 1 torn-tail rule: after a crash, is the first invalid byte of a v1 newest segment the start of
 * a **torn tail** (nothing valid follows: cut it), of a **lost write** (valid frames follow, but
 * what stands between is what a page the device never received leaves: cut it too), or **damage**
 * inside data that was written whole (refuse: cutting would drop acknowledged records)? The rules
 * are in RECOVERY.md ("The newest segment"); etcd's `isTornEntry` makes the same call.
 *
 * @example
 * ```ts
 * import { judgeTail } from "./torn_tail.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * const f = await sim.open("/d/x", "createExclusive");
 * f.write(new Uint8Array(100).fill(7)); // garbage to the end of the file, no frame after it
 * if (judgeTail(f, 0, 100, 0, 1024).kind !== "torn") throw new Error("nothing valid follows");
 * f.close();
 * ```
 * @module
 */
import type { PlatformFile } from "./platform/types.ts";
import { FRAME_HEADER_BYTES } from "./format/v1/frame.ts";
import { SCAN_CHUNK_BYTES } from "./format/scanner.ts";
import { findNextValidFrame } from "./format/v1/search.ts";

/** Smallest unit a device loses in a power cut; a lost write reads back as zeroed sectors. */
const SECTOR_BYTES = 512;

/** The unit of page-cache write-back: a lost write is lost a whole page at a time. */
const PAGE_BYTES = 4096;

/** What the bytes from the first invalid one on are. */
export type TailVerdict =
  | { kind: "torn" }
  | { kind: "hole" }
  | { kind: "damage"; followedBy: string };

/**
 * Judges the invalid bytes at `at` (up to `size`) of a newest segment whose next record would be
 * `expectedSeq`: torn, a lost write (`hole`), or damage (and what follows it, for the message).
 *
 * @example
 * ```ts
 * import { judgeTail } from "./torn_tail.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * const f = await sim.open("/d/x", "createExclusive");
 * f.write(new Uint8Array(600)); // zeros: a grown size whose data never arrived
 * if (judgeTail(f, 0, 600, 0, 1024).kind !== "torn") throw new Error("zeros hold no frame");
 * f.close();
 * ```
 */
export function judgeTail(
  file: PlatformFile,
  at: number,
  size: number,
  expectedSeq: number,
  maxPayload: number,
): TailVerdict {
  const next = findNextValidFrame(file, at, size, expectedSeq, maxPayload);
  if (next === -1) return { kind: "torn" };
  if (next >= 0 && lostWrite(file, at, next)) return { kind: "hole" };
  return {
    kind: "damage",
    followedBy: next >= 0 ? "valid frames" : "more frame-like bytes than can be checked",
  };
}

/**
 * Could the invalid bytes `[from, to)`, with a valid frame at `to`, be pages the device never
 * received below later pages that it did? Write-back is per page and unordered, so an un-synced
 * page can read back as zeros under later ones. Only zeros a lost page can leave count: a
 * 512-byte-aligned sector of zeros; zeros from `from` to the next page boundary (a lost page whose
 * first part held synced frames: any length, the crash simulator produces 20-byte ones); or zeros
 * from `from` to the next sector boundary covering at least a whole frame header (the same, torn at
 * a sector). A shorter zero run ending inside a page is damage (a zeroed checksum byte, say), and
 * so is anything else. The cost, in RECOVERY.md: damage inside synced records that looks exactly
 * like one of these is cut as a torn hole.
 */
function lostWrite(file: PlatformFile, from: number, to: number): boolean {
  const sector = nextBoundary(from, SECTOR_BYTES);
  const page = nextBoundary(from, PAGE_BYTES);
  if (page <= to && isZeroRange(file, from, page)) return true;
  if (sector <= to && sector - from >= FRAME_HEADER_BYTES && isZeroRange(file, from, sector)) {
    return true;
  }
  return hasZeroSector(file, from, to);
}

/** The first multiple of `unit` after `offset`. */
function nextBoundary(offset: number, unit: number): number {
  return (Math.floor(offset / unit) + 1) * unit;
}

/**
 * True if every byte of `[from, to)` in the file is zero.
 *
 * @example
 * ```ts
 * import { isZeroRange } from "./torn_tail.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * const f = await sim.open("/d/z", "createExclusive");
 * f.write(new Uint8Array([0, 0, 0, 9]));
 * if (!isZeroRange(f, 0, 3) || isZeroRange(f, 0, 4)) throw new Error("zero range");
 * f.close();
 * ```
 */
export function isZeroRange(file: PlatformFile, from: number, to: number): boolean {
  const chunk = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, Math.max(0, to - from)));
  for (let at = from; at < to; at += chunk.length) {
    const n = file.readAt(chunk.subarray(0, Math.min(chunk.length, to - at)), at);
    for (let i = 0; i < n; i++) if (chunk[i] !== 0) return false;
  }
  return true;
}

/**
 * True if `[from, to)` holds a sector-aligned run of 512 zero bytes: the trace
 * of a write the device never received (etcd's WAL uses the same test).
 *
 * @example
 * ```ts
 * import { hasZeroSector } from "./torn_tail.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * const f = await sim.open("/d/s", "createExclusive");
 * f.write(new Uint8Array(1536).fill(1, 0, 512).fill(1, 1024));
 * if (!hasZeroSector(f, 0, 1536) || hasZeroSector(f, 600, 1536)) throw new Error("sector");
 * f.close();
 * ```
 */
export function hasZeroSector(file: PlatformFile, from: number, to: number): boolean {
  const first = Math.ceil(from / SECTOR_BYTES) * SECTOR_BYTES;
  const chunk = new Uint8Array(SCAN_CHUNK_BYTES);
  for (let at = first; at + SECTOR_BYTES <= to; at += chunk.length) {
    const want = Math.min(chunk.length, Math.floor((to - at) / SECTOR_BYTES) * SECTOR_BYTES);
    const n = file.readAt(chunk.subarray(0, want), at);
    for (let s = 0; s + SECTOR_BYTES <= n; s += SECTOR_BYTES) {
      let zero = true;
      for (let i = s; i < s + SECTOR_BYTES; i++) {
        if (chunk[i] !== 0) {
          zero = false;
          break;
        }
      }
      if (zero) return true;
    }
    if (n < want) return false;
  }
  return false;
}
