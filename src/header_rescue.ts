/**
 * Rebuilding the damaged header of a version-2 segment from what the rest of the segment and its
 * log say, so that repair can keep the segment's records instead of setting the whole file aside.
 * Every field has another witness: the log id is the other segments' (and every frame's seeded
 * CRC proves it), the first seq is the file name, `prevEndSeq` the chain, `dataStart` and
 * `baseTimestamp` the seal's entry 0 (or the header's own bytes, where the half of the header
 * whose CRC still matches holds them; or, for the base timestamp of a newest segment, its mark's
 * last timestamp minus the deltas of the frames before it). The header found is only a guess until the frames decode
 * with it: repair keeps exactly the records whose seeded CRCs match.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeHeader, newLogId } from "./format/header.ts";
 * import { rescueHeader } from "./header_rescue.ts";
 * const logId = newLogId();
 * const bytes = encodeHeader({ firstSeq: 7, maxRecordBytes: 1024, logId, prevEndSeq: 7,
 *   baseTimestamp: 5, indexCapacity: 2 });
 * bytes[40] ^= 1; // a byte of the log id: the second CRC no longer matches
 * const file = await new SimPlatform().open("/s", "createExclusive");
 * file.write(bytes);
 * const h = rescueHeader(file, 7, logId, null);
 * if (h?.dataStart !== 224 || h.logId !== logId || h.maxRecordBytes !== 1024) throw new Error();
 * ```
 * @module
 */
import type { PlatformFile } from "./platform/types.ts";
import { readU32, readU64 } from "./format/bytes.ts";
import { crc32 } from "./format/checksum.ts";
import { v2Codec } from "./format/codec.ts";
import { FRAME_SEAL } from "./format/frame.ts";
import {
  dataStartFor,
  HEADER_BYTES,
  INDEX_AREA_START,
  INDEX_ENTRY_BYTES,
  MAX_INDEX_CAPACITY,
  seedOf,
  type SegmentHeader,
} from "./format/header.ts";
import { MAX_RECORD_BYTES } from "./format/limits.ts";
import { readFileMark } from "./format/mark.ts";
import { FrameScanner } from "./format/scanner.ts";
import { maxSealFrameBytes, peekSeal, SEAL_PAYLOAD_START } from "./format/seal.ts";
import { readHeader } from "./open_context.ts";

/**
 * The header of the segment in `file` (named by `fileSeq`) of the log `logId`, rebuilt from its
 * witnesses; null if its bytes are not recognizably a version-2 header (then nothing says where its
 * frames start). `prev` is where the segment before it ends.
 */
export function rescueHeader(
  file: PlatformFile,
  fileSeq: number,
  logId: Uint8Array,
  prev: { endSeq: number; lastTimestamp: number } | null,
): SegmentHeader | null {
  const b = readHeader(file);
  if (b.length < HEADER_BYTES) return null;
  const firstHalf = readU32(b, 28) === crc32(b.subarray(0, 28));
  const secondHalf = readU32(b, 76) === crc32(b.subarray(32, 76));
  const version = b[8] | (b[9] << 8);
  if (firstHalf ? version !== 2 || readU64(b, 16) !== fileSeq : !secondHalf) return null;
  // A header whose id half checks out but names another log is another log's segment.
  if (secondHalf && b.subarray(32, 48).some((x, i) => x !== logId[i])) return null;
  const fromSeal = sealEntryZero(file, fileSeq, logId);
  const capacity = readU32(b, 64);
  const dataStart = firstHalf
    ? readU32(b, 24)
    : secondHalf && capacity <= MAX_INDEX_CAPACITY
    ? dataStartFor(capacity)
    : fromSeal?.dataStart;
  if (dataStart === undefined || (dataStart - INDEX_AREA_START) % INDEX_ENTRY_BYTES !== 0) {
    return null;
  }
  const rawBase = readU64(b, 56);
  const maxRecordBytes = firstHalf ? Math.min(readU32(b, 12), MAX_RECORD_BYTES) : MAX_RECORD_BYTES;
  const baseTimestamp = secondHalf && !Number.isNaN(rawBase) ? rawBase : fromSeal?.baseTimestamp ??
    baseFromMark(file, fileSeq, logId, dataStart, maxRecordBytes) ??
    prev?.lastTimestamp ?? 0;
  return {
    version: 2,
    firstSeq: fileSeq,
    maxRecordBytes,
    dataStart,
    logId,
    prevEndSeq: prev?.endSeq ?? fileSeq,
    baseTimestamp,
    indexCapacity: (dataStart - INDEX_AREA_START) / INDEX_ENTRY_BYTES,
  };
}

/**
 * The base timestamp a newest segment's mark implies: its frames, scanned up to the mark, hold
 * deltas that add up to the mark's last timestamp. Null without a valid mark, or if the frames do
 * not reach it whole.
 */
function baseFromMark(
  file: PlatformFile,
  firstSeq: number,
  logId: Uint8Array,
  dataStart: number,
  maxPayload: number,
): number | null {
  const mark = readFileMark(file, seedOf(logId, firstSeq));
  if (!mark || mark.durableEnd > file.size() || mark.nextSeq === firstSeq) return null;
  const scanner = new FrameScanner(file, v2Codec(crc32(logId)), {
    start: dataStart,
    limit: mark.durableEnd,
    seq: firstSeq,
    timestamp: 0,
    maxPayload,
  });
  let step = scanner.next();
  while (step.kind === "frame") step = scanner.next();
  if (step.kind !== "end" || scanner.expectedSeq !== mark.nextSeq) return null;
  const base = mark.lastTimestamp - scanner.timestamp;
  return base >= 0 ? base : null;
}

/** Entry 0 of the segment's seal (its `dataStart` and `baseTimestamp`), if the seal checks out. */
function sealEntryZero(
  file: PlatformFile,
  firstSeq: number,
  logId: Uint8Array,
): { dataStart: number; baseTimestamp: number } | null {
  const size = file.size();
  if (size < INDEX_AREA_START + 4) return null;
  const trailer = new Uint8Array(4);
  file.readAt(trailer, size - 4);
  const sealBytes = readU32(trailer, 0);
  if (sealBytes < 7 || sealBytes > maxSealFrameBytes(size, INDEX_AREA_START)) return null;
  const frame = new Uint8Array(sealBytes);
  file.readAt(frame, size - sealBytes);
  const claim = peekSeal(frame);
  if (!claim) return null;
  const d = v2Codec(crc32(logId)).decode(frame, 0, sealBytes, claim.endSeq, claim.lastTimestamp, 0);
  if (d.status !== "ok" || d.type !== FRAME_SEAL || d.payloadEnd - d.payloadStart < 52) return null;
  const at = d.payloadStart + SEAL_PAYLOAD_START;
  if (readU64(frame, at) !== firstSeq) return null;
  return { dataStart: readU64(frame, at + 8), baseTimestamp: readU64(frame, at + 16) };
}
