/**
 * The relay: a local log shipped into a JetStream stream, each record exactly once and in order,
 * whatever dies on the way (the relay, the server, the network). The log is the outbox: appends go
 * on while the server is away, and the relay catches up when it is back.
 *
 * How it works. A cursor (default `"jetstream"`) holds the relay's position in the log; it follows
 * committed records only (durable locally, so a power cut cannot leave the stream ahead of the
 * log) and is committed only after the stream acknowledged, in order. Before publishing, at start
 * and after every failure, the relay reads its resume point from the stream (the last message on
 * its subject, {@linkcode streamTail}) and skips what the stream already holds. Up to `maxInFlight`
 * publishes are pipelined, each with `Nats-Msg-Id: <log id>:<seq>` (deduplicated by the server
 * within its `duplicate_window`) and an expectation that makes the stream refuse it unless it
 * lands right after the previous record: the first after a resume point expects the stream's name
 * and the subject's last stream sequence, each later one the previous record's message id. So a message the server got
 * after others were lost (written into a dying connection, or sent from the client's buffer after a
 * reconnect) is refused instead of leaving a hole, and the relay resumes from the stream again.
 *
 * Every NATS failure is retried with a growing pause (`stats.lastError` says which); an error of
 * the log or its cursor, or a connection closed by its owner, ends the relay (`done` rejects).
 *
 * Full speed needs the stream to be the relay's own: each message expects the previous one as the
 * stream's last, so another publisher in between makes the relay resume (correctly, but often).
 *
 * @example Type-checked only: it needs a running nats-server
 * ```ts
 * import { Store } from "@khipu/log";
 * import { relay } from "@khipu/log/nats";
 * import { connect } from "@nats-io/transport-node";
 * async function ship(dir: string) {
 *   const store = await Store.open(dir);
 *   const orders = await store.log("orders");
 *   const connection = await connect({ servers: "127.0.0.1:4222" });
 *   const r = await relay(orders, { connection, stream: "ORDERS", subject: "orders.eu" });
 *   await orders.append("order #1"); // relayed once durable
 *   console.log(r.stats.lag);
 *   await r.stop();
 *   await connection.close();
 *   await store.close();
 * }
 * if (typeof ship !== "function") throw new Error();
 * ```
 * @module
 */
import {
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  type JetStreamPublishOptions,
  type PubAck,
} from "@nats-io/jetstream";
import { setImmediate } from "node:timers";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import type { Cursor } from "../cursor.ts";
import type { Log } from "../log.ts";
import type { LogRecord } from "../reader.ts";
import { options as checkOptions, wholeNumber } from "../validate.ts";
import { messageId, SEQ_HEADER, TIMESTAMP_HEADER } from "./message.ts";
import { connectionOption, natsName, subjectName } from "./options.ts";
import { type LastMessageSource, resumeAfter, streamTail } from "./resume.ts";
import { Backoff, endsRun, pause } from "./retry.ts";
import type { RelayStats } from "./stats.ts";

/** Options of {@linkcode relay}. */
export interface RelayOptions {
  /** The NATS connection (the relay neither opens nor closes it). */
  connection: NatsConnection;
  /** The stream that stores `subject`. */
  stream: string;
  /** The subject to publish on: the log's alone (the resume point is its last message). */
  subject: string;
  /** The log's cursor holding the relay's position (default `"jetstream"`). */
  cursor?: string;
  /** Publishes awaiting their ack at most (default 256). */
  maxInFlight?: number;
  /** How long a publish waits for its ack before the relay resumes from the stream (default 5000). */
  ackTimeoutMs?: number;
  /** Stops the relay when aborted, as `stop()` does. */
  signal?: AbortSignal;
}

/** A running relay. */
export interface Relay {
  /** What it did so far. */
  readonly stats: RelayStats;
  /**
   * Settles when the relay has ended: resolves after `stop()` or the signal, rejects with the error
   * that ended it otherwise (a failure of the log or its cursor, or the connection closed).
   */
  readonly done: Promise<void>;
  /**
   * Stops following, lets the publishes in flight get their acks (or time out), commits the cursor
   * through the last record acknowledged and closes it. Returns `done`.
   */
  stop(): Promise<void>;
}

/** A publish awaiting its ack, oldest first. */
interface InFlight {
  seq: number;
  acked: boolean;
}

