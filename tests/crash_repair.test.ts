// Repair mode for a damaged NEWEST segment, and a power cut at every call of that repair.
//
// Three kinds of damage open finds in a newest segment:
// - a version 1 newest segment damaged in the middle (a flipped byte in record 7, valid record 8
//   after it: the v1 damage rule), built byte by byte from FORMAT.md's v1 layout;
// - a v2 newest segment cut below its durable mark (the mark vouches for bytes the file no longer
//   has: "durable data missing");
// - a v2 newest segment whose first record is damaged.
// Repair copies the damaged segment aside (`.broken`), keeps and seals its intact prefix (whole
// batches before the damage; if there is none the file leaves the log) and goes on in a new
// segment whose first seq is past every seq the set-aside bytes could hold: seqs are never reused.
// The first tests pin what one repair does; the explorations (tests/repair_explorer.ts) crash it
// at every call, in every crash mode, reopen without and with repair, crash again, and check that
// no record before the damage is lost, nothing set aside is deleted, resolved appends survive,
// and no seq is ever given to two different records.
//
// Damage BEFORE the mark of a synced v2 newest segment is not read at open: it is found by
// readers, as CorruptionError, and no open (repair or not) cuts it; the last test pins that.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../mod.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { decodeV1Segment, specFrame, specHeader, specSeal } from "./spec_codec.ts";
import {
  type Damaged,
  DIR,
  dv,
  exploreRepair,
  files,
  type Got,
  LOG,
  LOG_DIR,
  markOf,
  readAll,
  readLog,
  rec,
  remember,
  Seen,
  segName,
  STORE_OPTS,
  u64,
  v2Frames,
} from "./repair_explorer.ts";
import { concat } from "./helpers.ts";

const TS = 1_700_000_000_000;

/** `firstSeq + ceil(size / 7) + 1`: past every seq a set-aside file of `size` bytes could hold. */
const beyond = (firstSeq: number, size: number) => firstSeq + Math.ceil(size / 7) + 1;

/** What was planted, for the checks after the repair. */
interface Planted extends Damaged {
  sim: SimPlatform;
  /** The damaged segment's (segment 5's) bytes. */
  bytes: Uint8Array;
}

/**
 * A version 1 log as the v1 writer left it: segment 0 sealed (records 0-4), segment 5 newest
 * (records 5-8); then one byte of record 7's payload flipped, record 8 valid after it.
 */
async function v1DamagedInTheMiddle(): Promise<Planted> {
  const sim = new SimPlatform();
  await sim.mkdir(DIR);
  await sim.mkdir(LOG_DIR);
  await sim.syncDir("/");
  await sim.syncDir(DIR);
  const max = 16 << 20;
  const frame = (i: number) => specFrame(1, i, TS + i, rec(i));
  const seg0 = concat(
    specHeader(0, max),
    ...[0, 1, 2, 3, 4].map(frame),
    specSeal(5, TS + 5, [[0, 32]]),
  );
  const bytes = concat(specHeader(5, max), ...[5, 6, 7, 8].map(frame));
  bytes[32 + 2 * (28 + 700) + 28 + 300] ^= 0xff; // inside record 7's payload
  sim.setFileBytes(`${LOG_DIR}/${segName(0)}`, seg0);
  sim.setFileBytes(`${LOG_DIR}/${segName(5)}`, bytes);
  // A v1 writer acknowledged records 0-8 and readers could read them all.
  const seen = new Seen();
  const all = Array.from({ length: 9 }, (_, i) => ({ seq: i, data: rec(i) }));
  remember(seen, all, "as the v1 writer wrote them");
  return {
    sim,
    seen,
    kept: all.slice(0, 7),
    originals: new Map([[segName(5), bytes]]),
    bytes,
  };
}

/** A v2 log written by the Store (records 0-4 sealed, 5-8 in the newest segment), all read. */
async function v2Log(): Promise<{ sim: SimPlatform; seen: Seen; got: Got[]; newest: string }> {
  const sim = new SimPlatform();
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim });
  const log = await store.log(LOG);
  for (let i = 0; i < 9; i++) await log.append(rec(i));
  assert.equal(log.segmentCount, 2, "segments of 5 records: 0-4, 5-8");
  const seen = new Seen();
  const got = await readAll(log);
  remember(seen, got, "before the damage");
  await store.close();
  return { sim, seen, got, newest: `${LOG_DIR}/${segName(5)}` };
}

