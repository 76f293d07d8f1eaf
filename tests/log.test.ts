// The Log API on the real file system: payload kinds, batches (never split across segments),
// size limits, rollover across many segments with reads spanning them, timestamps that never go
// backwards, the log id, seeking into the middle of an old segment through its sparse index,
// `read({ from, to })` bounds, `follow()`, retention with `truncateBefore`, reopening after every
// kind of operation, and a failed write that must leave the log usable. Segment contents are
// checked by walking the files' v2 frames (dataStart from header byte 24) with the spec decoder.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  InvalidArgumentError,
  KhipuError,
  type LogRecord,
  NoSpaceError,
  RecordTooLargeError,
  Store,
  type StoreOptions,
  SyncPolicy,
} from "../mod.ts";
import { defaultPlatform } from "../src/platform/detect.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { FaultyPlatform } from "../src/testing/faulty.ts";
import type { Platform } from "../src/platform/types.ts";
import { frameBytes } from "../src/format/frame.ts";
import { decodeV2Frame, hex, T_LAST, T_SEAL, type V2FrameOk } from "./spec_codec.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
/** A deterministic payload for record `i`: `len` bytes derived from i. */
function bytesFor(i: number, len = 100): Uint8Array {
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = (i * 31 + j * 7) & 0xff;
  return b;
}

let disk: Platform;
let root = "";
let n = 0;
before(async () => {
  disk = await defaultPlatform();
  root = mkdtempSync(join(tmpdir(), "khipu-log-"));
});
after(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => join(root, `s${++n}`);

async function open(dir: string, opts: StoreOptions = {}) {
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged(), ...opts });
  return { store, log: await store.log("ev") };
}

async function collect(it: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}
const seqsOf = (rs: LogRecord[]) => rs.map((r) => r.seq);

/** Segment files of log `ev` in store `dir`, sorted. */
function segFiles(dir: string): string[] {
  return readdirSync(join(dir, "ev")).filter((f) => f.endsWith(".seg")).sort();
}

interface SegmentFile {
  dataStart: number;
  logId: string;
  /** Record frames from dataStart, as far as they decode. */
  frames: V2FrameOk[];
  /** End of the last record frame. */
  dataEnd: number;
  /** The seal frame, if the records end in one. */
  seal: V2FrameOk | null;
  size: number;
}

/** A v2 segment file's frames, walked from dataStart (header byte 24) with the spec decoder. */
function readSegment(bytes: Uint8Array): SegmentFile {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(v.getUint16(8, true), 2, "a v2 segment");
  const dataStart = v.getUint32(24, true);
  const logId = bytes.slice(32, 48);
  const ctx = {
    logId,
    seq: Number(v.getBigUint64(16, true)),
    prevTimestamp: Number(v.getBigUint64(56, true)),
    maxRecordBytes: v.getUint32(12, true),
  };
  const frames: V2FrameOk[] = [];
  let seal: V2FrameOk | null = null;
  let off = dataStart;
  for (;;) {
    const f = decodeV2Frame(bytes, off, bytes.length, ctx);
    if (f.status !== "ok") break;
    if (f.type === T_SEAL) {
      seal = f;
      break;
    }
    frames.push(f);
    off += f.size;
    ctx.seq++;
    ctx.prevTimestamp = f.timestamp;
  }
  return { dataStart, logId: hex(logId), frames, dataEnd: off, seal, size: bytes.length };
}

/** Every segment of log `ev` in `dir`, oldest first. */
function segmentsOf(dir: string): SegmentFile[] {
  return segFiles(dir).map((f) => readSegment(new Uint8Array(readFileSync(join(dir, "ev", f)))));
}

/** The batches of a segment: runs of frames, each ended by a type-1 frame. */
function batchesOf(s: SegmentFile): V2FrameOk[][] {
  const out: V2FrameOk[][] = [];
  let cur: V2FrameOk[] = [];
  for (const f of s.frames) {
    cur.push(f);
    if (f.type === T_LAST) {
      out.push(cur);
      cur = [];
    }
  }
  assert.deepEqual(cur, [], "the segment ends inside a batch");
  return out;
}

/**
 * Checks the rollover rule on the files: every segment but the last is sealed right after its
 * records, holds at most segmentBytes of them unless it is one batch alone, and rolled over only
 * because the next batch (as it would have been encoded there) did not fit.
 */
