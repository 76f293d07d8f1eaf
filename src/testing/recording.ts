/**
 * A {@linkcode Platform} wrapper that records every call, for tests that prove by observation what
 * the code does to the disk: that a create is followed by a directory fsync, that a group commit
 * issued one `fdatasync` for many appends, that bytes were written before they were synced.
 *
 * Each call is appended to {@linkcode RecordingPlatform.calls} when it **starts** (so `seq` is
 * program order) and is marked `ok` or `error` when it finishes (`doneSeq` gives completion order,
 * which differs from `seq` only for overlapping async calls). An optional `beforeCall` hook can throw
 * to inject a fault into any call.
 *
 * @example Counting fdatasyncs and checking write → datasync order
 * ```ts
 * import { recordingPlatform, SimPlatform } from "@khipu/log/testing";
 * const rec = recordingPlatform(new SimPlatform());
 * const f = await rec.open("/example", "createExclusive");
 * f.write(new Uint8Array(8));
 * await f.datasync();
 * f.close();
 * if (rec.count("datasync") !== 1) throw new Error(`${rec.count("datasync")} fdatasyncs`);
 * const ops = rec.ops().join(", ");
 * if (ops !== "open /example, write /example, datasync /example, close /example") {
 *   throw new Error(ops);
 * }
 * ```
 * @module
 */
import type {
  FileOp,
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformOp,
  PlatformStat,
  PlatformWatcher,
} from "../platform/types.ts";

/** Names of recorded calls: platform calls, file calls, and `release` of a lock. */
export type RecordedOp = PlatformOp | FileOp | "release";

/** One recorded call. */
export interface RecordedCall {
  /** Start order, from 1. */
  seq: number;
  /** Completion order, from 1; unset while pending. */
  doneSeq?: number;
  /** What was called. */
  op: RecordedOp;
  /** The path it concerned (for file calls, the path the file was opened with). */
  path: string;
  /** Destination of a `rename`. */
  to?: string;
  /** Mode of an `open`. */
  how?: OpenMode;
  /**
   * Bytes asked to write (`write`, `writev`, `writeAt`, `writevAt`), to read (`readAt`), or the new
   * length (`truncate`).
   */
  bytes?: number;
  /** Offset of a `readAt`, `writeAt` or `writevAt`. */
  position?: number;
  /** `pending` until the call returns. */
  outcome: "pending" | "ok" | "error";
  /** The error's `code` (a KhipuError code) when `outcome` is `error`. */
  error?: string;
}

/** Options for {@linkcode recordingPlatform}. */
export interface RecordingOptions {
  /**
   * Called synchronously before each call reaches the inner platform, after it is recorded. Throwing
   * makes the call fail with that error (recorded as `error`): fault injection.
   */
  beforeCall?: (call: RecordedCall) => void;
  /** Ops not to record (e.g. `["stat", "readAt", "size"]` to keep the log short). Default: none. */
  ignore?: readonly RecordedOp[];
}

/** A {@linkcode Platform} that records its calls. */
export interface RecordingPlatform extends Platform {
  /** Every recorded call, in start order. */
  readonly calls: RecordedCall[];
  /** The wrapped platform. */
  readonly inner: Platform;
  /** Forgets the calls recorded so far. */
  clear(): void;
  /** How many calls of `op` (on `path`, if given) were recorded. */
  count(op: RecordedOp, path?: string): number;
  /** The calls as `"op path"` strings (`"rename from -> to"`), optionally only those `keep` accepts. */
  ops(keep?: (c: RecordedCall) => boolean): string[];
}

/**
 * Wraps `inner` so every call is recorded. The name is `recording(<inner name>)`.
 *
 * @example Proving a durable create fsyncs the directory
 * ```ts
 * import { createFileDurable } from "@khipu/log/platform";
 * import { recordingPlatform, SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * const rec = recordingPlatform(sim, { ignore: ["stat"] });
 * (await createFileDurable(rec, "/d/0.seg", new Uint8Array(4))).close();
 * const ops = rec.ops().join(", ");
 * if (ops !== "open /d/0.seg, write /d/0.seg, datasync /d/0.seg, syncDir /d, close /d/0.seg") {
 *   throw new Error(ops);
 * }
 * ```
 */
