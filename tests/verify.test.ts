// verify (`log.verify()`, `store.verify()`, src/verify*.ts): a clean log is ok with exact figures;
// each kind of damage gives its problem (file, offset, seq) and the records still found are
// counted: a flipped byte in a sealed and in the newest segment (the walk going on at the next
// index entry or the mark), a damaged seal, damaged and wrong stored index entries, a deleted
// middle segment (a log that cannot open still gets its report), a truncated sealed segment, a
// foreign segment. What is not damage: a declared gap (listed, and `log.gaps` / cursor lag agree),
// a torn tail a crash left (verify's end is recovery's), a newest segment being created. Progress
// and abort; version-1 stores; and a read-only store verifying beside a writer in this process.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setImmediate } from "node:timers";
import { fileURLToPath } from "node:url";
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  NotFoundError,
  Store,
  type StoreOptions,
  SyncPolicy,
  type VerifyProgress,
  type VerifyReport,
} from "../mod.ts";
import { CRASH_MODES, SimPlatform } from "../testing.ts";
import type { Platform } from "../src/platform/types.ts";
import { segmentFileName } from "../src/segment.ts";
import { realDisk } from "./helpers.ts";
import {
  buildV2Segment,
  decodeV2Segment,
  INDEX_AT,
  SLOT_A_AT,
  SLOT_B_AT,
  v2Entry,
  type V2FrameOk,
  v2Slot,
} from "./spec_codec.ts";

const disk = realDisk("verify");
const FIXTURES = fileURLToPath(new URL("./fixtures/v1/", import.meta.url));

/** Record `i`: its number, then filler of a length that varies (10 to 209 bytes). */
const record = (i: number) => `record ${i} ${"x".repeat(10 + ((i * 37) % 200))}`;
/** A record of about 1 KiB, for segments big enough to hold index entries. */
const bigRecord = (i: number) => `${record(i)} ${"y".repeat(900)}`;
/** Records in the small stores: 4 to 5 segments of 4 KiB. */
const N = 120;

interface Built {
  sim: SimPlatform;
  /** The log's directory. */
  dir: string;
  /** Its segment files, oldest first. */
  paths: string[];
  records: number;
}

/** Segment files of `dir` in the simulator, oldest first. */
function segmentsIn(sim: SimPlatform, dir: string): string[] {
  return sim.listFiles().filter((p) => p.startsWith(`${dir}/`) && p.endsWith(".seg"));
}

/**
 * A store `/s` in a fresh simulator whose log "l" holds `n` records appended one by one, each
 * durable (so the newest segment's mark covers them all), closed.
 */
async function build(n: number, opts: StoreOptions = {}): Promise<Built> {
  const sim = new SimPlatform();
  const store = await Store.open("/s", {
    platform: sim,
    segmentBytes: 4096,
    syncPolicy: SyncPolicy.always(),
    ...opts,
  });
  const log = await store.log("l");
  for (let i = 0; i < n; i++) await log.append(record(i));
  await store.close();
  return { sim, dir: "/s/l", paths: segmentsIn(sim, "/s/l"), records: n };
}

/**
 * A fresh simulator with store `/s` whose log "l" (1 MiB segments, each append durable) holds
 * `batches` batches of 10 records of about 1 KiB, closed: about 1000 records to a segment, with
 * index entries every 64 KiB (stored ones in the newest segment).
 */
async function buildBig(batches: number): Promise<{ sim: SimPlatform; paths: string[] }> {
  const sim = new SimPlatform();
  const store = await Store.open("/s", {
    platform: sim,
    segmentBytes: 1 << 20,
    syncPolicy: SyncPolicy.always(),
  });
  const log = await store.log("l");
  for (let i = 0; i < batches; i++) await log.appendBatch(range(10, 10 * i).map(bigRecord));
  await store.close();
  return { sim, paths: segmentsIn(sim, "/s/l") };
}

