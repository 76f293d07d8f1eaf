/**
 * What a resolved `append` promises, and so what a power cut can lose.
 *
 * | policy | an append resolves once | a process crash loses | a power cut loses |
 * |---|---|---|---|
 * | `always()` | an fdatasync covering it completed | nothing resolved | nothing resolved |
 * | `everyN(n)` | written to the OS; every n-th waits for an fdatasync | nothing resolved | at most n-1 resolved records |
 * | `everyN(n, { maxDelayMs })` | as `everyN(n)`; also a timer fdatasyncs `maxDelayMs` after the oldest unsynced append resolved | nothing resolved | at most n-1 resolved records, none resolved more than max(`maxDelayMs`, one fdatasync) before the last fdatasync started |
 * | `interval(ms)` | written to the OS; a timer fdatasyncs dirty logs every `ms` | nothing resolved | what resolved in the last `ms` plus one fdatasync |
 * | `osManaged()` | written to the OS; fdatasync only on `sync()` / `close()` | nothing resolved | everything since the last `sync()` |
 *
 * Under every policy concurrent appends share writes and fdatasyncs (group commit).
 *
 * @example
 * ```ts
 * import { SyncPolicy } from "@khipu/log";
 * const p = SyncPolicy.everyN(64);
 * const loss = p.maxLossOnPowerCut();
 * if (p.kind !== "everyN" || p.n !== 64 || loss !== "at most 63 resolved records") {
 *   throw new Error(loss);
 * }
 * ```
 * @module
 */
import { options, wholeNumber } from "./validate.ts";

/** The longest delay `setTimeout` holds on every runtime. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The four policies. */
export type SyncPolicyKind = "always" | "everyN" | "interval" | "osManaged";

/**
 * A durability policy; build one with the static methods.
 *
 * @example
 * ```ts
 * import { SyncPolicy } from "@khipu/log";
 * const strict = SyncPolicy.always();
 * const relaxed = SyncPolicy.interval(10);
 * if (`${strict} ${relaxed}` !== "always() interval(10)") throw new Error(`${strict} ${relaxed}`);
 * ```
 */
export class SyncPolicy {
  /** Which policy. */
  readonly kind: SyncPolicyKind;
  /** For `everyN`: records per fdatasync (1 for `always`). */
  readonly n: number;
  /** For `interval`: milliseconds between fdatasyncs of a dirty log. */
  readonly ms: number;
  /**
   * For `everyN(n, { maxDelayMs })`: how long after the oldest not yet fdatasynced append resolved
   * a timer starts an fdatasync. `Infinity` when not set, and for every other kind (`always()`
   * included, also when built as `everyN(1, { maxDelayMs })`).
   */
  readonly maxDelayMs: number;
  /**
   * How many resolved records may be not yet fdatasynced at any moment: what lets an append resolve
   * before an fdatasync covers it. 0 for `always`, n - 1 for `everyN(n)` (with or without
   * `maxDelayMs`), unbounded (`Infinity`) for `interval` and `osManaged`, whose bound is in time or
   * at `sync()`.
   */
  readonly maxUnsyncedRecords: number;

  private constructor(kind: SyncPolicyKind, n: number, ms: number, maxDelayMs = Infinity) {
    this.kind = kind;
    this.n = n;
    this.ms = ms;
    this.maxDelayMs = maxDelayMs;
    this.maxUnsyncedRecords = kind === "always" ? 0 : kind === "everyN" ? n - 1 : Infinity;
  }

  /**
   * Every append resolves only after an fdatasync that covers it.
   *
   * @example
   * ```ts
   * import { SyncPolicy } from "@khipu/log";
   * const p = SyncPolicy.always();
   * if (p.n !== 1 || p.maxLossOnPowerCut() !== "nothing that resolved") throw new Error(`${p}`);
   * ```
   */
  static always(): SyncPolicy {
    return new SyncPolicy("always", 1, 0);
  }

