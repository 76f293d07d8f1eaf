// Repair mode for damage in a SEALED segment, or a missing one, with segments after it, and a
// power cut (or kill -9) between any two of its steps.
//
// The log: segments 0-4, 5-9, 10-14 (sealed) and 15-16 (active), 700-byte records. The damage:
// - segment 5's seal (one byte of its first index entry flipped): every record is intact, the
//   segment gets a new seal;
// - one byte of record 7's payload: records 5, 6 and 8, 9 stay, as segments 5 and 8, and seq 7 is
//   a declared gap (segment 8's header says the one before it ends at 7);
// - segment 5 cut inside record 8 (its seal gone): records 5-7 stay, sealed, and segment 10's
//   header is rewritten to declare the gap [8, 10);
// - segment 5's first record: records 6-9 become segment 6 and the name 5 leaves the log (explored);
// - records 7 and 12: one repair salvages two segments (explored);
// - segment 5 (or 10) deleted: a plain open names the missing seqs and the file after the hole;
//   repair rewrites that file's header to declare them as a gap, and every other record stays.
// Nothing that follows the damage leaves the log. `checkRepaired` (tests/repair_explorer.ts) pins
// what one repair leaves, records, gaps, files and bytes, by FORMAT.md alone.
//
// The explorations (tests/repair_explorer.ts) freeze the repair-mode open after every call that
// changes the disk and crash it in every mode: at every instant the damaged segment's bytes exist
// byte for byte under its own name or a `.broken` / `.broken.N` name, and no `.broken` file is ever
// deleted; a plain open refuses or keeps every intact record; the next repair-mode open succeeds,
// keeps every intact record, leaves the same gaps as an uninterrupted repair and no
// `*.seg.repair`; a second crash during that open is survived too; and no seq is ever given to two
// records.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { SimPlatform } from "../src/testing/sim.ts";
import {
  assertFoundByReaders,
  checkRepaired,
  type Damaged,
  exploreRepair,
  files,
  frameOf,
  openPlain,
  payloadAt,
  plant,
  type Planted,
  readLog,
  rec,
  segName,
  specSegments,
  STORE_OPTS,
  writeLog,
  type Written,
} from "./repair_explorer.ts";

/** Segments 0-4, 5-9, 10-14 (sealed) and 15-16 (active), every record read once. */
async function fourSegments(): Promise<Written> {
  const w = await writeLog(STORE_OPTS, async (log) => {
    for (let i = 0; i < 17; i++) await log.append(rec(i));
  });
  assert.deepEqual(files(w.sim), [0, 5, 10, 15].map(segName));
  return w;
}

/** One byte of segment 5's seal flipped: in its first index entry's seq. */
async function damagedSeal(): Promise<Planted> {
  const w = await fourSegments();
  const seal = w.segs[1].seal!;
  // endSeq, firstTs, lastTs (u64), n (u32), then entry 0
  return await plant(w, 5, [{ flip: payloadAt(seal) + 28, mask: 0x01 }]);
}

/** One byte of record 7's payload (segment 5) flipped. */
async function flippedRecord(): Promise<Planted> {
  const w = await fourSegments();
  return await plant(w, 5, [{ flip: payloadAt(frameOf(w.segs[1], 7)) + 300 }]);
}

/** Segment 5 cut inside record 8: its seal is gone with records 8 and 9. */
async function truncatedSealed(): Promise<Planted> {
  const w = await fourSegments();
  return await plant(w, 5, [{ cut: frameOf(w.segs[1], 8).offset + 300 }]);
}

/** One byte of segment 5's first record (5) flipped: its name leaves the log, 6-9 become segment 6. */
async function damagedFirstRecord(): Promise<Planted> {
  const w = await fourSegments();
  return await plant(w, 5, [{ flip: payloadAt(frameOf(w.segs[1], 5)) + 10 }]);
}

/** Records 7 (segment 5) and 12 (segment 10) damaged: one repair acts on two segments. */
async function twoDamagedSegments(): Promise<Damaged & { sim: SimPlatform }> {
  const w = await fourSegments();
  const a = await plant(w, 5, [{ flip: payloadAt(frameOf(w.segs[1], 7)) + 10 }]);
  const b = await plant(w, 10, [{ flip: payloadAt(frameOf(w.segs[2], 12)) + 10 }]);
  return {
    sim: w.sim,
    seen: a.seen,
    kept: w.all.filter((r) => r.seq !== 7 && r.seq !== 12),
    originals: new Map([...a.originals, ...b.originals]),
    above: 17,
  };
}