/** `store.verify()` of a read-only store on `platform` at `dir`, the one log's report. */
async function verifyOnly(platform: Platform, dir = "/s"): Promise<VerifyReport> {
  const store = await Store.open(dir, { platform, readOnly: true });
  try {
    const r = await store.verify();
    assert.equal(r.logs.length, 1);
    assert.equal(r.ok, r.logs[0].ok);
    return r.logs[0];
  } finally {
    await store.close();
  }
}

/** The frames of a segment file, decoded by the format spec (tests/spec_codec.ts). */
function framesOf(bytes: Uint8Array, sealed: boolean) {
  return decodeV2Segment(bytes, sealed);
}

/** Flips the last payload byte of record `seq` in `path`; returns that frame. */
function flipRecord(sim: SimPlatform, path: string, sealed: boolean, seq: number): V2FrameOk {
  const bytes = sim.fileBytes(path)!;
  const f = framesOf(bytes, sealed).frames.find((x) => x.seq === seq);
  assert.ok(f, `record ${seq} is in ${path}`);
  bytes[f.offset + f.size - 1] ^= 0x40;
  sim.setFileBytes(path, bytes);
  return f;
}

/** Seq of the first index point (entry or mark) after `offset`: where the walk goes on. */
function resumeSeq(points: { offset: number; seq: number }[], offset: number): number {
  const p = points.filter((x) => x.offset > offset).sort((a, b) => a.offset - b.offset)[0];
  assert.ok(p, `an index point after offset ${offset}`);
  return p.seq;
}

describe("verify: a clean log", () => {
  it("is ok, with its exact records, segments, bytes and seq range", async () => {
    const b = await build(N);
    assert.ok(b.paths.length >= 4, `${b.paths.length} segments`);
    const r = await verifyOnly(b.sim);
    const bytes = b.paths.reduce((n, p) => n + b.sim.fileBytes(p)!.length, 0);
    assert.deepEqual(
      { ...r, durationMs: 0 },
      {
        log: "l",
        ok: true,
        records: N,
        segments: b.paths.length,
        bytes,
        durationMs: 0,
        firstSeq: 0,
        nextSeq: N,
        gaps: [],
        problems: [],
      },
    );
    assert.ok(r.durationMs >= 0);
  });

  it("log.verify() in the writer's store, and log.segments() agree with the files", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/s", { platform: sim, segmentBytes: 4096 });
    const log = await store.log("l");
    for (let i = 0; i < 40; i++) await log.append(record(i));
    const r = await log.verify();
    const segs = log.segments();
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.equal(r.records, 40);
    assert.equal(r.nextSeq, log.nextSeq);
    assert.equal(r.segments, log.segmentCount);
    assert.equal(r.bytes, log.byteSize);
    assert.deepEqual(segs.map((s) => s.path), segmentsIn(sim, "/s/l"));
    assert.deepEqual(segs.map((s) => s.sealed), segs.map((_, i) => i < segs.length - 1));
    for (let i = 0; i + 1 < segs.length; i++) assert.equal(segs[i].endSeq, segs[i + 1].firstSeq);
    assert.equal(segs.at(-1)!.endSeq, 40);
    for (const s of segs) {
      assert.ok(s.firstTimestamp !== null && s.lastTimestamp !== null);
      assert.ok(s.firstTimestamp <= s.lastTimestamp);
      assert.equal(s.bytes, sim.fileBytes(s.path)!.length);
    }
    assert.deepEqual(log.gaps, []);
    await store.close();
    await assert.rejects(log.verify(), ClosedError);
  });

  it("an empty log, and an empty newest segment", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/s", { platform: sim, segmentBytes: 4096 });
    const log = await store.log("l");
    let r = await log.verify();
    assert.deepEqual([r.ok, r.records, r.segments, r.firstSeq, r.nextSeq], [true, 0, 1, 0, 0]);
    await log.append("one");
    await log.roll();
    r = await log.verify();
    assert.deepEqual([r.ok, r.records, r.segments, r.nextSeq], [true, 1, 2, 1]);
    assert.deepEqual(log.segments().at(-1), {
      path: "/s/l/00000000000000000001.seg",
      firstSeq: 1,
      endSeq: 1,
      bytes: sim.fileBytes("/s/l/00000000000000000001.seg")!.length,
      sealed: false,
      firstTimestamp: null,
      lastTimestamp: null,
    });
    await store.close();
  });

  it("on the real disk", async () => {
    const dir = join(disk.tempDir(), "s");
    const store = await Store.open(dir, { segmentBytes: 4096 });
    const log = await store.log("l");
    for (let i = 0; i < 30; i++) await log.append(record(i));
    await store.close();
    const r = await verifyOnly(await disk.platform(), dir);
    assert.deepEqual([r.ok, r.records, r.nextSeq], [true, 30, 30], JSON.stringify(r.problems));
  });
});

