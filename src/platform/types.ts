/**
 * The file-system contract the core is written against. Every file-system call khipu-log makes goes
 * through a {@linkcode Platform}, so a runtime adapter (Deno, Node, Bun), a fault-injecting wrapper
 * or the in-memory power-loss simulator can stand in for the real disk.
 *
 * Cheap calls (write, read, size, truncate, close) are synchronous: sync file calls cost ~20x less
 * than async ones on every runtime. Calls that wait for the device (fsync, fdatasync, directory sync)
 * and metadata calls are asynchronous, so they never block the event loop.
 *
 * All methods throw {@linkcode KhipuError}s (see `../errors.ts`), never raw OS errors.
 *
 * @example Writing durably through any platform
 * ```ts
 * import type { Platform } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * async function put(p: Platform, path: string, bytes: Uint8Array) {
 *   const f = await p.open(path, "append");
 *   f.write(bytes);
 *   await f.datasync();
 *   f.close();
 * }
 * const sim = new SimPlatform();
 * sim.setFileBytes("/data", new Uint8Array([1]));
 * await put(sim, "/data", new Uint8Array([2, 3]));
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * if (afterCut.fileBytes("/data")?.join() !== "1,2,3") throw new Error("not durable");
 * ```
 * @module
 */

/**
 * How to open a file.
 * - `read`: read-only; the file must exist. Writes through it fail (`IoError`, `EBADF`).
 * - `append`: read + write; the file must exist. `write`/`writev` land at the end of the file and
 *   `writeAt`/`writevAt` wherever they are told. The file is **not** opened `O_APPEND` (Linux's
 *   `pwrite(2)` would ignore the offset on such a descriptor and append): the handle keeps the end
 *   itself, from the size at open, moved by its own writes past the end and by its `truncate`. So
 *   writes through another handle or process are not seen by this one; there is only ever one
 *   writer per file, as the store lock guarantees one writing process and the core opens one
 *   writable handle per file.
 * - `createExclusive`: like `append`, but the file is created and must not exist (`O_CREAT|O_EXCL`).
 *   Only the durable helper `createFileDurable` uses this mode.
 */
export type OpenMode = "read" | "append" | "createExclusive";

/** An open file. Methods after {@linkcode PlatformFile.close} throw `ClosedError`. */
export interface PlatformFile {
  /** The path it was opened with. */
  readonly path: string;
  /**
   * Writes every byte of `data` at the end of the file (see {@linkcode OpenMode}: the end this
   * handle knows), looping on partial writes. On failure some prefix of the bytes may have reached
   * the file, and the end is past that prefix.
   */
  write(data: Uint8Array): void;
  /**
   * Writes the chunks in order at the end of the file, as one `writev` where the runtime has one,
   * looping on partial writes. On failure some prefix of the bytes may have reached the file.
   */
  writev(chunks: readonly Uint8Array[]): void;
  /**
   * Writes every byte of `data` at offset `position`, like `pwrite(2)`, looping on partial writes:
   * bytes already there are overwritten in place, and a write past the end extends the file (a gap
   * between the old end and `position` reads as zeros). It does not move where `write` appends,
   * except that a write past the end moves the end past it. Throws `IoError` `EINVAL` for a
   * position that is not a safe integer ≥ 0, and `EBADF` on a file opened `read`. On failure some
   * prefix of the bytes may have reached the file. Not durable until `datasync`.
   *
   * @example Overwriting in place, writing past the end, then appending
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const f = await new SimPlatform().open("/seg", "createExclusive");
   * f.write(new Uint8Array([1, 2, 3, 4]));
   * f.writeAt(new Uint8Array([9]), 1); // in place: the size stays 4
   * f.writeAt(new Uint8Array([7]), 6); // past the end: bytes 4 and 5 read as zeros
   * f.write(new Uint8Array([8])); // still lands at the end, now 7
   * const bytes = new Uint8Array(f.size());
   * f.readAt(bytes, 0);
   * if (bytes.join() !== "1,9,3,4,0,0,7,8") throw new Error(bytes.join());
   * ```
   */
  writeAt(data: Uint8Array, position: number): void;
  /**
   * Writes the chunks in order at offset `position` as **one** write operation, like
   * `pwritev(2)` (`fs.writevSync(fd, chunks, position)` on `node:fs`; one buffer on Deno, which has
   * no `writev`), looping on partial writes; otherwise exactly {@linkcode PlatformFile.writeAt}.
   *
   * @example A frame written as header + payload over preallocated zeros
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * sim.setFileBytes("/seg", new Uint8Array(8)); // eight durable zeros
   * const f = await sim.open("/seg", "append");
   * f.writevAt([new Uint8Array([2]), new Uint8Array([5, 6])], 3);
   * await f.datasync();
   * const bytes = sim.crash("none").fileBytes("/seg");
   * if (bytes?.join() !== "0,0,0,2,5,6,0,0") throw new Error(String(bytes));
   * ```
   */
  writevAt(chunks: readonly Uint8Array[], position: number): void;
  /**
   * Reads `buf.length` bytes at `position` into `buf` and returns the count: the buffer is filled
   * unless the file ends first (then the count is what was left; 0 at or past the end). Adapters
   * loop over short reads themselves, so callers never need to.
   */
  readAt(buf: Uint8Array, position: number): number;
  /** The file's current size in bytes. */
  size(): number;
  /**
   * Cuts (or zero-extends) the file to `length` bytes, which becomes the end `write` appends at.
   * Not durable until `datasync`.
   */
  truncate(length: number): void;
  /** fdatasync(2): the file's data and size reach the device. */
  datasync(): Promise<void>;
  /** fsync(2): data, size and all other metadata reach the device. */
  sync(): Promise<void>;
  /** Releases the descriptor. Idempotent. */
  close(): void;
}