/** The v2 newest segment cut inside record 7, below its mark (which covers record 7). */
async function v2CutBelowTheMark(): Promise<Planted> {
  const { sim, seen, got, newest } = await v2Log();
  const full = sim.fileBytes(newest)!;
  const frames = v2Frames(full);
  assert.equal(frames.length, 4, "records 5-8");
  const mark = markOf(full);
  const cut = frames[2].offset + 300;
  assert.ok(mark && mark.durableEnd > cut, `the mark (${JSON.stringify(mark)}) covers record 7`);
  const bytes = full.slice(0, cut);
  sim.setFileBytes(newest, bytes);
  const kept = got.filter((r) => r.seq < 7);
  return { sim, seen, kept, originals: new Map([[segName(5), bytes]]), bytes };
}

/** The v2 newest segment with one byte of its first record (5) flipped. */
async function v2FirstRecordDamaged(): Promise<Planted> {
  const { sim, seen, got, newest } = await v2Log();
  const bytes = sim.fileBytes(newest)!;
  bytes[v2Frames(bytes)[0].payloadAt + 100] ^= 0xff;
  sim.setFileBytes(newest, bytes);
  const kept = got.filter((r) => r.seq < 5);
  return { sim, seen, kept, originals: new Map([[segName(5), bytes]]), bytes };
}

/** Opens with repair, appends one record; returns the log's report, records and nextSeq. */
async function repairOnce(sim: SimPlatform) {
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim, repair: true });
  try {
    const log = await store.log(LOG);
    const report = log.openReport;
    const nextSeq = log.nextSeq;
    const appendedAt = await log.append(rec(100));
    return { report, nextSeq, appendedAt, got: await readAll(log) };
  } finally {
    await store.close();
  }
}

async function rejectsPlain(sim: SimPlatform, message: RegExp): Promise<void> {
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim });
  try {
    await assert.rejects(store.log(LOG), { code: "CORRUPTION", message });
  } finally {
    await store.close();
  }
}