describe("verify: damage", () => {
  it("a flipped byte in a sealed segment: one problem at that record", async () => {
    const b = await build(N);
    const path = b.paths[1];
    const seg = framesOf(b.sim.fileBytes(path)!, true);
    const f = flipRecord(b.sim, path, true, seg.frames[2].seq);
    const r = await verifyOnly(b.sim);
    assert.equal(r.ok, false);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    const [p] = r.problems;
    assert.deepEqual([p.path, p.offset, p.seq], [path, f.offset, f.seq]);
    assert.match(p.reason, /checksum/);
    // No index entry after it in a 4 KiB segment: the rest of that segment is not counted.
    assert.equal(r.records, N - (seg.seal!.seq - f.seq));
    assert.equal(r.nextSeq, N);
  });

  it("a flipped byte in a big sealed segment: the walk goes on at the next seal index entry", async () => {
    const b = await buildBig(200);
    const path = b.paths[0];
    assert.ok(b.paths.length >= 2);
    const seg = framesOf(b.sim.fileBytes(path)!, true);
    const entries = seg.seal!.body.entries;
    assert.ok(entries.length >= 4, `${entries.length} seal index entries`);
    const victim = seg.frames.find((x) => x.offset > entries[1].offset + 100)!;
    flipRecord(b.sim, path, true, victim.seq);
    const r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.deepEqual([r.problems[0].offset, r.problems[0].seq], [victim.offset, victim.seq]);
    assert.equal(r.records, 2000 - (resumeSeq(entries, victim.offset) - victim.seq));
    assert.equal(r.nextSeq, 2000);
  });

  it("a flipped byte in the newest segment before its mark: one problem, then on from the mark", async () => {
    const b = await build(N);
    const path = b.paths.at(-1)!;
    const seg = framesOf(b.sim.fileBytes(path)!, false);
    assert.equal(seg.mark.nextSeq, N, "the mark covers every record");
    const f = flipRecord(b.sim, path, false, seg.frames[1].seq);
    const r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    const [p] = r.problems;
    assert.deepEqual([p.path, p.offset, p.seq], [path, f.offset, f.seq]);
    // No stored index entry in a 4 KiB segment: on from the mark, at its end.
    assert.equal(r.records, f.seq);
    assert.equal(r.nextSeq, N);
    // A reader meets the same damage.
    const store = await Store.open("/s", { platform: b.sim, readOnly: true });
    const read = async () => {
      for await (const _ of (await store.log("l")).read()) { /* to the damage */ }
    };
    await assert.rejects(read, (e) => e instanceof CorruptionError && e.seq === f.seq);
    await store.close();
  });

  it("a flipped byte in a big newest segment: on at the next stored index entry", async () => {
    const b = await buildBig(60);
    const [path] = b.paths;
    const seg = framesOf(b.sim.fileBytes(path)!, false);
    assert.ok(seg.entries.length >= 3, `${seg.entries.length} stored entries`);
    const victim = seg.frames.find((x) => x.offset > seg.entries[1].offset + 100)!;
    flipRecord(b.sim, path, false, victim.seq);
    const r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    const points = [...seg.entries, { offset: seg.mark.durableEnd, seq: seg.mark.nextSeq }];
    assert.equal(r.records, 600 - (resumeSeq(points, victim.offset) - victim.seq));
  });

  it("a mark that does not fall at a batch end, and one past the end of the file", async () => {
    const b = await build(N);
    const path = b.paths.at(-1)!;
    const good = b.sim.fileBytes(path)!;
    const seg = framesOf(good, false);
    const generation = seg.mark.generation + 1;
    const slotAt = generation % 2 === 1 ? SLOT_A_AT : SLOT_B_AT;
    const withMark = (durableEnd: number) => {
      const bytes = good.slice();
      const slot = v2Slot(seg.header.logId, seg.header.firstSeq, {
        ...seg.mark,
        generation,
        durableEnd,
      });
      bytes.set(slot, slotAt);
      b.sim.setFileBytes(path, bytes);
    };
    const last = seg.frames.at(-1)!;
    withMark(last.offset + 3); // inside the last frame
    let r = await verifyOnly(b.sim);
    assert.deepEqual(r.problems.map((p) => [p.path, p.offset]), [[path, slotAt]]);
    assert.match(r.problems[0].reason, /mark slot says .* no batch of the frames ends there/);
    assert.equal(r.records, N);
    withMark(good.length + 4096);
    r = await verifyOnly(b.sim);
    assert.deepEqual(r.problems.map((p) => [p.path, p.offset]), [[path, slotAt]]);
    assert.match(r.problems[0].reason, /durable data missing/);
  });

  it("a damaged seal: one problem at the seal, every record still counted", async () => {
    const b = await build(N);
    const path = b.paths[1];
    const bytes = b.sim.fileBytes(path)!;
    const seal = framesOf(bytes, true).seal!;
    bytes[seal.offset + 12] ^= 1; // inside the seal's payload
    b.sim.setFileBytes(path, bytes);
    const r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.deepEqual([r.problems[0].path, r.problems[0].offset], [path, seal.offset]);
    assert.match(r.problems[0].reason, /seal/);
    assert.deepEqual([r.records, r.nextSeq], [N, N]);
  });

  it("a damaged stored index entry, and one that names no frame start", async () => {
    const b = await buildBig(60);
    const [path] = b.paths;
    const good = b.sim.fileBytes(path)!;
    const seg = framesOf(good, false);
    assert.ok(seg.entries.length >= 2);

    const flipped = good.slice();
    flipped[INDEX_AT + 3] ^= 1; // stored entry 1's seq: its CRC fails
    b.sim.setFileBytes(path, flipped);
    let r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.deepEqual([r.problems[0].path, r.problems[0].offset], [path, INDEX_AT]);
    assert.match(r.problems[0].reason, /stored index entry 1/);
    assert.equal(r.records, 600, "the frames are all there");

    // A valid entry (its CRC right) that points 7 bytes into its frame.
    const e = seg.entries[1];
    const moved = good.slice();
    const logId = seg.header.logId;
    moved.set(v2Entry(logId, 0, { ...e, offset: e.offset + 7 }), INDEX_AT);
    b.sim.setFileBytes(path, moved);
    r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.deepEqual([r.problems[0].offset, r.problems[0].seq], [INDEX_AT, e.seq]);
    assert.match(r.problems[0].reason, /stored index entry 1 points at offset \d+, inside a frame/);
    assert.equal(r.records, 600);
  });

  it("a deleted middle segment: the log cannot open, verify names the file after the hole", async () => {
    const b = await build(N);
    const gone = b.paths[1];
    const goneRecords = framesOf(b.sim.fileBytes(gone)!, true).frames.length;
    const endBefore = framesOf(b.sim.fileBytes(b.paths[0])!, true).seal!.seq;
    await b.sim.unlink(gone);
    const writer = await Store.open("/s", { platform: b.sim });
    await assert.rejects(writer.log("l"), CorruptionError);
    const report = await writer.verify();
    await writer.close();
    const [r] = report.logs;
    assert.equal(report.ok, false);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.deepEqual([r.problems[0].path, r.problems[0].seq], [b.paths[2], endBefore]);
    assert.deepEqual([r.records, r.segments, r.nextSeq], [N - goneRecords, b.paths.length - 1, N]);
    assert.deepEqual(r.gaps, [], "a hole nobody declared is no gap");
  });

  it("a truncated sealed segment: its records up to the cut are counted", async () => {
    const b = await build(N);
    const path = b.paths[1];
    const bytes = b.sim.fileBytes(path)!;
    const seg = framesOf(bytes, true);
    const cut = seg.frames[3];
    b.sim.setFileBytes(path, bytes.subarray(0, cut.offset + 5));
    const r = await verifyOnly(b.sim);
    assert.ok(r.problems.length >= 1 && r.problems.every((p) => p.path === path));
    assert.ok(
      r.problems.some((p) => p.offset === cut.offset && p.seq === cut.seq),
      JSON.stringify(r.problems),
    );
    assert.equal(r.records, N - (seg.seal!.seq - cut.seq));
  });

  it("a segment of another log in the middle: named, its records not counted", async () => {
    const b = await build(N);
    const path = b.paths[1];
    const ours = framesOf(b.sim.fileBytes(path)!, true);
    // The same seqs and chain, written by another log (another log id).
    const theirs = buildV2Segment({
      logId: crypto.getRandomValues(new Uint8Array(16)),
      firstSeq: ours.header.firstSeq,
      indexCapacity: 0,
      baseTimestamp: ours.header.baseTimestamp,
      batches: ours.frames.map((f) => [{ data: f.payload, delta: f.delta }]),
      seal: { delta: 0 },
    });
    b.sim.setFileBytes(path, theirs.bytes);
    const r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.deepEqual([r.problems[0].path, r.problems[0].offset], [path, 32]);
    assert.match(r.problems[0].reason, /another log/);
    assert.equal(r.records, N - ours.frames.length);
  });

  it("a segment name that is a directory", async () => {
    const b = await build(20);
    await b.sim.mkdir(`/s/l/${segmentFileName(1000)}`);
    const r = await verifyOnly(b.sim);
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.equal(r.problems[0].path, `/s/l/${segmentFileName(1000)}`);
    assert.equal(r.records, 20);
  });

  it("a flipped byte in a sealed segment on the real disk", async () => {
    const dir = join(disk.tempDir(), "s");
    const store = await Store.open(dir, { segmentBytes: 4096 });
    const log = await store.log("l");
    for (let i = 0; i < N; i++) await log.append(record(i));
    await store.close();
    const path = join(dir, "l", segmentFileName(0));
    const bytes = new Uint8Array(readFileSync(path));
    const f = framesOf(bytes, true).frames[1];
    bytes[f.offset + f.size - 1] ^= 1;
    writeFileSync(path, bytes);
    const r = await verifyOnly(await disk.platform(), dir);
    assert.deepEqual(
      r.problems.map((p) => [p.path, p.offset, p.seq]),
      [[path, f.offset, f.seq]],
    );
  });
});

