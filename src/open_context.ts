/**
 * What opening a log passes between its parts: the report it fills in, the options, the log id
 * check, where the previous segment ended, and what the newest segment recovers to. The parts:
 * `./recovery.ts` (the whole log), `./check_sealed.ts` (sealed segments), `./recover_active.ts`
 * (the newest segment), `./repair.ts` (repair mode).
 *
 * @example
 * ```ts
 * import { LogIdCheck } from "./open_context.ts";
 * const ids = new LogIdCheck();
 * if (ids.identity().id.length !== 16 || ids.identity() !== ids.identity()) throw new Error("id");
 * ```
 * @module
 */
import { CorruptionError } from "./errors.ts";
import type { PlatformFile } from "./platform/types.ts";
import { HEADER_BYTES, newLogId, type SegmentHeader } from "./format/header.ts";
import type { RepairAction } from "./repair_plan.ts";
import { type LogIdentity, logIdentity, type Segment, type SegmentOptions } from "./segment.ts";
import type { SealedSegment } from "./segment_view.ts";

/** What opening a log found and did. Readable as `log.openReport`. */
export interface OpenReport {
  /** Segments in the log after recovery. */
  segments: number;
  /** Bytes cut from a torn tail of the newest segment (0 if none). */
  truncatedBytes: number;
  /** Where the torn tail began, if one was cut. */
  truncatedAt: { path: string; offset: number } | null;
  /** True if a v1 torn tail was zero-filled space followed by frames a lost write never covered. */
  tornHole: boolean;
  /** A newest segment with a torn (short or zero-filled) header that was recreated. */
  recreatedSegment: string | null;
  /** Segments set aside by repair mode. */
  repaired: RepairAction[];
  /** Sequence numbers repair made the log skip (`[from, to)`), so that none is ever reused. */
  skippedSeqs: { from: number; to: number } | null;
}

/**
 * The report of an open that has found and done nothing yet (recovery fills it in; a read-only
 * log's stays so).
 *
 * @example
 * ```ts
 * import { emptyReport } from "./open_context.ts";
 * const r = emptyReport();
 * if (r.truncatedBytes !== 0 || r.repaired.length !== 0 || r === emptyReport()) throw new Error();
 * ```
 */
export function emptyReport(): OpenReport {
  return {
    segments: 0,
    truncatedBytes: 0,
    truncatedAt: null,
    tornHole: false,
    recreatedSegment: null,
    repaired: [],
    skippedSeqs: null,
  };
}

/** Recovery options. */
export interface RecoverOptions extends SegmentOptions {
  /** Move damaged segments aside (`.broken`) instead of failing with `CorruptionError`. */
  repair: boolean;
}

/**
 * The one log id every v2 segment of a log must carry: the first one met sets it, and a segment
 * with another is damage (a file copied in from another log).
 */
export class LogIdCheck {
  #identity: LogIdentity | null = null;

  /** The identity found so far, or a new random one for a log that has none yet. */
  identity(): LogIdentity {
    return this.#identity ??= logIdentity(newLogId());
  }

  /** The identity found so far, or null before any v2 segment was met. */
  get known(): LogIdentity | null {
    return this.#identity;
  }

  /** Damage if `header` (v2) names another log than the segments before it. */
  check(header: SegmentHeader, path: string): CorruptionError | null {
    if (header.logId === null) return null;
    if (this.#identity === null) {
      this.#identity = logIdentity(header.logId);
      return null;
    }
    const mine = this.#identity.id;
    if (header.logId.every((b, i) => b === mine[i])) return null;
    return new CorruptionError({
      message: "segment belongs to another log (its log id differs from the other segments')",
      path,
      offset: 32,
    });
  }
}

/** Where the previous segment ended: what a segment after it starts from. */
export interface PrevEnd {
  /** One past its last record. */
  endSeq: number;
  /** Its last record's timestamp. */
  lastTimestamp: number;
}

/** Reads the first bytes of a segment file: enough for a header of either version. */
export function readHeader(file: PlatformFile): Uint8Array {
  const head = new Uint8Array(HEADER_BYTES);
  const n = file.readAt(head, 0);
  return head.subarray(0, n);
}

/** What the newest segment recovers to: the writable one, or a sealed one (crash at rollover). */
export type NewestResult =
  | { kind: "active"; active: Segment }
  | { kind: "sealed"; view: SealedSegment };

/** What recovering the newest segment needs from the log. */
export interface NewestContext {
  /** The options. */
  opts: RecoverOptions;
  /** Filled in with what was found and done. */
  report: OpenReport;
  /** The log id check. */
  ids: LogIdCheck;
  /** Where the segment before it ended (null if it is the first). */
  prev: PrevEnd | null;
}
