/**
 * Physical limits, measured on the same runtime and directory as khipu-log: what the device and the
 * runtime's file calls allow before any log code runs. No khipu code is imported.
 *
 * The four durable single-writer loops — what a JS log that makes one record durable at a time can
 * have at best — use the runtime's own file family (`Deno.FsFile` on Deno, `node:fs` on Node and
 * Bun, the families khipu-log's platforms use), one sync `write` per record, then:
 *
 * - (a) `raw append+async fdatasync`: append (`O_APPEND`), then an fdatasync on a pool thread
 *   (`fs.fdatasync` callback / `FsFile.syncData()`), awaited. The reference of the `always()`
 *   target.
 * - (b) `raw overwrite+async fdatasync`: overwrite space preallocated by writing zeros and fsyncing
 *   (16 MiB, rewound at the end), then the async fdatasync.
 * - (c) `raw append+sync fdatasync`: append, then `fs.fdatasyncSync` / `FsFile.syncDataSync()` on
 *   the calling thread (blocks the event loop for the whole flush).
 * - (d) `raw overwrite+sync fdatasync`: overwrite preallocated space, then the sync fdatasync.
 *
 * And:
 *
 * - `raw write+await`: one sync `write` per record and one `await` of a resolved promise (one
 *   microtask turn), never synced: the reference of the `osManaged()` target.
 * - `raw async write+datasync`: `FileHandle.write` + `FileHandle.datasync` (two pool-thread trips
 *   per record; the reference of the targets before v2).
 * - `raw buffered write`: records copied into a 256 KiB buffer, written with `fs.writeSync` when
 *   full, never synced — the ceiling of a buffered writer.
 * - `naive appendFileSync+fsync`: what a script writes first: `fs.appendFileSync(path)` then
 *   open/`fsyncSync`/close.
 *
 * Run alone: `npx tsx bench/raw.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { rawSuite } from "./raw.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await rawSuite(rec);
 * ```
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  freshDir,
  isMain,
  payload,
  type Prepared,
  RECORD_SIZES,
  Recorder,
  removeDir,
  runThroughput,
  type ThroughputSpec,
} from "./harness.ts";

/** Size of the user-space buffer of the buffered variant (khipu-log's default buffer size). */
const BUFFER_BYTES = 256 * 1024;

/** Bytes preallocated (zeros, fsynced) for the overwrite loops; writes rewind at the end. */
const PREALLOC_BYTES = 16 * 1024 * 1024;

/** Opens a fresh append-only file in a fresh directory. */
function freshFile(label: string): { dir: string; file: string; fd: number } {
  const dir = freshDir(label);
  const file = path.join(dir, "raw.bin");
  return { dir, file, fd: fs.openSync(file, "a") };
}

function fdatasyncCb(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

/** The part of Deno's file API the Deno-native loops use (typed locally: tsc runs without Deno's types). */
interface DenoFile {
  writeSync(p: Uint8Array): number;
  seekSync(offset: number, whence: number): number;
  syncData(): Promise<void>;
  syncDataSync(): void;
  close(): void;
}
interface DenoLike {
  openSync(
    path: string,
    opts: { append?: boolean; create?: boolean; read?: boolean; write?: boolean },
  ): DenoFile;
}

/** A file opened in the runtime's own family: sync writes at the file position, two fdatasyncs. */
interface RawFile {
  /** The family: `Deno.FsFile` or `node:fs`. */
  family: string;
  /** Writes all of `b` at the current position (the end, for an append file). */
  write(b: Uint8Array): void;
  /** Moves the position back to 0 (overwrite files). */
  rewind(): void;
  /** fdatasync on a pool thread, awaited. */
  syncAsync(): Promise<void>;
  /** fdatasync on the calling thread. */
  syncNow(): void;
  close(): void;
}

/** The family khipu-log's platform uses on this runtime (Deno's own API on Deno, else `node:fs`). */
function openRaw(file: string, mode: "append" | "overwrite"): RawFile {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno) {
    const f = deno.openSync(
      file,
      mode === "append" ? { append: true, create: true } : { read: true, write: true },
    );
    return {
      family: "Deno.FsFile",
      write: (b) => {
        let off = 0;
        while (off < b.length) off += f.writeSync(b.subarray(off));
      },
      rewind: () => void f.seekSync(0, 0),
      syncAsync: () => f.syncData(),
      syncNow: () => f.syncDataSync(),
      close: () => f.close(),
    };
  }
  const fd = fs.openSync(file, mode === "append" ? "a" : "r+");
  let pos = 0;
  return {
    family: "node:fs",
    write: mode === "append"
      ? (b) => {
        let off = 0;
        while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
      }
      : (b) => {
        let off = 0;
        while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off, pos + off);
        pos += b.length;
      },
    rewind: () => void (pos = 0),
    syncAsync: () => fdatasyncCb(fd),
    syncNow: () => fs.fdatasyncSync(fd),
    close: () => fs.closeSync(fd),
  };
}

