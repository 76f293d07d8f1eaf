// Recovery on open (FORMAT.md, "Recovery"): a torn tail is cut and reported, damage is refused with
// a CorruptionError that names the file, offset and sequence number and truncates nothing, repair
// mode sets damage aside, and sealed segments, torn headers and sequence gaps are handled as
// specified. Segment files are damaged byte by byte on a real file system (node:fs platform).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { CorruptionError, Store, type StoreOptions, SyncPolicy } from "../mod.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { concat } from "./helpers.ts";

const HEADER = 32;
const FH = 28;
const SIZE = 40; // payload bytes per record: frames of 68 bytes
const FRAME = FH + SIZE;
const LOG = "l";

const payload = (seq: number) =>
  Uint8Array.from({ length: SIZE }, (_, k) => (seq * 7 + k * 13 + 1) & 0xff);
const segName = (firstSeq: number) => `${String(firstSeq).padStart(20, "0")}.seg`;
const frameAt = (i: number) => HEADER + i * FRAME;

let root: string;
let counter = 0;
const freshDir = () => join(root, `s${counter++}`);

function openStore(dir: string, opts: StoreOptions = {}): Promise<Store> {
  return Store.open(dir, { platform: nodePlatform, syncPolicy: SyncPolicy.always(), ...opts });
}

/** Writes `n` records through the Store and returns the bytes of every segment, oldest first. */
async function buildLog(n: number, opts: StoreOptions = {}): Promise<Uint8Array[]> {
  const dir = freshDir();
  const store = await openStore(dir, { syncPolicy: SyncPolicy.osManaged(), ...opts });
  const log = await store.log(LOG);
  for (let i = 0; i < n; i++) await log.append(payload(i));
  await store.close();
  return readdirSync(join(dir, LOG)).sort().map((f) =>
    new Uint8Array(readFileSync(join(dir, LOG, f)))
  );
}

/** A fresh store directory whose log holds the given segment files. */
function place(files: Record<number, Uint8Array>): { dir: string; path: (seq: number) => string } {
  const dir = freshDir();
  mkdirSync(join(dir, LOG), { recursive: true });
  for (const [seq, bytes] of Object.entries(files)) {
    writeFileSync(join(dir, LOG, segName(Number(seq))), bytes);
  }
  return { dir, path: (seq: number) => join(dir, LOG, segName(seq)) };
}

