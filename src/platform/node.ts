/**
 * The {@linkcode Platform} for Node and Bun, on `node:fs`.
 *
 * Writes, reads, size and truncate are synchronous calls (they cost ~20x less than the async ones and
 * only touch the page cache); `fsync`/`fdatasync` use the callback API so the thread pool waits for
 * the device and the event loop keeps running. Bun implements the same `node:fs` calls with real
 * `fsync`/`fdatasync` (strace-checked, see PLATFORMS.md), so it uses this module under the name
 * `"bun"`. Deno could too, but has its own adapter (`./deno.ts`).
 *
 * @example
 * ```ts
 * import { nodePlatform } from "@khipu/log/platform";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const f = await nodePlatform.open(join(dir, "example.bin"), "createExclusive", 0o644);
 * f.write(new TextEncoder().encode("hello"));
 * await f.datasync();
 * f.close();
 * await nodePlatform.syncDir(dir);
 * if ((await nodePlatform.stat(f.path))?.size !== 5) throw new Error("not written");
 * ```
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { FileTypeError, fromOsError } from "../errors.ts";
import type {
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformStat,
  PlatformWatcher,
} from "./types.ts";
import { checkPosition, writeAll, writevAll } from "./write_all.ts";
import { acquireLock } from "./lock.ts";
import { type FileKind, fileTypeName, HandleGate, syncDirectory } from "./handle.ts";
import { errorCode, osCall, osCallAsync } from "./os_call.ts";
import { detectRuntime } from "./runtime.ts";

const C = fs.constants;

/**
 * Added to every open: `O_NOFOLLOW` refuses a symbolic link (ELOOP), and `O_NONBLOCK` keeps the
 * open of a FIFO from blocking the event loop until the fstat below refuses it (it changes nothing
 * for a regular file). Neither exists on Windows, which has no FIFOs to open this way.
 */
const REGULAR_ONLY = (C.O_NOFOLLOW ?? 0) | (C.O_NONBLOCK ?? 0);

/**
 * `open(2)` flags per {@linkcode OpenMode}. `append` must not create: only the durable helper creates.
 * No `O_APPEND`: Linux's pwrite(2) ignores the offset on an `O_APPEND` descriptor and appends, which
 * would break `writeAt`; `write` appends at the end the file tracks instead (see {@linkcode NodeFile}).
 */
const FLAGS: Record<OpenMode, number> = {
  read: C.O_RDONLY | REGULAR_ONLY,
  append: C.O_RDWR | REGULAR_ONLY,
  createExclusive: C.O_RDWR | C.O_CREAT | C.O_EXCL | REGULAR_ONLY,
};

/**
 * Codes with which open(2) says what it found is not a regular file: a link under `O_NOFOLLOW`
 * (ELOOP), a directory opened for writing (EISDIR), a socket (ENXIO).
 */
const NOT_REGULAR = new Set(["ELOOP", "EISDIR", "ENXIO"]);

function kindOf(st: fs.Stats): FileKind {
  return {
    isFile: st.isFile(),
    isDirectory: st.isDirectory(),
    isSymlink: st.isSymbolicLink(),
    isFifo: st.isFIFO(),
    isSocket: st.isSocket(),
    isCharDevice: st.isCharacterDevice(),
    isBlockDevice: st.isBlockDevice(),
  };
}

function toPlatformStat(st: fs.Stats): PlatformStat {
  return {
    size: st.size,
    isFile: st.isFile(),
    isDirectory: st.isDirectory(),
    isSymlink: st.isSymbolicLink(),
    mtimeMs: st.mtimeMs,
  };
}

/** The open error as a `FileTypeError` when the code and an lstat agree the path is not a regular file. */
function openError(err: unknown, path: string): Error {
  if (NOT_REGULAR.has(errorCode(err) ?? "")) {
    try {
      const st = fs.lstatSync(path);
      if (!st.isFile()) {
        return new FileTypeError({ path, found: fileTypeName(kindOf(st)), cause: err });
      }
    } catch {
      // e.g. ELOOP in a parent directory: the open's own error says it best
    }
  }
  return fromOsError(err, "open", path);
}

/**
 * Opens `path` and returns the descriptor and the file's size, only if it is a regular file; see
 * {@linkcode REGULAR_ONLY}.
 */
