// Recovery on open (RECOVERY.md, "Opening a log"), on a real file system (node:fs platform).
//
// Version 2, the format the writer writes: segments are built through the Store (on the simulated
// disk, taken as a power cut right after the close leaves them, so the mark lags one fdatasync),
// placed on the real file system and damaged byte by byte, every offset taken from the files
// themselves (header byte 24 gives dataStart, frames are walked with tests/spec_codec.ts's v2
// frame decoder, the mark is read from its slots). After the durable mark a torn tail is cut and
// reported, a never-written zero tail is kept and not reported, and an incomplete batch is
// dropped whole; before the mark nothing is cut: the log opens and a reader that reaches the
// damage gets a CorruptionError naming path, offset and seq, whatever the damage looks like (also
// the zeros version 1 cut as a lost write). Headers, seals, the chain between segments, log ids
// and repair mode are checked as specified.
//
// Version 1, still read: segments are built from FORMAT.md ("Version 1") with tests/spec_codec.ts,
// and the v1 rules are checked on them: damage in a v1 newest segment is a CorruptionError at open,
// the lost-write ("torn hole") rule, torn tails, and the sealed-segment checks. A v1 newest segment
// that opens is sealed (v1 seal) and followed by a new v2 segment.
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
import { CorruptionError, type Log, Store, type StoreOptions, SyncPolicy } from "../mod.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { concat } from "./helpers.ts";
import {
  decodeV1Segment,
  decodeV2Frame,
  FH,
  HEADER,
  seed,
  seededCrc,
  segName,
  specFrame,
  specHeader,
  specSeal,
  u32,
  v2Frame,
  varint,
} from "./spec_codec.ts";

const LOG = "l";
const MiB = 1 << 20;
/** Payload bytes per record: v1 frames of 68 bytes; v2 frames of 47 (a delta under 128 ms). */
const SIZE = 40;
const V1_FRAME = FH + SIZE;
/** Bytes of a v2 header; the two mark slots follow it. */
const V2_HEADER = 80;
const TS = 1_700_000_000_000;
/** For the tests that open a store some hundred times (bun's default per-test timeout is 5 s). */
const LONG = { timeout: 120_000 };

/** Record `seq`'s payload (a v1 or v2 test checks every record it reads against it). */
const payload = (seq: number, size = SIZE) =>
  Uint8Array.from({ length: size }, (_, k) => (seq * 7 + k * 13 + 1) & 0xff);
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u64 = (b: Uint8Array, at: number) => Number(dv(b).getBigUint64(at, true));

let root: string;
let counter = 0;
const freshDir = () => join(root, `s${counter++}`);

function openStore(dir: string, opts: StoreOptions = {}): Promise<Store> {
  return Store.open(dir, { platform: nodePlatform, syncPolicy: SyncPolicy.always(), ...opts });
}

// ---- version 2: segments as the Store writes them, read back by FORMAT.md ----

interface V2Frame {
  offset: number;
  end: number;
  seq: number;
  type: number;
}

interface V2Seg {
  firstSeq: number;
  dataStart: number;
  logId: Uint8Array;
  /** Record frames from dataStart, up to the first that does not decode or a seal. */
  frames: V2Frame[];
  /** End of the last complete batch. */
  end: number;
  /** The seal frame right after the records, if any. */
  seal: { offset: number; size: number; seq: number } | null;
  /** The newest valid mark slot (CRC seeded with log id and firstSeq, right parity), if any. */
  mark: { generation: number; durableEnd: number; nextSeq: number } | null;
}

/** Walks a v2 segment file with FORMAT.md's frame rules (tests/spec_codec.ts, not src/format). */
function parseV2(bytes: Uint8Array): V2Seg {
  assert.equal(dv(bytes).getUint16(8, true), 2, "a version-2 segment");
  const firstSeq = u64(bytes, 16);
  const dataStart = dv(bytes).getUint32(24, true);
  const logId = bytes.slice(32, 48);
  const maxRecordBytes = Math.min(dv(bytes).getUint32(12, true), 256 * MiB);
  const frames: V2Frame[] = [];
  let at = dataStart;
  let seq = firstSeq;
  let ts = u64(bytes, 56);
  let end = at;
  let seal: V2Seg["seal"] = null;
  for (;;) {
    const f = decodeV2Frame(bytes, at, bytes.length, {
      logId,
      seq,
      prevTimestamp: ts,
      maxRecordBytes,
    });
    if (f.status !== "ok") break;
    if (f.type === 2) {
      seal = { offset: at, size: f.size, seq };
      break;
    }
    frames.push({ offset: at, end: at + f.size, seq, type: f.type });
    at += f.size;
    seq++;
    ts = f.timestamp;
    if (f.type === 1) end = at;
  }
  let mark: V2Seg["mark"] = null;
  for (const [slotAt, parity] of [[80, 1], [120, 0]]) {
    const slot = bytes.subarray(slotAt, slotAt + 40);
    if (slot.length < 40) continue;
    if (dv(slot).getUint32(36, true) !== seededCrc(seed(logId, firstSeq), slot.subarray(0, 36))) {
      continue;
    }
    const generation = u64(slot, 0);
    if (generation < 1 || generation % 2 !== parity) continue;
    if (!mark || generation > mark.generation) {
      mark = { generation, durableEnd: u64(slot, 8), nextSeq: u64(slot, 16) };
    }
  }
  return { firstSeq, dataStart, logId, frames, end, seal, mark };
}

/** The v2 header's fields a test rewrites: a copy with another log id (both CRCs recomputed). */
function withLogId(bytes: Uint8Array, id: Uint8Array): Uint8Array {
  const b = bytes.slice();
  b.set(id, 32);
  dv(b).setUint32(76, u32(crc32(b.subarray(32, 76))), true);
  return b;
}

/** Segment files of a log: first seqs, and the bytes a power cut leaves or all that was written. */
interface BuiltLog {
  firsts: number[];
  /** As a power cut right after the close leaves them (the state a torn tail is found in). */
  files: Uint8Array[];
  /** As written: the page cache, which also holds the slot naming the close's fdatasync. */
  written: Uint8Array[];
}

/**
 * Runs `write` on a log of a Store on a simulated disk, closes it, and returns its segment files.
 * A power cut after the close keeps every record (the close fdatasynced them), but not the slot
 * written after that fdatasync (less than 1 MiB after the durable one, so no second fdatasync):
 * there the mark lags one fdatasync and the last fdatasync's records lie after it.
 */
async function writeLog(opts: StoreOptions, write: (log: Log) => Promise<void>): Promise<BuiltLog> {
  const sim = new SimPlatform();
  const store = await Store.open("/s", { syncPolicy: SyncPolicy.always(), ...opts, platform: sim });
  await write(await store.log(LOG));
  await store.close();
  const cut = sim.crash("none");
  const dir = `/s/${LOG}`;
  const names = (await cut.readdir(dir)).filter((f) => f.endsWith(".seg")).sort();
  assert.deepEqual((await sim.readdir(dir)).filter((f) => f.endsWith(".seg")).sort(), names);
  return {
    firsts: names.map((f) => Number(f.slice(0, 20))),
    files: names.map((f) => cut.fileBytes(`${dir}/${f}`)!),
    written: names.map((f) => sim.fileBytes(`${dir}/${f}`)!),
  };
}

/** {@linkcode writeLog} of `n` records appended one at a time, `payloadOf(i)` for record i. */
function buildLog(
  n: number,
  opts: StoreOptions = {},
  payloadOf: (seq: number) => Uint8Array = payload,
): Promise<BuiltLog> {
  return writeLog(opts, async (log) => {
    for (let i = 0; i < n; i++) assert.equal(await log.append(payloadOf(i)), i);
  });
}