describe("verify: not damage", () => {
  it("a declared gap is listed, and log.gaps, reads and cursor lag pass over it", async () => {
    const sim = new SimPlatform();
    const logId = crypto.getRandomValues(new Uint8Array(16));
    const rec = (n: number) => ({ data: new TextEncoder().encode(`r${n}`), delta: 1 });
    const first = buildV2Segment({
      logId,
      firstSeq: 0,
      baseTimestamp: 1_000,
      batches: [[rec(0)], [rec(1), rec(2)]],
      seal: { delta: 0 },
    });
    const second = buildV2Segment({
      logId,
      firstSeq: 10,
      prevEndSeq: 3, // repair set seqs 3..9 aside
      baseTimestamp: first.layout.lastTimestamp,
      batches: [[rec(10)], [rec(11)]],
      slots: (l) => ({ A: l.markAfter(2, 1) }),
    });
    await sim.mkdir("/s");
    await sim.mkdir("/s/l");
    sim.setFileBytes(`/s/l/${segmentFileName(0)}`, first.bytes);
    sim.setFileBytes(`/s/l/${segmentFileName(10)}`, second.bytes);
    const r = await verifyOnly(sim);
    assert.deepEqual(
      [r.ok, r.records, r.firstSeq, r.nextSeq, r.gaps],
      [true, 5, 0, 12, [{ from: 3, to: 10 }]],
      JSON.stringify(r.problems),
    );
    const store = await Store.open("/s", { platform: sim });
    const log = await store.log("l");
    assert.deepEqual(log.gaps, [{ from: 3, to: 10 }]);
    assert.deepEqual(log.segments().map((s) => [s.firstSeq, s.endSeq]), [[0, 3], [10, 12]]);
    const seqs: number[] = [];
    for await (const x of log.read()) seqs.push(x.seq);
    assert.deepEqual(seqs, [0, 1, 2, 10, 11]);
    const cursor = await log.cursor("c");
    assert.equal(cursor.lag, 5, "12 - 0, less the 7 seqs of the gap");
    await cursor.commit(1);
    assert.deepEqual(await log.cursors(), [{ name: "c", position: 2, lag: 3 }]);
    await cursor.commit(10);
    assert.equal(cursor.lag, 1);
    const again = await log.verify();
    assert.deepEqual([again.ok, again.gaps], [true, [{ from: 3, to: 10 }]]);
    await store.close();
  });

  it("after repair: ok, what repair set aside is a gap, no intact record less", async () => {
    for (const damage of ["flipped byte", "deleted segment"] as const) {
      const b = await buildBig(250);
      if (damage === "deleted segment") await b.sim.unlink(b.paths[1]);
      else flipRecord(b.sim, b.paths[0], true, 505);
      const before = await verifyOnly(b.sim);
      assert.equal(before.ok, false, damage);
      const store = await Store.open("/s", { platform: b.sim, repair: true });
      const log = await store.log("l");
      const after = await log.verify();
      await store.close();
      assert.equal(after.ok, true, `${damage}: ${JSON.stringify(after.problems)}`);
      assert.ok(after.gaps.length > 0, damage);
      assert.deepEqual(after.gaps, log.gaps, damage);
      assert.deepEqual([after.firstSeq, after.nextSeq], [before.firstSeq, before.nextSeq]);
      assert.ok(after.records >= before.records, `${damage}: ${after.records}`);
      const again = await verifyOnly(b.sim); // a read-only store sees the same
      assert.deepEqual({ ...again, durationMs: 0 }, { ...after, durationMs: 0 }, damage);
    }
  });

  it("a torn tail a crash left is no problem: verify ends where recovery ends", async () => {
    for (const mode of CRASH_MODES) {
      for (let seed = 1; seed <= 6; seed++) {
        const sim = new SimPlatform();
        const store = await Store.open("/s", {
          platform: sim,
          segmentBytes: 8192,
          syncPolicy: SyncPolicy.everyN(7),
        });
        const log = await store.log("l");
        for (let i = 0; i < 40; i++) {
          void log.appendBatch([record(i), record(i + 1)]).catch(() => {});
        }
        await log.appendBatch(["last"]);
        const after = sim.crash(mode, seed);
        await store.close().catch(() => {});
        const r = await verifyOnly(after);
        assert.equal(r.ok, true, `${mode} ${seed}: ${JSON.stringify(r.problems)}`);
        const reopened = await Store.open("/s", { platform: after });
        const recovered = await reopened.log("l");
        assert.equal(r.nextSeq, recovered.nextSeq, `${mode} ${seed}: where the log ends`);
        assert.equal(r.records, recovered.nextSeq - recovered.firstSeq, `${mode} ${seed}`);
        await reopened.close();
      }
    }
  });

  it("garbage after the newest segment's last batch, and a newest segment being created", async () => {
    const b = await build(30);
    const newest = b.paths.at(-1)!;
    const bytes = b.sim.fileBytes(newest)!;
    const end = framesOf(bytes, false).end;
    const torn = bytes.slice(0, end + 100);
    torn.fill(0xa5, end);
    b.sim.setFileBytes(newest, torn);
    let r = await verifyOnly(b.sim);
    assert.deepEqual([r.ok, r.records, r.nextSeq], [true, 30, 30], JSON.stringify(r.problems));

    const store = await Store.open("/s", { platform: b.sim, segmentBytes: 4096 });
    await (await store.log("l")).roll(); // cuts the tail, seals, starts segment 30
    await store.close();
    b.sim.setFileBytes(`/s/l/${segmentFileName(30)}`, new Uint8Array(0)); // its header not yet written
    r = await verifyOnly(b.sim);
    assert.deepEqual([r.ok, r.records, r.nextSeq], [true, 30, 30], JSON.stringify(r.problems));
  });

  it("version-1 stores: ok, with the records the v1 code wrote", async () => {
    for (const name of ["basic", "retained", "multi", "empty-newest", "torn"]) {
      const dir = join(disk.tempDir(), "store");
      cpSync(join(FIXTURES, name, "store"), dir, { recursive: true });
      const expected = JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8")) as {
        logs: Record<string, { firstSeq: number; nextSeq: number; records: unknown[] }>;
      };
      const store = await Store.open(dir, { readOnly: true });
      const report = await store.verify();
      await store.close();
      assert.equal(report.ok, true, `${name}: ${JSON.stringify(report.logs)}`);
      const got = Object.fromEntries(
        report.logs.map((l) => [l.log, [l.firstSeq, l.nextSeq, l.records]]),
      );
      const want = Object.fromEntries(
        Object.entries(expected.logs).map((
          [k, v],
        ) => [k, [v.firstSeq, v.nextSeq, v.records.length]]),
      );
      assert.deepEqual(got, want, name);
    }
  });

  it("a v1 newest segment damaged before a valid frame is a problem", async () => {
    const dir = join(disk.tempDir(), "store");
    cpSync(join(FIXTURES, "basic", "store"), dir, { recursive: true });
    const path = join(dir, "events", segmentFileName(35));
    const bytes = new Uint8Array(readFileSync(path));
    bytes[32 + 28] ^= 1; // the first frame's payload (after its 28-byte header), frames after it
    writeFileSync(path, bytes);
    const r = await verifyOnly(await disk.platform(), dir);
    assert.deepEqual(r.problems.map((p) => [p.path, p.offset, p.seq]), [[path, 32, 35]]);
    truncateSync(path, 32 + 20); // now nothing follows: a torn tail
    const torn = await verifyOnly(await disk.platform(), dir);
    assert.deepEqual([torn.ok, torn.nextSeq], [true, 35]);
  });
});

