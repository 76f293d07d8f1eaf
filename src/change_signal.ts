/**
 * The signal a log gives its waiting followers: a promise that settles at the next change (a flush,
 * a rollover, a close), made only while someone waits, so an idle log costs nothing per append.
 *
 * @example
 * ```ts
 * import { ChangeSignal } from "./change_signal.ts";
 * const signal = new ChangeSignal();
 * let woke = false;
 * const waiting = signal.next().then(() => (woke = true));
 * signal.notify();
 * await waiting;
 * if (!woke) throw new Error("a waiter wakes at the next change");
 * ```
 * @module
 */

/**
 * One-shot wake-ups: every {@linkcode ChangeSignal.next} before a {@linkcode ChangeSignal.notify}
 * settles at that notify.
 *
 * @example
 * ```ts
 * import { ChangeSignal } from "./change_signal.ts";
 * const signal = new ChangeSignal();
 * signal.notify(); // nobody waits: nothing to do
 * const a = signal.next();
 * if (signal.next() !== a) throw new Error("waiters share one promise");
 * signal.notify();
 * await a;
 * ```
 */
export class ChangeSignal {
  #waiting: { promise: Promise<void>; resolve: () => void } | null = null;

  /** Settles at the next {@linkcode ChangeSignal.notify}. */
  next(): Promise<void> {
    if (!this.#waiting) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => (resolve = r));
      this.#waiting = { promise, resolve };
    }
    return this.#waiting.promise;
  }

  /** True while someone waits for the next notify. */
  get waiting(): boolean {
    return this.#waiting !== null;
  }

  /** Wakes every waiter. */
  notify(): void {
    const w = this.#waiting;
    if (w) {
      this.#waiting = null;
      w.resolve();
    }
  }
}