// ---- version 1: segments built from FORMAT.md ("Version 1") ----

/** A v1 segment: header, a record frame per payload (seqs from firstSeq), and a seal if asked. */
function v1Segment(firstSeq: number, payloads: Uint8Array[], sealed = false): Uint8Array {
  const frames = payloads.map((p, i) => specFrame(1, firstSeq + i, TS + firstSeq + i, p));
  const parts = [specHeader(firstSeq, 16 * MiB), ...frames];
  // Segments under 64 KiB: the sparse index is the first record at offset 32.
  if (sealed) {
    parts.push(specSeal(firstSeq + payloads.length, TS + 1e6, [[firstSeq, HEADER]]));
  }
  return concat(...parts);
}

const v1Records = (from: number, to: number) => range(from, to).map((i) => payload(i));

// ---- placing, opening, checking ----

/** A fresh store directory whose log holds the given segment files. */
function place(files: Record<number, Uint8Array>): { dir: string; path: (seq: number) => string } {
  const dir = freshDir();
  mkdirSync(join(dir, LOG), { recursive: true });
  for (const [seq, bytes] of Object.entries(files)) {
    writeFileSync(join(dir, LOG, segName(Number(seq))), bytes);
  }
  return { dir, path: (seq: number) => join(dir, LOG, segName(seq)) };
}

