/**
 * Timers that never keep a process alive: a background job (retention, a read-only store's poll)
 * must let the process exit when nothing else runs. `node:timers` gives a `Timeout` with `unref()`
 * on Node, Bun and Deno alike (Deno's own timers need `Deno.unrefTimer`, which code loaded on every
 * runtime must not touch).
 *
 * @example
 * ```ts
 * import { backgroundInterval } from "./unref_timer.ts";
 * let ticks = 0;
 * const t = backgroundInterval(() => ticks++, 5); // the process can still exit while it runs
 * await new Promise((r) => setTimeout(r, 30));
 * t.clear();
 * if (ticks === 0) throw new Error("never ticked");
 * ```
 * @module
 */
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";

/** A running background timer. */
export interface BackgroundTimer {
  /** Stops it. Idempotent. */
  clear(): void;
}

/**
 * Calls `fn` every `ms` milliseconds without keeping the process alive.
 *
 * @example
 * ```ts
 * import { backgroundInterval } from "./unref_timer.ts";
 * const t = backgroundInterval(() => {}, 60_000);
 * t.clear();
 * t.clear(); // idempotent
 * ```
 */
export function backgroundInterval(fn: () => void, ms: number): BackgroundTimer {
  const t = setInterval(fn, ms);
  t.unref();
  return { clear: () => clearInterval(t) };
}

/**
 * Calls `fn` once after `ms` milliseconds without keeping the process alive.
 *
 * @example
 * ```ts
 * import { backgroundTimeout } from "./unref_timer.ts";
 * let fired = false;
 * backgroundTimeout(() => (fired = true), 1);
 * await new Promise((r) => setTimeout(r, 20)); // an unref'd timer still fires
 * if (!fired) throw new Error("never fired");
 * ```
 */
export function backgroundTimeout(fn: () => void, ms: number): BackgroundTimer {
  const t = setTimeout(fn, ms);
  t.unref();
  return { clear: () => clearTimeout(t) };
}
