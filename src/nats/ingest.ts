/**
 * The ingest: a JetStream durable pull consumer taken into a local log, each message exactly once
 * and in stream order, acknowledged only once its record is durable.
 *
 * Each message becomes one record (an envelope, {@linkcode decodeIngested} reads it) that keeps its
 * stream sequence, so the log itself says how far the ingest got: on start the ingest reads the
 * last record, and a message redelivered later with a sequence the log already holds (its ack was
 * lost, or the ingest died between the fdatasync and the ack) is acknowledged, not appended again.
 *
 * Order needs care after a failure: messages the consumer delivered that the log does not hold (the
 * ingest died first, or they were lost with the connection) come back only when their `ack_wait`
 * runs out, and the consumer delivers newer ones meanwhile. So at start, and whenever a delivery
 * sequence is skipped or a redelivery the log lacks shows up, the ingest takes everything without
 * appending until every unacknowledged message of the consumer is in its hands, then appends them
 * in stream order (waiting up to about `ack_wait`: give the consumer a short one if restarts must
 * be quick). That is why the consumer must acknowledge explicitly and deliver without limit.
 *
 * @example Type-checked only: it needs a running nats-server
 * ```ts
 * import { Store } from "@khipu/log";
 * import { decodeIngested, ingest } from "@khipu/log/nats";
 * import { connect } from "@nats-io/transport-node";
 * async function mirror(dir: string) {
 *   const store = await Store.open(dir);
 *   const copy = await store.log("orders-copy");
 *   const connection = await connect({ servers: "127.0.0.1:4222" });
 *   const run = await ingest(copy, { connection, stream: "ORDERS", consumer: "copy" });
 *   await run.stop();
 *   for await (const r of copy.read()) console.log(decodeIngested(r.data, r.seq).streamSeq);
 *   await connection.close();
 *   await store.close();
 * }
 * if (typeof mirror !== "function") throw new Error();
 * ```
 * @module
 */