function snapshot(dir: string): Map<string, Uint8Array> {
  const d = join(dir, LOG);
  return new Map(readdirSync(d).sort().map((f) => [f, new Uint8Array(readFileSync(join(d, f)))]));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assertUnchanged(dir: string, before: Map<string, Uint8Array>): void {
  const now = snapshot(dir);
  assert.deepEqual([...now.keys()], [...before.keys()], "no file added or removed");
  for (const [f, b] of before) assert.ok(sameBytes(now.get(f)!, b), `${f} changed`);
}

/** Reads the whole log, checking each record's data; stops at (and returns) an error. */
async function readAll(log: Log, from = 0): Promise<{ seqs: number[]; error: unknown }> {
  const seqs: number[] = [];
  try {
    for await (const r of log.read({ from })) {
      assert.deepEqual(r.data, payload(r.seq, r.data.length), `data of ${r.seq}`);
      seqs.push(r.seq);
    }
  } catch (error) {
    return { seqs, error };
  }
  return { seqs, error: null };
}

/** Opens the log, reads everything (which must succeed), and returns what it found. */
async function inspect(dir: string, opts: StoreOptions = {}) {
  const store = await openStore(dir, opts);
  try {
    const log = await store.log(LOG);
    const { seqs, error } = await readAll(log);
    if (error) throw error;
    return {
      report: log.openReport,
      seqs,
      first: log.firstSeq,
      next: log.nextSeq,
      segments: log.segmentCount,
    };
  } finally {
    await store.close();
  }
}

function assertCorruption(
  err: unknown,
  where: { path: string; offset?: number; seq?: number },
): asserts err is CorruptionError {
  assert.ok(err instanceof CorruptionError, `expected CorruptionError, got ${String(err)}`);
  assert.equal(err.code, "CORRUPTION");
  assert.equal(err.path, where.path);
  if (where.offset !== undefined) assert.equal(err.offset, where.offset, err.message);
  else assert.ok(Number.isSafeInteger(err.offset), "an offset is given");
  if (where.seq !== undefined) assert.equal(err.seq, where.seq, err.message);
  assert.ok(err.message.includes(where.path), "the message names the file");
}

/** Opening must fail with a CorruptionError naming path/offset/seq, and change no byte on disk. */
async function expectCorruption(
  dir: string,
  where: { path: string; offset?: number; seq?: number },
  opts: StoreOptions = {},
): Promise<CorruptionError> {
  const before = snapshot(dir);
  const store = await openStore(dir, opts);
  let caught: unknown = null;
  try {
    const log = await store.log(LOG);
    assert.fail(`opened (nextSeq ${log.nextSeq}, report ${JSON.stringify(log.openReport)})`);
  } catch (err) {
    caught = err;
  } finally {
    await store.close();
  }
  assertCorruption(caught, where);
  assertUnchanged(dir, before);
  return caught;
}

/**
 * Damage before the durable mark: the log opens with every record (nothing cut, nothing reported,
 * no byte changed), and reading from the start returns the records before the damage, then a
 * CorruptionError naming path, offset and seq.
 */
async function expectReadCorruption(
  dir: string,
  where: { path: string; offset: number; seq: number },
  nextSeq: number,
): Promise<CorruptionError> {
  const before = snapshot(dir);
  const store = await openStore(dir);
  let caught: unknown;
  try {
    const log = await store.log(LOG);
    assert.equal(log.nextSeq, nextSeq, "every record kept");
    assert.equal(log.openReport.truncatedBytes, 0, "nothing cut");
    assert.equal(log.openReport.truncatedAt, null);
    assert.equal(log.openReport.tornHole, false);
    assert.deepEqual(log.openReport.repaired, []);
    const r = await readAll(log);
    assert.deepEqual(r.seqs, range(log.firstSeq, where.seq), "the records before the damage");
    caught = r.error;
  } finally {
    await store.close();
  }
  assertCorruption(caught, where);
  assertUnchanged(dir, before);
  return caught;
}

/** Sets bytes [from, to) of a copy of `b` to zero. */
const zeroed = (b: Uint8Array, from: number, to: number) => {
  const c = b.slice();
  c.fill(0, from, to);
  return c;
};
const nextBoundary = (offset: number, unit: number) => (Math.floor(offset / unit) + 1) * unit;

// ---- shared logs ----

// As a power cut after the close leaves them (buildLog).
/** v2, one segment (default options), records 0..4; the mark covers 0..3 (SyncPolicy.always). */
let five: Uint8Array;
let fiveSeg: V2Seg;
/** v2, one segment, 20 records of 300 bytes; the mark covers 0..18. */
let twenty: Uint8Array;
let twentySeg: V2Seg;
/** The same 20 records as written, with the slot naming the last fdatasync: the mark covers all. */
let twentyWritten: Uint8Array;
/** The same 20 records written by another log (another log id). */
let twentyOther: Uint8Array;
/** v2, three segments of 4096 bytes. */
let three: Uint8Array[];
let SEG: number[];
let THREE_N: number;

const BIG = 300;
const bigPayload = (seq: number) => payload(seq, BIG);

before(async () => {
  root = mkdtempSync(join(tmpdir(), "khipu-recovery-"));
  const f = await buildLog(5);
  assert.equal(f.files.length, 1);
  five = f.files[0];
  fiveSeg = parseV2(five);
  assert.equal(fiveSeg.frames.length, 5);
  assert.equal(fiveSeg.end, fiveSeg.frames[4].end);
  assert.ok(five.length > fiveSeg.end, "a preallocated zero tail");
  assert.ok(five.subarray(fiveSeg.end).every((x) => x === 0));
  assert.equal(fiveSeg.mark?.durableEnd, fiveSeg.frames[4].offset, "the mark lags one fdatasync");
  assert.equal(parseV2(f.written[0]).mark?.durableEnd, fiveSeg.end, "the newest slot names all");

  const t = await buildLog(20, {}, bigPayload);
  twenty = t.files[0];
  twentySeg = parseV2(twenty);
  assert.equal(twentySeg.frames.length, 20);
  assert.equal(twentySeg.mark?.durableEnd, twentySeg.frames[19].offset);
  twentyWritten = t.written[0];
  assert.equal(parseV2(twentyWritten).mark?.durableEnd, twentySeg.end);
  twentyOther = (await buildLog(20, {}, bigPayload)).files[0];
  assert.notDeepEqual(parseV2(twentyOther).logId, twentySeg.logId);

  THREE_N = 200;
  const th = await buildLog(THREE_N, { segmentBytes: 4096, syncPolicy: SyncPolicy.osManaged() });
  three = th.files;
  SEG = th.firsts;
  assert.equal(three.length, 3, `segments ${SEG}`);
  assert.equal(SEG[0], 0);
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

// =================================================================================================

describe("v2 newest segment: after the mark, a torn tail is cut and reported, zeros are kept", () => {
  it("intact log: round trip, nothing truncated, the preallocated tail kept", async () => {
    const { dir, path } = place({ 0: five });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, 0);
    assert.equal(r.report.truncatedAt, null);
    assert.equal(r.report.tornHole, false);
    assert.equal(r.next, 5);
    assert.equal(readFileSync(path(0)).length, five.length);
  });

  it(
    "every cut point of the last frame, with the file ending there or zeros after: cut, reported, appends continue",
    LONG,
    async () => {
      const last = fiveSeg.frames[4].offset;
      const frameBytes = fiveSeg.frames[4].end - last;
      for (let keep = 0; keep < frameBytes; keep++) {
        for (const zeroTail of [false, true]) {
          const bytes = zeroTail
            ? zeroed(five, last + keep, fiveSeg.end)
            : five.slice(0, last + keep);
          // Zeros only (a cut inside the CRC's zero bytes, say) are never written space, not torn.
          const torn = bytes.subarray(last).some((x) => x !== 0);
          const what = `cut at +${keep}${zeroTail ? ", zeros after" : ""}`;
          const { dir, path } = place({ 0: bytes });
          const store = await openStore(dir);
          const log = await store.log(LOG);
          assert.equal(log.openReport.truncatedBytes, torn ? bytes.length - last : 0, what);
          assert.deepEqual(
            log.openReport.truncatedAt,
            torn ? { path: path(0), offset: last } : null,
          );
          assert.equal(log.nextSeq, 4, what);
          assert.equal(readFileSync(path(0)).length, torn ? last : bytes.length, what);
          assert.equal(await log.append(payload(4)), 4);
          await store.close();
          const after = new Uint8Array(readFileSync(path(0)));
          // Header and records kept as they were; the slot after the append's fdatasync names it.
          assert.deepEqual(after.subarray(0, V2_HEADER), five.subarray(0, V2_HEADER), what);
          const slotsEnd = V2_HEADER + 80;
          assert.deepEqual(after.subarray(slotsEnd, last), five.subarray(slotsEnd, last), what);
          const a = parseV2(after);
          assert.deepEqual(a.frames.map((f) => f.seq), range(0, 5), what);
          assert.deepEqual(a.mark, { generation: 5, durableEnd: a.end, nextSeq: 5 }, what);
          const again = await inspect(dir);
          assert.deepEqual(again.seqs, range(0, 5), what);
          assert.equal(again.report.truncatedBytes, 0, what);
        }
      }
    },
  );

  for (const zeros of [4096, MiB]) {
    it(`${zeros} zero bytes after the last frame (never written): kept, not reported, no phantom records`, async () => {
      const { dir, path } = place({
        0: concat(five.subarray(0, fiveSeg.end), new Uint8Array(zeros)),
      });
      const store = await openStore(dir);
      const log = await store.log(LOG);
      assert.equal(log.openReport.truncatedBytes, 0);
      assert.equal(log.openReport.truncatedAt, null);
      assert.equal(log.nextSeq, 5);
      assert.deepEqual((await readAll(log)).seqs, range(0, 5));
      assert.equal(readFileSync(path(0)).length, fiveSeg.end + zeros, "the zeros stay");
      assert.equal(await log.append(payload(5)), 5);
      await store.close();
      const after = parseV2(new Uint8Array(readFileSync(path(0))));
      assert.equal(after.frames[5].offset, fiveSeg.end, "the next record is written at the end");
      assert.deepEqual((await inspect(dir)).seqs, range(0, 6));
    });
  }

  it("the last frame partly zeroed (its size reached the disk, the rest did not): cut", async () => {
    const last = fiveSeg.frames[4].offset;
    const { dir, path } = place({ 0: zeroed(five, last + 10, fiveSeg.end) });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 4));
    assert.equal(r.report.truncatedBytes, five.length - last);
    assert.deepEqual(r.report.truncatedAt, { path: path(0), offset: last });
  });

  it("the last frame wholly zeroed (a write after the mark that never reached the disk): the log ends before it, nothing reported", async () => {
    const last = fiveSeg.frames[4].offset;
    const { dir, path } = place({ 0: zeroed(five, last, fiveSeg.end) });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.nextSeq, 4);
    assert.equal(log.openReport.truncatedBytes, 0);
    assert.equal(log.openReport.truncatedAt, null);
    assert.equal(await log.append(payload(4)), 4);
    await store.close();
    assert.equal(readFileSync(path(0)).length, five.length);
    assert.deepEqual((await inspect(dir)).seqs, range(0, 5));
  });

  it("garbage after the last frame, then the zero tail: cut at the end of the last batch", async () => {
    const bytes = five.slice();
    bytes.set(Uint8Array.from({ length: 1000 }, (_, i) => (i * 151 + 7) & 0xff), fiveSeg.end);
    const { dir, path } = place({ 0: bytes });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, five.length - fiveSeg.end);
    assert.deepEqual(r.report.truncatedAt, { path: path(0), offset: fiveSeg.end });
    assert.equal(readFileSync(path(0)).length, fiveSeg.end);
  });

  it("damage in the records after the mark (the last fdatasync's) is cut as a torn tail: the documented cost", async () => {
    // RECOVERY.md: after a power cut the mark may lag one fdatasync, so damage there cannot be
    // told from a torn write.
    const f = twentySeg.frames[19];
    assert.ok(f.offset >= twentySeg.mark!.durableEnd, "record 19 lies after the mark");
    const bytes = twenty.slice();
    bytes[f.offset + 20] ^= 0x01;
    const { dir, path } = place({ 0: bytes });
    const store = await openStore(dir);
    try {
      const log = await store.log(LOG);
      assert.equal(log.nextSeq, 19);
      assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: f.offset });
      assert.equal(log.openReport.truncatedBytes, twenty.length - f.offset);
    } finally {
      await store.close();
    }
  });

  it("the same damage where the slot naming the last fdatasync reached the disk: before the mark, CorruptionError", async () => {
    const f = twentySeg.frames[19];
    const bytes = twentyWritten.slice();
    bytes[f.offset + 20] ^= 0x01;
    const { dir, path } = place({ 0: bytes });
    await expectReadCorruption(dir, { path: path(0), offset: f.offset, seq: 19 }, 20);
  });

  it("the newest segment of several: cut, earlier sealed segments untouched", async () => {
    const s = parseV2(three[2]);
    const lastFrame = s.frames[s.frames.length - 1];
    const newest = three[2].slice(0, lastFrame.end - 5);
    const { dir, path } = place({ [SEG[0]]: three[0], [SEG[1]]: three[1], [SEG[2]]: newest });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, THREE_N - 1));
    assert.equal(r.report.truncatedBytes, lastFrame.end - lastFrame.offset - 5);
    assert.deepEqual(r.report.truncatedAt, { path: path(SEG[2]), offset: lastFrame.offset });
    assert.deepEqual(new Uint8Array(readFileSync(path(0))), three[0]);
    assert.deepEqual(new Uint8Array(readFileSync(path(SEG[1]))), three[1]);
  });
});