describe("repair of a damaged newest segment", () => {
  it("v1, damaged in the middle: the v1 prefix is kept with a v1 seal, a v2 segment follows past every seq the damaged bytes could hold", async () => {
    const d = await v1DamagedInTheMiddle();
    await rejectsPlain(d.sim, /checksum mismatch, followed by valid frames/);
    const r = await repairOnce(d.sim);
    const to = beyond(5, d.bytes.length); // 5 + ceil(2944 / 7) + 1 = 427
    assert.equal(to, 427);
    assert.equal(r.report.repaired.length, 1, JSON.stringify(r.report.repaired));
    const { reason, ...action } = r.report.repaired[0];
    assert.deepEqual(action, {
      path: `${LOG_DIR}/${segName(5)}`,
      movedTo: `${LOG_DIR}/${segName(5)}.broken`,
      offset: 32 + 2 * 728, // record 7
    });
    assert.match(reason, /checksum mismatch, followed by valid frames/);
    assert.deepEqual(r.report.skippedSeqs, { from: 7, to });
    assert.equal(r.nextSeq, to);
    assert.equal(r.appendedAt, to);
    assert.deepEqual(r.got.map((g) => g.seq), [0, 1, 2, 3, 4, 5, 6, to]);
    assert.deepEqual(files(d.sim), [segName(0), segName(5), `${segName(5)}.broken`, segName(to)]);
    assert.deepEqual(d.sim.fileBytes(`${LOG_DIR}/${segName(5)}.broken`), d.bytes, "copied aside");
    // The kept prefix: records 5 and 6, then a v1 seal at seq 7 (FORMAT.md v1, decoded strictly).
    const sealed = decodeV1Segment(d.sim.fileBytes(`${LOG_DIR}/${segName(5)}`)!, true);
    assert.deepEqual(sealed.frames.map((f) => f.seq), [5, 6]);
    assert.equal(sealed.seal?.seq, 7);
    // The new segment: v2, its header says the one before it ended at 7 (seqs 7..426 skipped).
    const next = d.sim.fileBytes(`${LOG_DIR}/${segName(to)}`)!;
    assert.equal(dv(next).getUint16(8, true), 2, "a v2 segment");
    assert.equal(u64(next, 16), to, "firstSeq");
    assert.equal(u64(next, 48), 7, "prevEndSeq");
    // The next opens, plain or repair, keep all of it and repair nothing more.
    for (const repair of [false, true]) {
      assert.deepEqual((await readLog(d.sim, repair)).map((g) => g.seq), [0, 1, 2, 3, 4, 5, 6, to]);
    }
    assert.deepEqual(d.sim.fileBytes(`${LOG_DIR}/${segName(5)}.broken`), d.bytes);
  });

  it("v2, cut below its durable mark: refused (durable data missing); repair keeps and seals the whole batches before the cut", async () => {
    const d = await v2CutBelowTheMark();
    await rejectsPlain(d.sim, /durable data missing/);
    const r = await repairOnce(d.sim);
    const to = beyond(5, d.bytes.length);
    assert.equal(r.report.repaired.length, 1, JSON.stringify(r.report.repaired));
    assert.equal(r.report.repaired[0].movedTo, `${LOG_DIR}/${segName(5)}.broken`);
    assert.match(r.report.repaired[0].reason, /durable data missing/);
    assert.deepEqual(r.report.skippedSeqs, { from: 7, to });
    assert.equal(r.nextSeq, to);
    assert.equal(r.appendedAt, to);
    assert.deepEqual(r.got.map((g) => g.seq), [0, 1, 2, 3, 4, 5, 6, to]);
    r.got.slice(0, 7).forEach((g, i) => assert.deepEqual(g.data, rec(i), `record ${i}`));
    assert.deepEqual(files(d.sim), [segName(0), segName(5), `${segName(5)}.broken`, segName(to)]);
    assert.deepEqual(d.sim.fileBytes(`${LOG_DIR}/${segName(5)}.broken`), d.bytes, "copied aside");
    // The kept prefix: records 5 and 6 as they were, then a seal ending the file, seq 7.
    const sealed = d.sim.fileBytes(`${LOG_DIR}/${segName(5)}`)!;
    const frames = v2Frames(sealed);
    assert.deepEqual(frames.map((f) => f.type), [1, 1, 2]);
    assert.deepEqual(sealed.subarray(0, frames[2].offset), d.bytes.subarray(0, frames[2].offset));
    const seal = frames[2];
    assert.equal(seal.offset + seal.size, sealed.length, "the file ends at its seal");
    assert.equal(dv(sealed).getUint32(sealed.length - 4, true), seal.size, "trailer");
    assert.equal(u64(sealed, seal.payloadAt), 7, "the seal's endSeq");
    const next = d.sim.fileBytes(`${LOG_DIR}/${segName(to)}`)!;
    assert.deepEqual([u64(next, 16), u64(next, 48)], [to, 7], "firstSeq, prevEndSeq");
    for (const repair of [false, true]) {
      assert.deepEqual((await readLog(d.sim, repair)).map((g) => g.seq), [0, 1, 2, 3, 4, 5, 6, to]);
    }
  });

  it("v2, first record damaged: no intact prefix, so the file leaves the log (copied aside) and the log goes on after segment 0", async () => {
    const d = await v2FirstRecordDamaged();
    await rejectsPlain(d.sim, /first record/);
    const r = await repairOnce(d.sim);
    const to = beyond(5, d.bytes.length);
    assert.equal(r.report.repaired.length, 1, JSON.stringify(r.report.repaired));
    assert.equal(r.report.repaired[0].path, `${LOG_DIR}/${segName(5)}`);
    assert.equal(r.report.repaired[0].movedTo, `${LOG_DIR}/${segName(5)}.broken`);
    assert.deepEqual(r.report.skippedSeqs, { from: 5, to });
    assert.equal(r.nextSeq, to);
    assert.deepEqual(r.got.map((g) => g.seq), [0, 1, 2, 3, 4, to]);
    assert.deepEqual(files(d.sim), [segName(0), `${segName(5)}.broken`, segName(to)]);
    assert.deepEqual(d.sim.fileBytes(`${LOG_DIR}/${segName(5)}.broken`), d.bytes, "copied aside");
    const next = d.sim.fileBytes(`${LOG_DIR}/${segName(to)}`)!;
    assert.deepEqual([u64(next, 16), u64(next, 48)], [to, 5], "firstSeq, prevEndSeq");
    for (const repair of [false, true]) {
      assert.deepEqual((await readLog(d.sim, repair)).map((g) => g.seq), [0, 1, 2, 3, 4, to]);
    }
  });

  it("v2, cut below its mark inside a batch: the batch's intact first records are not a prefix (a batch is kept whole or not at all)", async () => {
    const sim = new SimPlatform();
    const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim });
    const log = await store.log(LOG);
    for (let i = 0; i < 5; i++) await log.append(rec(i));
    assert.deepEqual(await log.appendBatch([rec(5), rec(6), rec(7)]), [5, 6, 7]);
    await log.append(rec(8));
    await store.close();
    const newest = `${LOG_DIR}/${segName(5)}`;
    const full = sim.fileBytes(newest)!;
    const frames = v2Frames(full);
    assert.deepEqual(frames.map((f) => f.type), [3, 3, 1, 1], "a batch of three, then record 8");
    const cut = frames[2].offset + 300;
    assert.ok(markOf(full)!.durableEnd > cut, "the mark covers the batch");
    const bytes = full.slice(0, cut);
    sim.setFileBytes(newest, bytes);
    await rejectsPlain(sim, /durable data missing/);
    const r = await repairOnce(sim);
    const to = beyond(5, bytes.length);
    assert.deepEqual(r.report.skippedSeqs, { from: 5, to });
    assert.deepEqual(r.got.map((g) => g.seq), [0, 1, 2, 3, 4, to]);
    assert.deepEqual(files(sim), [segName(0), `${segName(5)}.broken`, segName(to)]);
    assert.deepEqual(sim.fileBytes(`${newest}.broken`), bytes, "copied aside");
  });

  it("v2, damage before the mark: no open cuts it (plain or repair); readers get CorruptionError at the damaged record", async () => {
    const { sim, newest } = await v2Log();
    const bytes = sim.fileBytes(newest)!;
    const frames = v2Frames(bytes);
    const mark = markOf(bytes);
    assert.ok(mark && mark.durableEnd >= frames[2].offset + frames[2].size, "record 7 is synced");
    bytes[frames[2].payloadAt + 300] ^= 0xff;
    sim.setFileBytes(newest, bytes);
    for (const repair of [false, true]) {
      const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim, repair });
      try {
        const log = await store.log(LOG);
        assert.equal(log.nextSeq, 9, "records 7 and 8 stay");
        assert.equal(log.openReport.truncatedBytes, 0);
        assert.deepEqual(log.openReport.repaired, []);
        assert.equal(log.openReport.skippedSeqs, null);
        const seqs: number[] = [];
        await assert.rejects(
          async () => {
            for await (const r of log.read({ from: 0 })) seqs.push(r.seq);
          },
          (err: Error & { code?: string; seq?: number; offset?: number }) =>
            err.code === "CORRUPTION" && err.seq === 7 && err.offset === frames[2].offset,
        );
        assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6]);
      } finally {
        await store.close();
      }
      assert.deepEqual(sim.fileBytes(newest), bytes, "the damaged segment is unchanged");
    }
  });
});

describe("crash during repair of a damaged newest segment", () => {
  const scenarios: [string, () => Promise<Planted>][] = [
    ["v1, damaged in the middle", v1DamagedInTheMiddle],
    ["v2, cut below its mark", v2CutBelowTheMark],
    ["v2, first record damaged", v2FirstRecordDamaged],
  ];
  for (const [name, plant] of scenarios) {
    it(`${name}: no crash at any call loses a record before the damage, a resolved append or a set-aside byte, nor gives a seq to two records`, async () => {
      const d = await plant();
      const r = await exploreRepair(d.sim, d);
      console.log(
        `crash during repair (${name}): crash points=${r.points}, states=${r.states}, ` +
          `second crashes=${r.chains}, violations=${r.failures.length}`,
      );
      assert.ok(r.points > 10, `${r.points} crash points`);
      assert.deepEqual(r.failures.slice(0, 5), [], `${r.failures.length} violations`);
    });
  }
});
