// Segments and the append path under failure: buffering and flush, preallocation (zeros written
// ahead of the data in 1 MiB steps, never past segmentBytes), stored index entries, the mark slot
// written after each fdatasync (it states only what that completed fdatasync covered), the seal
// (which cuts the zero tail off), a failed write cut back to the last whole frame (no partial
// frame a later flush could complete), a failed fdatasync or mark-slot write poisoning the segment
// and the log (no retry; reads still work), seal failures, and RecordTooLargeError before anything
// is written. Faults come from the fault-injecting wrapper over the real node:fs platform, power
// cuts from the simulator. Offsets are computed from the files (dataStart at header byte 24, frames
// walked with tests/spec_codec.ts's v2 frame decoder), never assumed.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  IoError,
  KhipuError,
  NoSpaceError,
  PoisonedError,
  RecordTooLargeError,
  Store,
  type StoreOptions,
  SyncPolicy,
} from "../mod.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { FaultyPlatform } from "../src/testing/faulty.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { SimPlatform, type SimSnapshot } from "../src/testing/sim.ts";
import { mkdirDurable } from "../src/platform/durable.ts";
import type { Platform } from "../src/platform/types.ts";
import { newLogId } from "../src/format/header.ts";
import { frameBytes } from "../src/format/frame.ts";
import {
  logIdentity,
  parseSegmentFileName,
  Segment,
  segmentFileName,
  type SegmentOptions,
} from "../src/segment.ts";
import {
  decodeV2Frame,
  seed,
  seededCrc,
  T_LAST,
  T_MORE,
  T_SEAL,
  type V2FrameOk,
} from "./spec_codec.ts";
import { wrapFile } from "./helpers.ts";

const MiB = 1 << 20;
const SIZE = 40;
const BASE = 1_000_000; // the segments' base timestamp
/** A 40-byte record whose timestamp is its predecessor's (delta 0): 47 bytes. */
const FRAME = frameBytes(SIZE, 0);
const payload = (seq: number, n = SIZE) => new Uint8Array(n).fill((seq * 7 + 3) & 0xff);
/** 4 MiB segments: 64 stored index entries, so dataStart = 160 + 32 * 64 = 2208. */
const OPTS: SegmentOptions = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4 * MiB };

