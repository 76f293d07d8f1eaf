/**
 * The {@linkcode Platform} for Deno, on `Deno.open` / `Deno.FsFile`.
 *
 * Only `./detect.ts` imports this module (dynamically, under Deno). The `Deno` global is reached
 * through `globalThis` with the minimal local type below, so the project type-checks with `tsc`
 * without Deno's type declarations. Deno's errors carry `code` (`ENOENT`, `ENOSPC`, ...) as well as a
 * class name (`NotFound`, ...), which `fromOsError` maps either way.
 *
 * Deno has no `writev` and no positional read or write (`Deno.FsFile` has no `pwrite`):
 * {@linkcode PlatformFile.writev} writes the chunks as one buffer (one `write(2)`), and `readAt`,
 * `writeAt` and the appends (`write`, `writev`) seek and then read or write. Files are opened
 * read-write without `append` (`O_APPEND` would make every write append, whatever the seek): the
 * handle keeps the end of the file itself, and the descriptor's offset, so a seek is issued only
 * when the offset is not already where the next call reads or writes (back-to-back appends are one
 * `write(2)` each).
 *
 * Nor can `Deno.openSync` take `O_NOFOLLOW` or `O_NONBLOCK`, so `open` refuses what is not a regular
 * file by an `lstat` before the open (which neither follows a link nor blocks on a FIFO), and then
 * checks that the opened file is that same regular file (device and inode), so a swap in between is
 * refused too. (A FIFO swapped in between the two calls would still block the open: only an
 * `O_NONBLOCK` that Deno does not offer could prevent that.)
 *
 * @example
 * ```ts
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { denoPlatform } from "./deno.ts";
 * const path = join(mkdtempSync(join(tmpdir(), "khipu-")), "example.bin");
 * const f = await denoPlatform.open(path, "createExclusive");
 * f.write(new Uint8Array([1, 2, 3]));
 * await f.datasync();
 * f.close();
 * if ((await denoPlatform.stat(path))?.size !== 3) throw new Error("not written");
 * ```
 * @module
 */
import { FileTypeError, fromOsError } from "../errors.ts";
import type {
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformStat,
  PlatformWatcher,
} from "./types.ts";
import { checkPosition, concatChunks, writeAll } from "./write_all.ts";
import { acquireLock } from "./lock.ts";
import { type FileKind, fileTypeName, HandleGate, syncDirectory } from "./handle.ts";
import { errorCode, osCall, osCallAsync } from "./os_call.ts";

/** The subset of `Deno.FileInfo` used here (`ino` is null on Windows, `mtime` where unknown). */
interface DenoFileInfo extends FileKind {
  size: number;
  mtime: Date | null;
  dev: number;
  ino: number | null;
}

/** The subset of `Deno.FsFile` used here. */
interface DenoFsFile {
  writeSync(p: Uint8Array): number;
  readSync(p: Uint8Array): number | null;
  seekSync(offset: number, whence: number): number;
  statSync(): DenoFileInfo;
  truncateSync(len?: number): void;
  syncData(): Promise<void>;
  sync(): Promise<void>;
  close(): void;
}

/** The subset of `Deno.OpenOptions` used here. */
interface DenoOpenOptions {
  read?: boolean;
  write?: boolean;
  createNew?: boolean;
  mode?: number;
}

/** The subset of the `Deno` namespace used here. */
interface DenoNs {
  build: { os: string };
  openSync(path: string, options?: DenoOpenOptions): DenoFsFile;
  rename(from: string, to: string): Promise<void>;
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  mkdir(path: string, options?: { mode?: number }): Promise<void>;
  readDir(path: string): AsyncIterable<{ name: string }>;
  stat(path: string): Promise<DenoFileInfo>;
  lstat(path: string): Promise<DenoFileInfo>;
  lstatSync(path: string): DenoFileInfo;
  watchFs(path: string, options?: { recursive?: boolean }): AsyncIterable<unknown> & {
    close(): void;
  };
}

function deno(): DenoNs {
  const d = (globalThis as { Deno?: DenoNs }).Deno;
  if (!d) throw new Error("denoPlatform used outside Deno");
  return d;
}

const SEEK_START = 0; // Deno.SeekMode.Start

/**
 * Deno's `open` options per {@linkcode OpenMode}: read-write (`O_RDWR`), never Deno's `append`
 * (`O_APPEND`); see the module documentation.
 */
function options(how: OpenMode, mode: number | undefined): DenoOpenOptions {
  switch (how) {
    case "read":
      return { read: true };
    case "append":
      return { read: true, write: true };
    case "createExclusive":
      return { read: true, write: true, createNew: true, mode: mode ?? 0o666 };
  }
}

