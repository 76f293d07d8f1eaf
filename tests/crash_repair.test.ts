// Repair mode for a damaged NEWEST segment, and a power cut at every call of that repair.
//
// The damage:
// - a version 1 newest segment damaged in the middle (a flipped byte in record 7, valid record 8
//   after it: the v1 damage rule), built byte by byte from FORMAT.md's v1 layout. Version 1 keeps
//   the rule of earlier releases: the damaged segment is copied aside (`.broken`), its intact
//   prefix kept and sealed, and the log goes on in a new segment whose first seq is past every seq
//   the set-aside bytes could hold;
// - a v2 newest segment (records 5-8, after sealed 0-4) cut below its durable mark, inside record
//   7 (the mark vouches for bytes the file no longer has: "durable data missing");
// - the same cut inside a batch: the batch's intact records stay (batch atomicity is about
//   crashes, not media damage);
// - a v2 newest segment whose first record is damaged;
// - a v2 newest segment with a flipped byte before its mark: a plain open does not read there (a
//   completed fdatasync covered it), so readers find it, as CorruptionError; a repair-mode open
//   reads the segment whole and finds it;
// - the same with its last two records zeroed: the log must go on past them (their seqs are in
//   `.broken`, never to be reused), `openReport.skippedSeqs` naming them.
// For v2, every intact record stays at its seq, before and after the damage (each intact run a
// sealed segment), and only the damaged seqs are missing, declared as a gap; the log goes on past
// every seq the segment held. `checkRepaired` (tests/repair_explorer.ts) pins what one repair
// leaves; the explorations crash it at every call, in every crash mode, reopen without and with
// repair, crash again, and check that no intact record is lost, nothing set aside is deleted,
// resolved appends survive, the repaired log is the one an uninterrupted repair leaves, and no seq
// is ever given to two different records.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../mod.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { decodeV1Segment, specFrame, specHeader, specSeal } from "./spec_codec.ts";
import {
  assertFoundByReaders,
  checkRepaired,
  type Damaged,
  DIR,
  dv,
  exploreRepair,
  files,
  frameOf,
  LOG,
  LOG_DIR,
  payloadAt,
  plant,
  type Planted,
  readAll,
  readLog,
  rec,
  remember,
  Seen,
  segName,
  STORE_OPTS,
  u64,
  writeLog,
  type Written,
} from "./repair_explorer.ts";
import { concat } from "./helpers.ts";

const TS = 1_700_000_000_000;

/** `firstSeq + ceil(size / 7) + 1`: past every seq a set-aside file of `size` bytes could hold. */
const beyond = (firstSeq: number, size: number) => firstSeq + Math.ceil(size / 7) + 1;

/** The v1 log, for the checks after its repair. */
interface V1Planted extends Damaged {
  sim: SimPlatform;
  /** The damaged segment's (segment 5's) bytes. */
  bytes: Uint8Array;
}

/**
 * A version 1 log as the v1 writer left it: segment 0 sealed (records 0-4), segment 5 newest
 * (records 5-8); then one byte of record 7's payload flipped, record 8 valid after it.
 */
async function v1DamagedInTheMiddle(): Promise<V1Planted> {
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
    above: 9,
    // An interrupted v1 repair, done again, goes on in a new segment further on (RECOVERY.md).
    gapsMayDiffer: true,
    bytes,
  };
}

/** A v2 log written by the Store: records 0-4 sealed, 5-8 in the newest segment, all read. */
async function v2Log(): Promise<Written> {
  const w = await writeLog(STORE_OPTS, async (log) => {
    for (let i = 0; i < 9; i++) await log.append(rec(i));
    assert.equal(log.segmentCount, 2, "segments of 5 records: 0-4, 5-8");
  });
  assert.equal(w.segs[1].durableEnd, w.segs[1].frames[3].offset + w.segs[1].frames[3].size);
  return w;
}

/** The v2 newest segment cut inside record 7, below its mark (which covers record 7). */
async function v2CutBelowTheMark(): Promise<Planted> {
  const w = await v2Log();
  return await plant(w, 5, [{ cut: frameOf(w.segs[1], 7).offset + 300 }]);
}

/** The v2 newest segment with one byte of its first record (5) flipped. */
async function v2FirstRecordDamaged(): Promise<Planted> {
  const w = await v2Log();
  return await plant(w, 5, [{ flip: payloadAt(frameOf(w.segs[1], 5)) + 100 }]);
}

/** The v2 newest segment with one byte of record 7 flipped, before its mark. */
async function v2DamagedBeforeTheMark(): Promise<Planted> {
  const w = await v2Log();
  return await plant(w, 5, [{ flip: payloadAt(frameOf(w.segs[1], 7)) + 300 }]);
}

/** The v2 newest segment with its last two records (7, 8) zeroed, before its mark. */
async function v2TailZeroedBeforeTheMark(): Promise<Planted> {
  const w = await v2Log();
  const [r7, r8] = [frameOf(w.segs[1], 7), frameOf(w.segs[1], 8)];
  return await plant(w, 5, [{ zero: [r7.offset, r8.offset + r8.size] }]);
}

