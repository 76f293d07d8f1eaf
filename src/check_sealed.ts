/**
 * Checking a sealed segment (every segment but the newest) at open, without a scan: its header,
 * its seal (a v2 seal stands alone: its payload names its seq, which seeds its CRC; a v1 seal's seq
 * must be the chain's), its index, its log id, and the chain to the next segment, whose header says
 * where the one before it ended. The rules are in RECOVERY.md ("Sealed segments").
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { checkSealed } from "./check_sealed.ts";
 * import { LogIdCheck } from "./open_context.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * sim.setFileBytes("/l/00000000000000000000.seg", new Uint8Array(100));
 * sim.setFileBytes("/l/00000000000000000005.seg", new Uint8Array(100));
 * const next = { path: "/l/00000000000000000005.seg", firstSeq: 5 };
 * const r = await checkSealed(sim, "/l/00000000000000000000.seg", 0, next, new LogIdCheck());
 * if (!(r instanceof Error)) throw new Error("zeros are no sealed segment");
 * ```
 * @module
 */
import { CorruptionError } from "./errors.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { readU32 } from "./format/bytes.ts";
import { codecFor } from "./format/codec.ts";
import { FRAME_SEAL } from "./format/frame.ts";
import { decodeHeader, type SegmentHeader } from "./format/header.ts";
import { decodeSealPayload, maxSealFrameBytes, peekSeal } from "./format/seal.ts";
import {
  decodeSealPayload as decodeSealPayloadV1,
  maxSealFrameBytes as maxSealFrameBytesV1,
  MIN_SEAL_FRAME_BYTES as MIN_SEAL_FRAME_BYTES_V1,
} from "./format/v1/seal.ts";
import { type LogIdCheck, readHeader } from "./open_context.ts";
import type { SealedSegment } from "./segment_view.ts";

/** Where a sealed segment's successor says the chain must continue. */
export async function chainExpectation(
  platform: Platform,
  next: { path: string; firstSeq: number },
): Promise<number | null> {
  const file = await platform.open(next.path, "read");
  try {
    const h = decodeHeader(readHeader(file));
    if (!h.ok || h.header.firstSeq !== next.firstSeq) return null;
    return h.header.prevEndSeq;
  } finally {
    file.close();
  }
}

/**
 * Verifies a non-newest segment through its header and seal only (no scan): the seal's checksum
 * and index, its log id, and the chain: its end must be where the next segment's header says the
 * previous one ended (a deleted or foreign segment in between breaks it). Returns its view, or
 * the damage found.
 */
export async function checkSealed(
  platform: Platform,
  path: string,
  firstSeq: number,
  next: { path: string; firstSeq: number },
  ids: LogIdCheck,
): Promise<SealedSegment | CorruptionError> {
  const expectedEnd = await chainExpectation(platform, next);
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const h = decodeHeader(readHeader(file));
    const bad = (reason: string, offset: number, seq?: number) =>
      new CorruptionError({ message: `sealed segment: ${reason}`, path, offset, seq });
    if (!h.ok) return bad(h.reason, 0);
    const header = h.header;
    if (header.firstSeq !== firstSeq) {
      return bad(`header says first seq ${header.firstSeq}, name says ${firstSeq}`, 0);
    }
    const foreign = ids.check(header, path);
    if (foreign) return foreign;
    if (header.version === 1) {
      // A v1 seal's CRC covers its seq: the successor's chain value, or (unreadable) its name.
      return checkSealV1(file, size, header, path, expectedEnd ?? next.firstSeq, bad);
    }
    const found = readSeal(file, size, header, path);
    if (found instanceof CorruptionError) return found;
    const sealed = found.view;
    if (expectedEnd !== null && sealed.endSeq < expectedEnd && expectedEnd <= next.firstSeq) {
      // The seqs between the two are in no segment: the one that held them is gone. Named at the
      // segment after the hole, whose header says where the segment before it ended.
      return new CorruptionError({
        message: `seqs [${sealed.endSeq}, ${expectedEnd}) are missing: ${
          path.slice(path.lastIndexOf("/") + 1)
        } ends at ${sealed.endSeq}, but this segment's header says the one before it ended at ${expectedEnd} (a segment was deleted or moved away)`,
        path: next.path,
        // The header's prevEndSeq field.
        offset: 48,
        seq: sealed.endSeq,
      });
    }
    if (sealed.endSeq > next.firstSeq || (expectedEnd !== null && sealed.endSeq !== expectedEnd)) {
      return bad(
        `ends at seq ${sealed.endSeq}, but the next segment says the one before it ended at ${
          expectedEnd ?? next.firstSeq
        }: segments are out of place`,
        found.sealAt,
        sealed.endSeq,
      );
    }
    return sealed;
  } finally {
    file.close();
  }
}