function checkFill(segs: SegmentFile[], segmentBytes: number): void {
  segs.forEach((s, i) => {
    const label = `segment ${i} of ${segs.length}`;
    const batches = batchesOf(s);
    assert.ok(batches.length >= 1, `${label} holds no record`);
    if (i + 1 === segs.length) {
      assert.equal(s.seal, null, `${label}: the newest segment is not sealed`);
      assert.ok(s.size >= s.dataEnd);
      return;
    }
    assert.ok(s.seal, `${label} is sealed`);
    assert.equal(s.size, s.dataEnd + s.seal.size, `${label} ends at its seal (no zeros)`);
    assert.ok(
      s.dataEnd <= segmentBytes || batches.length === 1,
      `${label} is over-full (${s.dataEnd} bytes in ${batches.length} batches)`,
    );
    const next = batchesOf(segs[i + 1])[0];
    const last = s.frames[s.frames.length - 1];
    // Here the batch's first frame would count its delta from this segment's last record.
    const nextBytes = next.reduce(
      (n, f, j) =>
        n + (j === 0 ? frameBytes(f.payload.length, f.timestamp - last.timestamp) : f.size),
      0,
    );
    assert.ok(s.dataEnd + nextBytes > segmentBytes, `${label} rolled over early`);
  });
}

