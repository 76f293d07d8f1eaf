/**
 * Gaps: ranges of sequence numbers that no segment of a log holds, because repair set their records
 * aside and declared the range on disk (a version-2 header whose `prevEndSeq` is below its
 * `firstSeq`, see FORMAT.md "Files"). Seqs in a gap are never reused; readers pass over them, and a
 * cursor's lag does not count them.
 *
 * @example
 * ```ts
 * import { seqsInGaps } from "./gaps.ts";
 * // Seqs 10..19 were set aside: a consumer at 5 with the log at 30 has 25 - 10 records to go.
 * if (30 - 5 - seqsInGaps(5, 30, [{ from: 10, to: 20 }]) !== 15) throw new Error("lag");
 * ```
 * @module
 */
import { endSeqOf, type SegmentView } from "./segment_view.ts";

/** Seqs `[from, to)` that no segment holds (repair set their records aside). */
export interface Gap {
  /** The first seq of the range. */
  from: number;
  /** One past its last seq: the first seq of the segment after it. */
  to: number;
}

/**
 * The gaps between `segments` (oldest first): wherever a segment ends (`endSeq`) below the next
 * one's `firstSeq`.
 *
 * @example
 * ```ts
 * import { gapsBetween } from "./gaps.ts";
 * import { SparseIndex } from "./format/sparse_index.ts";
 * import { v2Codec } from "./format/codec.ts";
 * const sealed = (firstSeq: number, endSeq: number) => ({
 *   kind: "sealed" as const, firstSeq, endSeq, path: `/l/${firstSeq}.seg`, index: new SparseIndex(),
 *   maxRecordBytes: 1024, codec: v2Codec(0), dataStart: 160, bytes: 4096, firstTimestamp: 0,
 *   lastTimestamp: 0,
 * });
 * const gaps = gapsBetween([sealed(0, 10), sealed(25, 30), sealed(30, 40)]);
 * if (JSON.stringify(gaps) !== '[{"from":10,"to":25}]') throw new Error(JSON.stringify(gaps));
 * ```
 */
export function gapsBetween(segments: readonly SegmentView[]): Gap[] {
  const gaps: Gap[] = [];
  for (let i = 0; i + 1 < segments.length; i++) {
    const end = endSeqOf(segments[i]);
    const next = segments[i + 1].firstSeq;
    if (end !== null && end < next) gaps.push({ from: end, to: next });
  }
  return gaps;
}

/**
 * How many seqs of `[from, to)` lie inside `gaps` (none if `to <= from`): what a count of the
 * records between two positions of a log leaves out.
 *
 * @example
 * ```ts
 * import { seqsInGaps } from "./gaps.ts";
 * const gaps = [{ from: 3, to: 5 }, { from: 8, to: 9 }];
 * if (seqsInGaps(0, 10, gaps) !== 3 || seqsInGaps(4, 6, gaps) !== 1) throw new Error();
 * if (seqsInGaps(6, 2, gaps) !== 0) throw new Error("an empty range holds nothing");
 * ```
 */
export function seqsInGaps(from: number, to: number, gaps: readonly Gap[]): number {
  let n = 0;
  for (const g of gaps) n += Math.max(0, Math.min(to, g.to) - Math.max(from, g.from));
  return n;
}