function openRegular(path: string, flags: number, mode: number): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(path, flags, mode);
  } catch (err) {
    throw openError(err, path);
  }
  try {
    const st = osCall("fstat", path, () => fs.fstatSync(fd));
    if (!st.isFile()) throw new FileTypeError({ path, found: fileTypeName(kindOf(st)) });
    return { fd, size: st.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

const isWindows = process.platform === "win32";

function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))
  );
}

/**
 * An open `node:fs` descriptor. Its {@linkcode HandleGate} defers a `close()` made while a sync is
 * in flight until the sync settles, so the sync cannot land on a recycled descriptor.
 *
 * Every write is positional (`pwrite`/`pwritev`): `write`/`writev` write at `#end`, the file's end
 * as this handle knows it (the size at open, moved by each byte written past it and by
 * `truncate`), so the descriptor's own offset is never used.
 */
class NodeFile implements PlatformFile {
  readonly path: string;
  readonly #gate: HandleGate<number>;
  /** The end of the file: where `write` and `writev` write. */
  #end: number;

  constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.#gate = new HandleGate(path, fd, (h) => fs.closeSync(h));
    this.#end = size;
  }

  #check(): number {
    return this.#gate.get();
  }

  write(data: Uint8Array): void {
    this.#pwrite(this.#check(), "write", data, this.#end);
  }

  writev(chunks: readonly Uint8Array[]): void {
    this.#pwritev(this.#check(), "writev", chunks, this.#end);
  }

  writeAt(data: Uint8Array, position: number): void {
    const fd = this.#check();
    this.#pwrite(fd, "pwrite", data, checkPosition(position, "pwrite", this.path));
  }

  writevAt(chunks: readonly Uint8Array[], position: number): void {
    const fd = this.#check();
    this.#pwritev(fd, "pwritev", chunks, checkPosition(position, "pwritev", this.path));
  }

  /**
   * pwrite(2)s all of `data` at `position`, then moves `#end` past the bytes written (also after a
   * failure, past the prefix that was). The shape is measured: on Node 20 (V8 11.3) a write loop
   * that touched `#end`, or whose closure was made outside the `osCall` arrow, made every 100-byte
   * `write` ~35% slower than before positional writes; this one is as fast as a plain `write(2)`.
   */
  #pwrite(fd: number, op: string, data: Uint8Array, position: number): void {
    let at = position;
    try {
      osCall(op, this.path, () =>
        writeAll(
          (b) => {
            const n = fs.writeSync(fd, b, 0, b.length, at);
            at += n;
            return n;
          },
          data,
          op,
          this.path,
        ));
    } finally {
      if (at > this.#end) this.#end = at;
    }
  }

  /** pwritev(2)s all of `chunks` at `position`, moving `#end` as {@linkcode NodeFile.#pwrite} does. */
  #pwritev(fd: number, op: string, chunks: readonly Uint8Array[], position: number): void {
    let at = position;
    try {
      osCall(op, this.path, () =>
        writevAll(
          (cs) => {
            const n = fs.writevSync(fd, cs, at);
            at += n;
            return n;
          },
          chunks,
          op,
          this.path,
        ));
    } finally {
      if (at > this.#end) this.#end = at;
    }
  }

  readAt(buf: Uint8Array, position: number): number {
    const fd = this.#check();
    return osCall("read", this.path, () => {
      let got = 0;
      // pread may return short counts (e.g. above 2 GiB per call); fill the buffer or reach EOF.
      while (got < buf.length) {
        const n = fs.readSync(fd, buf, got, buf.length - got, position + got);
        if (n === 0) break;
        got += n;
      }
      return got;
    });
  }

  size(): number {
    const fd = this.#check();
    return osCall("fstat", this.path, () => fs.fstatSync(fd).size);
  }

  truncate(length: number): void {
    const fd = this.#check();
    osCall("ftruncate", this.path, () => fs.ftruncateSync(fd, length));
    this.#end = length;
  }

  datasync(): Promise<void> {
    return this.#gate.sync("fdatasync", fdatasyncAsync);
  }

  sync(): Promise<void> {
    return this.#gate.sync("fsync", fsyncAsync);
  }

  close(): void {
    this.#gate.close();
  }
}

