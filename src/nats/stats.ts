/**
 * What a running relay or ingest reports through its handle's `stats`: a snapshot taken when read.
 *
 * @example
 * ```ts
 * import type { RelayStats } from "./stats.ts";
 * function behind(s: RelayStats): boolean {
 *   return s.lag > 10_000 || s.lastError !== null;
 * }
 * const idle: RelayStats = {
 *   published: 0,
 *   duplicates: 0,
 *   skipped: 0,
 *   lag: 0,
 *   inFlight: 0,
 *   resyncs: 1,
 *   lastError: null,
 * };
 * if (behind(idle)) throw new Error("an idle relay is not behind");
 * ```
 * @module
 */

/** What `relay(...).stats` says. */
export interface RelayStats {
  /** Records the stream acknowledged as newly stored. */
  published: number;
  /** Records the stream acknowledged as duplicates (it already held that message id). */
  duplicates: number;
  /**
   * Records not published again because the stream already held them (found at a resume point:
   * acks lost with the connection, or a relay that died between an ack and its cursor commit).
   */
  skipped: number;
  /** Records in the log past the relay's cursor: not acknowledged yet (seqs in gaps not counted). */
  lag: number;
  /** Publishes sent and not acknowledged yet (at most `maxInFlight`). */
  inFlight: number;
  /** Times the relay read its resume point from the stream: once at start, then after failures. */
  resyncs: number;
  /** The last NATS failure the relay is retrying after, or null if none happened yet. */
  lastError: unknown;
}

/** What `ingest(...).stats` says. */
export interface IngestStats {
  /** Messages appended to the log (durable before they were acknowledged). */
  appended: number;
  /** Messages redelivered that the log already held: acknowledged, not appended again. */
  duplicates: number;
  /** Stream sequence of the last message the log holds; 0 before the first. */
  lastStreamSeq: number;
  /**
   * Times the ingest waited for the consumer's unacknowledged messages to come back before
   * taking newer ones (after a restart, or deliveries lost with the connection).
   */
  recoveries: number;
  /** The last NATS failure the ingest is retrying after, or null if none happened yet. */
  lastError: unknown;
}
