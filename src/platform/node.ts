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
 * import { nodePlatform } from "./node.ts";
 * const f = await nodePlatform.open("/tmp/khipu-example.bin", "createExclusive", 0o644);
 * f.write(new TextEncoder().encode("hello"));
 * await f.datasync();
 * f.close();
 * await nodePlatform.syncDir("/tmp");
 * ```
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { fromOsError } from "../errors.ts";
import type { OpenMode, Platform, PlatformFile, PlatformLock, PlatformStat } from "./types.ts";
import { writeAll, writevAll } from "./write_all.ts";
import { acquireLock } from "./lock.ts";
import { HandleGate } from "./handle.ts";

const C = fs.constants;

/** `open(2)` flags per {@linkcode OpenMode}. `append` must not create: only the durable helper creates. */
const FLAGS: Record<OpenMode, number> = {
  read: C.O_RDONLY,
  append: C.O_RDWR | C.O_APPEND,
  createExclusive: C.O_RDWR | C.O_APPEND | C.O_CREAT | C.O_EXCL,
};

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
 */
class NodeFile implements PlatformFile {
  readonly path: string;
  readonly #gate: HandleGate<number>;

  constructor(path: string, fd: number) {
    this.path = path;
    this.#gate = new HandleGate(path, fd, (h) => fs.closeSync(h));
  }

  #check(): number {
    return this.#gate.get();
  }

  write(data: Uint8Array): void {
    const fd = this.#check();
    try {
      writeAll((b) => fs.writeSync(fd, b), data, "write", this.path);
    } catch (err) {
      throw fromOsError(err, "write", this.path);
    }
  }

  writev(chunks: readonly Uint8Array[]): void {
    const fd = this.#check();
    try {
      writevAll((cs) => fs.writevSync(fd, cs), chunks, "writev", this.path);
    } catch (err) {
      throw fromOsError(err, "writev", this.path);
    }
  }

  readAt(buf: Uint8Array, position: number): number {
    const fd = this.#check();
    let got = 0;
    try {
      // pread may return short counts (e.g. above 2 GiB per call); fill the buffer or reach EOF.
      while (got < buf.length) {
        const n = fs.readSync(fd, buf, got, buf.length - got, position + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      throw fromOsError(err, "read", this.path);
    }
    return got;
  }

  size(): number {
    const fd = this.#check();
    try {
      return fs.fstatSync(fd).size;
    } catch (err) {
      throw fromOsError(err, "fstat", this.path);
    }
  }

  truncate(length: number): void {
    const fd = this.#check();
    try {
      fs.ftruncateSync(fd, length);
    } catch (err) {
      throw fromOsError(err, "ftruncate", this.path);
    }
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

/**
 * Builds a `node:fs` platform. `name` is only a label (`"node"` or `"bun"`).
 *
 * @example
 * ```ts
 * import { createNodePlatform } from "./node.ts";
 * const p = createNodePlatform("bun");
 * console.log(p.name); // "bun"
 * ```
 */
export function createNodePlatform(name: string = "node"): Platform {
  const platform: Platform = {
    name,

    open(path: string, how: OpenMode, mode: number = 0o666): Promise<PlatformFile> {
      // openSync is one syscall and ~20x cheaper than the thread-pool round trip.
      try {
        return Promise.resolve(new NodeFile(path, fs.openSync(path, FLAGS[how], mode)));
      } catch (err) {
        return Promise.reject(fromOsError(err, "open", path));
      }
    },

    async syncDir(path: string): Promise<void> {
      // Windows cannot open a directory for fsync (FlushFileBuffers needs a writable handle and
      // Node/Bun report EPERM); NTFS journals directory entries itself. Documented no-op.
      if (isWindows) return;
      let fd: number;
      try {
        fd = fs.openSync(path, "r");
      } catch (err) {
        throw fromOsError(err, "open directory", path);
      }
      try {
        await fsyncAsync(fd);
      } catch (err) {
        throw fromOsError(err, "fsync directory", path);
      } finally {
        try {
          fs.closeSync(fd);
        } catch { /* see HandleGate.close */ }
      }
    },

    async rename(from: string, to: string): Promise<void> {
      try {
        await fs.promises.rename(from, to);
      } catch (err) {
        throw fromOsError(err, `rename to ${to}`, from);
      }
    },

    async unlink(path: string): Promise<void> {
      try {
        await fs.promises.unlink(path);
      } catch (err) {
        throw fromOsError(err, "unlink", path);
      }
    },

    async mkdir(path: string, mode: number = 0o777): Promise<boolean> {
      try {
        await fs.promises.mkdir(path, { mode });
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === "EEXIST") {
          const st = await platform.stat(path);
          if (st?.isDirectory) return false;
        }
        throw fromOsError(err, "mkdir", path);
      }
    },

    async readdir(path: string): Promise<string[]> {
      try {
        return await fs.promises.readdir(path);
      } catch (err) {
        throw fromOsError(err, "readdir", path);
      }
    },

    async remove(path: string): Promise<void> {
      try {
        await fs.promises.rm(path, { recursive: true, force: true });
      } catch (err) {
        throw fromOsError(err, "remove", path);
      }
    },

    async stat(path: string): Promise<PlatformStat | null> {
      try {
        const st = await fs.promises.stat(path);
        return { size: st.size, isFile: st.isFile(), isDirectory: st.isDirectory() };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === "ENOENT" || code === "ENOTDIR") return null;
        throw fromOsError(err, "stat", path);
      }
    },

    lock(path: string): Promise<PlatformLock> {
      return acquireLock(platform, path);
    },
  };
  return platform;
}

/**
 * The `node:fs` platform, named `"node"` (or `"bun"` when running under Bun).
 *
 * @example
 * ```ts
 * import { nodePlatform } from "./node.ts";
 * console.log(nodePlatform.name, (await nodePlatform.stat("/tmp"))?.isDirectory);
 * ```
 */
export const nodePlatform: Platform = createNodePlatform(
  typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "node",
);