// =================================================================================================

describe("v2 newest segment: an incomplete batch at the tail is dropped whole", () => {
  /** Records 0..2 one at a time, then one batch of 3..6 (frames of type 3, 3, 3, 1). */
  let batched: Uint8Array;
  let seg: V2Seg;

  before(async () => {
    const built = await writeLog({}, async (log) => {
      for (let i = 0; i < 3; i++) await log.append(payload(i));
      assert.deepEqual(await log.appendBatch(range(3, 7).map((i) => payload(i))), range(3, 7));
    });
    batched = built.files[0];
    seg = parseV2(batched);
    assert.deepEqual(seg.frames.map((f) => f.type), [1, 1, 1, 3, 3, 3, 1]);
    assert.ok(seg.mark!.durableEnd <= seg.frames[3].offset, "the batch lies after the mark");
  });

  it("whole, the batch is there", async () => {
    const { dir } = place({ 0: batched });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 7));
    assert.equal(r.report.truncatedBytes, 0);
  });

  it("cut after 1, 2 or 3 of its 4 frames, or inside its last frame: none of its records, cut at its start", async () => {
    const start = seg.frames[3].offset;
    const lastEnd = seg.frames[6].end;
    const cuts = [
      seg.frames[4].offset,
      seg.frames[5].offset,
      seg.frames[6].offset,
      seg.frames[6].offset + 3,
      lastEnd - 1,
    ];
    for (const cut of cuts) {
      for (const zeroTail of [false, true]) {
        const what = `cut at ${cut}${zeroTail ? ", zeros after" : ""}`;
        const bytes = zeroTail ? zeroed(batched, cut, lastEnd) : batched.slice(0, cut);
        const { dir, path } = place({ 0: bytes });
        const store = await openStore(dir);
        const log = await store.log(LOG);
        assert.equal(log.nextSeq, 3, what);
        assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: start }, what);
        assert.equal(log.openReport.truncatedBytes, bytes.length - start, what);
        assert.deepEqual((await readAll(log)).seqs, range(0, 3), what);
        assert.deepEqual(await log.appendBatch([payload(3), payload(4)]), [3, 4], "seqs reused");
        await store.close();
        assert.deepEqual((await inspect(dir)).seqs, range(0, 5), what);
      }
    }
  });
});

// =================================================================================================

describe("v2 newest segment: damage before the mark is never cut (no blind spot): open succeeds, reading reaches CorruptionError", () => {
  const fr = (i: number) => twentySeg.frames[i];
  const at = (i: number) => fr(i).offset;

  it("precondition: the damaged frames below all lie before the mark, with valid frames after them", () => {
    assert.ok(fr(17).end <= twentySeg.mark!.durableEnd);
  });

  it("a flipped bit in every byte of a middle frame's header, and in its payload", async () => {
    const f = fr(2);
    // CRC (4), type (1), a 2-byte length varint (300), a 1- or 2-byte delta, then the payload.
    const headerBytes = f.end - f.offset - BIG;
    const positions = [
      ...range(0, headerBytes),
      headerBytes,
      headerBytes + BIG / 2,
      f.end - f.offset - 1,
    ];
    for (const i of positions) {
      for (const mask of i === 4 ? [0x01, 0x02, 0x80] : [0x01, 0x80]) {
        const bytes = twenty.slice();
        bytes[f.offset + i] ^= mask;
        const { dir, path } = place({ 0: bytes });
        await expectReadCorruption(dir, { path: path(0), offset: f.offset, seq: 2 }, 20);
      }
    }
  });

  it("a zeroed 512-byte aligned sector with valid frames after it (v1 cut this as a lost write)", async () => {
    const sector = nextBoundary(at(3), 512);
    assert.ok(sector + 512 <= at(8));
    const k = twentySeg.frames.findIndex((f) => f.end > sector);
    const { dir, path } = place({ 0: zeroed(twenty, sector, sector + 512) });
    await expectReadCorruption(dir, { path: path(0), offset: at(k), seq: k }, 20);
  });

  it("zeros from a frame's start to the next sector boundary, >= 28 of them (v1: a lost page tail, cut)", async () => {
    const k = range(3, 15).find((i) => nextBoundary(at(i), 512) - at(i) >= 28)!;
    const { dir, path } = place({ 0: zeroed(twenty, at(k), nextBoundary(at(k), 512)) });
    await expectReadCorruption(dir, { path: path(0), offset: at(k), seq: k }, 20);
  });

  it("zeros from a frame's start to the next 4 KiB page boundary (v1: a lost page, cut)", async () => {
    // The frame that a page boundary cuts: its bytes up to the boundary zeroed, as a lost page.
    const k = twentySeg.frames.findIndex((f, i) => i > 0 && nextBoundary(f.offset, 4096) < f.end);
    assert.ok(k > 0 && k < 17, `a page boundary among the frames (frame ${k})`);
    const { dir, path } = place({ 0: zeroed(twenty, at(k), nextBoundary(at(k), 4096)) });
    await expectReadCorruption(dir, { path: path(0), offset: at(k), seq: k }, 20);
  });

  it("whole frames zeroed, valid frames after them", async () => {
    const { dir, path } = place({ 0: zeroed(twenty, at(5), fr(7).end) });
    await expectReadCorruption(dir, { path: path(0), offset: at(5), seq: 5 }, 20);
  });

  it("a zeroed region inside a frame, ending in the next one", async () => {
    const { dir, path } = place({ 0: zeroed(twenty, at(1) + 30, at(2) + 10) });
    await expectReadCorruption(dir, { path: path(0), offset: at(1), seq: 1 }, 20);
  });

  it("a frame copied over another position does not decode there (its seq seeds the CRC)", async () => {
    const bytes = twenty.slice();
    bytes.set(twenty.subarray(at(1), fr(1).end), at(3)); // record 1's frame where 3 belongs
    const { dir, path } = place({ 0: bytes });
    await expectReadCorruption(dir, { path: path(0), offset: at(3), seq: 3 }, 20);
  });

  it("a frame from another log, same seq and payload, does not decode (the log id seeds the CRC)", async () => {
    const other = parseV2(twentyOther);
    const theirs = twentyOther.subarray(other.frames[5].offset, other.frames[5].end);
    const bytes = twenty.slice();
    bytes.set(theirs, at(5));
    const { dir, path } = place({ 0: bytes });
    await expectReadCorruption(dir, { path: path(0), offset: at(5), seq: 5 }, 20);
  });

  it("a huge length field in a middle frame", async () => {
    const bytes = twenty.slice();
    // The 2-byte length varint of 300 becomes 16383: the frame runs past the end of the data.
    assert.deepEqual([...bytes.subarray(at(2) + 5, at(2) + 7)], [...varint(BIG)]);
    bytes.set([0xff, 0x7f], at(2) + 5);
    const { dir, path } = place({ 0: bytes });
    await expectReadCorruption(dir, { path: path(0), offset: at(2), seq: 2 }, 20);
  });

  it("the last frame before the mark damaged, the frame after it intact", async () => {
    const bytes = twenty.slice();
    bytes[at(18) + 100] ^= 0x40;
    const { dir, path } = place({ 0: bytes });
    await expectReadCorruption(dir, { path: path(0), offset: at(18), seq: 18 }, 20);
  });

  it("appends after damage before the mark go on; the damage stays where it was", async () => {
    const { dir, path } = place({ 0: zeroed(twenty, at(6), fr(6).end) });
    const store = await openStore(dir);
    try {
      const log = await store.log(LOG);
      assert.equal(await log.append(payload(20)), 20);
      const r = await readAll(log);
      assertCorruption(r.error, { path: path(0), offset: at(6), seq: 6 });
      assert.deepEqual(r.seqs, range(0, 6));
    } finally {
      await store.close();
    }
    const again = await openStore(dir);
    try {
      const log = await again.log(LOG);
      assert.equal(log.nextSeq, 21);
      const r = await readAll(log);
      assertCorruption(r.error, { path: path(0), offset: at(6), seq: 6 });
    } finally {
      await again.close();
    }
  });
});

