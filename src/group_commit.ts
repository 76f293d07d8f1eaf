/**
 * Group commit: when each append may resolve, and the fdatasyncs that let them. An append waits
 * here once its records are encoded; after each flush (its records are in the OS), the policy
 * decides whether it resolves now or waits for an fdatasync. One fdatasync runs at a time and
 * covers every record flushed before it started; appends that arrive meanwhile wait for the next
 * one, so concurrent appenders share fdatasyncs. `sync()` and `close()` wait here too. Under
 * `interval(ms)` and `everyN(n, { maxDelayMs })` a timer starts the fdatasyncs that no waiter asks
 * for.
 *
 * The log owns the files: it tells this module how far it has flushed and runs the fdatasync it
 * asks for ({@linkcode SyncTarget}).
 *
 * @example
 * ```ts
 * import { GroupCommit } from "./group_commit.ts";
 * import { SyncPolicy } from "@khipu/log";
 * let flushed = 0;
 * let syncs = 0;
 * const commit = new GroupCommit(SyncPolicy.always(), {
 *   flushedEnd: () => flushed,
 *   datasync: () => (syncs++, Promise.resolve()),
 *   failed: (err) => { throw err; },
 *   acked: () => {},
 * }, 0);
 * const acks = [commit.append(1, 1, "a"), commit.append(2, 1, "b")];
 * flushed = 2; // both records reached the OS in one write
 * commit.settle();
 * if ((await Promise.all(acks)).join() !== "a,b" || syncs !== 1) throw new Error("one fdatasync");
 * ```
 * @module
 */
import type { SyncPolicy } from "./sync_policy.ts";

/** What group commit needs from its log. */
export interface SyncTarget {
  /** One past the last record handed to the OS. */
  flushedEnd(): number;
  /**
   * Starts an fdatasync covering every record flushed so far, or returns null when none can run
   * now (a rollover is under way, the log is poisoned); the log asks again when that has passed.
   */
  datasync(): Promise<void> | null;
  /**
   * The fdatasync covering records `[from, to)` failed: the log poisons itself (and calls
   * {@linkcode GroupCommit.rejectAll}).
   */
  failed(err: unknown, covering: { from: number; to: number }): void;
  /**
   * Appends resolved or records became durable: {@linkcode GroupCommit.ackedEnd} or
   * {@linkcode GroupCommit.durableEnd} moved (readers wait on them).
   */
  acked(): void;
}

/** An append (or a `sync()`, with `count` 0) waiting until the records before `end` may resolve. */
interface Waiter {
  end: number;
  count: number;
  /** When it resolved not yet fdatasynced (`performance.now()`), under `everyN`'s `maxDelayMs`. */
  at: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The waiters of one log and the fdatasyncs that release them, under one {@linkcode SyncPolicy}.
 *
 * @example
 * ```ts
 * import { GroupCommit } from "./group_commit.ts";
 * import { SyncPolicy } from "@khipu/log";
 * const commit = new GroupCommit(SyncPolicy.osManaged(), {
 *   flushedEnd: () => 1,
 *   datasync: () => Promise.resolve(),
 *   failed: () => {},
 *   acked: () => {},
 * }, 0);
 * const ack = commit.append(1, 1, 0);
 * commit.settle(); // osManaged: resolves once written, no fdatasync
 * if ((await ack) !== 0 || commit.durableEnd !== 0) throw new Error("no fdatasync expected");
 * ```
 *
 * @example
 * ```ts
 * import { GroupCommit } from "./group_commit.ts";
 * import { SyncPolicy } from "@khipu/log";
 * // count or time: the one append resolves at once, and 5 ms later a timer fdatasyncs it
 * const commit = new GroupCommit(SyncPolicy.everyN(1000, { maxDelayMs: 5 }), {
 *   flushedEnd: () => 1,
 *   datasync: () => Promise.resolve(),
 *   failed: (err) => { throw err; },
 *   acked: () => {},
 * }, 0);
 * const durable = () => commit.durableEnd;
 * const ack = commit.append(1, 1, "a");
 * commit.settle();
 * if ((await ack) !== "a" || durable() !== 0) throw new Error("resolved before a sync");
 * for (let i = 0; durable() === 0 && i < 1000; i++) await new Promise((r) => setTimeout(r, 5));
 * if (durable() !== 1) throw new Error("the timer never fdatasynced");
 * commit.stop();
 * ```
 */
export class GroupCommit {
  readonly #policy: SyncPolicy;
  readonly #target: SyncTarget;
  #durableEnd: number;
  /** Encoded, not yet flushed (or flushed and not yet settled). */
  #pending: Waiter[] = [];
  /** Flushed, waiting for an fdatasync. */
  #durable: Waiter[] = [];
  /** Resolved before an fdatasync covered them: what a power cut may still take. */
  #unsynced: Waiter[] = [];
  #unsyncedCount = 0;
  #syncing: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #stopped = false;
  /** Where the first append rejected by {@linkcode GroupCommit.rejectAll} began: never acked. */
  #rejectedFrom = Infinity;

