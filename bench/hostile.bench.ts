/**
 * Opening a store whose newest segment is hostile, against opening the same size of honest data:
 * the bounded-work promises of FORMAT.md ("Impossible by construction") in figures.
 *
 * - `open 64MiB honest`: a newest segment of 64 MiB of 1 KiB records (a full default segment):
 *   open scans and checksums all of it.
 * - `open 64MiB crafted`: the same size, where a bad first frame is followed by a plausible frame
 *   header every 28 bytes (type 1, sequence number in range, length 0, wrong checksum): the worst
 *   case for the search that tells a torn tail from damage, one checksum per 28 bytes.
 * - `open 64MiB crafted long`: plausible headers whose lengths run up to 16 MiB, the pattern that
 *   made the search quadratic; its checksum budget ends it with `CorruptionError` (timed to it).
 *
 * - `open sparse seal trailer 4GiB`, `open sparse frame length 3.9GB`: a sealed segment in a 4.5 GB
 *   sparse file whose trailer claims a 4 GiB seal, and a newest segment whose header claims a
 *   0xFFFFFFFF cap with a frame claiming 3.9 GB in a 4 GB sparse file (sparse: they cost no disk).
 *   `extra.rssMiB` is the resident memory the open added: no length in a file may make it allocate
 *   more than its cap. The second reads all 4 GB once to tell a torn tail from damage.
 *
 * Each row is the median of a few opens (the file is rebuilt before each, since open cuts it);
 * `extra.ratioToHonest` is the figure that carries over between machines.
 * Run alone: `npx tsx bench/hostile.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { hostileSuite } from "./hostile.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await hostileSuite(new Recorder());
 * ```
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CorruptionError, Store, SyncPolicy } from "../mod.ts";
import { encodeHeader, HEADER_BYTES } from "../src/format/header.ts";
import { FRAME_HEADER_BYTES, FRAME_RECORD } from "../src/format/frame.ts";
import { writeU32, writeU64 } from "../src/format/bytes.ts";
import { crc32 } from "../src/format/checksum.ts";
import { segmentFileName } from "../src/segment.ts";
import { freshDir, isMain, MiB, QUICK, Recorder, removeDir, rss, timeRuns } from "./harness.ts";

const SEGMENT_BYTES = (QUICK ? 8 : 64) * MiB;
const LABEL = `${SEGMENT_BYTES / MiB}MiB`;
const LOG = "h";

/** A segment of `size` bytes: a header, then a frame header every 28 bytes, all bad checksums. */
function crafted(size: number, long: boolean): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(encodeHeader({ firstSeq: 0, maxRecordBytes: 16 * MiB }), 0);
  for (
    let at = HEADER_BYTES, k = 0;
    at + FRAME_HEADER_BYTES <= size;
    at += FRAME_HEADER_BYTES, k++
  ) {
    writeU32(bytes, at, 0xdeadbeef);
    bytes[at + 4] = FRAME_RECORD;
    const room = size - at - FRAME_HEADER_BYTES;
    writeU32(bytes, at + 8, long ? Math.min(room, 16 * MiB) : 0);
    writeU64(bytes, at + 12, k);
    writeU64(bytes, at + 20, 1_700_000_000_000);
  }
  return bytes;
}

/** Median time of opening the log; an open that ends in `CorruptionError` is timed to the error. */
async function openMedian(dir: string, rebuild: () => void): Promise<number> {
  const t = await timeRuns(QUICK ? 3 : 5, async () => {
    rebuild();
    const store = await Store.open(dir);
    try {
      await store.log(LOG);
    } catch (err) {
      if (!(err instanceof CorruptionError)) throw err;
    } finally {
      await store.close();
    }
  });
  return t.medianNs;
}

/**
 * Runs the hostile-open suite into `rec`.
 *
 * @example
 * ```ts
 * import { hostileSuite } from "./hostile.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await hostileSuite(new Recorder());
 * ```
 */