/** Opens the log, reads everything, and returns what it found; closes the store. */
async function inspect(dir: string, opts: StoreOptions = {}) {
  const store = await openStore(dir, opts);
  try {
    const log = await store.log(LOG);
    const seqs: number[] = [];
    for await (const r of log.read({ from: 0 })) {
      assert.deepEqual(r.data, payload(r.seq), `data of ${r.seq}`);
      seqs.push(r.seq);
    }
    return { report: log.openReport, seqs, first: log.firstSeq, next: log.nextSeq };
  } finally {
    await store.close();
  }
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/** Opening must fail with a CorruptionError naming path/offset/seq, and change no byte on disk. */
async function expectCorruption(
  dir: string,
  where: { path: string; offset?: number; seq?: number },
  opts: StoreOptions = {},
): Promise<CorruptionError> {
  const files = readdirSync(join(dir, LOG)).sort();
  const before = files.map((f) => readFileSync(join(dir, LOG, f)));
  const store = await openStore(dir, opts);
  let caught: unknown;
  try {
    await store.log(LOG);
  } catch (err) {
    caught = err;
  } finally {
    await store.close();
  }
  assert.ok(caught instanceof CorruptionError, `expected CorruptionError, got ${String(caught)}`);
  assert.equal(caught.code, "CORRUPTION");
  assert.equal(caught.path, where.path);
  if (where.offset !== undefined) assert.equal(caught.offset, where.offset);
  else assert.ok(Number.isSafeInteger(caught.offset), "an offset is given");
  if (where.seq !== undefined) assert.equal(caught.seq, where.seq);
  assert.ok(caught.message.includes(where.path), "the message names the file");
  assert.deepEqual(readdirSync(join(dir, LOG)).sort(), files, "no file added or removed");
  files.forEach((f, i) => {
    assert.deepEqual(readFileSync(join(dir, LOG, f)), before[i], `${f} unchanged`);
  });
  return caught;
}

let five: Uint8Array; // one segment, records 0..4, 32 + 5 * 68 bytes
let three: Uint8Array[]; // three segments (4096-byte segments, 130 records)

before(async () => {
  root = mkdtempSync(join(tmpdir(), "khipu-recovery-"));
  [five] = await buildLog(5);
  three = await buildLog(130, { segmentBytes: 4096 });
  assert.equal(five.length, frameAt(5));
  assert.equal(three.length, 3);
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** First seqs of the three-segment log: 59 records fit a 4096-byte segment. */
const SEG = [0, 59, 118];

describe("torn tail of the newest segment", () => {
  it("intact log: round trip, nothing truncated", async () => {
    const { dir } = place({ 0: five });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, 0);
    assert.equal(r.report.truncatedAt, null);
    assert.equal(r.next, 5);
  });

  it("every cut point of the last frame: cut, reported, appends continue at its seq", async () => {
    const last = frameAt(4);
    for (let keep = 0; keep < FRAME; keep++) {
      const { dir, path } = place({ 0: five.slice(0, last + keep) });
      const store = await openStore(dir);
      const log = await store.log(LOG);
      assert.equal(log.openReport.truncatedBytes, keep, `cut at +${keep}`);
      assert.deepEqual(log.openReport.truncatedAt, keep ? { path: path(0), offset: last } : null);
      assert.equal(log.nextSeq, 4);
      assert.equal(readFileSync(path(0)).length, last, "cut back to the last whole frame");
      assert.equal(await log.append(payload(4)), 4);
      await store.close();
      assert.deepEqual(
        new Uint8Array(readFileSync(path(0))).subarray(0, last),
        five.subarray(0, last),
      );
      const again = await inspect(dir);
      assert.deepEqual(again.seqs, range(0, 5));
      assert.equal(again.report.truncatedBytes, 0);
    }
  });

  for (const zeros of [4096, 1 << 20]) {
    it(`${zeros} zero bytes after the last frame: no phantom records, cut`, async () => {
      const { dir, path } = place({ 0: concat(five, new Uint8Array(zeros)) });
      const r = await inspect(dir);
      assert.deepEqual(r.seqs, range(0, 5));
      assert.equal(r.report.truncatedBytes, zeros);
      assert.deepEqual(r.report.truncatedAt, { path: path(0), offset: five.length });
      assert.equal(r.next, 5);
      assert.equal(readFileSync(path(0)).length, five.length);
    });
  }

  it("zeros over the end of the last frame (size reached disk, data did not): cut", async () => {
    const bytes = five.slice();
    bytes.fill(0, frameAt(4) + 10);
    const { dir } = place({ 0: bytes });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 4));
    assert.equal(r.report.truncatedBytes, FRAME);
  });

  it("garbage after the last frame: cut", async () => {
    const garbage = Uint8Array.from({ length: 1000 }, (_, i) => (i * 151 + 7) & 0xff);
    const { dir } = place({ 0: concat(five, garbage) });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, 1000);
  });

  it("a zeroed frame with a valid one after it in the same sector is damage, not a lost write", async () => {
    // A lost page reads back as zeros to its end, so record 4 (same sector) would be zeros too.
    const bytes = five.slice();
    bytes.fill(0, frameAt(3), frameAt(4));
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(3), seq: 3 });
  });

  it("the newest segment of several: cut, earlier sealed segments untouched", async () => {
    const newest = three[2].slice(0, three[2].length - 5);
    const { dir, path } = place({ [SEG[0]]: three[0], [SEG[1]]: three[1], [SEG[2]]: newest });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 129));
    assert.equal(r.report.truncatedBytes, FRAME - 5);
    assert.deepEqual(new Uint8Array(readFileSync(path(0))), three[0]);
  });
});

