/**
 * How the log and its readers see each segment: **sealed** (immutable; its limits come from its
 * seal) or **live** (still written; its readable end moves with the writer's flushes). At rollover
 * the log replaces a segment's live view with a sealed one; a reader still holding the live view
 * sees the writer sealed and ends the segment there, so no view is ever changed in place.
 *
 * @example
 * ```ts
 * import { endSeqOf, liveView, readableEnd } from "./segment_view.ts";
 * import { newLogId } from "./format/header.ts";
 * import { logIdentity, Segment } from "./segment.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const start = { firstSeq: 0, prevEndSeq: 0, baseTimestamp: 0, log: logIdentity(newLogId()) };
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4096 };
 * const view = liveView(Segment.pending(new SimPlatform(), "/log", start, opts));
 * if (readableEnd(view) !== 160 || endSeqOf(view) !== null) throw new Error("an empty live segment");
 * ```
 * @module
 */
import { type FrameCodec, v2Codec } from "./format/codec.ts";
import type { SparseIndex } from "./format/sparse_index.ts";
import type { Segment } from "./segment.ts";

/** What every view of a segment says. */
interface ViewBase {
  /** Sequence number of its first record. */
  readonly firstSeq: number;
  /** Path of the file. */
  readonly path: string;
  /** Sparse index: the seal's, or the writer's growing one. */
  readonly index: SparseIndex;
  /** Largest payload the segment's header allows: readers use it, never the current option. */
  readonly maxRecordBytes: number;
  /** How its frames decode (its format version). */
  readonly codec: FrameCodec;
  /** Offset of its first frame. */
  readonly dataStart: number;
}

/** A sealed segment: every record in it, its size and its index are fixed. */
export interface SealedSegment extends ViewBase {
  /** Sealed. */
  readonly kind: "sealed";
  /** One past its last record: the seal's sequence number, the next segment's first. */
  readonly endSeq: number;
  /** File size in bytes, seal included. */
  readonly bytes: number;
  /** Timestamp of its first record (version 1: 0, unknown without a scan). */
  readonly firstTimestamp: number;
  /** Timestamp of its last record (version 1: the sealing time). */
  readonly lastTimestamp: number;
}

/**
 * What a live view follows: this process's writer (a `Segment`), or, in a read-only store, the
 * scan of a segment another process writes (`./log_tail.ts`).
 */
export interface GrowingSegment {
  /** Offset up to which its bytes are whole batches a reader may read. */
  readonly flushedBytes: number;
  /** One past the last record in those bytes. */
  readonly flushedSeq: number;
  /** True once its seal is written: it ends at `flushedSeq`. */
  readonly sealed: boolean;
  /** True once its file exists. */
  readonly materialized: boolean;
  /** Size of its file on disk. */
  readonly diskBytes: number;
  /** Timestamp of its first record (null while it holds none). */
  readonly firstTimestamp: number | null;
  /** Timestamp of its last record (the base timestamp while it holds none). */
  readonly lastTimestamp: number;
}

/** The segment being written: its readable end is what the writer has flushed. */
export interface LiveSegment extends ViewBase {
  /** Still written. */
  readonly kind: "live";
  /** Its writer, or the scan following it. */
  readonly writer: GrowingSegment;
}

/** A segment as readers see it. */
export type SegmentView = SealedSegment | LiveSegment;

/**
 * The live view of the segment `writer` writes.
 *
 * @example
 * ```ts
 * import { liveView } from "./segment_view.ts";
 * import { newLogId } from "./format/header.ts";
 * import { logIdentity, Segment } from "./segment.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const start = { firstSeq: 7, prevEndSeq: 7, baseTimestamp: 0, log: logIdentity(newLogId()) };
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4096 };
 * const seg = Segment.pending(new SimPlatform(), "/log", start, opts);
 * if (liveView(seg).firstSeq !== 7) throw new Error("firstSeq");
 * ```
 */