let root: string;
let counter = 0;
const freshDir = () => join(root, `s${counter++}`);
before(() => {
  root = mkdtempSync(join(tmpdir(), "khipu-segment-"));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

// ---- reading v2 files back (independently of src/format) ----

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u32 = (b: Uint8Array, at: number) => dv(b).getUint32(at, true);
const u64 = (b: Uint8Array, at: number) => Number(dv(b).getBigUint64(at, true));

interface Head {
  firstSeq: number;
  dataStart: number;
  logId: Uint8Array;
  prevEndSeq: number;
  baseTimestamp: number;
  indexCapacity: number;
  maxRecordBytes: number;
}

/** The v2 header's fields (asserts it is one). */
function headOf(b: Uint8Array): Head {
  assert.ok(b.length >= 80, `a whole v2 header (${b.length} bytes)`);
  assert.equal(dv(b).getUint16(8, true), 2, "format version 2");
  assert.equal(b[10], 80, "header length 80");
  return {
    maxRecordBytes: u32(b, 12),
    firstSeq: u64(b, 16),
    dataStart: u32(b, 24),
    logId: b.slice(32, 48),
    prevEndSeq: u64(b, 48),
    baseTimestamp: u64(b, 56),
    indexCapacity: u32(b, 64),
  };
}

interface Walked {
  head: Head;
  /** Record frames from dataStart, in order, as far as they decode. */
  frames: V2FrameOk[];
  /** Offset just past the last frame that decoded (the seal's, if there is one). */
  end: number;
  seal: V2FrameOk | null;
}

/** Walks the frames of a v2 segment from dataStart with the spec decoder. */
function walk(b: Uint8Array): Walked {
  const head = headOf(b);
  const frames: V2FrameOk[] = [];
  let off = head.dataStart;
  let seq = head.firstSeq;
  let ts = head.baseTimestamp;
  let seal: V2FrameOk | null = null;
  for (;;) {
    const f = decodeV2Frame(b, off, b.length, {
      logId: head.logId,
      seq,
      prevTimestamp: ts,
      maxRecordBytes: head.maxRecordBytes,
    });
    if (f.status !== "ok") break;
    off += f.size;
    if (f.type === T_SEAL) {
      seal = f;
      break;
    }
    frames.push(f);
    seq++;
    ts = f.timestamp;
  }
  return { head, frames, end: off, seal };
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

/**
 * Sequence numbers of the record frames of an active segment file; asserts that only zeros (or
 * nothing) follow the last whole frame: no partial frame, no seal.
 */
function framesOf(path: string): number[] {
  const bytes = new Uint8Array(readFileSync(path));
  const w = walk(bytes);
  assert.equal(w.seal, null, `${path} is sealed`);
  assert.ok(isZero(bytes.subarray(w.end)), `${path}: non-zero bytes after the frame at ${w.end}`);
  return w.frames.map((f) => f.seq);
}

interface Slot {
  generation: number;
  durableEnd: number;
  nextSeq: number;
  lastTimestamp: number;
  storedEntries: number;
}

/** The mark slot at `at` (80: A, 120: B) if its seeded CRC and generation parity hold. */
function slotAt(b: Uint8Array, at: number, h: Head): Slot | null {
  if (b.length < at + 40) return null;
  const s = b.subarray(at, at + 40);
  if (u32(s, 36) !== seededCrc(seed(h.logId, h.firstSeq), s.subarray(0, 36))) return null;
  const generation = u64(s, 0);
  if (generation < 1 || generation % 2 !== (at === 80 ? 1 : 0)) return null;
  return {
    generation,
    durableEnd: u64(s, 8),
    nextSeq: u64(s, 16),
    lastTimestamp: u64(s, 24),
    storedEntries: u32(s, 32),
  };
}

/** The mark: the valid slot with the larger generation (null if neither is valid). */
function markOf(b: Uint8Array): Slot | null {
  const h = headOf(b);
  const a = slotAt(b, 80, h);
  const c = slotAt(b, 120, h);
  if (a && c) return a.generation > c.generation ? a : c;
  return a ?? c;
}

interface Entry {
  seq: number;
  offset: number;
  prevTimestamp: number;
}

/** Stored index entry `i` (>= 1, at 160 + 32 (i - 1)) if its seeded CRC and reserved bytes hold. */
function storedEntry(b: Uint8Array, i: number, h: Head): Entry | null {
  const at = 160 + 32 * (i - 1);
  if (b.length < at + 32) return null;
  const e = b.subarray(at, at + 32);
  if (u32(e, 24) !== seededCrc(seed(h.logId, h.firstSeq), e.subarray(0, 24))) return null;
  if (u32(e, 28) !== 0) return null;
  return { seq: u64(e, 0), offset: u64(e, 8), prevTimestamp: u64(e, 16) };
}

/** A seal frame's payload: endSeq, first and last timestamps, index entries, trailer. */
function sealBody(f: V2FrameOk) {
  const p = f.payload;
  const n = u32(p, 24);
  assert.equal(p.length, 32 + 24 * n, "seal payload = 32 + 24 n bytes");
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const o = 28 + 24 * i;
    entries.push({ seq: u64(p, o), offset: u64(p, o + 8), prevTimestamp: u64(p, o + 16) });
  }
  return {
    endSeq: u64(p, 0),
    firstTimestamp: u64(p, 8),
    lastTimestamp: u64(p, 16),
    entries,
    trailer: u32(p, p.length - 4),
  };
}

// ---- helpers ----

async function caught(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

async function newSegment(p: Platform, opts: SegmentOptions = OPTS, dir = freshDir()) {
  await mkdirDurable(p, dir);
  const start = { firstSeq: 0, prevEndSeq: 0, baseTimestamp: BASE, log: logIdentity(newLogId()) };
  return Segment.pending(p, dir, start, opts);
}

const WRITES = ["write", "writev", "writeAt", "writevAt"];
/** The next multiple of 1 MiB above `end`, at most `segmentBytes` (but never below `end`). */
const allocFor = (end: number, segmentBytes: number) =>
  Math.max(end, Math.min(segmentBytes, (Math.floor(end / MiB) + 1) * MiB));

/** `sim`, with a snapshot of its crash state taken just before every fdatasync of a file. */
function snapshotting(sim: SimPlatform, snaps: SimSnapshot[]): Platform {
  return new Proxy(sim, {
    get(target, key) {
      if (key === "open") {
        return async (...args: Parameters<SimPlatform["open"]>) => {
          const f = await target.open(...args);
          return wrapFile(f, {
            datasync: () => {
              snaps.push(target.freeze());
              return f.datasync();
            },
          });
        };
      }
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

describe("Segment: buffer, flush, sync", () => {
  it("names files by first seq (20 digits) and parses only such names", () => {
    assert.equal(segmentFileName(42), "00000000000000000042.seg");
    assert.equal(parseSegmentFileName("00000000000000000042.seg"), 42);
    for (const bad of ["42.seg", "00000000000000000042.seg.broken", "0000000000000000004x.seg"]) {
      assert.equal(parseSegmentFileName(bad), null, bad);
    }
  });

  it("appends stay in the buffer; flush is one positional write of whole frames, then the zeros; sync adds one fdatasync", async () => {
    const rec = recordingPlatform(nodePlatform);
    const seg = await newSegment(rec);
    for (let i = 0; i < 10; i++) seg.append(i, BASE, payload(i), true);
    assert.equal(seg.materialized, false, "no file before the first flush");
    assert.equal(rec.calls.filter((c) => WRITES.includes(c.op)).length, 0);
    assert.equal(seg.bufferedBytes, 10 * FRAME);
    await seg.materialize();
    assert.equal(statSync(seg.path).size, 80, "a new file holds just its header");
    const dataStart = headOf(new Uint8Array(readFileSync(seg.path))).dataStart;
    assert.equal(dataStart, 160 + 32 * 64);
    assert.equal(seg.dataStart, dataStart);
    rec.clear();
    seg.flush();
    const end = dataStart + 10 * FRAME;
    const writes = rec.calls.filter((c) => WRITES.includes(c.op));
    assert.deepEqual(
      writes.map((c) => [c.op, c.position, c.bytes]),
      [["writeAt", dataStart, 10 * FRAME], ["writeAt", end, MiB - end]],
      "the data in one write at dataStart, then zeros up to 1 MiB",
    );
    assert.equal(rec.count("datasync"), 0, "flush never fsyncs");
    assert.equal(seg.flushedBytes, end);
    assert.equal(seg.flushedSeq, 10);
    seg.append(10, BASE + 5000, payload(10), true);
    rec.clear();
    await seg.sync();
    assert.deepEqual(
      rec.calls.filter((c) => WRITES.includes(c.op) || c.op === "datasync")
        .map((c) => [c.op, c.position]),
      [["writeAt", end], ["datasync", undefined], ["writeAt", 80]],
      "inside the allocated space: no zeros; after the fdatasync, slot A saying what it covered",
    );
    seg.close();
    assert.equal(statSync(seg.path).size, MiB);
    assert.deepEqual(framesOf(seg.path), Array.from({ length: 11 }, (_, i) => i));
    const w = walk(new Uint8Array(readFileSync(seg.path)));
    assert.ok(w.frames.every((f) => f.type === T_LAST), "single records end their batch");
    assert.deepEqual(w.frames.map((f) => f.timestamp), [...Array(10).fill(BASE), BASE + 5000]);
    assert.equal(w.frames[10].size, frameBytes(SIZE, 5000));
    w.frames.forEach((f) => assert.deepEqual(f.payload, payload(f.seq)));
  });

  it("a batch is type-3 frames ending in one type-1 frame", async () => {
    const seg = await newSegment(nodePlatform);
    seg.append(0, BASE, payload(0), true);
    for (let i = 1; i <= 3; i++) seg.append(i, BASE + 1, payload(i), i === 3);
    await seg.sync();
    seg.close();
    const w = walk(new Uint8Array(readFileSync(seg.path)));
    assert.deepEqual(w.frames.map((f) => f.type), [T_LAST, T_MORE, T_MORE, T_LAST]);
    assert.deepEqual(w.frames.map((f) => f.delta), [0, 1, 0, 0]);
  });

  it("preallocation: zeros ahead of the data to the next 1 MiB, never past segmentBytes; a failed write cuts them back", async () => {
    const segmentBytes = 2.5 * MiB; // 40 stored entries: dataStart 1440
    const faulty = new FaultyPlatform(nodePlatform);
    const rec = recordingPlatform(faulty);
    const big = 100 * 1024;
    const seg = await newSegment(rec, { bufferBytes: 4096, maxRecordBytes: MiB, segmentBytes });
    await seg.materialize();
    const size = () => statSync(seg.path).size;
    let alloc = 80;
    let zeroWrites = 0;
    for (let i = 0; i < 30; i++) {
      seg.append(i, BASE, payload(i, big), true);
      if (i === 5) {
        // A failed write takes the zeros with it (cut back to the data); the next flush restores them.
        faulty.inject({ op: ["writeAt", "writevAt"], code: "ENOSPC", partial: 5000 });
        assert.ok((await caught(() => seg.flush())) instanceof NoSpaceError);
        assert.equal(size(), seg.flushedBytes, "cut back to the last whole frame, zeros included");
        alloc = seg.flushedBytes;
        assert.equal(seg.bufferedBytes, frameBytes(big, 0), "the buffer is kept");
      }
      rec.clear();
      seg.flush();
      const end = seg.flushedBytes;
      const zeros = rec.calls.filter((c) => c.op === "writeAt" && c.position === end);
      if (end > alloc) {
        alloc = allocFor(end, segmentBytes);
        assert.equal(zeros.length, alloc > end ? 1 : 0, `flush ${i}: zeros once the data passed`);
        zeroWrites += zeros.length;
      } else {
        assert.equal(zeros.length, 0, `flush ${i}: inside the allocated space, no zeros`);
      }
      assert.ok(zeros.every((c) => c.bytes! <= MiB), "at most 1 MiB of zeros a step");
      assert.equal(size(), alloc, `flush ${i}: file size (data ends at ${end})`);
      assert.ok(size() <= Math.max(end, segmentBytes), "never preallocated past segmentBytes");
    }
    // 80 -> 1 MiB, 1 -> 2 MiB, 2 -> 2.5 MiB, and the zeros cut back at i = 5 written again.
    assert.equal(zeroWrites, 4);
    assert.ok(seg.flushedBytes > segmentBytes, "the data itself ran past segmentBytes");
    assert.equal(size(), seg.flushedBytes, "no zeros past the data once it is past segmentBytes");
    seg.close();
    assert.deepEqual(framesOf(seg.path), Array.from({ length: 30 }, (_, i) => i));
  });

  it("the mark slot written after each fdatasync states what it covered; the next fdatasync makes it durable", async () => {
    const sim = new SimPlatform();
    const snaps: SimSnapshot[] = [];
    const seg = await newSegment(snapshotting(sim, snaps), { ...OPTS, segmentBytes: MiB }, "/m");
    await seg.materialize();
    snaps.length = 0; // the header's fdatasync
    // What fdatasync k covered: the data end, the next seq and the last timestamp.
    const covered: { end: number; nextSeq: number; lastTimestamp: number }[] = [];
    let seq = 0;
    for (let k = 0; k < 12; k++) {
      const n = (k % 3) + 1; // batches of 1, 2, 3 records
      for (let j = 0; j < n; j++, seq++) seg.append(seq, BASE + k, payload(seq), j === n - 1);
      await seg.sync();
      covered.push({ end: seg.flushedBytes, nextSeq: seq, lastTimestamp: BASE + k });
      // At once, not at the next fdatasync: what a reader in another process reads as durable.
      const cached = markOf(sim.fileBytes(seg.path)!);
      assert.equal(cached?.generation, k + 1, `after sync ${k}`);
      assert.deepEqual(
        { end: cached.durableEnd, nextSeq: cached.nextSeq, lastTimestamp: cached.lastTimestamp },
        covered[k],
        `after sync ${k}: the slot names what it covered`,
      );
    }
    seg.close();
    assert.equal(snaps.length, 12, "one fdatasync per sync");
    const checkImage = (bytes: Uint8Array, what: string): Slot | null => {
      const mark = markOf(bytes);
      if (mark === null) return null;
      // The mark vouches for whole frames that are on disk in this image, ending at a batch end.
      const w = walk(bytes);
      const batchEnd = w.frames.find((f) => f.offset + f.size === mark.durableEnd);
      assert.ok(batchEnd, `${what}: the mark (${mark.durableEnd}) is not at the end of a frame`);
      assert.equal(batchEnd.type, T_LAST, `${what}: the mark is inside a batch`);
      assert.equal(mark.nextSeq, batchEnd.seq + 1, what);
      assert.equal(mark.lastTimestamp, batchEnd.timestamp, what);
      return mark;
    };
    snaps.forEach((snap, k) => {
      // Before fdatasync k the cache holds the slot written after fdatasync k - 1, naming it.
      const all = checkImage(snap.crash("all").fileBytes(seg.path)!, `before sync ${k}, all`);
      if (k === 0) {
        assert.equal(all, null, "no fdatasync of data completed yet: no mark");
      } else {
        assert.ok(all);
        assert.equal(all.generation, k);
        assert.equal(
          all.durableEnd,
          covered[k - 1].end,
          `before sync ${k}: the previous one's end`,
        );
        assert.equal(all.nextSeq, covered[k - 1].nextSeq);
        assert.equal(all.lastTimestamp, covered[k - 1].lastTimestamp);
        assert.ok(all.durableEnd < covered[k].end, "never what the running fdatasync will cover");
      }
      // A power cut now keeps only what completed fdatasyncs covered, and every mark fits it.
      const none = snap.crash("none").fileBytes(seg.path)!;
      const noneMark = checkImage(none, `before sync ${k}, none`);
      assert.ok((noneMark?.durableEnd ?? 0) <= (covered[k - 1]?.end ?? 0));
      for (const mode of ["prefix", "subset", "torn", "zeros"] as const) {
        for (let s = 0; s < 4; s++) {
          checkImage(snap.crash(mode, s).fileBytes(seg.path)!, `before sync ${k}, ${mode} ${s}`);
        }
      }
    });
    // After the last fdatasync: the data it covered is durable, but the slot written after it is
    // not (no fdatasync followed it), so a power cut leaves the one before.
    const final = sim.crash("none").fileBytes(seg.path)!;
    assert.equal(walk(final).frames.length, seq);
    const mark = checkImage(final, "after the last sync");
    assert.equal(mark?.durableEnd, covered[10].end);
    assert.equal(mark?.generation, 11);
    assert.equal(slotAt(final, 80, headOf(final))?.generation, 11, "odd generations in slot A");
    assert.equal(slotAt(final, 120, headOf(final))?.generation, 10, "even ones in slot B");
    const cached = sim.crash("all").fileBytes(seg.path)!;
    assert.equal(checkImage(cached, "after the last sync, all")?.durableEnd, covered[11].end);
    assert.equal(slotAt(cached, 120, headOf(cached))?.generation, 12);
  });

  it("index entries: one per flush 64 KiB past the previous, stored at 160 + 32 (i - 1); the seal lists them", async () => {
    const sim = new SimPlatform();
    const seg = await newSegment(
      sim,
      { bufferBytes: 4096, maxRecordBytes: MiB, segmentBytes: MiB },
      "/i",
    );
    const big = 20_000;
    const want: Entry[] = [{ seq: 0, offset: 160 + 32 * 16, prevTimestamp: BASE }];
    for (let i = 0; i < 20; i++) {
      seg.append(i, BASE + i, payload(i, big), true);
      const at = seg.flushedBytes;
      if (at - want[want.length - 1].offset >= 65536) {
        want.push({ seq: i, offset: at, prevTimestamp: BASE + i - 1 });
      }
      await seg.sync();
    }
    assert.ok(want.length >= 5, `${want.length} entries`);
    let bytes = sim.fileBytes(seg.path)!;
    const h = headOf(bytes);
    assert.equal(h.indexCapacity, 16);
    for (let i = 1; i < want.length; i++) {
      assert.deepEqual(storedEntry(bytes, i, h), want[i], `entry ${i}`);
    }
    assert.equal(storedEntry(bytes, want.length, h), null, "nothing past the last entry");
    // The mark, written after the last fdatasync, counts the entries it covered.
    const mark = markOf(bytes)!;
    assert.equal(mark.durableEnd, seg.flushedBytes);
    assert.equal(
      mark.storedEntries,
      want.filter((e, i) => i > 0 && e.offset < mark.durableEnd).length,
    );
    await seg.seal(BASE + 100);
    seg.close();
    bytes = sim.crash("none").fileBytes(seg.path)!;
    const w = walk(bytes);
    assert.deepEqual(sealBody(w.seal!).entries, want);
  });

  it("index entries past the index area's room stay in memory: the frames after it are never overwritten", async () => {
    const sim = new SimPlatform();
    // 128 KiB segments have room for 2 stored entries: dataStart = 224, right after them.
    const opts = { bufferBytes: 4096, maxRecordBytes: MiB, segmentBytes: 128 * 1024 };
    const seg = await newSegment(sim, opts, "/r");
    for (let i = 0; i < 12; i++) {
      seg.append(i, BASE, payload(i, 40_000), true);
      await seg.sync();
    }
    assert.ok(seg.index.length >= 5, `${seg.index.length} entries in memory`);
    const bytes = sim.fileBytes(seg.path)!;
    const h = headOf(bytes);
    assert.equal(h.dataStart, 224);
    assert.ok(storedEntry(bytes, 1, h) && storedEntry(bytes, 2, h), "two entries stored");
    assert.equal(markOf(bytes)!.storedEntries, 2);
    const w = walk(bytes);
    assert.equal(w.frames.length, 12, "every frame intact");
    await seg.seal(BASE);
    seg.close();
    const sealed = walk(sim.fileBytes(seg.path)!);
    assert.equal(
      sealBody(sealed.seal!).entries.length,
      seg.index.length,
      "the seal lists them all",
    );
  });

  it("seal: records, then a seal frame whose trailer gives its size; the zero tail is cut; fdatasynced", async () => {
    const rec = recordingPlatform(nodePlatform);
    const seg = await newSegment(rec);
    for (let i = 0; i < 3; i++) seg.append(i, BASE, payload(i), true);
    await seg.sync();
    assert.equal(statSync(seg.path).size, MiB, "preallocated before the seal");
    rec.clear();
    await seg.seal(77); // a sealing time before the last record's: the seal keeps time monotonic
    assert.equal(seg.sealed, true);
    assert.deepEqual(
      rec.ops((c) => c.op !== "size").map((o) => o.split(" ")[0]),
      ["writeAt", "truncate", "datasync"],
      "seal, cut the zeros off, fdatasync",
    );
    seg.close();
    const bytes = new Uint8Array(readFileSync(seg.path));
    const w = walk(bytes);
    const sealAt = w.head.dataStart + 3 * FRAME;
    assert.equal(w.frames.length, 3);
    assert.ok(w.seal, "a seal frame after the records");
    assert.equal(w.seal.offset, sealAt);
    assert.equal(w.seal.seq, 3, "the seal carries the seq one past the last record");
    assert.equal(w.seal.timestamp, BASE);
    assert.equal(bytes.length, sealAt + w.seal.size, "the file ends exactly at the seal");
    const body = sealBody(w.seal);
    assert.equal(u32(bytes, bytes.length - 4), w.seal.size, "trailer = the seal frame's size");
    assert.equal(body.trailer, w.seal.size);
    assert.equal(w.seal.size, 4 + 1 + 1 + 1 + 32 + 24, "one index entry, delta 0");
    assert.equal(body.endSeq, 3);
    assert.equal(body.firstTimestamp, BASE);
    assert.equal(body.lastTimestamp, BASE);
    assert.deepEqual(body.entries, [{ seq: 0, offset: w.head.dataStart, prevTimestamp: BASE }]);
    assert.equal(seg.diskBytes, bytes.length);
  });

  it("seal truncates the preallocated zeros durably: after a power cut the file still ends at its seal", async () => {
    const sim = new SimPlatform();
    const seg = await newSegment(sim, { ...OPTS, segmentBytes: MiB }, "/z");
    for (let i = 0; i < 5; i++) seg.append(i, BASE + i, payload(i), true);
    await seg.sync();
    assert.equal(sim.crash("none").fileBytes(seg.path)!.length, MiB, "the zeros were synced too");
    await seg.seal(BASE + 10);
    seg.close();
    for (const mode of ["none", "all"] as const) {
      const bytes = sim.crash(mode).fileBytes(seg.path)!;
      const w = walk(bytes);
      assert.equal(w.frames.length, 5, mode);
      assert.ok(w.seal, mode);
      assert.equal(w.end, bytes.length, `${mode}: no zeros after the seal`);
      assert.equal(w.seal.timestamp, BASE + 10);
    }
  });
});

describe("Segment: failures", () => {
  it("a failed write (part of it on disk) is cut back to the last whole frame; the buffer is kept", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    seg.append(0, BASE, payload(0), true);
    await seg.sync();
    const oneFrame = seg.flushedBytes;
    assert.equal(oneFrame, seg.dataStart + FRAME);
    for (let i = 1; i < 4; i++) seg.append(i, BASE, payload(i), true);
    faulty.inject({ op: ["writeAt", "writevAt"], code: "ENOSPC", partial: FRAME + 30 });
    const err = await caught(() => seg.flush());
    assert.ok(err instanceof NoSpaceError, String(err));
    assert.equal(err.path, seg.path);
    assert.equal(statSync(seg.path).size, oneFrame, "partial bytes (and the zeros) removed");
    assert.equal(seg.flushedBytes, oneFrame);
    assert.equal(seg.bufferedBytes, 3 * FRAME, "kept: the caller decides");
    assert.equal(seg.poisoned, false);
    seg.flush(); // the rule fired once; this write succeeds
    assert.equal(statSync(seg.path).size, MiB, "preallocated again");
    await seg.datasync();
    seg.close();
    assert.deepEqual(framesOf(seg.path), [0, 1, 2, 3]);
  });

  it("a failed write that cannot be cut back poisons the segment", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    await seg.materialize();
    seg.append(0, BASE, payload(0), true);
    faulty.inject({ op: ["writeAt", "writevAt"], partial: 10 }).inject({ op: "truncate" });
    assert.ok((await caught(() => seg.flush())) instanceof IoError);
    assert.equal(seg.poisoned, true);
    const later = await caught(() => seg.append(1, BASE, payload(1), true));
    assert.ok(later instanceof PoisonedError, String(later));
    assert.equal(later.path, seg.path);
    seg.close();
  });

  it("a failed fdatasync poisons: no retry, later writes refused, the error names the file", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    await seg.materialize();
    seg.append(0, BASE, payload(0), true);
    faulty.inject({ op: "datasync" });
    const err = await caught(seg.sync());
    assert.ok(err instanceof IoError, String(err));
    assert.equal(err.path, seg.path);
    assert.equal(seg.poisoned, true);
    assert.ok((await caught(seg.datasync())) instanceof PoisonedError, "no retry");
    assert.ok((await caught(() => seg.append(1, BASE, payload(1), true))) instanceof PoisonedError);
    assert.ok((await caught(() => seg.flush())) instanceof PoisonedError);
    assert.equal(faulty.injected.length, 1);
    seg.close();
  });

  it("a failed mark-slot write poisons: the fdatasync before it stands, later writes refused", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const rec = recordingPlatform(faulty);
    const seg = await newSegment(rec);
    for (let i = 0; i < 2; i++) {
      seg.append(i, BASE, payload(i), true);
      await seg.sync();
    }
    seg.append(2, BASE, payload(2), true);
    // This sync writes the data, fdatasyncs, then writes the slot for that fdatasync. The first
    // two syncs wrote generations 1 (slot A at 80) and 2 (slot B at 120), so this one writes
    // generation 3 to slot A.
    faulty.inject({ op: "writeAt", after: 1, code: "EIO" });
    rec.clear();
    // The records were made durable before the slot write failed: this sync succeeded for them.
    await seg.sync();
    assert.equal(faulty.injected.length, 1, "the slot write failed");
    assert.deepEqual(
      rec.calls.filter((c) => WRITES.includes(c.op) || c.op === "datasync").map((c) => c.position),
      [seg.dataStart + 2 * FRAME, undefined, 80],
      "data, fdatasync, the slot",
    );
    assert.equal(seg.poisoned, true);
    assert.ok((await caught(seg.datasync())) instanceof PoisonedError, "no fdatasync after it");
    assert.ok((await caught(() => seg.append(3, BASE, payload(3), true))) instanceof PoisonedError);
    assert.ok((await caught(() => seg.flush())) instanceof PoisonedError);
    assert.equal(rec.count("datasync"), 1);
    seg.close();
    // The slot write failed whole: slot B still names the second fdatasync.
    const bytes = new Uint8Array(readFileSync(seg.path));
    assert.deepEqual([markOf(bytes)?.generation, markOf(bytes)?.nextSeq], [2, 2]);
  });

  it("a failed seal write is cut back, leaving the records; a second seal works", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    seg.append(0, BASE, payload(0), true);
    await seg.sync();
    faulty.inject({ op: ["writeAt", "writevAt"], partial: 20 }); // the seal (no slot before it)
    assert.ok((await caught(seg.seal(0))) instanceof IoError);
    assert.equal(seg.sealed, false);
    assert.equal(statSync(seg.path).size, seg.dataStart + FRAME, "cut back to the record");
    assert.deepEqual(framesOf(seg.path), [0]);
    await seg.seal(0);
    seg.close();
    const w = walk(new Uint8Array(readFileSync(seg.path)));
    assert.deepEqual(w.frames.map((f) => f.seq), [0]);
    assert.equal(w.seal?.seq, 1);
    assert.equal(w.end, statSync(seg.path).size);
  });
});

describe("Log: write and fsync failures through the Store", () => {
  async function open(faulty: Platform, opts: StoreOptions = {}) {
    const dir = freshDir();
    const store = await Store.open(dir, {
      platform: faulty,
      syncPolicy: SyncPolicy.always(),
      ...opts,
    });
    const log = await store.log("l");
    return { dir, store, log, seg: join(dir, "l", segmentFileName(0)) };
  }
  const dataStartOf = (path: string) => headOf(new Uint8Array(readFileSync(path))).dataStart;

  it("write failure: typed error, no partial frame, nextSeq rolls back, appends continue", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const { dir, store, log, seg } = await open(faulty);
    await log.appendBatch([payload(0), payload(1)]);
    const twoFrames = walk(new Uint8Array(readFileSync(seg))).end;
    faulty.inject({
      op: ["writeAt", "writevAt"],
      path: ".seg",
      code: "ENOSPC",
      partial: FRAME + 7,
    });
    const results = await Promise.allSettled([log.append(payload(2)), log.append(payload(3))]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(e instanceof NoSpaceError, String(e));
      assert.equal(e.path, seg);
    }
    assert.equal(statSync(seg).size, twoFrames, "cut back to a frame boundary");
    assert.ok(twoFrames > dataStartOf(seg));
    assert.deepEqual(framesOf(seg), [0, 1]);
    assert.equal(log.nextSeq, 2);
    assert.equal(await log.append(payload(2)), 2, "the log stays usable");
    await store.close();
    const again = await Store.open(dir, { platform: nodePlatform });
    const l2 = await again.log("l");
    assert.equal(l2.openReport.truncatedBytes, 0);
    const seqs: number[] = [];
    for await (const r of l2.read()) {
      assert.deepEqual(r.data, payload(r.seq));
      seqs.push(r.seq);
    }
    assert.deepEqual(seqs, [0, 1, 2]);
    await again.close();
  });

  it("fsync failure poisons: pending and later appends reject, reads still work", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const { dir, store, log, seg } = await open(faulty);
    await log.append(payload(0));
    faulty.inject({ op: "datasync", path: ".seg" });
    const err = await caught(log.append(payload(1)));
    assert.ok(err instanceof PoisonedError, String(err));
    const cause = (err as Error).cause;
    assert.ok(cause instanceof IoError && cause.path === seg, `cause ${String(cause)}`);
    const later = await caught(log.append(payload(2)));
    assert.ok(later instanceof PoisonedError);
    assert.ok((await caught(log.appendBatch([payload(2)]))) instanceof PoisonedError);
    assert.ok((await caught(log.sync())) instanceof PoisonedError);
    assert.equal(faulty.injected.length, 1, "the failed fdatasync was not retried");
    const seqs: number[] = [];
    for await (const r of log.read({ from: 0 })) seqs.push(r.seq);
    // Record 1 reached the page cache, but its append rejected: a reader never sees it.
    assert.deepEqual(seqs, [0], "reads still work, up to the last resolved append");
    await store.close();
    assert.deepEqual(framesOf(seg), [0, 1]);
    // Reopening is the way out: the store is usable again.
    const again = await Store.open(dir, {
      platform: nodePlatform,
      syncPolicy: SyncPolicy.always(),
    });
    const l2 = await again.log("l");
    assert.equal(await l2.append(payload(2)), 2);
    await again.close();
  });

  it("fsync failure while sealing a segment at rollover poisons the log", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const { store, log } = await open(faulty, {
      syncPolicy: SyncPolicy.osManaged(),
      segmentBytes: 4096,
    });
    // 4096-byte segments have no stored index entries: frames from 160. 83 frames of 47 bytes
    // leave 35 bytes, room for timestamp deltas that need a second varint byte.
    const fit = Math.floor((4096 - 160) / FRAME);
    for (let i = 0; i < fit; i++) await log.append(payload(i));
    assert.equal(log.segmentCount, 1, "no rollover yet");
    faulty.inject({ op: "datasync", path: segmentFileName(0) });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => log.append(payload(fit + i))),
    );
    const rejected = results.filter((r) => r.status === "rejected");
    assert.ok(rejected.length > 0, "appends after the failed seal reject");
    for (const r of rejected) {
      assert.ok((r as PromiseRejectedResult).reason instanceof PoisonedError);
    }
    assert.equal(faulty.injected.length, 1, "the seal's fdatasync failed");
    assert.ok((await caught(log.append(payload(99)))) instanceof PoisonedError);
    await store.close();
  });
});