import {
  type Consumer,
  type ConsumerConfig,
  jetstream,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { InvalidArgumentError, ReadOnlyError } from "../errors.ts";
import type { Log } from "../log.ts";
import { options as checkOptions, wholeNumber } from "../validate.ts";
import { decodeIngested, encodeIngested } from "./message.ts";
import { connectionOption, natsName } from "./options.ts";
import { Backoff, endsRun, pause } from "./retry.ts";
import type { IngestStats } from "./stats.ts";

/** Options of {@linkcode ingest}. */
export interface IngestOptions {
  /** The NATS connection (the ingest neither opens nor closes it). */
  connection: NatsConnection;
  /** The stream the consumer reads. */
  stream: string;
  /** A durable pull consumer of `stream`: `ack_policy` explicit, `max_deliver` unlimited. */
  consumer: string;
  /** Messages per fetch, appended with one fdatasync (default 256). */
  batch?: number;
  /** How long a fetch waits for messages, in ms (default 1000, at least 1000). */
  expiresMs?: number;
  /**
   * How long the ingest waits for the server to confirm its acks or answer a consumer info before
   * it retries (default 5000).
   */
  ackTimeoutMs?: number;
  /** Stops the ingest when aborted, as `stop()` does. */
  signal?: AbortSignal;
}

/** A running ingest. */
export interface Ingest {
  /** What it did so far. */
  readonly stats: IngestStats;
  /**
   * Settles when the ingest has ended: resolves after `stop()` or the signal, rejects with the
   * error that ended it otherwise (a failure of the log, a consumer it cannot use, the connection
   * closed).
   */
  readonly done: Promise<void>;
  /**
   * Lets the fetch under way end (within `expiresMs`), makes durable and acknowledges what it
   * took, and ends. Returns `done`.
   */
  stop(): Promise<void>;
}

/**
 * Starts taking `consumer` of `stream` into `log` (a writable log: the ingest appends). Resolves
 * once it has read how far the log got; a log whose last record the ingest did not write, or
 * wrote from another stream, is refused.
 *
 * @example A read-only log cannot take messages
 * ```ts
 * import { ReadOnlyError, Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { ingest } from "./ingest.ts";
 * const sim = new SimPlatform();
 * await (await Store.open("/data", { platform: sim })).close();
 * const writer = await Store.open("/data", { platform: sim });
 * await writer.log("copy");
 * const ro = await Store.open("/data", { platform: sim, readOnly: true });
 * const fake = { request: () => {}, isClosed: () => false } as never;
 * const refused = await ingest(await ro.log("copy"), {
 *   connection: fake,
 *   stream: "ORDERS",
 *   consumer: "copy",
 * }).catch((e) => e);
 * await ro.close();
 * await writer.close();
 * if (!(refused instanceof ReadOnlyError)) throw new Error(String(refused));
 * ```
 */
export async function ingest(log: Log, opts: IngestOptions): Promise<Ingest> {
  const what = "ingest options";
  const o = checkOptions(what, opts, [
    "connection",
    "stream",
    "consumer",
    "batch",
    "expiresMs",
    "ackTimeoutMs",
    "signal",
  ]);
  const settings: Settings = {
    connection: connectionOption(`${what}: connection`, o.connection),
    stream: natsName(`${what}: stream`, o.stream),
    consumer: natsName(`${what}: consumer`, o.consumer),
    batch: wholeNumber(`${what}: batch`, o.batch ?? 256, 1, 65_536),
    expiresMs: wholeNumber(`${what}: expiresMs`, o.expiresMs ?? 1000, 1000, 3_600_000),
    ackTimeoutMs: wholeNumber(`${what}: ackTimeoutMs`, o.ackTimeoutMs ?? 5000, 1, 3_600_000),
  };
  if (log.readOnly) throw new ReadOnlyError({ op: "ingest", path: log.path });
  const last = await lastIngested(log, settings.stream);
  return new IngestRun(log, settings, last, o.signal);
}

/**
 * Stream sequence of the last message `log` holds, 0 if it holds none; `InvalidArgumentError` if
 * that record came from another stream.
 */
async function lastIngested(log: Log, stream: string): Promise<number> {
  const filled = log.segments().filter((s) => s.endSeq > s.firstSeq);
  const seg = filled[filled.length - 1];
  if (seg === undefined) return 0;
  for await (const r of log.read({ from: seg.endSeq - 1, to: seg.endSeq })) {
    const m = decodeIngested(r.data, r.seq);
    if (m.stream !== stream) {
      throw new InvalidArgumentError({
        message: `ingest: log "${log.name}" holds messages of stream "${m.stream}", not ` +
          `"${stream}" (its last record, seq ${r.seq})`,
        path: log.path,
        seq: r.seq,
      });
    }
    return m.streamSeq;
  }
  return 0;
}

/** A consumer the ingest can keep exactly once with, or why not. */
function checkConsumer(c: ConsumerConfig, name: string): void {
  const why = c.ack_policy !== "explicit" && c.ack_policy !== "all"
    ? `ack_policy "${c.ack_policy}" (the ingest acknowledges after the append: explicit or all)`
    : c.max_deliver !== undefined && c.max_deliver > 0
    ? `max_deliver ${c.max_deliver} (a message delivered that often would be dropped: use -1)`
    : null;
  if (why !== null) {
    throw new InvalidArgumentError({ message: `ingest: consumer "${name}" has ${why}` });
  }
}

interface Settings {
  connection: NatsConnection;
  stream: string;
  consumer: string;
  batch: number;
  expiresMs: number;
  ackTimeoutMs: number;
}

class IngestRun implements Ingest {
  readonly done: Promise<void>;
  #log: Log;
  #s: Settings;
  #js: JetStreamClient;
  #stop = new AbortController();
  #backoff = new Backoff(50, 1000);
  #last: number;
  /** Delivery sequence the next message must have; a jump means deliveries were lost. */
  #nextDelivery = 0;
  #appended = 0;
  #duplicates = 0;
  #recoveries = 0;
  #lastError: unknown = null;

  constructor(log: Log, s: Settings, last: number, signal: AbortSignal | undefined) {
    this.#log = log;
    this.#s = s;
    this.#last = last;
    this.#js = jetstream(s.connection, { timeout: s.ackTimeoutMs });
    if (signal?.aborted) this.#stop.abort();
    else signal?.addEventListener("abort", () => this.#stop.abort(), { once: true });
    this.done = this.#run();
    // Reported through `done` and `stop()`: an ingest nobody awaits must not crash the process.
    this.done.catch(() => {});
  }

  get stats(): IngestStats {
    return {
      appended: this.#appended,
      duplicates: this.#duplicates,
      lastStreamSeq: this.#last,
      recoveries: this.#recoveries,
      lastError: this.#lastError,
    };
  }

  stop(): Promise<void> {
    this.#stop.abort();
    return this.done;
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        const consumer = await this.#js.consumers.get(this.#s.stream, this.#s.consumer);
        await this.#recover(consumer);
        await this.#pump(consumer);
      } catch (err) {
        if (endsRun(err, this.#s.connection)) throw err;
        this.#lastError = err;
        await pause(this.#backoff.next(), this.#stop.signal);
      }
    }
  }

  /**
   * Before taking new messages: if the consumer has unacknowledged ones, takes messages (without
   * appending) until all of those are in hand, then stores them in stream order.
   */
  async #recover(consumer: Consumer): Promise<void> {
    let info = await consumer.info();
    checkConsumer(info.config, this.#s.consumer);
    if (info.num_ack_pending > 0) {
      this.#recoveries++;
      const held = new Map<number, JsMsg>();
      while (!this.#stop.signal.aborted) {
        for await (const m of await this.#fetch(consumer)) held.set(m.seq, m);
        info = await consumer.info();
        if (info.num_ack_pending <= held.size) break;
      }
      // Stopped before all came back: they stay unacknowledged, for the next run.
      if (this.#stop.signal.aborted) return;
      await this.#store([...held.values()].sort((a, b) => a.seq - b.seq));
    }
    this.#nextDelivery = info.delivered.consumer_seq + 1;
  }

  /** Takes messages in delivery order until one shows that some were lost, or it stops. */
  async #pump(consumer: Consumer): Promise<void> {
    while (!this.#stop.signal.aborted) {
      const taken: JsMsg[] = [];
      let lost = false;
      for await (const m of await this.#fetch(consumer)) {
        lost = m.info.deliverySequence !== this.#nextDelivery ||
          (m.redelivered && m.seq > this.#last);
        // Left unacknowledged, it comes back with the others the recovery waits for.
        if (lost) break;
        this.#nextDelivery++;
        taken.push(m);
      }
      await this.#store(taken);
      this.#backoff.reset();
      if (lost) return;
    }
  }

  /**
   * One pull request, let run to its end even when the ingest stops: the server keeps a pull
   * request until it expires whatever the client does, and would deliver into a fetch the client
   * stopped listening to, leaving those messages for the next start to wait out (`ack_wait`).
   */
  #fetch(consumer: Consumer): Promise<AsyncIterable<JsMsg>> {
    return consumer.fetch({ max_messages: this.#s.batch, expires: this.#s.expiresMs });
  }

  /** Appends the messages the log lacks, makes them durable, then acknowledges every one. */
  async #store(msgs: readonly JsMsg[]): Promise<void> {
    const records: Uint8Array[] = [];
    let last = this.#last;
    for (const m of msgs) {
      if (m.seq <= last) {
        this.#duplicates++;
        continue;
      }
      records.push(encodeIngested({
        stream: this.#s.stream,
        streamSeq: m.seq,
        subject: m.subject,
        time: Math.floor(Number(m.info.timestampNanos) / 1e6),
        headers: m.headers
          ? [...m.headers].flatMap(([k, vs]) => vs.map((v): [string, string] => [k, v]))
          : [],
        data: m.data,
      }));
      last = m.seq;
    }
    if (records.length > 0) {
      await this.#log.appendBatch(records);
      await this.#log.sync();
      this.#appended += records.length;
      this.#last = last;
    }
    // The last one's ack is awaited: acks are processed in order, so the consumer's state then
    // reflects them all before the next fetch (or a recovery's count) asks about it.
    msgs.slice(0, -1).forEach((m) => m.ack());
    await msgs[msgs.length - 1]?.ackAck({ timeout: this.#s.ackTimeoutMs });
  }
}
