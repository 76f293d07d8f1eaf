// Repair mode for a damaged SEALED segment with segments after it, and a power cut (or kill -9)
// between any two of its steps.
//
// Two ways open finds a sealed segment damaged:
// - its seal is damaged (one byte of its first index entry flipped);
// - a middle segment was deleted: the chain check (each v2 header names where the segment before
//   it ended) finds the segment before the gap ending where the next one does not start, and
//   refuses with a CorruptionError naming both seqs.
// Repair copies the damaged segment aside (`.broken`), keeps and seals its intact prefix (here:
// all its records), sets every later segment aside (renamed `.broken`; for a gap that means the
// records after it too: a later change may keep them, this pins what the code does now) and goes
// on in a new segment past every seq the set-aside files could hold, so none is ever reused
// (`openReport.skippedSeqs`).
//
// The explorations (tests/repair_explorer.ts) freeze the repair-mode open after every call that
// changes the disk and crash it in every mode: at every instant the damaged segment's original
// bytes and each later segment's exist byte for byte under their own name or a `.broken` /
// `.broken.N` name; a plain open refuses or keeps every record before the damage; the next
// repair-mode open succeeds, keeps every record before the damage, leaves no `*.seg.repair`; a
// second crash during that open is survived too; and no seq is ever given to two records.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../mod.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import {
  type Damaged,
  DIR,
  dv,
  exploreRepair,
  files,
  LOG,
  LOG_DIR,
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

/** Segments 0-4, 5-9, 10-14 (sealed) and 15-16 (active), every record read once. */
async function fourSegments(): Promise<{ sim: SimPlatform; seen: Seen }> {
  const writing = new SimPlatform();
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: writing });
  const log = await store.log(LOG);
  for (let i = 0; i < 17; i++) await log.append(rec(i));
  assert.equal(log.segmentCount, 4);
  const seen = new Seen();
  remember(seen, await readAll(log), "before the damage");
  await store.close();
  // Everything on disk before the damage: a close leaves the last mark slot in the page cache,
  // and what a crash may lose of the repair's own steps is the question here, not that slot.
  const sim = writing.crash("all");
  assert.deepEqual(files(sim), [0, 5, 10, 15].map(segName));
  return { sim, seen };
}

const bytesOf = (sim: SimPlatform, first: number) => sim.fileBytes(`${LOG_DIR}/${segName(first)}`)!;
const kept = (n: number) => Array.from({ length: n }, (_, i) => ({ seq: i, data: rec(i) }));
/** Past every seq a set-aside file of `size` bytes starting at `firstSeq` could hold. */
const beyond = (firstSeq: number, size: number) => firstSeq + Math.ceil(size / 7) + 1;

interface Planted extends Damaged {
  sim: SimPlatform;
  /** Where the damage was found: the segment and the seal's offset. */
  damaged: number;
  sealAt: number;
  /** The segments after it, which leave the log with it. */
  later: number[];
}

/** One byte of segment 5's seal flipped: in its first index entry's seq. */
async function damagedSeal(): Promise<Planted> {
  const { sim, seen } = await fourSegments();
  const bytes = bytesOf(sim, 5);
  const frames = v2Frames(bytes);
  const seal = frames[frames.length - 1];
  assert.equal(seal.type, 2, "a seal frame");
  assert.equal(seal.offset + seal.size, bytes.length, "a sealed segment ends at its seal");
  assert.equal(u64(bytes, seal.payloadAt), 10, "the seal's endSeq");
  bytes[seal.payloadAt + 28] ^= 0x01; // endSeq, firstTs, lastTs (u64), n (u32), then entry 0
  sim.setFileBytes(`${LOG_DIR}/${segName(5)}`, bytes);
  const originals = new Map([5, 10, 15].map((f) => [segName(f), bytesOf(sim, f)]));
  return { sim, seen, kept: kept(10), originals, damaged: 5, sealAt: seal.offset, later: [10, 15] };
}

/**
 * Segment 0 (five 700-byte records, then 1-byte ones) with its seal damaged, then segments of
 * 1-byte records (8-byte frames): the later segments hold seqs far past every seq segment 0's
 * bytes could, so only the order of the repair's steps (the new segment first, then the later
 * ones set aside) keeps a crash from letting the log reuse theirs.
 */