/** What `stat` and `lstat` report. */
export interface PlatformStat {
  /** Size in bytes. */
  size: number;
  /** True for a regular file. */
  isFile: boolean;
  /** True for a directory. */
  isDirectory: boolean;
  /** True for a symbolic link: only ever from `lstat`, since `stat` follows links. */
  isSymlink: boolean;
  /** Last modification time, in ms since the Unix epoch; `NaN` where the platform cannot tell. */
  mtimeMs: number;
}

/** A running directory watch; see {@linkcode Platform.watch}. */
export interface PlatformWatcher {
  /** Stops watching. Idempotent. */
  close(): void;
}

/** A held exclusive lock; see {@linkcode Platform.lock}. */
export interface PlatformLock {
  /** The lock file's path. */
  readonly path: string;
  /** Releases the lock. Idempotent. */
  release(): Promise<void>;
}

/**
 * The operations khipu-log needs from a file system. Paths are absolute or relative to the process's
 * working directory, joined with `/` (Windows accepts it too).
 *
 * The durable helpers in `./durable.ts` compose these into create/rename/unlink/mkdir that also sync
 * the parent directory; the core uses those helpers, not the raw calls, to change directory entries.
 */
export interface Platform {
  /** `"deno"`, `"node"`, `"bun"`, `"sim"`, or a wrapper's name. */
  readonly name: string;
  /**
   * Opens a regular file; see {@linkcode OpenMode}. `mode` is the permission bits for a created
   * file. Anything else at `path` (a symbolic link, even to a regular file, a FIFO, a socket, a
   * device, a directory) is refused with `FileTypeError`, without blocking: the store never
   * follows a link or opens a special file inside itself (a FIFO's open or read would block the
   * event loop forever).
   */
  open(path: string, how: OpenMode, mode?: number): Promise<PlatformFile>;
  /**
   * fsync of a directory, making its entries (created, renamed, removed names) durable.
   * A documented no-op on Windows, where directories cannot be opened for fsync.
   */
  syncDir(path: string): Promise<void>;
  /** rename(2): atomically replaces `to` if it exists. Not durable until both parents are synced. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file. Not durable until the parent is synced. */
  unlink(path: string): Promise<void>;
  /** Creates one directory (the parent must exist). Returns false if it already existed. */
  mkdir(path: string, mode?: number): Promise<boolean>;
  /** Names in a directory (not `.`/`..`), unsorted. */
  readdir(path: string): Promise<string[]>;
  /** Removes a file or a whole directory tree; a missing path is not an error. */
  remove(path: string): Promise<void>;
  /** Stat (following a symbolic link), or `null` if the path, or a link's target, does not exist. */
  stat(path: string): Promise<PlatformStat | null>;
  /** Like `stat`, but a symbolic link is reported itself (`isSymlink`), never followed. */
  lstat(path: string): Promise<PlatformStat | null>;
  /**
   * Takes an exclusive lock named by `path` (a file the platform may create with permission bits
   * `mode`, default `0o644`), for one store writer across processes and runtimes. Throws
   * `LockedError` if another live holder has it; a lock left by a dead process (`kill -9`) is taken
   * over.
   */
  lock(path: string, mode?: number): Promise<PlatformLock>;
  /**
   * Watches the directory `dir` (not its subdirectories): `onChange` is called, soon after and
   * possibly once for several, when an entry in it is created, removed, renamed or written
   * (inotify on Linux, through `fs.watch` or `Deno.watchFs`). Best effort: some file systems
   * (network mounts) report nothing, so a caller that must not miss a change also polls, slowly.
   * It never throws: a watch that cannot be set up, or fails later, just reports nothing more.
   * Close it when nobody waits: on Deno an open watch keeps the process alive.
   */
  watch(dir: string, onChange: () => void): PlatformWatcher;
}

/** Names of the {@linkcode Platform} calls, for wrappers that record or fail them by name. */
export type PlatformOp = Exclude<keyof Platform, "name">;

/** Names of the {@linkcode PlatformFile} calls. */
export type FileOp = Exclude<keyof PlatformFile, "path">;