  /** Records `[0, durableEnd)` are on disk already (recovery fdatasynced them). */
  constructor(policy: SyncPolicy, target: SyncTarget, durableEnd: number) {
    this.#policy = policy;
    this.#target = target;
    this.#durableEnd = durableEnd;
  }

  /** One past the last record an fdatasync covered. */
  get durableEnd(): number {
    return this.#durableEnd;
  }

  /**
   * One past the last record that readers may see by default: every append before it has
   * resolved (what appenders were told is what readers see), and none at or after it was
   * rejected. An append that resolved while an earlier one still waits (under `everyN`) becomes
   * visible with that one.
   */
  get ackedEnd(): number {
    let end = Math.min(this.#target.flushedEnd(), this.#rejectedFrom);
    const first = this.#pending[0];
    if (first) end = Math.min(end, first.end - first.count);
    for (const w of this.#durable) {
      // Appends enter #durable in seq order; sync() waiters (count 0) hold no records.
      if (w.count > 0) {
        end = Math.min(end, w.end - w.count);
        break;
      }
    }
    return end;
  }

  /** Resolves with `value` once the records before `end` may resolve under the policy. */
  append<T>(end: number, count: number, value: T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ end, count, at: 0, resolve: () => resolve(value), reject });
    });
  }

  /** Resolves once an fdatasync covered every record before `end`, whatever the policy. */
  syncThrough(end: number): Promise<void> {
    if (end <= this.#durableEnd) return Promise.resolve();
    // The fdatasync starts at the next settle(), after the flush that the log schedules now.
    return new Promise<void>((resolve, reject) => {
      this.#durable.push({ end, count: 0, at: 0, resolve, reject });
    });
  }

  /** After a flush: resolves or parks each flushed append as the policy says. */
  settle(): void {
    const flushed = this.#target.flushedEnd();
    const allowance = this.#policy.maxUnsyncedRecords;
    const timed = this.#policy.maxDelayMs !== Infinity;
    let now = -1;
    let i = 0;
    for (; i < this.#pending.length; i++) {
      const w = this.#pending[i];
      if (w.end > flushed) break;
      if (w.end <= this.#durableEnd) w.resolve();
      else if (this.#unsyncedCount + w.count > allowance) this.#durable.push(w);
      else {
        // Counted only where the policy bounds them (everyN): the others may lose all of them.
        if (allowance !== Infinity) {
          if (timed) w.at = now < 0 ? (now = performance.now()) : now;
          this.#unsynced.push(w);
          this.#unsyncedCount += w.count;
        }
        w.resolve();
      }
    }
    if (i > 0) {
      this.#pending.splice(0, i);
      this.#target.acked();
    }
    if (this.#durable.length > 0) this.#startSync();
    this.#armTimer();
  }

  /** Records `[0, end)` are on disk (an fdatasync, or a seal, covered them). */
  markDurable(end: number): void {
    const moved = end > this.#durableEnd;
    if (moved) this.#durableEnd = end;
    const done = this.#durableEnd;
    const still: Waiter[] = [];
    for (const w of this.#durable) {
      if (w.end <= done) w.resolve();
      else still.push(w);
    }
    const resolved = still.length < this.#durable.length;
    this.#durable = still;
    if (resolved || moved) this.#target.acked();
    if (this.#unsynced.length > 0) {
      const oldest = this.#unsynced[0];
      this.#unsynced = this.#unsynced.filter((w) => w.end > done);
      this.#unsyncedCount = this.#unsynced.reduce((n, w) => n + w.count, 0);
      // everyN's maxDelayMs: the timer was for the oldest; now it is covered, time the next one.
      if (this.#unsynced[0] !== oldest && this.#timer !== null) {
        clearTimeout(this.#timer);
        this.#timer = null;
        this.#armTimer();
      }
    }
  }

  /**
   * The records from `from` on were never written (a failed write or segment creation): their
   * appends reject with `err`, and `sync()`/`close()` stop waiting for them.
   */
  forget(from: number, err: unknown): void {
    const failed = this.#pending.filter((w) => w.end > from);
    this.#pending = this.#pending.filter((w) => w.end <= from);
    for (const w of this.#durable) w.end = Math.min(w.end, from);
    for (const w of failed) w.reject(err);
    this.markDurable(this.#durableEnd);
    this.settle();
  }

  /** Rejects every waiter with `err` (the log closed or was poisoned); readers never see them. */
  rejectAll(err: unknown): void {
    this.#rejectedFrom = Math.min(this.#rejectedFrom, this.ackedEnd);
    const all = [...this.#pending, ...this.#durable];
    this.#pending = [];
    this.#durable = [];
    for (const w of all) w.reject(err);
  }

  /** Settles once no fdatasync is running (its failure is the log's to handle, not the caller's). */
  idle(): Promise<void> {
    return this.#syncing?.catch(() => {}) ?? Promise.resolve();
  }

  /** No more fdatasyncs or timers: the log is closing or poisoned. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Starts an fdatasync if one is useful and none is running. */
  #startSync(): void {
    if (this.#syncing || this.#stopped) return;
    const target = this.#target.flushedEnd();
    const from = this.#durableEnd;
    if (target <= from) return;
    const run = this.#target.datasync();
    if (!run) return;
    this.#syncing = run.then(
      () => {
        this.#syncing = null;
        this.markDurable(target);
        const flushed = this.#target.flushedEnd();
        if (this.#durable.some((w) => w.end <= flushed)) this.#startSync();
        this.#armTimer();
      },
      (err) => {
        this.#syncing = null;
        this.#target.failed(err, { from, to: target });
      },
    );
  }

  /**
   * Under `interval(ms)`: an fdatasync of a dirty log `ms` after it became dirty. Under
   * `everyN(n, { maxDelayMs })`: one `maxDelayMs` after the oldest append that resolved not yet
   * fdatasynced (at once if that moment has passed, as when an fdatasync that started before it
   * was written, or a rollover, kept it waiting; if one still runs, its completion calls this
   * again, and the log calls `settle()` once a rollover is done). The timer is not unref'd, under
   * either policy: it is armed only while a resolved record waits for an fdatasync, so it keeps a
   * process alive at most that long (and for the fdatasync it starts), which is what the policy
   * promises; `stop()` (close, poison) clears it.
   */
  #armTimer(): void {
    if (this.#timer !== null || this.#stopped) return;
    const policy = this.#policy;
    if (policy.kind === "interval") {
      if (this.#target.flushedEnd() <= this.#durableEnd) return;
      this.#timer = setTimeout(this.#fire, policy.ms);
    } else if (policy.maxDelayMs !== Infinity && this.#unsynced.length > 0) {
      const wait = this.#unsynced[0].at + policy.maxDelayMs - performance.now();
      if (wait > 0) this.#timer = setTimeout(this.#fire, Math.ceil(wait));
      else this.#startSync();
    }
  }

  /** The timer fired: an fdatasync now, unless one is running (its completion re-arms). */
  #fire = (): void => {
    this.#timer = null;
    this.#startSync();
  };
}