// =================================================================================================

describe("v2: copied frames and huge lengths at the tail: no phantom records, no huge reads", () => {
  it("a copy of an earlier frame written after the last one is cut, not read", async () => {
    const bytes = five.slice();
    bytes.set(five.subarray(fiveSeg.frames[1].offset, fiveSeg.frames[1].end), fiveSeg.end);
    const { dir } = place({ 0: bytes });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, five.length - fiveSeg.end);
  });

  it("a frame copied from a sealed segment of the same log into the newest is cut, not read", async () => {
    const s0 = parseV2(three[0]);
    const s2 = parseV2(three[2]);
    const newest = three[2].slice();
    assert.ok(newest.length >= s2.end + (s0.frames[0].end - s0.frames[0].offset));
    newest.set(three[0].subarray(s0.frames[0].offset, s0.frames[0].end), s2.end);
    const { dir } = place({ [SEG[0]]: three[0], [SEG[1]]: three[1], [SEG[2]]: newest });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, THREE_N));
    assert.equal(r.report.truncatedBytes, three[2].length - s2.end);
  });

  it("a frame of another log with the right seq and payload, at the tail: it never decodes, cut", async () => {
    // The frame another log wrote at seq 4, with this log's record 4 payload.
    const theirs = v2Frame(new Uint8Array(16).fill(0x5c), 4, 1, 3, payload(4));
    const bytes = zeroed(five, fiveSeg.frames[4].offset, fiveSeg.end);
    bytes.set(theirs, fiveSeg.frames[4].offset);
    const { dir, path } = place({ 0: bytes });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 4));
    assert.deepEqual(r.report.truncatedAt, { path: path(0), offset: fiveSeg.frames[4].offset });
    // The same frame with this log's id does decode there: only the id kept it out.
    const ours = v2Frame(fiveSeg.logId, 4, 1, 3, payload(4));
    const good = zeroed(five, fiveSeg.frames[4].offset, fiveSeg.end);
    good.set(ours, fiveSeg.frames[4].offset);
    assert.deepEqual((await inspect(place({ 0: good }).dir)).seqs, range(0, 5));
  });

  it("a length field just under a 256 MiB cap on the last frame: cut, reads stay small", async () => {
    // The header's cap allows the length, so only the file size bounds it.
    const built = await buildLog(3, { maxRecordBytes: 1 << 28 });
    const seg = built.files[0];
    const s = parseV2(seg);
    const last = s.frames[2].offset;
    seg.set([1, ...varint((1 << 28) - 1), 0], last + 4); // type 1, a 4-byte length, delta 0
    const { dir, path } = place({ 0: seg });
    const rec = recordingPlatform(nodePlatform, { ignore: ["stat", "size"] });
    const store = await openStore(dir, { platform: rec, maxRecordBytes: 1 << 28 });
    try {
      const log = await store.log(LOG);
      assert.equal(log.nextSeq, 2);
      assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: last });
      assert.equal(log.openReport.truncatedBytes, seg.length - last);
      const reads = rec.calls.filter((c) => c.op === "readAt").map((c) => c.bytes ?? 0);
      assert.ok(Math.max(...reads) <= 512 * 1024, `largest read ${Math.max(...reads)}`);
    } finally {
      await store.close();
    }
  });
});

// =================================================================================================

describe("v1 newest segment: damage is refused at open, nothing truncated (v1 rules)", () => {
  // 5 records: 68-byte frames from offset 32.
  const v1five = v1Segment(0, v1Records(0, 5));
  const frameAt = (i: number) => HEADER + i * V1_FRAME;

  it("precondition: the built bytes are a v1 segment by FORMAT.md", () => {
    const d = decodeV1Segment(v1five, false);
    assert.deepEqual(d.frames.map((f) => f.offset), range(0, 5).map(frameAt));
  });

  it("a zeroed frame with a valid one after it in the same sector is damage, not a lost write", async () => {
    // A lost page reads back as zeros to its end, so record 4 (same sector) would be zeros too.
    const { dir, path } = place({ 0: zeroed(v1five, frameAt(3), frameAt(4)) });
    await expectCorruption(dir, { path: path(0), offset: frameAt(3), seq: 3 });
  });

  it("a flipped bit in every byte of a middle frame's header, and in its payload", async () => {
    const at = frameAt(2);
    const positions = [...range(0, FH), FH, FH + 1, FH + SIZE / 2, V1_FRAME - 1];
    for (const i of positions) {
      for (const mask of i === 4 ? [0x01, 0x03, 0x80] : [0x01, 0x80]) {
        const bytes = v1five.slice();
        bytes[at + i] ^= mask;
        const { dir, path } = place({ 0: bytes });
        await expectCorruption(dir, { path: path(0), offset: at, seq: 2 });
      }
    }
  });

  it("a damaged first frame (followed by valid ones)", async () => {
    const bytes = v1five.slice();
    bytes[frameAt(0) + FH + 3] ^= 0x10;
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: HEADER, seq: 0 });
  });

  it("a zeroed region inside a frame followed by valid frames (not a lost whole write)", async () => {
    const { dir, path } = place({ 0: zeroed(v1five, frameAt(1) + 30, frameAt(2) + 10) });
    await expectCorruption(dir, { path: path(0), offset: frameAt(1), seq: 1 });
  });

  it("a frame copied over another position does not decode there", async () => {
    const bytes = v1five.slice();
    bytes.copyWithin(frameAt(3), frameAt(1), frameAt(2)); // record 1's frame where 3 belongs
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(3), seq: 3 });
  });

  it("a huge length field in a middle frame", async () => {
    const bytes = v1five.slice();
    dv(bytes).setUint32(frameAt(2) + 8, 0xffff_fff0, true);
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: frameAt(2), seq: 2 });
  });
});