describe("damage in the middle of the newest segment: CorruptionError, nothing truncated", () => {
  it("a flipped bit in every byte of a middle frame's header, and in its payload", async () => {
    const at = frameAt(2);
    const positions = [...range(0, FH), FH, FH + 1, FH + SIZE / 2, FRAME - 1];
    for (const i of positions) {
      for (const mask of i === 4 ? [0x01, 0x03, 0x80] : [0x01, 0x80]) {
        const bytes = five.slice();
        bytes[at + i] ^= mask;
        const { dir, path } = place({ 0: bytes });
        await expectCorruption(dir, { path: path(0), offset: at, seq: 2 });
      }
    }
  });

  it("a damaged first frame (followed by valid ones)", async () => {
    const bytes = five.slice();
    bytes[frameAt(0) + FH + 3] ^= 0x10;
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: HEADER, seq: 0 });
  });

  it("a zeroed region inside a frame followed by valid frames (not a lost whole write)", async () => {
    const bytes = five.slice();
    bytes.fill(0, frameAt(1) + 30, frameAt(2) + 10);
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(1), seq: 1 });
  });

  it("a frame copied over another position does not decode there", async () => {
    const bytes = five.slice();
    bytes.copyWithin(frameAt(3), frameAt(1), frameAt(2)); // record 1's frame where 3 belongs
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(3), seq: 3 });
  });

  it("a huge length field in a middle frame", async () => {
    const bytes = five.slice();
    new DataView(bytes.buffer).setUint32(frameAt(2) + 8, 0xffff_fff0, true);
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(2), seq: 2 });
  });
});

describe("the lost-write rule on a larger segment (FORMAT.md, 'Lost write')", () => {
  // 20 records of 300 bytes: frames of 328 bytes, record i at 32 + 328 i.
  const BIG = 300;
  const bigPayload = (seq: number) => new Uint8Array(BIG).fill((seq * 5 + 1) & 0xff);
  let seg: Uint8Array;
  const at = (i: number) => HEADER + i * (FH + BIG);

  before(async () => {
    const dir = freshDir();
    const store = await openStore(dir, { syncPolicy: SyncPolicy.osManaged() });
    const log = await store.log(LOG);
    for (let i = 0; i < 20; i++) await log.append(bigPayload(i));
    await store.close();
    seg = new Uint8Array(readFileSync(join(dir, LOG, segName(0))));
    assert.equal(seg.length, at(20));
  });

  it("a zeroed 512-byte sector with valid frames after it is a lost write: cut, tornHole", async () => {
    const bytes = seg.slice();
    bytes.fill(0, 1024, 1536); // inside records 3 (1016..1344) and 4 (1344..1672)
    const { dir, path } = place({ 0: bytes });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.openReport.tornHole, true);
    assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: at(3) });
    assert.equal(log.openReport.truncatedBytes, seg.length - at(3));
    assert.equal(log.nextSeq, 3);
    await store.close();
  });

  it("zeros that cover no aligned sector and do not start at the bad frame are corruption", async () => {
    const bytes = seg.slice();
    bytes.fill(0, at(3) + 40, at(3) + 40 + 400); // 400 zero bytes, no whole aligned sector
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: at(3), seq: 3 });
  });

  it("zeros from the bad frame to the next sector boundary, a frame header or more (a lost page tail): cut", async () => {
    const bytes = seg.slice();
    bytes.fill(0, at(4), 1536); // 1344..1536: 192 zeros, no whole aligned sector, then intact bytes
    const { dir, path } = place({ 0: bytes });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.openReport.tornHole, true);
    assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: at(4) });
    assert.equal(log.nextSeq, 4);
    await store.close();
  });

  it("fewer zeros than a frame header up to the sector boundary are damage (a zeroed CRC byte)", async () => {
    const bytes = seg.slice();
    bytes.fill(0, at(3), 1024); // 1016..1024: 8 zeros, then record 3's remaining bytes intact
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: at(3), seq: 3 });
  });
});