async function damagedSealBeforeDenseSegments(): Promise<Planted> {
  const writing = new SimPlatform();
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: writing });
  const log = await store.log(LOG);
  for (let i = 0; i < 5; i++) await log.append(rec(i));
  while (log.segmentCount < 4) await log.append(Uint8Array.of(log.nextSeq % 256));
  for (let i = 0; i < 3; i++) await log.append(Uint8Array.of(log.nextSeq % 256));
  const seen = new Seen();
  const got = await readAll(log);
  remember(seen, got, "before the damage");
  await store.close();
  const sim = writing.crash("all"); // all on disk before the damage (see fourSegments)
  const firsts = files(sim).map((n) => parseInt(n, 10));
  assert.equal(firsts.length, 4);
  const bytes = bytesOf(sim, 0);
  assert.ok(beyond(0, bytes.length) < firsts[3], "later seqs lie past segment 0's bound");
  const frames = v2Frames(bytes);
  const seal = frames[frames.length - 1];
  bytes[seal.payloadAt + 28] ^= 0x01;
  sim.setFileBytes(`${LOG_DIR}/${segName(0)}`, bytes);
  const originals = new Map(firsts.map((f) => [segName(f), bytesOf(sim, f)]));
  // Segment 0 holds the big records and the first small ones; a repair keeps all of them.
  return {
    sim,
    seen,
    kept: got.filter((r) => r.seq < firsts[1]),
    originals,
    damaged: 0,
    sealAt: seal.offset,
    later: firsts.slice(1),
  };
}

/** Segment `gone` (5 or 10) deleted: the segment before it no longer chains to the next one. */
async function deletedMiddle(gone: number): Promise<Planted> {
  const { sim, seen } = await fourSegments();
  await sim.unlink(`${LOG_DIR}/${segName(gone)}`);
  await sim.syncDir(LOG_DIR);
  const before = gone - 5;
  const frames = v2Frames(bytesOf(sim, before));
  const later = [10, 15].filter((f) => f > gone);
  const originals = new Map([before, ...later].map((f) => [segName(f), bytesOf(sim, f)]));
  return {
    sim,
    seen,
    kept: kept(gone),
    originals,
    damaged: before,
    sealAt: frames[frames.length - 1].offset,
    later,
  };
}

async function openPlain(sim: SimPlatform) {
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim });
  try {
    await store.log(LOG);
    return null;
  } catch (err) {
    return err as Error & { code?: string; path?: string; offset?: number; seq?: number };
  } finally {
    await store.close();
  }
}

/**
 * Repairs `d` once and checks what the repair did: the damaged segment's records kept and
 * re-sealed, it and every later segment copied or renamed aside intact, a new segment past every
 * seq they could hold; then appends one record and checks what a reader sees.
 */