/**
 * Starts relaying `log` into `stream` on `subject`, from its cursor; resolves once the cursor is
 * open (a second relay on the same cursor, in any process, gets `LockedError`).
 *
 * @example Its options are checked before anything opens
 * ```ts
 * import { InvalidArgumentError, Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { relay } from "./relay.ts";
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * const log = await store.log("orders");
 * const fake = { request: () => {}, isClosed: () => false } as never;
 * const refused = await relay(log, { connection: fake, stream: "ORDERS", subject: "orders.>" })
 *   .catch((e) => e);
 * await store.close();
 * if (!(refused instanceof InvalidArgumentError)) throw new Error(String(refused));
 * ```
 */
export async function relay(log: Log, opts: RelayOptions): Promise<Relay> {
  const what = "relay options";
  const o = checkOptions(what, opts, [
    "connection",
    "stream",
    "subject",
    "cursor",
    "maxInFlight",
    "ackTimeoutMs",
    "signal",
  ]);
  const settings: Settings = {
    connection: connectionOption(`${what}: connection`, o.connection),
    stream: natsName(`${what}: stream`, o.stream),
    subject: subjectName(`${what}: subject`, o.subject),
    maxInFlight: wholeNumber(`${what}: maxInFlight`, o.maxInFlight ?? 256, 1, 65_536),
    ackTimeoutMs: wholeNumber(`${what}: ackTimeoutMs`, o.ackTimeoutMs ?? 5000, 1, 3_600_000),
  };
  const cursor = await log.cursor(o.cursor ?? "jetstream");
  return new RelayRun(log, cursor, settings, o.signal);
}

interface Settings {
  connection: NatsConnection;
  stream: string;
  subject: string;
  maxInFlight: number;
  ackTimeoutMs: number;
}

class RelayRun implements Relay {
  readonly done: Promise<void>;
  #log: Log;
  #logId: string;
  #cursor: Cursor;
  #s: Settings;
  #js: JetStreamClient;
  #streams: LastMessageSource | null = null;
  #stop = new AbortController();
  #backoff = new Backoff(50, 1000);
  #published = 0;
  #duplicates = 0;
  #skipped = 0;
  #resyncs = 0;
  #lastLag = 0;
  #lastError: unknown = null;
  /** The error that ends the run (a commit that failed), set from a callback. */
  #fatal: unknown = null;
  /** Publishes of one run between resume points; acks of an earlier one are ignored. */
  #epoch = 0;
  #epochFailed = false;
  #inFlight: InFlight[] = [];
  /** The commit running, if any, and the seq the cursor is to be committed through. */
  #committing: Promise<void> | null = null;
  #commitTo = -1;
  #stopReading: () => void = () => {};
  #waiters: (() => void)[] = [];

