/**
 * Opening a store whose newest segment is hostile, against opening the same size of honest data:
 * the bounded-work promises of FORMAT.md ("Impossible by construction") in figures. Rows ending in
 * ` v1` open version 1 segments (still read, and still recovered by the v1 rules, whose search after
 * a bad frame is the expensive part); the others open version 2 segments (what the writer writes).
 *
 * - `open 64MiB honest`: a v2 newest segment of 64 MiB of 1 KiB records as the writer leaves it
 *   after a clean close (its mark is at its end: open scans nothing before it).
 * - `open 64MiB honest unmarked`: the same file with both mark slots zeroed, as after a crash
 *   before the first mark: open scans and checksums every frame. `extra.ratioToV1Honest` compares
 *   both to the next row.
 * - `open 64MiB honest v1`: a v1 newest segment of 64 MiB of 1 KiB records (built here byte by
 *   byte): open scans and checksums all of it, seals it with a v1 seal and adds a v2 segment.
 * - `open 64MiB crafted v1`: the same size of v1 segment, where a bad first frame is followed by a
 *   plausible frame header every 28 bytes (type 1, sequence number in range, length 0, wrong
 *   checksum): the worst case for the v1 search that tells a torn tail from damage, one checksum
 *   per 28 bytes.
 * - `open 64MiB crafted long v1`: plausible headers whose lengths run up to 16 MiB, the pattern
 *   that made the search quadratic; its checksum budget ends it with `CorruptionError` (timed to
 *   it). `extra.ratioToHonest` of both is to `open 64MiB honest v1`.
 *
 * - `open sparse seal trailer 4GiB v1`, `open sparse frame length 3.9GB v1`: a v1 sealed segment in
 *   a 4.5 GB sparse file whose trailer claims a 4 GiB seal, and a v1 newest segment whose header
 *   claims a 0xFFFFFFFF cap with a frame claiming 3.9 GB in a 4 GB sparse file (sparse: they cost
 *   no disk). The second reads all 4 GB once (the v1 search) to tell a torn tail from damage.
 * - `open sparse seal trailer 4GiB`, `open sparse frame length 256MiB`: the v2 versions. A v2
 *   sealed segment in a 4.5 GB sparse file whose trailer claims a 4 GiB seal; and a v2 newest
 *   segment (valid header claiming a 0xFFFFFFFF cap, no mark) in a 4 GB sparse file whose first
 *   frame claims 256 MiB, the largest length a reader accepts: it is read (into a buffer of that
 *   size), fails its checksum, and everything from it on is cut as a torn tail (v2 has no search).
 *   `extra.rssMiB` is the resident memory the open added: no length in a file may make it allocate
 *   more than its cap.
 *
 * Each 64 MiB row is the median of a few opens, each timed from `Store.open` through `store.log`
 * to `store.close` (the log is rebuilt and synced before each, untimed, since open cuts or seals
 * it); `extra.outcome` says what the open found. The ratios are the figures that carry over
 * between machines. Run alone: `npx tsx bench/hostile.bench.ts` (or `npx deno run -A` /
 * `npx bun run`); `--quick` makes the segments 8 MiB.
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
import { CorruptionError, type Log, Store, SyncPolicy } from "../mod.ts";
import { writeU32 } from "../src/format/bytes.ts";
import { encodeHeader, HEADER_BYTES, newLogId, V1_HEADER_BYTES } from "../src/format/header.ts";
import { FRAME_RECORD } from "../src/format/frame.ts";
import { writeVarint } from "../src/format/varint.ts";
import {
  encodeFrameInto as encodeFrameIntoV1,
  FRAME_HEADER_BYTES as V1_FRAME_HEADER_BYTES,
  FRAME_RECORD as V1_FRAME_RECORD,
} from "../src/format/v1/frame.ts";
import { segmentFileName } from "../src/segment.ts";
import { encodeV1Header } from "./format.bench.ts";
import {
  collectGarbage,
  freshDir,
  isMain,
  median,
  MiB,
  QUICK,
  Recorder,
  removeDir,
  rss,
} from "./harness.ts";

const SEGMENT_BYTES = (QUICK ? 8 : 64) * MiB;
const LABEL = `${SEGMENT_BYTES / MiB}MiB`;
const LOG = "h";
const RECORD_BYTES = 1024;
const BASE_TIMESTAMP = 1_700_000_000_000;

/** A v1 newest segment of `size` bytes at most: a header, then 1 KiB records from seq 0. */
function honestV1(size: number): Uint8Array {
  const frame = V1_FRAME_HEADER_BYTES + RECORD_BYTES;
  const records = Math.floor((size - V1_HEADER_BYTES) / frame);
  const bytes = new Uint8Array(V1_HEADER_BYTES + records * frame);
  bytes.set(encodeV1Header(0, 16 * MiB), 0);
  const record = new Uint8Array(RECORD_BYTES).fill(7);
  let off = V1_HEADER_BYTES;
  for (let seq = 0; seq < records; seq++) {
    off = encodeFrameIntoV1(bytes, off, V1_FRAME_RECORD, seq, BASE_TIMESTAMP + seq, record);
  }
  return bytes;
}