/** Whether `err` says nothing is at the path, by Deno's class name or by the OS code. */
function isNotFound(err: unknown): boolean {
  return errorCode(err) === "ENOENT" || (err as { name?: string }).name === "NotFound";
}

/**
 * Opens `path` only if it is a regular file; see the module documentation. An exclusive create
 * needs no lstat: `O_CREAT|O_EXCL` makes a new regular file or fails, even on a dangling link.
 */
function openRegular(
  D: DenoNs,
  path: string,
  how: OpenMode,
  mode?: number,
): { file: DenoFsFile; size: number } {
  const seen = how === "createExclusive" ? null : D.lstatSync(path);
  if (seen && !seen.isFile) throw new FileTypeError({ path, found: fileTypeName(seen) });
  const file = D.openSync(path, options(how, mode));
  try {
    const st = file.statSync();
    if (!st.isFile) throw new FileTypeError({ path, found: fileTypeName(st) });
    if (seen && (st.dev !== seen.dev || st.ino !== seen.ino)) {
      throw new FileTypeError({
        path,
        found: "another file than the one checked (replaced during the open)",
      });
    }
    return { file, size: st.size };
  } catch (err) {
    file.close();
    throw err;
  }
}

/**
 * An open `Deno.FsFile`. Its {@linkcode HandleGate} defers a `close()` made during a pending sync
 * until the sync settles, so the sync cannot land on a recycled descriptor.
 *
 * `#end` is the end of the file as this handle knows it (the size at open, moved by each byte
 * written past it and by `truncate`): where `write` and `writev` write. `#offset` is the
 * descriptor's offset when known, -1 after a failed call (which may have moved it by any amount).
 */
class DenoFile implements PlatformFile {
  readonly path: string;
  readonly #gate: HandleGate<DenoFsFile>;
  #end: number;
  #offset = 0;

  constructor(path: string, file: DenoFsFile, size: number) {
    this.path = path;
    this.#gate = new HandleGate(path, file, (f) => f.close());
    this.#end = size;
  }

