/**
 * The open/closed state of an OS file handle, shared by the runtime adapters. `close()` while an
 * fsync is in flight defers the real close until the fsync settles: closing first would let the
 * kernel hand the same descriptor number to another open, and the pending fsync would then sync
 * (and report the errors of) the wrong file.
 *
 * @example
 * ```ts
 * import * as fs from "node:fs";
 * import { HandleGate } from "./handle.ts";
 * const fd = fs.openSync("/tmp/khipu-gate-example", "a");
 * const gate = new HandleGate("/tmp/khipu-gate-example", fd, (h) => fs.closeSync(h));
 * const pending = gate.sync("fdatasync", (h) => new Promise<void>((r) => fs.fdatasync(h, () => r())));
 * gate.close(); // the descriptor is closed only once `pending` settles
 * await pending;
 * ```
 * @module
 */
import { ClosedError, fromOsError } from "../errors.ts";

/**
 * Wraps a handle `H` (a descriptor number, a `Deno.FsFile`): hands it out while open, runs syncs,
 * and releases it exactly once, after the last in-flight sync.
 *
 * @example
 * ```ts
 * import { HandleGate } from "./handle.ts";
 * const gate = new HandleGate("/tmp/x", 3, () => {});
 * gate.close();
 * try { gate.get(); } catch (e) { console.log((e as Error).name); } // "ClosedError"
 * ```
 */
export class HandleGate<H> {
  readonly #path: string;
  readonly #handle: H;
  readonly #release: (handle: H) => void;
  #closed = false;
  #inflight = 0;

  /** `release` closes the handle; its errors are swallowed (see {@linkcode HandleGate.close}). */
  constructor(path: string, handle: H, release: (handle: H) => void) {
    this.#path = path;
    this.#handle = handle;
    this.#release = release;
  }

  /** The handle; `ClosedError` once closed. */
  get(): H {
    if (this.#closed) throw new ClosedError("file", this.#path);
    return this.#handle;
  }

  /** Runs an fsync-like call on the handle, mapping its failure through `fromOsError(op)`. */
  async sync(op: string, call: (handle: H) => Promise<void>): Promise<void> {
    const handle = this.get();
    this.#inflight++;
    try {
      await call(handle);
    } catch (err) {
      throw fromOsError(err, op, this.#path);
    } finally {
      if (--this.#inflight === 0 && this.#closed) this.#releaseNow();
    }
  }

  /**
   * Closes now, or after the in-flight syncs. Idempotent. A close error cannot be acted on (the
   * descriptor is gone either way); durability was decided by the sync results already reported.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inflight === 0) this.#releaseNow();
  }

  #releaseNow(): void {
    try {
      this.#release(this.#handle);
    } catch {
      // See close().
    }
  }
}
