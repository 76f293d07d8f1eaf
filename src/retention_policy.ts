/**
 * Retention limits: what `retention: { maxAgeMs, maxBytes, maxRecords, keepUnconsumed }` means, and
 * where it cuts a log. The cut is a sequence number: every sealed segment whose records all lie
 * below it goes (`./retention.ts` deletes them, oldest first, durably). A segment goes when **all**
 * its records are past **a** limit:
 *
 * - `maxAgeMs`: its last record is older than that (from the seal's timestamp: no scan);
 * - `maxRecords`: it lies wholly outside the newest `maxRecords` records;
 * - `maxBytes`: the files from it to the newest add up to more than that (what is on disk, the
 *   active segment's preallocated space included), so it goes, oldest first, until they do not.
 *
 * `keepUnconsumed` holds the age and count limits back at the lowest position of the log's cursors
 * (any process's): a segment a cursor has not committed past stays. `maxBytes` is a hard cap and
 * wins: a cursor it leaves behind gets `RecordsRemovedError` on its next read. The active segment
 * never goes (`segmentMaxAgeMs` rolls it, so that a quiet log's age limit can act).
 *
 * @example
 * ```ts
 * import { resolveRetention, retentionCut } from "./retention_policy.ts";
 * const limits = resolveRetention({ maxRecords: 10 });
 * const sealed = (firstSeq: number, endSeq: number) => ({ kind: "sealed" as const, firstSeq, endSeq,
 *   bytes: 1000, lastTimestamp: 0 });
 * const segments = [sealed(0, 8), sealed(8, 16), sealed(16, 24)];
 * // 30 records: the newest 10 are 20..29, so 0..15 are past the limit and 16..23 are not all.
 * if (retentionCut(segments, 3000, limits, { now: 0, nextSeq: 30, consumed: null }) !== 16) {
 *   throw new Error("cut");
 * }
 * ```
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import { boolean, options as checkOptions, wholeNumber } from "./validate.ts";

/** Retention limits of a log (`retention` in the store's or the log's options). */
export interface RetentionOptions {
  /** Delete a sealed segment once its newest record is older than this many ms. */
  maxAgeMs?: number;
  /** Keep the log's files (on disk) at most this many bytes, deleting the oldest sealed segments. */
  maxBytes?: number;
  /** Delete a sealed segment once all its records are outside the newest `maxRecords`. */
  maxRecords?: number;
  /**
   * Hold the age and record limits back while a cursor (any process's) has not committed past a
   * segment. `maxBytes` still wins. Default false.
   */
  keepUnconsumed?: boolean;
}

/** Retention limits with defaults: `Infinity` where there is no limit. */
export interface ResolvedRetention {
  /** `Infinity`: no age limit. */
  maxAgeMs: number;
  /** `Infinity`: no size limit. */
  maxBytes: number;
  /** `Infinity`: no count limit. */
  maxRecords: number;
  /** Hold age and count limits back at the lowest cursor. */
  keepUnconsumed: boolean;
}

/** No limits: nothing is ever deleted but by `truncateBefore`. */
export const NO_RETENTION: ResolvedRetention = Object.freeze({
  maxAgeMs: Infinity,
  maxBytes: Infinity,
  maxRecords: Infinity,
  keepUnconsumed: false,
});

const KEYS: readonly (keyof RetentionOptions)[] = [
  "maxAgeMs",
  "maxBytes",
  "maxRecords",
  "keepUnconsumed",
];

/**
 * Checks `given` (unknown keys, types, ranges: `InvalidArgumentError`) and fills in no-limit
 * defaults.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { resolveRetention } from "./retention_policy.ts";
 * if (resolveRetention({ maxAgeMs: 1000 }).maxBytes !== Infinity) throw new Error("default");
 * const bad = (() => { try { resolveRetention({ maxAge: 5 } as never); } catch (e) { return e; } })();
 * if (!(bad instanceof InvalidArgumentError)) throw new Error("unknown key accepted");
 * ```
 */
export function resolveRetention(given: RetentionOptions | undefined): ResolvedRetention {
  if (given === undefined) return NO_RETENTION;
  const o = checkOptions("retention options", given, KEYS);
  const limit = (name: string, v: number | undefined, min: number) =>
    v === undefined ? Infinity : wholeNumber(`retention.${name}`, v, min, Number.MAX_SAFE_INTEGER);
  const r: ResolvedRetention = {
    maxAgeMs: limit("maxAgeMs", o.maxAgeMs, 1),
    maxBytes: limit("maxBytes", o.maxBytes, 1),
    maxRecords: limit("maxRecords", o.maxRecords, 0),
    keepUnconsumed: o.keepUnconsumed === undefined
      ? false
      : boolean("retention.keepUnconsumed", o.keepUnconsumed),
  };
  if (r.keepUnconsumed && r.maxAgeMs === Infinity && r.maxRecords === Infinity) {
    throw new InvalidArgumentError({
      message: "retention.keepUnconsumed holds back maxAgeMs and maxRecords; give one of them",
    });
  }
  return r;
}

/** True if any limit is set. */
export function hasRetention(r: ResolvedRetention): boolean {
  return r.maxAgeMs !== Infinity || r.maxBytes !== Infinity || r.maxRecords !== Infinity;
}

/** What the cut needs to know of a segment. */
export type RetainedSegment =
  | { kind: "sealed"; firstSeq: number; endSeq: number; bytes: number; lastTimestamp: number }
  | { kind: "live"; firstSeq: number };

/** Where the log stands when the cut is taken. */
export interface CutContext {
  /** The clock, ms since the Unix epoch. */
  now: number;
  /** One past the newest record. */
  nextSeq: number;
  /** The lowest cursor position (for `keepUnconsumed`), or null if the log has no cursor. */
  consumed: number | null;
}

/**
 * The seq below which the sealed segments of `segments` (oldest first) may go under `limits`:
 * the highest cut of any limit, the age and count ones held back at `ctx.consumed` under
 * `keepUnconsumed`. `liveBytes` is the size on disk of the segments that are not sealed. Returns
 * the first segment's `firstSeq` (or less) when nothing goes.
 */
export function retentionCut(
  segments: readonly RetainedSegment[],
  liveBytes: number,
  limits: ResolvedRetention,
  ctx: CutContext,
): number {
  const first = segments[0]?.firstSeq ?? ctx.nextSeq;
  let byAge = first;
  let byCount = first;
  let byBytes = first;
  const oldest = ctx.now - limits.maxAgeMs;
  const countEnd = ctx.nextSeq - limits.maxRecords;
  let total = liveBytes;
  for (const s of segments) if (s.kind === "sealed") total += s.bytes;
  for (const s of segments) {
    if (s.kind !== "sealed") break;
    if (s.lastTimestamp < oldest) byAge = s.endSeq;
    if (s.endSeq <= countEnd) byCount = s.endSeq;
    if (total > limits.maxBytes) {
      byBytes = s.endSeq;
      total -= s.bytes;
    }
  }
  if (limits.keepUnconsumed && ctx.consumed !== null) {
    byAge = Math.min(byAge, ctx.consumed);
    byCount = Math.min(byCount, ctx.consumed);
  }
  return Math.max(byAge, byCount, byBytes);
}