/** A v1 segment of `size` bytes: a header, then a frame header every 28 bytes, all bad checksums. */
function crafted(size: number, long: boolean): Uint8Array {
  const bytes = new Uint8Array(size);
  bytes.set(encodeV1Header(0, 16 * MiB), 0);
  const view = new DataView(bytes.buffer);
  for (
    let at = V1_HEADER_BYTES, k = 0;
    at + V1_FRAME_HEADER_BYTES <= size;
    at += V1_FRAME_HEADER_BYTES, k++
  ) {
    writeU32(bytes, at, 0xdeadbeef);
    bytes[at + 4] = V1_FRAME_RECORD;
    const room = size - at - V1_FRAME_HEADER_BYTES;
    writeU32(bytes, at + 8, long ? Math.min(room, 16 * MiB) : 0);
    view.setBigUint64(at + 12, BigInt(k), true);
    view.setBigUint64(at + 20, BigInt(BASE_TIMESTAMP), true);
  }
  return bytes;
}

/**
 * Makes `logDir` hold exactly one segment, `0.seg` with `bytes` (open may add or cut files),
 * synced with its directories: the open's own fdatasync then has no rebuilt megabytes to write
 * back, so the time is the open's work (warm cache), not the rebuild's writeback.
 */
function resetLog(logDir: string, bytes: Uint8Array): void {
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const fd = fs.openSync(path.join(logDir, segmentFileName(0)), "w");
  try {
    for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at, at);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  for (const d of [logDir, path.dirname(logDir)]) {
    const dirFd = fs.openSync(d, "r");
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  }
}

/** What an open found: `CorruptionError`, or `opened` and the torn tail it cut. */
function describe(log: Log): string {
  const cut = log.openReport.truncatedBytes;
  return cut > 0 ? `opened, cut ${(cut / 1e6).toFixed(cut < 1e6 ? 3 : 1)} MB` : "opened";
}

/** Opens the log in `dir` and closes it: what the open found. */
async function openOnce(dir: string): Promise<string> {
  const store = await Store.open(dir);
  try {
    return describe(await store.log(LOG));
  } catch (err) {
    if (!(err instanceof CorruptionError)) throw err;
    return "CorruptionError";
  } finally {
    await store.close();
  }
}

/**
 * Median time of opening the log (and closing it) over a few runs, the log rebuilt from `bytes`
 * before each (untimed); an open that ends in `CorruptionError` is timed to the error.
 */
async function openMedian(
  dir: string,
  bytes: Uint8Array,
): Promise<{ ns: number; outcome: string }> {
  let outcome = "";
  const all: number[] = [];
  for (let i = 0; i < (QUICK ? 3 : 5); i++) {
    resetLog(path.join(dir, LOG), bytes);
    const t0 = performance.now();
    const o = await openOnce(dir);
    all.push((performance.now() - t0) * 1e6);
    if (outcome && o !== outcome) throw new Error(`open found ${outcome}, then ${o}`);
    outcome = o;
  }
  return { ns: median(all), outcome };
}

/** The 64 MiB v2 newest segment the writer leaves after a clean close (osManaged, 1 KiB records). */
async function honestV2(dir: string): Promise<Uint8Array> {
  const store = await Store.open(dir, {
    syncPolicy: SyncPolicy.osManaged(),
    segmentBytes: SEGMENT_BYTES + MiB,
  });
  const log = await store.log(LOG);
  const record = new Uint8Array(RECORD_BYTES).fill(7);
  // A 1 KiB record with a delta below 128 ms takes 1032 bytes; byteSize counts preallocated zeros.
  for (let n = 0; n * (RECORD_BYTES + 8) < SEGMENT_BYTES; n += 256) {
    await log.appendBatch(Array(256).fill(record));
  }
  await store.close();
  const files = fs.readdirSync(path.join(dir, LOG));
  if (files.length !== 1) throw new Error(`honest log has ${files.length} files: ${files}`);
  // A plain copy: a Buffer's slice() would be a view of it.
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, LOG, files[0])));
  if (bytes.subarray(HEADER_BYTES, 160).every((b) => b === 0)) {
    throw new Error("the honest v2 segment has no mark after a clean close");
  }
  return bytes;
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
  const dir = freshDir("hostile");
  try {
    const v2Bytes = await honestV2(dir);
    const unmarked = v2Bytes.slice();
    unmarked.fill(0, HEADER_BYTES, 160);
    const v1Bytes = honestV1(SEGMENT_BYTES);
    const v1 = await openMedian(dir, v1Bytes);
    const add = (name: string, bytes: Uint8Array, r: typeof v1, extra: Record<string, number>) => {
      rec.add({
        suite: "hostile",
        name,
        recordBytes: name.includes("crafted") ? 0 : RECORD_BYTES,
        avgNs: r.ns,
        extra: { outcome: r.outcome, bytes: bytes.length, ...extra },
      });
      const ratios = Object.entries(extra).map(([k, x]) => `, ${x.toFixed(2)}x (${k})`).join("");
      console.log(`${name}: ${r.outcome}, ${(r.ns / 1e6).toFixed(1)} ms${ratios}`);
    };
    for (const [name, bytes] of [["", v2Bytes], [" unmarked", unmarked]] as const) {
      const r = await openMedian(dir, bytes);
      add(`open ${LABEL} honest${name}`, bytes, r, { ratioToV1Honest: r.ns / v1.ns });
    }
    add(`open ${LABEL} honest v1`, v1Bytes, v1, {});
    for (const long of [false, true]) {
      const bytes = crafted(v1Bytes.length, long);
      const r = await openMedian(dir, bytes);
      add(`open ${LABEL} crafted${long ? " long" : ""} v1`, bytes, r, {
        ratioToHonest: r.ns / v1.ns,
      });
    }
  } finally {
    removeDir(dir);
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
    collectGarbage();
    const before = rss();
    const t0 = performance.now();
    const outcome = await openOnce(dir);
    const ns = (performance.now() - t0) * 1e6;
    const rssMiB = (rss() - before) / MiB;
    rec.add({ suite: "hostile", name, recordBytes: 0, avgNs: ns, extra: { outcome, rssMiB } });
    console.log(`${name}: ${outcome}, ${(ns / 1e6).toFixed(0)} ms, RSS +${rssMiB.toFixed(1)} MiB`);
  } finally {
    removeDir(dir);
  }
}