describe("v1 newest segment: torn tails and the lost-write rule (FORMAT.md, 'Lost write'); it is then sealed and a v2 segment follows", () => {
  const v1five = v1Segment(0, v1Records(0, 5));
  const frameAt = (i: number) => HEADER + i * V1_FRAME;

  /** After a v1 open that kept records [0, n): the v1 file is sealed there, a v2 segment follows. */
  function assertSealedThenV2(path: (s: number) => string, n: number): void {
    const v1 = decodeV1Segment(new Uint8Array(readFileSync(path(0))), true);
    assert.deepEqual(v1.frames.map((f) => f.seq), range(0, n), "the v1 file keeps its records");
    assert.equal(v1.seal?.seq, n, "and ends in a v1 seal");
    const next = new Uint8Array(readFileSync(path(n)));
    assert.equal(dv(next).getUint16(8, true), 2, "the new segment is v2");
    assert.equal(u64(next, 16), n, "firstSeq");
    assert.equal(u64(next, 48), n, "prevEndSeq");
  }

  it("a cut inside the last frame: cut, reported; sealed at 4, appends go to a new v2 segment", async () => {
    for (const keep of [1, FH - 1, FH, V1_FRAME - 1]) {
      const { dir, path } = place({ 0: v1five.slice(0, frameAt(4) + keep) });
      const store = await openStore(dir);
      const log = await store.log(LOG);
      assert.equal(log.openReport.truncatedBytes, keep);
      assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: frameAt(4) });
      assert.equal(log.openReport.tornHole, false);
      assert.equal(log.nextSeq, 4);
      assert.equal(log.segmentCount, 2, "the sealed v1 segment and a new v2 one");
      assert.equal(await log.append(payload(4)), 4);
      await store.close();
      assertSealedThenV2(path, 4);
      assert.equal(parseV2(new Uint8Array(readFileSync(path(4)))).frames.length, 1);
      assert.deepEqual((await inspect(dir)).seqs, range(0, 5));
    }
  });

  it("zero bytes after the last v1 frame are a torn tail (unlike v2's zero tail): cut and reported", async () => {
    const { dir, path } = place({ 0: concat(v1five, new Uint8Array(4096)) });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, 4096);
    assert.deepEqual(r.report.truncatedAt, { path: path(0), offset: v1five.length });
    assertSealedThenV2(path, 5);
  });

  // 20 records of 300 bytes: frames of 328 bytes, record i at 32 + 328 i.
  const v1big = v1Segment(0, range(0, 20).map(bigPayload));
  const at = (i: number) => HEADER + i * (FH + BIG);

  it("a zeroed 512-byte sector with valid frames after it is a lost write: cut, tornHole", async () => {
    const { dir, path } = place({ 0: zeroed(v1big, 1024, 1536) }); // inside records 3 and 4
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.openReport.tornHole, true);
    assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: at(3) });
    assert.equal(log.openReport.truncatedBytes, v1big.length - at(3));
    assert.equal(log.nextSeq, 3);
    await store.close();
    assertSealedThenV2(path, 3);
  });

  it("zeros that cover no aligned sector and do not start at the bad frame are corruption", async () => {
    // 400 zero bytes, no whole aligned sector.
    const { dir, path } = place({ 0: zeroed(v1big, at(3) + 40, at(3) + 440) });
    await expectCorruption(dir, { path: path(0), offset: at(3), seq: 3 });
  });

  it("zeros from the bad frame to the next sector boundary, a frame header or more (a lost page tail): cut", async () => {
    // 1344..1536: 192 zeros, no whole aligned sector, then intact bytes.
    const { dir, path } = place({ 0: zeroed(v1big, at(4), 1536) });
    const store = await openStore(dir);
    const log = await store.log(LOG);
    assert.equal(log.openReport.tornHole, true);
    assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: at(4) });
    assert.equal(log.nextSeq, 4);
    await store.close();
    assertSealedThenV2(path, 4);
  });

  it("fewer zeros than a frame header up to the sector boundary are damage (a zeroed CRC byte)", async () => {
    // 1016..1024: 8 zeros, then record 3's remaining bytes intact.
    const { dir, path } = place({ 0: zeroed(v1big, at(3), 1024) });
    await expectCorruption(dir, { path: path(0), offset: at(3), seq: 3 });
  });

  it("a copy of an earlier frame appended at the end is cut, not read", async () => {
    const { dir } = place({ 0: concat(v1five, v1five.slice(frameAt(1), frameAt(2))) });
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, 5));
    assert.equal(r.report.truncatedBytes, V1_FRAME);
  });
});

// =================================================================================================

describe("segment headers", () => {
  it("a newest segment that is all zeros (header lost) is recreated as an empty v2 segment", async () => {
    const { dir, path } = place({ 0: new Uint8Array(V2_HEADER + 4096) });
    const r = await inspect(dir);
    assert.equal(r.report.recreatedSegment, path(0));
    assert.deepEqual(r.seqs, []);
    assert.equal(r.next, 0);
    const b = new Uint8Array(readFileSync(path(0)));
    assert.deepEqual(b.subarray(0, 8), new TextEncoder().encode("KHIPUSEG"));
    assert.equal(dv(b).getUint16(8, true), 2);
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
    const b = new Uint8Array(readFileSync(path(SEG[2])));
    assert.deepEqual(b.subarray(32, 48), parseV2(three[0]).logId, "the log's id");
    assert.equal(u64(b, 48), SEG[2], "prevEndSeq: the previous segment's end");
    assert.deepEqual((await inspect(dir)).seqs, range(0, SEG[2] + 1));
  });

  it("a newest segment whose header is torn into garbage, with nothing after it, is recreated", async () => {
    const bytes = new Uint8Array(V2_HEADER + 100);
    bytes.set(five.subarray(0, 20)); // part of a header, then garbage, then zeros
    bytes.fill(0xa5, 20, V2_HEADER);
    const { dir, path } = place({ 0: bytes });
    const r = await inspect(dir);
    assert.equal(r.report.recreatedSegment, path(0));
    assert.equal(r.next, 0);
  });

  it("an empty newest segment with a well-formed header of another version is refused, not rewritten", async () => {
    const bytes = five.slice(0, V2_HEADER);
    bytes[8] = 3; // format version 3, checksum recomputed below: a header from a future release
    dv(bytes).setUint32(28, u32(crc32(bytes.subarray(0, 28))), true);
    const { dir, path } = place({ 0: bytes });
    for (const repair of [false, true]) {
      const store = await openStore(dir, { repair });
      await assert.rejects(store.log(LOG), (e: unknown) => {
        assert.ok(e instanceof CorruptionError);
        assert.match(e.message, /unsupported format version 3/);
        return true;
      });
      await store.close();
    }
    assert.deepEqual(new Uint8Array(readFileSync(path(0))), bytes);
  });

  it("a zero-filled header over records in the newest segment is corruption", async () => {
    const { dir, path } = place({ 0: zeroed(five, 0, V2_HEADER) });
    await expectCorruption(dir, { path: path(0), offset: 0 });
  });

  it("a header whose first seq disagrees with the file name is corruption", async () => {
    const { dir, path } = place({ 7: five });
    await expectCorruption(dir, { path: path(7), offset: 0 });
  });

  it("a zero-filled header of an older (sealed) segment is corruption", async () => {
    const first = zeroed(three[0], 0, V2_HEADER);
    const { dir, path } = place({ [SEG[0]]: first, [SEG[1]]: three[1], [SEG[2]]: three[2] });
    await expectCorruption(dir, { path: path(SEG[0]), offset: 0 });
  });

  for (const which of [1, 2]) {
    it(`a ${which === 1 ? "sealed" : "newest"} segment whose (valid) header names another log id is corruption`, async () => {
      const files: Uint8Array[] = three.slice();
      files[which] = withLogId(three[which], new Uint8Array(16).fill(0x77));
      const { dir, path } = place({ [SEG[0]]: files[0], [SEG[1]]: files[1], [SEG[2]]: files[2] });
      const err = await expectCorruption(dir, { path: path(SEG[which]), offset: 32 });
      assert.match(err.message, /another log/);
    });
  }
});

// =================================================================================================

/** A three-segment log in either format: two sealed segments and a newest one. */
interface Fixture {
  segs: Uint8Array[];
  firsts: number[];
  total: number;
  /** Record frame offsets of segment i. */
  frames(i: number): number[];
  /** The seal frame of sealed segment i: offset and size (from the trailer). */
  sealOf(i: number): { at: number; size: number };
}

