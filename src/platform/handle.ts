/**
 * What the runtime adapters share about OS file handles: their open/closed state, and the words for
 * what an open found when it was not a regular file.
 *
 * `close()` while an fsync is in flight defers the real close until the fsync settles: closing
 * first would let the kernel hand the same descriptor number to another open, and the pending fsync
 * would then sync (and report the errors of) the wrong file.
 *
 * @example
 * ```ts
 * import * as fs from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { HandleGate } from "./handle.ts";
 * const path = join(fs.mkdtempSync(join(tmpdir(), "khipu-")), "gate-example");
 * let closed = false;
 * const gate = new HandleGate(path, fs.openSync(path, "a"), (fd) => {
 *   fs.closeSync(fd);
 *   closed = true;
 * });
 * const fdatasync = (fd: number) => new Promise<void>((r) => fs.fdatasync(fd, () => r()));
 * const pending = gate.sync("fdatasync", fdatasync);
 * gate.close(); // the descriptor is closed only once `pending` settles
 * if (closed) throw new Error("closed under a pending fdatasync");
 * await pending;
 * if (!closed) throw new Error("never closed");
 * ```
 * @module
 */
import { ClosedError } from "../errors.ts";
import { osCall, osCallAsync } from "./os_call.ts";

/**
 * The file-type flags of a stat, named as in `Deno.FileInfo` (the node adapter maps `fs.Stats`
 * onto them). The special-file flags are optional: Deno reports them as null on Windows.
 */
export interface FileKind {
  /** A regular file. */
  isFile: boolean;
  /** A directory. */
  isDirectory: boolean;
  /** A symbolic link (only an lstat can see one). */
  isSymlink: boolean;
  /** A FIFO (named pipe). */
  isFifo?: boolean | null;
  /** A Unix domain socket. */
  isSocket?: boolean | null;
  /** A character device. */
  isCharDevice?: boolean | null;
  /** A block device. */
  isBlockDevice?: boolean | null;
}

/**
 * What a stat of anything but a regular file found, as `FileTypeError.found` says it:
 * `"a directory"`, `"a symbolic link"`, `"a FIFO"`, `"a socket"`, `"a device"`, or
 * `"a special file"`.
 *
 * @example
 * ```ts
 * import { fileTypeName } from "./handle.ts";
 * const fifo = { isFile: false, isDirectory: false, isSymlink: false, isFifo: true };
 * if (fileTypeName(fifo) !== "a FIFO") throw new Error(fileTypeName(fifo));
 * ```
 */
export function fileTypeName(kind: FileKind): string {
  if (kind.isDirectory) return "a directory";
  if (kind.isSymlink) return "a symbolic link";
  if (kind.isFifo) return "a FIFO";
  if (kind.isSocket) return "a socket";
  if (kind.isCharDevice || kind.isBlockDevice) return "a device";
  return "a special file";
}

/**
 * Wraps a handle `H` (a descriptor number, a `Deno.FsFile`): hands it out while open, runs syncs,
 * and releases it exactly once, after the last in-flight sync.
 *
 * @example
 * ```ts
 * import { ClosedError } from "@khipu/log";
 * import { HandleGate } from "./handle.ts";
 * const gate = new HandleGate("/tmp/x", 3, () => {});
 * gate.close();
 * try {
 *   gate.get();
 *   throw new Error("handed out a closed handle");
 * } catch (e) {
 *   if (!(e instanceof ClosedError)) throw e;
 * }
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
    if (this.#closed) throw new ClosedError({ what: "file", path: this.#path });
    return this.#handle;
  }

  /** Runs an fsync-like call on the handle, mapping its failure through `fromOsError(op)`. */
  async sync(op: string, call: (handle: H) => Promise<void>): Promise<void> {
    const handle = this.get();
    this.#inflight++;
    try {
      await osCallAsync(op, this.#path, () => call(handle));
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

/**
 * Fsyncs the directory `path`: opens it with `open` (failing as `open directory: ...`), fsyncs the
 * handle with `fsync` (failing as `fsync directory: ...`), and closes it with `close` whatever
 * happened (a close error is swallowed, as {@linkcode HandleGate.close} says why).
 *
 * @example
 * ```ts
 * import * as fs from "node:fs";
 * import { tmpdir } from "node:os";
 * import { syncDirectory } from "./handle.ts";
 * let closed = false;
 * await syncDirectory(tmpdir(), () => fs.openSync(tmpdir(), "r"), () => Promise.resolve(), (fd) => {
 *   fs.closeSync(fd);
 *   closed = true;
 * });
 * if (!closed) throw new Error("left the directory open");
 * ```
 */
export async function syncDirectory<H>(
  path: string,
  open: () => H,
  fsync: (handle: H) => Promise<void>,
  close: (handle: H) => void,
): Promise<void> {
  const gate = new HandleGate(path, osCall("open directory", path, open), close);
  try {
    await gate.sync("fsync directory", fsync);
  } finally {
    gate.close();
  }
}
