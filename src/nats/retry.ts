/**
 * How the relay and the ingest wait out a NATS failure: every NATS error (server down, no
 * responders, a timeout, an expectation the stream refused) is retried after a growing pause,
 * because an outbox must outlive its server; an error of the local log (a `KhipuError`) or a
 * connection its owner closed ends the run, since no retry can mend it.
 *
 * @example
 * ```ts
 * import { ClosedError } from "@khipu/log";
 * import { Backoff, endsRun } from "./retry.ts";
 * const b = new Backoff(10, 40);
 * const pauses = [b.next(), b.next(), b.next(), b.next()];
 * b.reset();
 * const local = new ClosedError({ what: "log", path: "/d/orders" });
 * if (pauses.join() !== "10,20,40,40" || b.next() !== 10) throw new Error(pauses.join());
 * if (!endsRun(local, { isClosed: () => false }) || endsRun(new Error("timeout"), { isClosed: () => false })) {
 *   throw new Error("classification");
 * }
 * ```
 * @module
 */
import { KhipuError } from "../errors.ts";

/**
 * Pauses that double from `first` up to `max` ms, back to `first` after `reset()`.
 *
 * @example
 * ```ts
 * import { Backoff } from "./retry.ts";
 * const b = new Backoff(50, 1000);
 * let last = 0;
 * for (let i = 0; i < 10; i++) last = b.next();
 * if (last !== 1000) throw new Error(`${last}`);
 * ```
 */
export class Backoff {
  #first: number;
  #max: number;
  #next: number;

  /** Starts at `first` ms; never more than `max` ms. */
  constructor(first: number, max: number) {
    this.#first = first;
    this.#max = max;
    this.#next = first;
  }

  /** The next pause, in ms. */
  next(): number {
    const ms = this.#next;
    this.#next = Math.min(this.#max, ms * 2);
    return ms;
  }

  /** The next pause is the first again (after something succeeded). */
  reset(): void {
    this.#next = this.#first;
  }
}

/**
 * True if `err` must end the run instead of being retried: an error of khipu-log itself (the log
 * closed, a cursor that cannot be written, records removed by retention, a stream that contradicts
 * the log), or any error once the connection is closed for good.
 *
 * @example
 * ```ts
 * import { endsRun } from "./retry.ts";
 * if (!endsRun(new Error("connection closed"), { isClosed: () => true })) throw new Error();
 * ```
 */
export function endsRun(err: unknown, connection: { isClosed(): boolean }): boolean {
  return err instanceof KhipuError || connection.isClosed();
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects).
 *
 * @example
 * ```ts
 * import { pause } from "./retry.ts";
 * const stop = new AbortController();
 * const t0 = Date.now();
 * const waiting = pause(60_000, stop.signal);
 * stop.abort();
 * await waiting;
 * if (Date.now() - t0 > 1000) throw new Error("did not end on abort");
 * ```
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
