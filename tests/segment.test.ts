// Segments and the append path under failure: buffering and flush, a failed write cut back to the
// last whole frame (no partial frame a later flush could complete), a failed fdatasync poisoning the
// segment and the log (no retry; reads still work), seal failures, and RecordTooLargeError before
// anything is written. Faults come from the fault-injecting wrapper over the real node:fs platform.
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
import { mkdirDurable } from "../src/platform/durable.ts";
import type { Platform } from "../src/platform/types.ts";
import { parseSegmentFileName, Segment, segmentFileName } from "../src/segment.ts";
import { decodeFrame } from "../src/format/frame.ts";

const HEADER = 32;
const FH = 28;
const SIZE = 40;
const FRAME = FH + SIZE;
const frameAt = (i: number) => HEADER + i * FRAME;
const payload = (seq: number) => new Uint8Array(SIZE).fill((seq * 7 + 3) & 0xff);
const OPTS = { bufferBytes: 4096, maxRecordBytes: 1024 };

let root: string;
let counter = 0;
const freshDir = () => join(root, `s${counter++}`);
before(() => {
  root = mkdtempSync(join(tmpdir(), "khipu-segment-"));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Sequence numbers of the whole frames in a segment file; asserts it ends at a frame boundary. */
function framesOf(path: string, firstSeq = 0): number[] {
  const bytes = new Uint8Array(readFileSync(path));
  const seqs: number[] = [];
  let off = HEADER;
  while (off < bytes.length) {
    const r = decodeFrame(bytes, off, bytes.length, firstSeq + seqs.length, 1 << 20);
    assert.equal(r.status, "ok", `frame at ${off} of ${path} (${bytes.length} bytes)`);
    if (r.status !== "ok") break;
    seqs.push(r.seq);
    off += r.frameBytes;
  }
  assert.equal(off, bytes.length, "the file ends at a frame boundary");
  return seqs;
}

async function caught(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

async function newSegment(p: Platform) {
  const dir = freshDir();
  await mkdirDurable(p, dir);
  return Segment.pending(p, dir, 0, OPTS);
}

describe("Segment: buffer, flush, sync", () => {
  it("names files by first seq (20 digits) and parses only such names", () => {
    assert.equal(segmentFileName(42), "00000000000000000042.seg");
    assert.equal(parseSegmentFileName("00000000000000000042.seg"), 42);
    for (const bad of ["42.seg", "00000000000000000042.seg.broken", "0000000000000000004x.seg"]) {
      assert.equal(parseSegmentFileName(bad), null, bad);
    }
  });

  it("appends stay in the buffer; flush is one writev of whole frames; sync adds one fdatasync", async () => {
    const rec = recordingPlatform(nodePlatform);
    const seg = await newSegment(rec);
    for (let i = 0; i < 10; i++) seg.append(i, 1000 + i, payload(i));
    assert.equal(seg.materialized, false, "no file before the first flush");
    assert.equal(rec.count("write") + rec.count("writev"), 0);
    assert.equal(seg.bufferedBytes, 10 * FRAME);
    await seg.materialize();
    rec.clear();
    seg.flush();
    const writes = rec.calls.filter((c) => c.op === "write" || c.op === "writev");
    assert.equal(writes.length, 1, "one write call for the whole buffer");
    assert.equal(writes[0].bytes, 10 * FRAME);
    assert.equal(rec.count("datasync"), 0, "flush never fsyncs");
    assert.equal(seg.flushedBytes, frameAt(10));
    assert.equal(seg.flushedSeq, 10);
    seg.append(10, 2000, payload(10));
    await seg.sync();
    assert.equal(rec.count("write") + rec.count("writev"), 2);
    assert.equal(rec.count("datasync"), 1);
    seg.close();
    assert.deepEqual(framesOf(seg.path), Array.from({ length: 11 }, (_, i) => i));
  });

  it("seal: records, then a seal frame whose trailer gives its size; fdatasynced", async () => {
    const rec = recordingPlatform(nodePlatform);
    const seg = await newSegment(rec);
    for (let i = 0; i < 3; i++) seg.append(i, 0, payload(i));
    await seg.seal(77);
    assert.equal(seg.sealed, true);
    assert.ok(rec.count("datasync") >= 1);
    seg.close();
    const bytes = new Uint8Array(readFileSync(seg.path));
    const sealBytes = new DataView(bytes.buffer).getUint32(bytes.length - 4, true);
    assert.equal(sealBytes, FH + 8 + 16, "one index entry");
    const r = decodeFrame(bytes, bytes.length - sealBytes, bytes.length, 3, 1024);
    assert.equal(r.status, "ok");
    assert.equal((r as { type: number }).type, 2);
    assert.equal(bytes.length - sealBytes, frameAt(3));
  });
});

describe("Segment: failures", () => {
  it("a failed write (part of it on disk) is cut back to the last whole frame; the buffer is kept", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    seg.append(0, 0, payload(0));
    await seg.sync();
    for (let i = 1; i < 4; i++) seg.append(i, 0, payload(i));
    faulty.inject({ op: ["write", "writev"], code: "ENOSPC", partial: FRAME + 30 });
    const err = await caught(() => seg.flush());
    assert.ok(err instanceof NoSpaceError, String(err));
    assert.equal(err.path, seg.path);
    assert.equal(statSync(seg.path).size, frameAt(1), "partial bytes removed");
    assert.equal(seg.flushedBytes, frameAt(1));
    assert.equal(seg.bufferedBytes, 3 * FRAME, "kept: the caller decides");
    assert.equal(seg.poisoned, false);
    seg.flush(); // the rule fired once; this write succeeds
    await seg.datasync();
    seg.close();
    assert.deepEqual(framesOf(seg.path), [0, 1, 2, 3]);
  });

  it("a failed write that cannot be cut back poisons the segment", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    await seg.materialize();
    seg.append(0, 0, payload(0));
    faulty.inject({ op: ["write", "writev"], partial: 10 }).inject({ op: "truncate" });
    assert.ok((await caught(() => seg.flush())) instanceof IoError);
    assert.equal(seg.poisoned, true);
    const later = await caught(() => seg.append(1, 0, payload(1)));
    assert.ok(later instanceof PoisonedError, String(later));
    assert.equal(later.path, seg.path);
    seg.close();
  });

  it("a failed fdatasync poisons: no retry, later writes refused, the error names the file", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    await seg.materialize();
    seg.append(0, 0, payload(0));
    faulty.inject({ op: "datasync" });
    const err = await caught(seg.sync());
    assert.ok(err instanceof IoError, String(err));
    assert.equal(err.path, seg.path);
    assert.equal(seg.poisoned, true);
    assert.ok((await caught(seg.datasync())) instanceof PoisonedError, "no retry");
    assert.ok((await caught(() => seg.append(1, 0, payload(1)))) instanceof PoisonedError);
    assert.ok((await caught(() => seg.flush())) instanceof PoisonedError);
    assert.equal(faulty.injected.length, 1);
    seg.close();
  });

  it("a failed seal write is cut back, leaving the records", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const seg = await newSegment(faulty);
    seg.append(0, 0, payload(0));
    await seg.sync();
    faulty.inject({ op: "write", partial: 20 });
    assert.ok((await caught(seg.seal(0))) instanceof IoError);
    assert.equal(seg.sealed, false);
    seg.close();
    assert.deepEqual(framesOf(seg.path), [0]);
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

  it("write failure: typed error, no partial frame, nextSeq rolls back, appends continue", async () => {
    const faulty = new FaultyPlatform(nodePlatform);
    const { dir, store, log, seg } = await open(faulty);
    await log.appendBatch([payload(0), payload(1)]);
    faulty.inject({ op: ["write", "writev"], path: ".seg", code: "ENOSPC", partial: FRAME + 7 });
    const results = await Promise.allSettled([log.append(payload(2)), log.append(payload(3))]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(e instanceof NoSpaceError, String(e));
      assert.equal(e.path, seg);
    }
    assert.equal(statSync(seg).size, frameAt(2), "cut back to a frame boundary");
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
    assert.deepEqual(seqs, [0, 1], "reads still work (record 1 reached the page cache)");
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
    for (let i = 0; i < 50; i++) await log.append(payload(i));
    faulty.inject({ op: "datasync", path: segmentFileName(0) });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => log.append(payload(50 + i))),
    );
    const rejected = results.filter((r) => r.status === "rejected");
    assert.ok(rejected.length > 0, "appends after the failed seal reject");
    for (const r of rejected) {
      assert.ok((r as PromiseRejectedResult).reason instanceof PoisonedError);
    }
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
    const size = statSync(seg).size;
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
    assert.equal(statSync(seg).size, size, "file unchanged");
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