function fixture(format: "v1" | "v2"): Fixture {
  const trailer = (b: Uint8Array) => dv(b).getUint32(b.length - 4, true);
  if (format === "v2") {
    return {
      segs: three,
      firsts: SEG,
      total: THREE_N,
      frames: (i) => parseV2(three[i]).frames.map((f) => f.offset),
      sealOf: (i) => {
        const s = parseV2(three[i]).seal!;
        assert.equal(s.offset + s.size, three[i].length, "a sealed v2 file ends at its seal");
        assert.equal(trailer(three[i]), s.size);
        return { at: s.offset, size: s.size };
      },
    };
  }
  // 59 v1 records fill a 4096-byte segment: 32 + 59 * 68 + 52 (the seal) = 4096.
  const segs = [
    v1Segment(0, v1Records(0, 59), true),
    v1Segment(59, v1Records(59, 118), true),
    v1Segment(118, v1Records(118, 130)),
  ];
  return {
    segs,
    firsts: [0, 59, 118],
    total: 130,
    frames: (i) => decodeV1Segment(segs[i], i < 2).frames.map((f) => f.offset),
    sealOf: (i) => ({ at: segs[i].length - trailer(segs[i]), size: trailer(segs[i]) }),
  };
}

for (const format of ["v1", "v2"] as const) {
  describe(`sealed segments and sequence gaps (${format})`, () => {
    let fx: Fixture;
    let S: number[];
    const files = (over: Partial<Record<0 | 1 | 2, Uint8Array>> = {}) => ({
      [S[0]]: over[0] ?? fx.segs[0],
      [S[1]]: over[1] ?? fx.segs[1],
      [S[2]]: over[2] ?? fx.segs[2],
    });
    before(() => {
      fx = fixture(format);
      S = fx.firsts;
    });

    it("intact: opens and reads every record; the sealed segments are not rewritten", async () => {
      const { dir, path } = place(files());
      const r = await inspect(dir);
      assert.deepEqual(r.seqs, range(0, fx.total));
      assert.deepEqual(new Uint8Array(readFileSync(path(S[0]))), fx.segs[0]);
      assert.deepEqual(new Uint8Array(readFileSync(path(S[1]))), fx.segs[1]);
    });

    it("a gap between segments (a deleted middle segment) is corruption naming the gap", async () => {
      const { dir, path } = place({ [S[0]]: fx.segs[0], [S[2]]: fx.segs[2] });
      // v1: the seal's CRC covers the seq it must have, the next segment's first; v2: the seal
      // says where the segment ends, the next header where the previous one ended, so the hole
      // is named at the segment after it, at its prevEndSeq field.
      const err = await expectCorruption(
        dir,
        format === "v1"
          ? { path: path(S[0]), offset: fx.sealOf(0).at, seq: S[2] }
          : { path: path(S[2]), offset: 48, seq: S[1] },
      );
      if (format === "v2") assert.match(err.message, /missing/);
      assert.match(err.message, new RegExp(`\\b${S[2]}\\b`));
      if (format === "v2") assert.match(err.message, new RegExp(`\\b${S[1]}\\b`));
    });

    it("a damaged seal is corruption", async () => {
      const { at, size } = fx.sealOf(1);
      const positions = format === "v1"
        ? [0, 4, 8, 12, 20, FH, FH + 4, FH + 12, size - 4, size - 1]
        : range(0, size); // every byte of the v2 seal
      for (const i of positions) {
        const second = fx.segs[1].slice();
        second[at + i] ^= 0x04;
        const { dir, path } = place(files({ 1: second }));
        // A damaged trailer points elsewhere, so the offset reported is wherever it pointed.
        const offset = i >= size - 4 ? undefined : at;
        const err = await expectCorruption(dir, { path: path(S[1]), offset });
        assert.match(err.message, /seal/, `byte ${i}: ${err.message}`);
      }
    });

    it("a torn (shortened) older segment is corruption", async () => {
      const short = fx.segs[0].slice(0, fx.segs[0].length - 1);
      const { dir, path } = place(files({ 0: short }));
      const err = await expectCorruption(dir, { path: path(S[0]), offset: short.length });
      assert.match(err.message, /seal/);
    });

    it("a torn seal on the newest segment (crash while sealing) is a torn tail", async () => {
      const torn = fx.segs[0].slice(0, fx.segs[0].length - 20);
      const { dir, path } = place({ 0: torn });
      const store = await openStore(dir);
      const log = await store.log(LOG);
      assert.equal(log.nextSeq, S[1]);
      assert.equal(log.openReport.truncatedBytes, fx.sealOf(0).size - 20);
      assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: fx.sealOf(0).at });
      // v2: it stays the writable segment; v1: it is sealed again and a v2 segment follows.
      assert.equal(log.segmentCount, format === "v2" ? 1 : 2);
      assert.equal(await log.append(payload(S[1])), S[1]);
      await store.close();
      assert.deepEqual((await inspect(dir)).seqs, range(0, S[1] + 1));
      const names = readdirSync(join(dir, LOG)).sort();
      assert.deepEqual(names, format === "v2" ? [segName(0)] : [segName(0), segName(S[1])]);
    });

    it("a whole seal on the newest segment (crash before the next one): next segment created", async () => {
      const { dir, path } = place({ 0: fx.segs[0] });
      const store = await openStore(dir);
      const log = await store.log(LOG);
      assert.equal(log.nextSeq, S[1]);
      assert.equal(log.segmentCount, 2);
      assert.equal(log.openReport.truncatedBytes, 0);
      assert.equal(await log.append(payload(S[1])), S[1]);
      await store.close();
      assert.ok(existsSync(path(S[1])));
      const next = new Uint8Array(readFileSync(path(S[1])));
      assert.equal(dv(next).getUint16(8, true), 2, "the next segment is v2");
      assert.equal(u64(next, 48), S[1], "its prevEndSeq is the seal's seq");
      assert.deepEqual(new Uint8Array(readFileSync(path(0))), fx.segs[0]);
      assert.deepEqual((await inspect(dir)).seqs, range(0, S[1] + 1));
    });

    it("a damaged record inside a sealed segment opens (seal trusted) but fails when read", async () => {
      const first = fx.segs[0].slice();
      const at10 = fx.frames(0)[10];
      first[at10 + 20] ^= 0x01;
      const { dir, path } = place(files({ 0: first }));
      const store = await openStore(dir);
      try {
        const log = await store.log(LOG);
        const r = await readAll(log);
        assertCorruption(r.error, { path: path(S[0]), offset: at10, seq: 10 });
        assert.deepEqual(r.seqs, range(0, 10));
        const later = await readAll(log, S[1]);
        assert.equal(later.error, null);
        assert.deepEqual(later.seqs, range(S[1], fx.total), "other segments still readable");
      } finally {
        await store.close();
      }
    });
  });
}

// =================================================================================================