describe("appends: payload kinds, batches and limits", () => {
  it("stores strings as UTF-8 and bytes as given, including empty payloads and subarray views", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir);
    const big = bytesFor(7, 64);
    const view = big.subarray(5, 20); // a view with a non-zero byteOffset
    const items: (string | Uint8Array)[] = [
      "plain",
      "héllo wörld — 日本語 🌍",
      "",
      new Uint8Array(0),
      view,
      bytesFor(1, 1),
      new Uint8Array([0, 0, 0, 0]),
    ];
    for (const [i, item] of items.entries()) assert.equal(await log.append(item), i);
    const want = items.map((x) => (typeof x === "string" ? enc.encode(x) : x.slice()));
    const check = async () => {
      const recs = await collect(log.read({ from: 0 }));
      assert.deepEqual(seqsOf(recs), range(items.length));
      recs.forEach((r, i) => assert.deepEqual(r.data, want[i], `record ${i}`));
      assert.equal(dec.decode(recs[1].data), "héllo wörld — 日本語 🌍");
      assert.equal(recs[2].data.length, 0);
    };
    await check();
    await store.close();
    ({ store, log } = await open(dir));
    await check();
    assert.equal(log.nextSeq, items.length);
    await store.close();
  });

  it("copies the payload at once: the caller may reuse its buffer before the append resolves", async () => {
    const { store, log } = await open(freshDir());
    const buf = new Uint8Array([1, 2, 3, 4]);
    const p = log.append(buf);
    buf.fill(9);
    const q = log.appendBatch([buf]);
    buf.fill(7);
    await Promise.all([p, q]);
    const recs = await collect(log.read());
    assert.deepEqual(recs[0].data, new Uint8Array([1, 2, 3, 4]));
    assert.deepEqual(recs[1].data, new Uint8Array([9, 9, 9, 9]));
    // What a reader gets is its own copy too.
    recs[0].data.fill(0);
    assert.deepEqual((await collect(log.read()))[0].data, new Uint8Array([1, 2, 3, 4]));
    await store.close();
  });

  it("timestamps are the append time in ms", async () => {
    const { store, log } = await open(freshDir());
    const t0 = Date.now();
    await log.append("t");
    const t1 = Date.now();
    const [r] = await collect(log.read());
    assert.ok(r.timestamp >= t0 && r.timestamp <= t1, `${r.timestamp} not in [${t0}, ${t1}]`);
    await store.close();
  });

  it("appendBatch returns consecutive sequence numbers in order; an empty batch is a no-op", async () => {
    const { store, log } = await open(freshDir());
    assert.equal(await log.append("a"), 0);
    assert.deepEqual(await log.appendBatch(["b", enc.encode("c"), ""]), [1, 2, 3]);
    assert.deepEqual(await log.appendBatch([]), []);
    assert.equal(log.nextSeq, 4);
    // Concurrent batches and appends keep call order.
    const [x, y, z] = await Promise.all([
      log.appendBatch(["d", "e"]),
      log.append("f"),
      log.appendBatch(["g"]),
    ]);
    assert.deepEqual([x, y, z], [[4, 5], 6, [7]]);
    const recs = await collect(log.read());
    assert.deepEqual(recs.map((r) => dec.decode(r.data)), ["a", "b", "c", "", "d", "e", "f", "g"]);
    await store.close();
  });

  it("RecordTooLargeError above maxRecordBytes; nothing of a batch with one such record is written", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { maxRecordBytes: 100 });
    assert.equal(await log.append(new Uint8Array(100)), 0);
    await assert.rejects(log.append(new Uint8Array(101)), (e: unknown) => {
      assert.ok(e instanceof RecordTooLargeError);
      assert.equal(e.size, 101);
      assert.equal(e.limit, 100);
      assert.equal(e.code, "RECORD_TOO_LARGE");
      return true;
    });
    await assert.rejects(log.append("x".repeat(101)), RecordTooLargeError);
    await assert.rejects(log.appendBatch(["ok", new Uint8Array(500), "ok"]), RecordTooLargeError);
    assert.equal(log.nextSeq, 1);
    assert.equal(await log.append("still usable"), 1);
    await store.close();
    ({ store, log } = await open(dir, { maxRecordBytes: 100 }));
    assert.deepEqual(seqsOf(await collect(log.read())), [0, 1]);
    await store.close();
  });

  it("rejects payloads that are neither string nor Uint8Array with InvalidArgumentError", async () => {
    const { store, log } = await open(freshDir());
    for (const bad of [42, null, undefined, {}, [1, 2], new ArrayBuffer(4)]) {
      await assert.rejects(log.append(bad as unknown as string), InvalidArgumentError);
      await assert.rejects(log.appendBatch([bad as unknown as string]), InvalidArgumentError);
    }
    assert.equal(log.nextSeq, 0);
    await store.close();
  });

  for (const size of [20, 99, 100, 1000]) {
    it(`segments of ${size}-byte records are filled with whole records up to segmentBytes`, async () => {
      const dir = freshDir();
      const { store, log } = await open(dir, { segmentBytes: 4096 });
      const count = Math.ceil((5 * 4096) / size);
      // Concurrent appends (one flush a turn, each record its own batch), then sequential ones.
      for (let i = 0; i < count; i += 16) {
        await Promise.all(
          range(Math.min(16, count - i), i).map((j) => log.append(bytesFor(j, size))),
        );
      }
      for (let i = 0; i < 20; i++) await log.append(bytesFor(count + i, size));
      await store.close();
      const segs = segmentsOf(dir);
      assert.ok(segs.length >= 5, `${segs.length} segments`);
      checkFill(segs, 4096);
      const firsts = segFiles(dir).map((f) => Number(f.slice(0, 20)));
      segs.forEach((s, i) => assert.equal(s.frames[0].seq, firsts[i], "named by its first seq"));
      assert.deepEqual(segs.flatMap((s) => s.frames.map((f) => f.seq)), range(count + 20));
    });
  }

  it("appendBatch never spans segments: the log rolls over before a batch that does not fit", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 20; i++) await log.append(bytesFor(i)); // 20 x 107 B: 2300 of 4096 bytes
    assert.equal(log.segmentCount, 1);
    // 20 more records would fit one by one up to 4096; as one batch they do not fit what is left.
    assert.deepEqual(await log.appendBatch(range(20, 20).map((i) => bytesFor(i))), range(20, 20));
    assert.equal(log.segmentCount, 2, "rolled over before the batch");
    // A batch larger than a whole segment gets one of its own, and the next record rolls over.
    await log.appendBatch(range(60, 40).map((i) => bytesFor(i)));
    await log.append(bytesFor(100));
    assert.equal(log.segmentCount, 4);
    await store.close();
    const segs = segmentsOf(dir);
    assert.deepEqual(segs.map((s) => batchesOf(s).map((b) => b.length)), [
      Array(20).fill(1),
      [20],
      [60],
      [1],
    ]);
    assert.ok(segs[2].dataEnd > 4096, "the big batch is over-full, alone");
    checkFill(segs, 4096);
    ({ store, log } = await open(dir, { segmentBytes: 4096 }));
    const recs = await collect(log.read());
    assert.deepEqual(seqsOf(recs), range(101));
    recs.forEach((r) => assert.deepEqual(r.data, bytesFor(r.seq)));
    await store.close();
  });

  it("a record larger than segmentBytes gets a segment of its own", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { segmentBytes: 4096 });
    await log.append("small");
    await log.append(bytesFor(3, 10_000));
    await log.append("after");
    assert.equal(log.segmentCount, 3);
    await store.close();
    ({ store, log } = await open(dir, { segmentBytes: 4096 }));
    const recs = await collect(log.read());
    assert.deepEqual(recs[1].data, bytesFor(3, 10_000));
    assert.equal(dec.decode(recs[2].data), "after");
    await store.close();
  });
});

