/**
 * The relay's resume point, from the stream itself: the last message on the relay's subject names
 * the last record the stream holds (its `Nats-Msg-Id` is `<log id>:<seq>`). The relay reads it at
 * start and after every failure, so that records the stream stored without the relay hearing of it
 * (an ack lost with the connection, a relay killed between the ack and its cursor commit) are not
 * sent again, however long ago that was: the server's deduplication window only covers a while.
 *
 * @example
 * ```ts
 * import { resumeAfter, streamTail } from "./resume.ts";
 * const id = "0123456789abcdef0123456789abcdef";
 * const stored = { seq: 90, header: { get: (k: string) => (k === "Nats-Msg-Id" ? `${id}:41` : "") } };
 * const streams = { getMessage: () => Promise.resolve(stored) };
 * const tail = await streamTail(streams, "ORDERS", "orders.eu", id);
 * // The cursor says 40 (records 0..39 acknowledged); the stream already holds 40 and 41.
 * const through = resumeAfter(tail, { position: 40, nextSeq: 100, path: "/d/orders" });
 * if (tail.subjectSeq !== 90 || through !== 41) throw new Error(`${through}`);
 * ```
 * @module
 */
import { CorruptionError, InvalidArgumentError } from "../errors.ts";
import { MSG_ID_HEADER, parseMessageId } from "./message.ts";

/** What the stream's last message on the subject says. */
export interface StreamTail {
  /** Its stream sequence; 0 if the subject has no message. */
  subjectSeq: number;
  /** The seq of the record it carries; null if the subject has no message. */
  logSeq: number | null;
}

/** What {@linkcode streamTail} needs: `JetStreamManager.streams`. */
export interface LastMessageSource {
  /** The stream's last message on a subject, or null if there is none. */
  getMessage(
    stream: string,
    query: { last_by_subj: string },
  ): Promise<{ seq: number; header: { get(key: string): string } } | null>;
}

/**
 * The last message on `subject` in `stream`. A message there that this log's relay did not write
 * (another log's id, or none) is an `InvalidArgumentError`: the subject must be the log's alone,
 * or the stream could not say how far the log got.
 *
 * @example
 * ```ts
 * import { streamTail } from "./resume.ts";
 * const empty = { getMessage: () => Promise.resolve(null) };
 * const tail = await streamTail(empty, "ORDERS", "orders.eu", "0123456789abcdef0123456789abcdef");
 * if (tail.subjectSeq !== 0 || tail.logSeq !== null) throw new Error(JSON.stringify(tail));
 * ```
 */
export async function streamTail(
  streams: LastMessageSource,
  stream: string,
  subject: string,
  logId: string,
): Promise<StreamTail> {
  const last = await streams.getMessage(stream, { last_by_subj: subject });
  if (last === null) return { subjectSeq: 0, logSeq: null };
  const id = last.header.get(MSG_ID_HEADER);
  const parsed = parseMessageId(id);
  if (parsed === null || parsed.logId !== logId) {
    throw new InvalidArgumentError({
      message: `relay: the last message on subject "${subject}" in stream "${stream}" (stream ` +
        `seq ${last.seq}, ${MSG_ID_HEADER} ${JSON.stringify(id)}) is not a record of log ` +
        `${logId}: a relay needs a subject of its own`,
    });
  }
  return { subjectSeq: last.seq, logSeq: parsed.seq };
}

/**
 * The seq the relay's cursor must be committed through before publishing again, or null if the
 * cursor already is past what the stream holds (nothing to skip). A stream holding a record the
 * log does not have yet is a `CorruptionError`: the relay only sends durable records, so that
 * cannot happen to this log.
 *
 * @example
 * ```ts
 * import { resumeAfter } from "./resume.ts";
 * const where = { position: 10, nextSeq: 20, path: "/d/orders" };
 * const ahead = (() => {
 *   try {
 *     return resumeAfter({ subjectSeq: 5, logSeq: 25 }, where);
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * if (resumeAfter({ subjectSeq: 5, logSeq: 9 }, where) !== null || !(ahead instanceof Error)) {
 *   throw new Error(String(ahead));
 * }
 * ```
 */
export function resumeAfter(
  tail: StreamTail,
  cursor: { position: number; nextSeq: number; path: string },
): number | null {
  if (tail.logSeq === null || tail.logSeq < cursor.position) return null;
  if (tail.logSeq >= cursor.nextSeq) {
    throw new CorruptionError({
      message: `relay: the stream holds record ${tail.logSeq} but the log ends before it ` +
        `(next seq ${cursor.nextSeq}): the stream is ahead of the log`,
      path: cursor.path,
      seq: tail.logSeq,
    });
  }
  return tail.logSeq;
}