  /**
   * At most `n - 1` resolved records are ever not yet fdatasynced (the default, n = 64): the
   * append that would make them n waits for an fdatasync.
   *
   * With `maxDelayMs` (a whole number from 1 to 2^31 - 1, the longest delay a timer holds), whichever
   * comes first: also, `maxDelayMs` after the oldest append that resolved not yet fdatasynced, a
   * timer starts an fdatasync covering every record written so far, so with no further appends
   * nothing waits longer than `maxDelayMs` plus one fdatasync. Exactly: an fdatasync covering an
   * append that resolved at time t starts by t + `maxDelayMs`, or, if one that started before the
   * append was written is still running then, as soon as that one completes (only one runs at a
   * time), so by t + max(`maxDelayMs`, one fdatasync); a timer that fires late (a busy event loop)
   * delays it by as much. The count bound holds as without it. `everyN(1, ...)` is `always()`.
   *
   * @example
   * ```ts
   * import { InvalidArgumentError, SyncPolicy } from "@khipu/log";
   * const loss = SyncPolicy.everyN(128).maxLossOnPowerCut();
   * if (loss !== "at most 127 resolved records") throw new Error(loss);
   * // count or time, whichever first
   * const p = SyncPolicy.everyN(64, { maxDelayMs: 20 });
   * if (p.n !== 64 || p.maxDelayMs !== 20 || `${p}` !== "everyN(64, { maxDelayMs: 20 })") {
   *   throw new Error(`${p}`);
   * }
   * if (SyncPolicy.everyN(64).maxDelayMs !== Infinity) throw new Error("no time bound expected");
   * try {
   *   SyncPolicy.everyN(64, { maxdelayms: 20 } as never);
   *   throw new Error("accepted a typo");
   * } catch (e) {
   *   if (!(e instanceof InvalidArgumentError)) throw e;
   * }
   * ```
   */
  static everyN(n: number = 64, opts?: { maxDelayMs?: number }): SyncPolicy {
    wholeNumber("everyN(n)", n, 1, Number.MAX_SAFE_INTEGER);
    const o = options("everyN options", opts, ["maxDelayMs"]);
    // Timers hold at most 2^31 - 1 ms; a longer delay fires at once on every runtime.
    const maxDelayMs = o.maxDelayMs === undefined
      ? Infinity
      : wholeNumber("everyN: maxDelayMs", o.maxDelayMs, 1, MAX_TIMER_MS);
    return n === 1 ? SyncPolicy.always() : new SyncPolicy("everyN", n, 0, maxDelayMs);
  }

  /**
   * A timer fdatasyncs each dirty log `ms` milliseconds after it became dirty (a whole number
   * from 1 to 2^31 - 1, the longest delay a timer holds).
   *
   * @example
   * ```ts
   * import { InvalidArgumentError, SyncPolicy } from "@khipu/log";
   * if (SyncPolicy.interval(10).ms !== 10) throw new Error("interval(10)");
   * try {
   *   SyncPolicy.interval(0);
   *   throw new Error("accepted 0 ms");
   * } catch (e) {
   *   if (!(e instanceof InvalidArgumentError)) throw e;
   * }
   * ```
   */
  static interval(ms: number): SyncPolicy {
    // Timers hold at most 2^31 - 1 ms; a longer delay fires at once on every runtime.
    wholeNumber("interval(ms)", ms, 1, MAX_TIMER_MS);
    return new SyncPolicy("interval", 0, ms);
  }

  /**
   * Never fdatasyncs on its own; only `sync()` and `close()` do.
   *
   * @example
   * ```ts
   * import { SyncPolicy } from "@khipu/log";
   * const p = SyncPolicy.osManaged();
   * if (p.maxLossOnPowerCut() !== "everything since the last sync()") throw new Error(`${p}`);
   * ```
   */
  static osManaged(): SyncPolicy {
    return new SyncPolicy("osManaged", 0, 0);
  }

  /**
   * What a power cut can lose under this policy, in words. For `everyN(n, { maxDelayMs })` the time
   * part holds for a power cut at any moment: each record it loses resolved at most
   * max(`maxDelayMs`, one fdatasync) before the last fdatasync that had started (each one covers
   * every record written before it began, and the next starts only once it completed), plus
   * however late the event loop ran the timer.
   *
   * @example
   * ```ts
   * import { SyncPolicy } from "@khipu/log";
   * const loss = SyncPolicy.always().maxLossOnPowerCut();
   * if (loss !== "nothing that resolved") throw new Error(loss);
   * ```
   */
  maxLossOnPowerCut(): string {
    switch (this.kind) {
      case "always":
        return "nothing that resolved";
      case "everyN":
        return this.maxDelayMs === Infinity
          ? `at most ${this.n - 1} resolved records`
          : `at most ${this.n - 1} resolved records, none resolved more than ` +
            `max(${this.maxDelayMs} ms, one fdatasync) before the last fdatasync started`;
      case "interval":
        return `records resolved in the last ${this.ms} ms plus one fdatasync`;
      case "osManaged":
        return "everything since the last sync()";
    }
  }

  /** A short label such as `everyN(64)` or `everyN(64, { maxDelayMs: 20 })`. */
  toString(): string {
    switch (this.kind) {
      case "everyN":
        return this.maxDelayMs === Infinity
          ? `everyN(${this.n})`
          : `everyN(${this.n}, { maxDelayMs: ${this.maxDelayMs} })`;
      case "interval":
        return `interval(${this.ms})`;
      default:
        return `${this.kind}()`;
    }
  }
}