async function checkRepair(d: Planted): Promise<void> {
  const { sim } = d;
  const damagedBytes = d.originals.get(segName(d.damaged))!;
  const to = Math.max(
    beyond(d.damaged, damagedBytes.length),
    ...d.later.map((f) => beyond(f, d.originals.get(segName(f))!.length)),
  );
  const store = await Store.open(DIR, { ...STORE_OPTS, platform: sim, repair: true });
  try {
    const log = await store.log(LOG);
    const report = log.openReport;
    const endSeq = d.kept.length;
    assert.deepEqual(report.skippedSeqs, { from: endSeq, to });
    assert.equal(log.nextSeq, to);
    assert.deepEqual(
      report.repaired.map(({ path, movedTo, offset }) => ({ path, movedTo, offset })),
      [
        { path: segName(d.damaged), movedTo: `${segName(d.damaged)}.broken`, offset: d.sealAt },
        ...[...d.later].reverse().map((f) => ({
          path: segName(f),
          movedTo: `${segName(f)}.broken`,
          offset: 0,
        })),
      ].map((a) => ({ ...a, path: `${LOG_DIR}/${a.path}`, movedTo: `${LOG_DIR}/${a.movedTo}` })),
    );
    assert.equal(await log.append(rec(100)), to);
    const got = await readAll(log);
    assert.deepEqual(got.map((g) => g.seq), [...d.kept.map((k) => k.seq), to]);
    got.slice(0, endSeq).forEach((g, i) => assert.deepEqual(g.data, rec(i), `record ${i}`));
    // A read from a seq repair skipped goes on at the next record the log has.
    const skipped: number[] = [];
    for await (const r of log.read({ from: endSeq })) skipped.push(r.seq);
    assert.deepEqual(skipped, [to]);
  } finally {
    await store.close();
  }
  assert.deepEqual(
    files(sim),
    [
      ...[0, 5, 10, 15].filter((f) => f <= d.damaged).map(segName),
      ...[d.damaged, ...d.later].map((f) => `${segName(f)}.broken`),
      segName(to),
    ].sort(),
  );
  for (const [name, bytes] of d.originals) {
    assert.deepEqual(sim.fileBytes(`${LOG_DIR}/${name}.broken`), bytes, `${name} set aside intact`);
  }
  // The damaged segment keeps its records as they were, under a new seal ending at endSeq.
  const resealed = bytesOf(sim, d.damaged);
  const frames = v2Frames(resealed);
  const seal = frames[frames.length - 1];
  assert.deepEqual(frames.map((f) => f.type), [1, 1, 1, 1, 1, 2]);
  assert.deepEqual(resealed.subarray(0, seal.offset), damagedBytes.subarray(0, seal.offset));
  assert.equal(seal.offset + seal.size, resealed.length);
  assert.equal(u64(resealed, seal.payloadAt), d.kept.length, "the new seal's endSeq");
  const next = bytesOf(sim, to);
  assert.equal(dv(next).getUint16(8, true), 2);
  assert.deepEqual([u64(next, 16), u64(next, 48)], [to, d.kept.length], "firstSeq, prevEndSeq");
  for (const repair of [false, true]) {
    const seqs = (await readLog(sim, repair)).map((g) => g.seq);
    assert.deepEqual(seqs, [...d.kept.map((k) => k.seq), to], `reopened, repair: ${repair}`);
  }
}

describe("repair of a damaged sealed segment", () => {
  it("a damaged seal: refused at open; repair keeps the segment's records under a new seal, sets the later segments aside and skips their seqs", async () => {
    const d = await damagedSeal();
    const err = await openPlain(d.sim);
    assert.equal(err?.code, "CORRUPTION", String(err));
    assert.equal(err?.path, `${LOG_DIR}/${segName(5)}`);
    assert.equal(err?.offset, d.sealAt);
    assert.match(err!.message, /sealed segment: seal invalid/);
    await checkRepair(d);
  });

  for (const gone of [5, 10]) {
    it(`a deleted middle segment (${gone}): CorruptionError naming the gap; repair keeps the records before it and sets the later segments aside, skipping their seqs`, async () => {
      const d = await deletedMiddle(gone);
      const err = await openPlain(d.sim);
      assert.equal(err?.code, "CORRUPTION", String(err));
      assert.equal(err?.path, `${LOG_DIR}/${segName(gone - 5)}`, "the segment before the gap");
      assert.equal(err?.seq, gone, "where the gap starts");
      assert.match(
        err!.message,
        new RegExp(
          `ends at seq ${gone}, but the next segment says the one before it ended at ${gone + 5}`,
        ),
      );
      // Records after the gap leave the log for now (set aside, not deleted).
      await checkRepair(d);
    });
  }
});

describe("crash during repair of a damaged sealed segment", () => {
  const scenarios: [string, () => Promise<Planted>][] = [
    ["a damaged seal", damagedSeal],
    ["a damaged seal before segments of higher seqs", damagedSealBeforeDenseSegments],
    ["a deleted middle segment", () => deletedMiddle(5)],
  ];
  for (const [name, plant] of scenarios) {
    it(`${name}: no crash at any step loses the damaged or a later segment's bytes, a record before the damage, nor gives a seq to two records`, async () => {
      const d = await plant();
      const r = await exploreRepair(d.sim, d);
      console.log(
        `crash during repair of a sealed segment (${name}): crash points=${r.points}, ` +
          `states=${r.states}, second crashes=${r.chains}, violations=${r.failures.length}`,
      );
      assert.ok(r.points > 10, `${r.points} crash points`);
      assert.deepEqual(r.failures.slice(0, 5), [], `${r.failures.length} violations`);
    });
  }
});