describe("verify: progress, abort, options", () => {
  it("progress only grows, at most 256 KiB apart, and ends at the totals", async () => {
    const b = await buildBig(300);
    const seen: VerifyProgress[] = [];
    const reader = await Store.open("/s", { platform: b.sim, readOnly: true });
    const report = await reader.verify({ onProgress: (p) => seen.push(p) });
    await reader.close();
    const [r] = report.logs;
    assert.ok(r.segments >= 3 && seen.length > 2 * r.segments, `${seen.length} calls`);
    for (let i = 1; i < seen.length; i++) {
      const [a, z] = [seen[i - 1], seen[i]];
      assert.ok(z.bytesDone >= a.bytesDone && z.records >= a.records, `call ${i}`);
      assert.ok(z.segmentsDone >= a.segmentsDone);
      assert.ok(z.bytesDone - a.bytesDone <= (1 << 20) + 300_000, "no long silence");
      assert.deepEqual([z.log, z.bytesTotal, z.segmentsTotal], ["l", r.bytes, r.segments]);
    }
    const last = seen.at(-1)!;
    assert.deepEqual(
      [last.bytesDone, last.segmentsDone, last.records],
      [r.bytes, r.segments, r.records],
    );
  });

  it("an abort rejects with the signal's reason", async () => {
    const b = await buildBig(200);
    const store = await Store.open("/s", { platform: b.sim });
    const log = await store.log("l");
    const stop = new AbortController();
    const why = new Error("enough");
    let calls = 0;
    const run = log.verify({
      signal: stop.signal,
      onProgress: () => {
        if (++calls === 2) stop.abort(why);
      },
    });
    await assert.rejects(run, (e) => e === why);
    assert.equal(calls, 2, "nothing after the abort");
    await assert.rejects(log.verify({ signal: AbortSignal.abort(why) }), (e) => e === why);
    await store.close();
  });

  it("bad options and names are refused before anything is read", async () => {
    const b = await build(5);
    const store = await Store.open("/s", { platform: b.sim, readOnly: true });
    const log = await store.log("l");
    await assert.rejects(store.verify({ logs: ["l", "nope"] }), NotFoundError);
    await assert.rejects(store.verify({ logs: ["../x"] }), InvalidArgumentError);
    await assert.rejects(store.verify({ logs: "l" as never }), InvalidArgumentError);
    await assert.rejects(store.verify({ onprogress: () => {} } as never), InvalidArgumentError);
    await assert.rejects(log.verify({ signal: "now" as never }), InvalidArgumentError);
    await assert.rejects(log.verify({ onProgress: 1 as never }), InvalidArgumentError);
    assert.equal((await store.verify({ logs: [] })).logs.length, 0);
    await store.close();
    await assert.rejects(store.verify(), ClosedError);
  });
});