describe("repair mode", () => {
  /** Where repair starts the new segment: past every seq the set-aside files could hold. */
  const beyond = (files: [number, number][]) =>
    Math.max(...files.map(([first, size]) => first + Math.ceil(size / 7) + 1));

  it("v1 newest segment: the damaged file copied to .broken, its prefix kept and sealed, seqs skipped, appends continue", async () => {
    const v1five = v1Segment(0, v1Records(0, 5));
    const bytes = v1five.slice();
    const at2 = HEADER + 2 * V1_FRAME;
    bytes[at2 + FH + 5] ^= 0x20;
    const { dir, path } = place({ 0: bytes });
    const next = beyond([[0, bytes.length]]);
    const store = await openStore(dir, { repair: true });
    const log = await store.log(LOG);
    assert.equal(log.openReport.repaired.length, 1);
    const action = log.openReport.repaired[0];
    assert.equal(action.path, path(0));
    assert.equal(action.movedTo, `${path(0)}.broken`);
    assert.equal(action.offset, at2);
    assert.deepEqual(new Uint8Array(readFileSync(`${path(0)}.broken`)), bytes, "damaged copy kept");
    assert.deepEqual(log.openReport.skippedSeqs, { from: 2, to: next });
    assert.equal(log.nextSeq, next);
    assert.deepEqual((await readAll(log)).seqs, [0, 1]);
    assert.equal(await log.append(payload(next)), next);
    await store.close();
    const kept = decodeV1Segment(new Uint8Array(readFileSync(path(0))), true);
    assert.deepEqual(kept.frames.map((f) => f.seq), [0, 1], "the prefix, sealed in v1");
    assert.equal(kept.seal?.seq, 2);
    const r = await inspect(dir); // no repair needed any more
    assert.deepEqual(r.seqs, [0, 1, next]);
    assert.deepEqual(r.report.repaired, []);
  });

  it("v2 newest segment whose mark lies past the end of the file (synced data gone): refused; repaired, the intact prefix kept and sealed, the log going on past the mark's seq", async () => {
    const cut = twentySeg.frames[10].offset + 100; // inside record 10, before the mark
    const bytes = twenty.slice(0, cut);
    const { dir, path } = place({ 0: bytes });
    const err = await expectCorruption(dir, { path: path(0) });
    assert.ok([80, 120].includes(err.offset!), `a mark slot's offset, got ${err.offset}`);
    assert.match(err.message, /durable/);

    // The mark still says how many records there were: the log goes on just past them (records
    // after the mark are a torn tail's, as at any open).
    const next = twentySeg.mark!.nextSeq;
    assert.ok(next > 10);
    const store = await openStore(dir, { repair: true });
    const log = await store.log(LOG);
    assert.deepEqual(log.openReport.repaired.map((a) => [a.path, a.movedTo]), [
      [path(0), `${path(0)}.broken`],
    ]);
    assert.deepEqual(log.openReport.skippedSeqs, { from: 10, to: next });
    assert.equal(log.nextSeq, next);
    const r = await readAll(log);
    assert.equal(r.error, null);
    assert.deepEqual(r.seqs, range(0, 10));
    assert.equal(await log.append(payload(next)), next);
    await store.close();
    assert.deepEqual(new Uint8Array(readFileSync(`${path(0)}.broken`)), bytes);
    const kept = parseV2(new Uint8Array(readFileSync(path(0))));
    assert.deepEqual(kept.frames.map((f) => f.seq), range(0, 10));
    assert.equal(kept.seal?.seq, 10, "sealed after its intact prefix");
    assert.equal(kept.seal!.offset + kept.seal!.size, readFileSync(path(0)).length);
    const nextFile = new Uint8Array(readFileSync(path(next)));
    assert.equal(u64(nextFile, 48), 10, "the new segment declares the skipped seqs (prevEndSeq)");
    assert.equal(u64(nextFile, 16), next);
  });

  it("v2 newest segment with a damaged first record: refused at open; repaired, the records after it kept at their seqs", async () => {
    // Open reads the first record of a non-empty newest segment (its timestamp starts the seal),
    // so damage there is refused at open rather than found by a reader: never cut.
    const bytes = twenty.slice();
    bytes[twentySeg.frames[0].offset + 50] ^= 0x08;
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: twentySeg.dataStart, seq: 0 });
    const store = await openStore(dir, { repair: true });
    const log = await store.log(LOG);
    // The mark anchors records 1..19: only record 0 is lost, and no seq is skipped.
    assert.deepEqual(log.openReport.repaired, [{
      kind: "salvaged",
      path: path(0),
      movedTo: `${path(0)}.broken`,
      offset: twentySeg.dataStart,
      reason: "checksum mismatch",
      kept: [{ from: 1, to: 20 }],
      lost: [{ from: 0, to: 1 }],
    }]);
    assert.equal(log.openReport.skippedSeqs, null);
    assert.equal(log.nextSeq, 20);
    assert.equal(await log.append(payload(20)), 20);
    await store.close();
    assert.deepEqual(readdirSync(join(dir, LOG)).sort(), [
      `${segName(0)}.broken`,
      segName(1),
      segName(20),
    ]);
    assert.deepEqual(new Uint8Array(readFileSync(`${path(0)}.broken`)), bytes);
    assert.deepEqual((await inspect(dir)).seqs, range(1, 21));
  });

  it("v2: older segment with a damaged seal: rewritten with every record, later segments untouched", async () => {
    const fx = fixture("v2");
    const S = fx.firsts;
    const second = fx.segs[1].slice();
    second[second.length - 10] ^= 0x01;
    const { dir, path } = place({ [S[0]]: fx.segs[0], [S[1]]: second, [S[2]]: fx.segs[2] });
    const store = await openStore(dir, { repair: true });
    const log = await store.log(LOG);
    const [action, ...more] = log.openReport.repaired;
    assert.deepEqual(more, []);
    assert.equal(action.kind, "salvaged");
    assert.equal(action.path, path(S[1]));
    assert.deepEqual(action.kept, [{ from: S[1], to: S[2] }]);
    assert.deepEqual(action.lost, []);
    assert.equal(log.openReport.skippedSeqs, null);
    await store.close();
    assert.deepEqual(new Uint8Array(readFileSync(`${path(S[1])}.broken`)), second);
    assert.deepEqual(new Uint8Array(readFileSync(path(S[2]))), fx.segs[2]);
    const r = await inspect(dir);
    assert.deepEqual(r.seqs, range(0, fx.total));
  });

  for (const format of ["v1"] as const) {
    it(`${format}: older segment with a damaged seal: it and later segments set aside, its records kept`, async () => {
      const fx = fixture(format);
      const S = fx.firsts;
      const second = fx.segs[1].slice();
      second[second.length - 10] ^= 0x01;
      const { dir, path } = place({ [S[0]]: fx.segs[0], [S[1]]: second, [S[2]]: fx.segs[2] });
      const next = beyond([[S[1], second.length], [S[2], fx.segs[2].length]]);
      const store = await openStore(dir, { repair: true });
      const log = await store.log(LOG);
      const moved = log.openReport.repaired.map((a) => [a.path, a.movedTo]);
      assert.deepEqual(moved.sort(), [
        [path(S[1]), `${path(S[1])}.broken`],
        [path(S[2]), `${path(S[2])}.broken`],
      ]);
      assert.deepEqual(log.openReport.skippedSeqs, { from: S[2], to: next });
      assert.equal(log.nextSeq, next);
      assert.equal(await log.append(payload(next)), next);
      await store.close();
      const r = await inspect(dir);
      assert.deepEqual(r.seqs, [...range(0, S[2]), next]);
      assert.deepEqual(new Uint8Array(readFileSync(`${path(S[1])}.broken`)), second);
      assert.deepEqual(new Uint8Array(readFileSync(`${path(S[2])}.broken`)), fx.segs[2]);
    });
  }

  it("a second repair does not overwrite an earlier .broken file", async () => {
    const bytes = v1Segment(0, v1Records(0, 5));
    bytes[HEADER + 3 * V1_FRAME + 2] ^= 0x01;
    const { dir, path } = place({ 0: bytes });
    writeFileSync(`${path(0)}.broken`, "older");
    const r = await inspect(dir, { repair: true });
    assert.equal(r.report.repaired[0].movedTo, `${path(0)}.broken.1`);
    assert.equal(readFileSync(`${path(0)}.broken`, "utf8"), "older");
    assert.deepEqual(r.seqs, [0, 1, 2]);
  });

  it("without repair the same damage still fails (repair is opt-in)", async () => {
    const bytes = v1Segment(0, v1Records(0, 5));
    const at2 = HEADER + 2 * V1_FRAME;
    bytes[at2 + FH + 5] ^= 0x20;
    const { dir, path } = place({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: at2, seq: 2 });
    unlinkSync(path(0));
  });
});
