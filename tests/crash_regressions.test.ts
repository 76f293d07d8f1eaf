// Minimal reproductions of bugs the crash-point exploration found, kept as tests.
//
// Most were found with format version 1 segments. Where the bug was in the v1 recovery rules,
// which v1 segments still get (a store may hold a v1 newest segment when it is first opened by a
// v2 build), the case is kept as a v1 case: the crash state is built byte by byte from FORMAT.md's
// v1 layout (tests/spec_codec.ts), and the open must then also seal the v1 segment and go on in a
// new v2 segment (or rewrite an empty v1 newest segment as an empty v2 one). Each case also has
// its counterpart for the v2 writer, with offsets read from the files it wrote.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store, SyncPolicy } from "../mod.ts";
import { CRASH_MODES, seededRandom, SimPlatform } from "../src/testing/sim.ts";
import { parseSegmentFileName } from "../src/segment.ts";
import { decodeV1Segment, segName, specFrame, specHeader, specSeal } from "./spec_codec.ts";
import { dv, u64, v2Frames } from "./repair_explorer.ts";
import { concat } from "./helpers.ts";

const DIR = "/store";
const LOG_DIR = `${DIR}/a`;
const TS = 1_700_000_000_000;
/** The v1 header and frame header sizes (FORMAT.md "Version 1"). */
const V1_HEADER = 32;
const V1_FRAME = 28;

async function readSeqs(store: Store, name: string): Promise<number[]> {
  const log = await store.log(name);
  const seqs: number[] = [];
  for await (const r of log.read({ from: log.firstSeq })) seqs.push(r.seq);
  return seqs;
}

/** A simulated disk holding the log directory (durably) and the given segment files. */
async function diskWith(segments: Record<number, Uint8Array>): Promise<SimPlatform> {
  const sim = new SimPlatform();
  await sim.mkdir(DIR);
  await sim.mkdir(LOG_DIR);
  await sim.syncDir("/");
  await sim.syncDir(DIR);
  for (const [first, bytes] of Object.entries(segments)) {
    sim.setFileBytes(`${LOG_DIR}/${segName(Number(first))}`, bytes);
  }
  return sim;
}

/** A v1 segment as the v1 writer laid it out: header, one frame per payload (seq, TS + seq). */
function v1Segment(firstSeq: number, payloads: Uint8Array[], sealed = false): Uint8Array {
  const frames = payloads.map((p, i) => specFrame(1, firstSeq + i, TS + firstSeq + i, p));
  const endSeq = firstSeq + payloads.length;
  const seal = sealed ? [specSeal(endSeq, TS + endSeq, [[firstSeq, V1_HEADER]])] : [];
  return concat(specHeader(firstSeq, 16 << 20), ...frames, ...seal);
}

/** The end of the last frame of a v2 segment file (zeros after it are preallocated space). */
function v2DataEnd(bytes: Uint8Array): number {
  const f = v2Frames(bytes);
  return f.length ? f[f.length - 1].offset + f[f.length - 1].size : dv(bytes).getUint32(24, true);
}

const random = (n: number, seed: number) => {
  const rnd = seededRandom(seed);
  return new Uint8Array(n).map(() => 1 + Math.floor(rnd() * 255));
};