/**
 * Reads and checks a v2 segment's seal, found through its trailer, with no scan and no chain: its
 * frame, CRC and payload (what `checkSealed` checks before the chain, and what repair trusts a
 * sealed segment's anchors from). Returns its view, or the damage found.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { readSeal } from "./check_sealed.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./format/header.ts";
 * const bytes = encodeHeader({ firstSeq: 0, maxRecordBytes: 64, logId: newLogId(), prevEndSeq: 0,
 *   baseTimestamp: 0, indexCapacity: 0 });
 * const h = decodeHeader(bytes);
 * if (!h.ok) throw new Error(h.reason);
 * const file = await new SimPlatform().open("/0.seg", "createExclusive");
 * file.write(bytes);
 * const r = readSeal(file, file.size(), h.header, "/0.seg");
 * if (!(r instanceof Error) || !r.message.includes("no seal")) throw new Error("a header only");
 * ```
 */
export function readSeal(
  file: PlatformFile,
  size: number,
  header: SegmentHeader,
  path: string,
): { view: SealedSegment; sealAt: number } | CorruptionError {
  const firstSeq = header.firstSeq;
  const bad = (reason: string, offset: number, seq?: number) =>
    new CorruptionError({ message: `sealed segment: ${reason}`, path, offset, seq });
  const trailer = new Uint8Array(4);
  if (size < header.dataStart + 4) return bad("no seal", size);
  file.readAt(trailer, size - 4);
  const sealBytes = readU32(trailer, 0);
  const sealAt = size - sealBytes;
  // Checked before anything is allocated: a seal indexes at most one entry per 64 KiB.
  if (sealBytes < 7 || sealBytes > maxSealFrameBytes(size, header.dataStart)) {
    return bad(`no seal (trailer says ${sealBytes} bytes)`, size);
  }
  if (sealAt < header.dataStart) return bad("no seal", size);
  const frame = new Uint8Array(sealBytes);
  file.readAt(frame, sealAt);
  const claim = peekSeal(frame);
  if (!claim) return bad("seal invalid (not a seal frame)", sealAt);
  const codec = codecFor(header);
  const d = codec.decode(
    frame,
    0,
    sealBytes,
    claim.endSeq,
    claim.lastTimestamp,
    header.maxRecordBytes,
  );
  if (d.status !== "ok" || d.type !== FRAME_SEAL || d.frameBytes !== sealBytes) {
    const why = d.status === "bad" ? d.reason : "not a whole seal";
    return bad(`seal invalid (${why})`, sealAt);
  }
  const seal = decodeSealPayload(frame.subarray(d.payloadStart, d.payloadEnd), sealBytes, {
    firstSeq,
    endSeq: claim.endSeq,
    sealAt,
    dataStart: header.dataStart,
    baseTimestamp: header.baseTimestamp,
  });
  if (typeof seal === "string") return bad(seal, sealAt);
  const view: SealedSegment = {
    kind: "sealed",
    firstSeq,
    path,
    endSeq: claim.endSeq,
    index: seal.index,
    bytes: size,
    maxRecordBytes: header.maxRecordBytes,
    codec,
    dataStart: header.dataStart,
    firstTimestamp: seal.firstTimestamp,
    lastTimestamp: seal.lastTimestamp,
  };
  return { view, sealAt };
}

/** The version 1 seal check: trailer, frame, index, and a seq equal to the chain's. */
function checkSealV1(
  file: PlatformFile,
  size: number,
  header: SegmentHeader,
  path: string,
  endSeq: number,
  bad: (reason: string, offset: number, seq?: number) => CorruptionError,
): SealedSegment | CorruptionError {
  const trailer = new Uint8Array(4);
  if (size < header.dataStart + MIN_SEAL_FRAME_BYTES_V1) return bad("no seal", size);
  file.readAt(trailer, size - 4);
  const sealBytes = readU32(trailer, 0);
  const sealAt = size - sealBytes;
  if (sealBytes < MIN_SEAL_FRAME_BYTES_V1 || sealBytes > maxSealFrameBytesV1(size)) {
    return bad(`no seal (trailer says ${sealBytes} bytes)`, size);
  }
  if (sealAt < header.dataStart) return bad("no seal", size);
  const frame = new Uint8Array(sealBytes);
  file.readAt(frame, sealAt);
  const codec = codecFor(header);
  const d = codec.decode(frame, 0, sealBytes, endSeq, 0, header.maxRecordBytes);
  if (d.status !== "ok" || d.type !== FRAME_SEAL) {
    const why = d.status === "bad" ? d.reason : "not a seal";
    return bad(`seal invalid (${why}); the next segment starts at ${endSeq}`, sealAt, endSeq);
  }
  const index = decodeSealPayloadV1(frame.subarray(d.payloadStart, d.payloadEnd), sealBytes, {
    firstSeq: header.firstSeq,
    endSeq,
    sealAt,
  });
  if (typeof index === "string") return bad(index, sealAt);
  return {
    kind: "sealed",
    firstSeq: header.firstSeq,
    path,
    endSeq,
    index,
    bytes: size,
    maxRecordBytes: header.maxRecordBytes,
    codec,
    dataStart: header.dataStart,
    firstTimestamp: 0,
    lastTimestamp: d.timestamp,
  };
}
