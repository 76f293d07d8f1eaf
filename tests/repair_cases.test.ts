// Repair that keeps what is intact (issue 16), one kind of damage at a time, on a log large enough
// for every kind of anchor: four or more segments of 256 KiB (sealed ones with several sparse index
// entries in their seals, a newest one with stored index entries and a mark), records of 1-4 KiB
// with distinct timestamps, some of them in batches of three.
//
// For each case the damaged records are found from the bytes (the frames `tests/spec_codec.ts`
// decodes from the segment as written, and the bytes the test changed): every record whose frame
// overlaps a damaged byte, nothing else. `checkRepaired` (tests/repair_explorer.ts) then checks the
// repair-mode open: every other record readable at its own seq with its own data and timestamp;
// exactly the damaged seqs missing, as `log.gaps`, as `lost` in the report and as declared gaps in
// the headers; each intact run a sealed segment named by its first seq, valid by FORMAT.md; the
// other segments untouched; `.broken` holding the damaged bytes; a fresh seq for the next append;
// reads and cursors starting in a gap going on at the next record; `verify()` clean; reopening
// (plain and repair) giving the same log and repairing nothing more. Without repair mode, damage
// in a sealed segment or before the newest segment's mark is found by readers only; a missing or
// cut segment is refused at open.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SyncPolicy } from "../mod.ts";
import { seededRandom } from "../src/testing/sim.ts";
import { INDEX_AT } from "./spec_codec.ts";
import {
  assertFoundByReaders,
  checkRepaired,
  type Edit,
  type LogOpts,
  openPlain,
  payloadAt,
  plant,
  type Planted,
  type SpecSegment,
  writeLog,
  type Written,
} from "./repair_explorer.ts";

const OPTS: LogOpts = { syncPolicy: SyncPolicy.always(), segmentBytes: 256 << 10 };

/** Record `n`: 1024 to 4095 bytes (from `size`), each byte a function of `n` and its index. */
const payload = (n: number, size: number) =>
  Uint8Array.from({ length: size }, (_, i) => (n * 131 + i * 7 + 1) & 0xff);

/** The log every case damages: a fresh copy each time (writing it takes a fraction of a second). */
async function bigLog(): Promise<Written> {
  const rnd = seededRandom(16);
  const size = () => 1024 + Math.floor(rnd() * 3072);
  const w = await writeLog(OPTS, async (log) => {
    for (let n = 0; n < 440;) {
      if (n % 10 === 7) {
        await log.appendBatch([0, 1, 2].map((k) => payload(n + k, size())));
        n += 3;
      } else {
        await log.append(payload(n++, size()));
      }
    }
  });
  // What the cases rely on: sealed segments with index entries inside, a newest segment holding
  // stored entries and a mark, batches.
  assert.ok(w.segs.length >= 4, `${w.segs.length} segments`);
  for (const s of w.segs.slice(0, -1)) {
    assert.ok(s.entries.length >= 3, `${s.name}: its seal's index`);
  }
  const newest = w.segs.at(-1)!;
  assert.ok(newest.entries.length >= 2, `the newest segment's stored entries`);
  assert.equal(newest.durableEnd, newest.frames.at(-1)!.offset + newest.frames.at(-1)!.size);
  return w;
}

/** The record frame halfway between index entries `i` and `i + 1` of `s` (or its end). */
function between(s: SpecSegment, i: number) {
  const from = s.entries[i].offset;
  const to = s.entries[i + 1]?.offset ?? s.frames.at(-1)!.offset;
  const inside = s.frames.filter((f) => f.offset > from && f.offset + f.size < to);
  assert.ok(inside.length >= 3, `${s.name}: records between entries ${i} and ${i + 1}`);
  return inside[Math.floor(inside.length / 2)];
}

/** Plants `edits` in segment `s` of a fresh log (chosen by index, built from that log). */
async function damaged(
  which: (segs: SpecSegment[]) => SpecSegment,
  edits: (s: SpecSegment) => Edit[] | "delete",
): Promise<Planted> {
  const w = await bigLog();
  const s = which(w.segs);
  return await plant(w, s.header.firstSeq, edits(s));
}
const sealedMiddle = (segs: SpecSegment[]) => segs[1];
const newest = (segs: SpecSegment[]) => segs.at(-1)!;