describe("timestamps and the log id", () => {
  it("timestamps never decrease, even when Date.now goes backwards (across rollovers and reopens)", async () => {
    const realNow = Date.now;
    const T = 1_700_000_000_000;
    let clock = T;
    Date.now = () => clock;
    try {
      const sim = new SimPlatform();
      const opts: StoreOptions = {
        platform: sim,
        segmentBytes: 4096,
        syncPolicy: SyncPolicy.osManaged(),
      };
      let store = await Store.open("/t", opts);
      let log = await store.log("ev");
      const want: number[] = [];
      let high = T; // the empty segment's base timestamp: the clock at open
      const at = async (t: number, n = 1) => {
        clock = t;
        high = Math.max(high, t);
        const first = want.length;
        if (n === 1) await log.append(bytesFor(first, 300));
        else await log.appendBatch(range(n, first).map((i) => bytesFor(i, 300)));
        for (let i = 0; i < n; i++) want.push(high);
      };
      await at(T - 10); // before the base timestamp: gets the base
      await at(T + 5000);
      await at(T + 1000); // the clock went back 4 s
      await at(T + 1000, 3);
      await at(T + 9000);
      for (let i = 0; i < 30; i++) await at(T + 2000 + i); // rollovers, the clock behind
      assert.ok(log.segmentCount >= 3, `${log.segmentCount} segments`);
      await at(T + 12_000, 2);
      await store.close();
      clock = T; // reopened with the clock far behind
      store = await Store.open("/t", opts);
      log = await store.log("ev");
      await at(T + 3);
      await at(T + 12_500);
      await at(T + 12_400, 14); // a batch that rolls over, the clock behind again
      const recs = await collect(log.read());
      assert.deepEqual(seqsOf(recs), range(want.length));
      assert.deepEqual(recs.map((r) => r.timestamp), want);
      await store.close();
      // In the files too: each seal is no older than its segment's last record.
      for (const f of sim.listFiles().filter((p) => p.endsWith(".seg")).sort()) {
        const s = readSegment(sim.fileBytes(f)!);
        const last = s.frames[s.frames.length - 1];
        if (s.seal) assert.ok(s.seal.timestamp >= last.timestamp, `${f}: seal older than a record`);
      }
    } finally {
      Date.now = realNow;
    }
  });

  it("log.id: 32 hex digits in every segment header, stable across reopens, different between logs", async () => {
    const dir = freshDir();
    const opts: StoreOptions = { segmentBytes: 4096 };
    let store = await Store.open(dir, opts);
    let [ev, other] = [await store.log("ev"), await store.log("other")];
    const id = ev.id;
    const otherId = other.id;
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.match(otherId, /^[0-9a-f]{32}$/);
    assert.notEqual(id, otherId, "two logs, two ids");
    for (let i = 0; i < 40; i++) await ev.append(bytesFor(i, 300));
    await other.append("x");
    assert.equal(ev.id, id, "the same while appending");
    await store.close();
    const segs = segmentsOf(dir);
    assert.ok(segs.length > 2);
    for (const s of segs) assert.equal(s.logId, id, "every segment header carries the log id");
    store = await Store.open(dir, opts);
    [ev, other] = [await store.log("ev"), await store.log("other")];
    assert.equal(ev.id, id, "stable across reopen");
    assert.equal(other.id, otherId);
    // With every sealed segment deleted, the active one still carries it.
    await ev.truncateBefore(1_000);
    assert.equal(ev.segmentCount, 1);
    await store.close();
    store = await Store.open(dir, opts);
    assert.equal((await store.log("ev")).id, id, "stable after retention");
    await store.close();
  });
});

describe("maxRecordBytes changed between opens", () => {
  const readSizes = async (log: Awaited<ReturnType<typeof open>>["log"]) =>
    (await collect(log.read({ from: 0 }))).map((r) => r.data.length);

  it("records written under a larger limit stay readable after lowering it", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { segmentBytes: 4096, maxRecordBytes: 1000 });
    for (let i = 0; i < 10; i++) await log.append(bytesFor(i, 1000));
    assert.ok(log.segmentCount > 2);
    await store.close();
    ({ store, log } = await open(dir, { segmentBytes: 4096, maxRecordBytes: 100 }));
    assert.deepEqual(await readSizes(log), Array(10).fill(1000));
    await assert.rejects(log.append(new Uint8Array(101)), RecordTooLargeError);
    await log.append(new Uint8Array(100));
    await store.close();
    ({ store, log } = await open(dir, { segmentBytes: 4096, maxRecordBytes: 100 }));
    assert.deepEqual(await readSizes(log), [...Array(10).fill(1000), 100]);
    await store.close();
  });

  it("records larger than the old limit, appended after raising it, survive a reopen", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { maxRecordBytes: 1000 });
    await log.append(new Uint8Array(1000));
    await store.close();
    const big = { maxRecordBytes: 2000, syncPolicy: SyncPolicy.always() };
    ({ store, log } = await open(dir, big));
    await log.append(bytesFor(1, 1500)); // acknowledged as durable
    await store.close();
    ({ store, log } = await open(dir, big));
    assert.equal(log.openReport.truncatedBytes, 0, "an acknowledged record was cut as torn");
    await log.append(bytesFor(2, 1500));
    await log.append(new Uint8Array(10));
    await store.close();
    ({ store, log } = await open(dir, { maxRecordBytes: 10 }));
    assert.equal(log.openReport.truncatedBytes, 0);
    assert.deepEqual(await readSizes(log), [1000, 1500, 1500, 10]);
    await store.close();
  });

  it("an empty log reopened with a larger limit takes records up to the new limit", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { maxRecordBytes: 1000 });
    await store.close();
    ({ store, log } = await open(dir, { maxRecordBytes: 5000 }));
    await log.append(new Uint8Array(3000));
    await store.close();
    ({ store, log } = await open(dir, { maxRecordBytes: 5000 }));
    assert.deepEqual(await readSizes(log), [3000]);
    await store.close();
  });
});