/** Writes `bytes` of zeros to `file` and fsyncs it (and its directory): preallocated space. */
function preallocate(file: string, bytes: number): void {
  const fd = fs.openSync(file, "w");
  const zeros = new Uint8Array(1024 * 1024);
  for (let at = 0; at < bytes; at += zeros.length) {
    fs.writeSync(fd, zeros, 0, Math.min(zeros.length, bytes - at), at);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const dfd = fs.openSync(path.dirname(file), "r");
  fs.fsyncSync(dfd);
  fs.closeSync(dfd);
}

/**
 * The row name of one of the durable single-writer loops (a)–(d), e.g.
 * `raw overwrite+sync fdatasync 100B`.
 *
 * @example
 * ```ts
 * import { rawLoopName } from "./raw.bench.ts";
 * console.log(rawLoopName("append", "async", 1024)); // raw append+async fdatasync 1024B
 * ```
 */
export function rawLoopName(
  write: "append" | "overwrite",
  sync: "async" | "sync",
  size: number,
): string {
  return `raw ${write}+${sync} fdatasync ${size}B`;
}

/** The row name of the `osManaged()` reference: `raw write+await 100B`. */
export function rawWriteAwaitName(size: number): string {
  return `raw write+await ${size}B`;
}

/**
 * The durable single-writer loops (a)–(d) of the module doc for one record size, in that order.
 *
 * @example
 * ```ts
 * import { durableLoopSpecs } from "./raw.bench.ts";
 * console.log(durableLoopSpecs(100).map((s) => s.name));
 * ```
 */
export function durableLoopSpecs(size: number): ThroughputSpec[] {
  const rec = payload(size);
  const out: ThroughputSpec[] = [];
  for (const write of ["append", "overwrite"] as const) {
    for (const sync of ["async", "sync"] as const) {
      out.push({
        name: rawLoopName(write, sync, size),
        recordBytes: size,
        setup: () => {
          const dir = freshDir(`raw${write}${sync}`);
          const file = path.join(dir, "raw.bin");
          if (write === "overwrite") preallocate(file, PREALLOC_BYTES);
          const f = openRaw(file, write);
          let used = 0;
          const put = write === "append" ? () => f.write(rec) : () => {
            if (used + rec.length > PREALLOC_BYTES) {
              f.rewind();
              used = 0;
            }
            f.write(rec);
            used += rec.length;
          };
          return Promise.resolve<Prepared>({
            call: sync === "async"
              ? () => {
                put();
                return f.syncAsync();
              }
              : () => {
                put();
                f.syncNow();
              },
            teardown: () => {
              f.close();
              removeDir(dir);
            },
          });
        },
      });
    }
  }
  return out;
}

/**
 * The `osManaged()` reference: one sync write per record, then one `await` of a resolved promise.
 *
 * @example
 * ```ts
 * import { writeAwaitSpec } from "./raw.bench.ts";
 * console.log(writeAwaitSpec(100).name); // raw write+await 100B
 * ```
 */
export function writeAwaitSpec(size: number): ThroughputSpec {
  const rec = payload(size);
  const resolved = Promise.resolve();
  return {
    name: rawWriteAwaitName(size),
    recordBytes: size,
    setup: () => {
      const dir = freshDir("rawwriteawait");
      const f = openRaw(path.join(dir, "raw.bin"), "append");
      return Promise.resolve<Prepared>({
        // mitata awaits the returned promise: one write and one await per record.
        call: () => {
          f.write(rec);
          return resolved;
        },
        teardown: () => {
          f.close();
          removeDir(dir);
        },
      });
    },
  };
}

/**
 * The `FileHandle.write` + `FileHandle.datasync` loop (the targets' reference before v2).
 *
 * @example
 * ```ts
 * import { fileHandleSpec } from "./raw.bench.ts";
 * console.log(fileHandleSpec(100).name); // raw async write+datasync 100B
 * ```
 */
export function fileHandleSpec(size: number): ThroughputSpec {
  const rec = payload(size);
  return {
    name: `raw async write+datasync ${size}B`,
    recordBytes: size,
    setup: async () => {
      const dir = freshDir("rawasync");
      const fh = await fs.promises.open(path.join(dir, "raw.bin"), "a");
      return {
        call: async () => {
          await fh.write(rec);
          await fh.datasync();
        },
        teardown: async () => {
          await fh.close();
          removeDir(dir);
        },
      };
    },
  };
}

/**
 * The raw-limit benchmarks for one record size.
 *
 * @example
 * ```ts
 * import { rawSpecs } from "./raw.bench.ts";
 * console.log(rawSpecs(100).map((s) => s.name));
 * ```
 */
export function rawSpecs(size: number): ThroughputSpec[] {
  const rec = payload(size);
  const B = `${size}B`;
  return [
    ...durableLoopSpecs(size),
    writeAwaitSpec(size),
    fileHandleSpec(size),
    {
      name: `raw buffered write ${B}`,
      recordBytes: size,
      setup: () => {
        const { dir, fd } = freshFile("rawbuf");
        const buf = new Uint8Array(BUFFER_BYTES);
        let used = 0;
        return Promise.resolve<Prepared>({
          call: () => {
            if (used + rec.length > buf.length) {
              let off = 0;
              while (off < used) off += fs.writeSync(fd, buf, off, used - off);
              used = 0;
            }
            buf.set(rec, used);
            used += rec.length;
          },
          teardown: () => {
            fs.closeSync(fd);
            removeDir(dir);
          },
        });
      },
    },
    {
      name: `naive appendFileSync+fsync ${B}`,
      recordBytes: size,
      setup: () => {
        const dir = freshDir("naive");
        const file = path.join(dir, "naive.log");
        return Promise.resolve<Prepared>({
          call: () => {
            fs.appendFileSync(file, rec);
            const fd = fs.openSync(file, "r+");
            try {
              fs.fsyncSync(fd);
            } finally {
              fs.closeSync(fd);
            }
          },
          teardown: () => removeDir(dir),
        });
      },
    },
  ];
}

/**
 * Runs the raw-limit suite for every record size into `rec`.
 *
 * @example
 * ```ts
 * import { rawSuite } from "./raw.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await rawSuite(new Recorder());
 * ```
 */
export async function rawSuite(rec: Recorder): Promise<void> {
  await runThroughput("raw limits", RECORD_SIZES.flatMap(rawSpecs), rec);
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await rawSuite(rec);
  rec.printTable();
}