describe("verify: beside a writer", () => {
  for (const where of ["sim", "disk"] as const) {
    it(`a read-only store verifies while a writer appends, rolls over and retains (${where})`, async () => {
      const platform = where === "sim" ? new SimPlatform() : await disk.platform();
      const dir = where === "sim" ? "/s" : join(disk.tempDir(), "s");
      const writer = await Store.open(dir, {
        platform,
        segmentBytes: 16384,
        syncPolicy: SyncPolicy.everyN(5),
      });
      const log = await writer.log("l", { retention: { maxRecords: 400 } });
      await log.appendBatch(range(20).map(record));
      let writing = true;
      let written = 0;
      const appender = (async () => {
        while (writing) {
          // A turn for other work each time, as real I/O gives (the simulator's is all promises).
          await new Promise((resolve) => setImmediate(resolve));
          await log.appendBatch(range(1 + (written % 7), written).map(record));
          written += 1 + (written % 7);
          if (written % 3 === 0) await log.enforceRetention();
        }
      })();
      const reader = await Store.open(dir, { platform, readOnly: true });
      try {
        /** Verifies during which the writer appended: the point of the test. */
        let overlapped = 0;
        for (let round = 0; round < 20; round++) {
          const before = written;
          const r = await reader.verify();
          assert.equal(r.ok, true, `round ${round}: ${JSON.stringify(r.logs[0].problems)}`);
          assert.ok(r.logs[0].records > 0 && r.logs[0].nextSeq >= 20 + before, `round ${round}`);
          const own = await log.verify();
          assert.equal(own.ok, true, `round ${round}: ${JSON.stringify(own.problems)}`);
          if (written > before) overlapped++;
        }
        assert.ok(overlapped >= 10, `${overlapped} of 20 verifies overlapped appends`);
      } finally {
        writing = false;
        await appender;
        await reader.close();
        await writer.close();
      }
    });
  }
});

/** `n` consecutive numbers from `from`. */
function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}