describe("copied frames and huge lengths at the tail: no phantom records, no huge reads", () => {
  it("a copy of an earlier frame appended at the end is cut, not read", async () => {
    const copy = five.slice(frameAt(1), frameAt(2));
    const { dir } = place({ 0: concat(five, copy) });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, FRAME);
  });

  it("a frame copied from another segment into the newest is cut, not read", async () => {
    const foreign = three[0].slice(frameAt(0), frameAt(1)); // seq 0 from the first segment
    const newest = concat(three[2], foreign);
    const { dir } = place({ [SEG[0]]: three[0], [SEG[1]]: three[1], [SEG[2]]: newest });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 130));
    assert.equal(r.report.truncatedBytes, FRAME);
  });

  it("a length field just under a 256 MiB cap on the last frame: cut, reads stay small", async () => {
    // The header's cap allows the length, so only the file size bounds it.
    const [seg] = await buildLog(3, { maxRecordBytes: 1 << 28 });
    new DataView(seg.buffer).setUint32(frameAt(2) + 8, (1 << 28) - 1, true);
    const { dir } = place({ 0: seg });
    const rec = recordingPlatform(nodePlatform, { ignore: ["stat", "size"] });
    const store = await openStore(dir, { platform: rec, maxRecordBytes: 1 << 28 });
    const log = await store.log(LOG);
    assert.equal(log.nextSeq, 2);
    assert.equal(log.openReport.truncatedBytes, FRAME);
    const reads = rec.calls.filter((c) => c.op === "readAt").map((c) => c.bytes ?? 0);
    assert.ok(Math.max(...reads) <= 512 * 1024, `largest read ${Math.max(...reads)}`);
    await store.close();
  });
});

describe("segment headers", () => {
  it("a newest segment that is all zeros (header lost) is recreated", async () => {
    const { dir, path } = place({ 0: new Uint8Array(HEADER) });
    const r = await inspect(dir);
    assert.equal(r.report.recreatedSegment, path(0));
    assert.deepEqual(r.seqs, []);
    assert.equal(r.next, 0);
    assert.deepEqual(
      new Uint8Array(readFileSync(path(0))).subarray(0, 8),
      new TextEncoder().encode("KHIPUSEG"),
    );
  });

  it("a newest segment shorter than a header is recreated; appends continue", async () => {
    const { dir, path } = place({
      [SEG[0]]: three[0],
      [SEG[1]]: three[1],
      [SEG[2]]: three[2].slice(0, 10),
    });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.openReport.recreatedSegment, path(SEG[2]));
    assert.equal(log.nextSeq, SEG[2]);
    assert.equal(await log.append(payload(SEG[2])), SEG[2]);
    await store.close();
    assert.deepEqual((await inspect(dir)).seqs, range(0, SEG[2] + 1));
  });

  it("a newest segment whose header is torn into garbage, with nothing after it, is recreated", async () => {
    const bytes = new Uint8Array(HEADER + 100);
    bytes.set(five.subarray(0, 20)); // part of a header, then garbage, then zeros
    bytes.fill(0xa5, 20, HEADER);
    const { dir, path } = place({ 0: bytes });
    const r = await inspect(dir);
    assert.equal(r.report.recreatedSegment, path(0));
    assert.equal(r.next, 0);
  });

  it("an empty newest segment with a well-formed header of another version is refused, not rewritten", async () => {
    const bytes = five.slice(0, HEADER);
    bytes[8] = 2; // format version 2, checksum recomputed below: a header from a future release
    new DataView(bytes.buffer).setUint32(28, crc32(bytes.subarray(0, 28)), true);
    const { dir, path } = place({ 0: bytes });
    for (const repair of [false, true]) {
      const store = await openStore(dir, { repair });
      await assert.rejects(store.log(LOG), (e: unknown) => {
        assert.ok(e instanceof CorruptionError);
        assert.match(e.message, /unsupported format version 2/);
        return true;
      });
      await store.close();
    }
    assert.deepEqual(new Uint8Array(readFileSync(path(0))), bytes);
  });

  it("a zero-filled header over records in the newest segment is corruption", async () => {
    const bytes = five.slice();
    bytes.fill(0, 0, HEADER);
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: 0 });
  });

  it("a header whose first seq disagrees with the file name is corruption", async () => {
    const { dir, path } = place({ 7: five });
    await expectCorruption(dir, { path: path(7), offset: 0 });
  });

  it("a zero-filled header of an older (sealed) segment is corruption", async () => {
    const first = three[0].slice();
    first.fill(0, 0, HEADER);
    const { dir, path } = place({ [SEG[0]]: first, [SEG[1]]: three[1], [SEG[2]]: three[2] });
    await expectCorruption(dir, { path: path(SEG[0]), offset: 0 });
  });
});