/** A `stat` of nothing (or below something that is not a directory) finds null. */
const NOTHING_THERE = {
  when: (err: unknown) => errorCode(err) === "ENOENT" || errorCode(err) === "ENOTDIR",
  value: null,
};

/** `stat` or `lstat`; null when nothing is there (or a parent is not a directory). */
async function statOrNull(
  call: (path: string) => Promise<fs.Stats>,
  op: string,
  path: string,
): Promise<PlatformStat | null> {
  const st = await osCallAsync(op, path, () => call(path), NOTHING_THERE);
  return st && toPlatformStat(st);
}

/**
 * Builds a `node:fs` platform. `name` is only a label (`"node"` or `"bun"`).
 *
 * @example
 * ```ts
 * import { createNodePlatform } from "@khipu/log/platform";
 * const p = createNodePlatform("bun");
 * if (p.name !== "bun") throw new Error(p.name);
 * ```
 */
export function createNodePlatform(name: string = "node"): Platform {
  const platform: Platform = {
    name,

    open(path: string, how: OpenMode, mode: number = 0o666): Promise<PlatformFile> {
      // openSync + fstatSync are two syscalls, ~20x cheaper than a thread-pool round trip each.
      try {
        const { fd, size } = openRegular(path, FLAGS[how], mode);
        return Promise.resolve(new NodeFile(path, fd, size));
      } catch (err) {
        return Promise.reject(err);
      }
    },

    async syncDir(path: string): Promise<void> {
      // Windows cannot open a directory for fsync (FlushFileBuffers needs a writable handle and
      // Node/Bun report EPERM); NTFS journals directory entries itself. Documented no-op.
      if (isWindows) return;
      await syncDirectory(path, () => fs.openSync(path, "r"), fsyncAsync, (fd) => fs.closeSync(fd));
    },

    rename(from: string, to: string): Promise<void> {
      return osCallAsync(`rename to ${to}`, from, () => fs.promises.rename(from, to));
    },

    unlink(path: string): Promise<void> {
      return osCallAsync("unlink", path, () => fs.promises.unlink(path));
    },

    mkdir(path: string, mode: number = 0o777): Promise<boolean> {
      return osCallAsync("mkdir", path, () => fs.promises.mkdir(path, { mode }).then(() => true), {
        // An existing directory is not an error: mkdir reports it by returning false.
        when: async (err) =>
          errorCode(err) === "EEXIST" && !!(await platform.stat(path))?.isDirectory,
        value: false,
      });
    },

    readdir(path: string): Promise<string[]> {
      return osCallAsync("readdir", path, () => fs.promises.readdir(path));
    },

    remove(path: string): Promise<void> {
      return osCallAsync(
        "remove",
        path,
        () => fs.promises.rm(path, { recursive: true, force: true }),
      );
    },

    stat(path: string): Promise<PlatformStat | null> {
      return statOrNull((p) => fs.promises.stat(p), "stat", path);
    },

    lstat(path: string): Promise<PlatformStat | null> {
      return statOrNull((p) => fs.promises.lstat(p), "lstat", path);
    },

    lock(path: string, mode?: number): Promise<PlatformLock> {
      return acquireLock(platform, path, { mode });
    },

    watch(dir: string, onChange: () => void): PlatformWatcher {
      try {
        const w = fs.watch(dir, { persistent: false }, () => onChange());
        // A watch that fails later (the directory went away) reports nothing more: see the contract.
        w.on("error", () => w.close());
        return { close: () => w.close() };
      } catch {
        return { close() {} };
      }
    },
  };
  return platform;
}

/**
 * The `node:fs` platform, named `"node"` (or `"bun"` when running under Bun).
 *
 * @example
 * ```ts
 * import { nodePlatform } from "@khipu/log/platform";
 * import { tmpdir } from "node:os";
 * const expected = "Bun" in globalThis ? "bun" : "node";
 * if (nodePlatform.name !== expected) throw new Error(nodePlatform.name);
 * if (!(await nodePlatform.stat(tmpdir()))?.isDirectory) throw new Error("no temp directory");
 * ```
 */
export const nodePlatform: Platform = createNodePlatform(
  // Under Deno (which can use this adapter too) the label stays "node": it names the adapter.
  detectRuntime() === "bun" ? "bun" : "node",
);