describe("rollover and reads", () => {
  const N = 1000;
  let dir = "";
  before(async () => {
    dir = freshDir();
    const { store, log } = await open(dir, { segmentBytes: 4096 });
    // Mixed: sequential appends, batches and concurrent bursts, so segments fill in various ways.
    for (let i = 0; i < 300; i++) await log.append(bytesFor(i));
    await log.appendBatch(range(200, 300).map((i) => bytesFor(i)));
    await Promise.all(range(500, 500).map((i) => log.append(bytesFor(i))));
    await store.close();
  });

  it("rolls over into many segments, each starting where the previous one ended", async () => {
    const { store, log } = await open(dir, { segmentBytes: 4096 });
    const files = segFiles(dir);
    assert.ok(files.length >= 20, `only ${files.length} segments`); // 107-byte frames, ~36 a segment
    assert.equal(log.segmentCount, files.length);
    assert.equal(log.firstSeq, 0);
    assert.equal(log.nextSeq, N);
    const firsts = files.map((f) => Number(f.slice(0, 20)));
    assert.equal(firsts[0], 0);
    const segs = segmentsOf(dir);
    // Whole batches up to segmentBytes (the 200-record batch alone in an over-full one).
    checkFill(segs, 4096);
    segs.forEach((s, i) => assert.equal(s.frames[0]?.seq, firsts[i], `${files[i]} first seq`));
    assert.deepEqual(segs.flatMap((s) => s.frames.map((f) => f.seq)), range(N));
    assert.ok(segs.some((s) => batchesOf(s).some((b) => b.length === 200)), "the batch is whole");
    let total = 0;
    for (const f of files) total += statSync(join(dir, "ev", f)).size;
    assert.equal(log.byteSize, total);
    await store.close();
  });

  it("read() from 0 spans every segment in order with the right bytes", async () => {
    const { store, log } = await open(dir, { segmentBytes: 4096 });
    const recs = await collect(log.read({ from: 0 }));
    assert.deepEqual(seqsOf(recs), range(N));
    recs.forEach((r) => assert.deepEqual(r.data, bytesFor(r.seq), `record ${r.seq}`));
    await store.close();
  });

  it("read({ from, to }) starts at from (also mid-segment and at boundaries) and stops before to", async () => {
    const { store, log } = await open(dir, { segmentBytes: 4096 });
    const firsts = segFiles(dir).map((f) => Number(f.slice(0, 20)));
    const froms = [0, 1, 17, firsts[3], firsts[3] - 1, firsts[3] + 1, 555, N - 1, firsts.at(-1)!];
    for (const from of froms) {
      const recs = await collect(log.read({ from }));
      assert.deepEqual(seqsOf(recs), range(N - from, from), `from ${from}`);
      assert.deepEqual(recs[0].data, bytesFor(from));
    }
    const bounded: [number, number, number[]][] = [
      [0, 1, [0]],
      [5, 5, []],
      [9, 3, []],
      [firsts[2] - 2, firsts[4] + 2, range(firsts[4] + 4 - firsts[2], firsts[2] - 2)],
      [990, 5000, range(10, 990)],
      [N, N + 10, []],
      [N + 100, undefined as unknown as number, []],
    ];
    for (const [from, to, want] of bounded) {
      assert.deepEqual(seqsOf(await collect(log.read({ from, to }))), want, `[${from}, ${to})`);
    }
    for (const bad of [-1, 1.5, NaN, Infinity]) {
      await assert.rejects(collect(log.read({ from: bad })), InvalidArgumentError, `from ${bad}`);
      await assert.rejects(collect(log.read({ to: bad })), InvalidArgumentError, `to ${bad}`);
    }
    await store.close();
  });

  it("several readers at once, and breaking out of one early, are independent", async () => {
    const { store, log } = await open(dir, { segmentBytes: 4096 });
    const partial: number[] = [];
    for await (const r of log.read({ from: 100 })) {
      partial.push(r.seq);
      if (partial.length === 50) break;
    }
    assert.deepEqual(partial, range(50, 100));
    const [a, b] = await Promise.all([collect(log.read({ from: 10 })), collect(log.read())]);
    assert.equal(a.length, N - 10);
    assert.equal(b.length, N);
    await store.close();
  });
});