export async function hostileSuite(rec: Recorder): Promise<void> {
  const honestDir = freshDir("hostile-honest");
  const craftedDir = freshDir("hostile-crafted");
  try {
    const store = await Store.open(honestDir, {
      syncPolicy: SyncPolicy.osManaged(),
      segmentBytes: SEGMENT_BYTES + MiB,
    });
    const log = await store.log(LOG);
    const record = new Uint8Array(1024).fill(7);
    while (log.byteSize < SEGMENT_BYTES) await log.appendBatch(Array(256).fill(record));
    await store.close();
    const honestSeg = path.join(honestDir, LOG, segmentFileName(0));
    const honestBytes = fs.readFileSync(honestSeg);
    const tHonest = await openMedian(honestDir, () => fs.writeFileSync(honestSeg, honestBytes));
    rec.add({ suite: "hostile", name: `open ${LABEL} honest`, recordBytes: 1024, avgNs: tHonest });
    console.log(`open ${LABEL} honest: ${(tHonest / 1e6).toFixed(1)} ms`);

    fs.mkdirSync(path.join(craftedDir, LOG), { recursive: true });
    const seg = path.join(craftedDir, LOG, segmentFileName(0));
    for (const long of [false, true]) {
      const bytes = crafted(honestBytes.length, long);
      const t = await openMedian(craftedDir, () => fs.writeFileSync(seg, bytes));
      const name = `open ${LABEL} crafted${long ? " long" : ""}`;
      rec.add({
        suite: "hostile",
        name,
        recordBytes: 0,
        avgNs: t,
        extra: { ratioToHonest: t / tHonest, bytes: bytes.length },
      });
      console.log(`${name}: ${(t / 1e6).toFixed(1)} ms, ${(t / tHonest).toFixed(2)}x honest`);
    }
  } finally {
    removeDir(honestDir);
    removeDir(craftedDir);
  }
  await sparseRows(rec);
}

/** One open of a log built by `build` in a fresh store: its time, what it found, the RSS it added. */
async function sparseOpen(
  rec: Recorder,
  name: string,
  build: (logDir: string) => void,
): Promise<void> {
  const dir = freshDir("hostile-sparse");
  try {
    fs.mkdirSync(path.join(dir, LOG), { recursive: true });
    build(path.join(dir, LOG));
    const before = rss();
    const t0 = performance.now();
    let outcome = "opened";
    const store = await Store.open(dir);
    try {
      await store.log(LOG);
    } catch (err) {
      if (!(err instanceof CorruptionError)) throw err;
      outcome = "CorruptionError";
    } finally {
      await store.close();
    }
    const ns = (performance.now() - t0) * 1e6;
    const rssMiB = (rss() - before) / MiB;
    rec.add({ suite: "hostile", name, recordBytes: 0, avgNs: ns, extra: { outcome, rssMiB } });
    console.log(`${name}: ${outcome}, ${(ns / 1e6).toFixed(0)} ms, RSS +${rssMiB.toFixed(1)} MiB`);
  } finally {
    removeDir(dir);
  }
}

/** The two sparse-file cases of the module doc. */
async function sparseRows(rec: Recorder): Promise<void> {
  await sparseOpen(rec, "open sparse seal trailer 4GiB", (logDir) => {
    const sealed = path.join(logDir, segmentFileName(0));
    fs.writeFileSync(sealed, encodeHeader({ firstSeq: 0, maxRecordBytes: MiB }));
    fs.truncateSync(sealed, 4.5e9);
    const trailer = new Uint8Array(4);
    writeU32(trailer, 0, 0xffff_fff0);
    const fd = fs.openSync(sealed, "r+");
    fs.writeSync(fd, trailer, 0, 4, 4.5e9 - 4);
    fs.closeSync(fd);
    fs.writeFileSync(
      path.join(logDir, segmentFileName(1)),
      encodeHeader({ firstSeq: 1, maxRecordBytes: MiB }),
    );
  });
  await sparseOpen(rec, "open sparse frame length 3.9GB", (logDir) => {
    const seg = path.join(logDir, segmentFileName(0));
    const header = encodeHeader({ firstSeq: 0, maxRecordBytes: MiB });
    writeU32(header, 12, 0xffff_ffff); // the cap a crafted header claims, checksum redone below
    writeU32(header, 28, crc32(header.subarray(0, 28)));
    const frame = new Uint8Array(FRAME_HEADER_BYTES);
    frame[4] = FRAME_RECORD;
    writeU32(frame, 8, 3.9e9);
    const bytes = new Uint8Array(HEADER_BYTES + FRAME_HEADER_BYTES);
    bytes.set(header, 0);
    bytes.set(frame, HEADER_BYTES);
    fs.writeFileSync(seg, bytes);
    fs.truncateSync(seg, 4e9);
  });
}

if (isMain(import.meta.url)) await hostileSuite(new Recorder());