describe("crash regressions", () => {
  // Found by: npm run crash -- --workload everyN-retention --seed 1 --call 45 --mode torn
  // A power cut while the header of a new segment was being written (after its create, before
  // its fdatasync) can leave the header torn with garbage, not only short or zero-filled. The
  // header was never synced and the segment holds no record, so open must recreate it, not fail
  // with CorruptionError.
  it("a newest segment holding only a garbage (torn, never synced) header is recreated", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096, platform: sim };
    let store = await Store.open(DIR, opts);
    const log = await store.log("a");
    while (log.segmentCount < 2) await log.append(new Uint8Array(700).fill(7));
    await store.close();
    const segs = sim.listFiles().filter((p) => p.endsWith(".seg"));
    const newest = segs[segs.length - 1];
    const firstOfNewest = parseSegmentFileName(newest.slice(newest.lastIndexOf("/") + 1))!;
    // The crash state: the new segment's name reached the disk (any journal commit can carry a
    // directory entry), its header write (80 bytes, the whole file at creation) was torn into
    // garbage, and no record follows it.
    const rnd = seededRandom(1);
    const junk = new Uint8Array(80).map(() => Math.floor(rnd() * 256));
    sim.setFileBytes(newest, junk);
    store = await Store.open(DIR, { ...opts, platform: sim.crash("none") });
    const seqs = await readSeqs(store, "a");
    assert.deepEqual(seqs, Array.from({ length: firstOfNewest }, (_, i) => i));
    const again = await store.log("a");
    assert.equal(again.openReport.recreatedSegment, newest);
    assert.equal(await again.append("next"), firstOfNewest);
    await store.close();
  });

  // The same crash state with a v1 newest segment (its 32-byte header torn into garbage): it is
  // recreated as an empty v2 segment under the same name, after the sealed v1 segment.
  it("v1: a newest segment holding only a garbage header is recreated as an empty v2 segment", async () => {
    const rec = (i: number) => new Uint8Array(700).fill(i + 1);
    const seg0 = v1Segment(0, [0, 1, 2, 3, 4].map(rec), true);
    const rnd = seededRandom(1);
    const junk = new Uint8Array(V1_HEADER).map(() => Math.floor(rnd() * 256));
    const sim = await diskWith({ 0: seg0, 5: junk });
    const store = await Store.open(DIR, { syncPolicy: SyncPolicy.always(), platform: sim });
    const log = await store.log("a");
    assert.equal(log.openReport.recreatedSegment, `${LOG_DIR}/${segName(5)}`);
    assert.deepEqual(await readSeqs(store, "a"), [0, 1, 2, 3, 4]);
    assert.equal(await log.append("next"), 5);
    await store.close();
    assert.deepEqual(sim.fileBytes(`${LOG_DIR}/${segName(0)}`), seg0, "the v1 segment unchanged");
    const recreated = sim.fileBytes(`${LOG_DIR}/${segName(5)}`)!;
    assert.equal(dv(recreated).getUint16(8, true), 2, "a v2 segment");
    assert.deepEqual([u64(recreated, 16), u64(recreated, 48)], [5, 5], "firstSeq, prevEndSeq");
  });

  // Found by: npm run crash -- --workload always-big-records --seed 26 --call 58 --mode subset \
  //   --crash-seed 166182801 (a v1 layout)
  // Page-cache write-back is per 4 KiB page and in no particular order: after a power cut, the
  // second page of an un-synced multi-page write can be on disk while the first reads back as
  // zeros. The damaged record's tail (non-zero) then sits between the zero hole and the next
  // valid frame, so "only zeros up to the next valid frame" does not hold, and open failed with
  // CorruptionError although nothing after the hole was ever synced. v1: the lost-write rule
  // cuts it as a torn hole.
  it("v1: a lost first page of an un-synced multi-page write is a torn tail, not corruption", async () => {
    const bytes = v1Segment(0, [random(6000, 2), new Uint8Array(100).fill(9)]);
    assert.equal(bytes.length, V1_HEADER + 2 * V1_FRAME + 6100);
    bytes.fill(0, V1_HEADER, 4096); // page 0 after the (synced) header never reached the disk
    const sim = await diskWith({ 0: bytes });
    const store = await Store.open(DIR, { syncPolicy: SyncPolicy.osManaged(), platform: sim });
    const log = await store.log("a");
    assert.equal(log.nextSeq, 0);
    assert.deepEqual(log.openReport.truncatedAt, { path: `${LOG_DIR}/${segName(0)}`, offset: 32 });
    assert.equal(log.openReport.truncatedBytes, bytes.length - V1_HEADER);
    assert.equal(log.openReport.tornHole, true);
    assert.equal(log.segmentCount, 1);
    assert.equal(await log.append("next"), 0);
    await store.close();
    // The v1 newest segment, empty once cut, was rewritten in place as an empty v2 segment.
    const now = sim.fileBytes(`${LOG_DIR}/${segName(0)}`)!;
    assert.equal(dv(now).getUint16(8, true), 2);
    assert.equal(u64(now, 16), 0);
  });

  // The v2 writer: the same lost first page of an un-synced multi-page write (records written but
  // not synced under osManaged, so no mark vouches for them). The log ends at the last complete
  // batch before the hole; the rest is a torn tail.
  it("v2: a lost first page of an un-synced multi-page write is a torn tail, not corruption", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.osManaged(), platform: sim };
    const store = await Store.open(DIR, opts);
    const log = await store.log("a");
    await log.append(random(6000, 2));
    await log.append(new Uint8Array(100).fill(9)); // resolved, never synced (osManaged)
    const crashed = sim.crash("all"); // what the page cache held
    const seg = `${LOG_DIR}/${segName(0)}`;
    const bytes = crashed.fileBytes(seg)!;
    const frames = v2Frames(bytes);
    assert.equal(frames.length, 2);
    const dataStart = frames[0].offset;
    const page = (Math.floor(dataStart / 4096) + 1) * 4096;
    assert.ok(page < frames[0].offset + frames[0].size, "record 0 spans a page boundary");
    bytes.fill(0, dataStart, page); // the first page of the write never reached the disk
    crashed.setFileBytes(seg, bytes);
    const reopened = await Store.open(DIR, { ...opts, platform: crashed });
    const again = await reopened.log("a");
    assert.equal(again.nextSeq, 0);
    assert.deepEqual(again.openReport.truncatedAt, { path: seg, offset: dataStart });
    assert.equal(again.openReport.tornHole, false, "v2 has no lost-write judgement");
    assert.equal(await again.append("next"), 0);
    await reopened.close();
    await store.close();
  });

  // The same lost page, when synced records fill that page up to its last sector: the hole
  // [synced end, page end) is shorter than a sector, and the damaged record's tail plus the next
  // record sit in the following (written-back) page. No aligned sector is all zeros. v1 layout:
  // 61 records of 100 bytes end at 7840, a 600-byte record straddles 8192, a 100-byte one follows.
  it("v1: a lost page tail shorter than a sector below later frames is a torn tail", async () => {
    const payloads = [
      ...Array.from({ length: 61 }, () => new Uint8Array(100).fill(3)),
      new Uint8Array(600).fill(4),
      new Uint8Array(100).fill(5),
    ];
    const bytes = v1Segment(0, payloads);
    const syncedEnd = V1_HEADER + 61 * (V1_FRAME + 100);
    assert.equal(syncedEnd, 7840);
    assert.ok(
      8192 - syncedEnd < 512 && syncedEnd + V1_FRAME + 600 > 8192,
      "a short hole, then a straddling record",
    );
    bytes.fill(0, syncedEnd, 8192); // the dirty tail of page 1 was lost, page 2 was written
    const sim = await diskWith({ 0: bytes });
    const store = await Store.open(DIR, { syncPolicy: SyncPolicy.osManaged(), platform: sim });
    const log = await store.log("a");
    assert.equal(log.nextSeq, 61);
    assert.deepEqual(log.openReport.truncatedAt, {
      path: `${LOG_DIR}/${segName(0)}`,
      offset: 7840,
    });
    assert.equal(log.openReport.tornHole, true);
    // The v1 segment, cut there, was sealed (v1 seal) and the log goes on in a new v2 segment.
    assert.equal(log.segmentCount, 2);
    assert.equal(await log.append("next"), 61);
    await log.sync();
    assert.equal((await readSeqs(store, "a")).length, 62);
    await store.close();
    const sealed = decodeV1Segment(sim.fileBytes(`${LOG_DIR}/${segName(0)}`)!, true);
    assert.equal(sealed.frames.length, 61);
    assert.equal(sealed.seal?.seq, 61);
    const next = sim.fileBytes(`${LOG_DIR}/${segName(61)}`)!;
    assert.equal(dv(next).getUint16(8, true), 2);
    assert.deepEqual([u64(next, 16), u64(next, 48)], [61, 61], "firstSeq, prevEndSeq");
  });

  // The v2 writer: synced records end a few bytes below a page boundary; a record written after
  // the sync straddles it and another follows in the next page; the dirty tail of the first page
  // is lost. Bytes after the synced end were never vouched for: a torn tail, cut at the synced end.
  it("v2: a lost page tail shorter than a sector below later frames is a torn tail", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.osManaged(), platform: sim };
    const store = await Store.open(DIR, opts);
    const log = await store.log("a");
    const seg = `${LOG_DIR}/${segName(0)}`;
    await log.append(new Uint8Array(100).fill(3));
    const dataStart = v2Frames(sim.fileBytes(seg)!)[0].offset;
    const page = (Math.floor(dataStart / 4096) + 2) * 4096; // at least a page of records below it
    // 100-byte records (107-byte frames), then one sized to end 10 bytes below the boundary.
    let end = v2DataEnd(sim.fileBytes(seg)!);
    while (page - 10 - (end + 107) - 8 >= 128) {
      await log.append(new Uint8Array(100).fill(3));
      end = v2DataEnd(sim.fileBytes(seg)!);
    }
    await log.append(new Uint8Array(page - 10 - end - 8).fill(3)); // 8 = CRC, type, 2 + 1 varints
    await log.sync();
    const syncedEnd = v2DataEnd(sim.fileBytes(seg)!);
    assert.ok(
      page - syncedEnd > 0 && page - syncedEnd < 16,
      `synced end ${syncedEnd}, page ${page}`,
    );
    const kept = log.nextSeq;
    await log.append(new Uint8Array(600).fill(4)); // straddles the page boundary
    await log.append(new Uint8Array(100).fill(5)); // wholly in the next page
    const crashed = sim.crash("all");
    const bytes = crashed.fileBytes(seg)!;
    assert.ok(v2DataEnd(bytes) > page + 107, "both records reached the page cache");
    bytes.fill(0, syncedEnd, page); // the dirty tail of the page was lost, the next was written
    crashed.setFileBytes(seg, bytes);
    const reopened = await Store.open(DIR, { ...opts, platform: crashed });
    const again = await reopened.log("a");
    assert.equal(again.nextSeq, kept);
    assert.deepEqual(again.openReport.truncatedAt, { path: seg, offset: syncedEnd });
    await reopened.close();
    await store.close();
  });

  // v2: a batch is atomic. A lost page inside an un-synced batch (its second record's page; the
  // first record, whole and valid, is of type "more of this batch follows") drops the whole batch:
  // the log ends at the last complete batch, before the batch's first record.
  it("v2: a lost page inside an un-synced batch drops the whole batch, its intact first record too", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.osManaged(), platform: sim };
    const store = await Store.open(DIR, opts);
    const log = await store.log("a");
    await log.append(new Uint8Array(100).fill(1));
    await log.sync();
    const first = await log.appendBatch([
      new Uint8Array(3000).fill(2),
      new Uint8Array(6000).fill(3),
      new Uint8Array(3000).fill(4),
    ]);
    assert.deepEqual(first, [1, 2, 3]);
    const crashed = sim.crash("all");
    const seg = `${LOG_DIR}/${segName(0)}`;
    const bytes = crashed.fileBytes(seg)!;
    const frames = v2Frames(bytes);
    assert.deepEqual(frames.map((f) => f.type), [1, 3, 3, 1], "one record, then a batch of three");
    const second = frames[2];
    const page = (Math.floor(second.offset / 4096) + 1) * 4096;
    assert.ok(page + 4096 <= second.offset + second.size, "a whole page inside record 2");
    bytes.fill(0, page, page + 4096);
    crashed.setFileBytes(seg, bytes);
    const reopened = await Store.open(DIR, { ...opts, platform: crashed });
    const again = await reopened.log("a");
    assert.equal(again.nextSeq, 1, "no record of the batch is kept");
    assert.deepEqual(again.openReport.truncatedAt, { path: seg, offset: frames[1].offset });
    assert.deepEqual(await readSeqs(reopened, "a"), [0]);
    await reopened.close();
    await store.close();
  });

  // Found by: npm run crash -- --workload always-retention-race
  // truncateBefore can unlink the last sealed segment while the next segment's file is still being
  // created (its directory entry not yet durable). A power cut that keeps the unlink but not the
  // create leaves no segment at all, and the log restarts at sequence number 0.
  it("retention racing a rollover never lets sequence numbers go backwards", async () => {
    const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096 };
    const record = (i: number) => new Uint8Array(1300).fill(i);
    // How many of these records segment 0 holds: the seq the rollover's new segment starts at.
    const dry = new SimPlatform();
    const dryStore = await Store.open(DIR, { ...opts, platform: dry });
    const dryLog = await dryStore.log("a");
    while (dryLog.segmentCount < 2) await dryLog.append(record(0));
    const rollover = dryLog.nextSeq - 1;
    await dryStore.close();
    assert.ok(rollover >= 2, `segment 0 holds ${rollover} records`);

    const sim = new SimPlatform();
    const store = await Store.open(DIR, { ...opts, platform: sim });
    const log = await store.log("a");
    for (let i = 0; i < rollover; i++) await log.append(record(i)); // fills segment 0
    assert.equal(log.segmentCount, 1);
    let retention: Promise<void> | null = null;
    const snaps: ReturnType<SimPlatform["freeze"]>[] = [];
    sim.onCall = (c) => {
      // The rollover creates the next segment: ask to drop every record of segment 0 right then.
      if (c.op === "open" && c.mutates && c.path.endsWith(segName(rollover))) {
        retention = log.truncateBefore(rollover);
      }
      if (retention && c.mutates) snaps.push(sim.freeze());
    };
    await log.append(record(rollover));
    await retention;
    sim.onCall = undefined;
    await store.close();
    assert.ok(retention !== null, "the rollover was caught");
    assert.ok(snaps.length > 0, "states frozen during the race");
    for (const [i, snap] of snaps.entries()) {
      for (const mode of CRASH_MODES) {
        for (let seed = 0; seed < (mode === "subset" ? 20 : 1); seed++) {
          const s = await Store.open(DIR, { ...opts, platform: snap.crash(mode, seed) });
          const l = await s.log("a");
          assert.ok(
            l.nextSeq >= rollover,
            `call ${i}, ${mode} seed ${seed}: the log restarts at ${l.nextSeq}`,
          );
          await s.close();
        }
      }
    }
  });
});