describe("sealed segments and sequence gaps", () => {
  it("a gap between segments is corruption", async () => {
    const { dir, path } = place({ [SEG[0]]: three[0], [SEG[2]]: three[2] });
    await expectCorruption(dir, {
      path: path(SEG[0]),
      offset: three[0].length - (FH + 8 + 16),
      seq: SEG[2],
    });
  });

  it("a damaged seal is corruption", async () => {
    const sealAt = three[1].length - (FH + 8 + 16);
    const sealBytes = FH + 8 + 16;
    for (const i of [0, 4, 8, 12, 20, FH, FH + 4, FH + 12, sealBytes - 4, sealBytes - 1]) {
      const second = three[1].slice();
      second[sealAt + i] ^= 0x04;
      const { dir, path } = place({ [SEG[0]]: three[0], [SEG[1]]: second, [SEG[2]]: three[2] });
      // A damaged trailer points elsewhere, so the offset reported is wherever it pointed.
      const offset = i >= sealBytes - 4 ? undefined : sealAt;
      const err = await expectCorruption(dir, { path: path(SEG[1]), offset });
      assert.match(err.message, /seal/);
    }
  });

  it("a torn (shortened) older segment is corruption", async () => {
    const { dir, path } = place({
      [SEG[0]]: three[0].slice(0, three[0].length - 1),
      [SEG[1]]: three[1],
      [SEG[2]]: three[2],
    });
    const err = await expectCorruption(dir, { path: path(SEG[0]), offset: three[0].length - 1 });
    assert.match(err.message, /seal/);
  });

  it("a torn seal on the newest segment (crash while sealing) is a torn tail", async () => {
    const torn = three[0].slice(0, three[0].length - 20);
    const { dir, path } = place({ 0: torn });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.nextSeq, SEG[1]);
    assert.equal(log.openReport.truncatedBytes, FH + 8 + 16 - 20);
    assert.equal(log.segmentCount, 1);
    assert.equal(await log.append(payload(SEG[1])), SEG[1]);
    await store.close();
    assert.deepEqual((await inspect(dir)).seqs, range(0, SEG[1] + 1));
    assert.equal(readdirSync(join(dir, LOG)).length, 1, `${path(0)} still the only segment`);
  });

  it("a whole seal on the newest segment (crash before the next one): next segment created", async () => {
    const { dir, path } = place({ 0: three[0] });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.nextSeq, SEG[1]);
    assert.equal(log.segmentCount, 2);
    assert.equal(log.openReport.truncatedBytes, 0);
    assert.equal(await log.append(payload(SEG[1])), SEG[1]);
    await store.close();
    assert.ok(existsSync(path(SEG[1])));
    assert.deepEqual(new Uint8Array(readFileSync(path(0))), three[0]);
    assert.deepEqual((await inspect(dir)).seqs, range(0, SEG[1] + 1));
  });

  it("a damaged record inside a sealed segment opens (seal trusted) but fails when read", async () => {
    const first = three[0].slice();
    first[frameAt(10) + FH + 1] ^= 0x01;
    const { dir, path } = place({ [SEG[0]]: first, [SEG[1]]: three[1], [SEG[2]]: three[2] });
    const store = await openStore(dir);
    try {
      const log = await store.log(LOG);
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const r of log.read({ from: 0 })) seen.push(r.seq);
        })(),
        (e: unknown) => {
          assert.ok(e instanceof CorruptionError);
          assert.equal(e.path, path(SEG[0]));
          assert.equal(e.offset, frameAt(10));
          assert.equal(e.seq, 10);
          return true;
        },
      );
      assert.deepEqual(seen, range(0, 10));
      const later: number[] = [];
      for await (const r of log.read({ from: SEG[1] })) later.push(r.seq);
      assert.deepEqual(later, range(SEG[1], 130), "other segments still readable");
    } finally {
      await store.close();
    }
  });
});