describe("read({ from }) seeks into an old segment through its sparse index", () => {
  it("starts reading near `from`, opening no earlier segment, before and after reopen", async () => {
    const dir = freshDir();
    const recP = recordingPlatform(disk);
    const opts: StoreOptions = { segmentBytes: 1 << 20, platform: recP };
    let { store, log } = await open(dir, opts);
    // Sequential appends: one flush per record, so the sparse index gets an entry every ~64 KiB.
    for (let i = 0; i < 2500; i++) await log.append(bytesFor(i, 1000));
    assert.ok(log.segmentCount >= 3);
    const files = segFiles(dir).map((f) => join(dir, "ev", f));
    const check = async (label: string) => {
      const from = 600; // in the middle of the first (sealed) segment, ~600 KB in
      recP.clear();
      const recs = await collect(log.read({ from, to: from + 5 }));
      assert.deepEqual(seqsOf(recs), range(5, from), label);
      assert.deepEqual(recs[0].data, bytesFor(from, 1000));
      const reads = recP.calls.filter((c) => c.op === "readAt");
      assert.ok(reads.length > 0);
      assert.ok(reads.every((c) => c.path === files[0]), `${label}: read another segment`);
      const firstAt = Math.min(...reads.map((c) => c.position!));
      const seg0 = readSegment(new Uint8Array(readFileSync(files[0])));
      const target = seg0.frames[from].offset;
      assert.ok(target > 4 * 65536, "the record is far into its segment");
      assert.ok(firstAt > seg0.dataStart, `${label}: scanned from the start of the segment`);
      assert.ok(target - firstAt <= 2 * 65536, `${label}: started ${target - firstAt} bytes early`);
      // From the second segment: nothing of the first is touched.
      const second = Number(files[1].slice(-24, -4));
      recP.clear();
      const r2 = await collect(log.read({ from: second + 3, to: second + 4 }));
      assert.deepEqual(seqsOf(r2), [second + 3]);
      assert.ok(recP.calls.every((c) => c.path !== files[0]), `${label}: touched segment 0`);
    };
    await check("live");
    await store.close();
    ({ store, log } = await open(dir, opts));
    await check("reopened");
    await store.close();
  });
});