/** Writes `bytes` at `position` of the file at `p` (past its end leaves a sparse hole). */
function writeAt(p: string, bytes: Uint8Array, position: number): void {
  const fd = fs.openSync(p, "r+");
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    fs.closeSync(fd);
  }
}

/** A 4-byte trailer claiming a seal of almost 4 GiB. */
function hugeTrailer(): Uint8Array {
  const trailer = new Uint8Array(4);
  writeU32(trailer, 0, 0xffff_fff0);
  return trailer;
}

/** The sparse-file cases of the module doc, v1 then v2. */
async function sparseRows(rec: Recorder): Promise<void> {
  await sparseOpen(rec, "open sparse seal trailer 4GiB v1", (logDir) => {
    const sealed = path.join(logDir, segmentFileName(0));
    fs.writeFileSync(sealed, encodeV1Header(0, MiB));
    fs.truncateSync(sealed, 4.5e9);
    writeAt(sealed, hugeTrailer(), 4.5e9 - 4);
    fs.writeFileSync(path.join(logDir, segmentFileName(1)), encodeV1Header(1, MiB));
  });
  await sparseOpen(rec, "open sparse frame length 3.9GB v1", (logDir) => {
    const seg = path.join(logDir, segmentFileName(0));
    const bytes = new Uint8Array(V1_HEADER_BYTES + V1_FRAME_HEADER_BYTES);
    bytes.set(encodeV1Header(0, 0xffff_ffff), 0); // the cap a crafted header claims
    bytes[V1_HEADER_BYTES + 4] = V1_FRAME_RECORD;
    writeU32(bytes, V1_HEADER_BYTES + 8, 3.9e9);
    fs.writeFileSync(seg, bytes);
    fs.truncateSync(seg, 4e9);
  });
  const logId = newLogId();
  const header = (firstSeq: number, maxRecordBytes: number) =>
    encodeHeader({
      firstSeq,
      maxRecordBytes,
      logId,
      prevEndSeq: firstSeq,
      baseTimestamp: BASE_TIMESTAMP,
      indexCapacity: 1024, // what a default 64 MiB segment reserves: dataStart 32928
    });
  await sparseOpen(rec, "open sparse seal trailer 4GiB", (logDir) => {
    const sealed = path.join(logDir, segmentFileName(0));
    fs.writeFileSync(sealed, header(0, MiB));
    fs.truncateSync(sealed, 4.5e9);
    writeAt(sealed, hugeTrailer(), 4.5e9 - 4);
    // The newest segment says the one before it ended at seq 1, so the chain itself is fine.
    fs.writeFileSync(path.join(logDir, segmentFileName(1)), header(1, MiB));
  });
  await sparseOpen(rec, "open sparse frame length 256MiB", (logDir) => {
    const seg = path.join(logDir, segmentFileName(0));
    const h = header(0, 0xffff_ffff); // read as the 256 MiB cap; no mark slot is written
    const dataStart = 160 + 32 * 1024;
    const frame = new Uint8Array(16);
    writeU32(frame, 0, 0xdeadbeef);
    frame[4] = FRAME_RECORD;
    const end = writeVarint(frame, writeVarint(frame, 5, 256 * MiB), 0);
    fs.writeFileSync(seg, h);
    fs.truncateSync(seg, 4e9);
    writeAt(seg, frame.subarray(0, end), dataStart);
  });
}

if (isMain(import.meta.url)) await hostileSuite(new Recorder());
