/**
 * What a record looks like on the way into JetStream and on the way back: the relay's message id
 * and headers, and the envelope the ingest stores a stream message in.
 *
 * A relayed record is its bytes as the message's payload, with `Nats-Msg-Id: <log id>:<seq>` (the
 * server's deduplication key, and how the relay finds its resume point in the stream), `Khipu-Seq`
 * and `Khipu-Timestamp` (ms since the Unix epoch). An ingested message is one record holding the
 * stream's name, the message's stream sequence, subject, timestamp and headers around its payload,
 * so that the log itself says how far the ingest got.
 *
 * @example A record's id, and an ingested message read back
 * ```ts
 * import { decodeIngested, encodeIngested, messageId, parseMessageId } from "./message.ts";
 * const id = messageId("0123456789abcdef0123456789abcdef", 41);
 * const back = parseMessageId(id);
 * const bytes = encodeIngested({
 *   stream: "ORDERS",
 *   streamSeq: 7,
 *   subject: "orders.eu",
 *   time: 1_700_000_000_000,
 *   headers: [["Khipu-Seq", "41"]],
 *   data: new TextEncoder().encode("paid"),
 * });
 * const m = decodeIngested(bytes);
 * if (back?.seq !== 41 || m.streamSeq !== 7 || new TextDecoder().decode(m.data) !== "paid") {
 *   throw new Error(`${id} ${m.streamSeq}`);
 * }
 * ```
 * @module
 */
import { CorruptionError } from "../errors.ts";

/** Header carrying the record's seq in its log. */
export const SEQ_HEADER = "Khipu-Seq";
/** Header carrying the record's timestamp (ms since the Unix epoch). */
export const TIMESTAMP_HEADER = "Khipu-Timestamp";
/** JetStream's deduplication header. */
export const MSG_ID_HEADER = "Nats-Msg-Id";

/**
 * The message id of record `seq` of the log with id `logId` (32 hex digits): unique across logs,
 * stable across relay restarts.
 *
 * @example
 * ```ts
 * import { messageId } from "./message.ts";
 * const id = messageId("0123456789abcdef0123456789abcdef", 5);
 * if (id !== "0123456789abcdef0123456789abcdef:5") throw new Error(id);
 * ```
 */
export function messageId(logId: string, seq: number): string {
  return `${logId}:${seq}`;
}

/**
 * The log id and seq a relay message id names; null for an id the relay did not write.
 *
 * @example
 * ```ts
 * import { parseMessageId } from "./message.ts";
 * const ok = parseMessageId("0123456789abcdef0123456789abcdef:12");
 * if (ok?.seq !== 12 || parseMessageId("order-12") !== null) throw new Error("parse");
 * ```
 */
export function parseMessageId(id: string): { logId: string; seq: number } | null {
  const m = /^([0-9a-f]{32}):(0|[1-9][0-9]{0,15})$/.exec(id);
  if (!m) return null;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { logId: m[1], seq } : null;
}

/** A stream message as the ingest keeps it in a local record. */
export interface IngestedMessage {
  /** The stream it came from. */
  stream: string;
  /** Its sequence number in that stream (from 1). */
  streamSeq: number;
  /** The subject it was published on. */
  subject: string;
  /** When the stream stored it, in ms since the Unix epoch. */
  time: number;
  /** Its headers, in order (a key may repeat). */
  headers: [string, string][];
  /** Its payload. */
  data: Uint8Array;
}

/** First bytes of an ingest envelope: "khn" and the envelope's version. */
const MAGIC = [0x6b, 0x68, 0x6e, 1];
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The record the ingest appends for a message: magic, stream seq (u64), time (u64 ms), then the
 * stream name, subject and headers (JSON) each behind a u32 length, then the payload.
 *
 * @example
 * ```ts
 * import { encodeIngested } from "./message.ts";
 * const m = { stream: "S", streamSeq: 1, subject: "a", time: 0, headers: [], data: new Uint8Array(3) };
 * const bytes = encodeIngested(m);
 * if (bytes.length !== 4 + 16 + 12 + 1 + 1 + 2 + 3) throw new Error(`${bytes.length}`);
 * ```
 */
export function encodeIngested(m: IngestedMessage): Uint8Array {
  const fields = [m.stream, m.subject, JSON.stringify(m.headers)].map((s) => encoder.encode(s));
  const size = MAGIC.length + 16 + fields.reduce((n, f) => n + 4 + f.length, 0) + m.data.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setBigUint64(4, BigInt(m.streamSeq));
  view.setBigUint64(12, BigInt(m.time));
  let at = 20;
  for (const f of fields) {
    view.setUint32(at, f.length);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  out.set(m.data, at);
  return out;
}

/**
 * Reads back what {@linkcode encodeIngested} wrote. Anything else (a record the ingest did not
 * write, or a damaged one) is a `CorruptionError`; `seq` names the record in it.
 *
 * @example
 * ```ts
 * import { CorruptionError } from "@khipu/log";
 * import { decodeIngested } from "./message.ts";
 * const e = (() => {
 *   try {
 *     return decodeIngested(new TextEncoder().encode("not an envelope"), 3);
 *   } catch (err) {
 *     return err;
 *   }
 * })();
 * if (!(e instanceof CorruptionError) || e.seq !== 3) throw new Error(String(e));
 * ```
 */
export function decodeIngested(bytes: Uint8Array, seq?: number): IngestedMessage {
  const bad = (why: string) =>
    new CorruptionError({ message: `not a record the NATS ingest wrote: ${why}`, seq });
  if (bytes.length < 20 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad("no envelope header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const streamSeq = Number(view.getBigUint64(4));
  const time = Number(view.getBigUint64(12));
  if (!Number.isSafeInteger(streamSeq) || !Number.isSafeInteger(time)) throw bad("bad numbers");
  let at = 20;
  const texts: string[] = [];
  for (let i = 0; i < 3; i++) {
    if (at + 4 > bytes.length) throw bad("truncated");
    const n = view.getUint32(at);
    if (at + 4 + n > bytes.length) throw bad("truncated");
    try {
      texts.push(decoder.decode(bytes.subarray(at + 4, at + 4 + n)));
    } catch {
      throw bad("a name that is not UTF-8");
    }
    at += 4 + n;
  }
  let headers: unknown;
  try {
    headers = JSON.parse(texts[2]);
  } catch {
    throw bad("headers that are not JSON");
  }
  const pair = (h: unknown) =>
    Array.isArray(h) && h.length === 2 && h.every((s) => typeof s === "string");
  if (!Array.isArray(headers) || !headers.every(pair)) throw bad("headers that are not pairs");
  return {
    stream: texts[0],
    streamSeq,
    subject: texts[1],
    time,
    headers: headers as [string, string][],
    data: bytes.subarray(at),
  };
}