export function recordingPlatform(
  inner: Platform,
  options: RecordingOptions = {},
): RecordingPlatform {
  const calls: RecordedCall[] = [];
  const ignore = new Set<RecordedOp>(options.ignore ?? []);
  let started = 0;
  let finished = 0;

  function begin(call: Omit<RecordedCall, "seq" | "outcome">): RecordedCall {
    const c: RecordedCall = { ...call, seq: ++started, outcome: "pending" };
    if (!ignore.has(c.op)) calls.push(c);
    return c;
  }
  function end(c: RecordedCall, err?: unknown): void {
    c.doneSeq = ++finished;
    c.outcome = err === undefined ? "ok" : "error";
    if (err !== undefined) {
      const code = (err as { code?: unknown } | null)?.code;
      c.error = typeof code === "string" ? code : String(err);
    }
  }
  function runSync<T>(call: Omit<RecordedCall, "seq" | "outcome">, fn: () => T): T {
    const c = begin(call);
    try {
      options.beforeCall?.(c);
      const r = fn();
      end(c);
      return r;
    } catch (err) {
      end(c, err);
      throw err;
    }
  }
  async function run<T>(
    call: Omit<RecordedCall, "seq" | "outcome">,
    fn: () => Promise<T>,
  ): Promise<T> {
    const c = begin(call);
    try {
      options.beforeCall?.(c);
      const r = await fn();
      end(c);
      return r;
    } catch (err) {
      end(c, err);
      throw err;
    }
  }

  function wrapFile(f: PlatformFile): PlatformFile {
    const path = f.path;
    return {
      path,
      write: (data: Uint8Array) =>
        runSync({ op: "write", path, bytes: data.length }, () => f.write(data)),
      writev: (chunks: readonly Uint8Array[]) =>
        runSync(
          { op: "writev", path, bytes: chunks.reduce((s, c) => s + c.length, 0) },
          () => f.writev(chunks),
        ),
      writeAt: (data: Uint8Array, position: number) =>
        runSync(
          { op: "writeAt", path, bytes: data.length, position },
          () => f.writeAt(data, position),
        ),
      writevAt: (chunks: readonly Uint8Array[], position: number) =>
        runSync(
          { op: "writevAt", path, bytes: chunks.reduce((s, c) => s + c.length, 0), position },
          () => f.writevAt(chunks, position),
        ),
      readAt: (buf: Uint8Array, position: number) =>
        runSync({ op: "readAt", path, bytes: buf.length, position }, () => f.readAt(buf, position)),
      size: () => runSync({ op: "size", path }, () => f.size()),
      truncate: (length: number) =>
        runSync({ op: "truncate", path, bytes: length }, () => f.truncate(length)),
      datasync: () => run({ op: "datasync", path }, () => f.datasync()),
      sync: () => run({ op: "sync", path }, () => f.sync()),
      close: () => runSync({ op: "close", path }, () => f.close()),
    };
  }

  const rec: RecordingPlatform = {
    name: `recording(${inner.name})`,
    inner,
    calls,
    clear() {
      calls.length = 0;
    },
    count(op: RecordedOp, path?: string): number {
      return calls.filter((c) => c.op === op && (path === undefined || c.path === path)).length;
    },
    ops(keep?: (c: RecordedCall) => boolean): string[] {
      return calls
        .filter((c) => !keep || keep(c))
        .map((c) => (c.to !== undefined ? `${c.op} ${c.path} -> ${c.to}` : `${c.op} ${c.path}`));
    },
    open: async (path: string, how: OpenMode, mode?: number): Promise<PlatformFile> =>
      wrapFile(await run({ op: "open", path, how }, () => inner.open(path, how, mode))),
    syncDir: (path: string): Promise<void> =>
      run({ op: "syncDir", path }, () => inner.syncDir(path)),
    rename: (from: string, to: string): Promise<void> =>
      run({ op: "rename", path: from, to }, () => inner.rename(from, to)),
    unlink: (path: string): Promise<void> => run({ op: "unlink", path }, () => inner.unlink(path)),
    mkdir: (path: string, mode?: number): Promise<boolean> =>
      run({ op: "mkdir", path }, () => inner.mkdir(path, mode)),
    readdir: (path: string): Promise<string[]> =>
      run({ op: "readdir", path }, () => inner.readdir(path)),
    remove: (path: string): Promise<void> => run({ op: "remove", path }, () => inner.remove(path)),
    stat: (path: string): Promise<PlatformStat | null> =>
      run({ op: "stat", path }, () => inner.stat(path)),
    lstat: (path: string): Promise<PlatformStat | null> =>
      run({ op: "lstat", path }, () => inner.lstat(path)),
    lock: async (path: string, mode?: number): Promise<PlatformLock> => {
      const l = await run({ op: "lock", path }, () => inner.lock(path, mode));
      return { path: l.path, release: () => run({ op: "release", path }, () => l.release()) };
    },
    // Not recorded: a watch changes nothing on disk.
    watch: (dir: string, onChange: () => void): PlatformWatcher => inner.watch(dir, onChange),
  };
  return rec;
}