describe("follow()", () => {
  it("yields records as they are appended, across rollovers, until aborted", async () => {
    const { store, log } = await open(freshDir(), { segmentBytes: 4096 });
    await log.appendBatch(["old 0", "old 1"]);
    const ac = new AbortController();
    const got: string[] = [];
    const seqs: number[] = [];
    const follower = (async () => {
      for await (const r of log.follow({ signal: ac.signal })) {
        got.push(dec.decode(r.data));
        seqs.push(r.seq);
        if (got.length === 300) ac.abort();
      }
    })();
    for (let i = 0; i < 200; i++) {
      await log.append(`new ${i} ${"x".repeat(60)}`);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await log.appendBatch(range(100, 200).map((i) => `new ${i} ${"x".repeat(60)}`));
    await follower; // ends on abort
    assert.deepEqual(seqs, range(300, 2));
    assert.equal(got[0], `new 0 ${"x".repeat(60)}`);
    assert.ok(log.segmentCount > 3, "the follower should have crossed segments");
    // More appends after the abort do not revive it.
    await log.append("later");
    assert.equal(got.length, 300);
    await store.close();
  });

  it("from a past sequence number: history first, then new records", async () => {
    const { store, log } = await open(freshDir());
    await log.appendBatch(["a", "b", "c"]);
    const ac = new AbortController();
    const out: string[] = [];
    const done = (async () => {
      for await (const r of log.follow({ from: 1, signal: ac.signal })) {
        out.push(dec.decode(r.data));
        if (out.length === 4) ac.abort();
      }
    })();
    await log.append("d");
    await log.append("e");
    await done;
    assert.deepEqual(out, ["b", "c", "d", "e"]);
    await store.close();
  });

  it("read({ follow: true }) ends when the log closes; an already-aborted signal yields nothing", async () => {
    const { store, log } = await open(freshDir());
    await log.append("0");
    const got: number[] = [];
    const follower = (async () => {
      for await (const r of log.read({ from: 0, follow: true })) got.push(r.seq);
    })();
    await log.append("1");
    await new Promise((r) => setTimeout(r, 5));
    await log.append("2");
    const ac = new AbortController();
    ac.abort();
    assert.deepEqual(await collect(log.follow({ from: 0, signal: ac.signal })), []);
    await store.close();
    await follower; // must end, not hang
    assert.deepEqual(got, [0, 1, 2]);
  });

  it("a waiting follower ends on abort without any append", async () => {
    const { store, log } = await open(freshDir());
    const ac = new AbortController();
    const it = log.follow({ signal: ac.signal });
    const next = it.next();
    setTimeout(() => ac.abort(), 5);
    assert.deepEqual(await next, { value: undefined, done: true });
    await store.close();
  });
});

describe("retention: truncateBefore", () => {
  it("deletes whole segments below seq, never the active one; reads start at firstSeq", async () => {
    const dir = freshDir();
    let { store, log } = await open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 400; i++) await log.append(bytesFor(i));
    const before = segFiles(dir);
    const firsts = before.map((f) => Number(f.slice(0, 20)));
    assert.ok(firsts.length >= 10);

    await log.truncateBefore(0);
    assert.equal(log.firstSeq, 0);
    assert.deepEqual(segFiles(dir), before);

    // Just below a segment's first record: the segment before it still holds one record < seq.
    const cut = firsts[4];
    await log.truncateBefore(cut - 1);
    assert.equal(log.firstSeq, firsts[3]);
    await log.truncateBefore(cut);
    assert.equal(log.firstSeq, cut);
    assert.deepEqual(segFiles(dir), before.slice(4));
    assert.equal(log.segmentCount, before.length - 4);

    // In the middle of a segment: that segment stays.
    await log.truncateBefore(firsts[6] + 2);
    assert.equal(log.firstSeq, firsts[6]);
    assert.equal(log.segmentCount, before.length - 6);

    const recs = await collect(log.read({ from: 0 }));
    assert.deepEqual(seqsOf(recs), range(400 - firsts[6], firsts[6]));
    recs.forEach((r) => assert.deepEqual(r.data, bytesFor(r.seq)));
    assert.deepEqual(seqsOf(await collect(log.read({ from: 3, to: firsts[6] + 2 }))), [
      firsts[6],
      firsts[6] + 1,
    ]);

    // Far beyond the end: everything but the active segment goes; appends continue.
    await log.truncateBefore(10_000);
    assert.equal(log.segmentCount, 1);
    assert.equal(segFiles(dir).length, 1);
    assert.equal(log.firstSeq, firsts.at(-1));
    assert.equal(log.nextSeq, 400);
    assert.equal(await log.append(bytesFor(400)), 400);
    let total = 0;
    for (const f of segFiles(dir)) total += statSync(join(dir, "ev", f)).size;
    assert.equal(log.byteSize, total);

    await store.close();
    ({ store, log } = await open(dir, { segmentBytes: 4096 }));
    assert.equal(log.firstSeq, firsts.at(-1));
    assert.deepEqual(
      seqsOf(await collect(log.read({ from: 0 }))),
      range(401 - firsts.at(-1)!, firsts.at(-1)),
    );
    await store.close();
  });

  it("with only the active segment (or right after a rollover) nothing is deleted", async () => {
    const dir = freshDir();
    const { store, log } = await open(dir, { segmentBytes: 4096 });
    await log.truncateBefore(5);
    assert.equal(log.firstSeq, 0);
    for (let i = 0; i < 20; i++) await log.append(bytesFor(i));
    await log.truncateBefore(100);
    assert.equal(log.segmentCount, 1);
    // Start a rollover and truncate in the same turn, before the old segment is sealed.
    const appends = range(40, 20).map((i) => log.append(bytesFor(i)));
    const t = log.truncateBefore(1000);
    await Promise.all([...appends, t]);
    await log.truncateBefore(1000);
    assert.equal(log.segmentCount, 1);
    assert.equal(log.nextSeq, 60);
    assert.equal((await collect(log.read({ from: 0 })))[0].seq, log.firstSeq);
    await store.close();
  });

  it("rejects a sequence number that is not a whole number >= 0", async () => {
    const { store, log } = await open(freshDir());
    for (const bad of [-1, 0.5, NaN, Infinity, "3" as unknown as number]) {
      await assert.rejects(log.truncateBefore(bad), InvalidArgumentError, String(bad));
    }
    await store.close();
  });

  it("a reader racing truncateBefore yields correct records, or stops with a RECORDS_REMOVED error", async () => {
    const { store, log } = await open(freshDir(), { segmentBytes: 4096 });
    for (let i = 0; i < 300; i++) await log.append(bytesFor(i));
    const seen: number[] = [];
    let error: unknown = null;
    try {
      for await (const r of log.read({ from: 0 })) {
        assert.deepEqual(r.data, bytesFor(r.seq));
        seen.push(r.seq);
        if (seen.length === 10) await log.truncateBefore(250);
      }
    } catch (err) {
      error = err;
    }
    assert.deepEqual(seen, range(seen.length));
    if (error !== null) {
      assert.ok(error instanceof KhipuError && error.code === "RECORDS_REMOVED", String(error));
    } else assert.equal(seen.length, 300);
    assert.ok(log.firstSeq > 200);
    await store.close();
  });
});