  #check(): DenoFsFile {
    return this.#gate.get();
  }

  /** Moves the descriptor's offset to `position`, unless it is there already. */
  #seek(f: DenoFsFile, position: number): void {
    if (this.#offset === position) return;
    this.#offset = -1;
    this.#offset = f.seekSync(position, SEEK_START);
  }

  write(data: Uint8Array): void {
    this.#writeAt(this.#check(), "write", data, this.#end);
  }

  writev(chunks: readonly Uint8Array[]): void {
    const f = this.#check();
    // No writev in Deno: one copy is far cheaper than one syscall per chunk, and keeps the append a
    // single write(2) where the kernel allows.
    this.#writeAt(f, "writev", chunks.length === 1 ? chunks[0] : concatChunks(chunks), this.#end);
  }

  writeAt(data: Uint8Array, position: number): void {
    const f = this.#check();
    this.#writeAt(f, "pwrite", data, checkPosition(position, "pwrite", this.path));
  }

  writevAt(chunks: readonly Uint8Array[], position: number): void {
    const f = this.#check();
    const at = checkPosition(position, "pwritev", this.path);
    this.#writeAt(f, "pwritev", chunks.length === 1 ? chunks[0] : concatChunks(chunks), at);
  }

  /** Seeks to `position` (if needed) and writes all of `data`, moving `#end` past new bytes. */
  #writeAt(f: DenoFsFile, op: string, data: Uint8Array, position: number): void {
    if (data.length === 0) return;
    let at = position;
    try {
      osCall(op, this.path, () => {
        this.#seek(f, position);
        this.#offset = -1; // unknown until every write returned
        writeAll(
          (b) => {
            const n = f.writeSync(b);
            at += n;
            return n;
          },
          data,
          op,
          this.path,
        );
        this.#offset = at;
      });
    } finally {
      if (at > this.#end) this.#end = at; // past what was written, even after a failure
    }
  }

  readAt(buf: Uint8Array, position: number): number {
    const f = this.#check();
    return osCall("read", this.path, () => {
      this.#seek(f, position);
      this.#offset = -1; // unknown until every read returned
      let got = 0;
      while (got < buf.length) {
        const n = f.readSync(got === 0 ? buf : buf.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      this.#offset = position + got;
      return got;
    });
  }

  size(): number {
    const f = this.#check();
    return osCall("fstat", this.path, () => f.statSync().size);
  }

  truncate(length: number): void {
    const f = this.#check();
    osCall("ftruncate", this.path, () => f.truncateSync(length));
    this.#end = length; // ftruncate(2) leaves the descriptor's offset where it was
  }

  datasync(): Promise<void> {
    return this.#gate.sync("fdatasync", (f) => f.syncData());
  }

  sync(): Promise<void> {
    return this.#gate.sync("fsync", (f) => f.sync());
  }

  close(): void {
    this.#gate.close();
  }
}

/** A `stat` of nothing (or below something that is not a directory) finds null. */
const NOTHING_THERE = {
  when: (err: unknown) => isNotFound(err) || errorCode(err) === "ENOTDIR",
  value: null,
};

/** `stat` or `lstat`; null when nothing is there (or a parent is not a directory). */
async function statOrNull(
  call: (path: string) => Promise<DenoFileInfo>,
  op: string,
  path: string,
): Promise<PlatformStat | null> {
  const st = await osCallAsync(op, path, () => call(path), NOTHING_THERE);
  return st && {
    size: st.size,
    isFile: st.isFile,
    isDirectory: st.isDirectory,
    isSymlink: st.isSymlink,
    mtimeMs: st.mtime?.getTime() ?? NaN,
  };
}

/**
 * Builds the Deno platform. Throws when called outside Deno.
 *
 * @example
 * ```ts
 * import { createDenoPlatform } from "./deno.ts";
 * if (createDenoPlatform().name !== "deno") throw new Error(createDenoPlatform().name);
 * ```
 */
export function createDenoPlatform(): Platform {
  const D = deno();
  const isWindows = D.build.os === "windows";
  const platform: Platform = {
    name: "deno",

    open(path: string, how: OpenMode, mode?: number): Promise<PlatformFile> {
      try {
        const { file, size } = osCall("open", path, () => openRegular(D, path, how, mode));
        return Promise.resolve(new DenoFile(path, file, size));
      } catch (err) {
        return Promise.reject(err);
      }
    },

    async syncDir(path: string): Promise<void> {
      // See node.ts: directories cannot be fsynced on Windows; documented no-op.
      if (isWindows) return;
      await syncDirectory(
        path,
        () => D.openSync(path, { read: true }),
        (d) => d.sync(),
        (d) => d.close(),
      );
    },

    rename(from: string, to: string): Promise<void> {
      return osCallAsync(`rename to ${to}`, from, () => D.rename(from, to));
    },

    async unlink(path: string): Promise<void> {
      // Deno.remove also removes empty directories; refuse them like unlink(2) does (a link to
      // one is removed, not followed).
      const st = await platform.lstat(path);
      if (st?.isDirectory) {
        throw fromOsError(Object.assign(new Error("EISDIR"), { code: "EISDIR" }), "unlink", path);
      }
      await osCallAsync("unlink", path, () => D.remove(path));
    },

    mkdir(path: string, mode: number = 0o777): Promise<boolean> {
      return osCallAsync("mkdir", path, () => D.mkdir(path, { mode }).then(() => true), {
        // An existing directory is not an error: mkdir reports it by returning false.
        when: async (err) =>
          (errorCode(err) === "EEXIST" || (err as { name?: string }).name === "AlreadyExists") &&
          !!(await platform.stat(path))?.isDirectory,
        value: false,
      });
    },

    readdir(path: string): Promise<string[]> {
      return osCallAsync("readdir", path, async () => {
        const names: string[] = [];
        for await (const e of D.readDir(path)) names.push(e.name);
        return names;
      });
    },

    remove(path: string): Promise<void> {
      // Like `rm -rf`: nothing there is no error.
      return osCallAsync("remove", path, () => D.remove(path, { recursive: true }), {
        when: isNotFound,
        value: undefined,
      });
    },

    stat(path: string): Promise<PlatformStat | null> {
      return statOrNull((p) => D.stat(p), "stat", path);
    },

    lstat(path: string): Promise<PlatformStat | null> {
      return statOrNull((p) => D.lstat(p), "lstat", path);
    },

    lock(path: string, mode?: number): Promise<PlatformLock> {
      // Not Deno's flock: it would not exclude Node or Bun writers. See ./lock.ts.
      return acquireLock(platform, path, { mode });
    },

    watch(dir: string, onChange: () => void): PlatformWatcher {
      let w: ReturnType<DenoNs["watchFs"]>;
      try {
        w = D.watchFs(dir, { recursive: false });
      } catch {
        return { close() {} };
      }
      let open = true;
      (async () => {
        for await (const _ of w) onChange();
      })().catch(() => {}); // a watch that fails later reports nothing more: see the contract
      return {
        close: () => {
          if (open) w.close();
          open = false;
        },
      };
    },
  };
  return platform;
}

/**
 * The Deno platform. Importing this module outside Deno throws; use `defaultPlatform()` from
 * `./detect.ts`, which only imports it under Deno.
 *
 * @example
 * ```ts
 * import { tmpdir } from "node:os";
 * import { denoPlatform } from "./deno.ts";
 * if (!(await denoPlatform.stat(tmpdir()))?.isDirectory) throw new Error("no temp directory");
 * ```
 */
export const denoPlatform: Platform = createDenoPlatform();
