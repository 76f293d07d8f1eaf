/**
 * Version 1's search for a valid frame after an invalid one: the torn-tail rule of a v1 newest
 * segment (`../../torn_tail.ts`) asks whether anything valid follows the first invalid byte. Version
 * 2 needs no search: its durable mark says how far the data was synced.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { findNextValidFrame } from "./search.ts";
 * const f = await new SimPlatform().open("/x.seg", "createExclusive");
 * f.writev([new Uint8Array(32), new Uint8Array(40).fill(9), encodeFrame(FRAME_RECORD, 0, 0, new Uint8Array(1))]);
 * if (findNextValidFrame(f, 32, f.size(), 0, 1024) !== 72) throw new Error("the frame at 72");
 * ```
 * @module
 */
import type { PlatformFile } from "../../platform/types.ts";
import {
  decodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_RECORD,
  FRAME_SEAL,
  frameHeaderProblem,
} from "./frame.ts";
import { readU32, readU64 } from "../bytes.ts";
import { SCAN_CHUNK_BYTES } from "../scanner.ts";

/**
 * Looks for any valid frame starting after `from` and before `limit` whose sequence number is at
 * least `minSeq`: recovery's test for whether invalid bytes are a torn tail (nothing valid follows)
 * or damage in the middle of acknowledged data (valid frames follow). Returns its offset, -1 if
 * there is none, or -2 if crafted bytes held more plausible frame headers than it would check.
 *
 * The work is linear in `limit - from`: one pass over the bytes, a header test at each offset, and
 * checksums of candidate frames (headers that pass every test but the checksum) of at most
 * `limit - from + 1 MiB` bytes in all. Torn or zeroed space holds essentially no candidates, so
 * only bytes built to look like frames reach the bound, and -2 makes recovery call them damage.
 *
 * @example
 * ```ts
 * import type { PlatformFile } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { findNextValidFrame } from "./search.ts";
 * function tornTail(f: PlatformFile, at: number, seq: number): boolean {
 *   return findNextValidFrame(f, at, f.size(), seq, 1 << 20) === -1;
 * }
 * const sim = new SimPlatform();
 * const frame = (seq: number) => encodeFrame(FRAME_RECORD, seq, 0, new Uint8Array(100));
 * const torn = await sim.open("/torn.seg", "createExclusive");
 * torn.writev([new Uint8Array(32), frame(0).subarray(0, 60)]); // the last write, cut short
 * const damaged = await sim.open("/damaged.seg", "createExclusive");
 * damaged.writev([new Uint8Array(32), frame(0).fill(0xee, 40), frame(1)]); // a whole one follows
 * if (!tornTail(torn, 32, 0) || tornTail(damaged, 32, 0)) throw new Error("misjudged");
 * ```
 */
export function findNextValidFrame(
  file: PlatformFile,
  from: number,
  limit: number,
  minSeq: number,
  maxPayload: number,
): number {
  // Every frame is at least FRAME_HEADER_BYTES long, which bounds how far sequence numbers can run.
  const maxSeq = minSeq + Math.ceil((limit - from) / FRAME_HEADER_BYTES);
  let budget = limit - from + (1 << 20);
  const chunk = new Uint8Array(SCAN_CHUNK_BYTES + FRAME_HEADER_BYTES);
  for (let base = from + 1; base < limit; base += SCAN_CHUNK_BYTES) {
    const len = file.readAt(chunk.subarray(0, Math.min(chunk.length, limit - base)), base);
    const last = Math.min(SCAN_CHUNK_BYTES, len - FRAME_HEADER_BYTES + 1);
    const view = chunk.subarray(0, len);
    // Where the next record and seal type bytes are (-2: not looked up yet, -1: none left), found
    // with native indexOf, so zeroed or sparse space is skipped at memory speed.
    let nextRecord = -2;
    let nextSeal = -2;
    for (let i = 0; i < last; i++) {
      if (nextRecord !== -1 && nextRecord < i + 4) nextRecord = view.indexOf(FRAME_RECORD, i + 4);
      if (nextSeal !== -1 && nextSeal < i + 4) nextSeal = view.indexOf(FRAME_SEAL, i + 4);
      const typeAt = nextRecord < 0
        ? nextSeal
        : nextSeal < 0
        ? nextRecord
        : Math.min(nextRecord, nextSeal);
      if (typeAt < 0 || typeAt - 4 >= last) break;
      i = typeAt - 4;
      if (frameHeaderProblem(chunk, i, maxPayload) !== null) continue;
      const seq = readU64(chunk, i + 12);
      if (!(seq >= minSeq && seq <= maxSeq)) continue;
      const at = base + i;
      const frameBytes = FRAME_HEADER_BYTES + readU32(chunk, i + 8);
      if (at + frameBytes > limit) continue;
      budget -= frameBytes;
      if (budget < 0) return -2;
      let frame: Uint8Array;
      if (i + frameBytes <= len) frame = chunk.subarray(i, i + frameBytes);
      else {
        frame = new Uint8Array(frameBytes);
        file.readAt(frame, at);
      }
      if (decodeFrame(frame, 0, frameBytes, seq, maxPayload).status === "ok") return at;
    }
  }
  return -1;
}