describe("repair keeps every intact record (one kind of damage at a time)", () => {
  it("a flipped payload byte in a record of a sealed segment: only that record is lost", async () => {
    const d = await damaged(sealedMiddle, (s) => [{ flip: payloadAt(between(s, 1)) + 500 }]);
    assert.equal(d.lost.length, 1);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a flipped byte in the newest segment before its mark (after a clean close): found by readers without repair, by a repair-mode open with it", async () => {
    const d = await damaged(newest, (s) => [{ flip: payloadAt(between(s, 0)) + 200 }]);
    assert.equal(d.lost.length, 1);
    assert.ok(d.target.durableEnd! > d.offset!.byte, "the damage lies before the mark");
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a flipped byte in a frame's length varint (the frame's extent is wrong): the frames after it are found again", async () => {
    const d = await damaged(sealedMiddle, (s) => {
      const f = between(s, 1);
      const at = f.offset + 5;
      assert.ok(f.payload.length >= 1024 && s.bytes[at] & 0x80, "a two-byte length");
      assert.equal(s.bytes[at + 1] & 0x20, 0, "the flip adds 4096 to the length");
      return [{ flip: at + 1, mask: 0x20 }];
    });
    assert.equal(d.lost.length, 1);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a zeroed range spanning several records and a sparse index entry's frame", async () => {
    const d = await damaged(sealedMiddle, (s) => {
      const anchor = s.entries[2].offset;
      return [{ zero: [anchor - 3000, anchor + 6000] }];
    });
    assert.ok(d.lost.length >= 3, `${d.lost.length} records zeroed`);
    assert.ok(d.lost.includes(d.target.entries[2].seq), "the indexed record among them");
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a zeroed range in the newest segment spanning a stored index entry's frame", async () => {
    const d = await damaged(newest, (s) => {
      const anchor = s.entries[1].offset;
      return [{ zero: [anchor - 2000, anchor + 5000] }];
    });
    assert.ok(d.lost.length >= 2, `${d.lost.length} records zeroed`);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("the last two records of the newest segment zeroed before its mark: the log goes on past them", async () => {
    const d = await damaged(newest, (s) => {
      const [a, b] = s.frames.slice(-2);
      return [{ zero: [a.offset, b.offset + b.size] }];
    });
    assert.equal(d.lost.length, 2);
    assert.equal(d.lost.at(-1), d.target.endSeq - 1);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a deleted middle segment: refused naming the missing seqs and the file after the hole; repair declares the gap in that file's header", async () => {
    const d = await damaged(sealedMiddle, () => "delete");
    const segs = d.written.segs;
    const r = await openPlain(d.sim, OPTS);
    assert.equal(r.open?.code, "CORRUPTION", String(r.open));
    assert.equal(r.open?.path, segs[2].path, "the file after the hole");
    assert.equal(r.open?.seq, segs[0].endSeq, "the first missing seq");
    assert.match(
      r.open!.message,
      new RegExp(`${segs[0].endSeq}\\b[^]*\\b${segs[2].header.prevEndSeq}`),
    );
    await checkRepaired(d, OPTS);
  });

  it("a truncated sealed segment (cut inside a frame, its seal gone): the whole frames before the cut stay, the next segment declares the rest", async () => {
    const d = await damaged(sealedMiddle, (s) => [{ cut: between(s, 2).offset + 700 }]);
    assert.ok(d.lost.length >= 3);
    assert.equal(d.lost.at(-1), d.target.endSeq - 1);
    const r = await openPlain(d.sim, OPTS);
    assert.equal(r.open?.code, "CORRUPTION", String(r.open));
    assert.equal(r.open?.path, d.target.path);
    await checkRepaired(d, OPTS);
  });

  it("a damaged first record of a sealed segment: the rest of it becomes a segment of its own", async () => {
    const d = await damaged(sealedMiddle, (s) => [{ flip: payloadAt(s.frames[0]) + 10 }]);
    assert.deepEqual(d.lost, [d.target.header.firstSeq]);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a damaged last record of a sealed segment: the next segment declares the gap", async () => {
    const d = await damaged(sealedMiddle, (s) => [{ flip: payloadAt(s.frames.at(-1)!) + 10 }]);
    assert.deepEqual(d.lost, [d.target.endSeq - 1]);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("two damaged places in one segment: three runs, two gaps", async () => {
    const d = await damaged(sealedMiddle, (s) => [
      { flip: payloadAt(between(s, 0)) + 100 },
      { zero: [between(s, 2).offset + 4, between(s, 2).offset + 12] },
    ]);
    assert.equal(d.lost.length, 2);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });

  it("a partly damaged batch keeps its intact records", async () => {
    const d = await damaged(sealedMiddle, (s) => {
      const i = s.frames.findIndex((f, k) => k > 10 && f.type === 3 && s.frames[k + 1].type === 3);
      assert.ok(i > 0, "a batch of three");
      return [{ flip: payloadAt(s.frames[i + 1]) + 50 }];
    });
    assert.equal(d.lost.length, 1);
    await assertFoundByReaders(d, OPTS);
    await checkRepaired(d, OPTS);
  });
  it("a damaged stored index entry of the newest segment: refused at open; repair loses no record", async () => {
    const d = await damaged(newest, () => [{ flip: INDEX_AT + 3 }]); // entry 1's seq
    assert.deepEqual(d.lost, []);
    const r = await openPlain(d.sim, OPTS);
    assert.equal(r.open?.code, "CORRUPTION", String(r.open));
    assert.deepEqual([r.open?.path, r.open?.offset], [d.target.path, INDEX_AT]);
    await checkRepaired(d, OPTS);
  });

  // The header's extension (bytes 32..75) fails its CRC, but nothing in it is unknown: the log id
  // is every other segment's (and the frames' seeded CRCs prove it), firstSeq and dataStart are in
  // the bytes the first CRC covers, prevEndSeq is where the segment before ends, baseTimestamp is
  // entry 0's prevTimestamp (the seal's, or a stored entry's / the frames' for the newest).
  for (const [where, which] of [["a sealed", sealedMiddle], ["the newest", newest]] as const) {
    it(`a flipped byte in ${where} segment's header (its log id): every record of it is intact and stays`, async () => {
      const d = await damaged(which, () => [{ flip: 40 }]);
      assert.deepEqual(d.lost, []);
      const r = await openPlain(d.sim, OPTS);
      assert.equal(r.open?.code, "CORRUPTION", String(r.open));
      assert.deepEqual([r.open?.path, r.open?.offset], [d.target.path, 0]);
      await checkRepaired(d, OPTS);
    });
  }
});