describe("repair mode", () => {
  it("newest segment: damaged file moved to .broken, the prefix kept, appends continue", async () => {
    const bytes = five.slice();
    bytes[frameAt(2) + FH + 5] ^= 0x20;
    const { dir, path } = place({ 0: bytes });
    const store = await openStore(dir, { repair: true });
    const log = await store.log(LOG);
    assert.equal(log.openReport.repaired.length, 1);
    const action = log.openReport.repaired[0];
    assert.equal(action.path, path(0));
    assert.equal(action.movedTo, `${path(0)}.broken`);
    assert.equal(action.offset, frameAt(2));
    assert.deepEqual(new Uint8Array(readFileSync(`${path(0)}.broken`)), bytes, "damaged copy kept");
    assert.equal(log.nextSeq, 2);
    const seqs: number[] = [];
    for await (const r of log.read({ from: 0 })) seqs.push(r.seq);
    assert.deepEqual(seqs, [0, 1]);
    assert.equal(await log.append(payload(2)), 2);
    await store.close();
    const r = await inspect(dir); // no repair needed any more
    assert.deepEqual(r.seqs, [0, 1, 2]);
    assert.deepEqual(r.report.repaired, []);
  });

  it("older segment with a damaged seal: it and later segments set aside, its records kept", async () => {
    const second = three[1].slice();
    second[second.length - 10] ^= 0x01;
    const { dir, path } = place({ [SEG[0]]: three[0], [SEG[1]]: second, [SEG[2]]: three[2] });
    const store = await openStore(dir, { repair: true });
    const log = await store.log(LOG);
    const moved = log.openReport.repaired.map((a) => [a.path, a.movedTo]);
    assert.deepEqual(moved.sort(), [
      [path(SEG[1]), `${path(SEG[1])}.broken`],
      [path(SEG[2]), `${path(SEG[2])}.broken`],
    ]);
    assert.equal(log.nextSeq, SEG[2]);
    assert.equal(await log.append(payload(SEG[2])), SEG[2]);
    await store.close();
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, SEG[2] + 1));
    assert.deepEqual(new Uint8Array(readFileSync(`${path(SEG[2])}.broken`)), three[2]);
  });

  it("a second repair does not overwrite an earlier .broken file", async () => {
    const bytes = five.slice();
    bytes[frameAt(3) + 2] ^= 0x01;
    const { dir, path } = place({ 0: bytes });
    writeFileSync(`${path(0)}.broken`, "older");
    const r = await inspect(dir, { repair: true });
    assert.equal(r.report.repaired[0].movedTo, `${path(0)}.broken.1`);
    assert.equal(readFileSync(`${path(0)}.broken`, "utf8"), "older");
    assert.deepEqual(r.seqs, [0, 1, 2]);
  });

  it("without repair the same damage still fails (repair is opt-in)", async () => {
    const bytes = five.slice();
    bytes[frameAt(2) + FH + 5] ^= 0x20;
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(2), seq: 2 });
    unlinkSync(path(0));
  });
});