describe("reopening after every operation gives identical contents", () => {
  it("append, batch, rollover, truncateBefore, sync, empty record, idle reopen", async () => {
    const dir = freshDir();
    const model: Uint8Array[] = []; // by seq
    let first = 0;
    const opts: StoreOptions = { segmentBytes: 4096, syncPolicy: SyncPolicy.everyN(16) };
    let { store, log } = await open(dir, opts);
    let step = 0;
    const reopen = async (what: string) => {
      const segs = log.segmentCount;
      await store.close();
      ({ store, log } = await open(dir, opts));
      step++;
      const label = `after ${what} (step ${step})`;
      assert.equal(log.firstSeq, first, label);
      assert.equal(log.nextSeq, model.length, label);
      assert.equal(log.segmentCount, segs, label);
      assert.equal(log.openReport.truncatedBytes, 0, label);
      const recs = await collect(log.read({ from: 0 }));
      assert.deepEqual(seqsOf(recs), range(model.length - first, first), label);
      recs.forEach((r) => assert.deepEqual(r.data, model[r.seq], `${label}: record ${r.seq}`));
    };
    await reopen("nothing");
    model.push(bytesFor(0));
    await log.append(model[0]);
    await reopen("append");
    const batch = range(5, 1).map((i) => bytesFor(i, 50));
    model.push(...batch);
    await log.appendBatch(batch);
    await reopen("appendBatch");
    const more = range(80, 6).map((i) => bytesFor(i));
    model.push(...more);
    await Promise.all(more.map((b) => log.append(b)));
    assert.ok(log.segmentCount > 1);
    await reopen("rollover");
    model.push(new Uint8Array(0));
    await log.append(new Uint8Array(0));
    await reopen("empty record");
    await log.truncateBefore(50);
    first = log.firstSeq;
    assert.ok(first > 0 && first <= 50);
    await reopen("truncateBefore");
    model.push(enc.encode("synced"));
    await log.append("synced");
    await log.sync();
    await reopen("sync");
    model.push(bytesFor(99));
    await log.append(model.at(-1)!);
    await store.sync();
    await reopen("store.sync");
    await reopen("idle reopen");
    await store.close();
  });
});

describe("a failed write leaves the log usable", () => {
  it("ENOSPC halfway through a flush: those appends reject, later ones reuse their seqs, reopen is clean", async () => {
    const sim = new SimPlatform();
    const faulty = new FaultyPlatform(sim);
    const opts: StoreOptions = { platform: faulty, syncPolicy: SyncPolicy.everyN(4) };
    const s1 = await Store.open("/s", opts);
    const log = await s1.log("ev");
    await log.appendBatch(["a", "b"]);
    faulty.inject({ op: ["writeAt", "writevAt"], code: "ENOSPC", partial: 10 });
    const failed = await Promise.allSettled([log.append("c"), log.append("d")]);
    for (const r of failed) {
      assert.equal(r.status, "rejected");
      assert.ok((r as PromiseRejectedResult).reason instanceof NoSpaceError);
    }
    assert.equal(log.nextSeq, 2);
    assert.equal(await log.append("e"), 2);
    const recs = await collect(log.read());
    assert.deepEqual(recs.map((r) => dec.decode(r.data)), ["a", "b", "e"]);
    await s1.close();
    const s2 = await Store.open("/s", { ...opts, platform: sim.crash("all") });
    const l2 = await s2.log("ev");
    assert.equal(l2.openReport.truncatedBytes, 0);
    assert.deepEqual((await collect(l2.read())).map((r) => dec.decode(r.data)), ["a", "b", "e"]);
    await s2.close();
  });
});
