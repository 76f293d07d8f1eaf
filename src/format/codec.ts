/**
 * One way to decode the frames of a segment, whatever its format version: the scanner, recovery
 * and readers take a {@linkcode FrameCodec} from the segment's header and never ask the version
 * again. Version 2 frames need the log id's CRC and the previous record's timestamp; version 1
 * frames carry their sequence number and whole timestamp, and every record ends its batch.
 *
 * @example
 * ```ts
 * import { codecFor } from "./codec.ts";
 * import { crc32 } from "./checksum.ts";
 * import { encodeFrame, FRAME_RECORD } from "./frame.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./header.ts";
 * const logId = newLogId();
 * const h = decodeHeader(encodeHeader({ firstSeq: 0, maxRecordBytes: 64, logId, prevEndSeq: 0,
 *   baseTimestamp: 0, indexCapacity: 0 }));
 * if (!h.ok) throw new Error(h.reason);
 * const frame = encodeFrame(FRAME_RECORD, crc32(logId), 0, 9, new Uint8Array(2));
 * const d = codecFor(h.header).decode(frame, 0, frame.length, 0, 0, 64);
 * if (d.status !== "ok" || d.timestamp !== 9) throw new Error(d.status);
 * ```
 * @module
 */
import { crc32 } from "./checksum.ts";
import {
  decodeFrame,
  FRAME_RECORD,
  FRAME_RECORD_MORE,
  FRAME_SEAL,
  type FrameResult,
} from "./frame.ts";
import type { SegmentHeader } from "./header.ts";
import { decodeFrame as decodeFrameV1 } from "./v1/frame.ts";

export { FRAME_RECORD, FRAME_RECORD_MORE, FRAME_SEAL, type FrameResult };

/** Decodes the frames of one segment. */
export interface FrameCodec {
  /** The segment's format version. */
  readonly version: 1 | 2;
  /** Bytes of the smallest frame (bounds how many records bytes can hold). */
  readonly minFrameBytes: number;
  /**
   * Decodes the frame at `buf[off, end)` where `expectedSeq` belongs, after a record with
   * timestamp `prevTimestamp` (version 2 counts deltas from it).
   */
  decode(
    buf: Uint8Array,
    off: number,
    end: number,
    expectedSeq: number,
    prevTimestamp: number,
    maxPayload: number,
  ): FrameResult;
}

const V1: FrameCodec = {
  version: 1,
  minFrameBytes: 28,
  decode: (buf, off, end, seq, _prev, max) => decodeFrameV1(buf, off, end, seq, max),
};

/**
 * The codec for a segment with this header.
 *
 * @example
 * ```ts
 * import { codecFor } from "./codec.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./header.ts";
 * const h = decodeHeader(encodeHeader({ firstSeq: 0, maxRecordBytes: 64, logId: newLogId(),
 *   prevEndSeq: 0, baseTimestamp: 0, indexCapacity: 0 }));
 * if (!h.ok || codecFor(h.header).version !== 2) throw new Error("v2");
 * ```
 */
export function codecFor(header: SegmentHeader): FrameCodec {
  if (header.version === 1 || header.logId === null) return V1;
  return v2Codec(crc32(header.logId));
}

/**
 * The codec for version 2 segments of the log whose id has the CRC `idCrc`: what a writer's own
 * segments decode with.
 *
 * @example
 * ```ts
 * import { v2Codec } from "./codec.ts";
 * if (v2Codec(0).minFrameBytes !== 7) throw new Error("7-byte frames");
 * ```
 */
export function v2Codec(idCrc: number): FrameCodec {
  return {
    version: 2,
    minFrameBytes: 7,
    decode: (buf, off, end, seq, prev, max) => decodeFrame(buf, off, end, idCrc, seq, prev, max),
  };
}

/**
 * True if a record of this frame type is the last of its batch (a seal counts: no batch spans it).
 *
 * @example
 * ```ts
 * import { endsBatch, FRAME_RECORD_MORE } from "./codec.ts";
 * if (endsBatch(FRAME_RECORD_MORE)) throw new Error("its batch goes on");
 * ```
 */
export function endsBatch(type: number): boolean {
  return type !== FRAME_RECORD_MORE;
}