/** Segment `gone` (5 or 10) deleted. */
async function deletedMiddle(gone: number): Promise<Planted> {
  return await plant(await fourSegments(), gone, "delete");
}

describe("repair of a damaged sealed segment", () => {
  it("a damaged seal: refused at open; repair keeps every record of the segment under a new seal and leaves the later segments alone", async () => {
    const d = await damagedSeal();
    assert.deepEqual(d.lost, []);
    const r = await openPlain(d.sim, STORE_OPTS);
    assert.equal(r.open?.code, "CORRUPTION", String(r.open));
    assert.equal(r.open?.path, d.target.path);
    assert.equal(r.open?.offset, d.target.seal!.offset);
    assert.match(r.open!.message, /sealed segment: seal invalid/);
    await checkRepaired(d, STORE_OPTS);
  });

  it("a flipped byte in record 7: found only by readers without repair; repair keeps 5, 6 and 8, 9 at their seqs, seq 7 a declared gap", async () => {
    const d = await flippedRecord();
    assert.deepEqual(d.lost, [7]);
    await assertFoundByReaders(d, STORE_OPTS);
    await checkRepaired(d, STORE_OPTS);
  });

  it("cut inside record 8: refused (no seal); repair keeps and seals 5-7, and the next segment's header declares [8, 10)", async () => {
    const d = await truncatedSealed();
    assert.deepEqual(d.lost, [8, 9]);
    const r = await openPlain(d.sim, STORE_OPTS);
    assert.equal(r.open?.code, "CORRUPTION", String(r.open));
    assert.equal(r.open?.path, d.target.path);
    assert.match(r.open!.message, /no seal/);
    await checkRepaired(d, STORE_OPTS);
  });

  it("damage found again after a repair: the new copy goes to .broken.1, the first .broken and the first gap stay", async () => {
    const d = await flippedRecord();
    await checkRepaired(d, STORE_OPTS);
    // The repaired log (segments 0, 5, 8, 10, 15), with its gap at 7, an append and a cursor.
    const w = { sim: d.sim, all: await readLog(d.sim, false), segs: specSegments(d.sim) };
    assert.deepEqual(w.segs.map((s) => s.name), [0, 5, 8, 10, 15].map(segName));
    const again = await plant(w, 5, [{ flip: payloadAt(frameOf(w.segs[1], 6)) + 10 }]);
    assert.deepEqual(again.lost, [6]);
    await checkRepaired(again, STORE_OPTS);
    assert.ok(files(d.sim).includes(`${segName(5)}.broken.1`));
  });

  for (const gone of [5, 10]) {
    it(`a deleted middle segment (${gone}): CorruptionError naming the missing seqs and the file after the hole; repair declares the gap there and keeps every other record`, async () => {
      const d = await deletedMiddle(gone);
      const r = await openPlain(d.sim, STORE_OPTS);
      assert.equal(r.open?.code, "CORRUPTION", String(r.open));
      assert.equal(r.open?.path, d.written.segs.find((s) => s.header.firstSeq === gone + 5)!.path);
      assert.equal(r.open?.seq, gone, "where the missing seqs start");
      assert.match(r.open!.message, new RegExp(`\\b${gone}\\b[^]*\\b${gone + 5}\\b`));
      await checkRepaired(d, STORE_OPTS);
    });
  }
});

describe("crash during repair of a damaged sealed segment", () => {
  const scenarios: [string, () => Promise<Damaged & { sim: SimPlatform }>][] = [
    ["a damaged seal", damagedSeal],
    ["a flipped byte in a record", flippedRecord],
    ["a damaged first record", damagedFirstRecord],
    ["two damaged segments", twoDamagedSegments],
    ["a truncated sealed segment", truncatedSealed],
    ["a deleted middle segment", () => deletedMiddle(5)],
  ];
  for (const [name, make] of scenarios) {
    it(
      `${name}: no crash at any step loses the damaged bytes or an intact record, deletes a .broken copy, changes what the repair leaves, nor gives a seq to two records`,
      { timeout: 300_000 },
      async () => {
        const d = await make();
        const r = await exploreRepair(d.sim, d);
        console.log(
          `crash during repair of a sealed segment (${name}): crash points=${r.points}, ` +
            `states=${r.states}, second crashes=${r.chains}, violations=${r.failures.length}`,
        );
        assert.ok(r.points > 10, `${r.points} crash points`);
        assert.deepEqual(r.failures.slice(0, 5), [], `${r.failures.length} violations`);
      },
    );
  }
});