/** Opens with repair, appends one record; returns the log's report, gaps, records and nextSeq. */
async function repairOnce(sim: SimPlatform) {
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim, repair: true });
  try {
    const log = await store.log(LOG);
    const report = log.openReport;
    const gaps = log.gaps;
    const nextSeq = log.nextSeq;
    const appendedAt = await log.append(rec(100));
    return { report, gaps, nextSeq, appendedAt, got: await readAll(log) };
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
      kind: "salvaged",
      path: `${LOG_DIR}/${segName(5)}`,
      movedTo: `${LOG_DIR}/${segName(5)}.broken`,
      offset: 32 + 2 * 728, // record 7
      kept: [{ from: 5, to: 7 }],
      lost: [{ from: 7, to }],
    });
    assert.match(reason, /checksum mismatch, followed by valid frames/);
    assert.deepEqual(r.report.skippedSeqs, { from: 7, to });
    assert.deepEqual(r.gaps, [{ from: 7, to }]);
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

  it("v2, cut below its durable mark: refused (durable data missing); repair keeps and seals the records before the cut, and the log goes on past every seq the segment held", async () => {
    const d = await v2CutBelowTheMark();
    assert.deepEqual(d.lost, [7, 8]);
    await rejectsPlain(d.sim, /durable data missing/);
    await checkRepaired(d, STORE_OPTS);
  });

  it("v2, cut below its mark inside a batch: the batch's intact first records stay (a batch is atomic against crashes, not against media damage)", async () => {
    const w = await writeLog(STORE_OPTS, async (log) => {
      for (let i = 0; i < 5; i++) await log.append(rec(i));
      assert.deepEqual(await log.appendBatch([rec(5), rec(6), rec(7)]), [5, 6, 7]);
      await log.append(rec(8));
    });
    const newest = w.segs[1];
    assert.deepEqual(newest.frames.map((f) => f.type), [3, 3, 1, 1], "a batch of three, then 8");
    assert.ok(newest.durableEnd! > frameOf(newest, 7).offset, "the mark covers the batch");
    const d = await plant(w, 5, [{ cut: frameOf(newest, 7).offset + 300 }]);
    assert.deepEqual(d.lost, [7, 8]);
    await rejectsPlain(d.sim, /durable data missing/);
    // Record 6 was "more of this batch follows": sealed now as the last of its segment.
    await checkRepaired(d, STORE_OPTS);
  });

  it("v2, first record damaged: refused (the open decodes it); repair keeps 6-8 as a sealed segment of their own and declares seq 5 a gap", async () => {
    const d = await v2FirstRecordDamaged();
    assert.deepEqual(d.lost, [5]);
    await rejectsPlain(d.sim, /first record/);
    await checkRepaired(d, STORE_OPTS);
  });

  it("v2, its last two records zeroed before the mark: found by readers; repair keeps 5, 6 and the log goes on past seq 8 (never reusing 7 or 8)", async () => {
    const d = await v2TailZeroedBeforeTheMark();
    assert.deepEqual(d.lost, [7, 8]);
    await assertFoundByReaders(d, STORE_OPTS);
    await checkRepaired(d, STORE_OPTS);
  });

  it("v2, damage before the mark: a plain open does not cut it, readers get CorruptionError at the damaged record; repair keeps every other record at its seq", async () => {
    const d = await v2DamagedBeforeTheMark();
    assert.deepEqual(d.lost, [7]);
    await assertFoundByReaders(d, STORE_OPTS);
    await checkRepaired(d, STORE_OPTS);
  });
});

describe("crash during repair of a damaged newest segment", () => {
  const scenarios: [string, () => Promise<Damaged & { sim: SimPlatform }>][] = [
    ["v1, damaged in the middle", v1DamagedInTheMiddle],
    ["v2, cut below its mark", v2CutBelowTheMark],
    ["v2, first record damaged", v2FirstRecordDamaged],
    ["v2, a flipped byte before its mark", v2DamagedBeforeTheMark],
    ["v2, its last records zeroed before its mark", v2TailZeroedBeforeTheMark],
  ];
  for (const [name, make] of scenarios) {
    it(
      `${name}: no crash at any call loses an intact record, a resolved append or a set-aside byte, changes what the repair leaves, nor gives a seq to two records`,
      { timeout: 300_000 },
      async () => {
        const d = await make();
        const r = await exploreRepair(d.sim, d);
        console.log(
          `crash during repair (${name}): crash points=${r.points}, states=${r.states}, ` +
            `second crashes=${r.chains}, violations=${r.failures.length}`,
        );
        assert.ok(r.points > 10, `${r.points} crash points`);
        assert.deepEqual(r.failures.slice(0, 5), [], `${r.failures.length} violations`);
      },
    );
  }
});
