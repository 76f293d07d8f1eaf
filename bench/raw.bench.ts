/**
 * Physical limits, measured on the same runtime and directory as khipu-log: what the device and the
 * runtime's file calls allow before any log code runs. No khipu code is imported.
 *
 * - `raw sync write+fdatasync`: `fs.writeSync` + `fs.fdatasyncSync` per record.
 * - `raw async write+datasync`: `FileHandle.write` + `FileHandle.datasync` per record (the
 *   reference for the `always()` target).
 * - `raw writeSync+fdatasync cb`: sync write, callback `fs.fdatasync` — what an event-loop-friendly
 *   log that syncs every record can do at best.
 * - `raw buffered write`: records copied into a 256 KiB buffer, written with `fs.writeSync` when
 *   full, never synced — the ceiling for `osManaged()`.
 * - `naive appendFileSync+fsync`: what a script writes first: `fs.appendFileSync(path)` then
 *   open/`fsyncSync`/close.
 * - On Deno also `raw Deno.FsFile writeSync+syncData`: the calls khipu-log's Deno platform makes.
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

/** Opens a fresh append-only file in a fresh directory. */
function freshFile(label: string): { dir: string; file: string; fd: number } {
  const dir = freshDir(label);
  const file = path.join(dir, "raw.bin");
  return { dir, file, fd: fs.openSync(file, "a") };
}

function fdatasyncCb(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

/** The part of Deno's file API the Deno-native variant uses (typed locally: tsc runs without Deno's types). */
interface DenoFile {
  writeSync(p: Uint8Array): number;
  syncData(): Promise<void>;
  close(): void;
}
interface DenoLike {
  openSync(path: string, opts: { append: boolean; create: boolean }): DenoFile;
}

/**
 * On Deno only: `FsFile.writeSync` + `await FsFile.syncData()`, the calls khipu-log's Deno platform
 * makes, to compare with the `node:fs` loops above.
 */
function denoSpecs(size: number): ThroughputSpec[] {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (!deno) return [];
  const rec = payload(size);
  return [{
    name: `raw Deno.FsFile writeSync+syncData ${size}B`,
    recordBytes: size,
    setup: () => {
      const dir = freshDir("rawdeno");
      const f = deno.openSync(path.join(dir, "raw.bin"), { append: true, create: true });
      return Promise.resolve<Prepared>({
        call: () => {
          let off = 0;
          while (off < rec.length) off += f.writeSync(rec.subarray(off));
          return f.syncData();
        },
        teardown: () => {
          f.close();
          removeDir(dir);
        },
      });
    },
  }];
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
    {
      name: `raw sync write+fdatasync ${B}`,
      recordBytes: size,
      setup: () => {
        const { dir, fd } = freshFile("rawsync");
        return Promise.resolve<Prepared>({
          call: () => {
            fs.writeSync(fd, rec);
            fs.fdatasyncSync(fd);
          },
          teardown: () => {
            fs.closeSync(fd);
            removeDir(dir);
          },
        });
      },
    },
    {
      name: `raw async write+datasync ${B}`,
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
    },
    {
      name: `raw writeSync+fdatasync cb ${B}`,
      recordBytes: size,
      setup: () => {
        const { dir, fd } = freshFile("rawmixed");
        return Promise.resolve<Prepared>({
          call: () => {
            fs.writeSync(fd, rec);
            return fdatasyncCb(fd);
          },
          teardown: () => {
            fs.closeSync(fd);
            removeDir(dir);
          },
        });
      },
    },
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
    ...denoSpecs(size),
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