export function liveView(writer: Segment): LiveSegment {
  return {
    kind: "live",
    firstSeq: writer.firstSeq,
    path: writer.path,
    index: writer.index,
    maxRecordBytes: writer.maxRecordBytes,
    codec: v2Codec(writer.start.log.idCrc),
    dataStart: writer.dataStart,
    writer,
  };
}

/**
 * The sealed view of a segment whose writer has just written and fdatasynced its seal.
 *
 * @example
 * ```ts
 * import { sealedView } from "./segment_view.ts";
 * import { newLogId } from "./format/header.ts";
 * import { logIdentity, Segment } from "./segment.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/log");
 * const start = { firstSeq: 0, prevEndSeq: 0, baseTimestamp: 0, log: logIdentity(newLogId()) };
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4096 };
 * const seg = Segment.pending(sim, "/log", start, opts);
 * seg.append(0, 1, new Uint8Array(4), true);
 * await seg.seal(2);
 * const view = sealedView(seg);
 * if (view.endSeq !== 1 || view.bytes !== sim.fileBytes(seg.path)?.length) throw new Error("view");
 * seg.close();
 * ```
 */
export function sealedView(writer: Segment): SealedSegment {
  return {
    kind: "sealed",
    firstSeq: writer.firstSeq,
    path: writer.path,
    index: writer.index,
    maxRecordBytes: writer.maxRecordBytes,
    codec: v2Codec(writer.start.log.idCrc),
    dataStart: writer.dataStart,
    endSeq: writer.flushedSeq,
    bytes: writer.fileBytes,
    firstTimestamp: writer.firstTimestamp ?? writer.start.baseTimestamp,
    lastTimestamp: writer.flushedTimestamp,
  };
}

/**
 * Bytes a reader may read: a sealed file whole, a live one up to what its writer has flushed (so a
 * reader never sees a half-written frame or the buffer).
 *
 * @example
 * ```ts
 * import { readableEnd, type SealedSegment } from "./segment_view.ts";
 * import { codecFor } from "./format/codec.ts";
 * import { decodeHeader, encodeHeader, newLogId } from "./format/header.ts";
 * import { SparseIndex } from "./format/sparse_index.ts";
 * const h = decodeHeader(encodeHeader({ firstSeq: 0, maxRecordBytes: 1024, logId: newLogId(),
 *   prevEndSeq: 0, baseTimestamp: 0, indexCapacity: 0 }));
 * if (!h.ok) throw new Error(h.reason);
 * const sealed: SealedSegment = {
 *   kind: "sealed", firstSeq: 0, path: "/log/0.seg", index: new SparseIndex(),
 *   maxRecordBytes: 1024, endSeq: 3, bytes: 200, codec: codecFor(h.header), dataStart: 160,
 *   firstTimestamp: 0, lastTimestamp: 0,
 * };
 * if (readableEnd(sealed) !== 200) throw new Error("a sealed file is read whole");
 * ```
 */
export function readableEnd(view: SegmentView): number {
  return view.kind === "sealed" ? view.bytes : view.writer.flushedBytes;
}

/**
 * One past the segment's last record once that is fixed (it is sealed, or its writer has sealed
 * it since this view was taken); `null` while it can still grow.
 *
 * @example
 * ```ts
 * import { endSeqOf, liveView } from "./segment_view.ts";
 * import { newLogId } from "./format/header.ts";
 * import { logIdentity, Segment } from "./segment.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const start = { firstSeq: 0, prevEndSeq: 0, baseTimestamp: 0, log: logIdentity(newLogId()) };
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4096 };
 * const seg = Segment.pending(new SimPlatform(), "/log", start, opts);
 * if (endSeqOf(liveView(seg)) !== null) throw new Error("a live segment can grow");
 * ```
 */
export function endSeqOf(view: SegmentView): number | null {
  if (view.kind === "sealed") return view.endSeq;
  return view.writer.sealed ? view.writer.flushedSeq : null;
}