describe("RecordTooLargeError", () => {
  it("is thrown before anything is written; nextSeq and the file are unchanged", async () => {
    const dir = freshDir();
    const store = await Store.open(dir, {
      platform: nodePlatform,
      syncPolicy: SyncPolicy.always(),
      maxRecordBytes: 64,
    });
    const log = await store.log("l");
    const seg = join(dir, "l", segmentFileName(0));
    await log.append(new Uint8Array(64));
    const bytes = readFileSync(seg);
    const err = await caught(log.append(new Uint8Array(65)));
    assert.ok(err instanceof RecordTooLargeError, String(err));
    assert.equal(err.code, "RECORD_TOO_LARGE");
    assert.equal(err.size, 65);
    assert.equal(err.limit, 64);
    // A string is measured in UTF-8 bytes: 33 x "é" is 66 bytes.
    assert.ok((await caught(log.append("é".repeat(33)))) instanceof RecordTooLargeError);
    // One bad record in a batch: none of it is written.
    assert.ok((await caught(log.appendBatch(["ok", new Uint8Array(100)]))) instanceof KhipuError);
    await log.sync();
    // The file is preallocated, so its size says little: its bytes must be the same.
    assert.ok(readFileSync(seg).equals(bytes), "file unchanged");
    assert.equal(log.nextSeq, 1);
    assert.equal(await log.append("fits"), 1);
    await store.close();
  });

  // Found while writing these tests (fixed in 29760d9): a recovered segment kept accepting records
  // up to a raised option, above its header's cap, and the next open refused them or cut them.
  it("records appended after reopening with a larger maxRecordBytes survive reopening", async () => {
    const dir = freshDir();
    const open = (max: number) =>
      Store.open(dir, {
        platform: nodePlatform,
        syncPolicy: SyncPolicy.always(),
        maxRecordBytes: max,
      });
    let store = await open(100);
    await (await store.log("l")).append("small");
    await store.close();
    store = await open(1000);
    assert.equal(await (await store.log("l")).append(new Uint8Array(500)), 1);
    await store.close();
    store = await open(1000);
    const log = await store.log("l");
    assert.equal(log.nextSeq, 2, "the acknowledged 500-byte record is still there");
    assert.equal(log.openReport.truncatedBytes, 0);
    await store.close();
    store = await open(10); // a smaller cap later must not make old records unreadable
    const seqs: number[] = [];
    for await (const r of (await store.log("l")).read()) seqs.push(r.seq);
    assert.deepEqual(seqs, [0, 1]);
    await store.close();
  });
});