  constructor(log: Log, cursor: Cursor, s: Settings, signal: AbortSignal | undefined) {
    this.#log = log;
    this.#logId = log.id;
    this.#cursor = cursor;
    this.#s = s;
    this.#js = jetstream(s.connection, { timeout: s.ackTimeoutMs });
    this.#stop.signal.addEventListener("abort", () => {
      this.#stopReading();
      this.#wake();
    });
    if (signal?.aborted) this.#stop.abort();
    else signal?.addEventListener("abort", () => this.#stop.abort(), { once: true });
    this.done = this.#run();
    // Reported through `done` and `stop()`: a relay nobody awaits must not crash the process.
    this.done.catch(() => {});
  }

  get stats(): RelayStats {
    if (!this.#cursor.closed) this.#lastLag = this.#cursor.lag;
    return {
      published: this.#published,
      duplicates: this.#duplicates,
      skipped: this.#skipped,
      lag: this.#lastLag,
      inFlight: this.#inFlight.length,
      resyncs: this.#resyncs,
      lastError: this.#lastError,
    };
  }

  stop(): Promise<void> {
    this.#stop.abort();
    return this.done;
  }

  async #run(): Promise<void> {
    try {
      while (!this.#stop.signal.aborted) {
        try {
          await this.#pump(await this.#resume());
        } catch (err) {
          if (endsRun(err, this.#s.connection)) throw err;
          this.#lastError = err;
          this.#epochFailed = true;
        }
        if (this.#fatal !== null) throw this.#fatal;
        if (this.#epochFailed) await pause(this.#backoff.next(), this.#stop.signal);
      }
      // Stopped: the acks of what is in flight still move the cursor.
      while (this.#inFlight.length > 0 && !this.#epochFailed) await this.#changed();
      await this.#committing;
      if (this.#fatal !== null) throw this.#fatal;
    } finally {
      this.#lastLag = this.#cursor.lag;
      await this.#cursor.close();
    }
  }

  /** A new epoch from the stream's last message on the subject: its stream sequence. */
  async #resume(): Promise<number> {
    this.#epoch++;
    this.#epochFailed = false;
    this.#inFlight = [];
    this.#resyncs++;
    // Acks of the last epoch no longer commit; the one they started must end before this one.
    await this.#committing;
    this.#streams ??= (await jetstreamManager(this.#s.connection, {
      checkAPI: false,
      timeout: this.#s.ackTimeoutMs,
    })).streams;
    const tail = await streamTail(this.#streams, this.#s.stream, this.#s.subject, this.#logId);
    const through = resumeAfter(tail, {
      position: this.#cursor.position,
      nextSeq: this.#log.nextSeq,
      path: this.#log.path,
    });
    if (through !== null) {
      this.#skipped += through + 1 - this.#cursor.position;
      await this.#cursor.commit(through);
    }
    return tail.subjectSeq;
  }

  /**
   * Publishes committed records from the cursor until the epoch fails or the relay stops. Records
   * read in one go are published together from one macrotask: the client writes everything
   * published in one turn with one socket write, and one write per record would halve the rate.
   */
  async #pump(subjectSeq: number): Promise<void> {
    const epoch = this.#epoch;
    const reading = new AbortController();
    this.#stopReading = () => reading.abort();
    if (this.#stop.signal.aborted) return;
    const { stream, subject, maxInFlight } = this.#s;
    let expect: JetStreamPublishOptions["expect"] = {
      streamName: stream,
      lastSubjectSequence: subjectSeq,
    };
    const queue: LogRecord[] = [];
    let scheduled = false;
    const send = () => {
      scheduled = false;
      // Records read but not sent when the epoch ended are read again from the cursor.
      if (!this.#running(epoch)) return;
      for (const r of queue.splice(0)) {
        const id = messageId(this.#logId, r.seq);
        const h = headers();
        h.set(SEQ_HEADER, String(r.seq));
        h.set(TIMESTAMP_HEADER, String(r.timestamp));
        const entry = { seq: r.seq, acked: false };
        this.#inFlight.push(entry);
        this.#js.publish(subject, r.data, { msgID: id, headers: h, expect }).then(
          (ack) => this.#acked(epoch, entry, ack),
          (err) => this.#failed(epoch, err),
        );
        // The stream was checked by the first: a later one lands only right after its predecessor.
        expect = { lastMsgID: id };
      }
    };
    for await (const r of this.#cursor.follow({ signal: reading.signal })) {
      while (this.#inFlight.length + queue.length >= maxInFlight && this.#running(epoch)) {
        await this.#changed();
      }
      if (!this.#running(epoch)) break;
      queue.push(r);
      if (!scheduled) {
        scheduled = true;
        setImmediate(send);
      }
    }
  }

  #running(epoch: number): boolean {
    return epoch === this.#epoch && !this.#epochFailed && !this.#stop.signal.aborted;
  }

  #acked(epoch: number, entry: InFlight, ack: PubAck): void {
    if (epoch !== this.#epoch || this.#epochFailed) return;
    if (ack.duplicate) this.#duplicates++;
    else this.#published++;
    entry.acked = true;
    let through = -1;
    while (this.#inFlight.length > 0 && this.#inFlight[0].acked) {
      through = this.#inFlight.shift()!.seq;
    }
    if (through >= 0) this.#commit(through);
    this.#backoff.reset();
    this.#wake();
  }

  /**
   * Commits the cursor through `seq`, at most one commit at a time: acks arrive faster than
   * fdatasyncs, and the cursor only needs the newest position (one commit per ack cost the relay
   * about a sixth of its rate).
   */
  #commit(seq: number): void {
    this.#commitTo = seq;
    if (this.#committing) return;
    this.#committing = (async () => {
      try {
        for (let done = -1; done < this.#commitTo;) {
          done = this.#commitTo;
          await this.#cursor.commit(done);
        }
      } catch (err) {
        this.#fatal ??= err;
        this.#stop.abort();
      } finally {
        this.#committing = null;
        this.#wake();
      }
    })();
  }

  #failed(epoch: number, err: unknown): void {
    if (epoch !== this.#epoch || this.#epochFailed) return;
    this.#epochFailed = true;
    this.#lastError = err;
    this.#stopReading();
    this.#wake();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
