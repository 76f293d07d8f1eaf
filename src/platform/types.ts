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
 * - `read`: read-only; the file must exist.
 * - `append`: read + write, every write lands at the end of the file (`O_APPEND`); must exist.
 * - `createExclusive`: like `append`, but the file is created and must not exist (`O_CREAT|O_EXCL`).
 *   Only the durable helper `createFileDurable` uses this mode.
 */
export type OpenMode = "read" | "append" | "createExclusive";

/** An open file. Methods after {@linkcode PlatformFile.close} throw `ClosedError`. */
export interface PlatformFile {
  /** The path it was opened with. */
  readonly path: string;
  /** Appends every byte of `data` at the end of the file, looping on partial writes. */
  write(data: Uint8Array): void;
  /**
   * Appends the chunks in order, as one `writev` where the runtime has one, looping on partial
   * writes. On failure some prefix of the bytes may have reached the file.
   */
  writev(chunks: readonly Uint8Array[]): void;
  /**
   * Reads `buf.length` bytes at `position` into `buf` and returns the count: the buffer is filled
   * unless the file ends first (then the count is what was left; 0 at or past the end). Adapters
   * loop over short reads themselves, so callers never need to.
   */
  readAt(buf: Uint8Array, position: number): number;
  /** The file's current size in bytes. */
  size(): number;
  /** Cuts (or zero-extends) the file to `length` bytes. Not durable until `datasync`. */
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
}

/** Names of the {@linkcode Platform} calls, for wrappers that record or fail them by name. */
export type PlatformOp = Exclude<keyof Platform, "name">;

/** Names of the {@linkcode PlatformFile} calls. */
export type FileOp = Exclude<keyof PlatformFile, "path">;
