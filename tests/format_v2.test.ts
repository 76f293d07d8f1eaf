// Format version 2 as FORMAT.md describes it, checked from the document alone. The codec in
// ./spec_codec.ts is written from FORMAT.md with DataView and node:zlib's crc32 (never from src/).
// This file checks (a) that the worked examples in FORMAT.md are byte for byte what the codec
// produces (the hex is parsed from FORMAT.md itself), (b) that segments built byte by byte open and
// read through the Store, with the torn-tail, batch, log-id, chain and gap rules, (c) that what the
// Store writes decodes by the spec, and (d) that version-1 segments still open, alone and followed
// by version-2 ones. The codec's own round trips and check orders come first.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { type Log, type LogRecord, type OpenReport, Store, SyncPolicy } from "../mod.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import {
  buildV2Segment,
  cat,
  chooseMark,
  dataStartFor,
  decodeAnyHeader,
  decodeV1Segment,
  decodeV2Entry,
  decodeV2Frame,
  decodeV2Segment,
  decodeV2Slot,
  ENTRY_BYTES,
  HEADER,
  hex,
  indexCapacityFor,
  type IndexEntry,
  type Mark,
  MARK_ON_CLOSE,
  MAX_U64,
  maxSealSize,
  readVarint,
  recoverV2Active,
  seededCrc,
  segName,
  SLOT_A_AT,
  SLOT_B_AT,
  SLOT_BYTES,
  specFrame,
  specHeader,
  specSeal,
  storedEntryAt,
  T_LAST,
  T_MORE,
  u32,
  u64le,
  V2_HEADER,
  v2Entry,
  v2Frame,
  v2Header,
  type V2HeaderDecoded,
  type V2Layout,
  type V2Record,
  v2Seal,
  v2SealSize,
  v2Slot,
  varint,
} from "./spec_codec.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MiB = 1 << 20;
const BASE = 1_700_000_000_000;
/** The log id the hand-built segments use, and another log's. */
const ID = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
const FOREIGN = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);

const rec = (s: string, delta = 1): V2Record => ({ data: enc.encode(s), delta });
/** `log.id`, the new API: the log id as 32 lowercase hex digits. */
const idOf = (log: Log): string => (log as Log & { readonly id: string }).id;

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), "khipu-format-v2-"));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});
let counter = 0;
const freshDir = () => join(root, `s${counter++}`);

/** Writes segment files (firstSeq -> bytes) into `<dir>/<name>/`. */
function writeLog(dir: string, name: string, files: [number, Uint8Array][]): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [first, bytes] of files) writeFileSync(join(d, segName(first)), bytes);
  return d;
}

const fileBytes = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

const open = (dir: string, opts: Parameters<typeof Store.open>[1] = {}) =>
  Store.open(dir, { platform: nodePlatform, syncPolicy: SyncPolicy.always(), ...opts });

interface Opened {
  records: LogRecord[];
  report: OpenReport;
  first: number;
  next: number;
  id: string;
}

/** Opens the log, reads it from `from`, closes; or the error, and whether open or read threw. */
async function outcome(
  dir: string,
  name: string,
  from = 0,
): Promise<{ ok: true; value: Opened } | { ok: false; at: "open" | "read"; error: Error }> {
  const store = await open(dir);
  try {
    let log: Log;
    try {
      log = await store.log(name);
    } catch (error) {
      return { ok: false, at: "open", error: error as Error };
    }
    const records: LogRecord[] = [];
    try {
      for await (const r of log.read({ from })) records.push(r);
    } catch (error) {
      return { ok: false, at: "read", error: error as Error };
    }
    return {
      ok: true,
      value: {
        records,
        report: log.openReport,
        first: log.firstSeq,
        next: log.nextSeq,
        id: idOf(log),
      },
    };
  } finally {
    await store.close();
  }
}

async function readAll(dir: string, name: string, from = 0): Promise<Opened> {
  const r = await outcome(dir, name, from);
  if (!r.ok) throw r.error;
  return r.value;
}

/** A `CorruptionError`, at open or at read (`at` narrows it). */
async function expectCorruption(
  dir: string,
  name: string,
  at?: "open" | "read",
  message?: RegExp,
): Promise<Error> {
  const r = await outcome(dir, name);
  assert.equal(r.ok, false, "expected CorruptionError, the log opened and read");
  if (r.ok) throw new Error("unreachable");
  assert.equal((r.error as Error & { code?: string }).code, "CORRUPTION", String(r.error));
  if (at) assert.equal(r.at, at, `CorruptionError at ${r.at}: ${r.error.message}`);
  if (message) assert.match(r.error.message, message);
  return r.error;
}

/** The records a hand-built layout holds, as the Store must yield them. */
function expected(
  ...segs: { layout: { frames: { seq: number; timestamp: number; data: Uint8Array }[] } }[]
) {
  return segs.flatMap((s) =>
    s.layout.frames.map((f) => ({ seq: f.seq, timestamp: f.timestamp, data: f.data }))
  );
}

function sameRecords(
  got: LogRecord[],
  want: { seq: number; timestamp: number; data: Uint8Array }[],
) {
  assert.deepEqual(got.map((r) => r.seq), want.map((r) => r.seq), "seqs");
  assert.deepEqual(got.map((r) => r.timestamp), want.map((r) => r.timestamp), "timestamps");
  got.forEach((r, i) => assert.deepEqual(new Uint8Array(r.data), want[i].data, `data of ${r.seq}`));
}

// ---------------------------------------------------------------------------------------------
// (a) FORMAT.md's worked examples, parsed from the document
// ---------------------------------------------------------------------------------------------

const formatMd = readFileSync(fileURLToPath(new URL("../FORMAT.md", import.meta.url)), "utf8");

/**
 * The bytes of the hex dump in the first code block after `heading`. Each line is a 4-digit hex
 * offset (which must equal the bytes so far), two spaces, up to 16 hex pairs in a 47-column field,
 * then the annotation.
 */
function dumpAfter(heading: string): Uint8Array {
  const at = formatMd.indexOf(heading);
  assert.ok(at >= 0, `FORMAT.md has "${heading}"`);
  const start = formatMd.indexOf("\n```\n", at);
  const end = formatMd.indexOf("\n```\n", start + 5);
  assert.ok(start > at && end > start, `a code block after "${heading}"`);
  const out: number[] = [];
  for (const line of formatMd.slice(start + 5, end).split("\n")) {
    const m = /^([0-9a-f]{4}) {2}/.exec(line);
    assert.ok(m, `dump line: ${line}`);
    assert.equal(parseInt(m[1], 16), out.length, `offset of: ${line}`);
    assert.ok(line.length <= 53 || /^ {2,}\S/.test(line.slice(53)), `annotation column: ${line}`);
    const pairs = line.slice(6, 53).trim().split(/ +/);
    assert.ok(pairs.length >= 1 && pairs.length <= 16, `1..16 bytes: ${line}`);
    for (const p of pairs) {
      assert.match(p, /^[0-9a-f]{2}$/, `hex pair in: ${line}`);
      out.push(parseInt(p, 16));
    }
  }
  return Uint8Array.from(out);
}

/** The log id of FORMAT.md's worked example: 00 01 .. 0f. */
const EXAMPLE_ID = Uint8Array.from({ length: 16 }, (_, i) => i);

/** The worked example of FORMAT.md "Worked example (version 2)", from the codec. */
function workedExampleV2(logId = EXAMPLE_ID) {
  return buildV2Segment({
    logId,
    firstSeq: 0,
    baseTimestamp: BASE,
    maxRecordBytes: 16 * MiB,
    indexCapacity: indexCapacityFor(65536),
    batches: [[rec("hi", 0)], [rec("a", 5), rec("b", 0)]],
    // Slot A after the fdatasync of "hi", slot B after the batch's: what each covered. The
    // creation's and the seal's fdatasyncs write none.
    slots: (l) => ({ A: l.markAfter(1, 1), B: l.markAfter(2, 2) }),
    seal: { delta: 1 },
  });
}

describe("FORMAT.md worked examples equal the codec's bytes", () => {
  it("version 2: the hex dump in FORMAT.md is the codec's segment, byte for byte", () => {
    const doc = dumpAfter("## Worked example (version 2)");
    const seg = workedExampleV2();
    assert.equal(indexCapacityFor(65536), 1);
    assert.equal(dataStartFor(1), 192);
    assert.equal(seg.bytes.length, 280, "FORMAT.md: the file is 280 bytes long");
    assert.equal(hex(doc), hex(seg.bytes));
    assert.match(formatMd, /The file is 280 bytes long, and its seal starts at\s+280 - 63 = 217/);
  });

  it("version 2: the worked example decodes as described", () => {
    const d = decodeV2Segment(dumpAfter("## Worked example (version 2)"), true);
    assert.equal(d.header.firstSeq, 0);
    assert.equal(d.header.maxRecordBytes, 16 * MiB);
    assert.equal(d.header.dataStart, 192);
    assert.equal(d.header.indexCapacity, 1);
    assert.equal(d.header.prevEndSeq, 0);
    assert.equal(d.header.baseTimestamp, BASE);
    assert.equal(hex(d.header.logId), "000102030405060708090a0b0c0d0e0f");
    assert.equal(d.markFrom, "B");
    assert.deepEqual(d.mark, {
      generation: 2,
      durableEnd: 217,
      nextSeq: 3,
      lastTimestamp: BASE + 5,
      storedEntries: 0,
    });
    assert.ok(d.slots.A.ok, 'slot A, the fdatasync of "hi"');
    assert.deepEqual(d.slots.A.mark, {
      generation: 1,
      durableEnd: 201,
      nextSeq: 1,
      lastTimestamp: BASE,
      storedEntries: 0,
    });
    assert.deepEqual(d.entries, [{ seq: 0, offset: 192, prevTimestamp: BASE }], "entry 0 only");
    assert.deepEqual(
      d.frames.map((f) => [f.offset, f.seq, f.type, f.timestamp, dec.decode(f.payload)]),
      [[192, 0, 1, BASE, "hi"], [201, 1, 3, BASE + 5, "a"], [209, 2, 1, BASE + 5, "b"]],
    );
    assert.equal(d.seal!.offset, 217);
    assert.equal(d.seal!.seq, 3);
    assert.equal(d.seal!.size, 63);
    assert.equal(d.seal!.timestamp, BASE + 6);
    assert.deepEqual(d.seal!.body, {
      firstTimestamp: BASE,
      lastTimestamp: BASE + 5,
      entries: [{ seq: 0, offset: 192, prevTimestamp: BASE }],
    });
    // The CRC of "a" that FORMAT.md spells out.
    const logId = d.header.logId;
    assert.equal(
      seededCrc(cat(logId, u64le(1)), Uint8Array.of(3, 1, 5, 0x61)),
      0xbb240fe2,
    );
    assert.equal(u32(crc32(Uint8Array.of(3, 1, 5, 0x61), crc32(cat(logId, u64le(1))))), 0xbb240fe2);
    // Had it stayed active: zeros to 65536 bytes (its preallocation), and a recovery from slot B;
    // or, had a power cut lost slot B (only the seal's fdatasync made it durable), from slot A,
    // scanning the batch.
    const doc = dumpAfter("## Worked example (version 2)");
    const active = cat(doc.subarray(0, 217), new Uint8Array(65536 - 217));
    const withoutB = active.slice();
    withoutB.fill(0, SLOT_B_AT, SLOT_B_AT + SLOT_BYTES);
    for (const image of [active, withoutB]) {
      assert.deepEqual(recoverV2Active(image), {
        end: 217,
        nextSeq: 3,
        truncatedBytes: 0,
        sealed: false,
      });
    }
    assert.equal(chooseMark(active, d.header).mark.durableEnd, 217);
    assert.equal(chooseMark(withoutB, d.header).mark.durableEnd, 201);
  });

  it("version 2: the Store writes the worked example's bytes for the steps it describes", async () => {
    const dir = freshDir();
    const realNow = Date.now;
    let now = BASE;
    let id = "";
    const store = await open(dir, { segmentBytes: 65536 });
    try {
      Date.now = () => now; // the example's clock: the writer reads no other
      const log = await store.log("w");
      assert.equal(await log.append("hi"), 0);
      now = BASE + 5;
      assert.deepEqual(await log.appendBatch(["a", "b"]), [1, 2]);
      now = BASE + 6;
      // A record that does not fit in 65536 bytes: the log seals segment 0 and rolls over.
      assert.equal(await log.append(new Uint8Array(65_400)), 3);
      id = idOf(log);
    } finally {
      Date.now = realNow;
      await store.close();
    }
    const logId = Uint8Array.from(id.match(/../g)!, (x) => parseInt(x, 16));
    const got = fileBytes(join(dir, "w", segName(0)));
    assert.equal(hex(got), hex(workedExampleV2(logId).bytes), "byte for byte, with its own log id");
    assert.deepEqual(readdirSync(join(dir, "w")).sort(), [segName(0), segName(3)]);
  });

  it("version 1: the hex dump in FORMAT.md is the v1 codec's segment, byte for byte", () => {
    const doc = dumpAfter("### Worked example (version 1)");
    const built = cat(
      specHeader(0, 16 * MiB),
      specFrame(1, 0, BASE, enc.encode("hi")),
      specSeal(1, BASE + 500, [[0, 32]]),
    );
    assert.equal(built.length, 114);
    assert.equal(hex(doc), hex(built));
    const d = decodeV1Segment(doc, true);
    assert.equal(d.seal!.offset, 62);
    assert.deepEqual(d.seal!.index, [[0, 32]]);
  });
});

// ---------------------------------------------------------------------------------------------
// The codec itself (runs without the implementation)
// ---------------------------------------------------------------------------------------------

describe("v2 codec: varints", () => {
  it("round-trips, with the sizes FORMAT.md gives", () => {
    const cases: [number, string][] = [
      [0, "00"],
      [5, "05"],
      [127, "7f"],
      [128, "8001"],
      [300, "ac02"],
      [16383, "ff7f"],
      [16384, "808001"],
      [256 * MiB, "8080808001"],
      [2 ** 35 - 1, "ffffffff7f"],
      [MAX_U64, "ffffffffffffff0f"],
    ];
    for (const [n, h] of cases) {
      assert.equal(hex(varint(n)), h, `varint(${n})`);
      const b = varint(n);
      assert.deepEqual(readVarint(b, 0, b.length, 8), { status: "ok", value: n, next: b.length });
    }
    assert.equal(varint(256 * MiB).length, 5, "a 256 MiB length fits the 5-byte limit");
    assert.equal(varint(MAX_U64).length, 8, "any safe delta fits the 8-byte limit");
  });

  it("refuses non-minimal and over-long varints; a varint cut by the end is short", () => {
    assert.equal(readVarint(Uint8Array.of(0x80, 0x00), 0, 2, 5).status, "bad");
    assert.equal(readVarint(Uint8Array.of(0xff, 0x80, 0x00), 0, 3, 5).status, "bad");
    assert.equal(
      readVarint(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 0, 6, 5).status,
      "bad",
    );
    assert.equal(readVarint(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x01), 0, 5, 5).status, "ok");
    assert.deepEqual(readVarint(Uint8Array.of(0x80, 0x80), 0, 2, 5), { status: "short" });
    assert.equal(readVarint(new Uint8Array(9).fill(0x80), 0, 9, 8).status, "bad");
  });
});

describe("v2 codec: header", () => {
  const h = {
    maxRecordBytes: MiB,
    firstSeq: 77,
    logId: ID,
    prevEndSeq: 70,
    baseTimestamp: BASE,
    indexCapacity: 3,
  };

  it("round-trips, and keeps v1's bytes 0..11 and CRC at 28", () => {
    const b = v2Header(h);
    assert.equal(b.length, 80);
    const r = decodeAnyHeader(b);
    assert.ok(r.ok && r.header.version === 2);
    assert.deepEqual(r.header, { ...h, version: 2, dataStart: 160 + 96, logId: ID });
    assert.equal(hex(b.subarray(0, 8)), hex(enc.encode("KHIPUSEG")));
    assert.equal(new DataView(b.buffer).getUint32(28, true), u32(crc32(b.subarray(0, 28))));
    assert.equal(new DataView(b.buffer).getUint32(76, true), u32(crc32(b.subarray(32, 76))));
    // Version 1 still decodes.
    assert.deepEqual(decodeAnyHeader(specHeader(9, 4096)), {
      ok: true,
      header: { version: 1, firstSeq: 9, maxRecordBytes: 4096 },
    });
  });

  it("checks in FORMAT.md's order", () => {
    const reason = (b: Uint8Array) => {
      const r = decodeAnyHeader(b);
      assert.equal(r.ok, false);
      return (r as { reason: string }).reason;
    };
    const badMagic = v2Header(h);
    badMagic[0] = 0;
    assert.match(reason(badMagic), /magic/);
    assert.match(reason(v2Header(h, { crc0: 1 })), /checksum/);
    assert.match(reason(v2Header(h, { version: 3 })), /unsupported format version 3/);
    assert.match(reason(v2Header(h, { version: 3, crc1: 0 })), /version 3/, "version before CRC 2");
    assert.match(reason(v2Header(h, { headerLength: 32 })), /header length/);
    assert.match(reason(v2Header(h, { reserved11: 1 })), /reserved/);
    assert.match(reason(v2Header(h, { crc1: 1 })), /32\.\.75/);
    assert.match(reason(v2Header(h, { reserved68: Uint8Array.of(1) })), /reserved/);
    assert.match(
      reason(v2Header({ ...h, indexCapacity: 65537 }, { dataStart: dataStartFor(65537) })),
      /indexCapacity/,
    );
    assert.ok(decodeAnyHeader(v2Header({ ...h, indexCapacity: 65536 })).ok);
    assert.ok(decodeAnyHeader(v2Header({ ...h, indexCapacity: 0 })).ok, "no stored entries");
    assert.equal(dataStartFor(0), 160);
    assert.match(reason(v2Header(h, { dataStart: 256 + 1 })), /dataStart/);
    assert.match(reason(v2Header({ ...h, prevEndSeq: 78 })), /prevEndSeq/);
    assert.match(reason(v2Header({ ...h, baseTimestamp: 2 ** 53 })), /2\^53/);
    assert.match(reason(v2Header({ ...h, logId: new Uint8Array(16) })), /log id/);
    assert.match(reason(new Uint8Array(80)), /magic/, "zeros: the magic fails");
    // A v1 header: its reserved bytes 24..27 are checked, and 32 is its length.
    assert.match(reason(specHeader(0, 4096, 2)), /header length/, "v2 with a 32-byte header");
  });
});

describe("v2 codec: mark slots and index entries", () => {
  const hdr = (): V2HeaderDecoded => {
    const r = decodeAnyHeader(v2Header({
      maxRecordBytes: MiB,
      firstSeq: 10,
      logId: ID,
      prevEndSeq: 10,
      baseTimestamp: BASE,
      indexCapacity: 4,
    }));
    assert.ok(r.ok && r.header.version === 2);
    return r.header as V2HeaderDecoded;
  };
  const m: Mark = {
    generation: 3,
    durableEnd: 400,
    nextSeq: 12,
    lastTimestamp: BASE + 9,
    storedEntries: 2,
  };

  it("the index area's geometry: entry 0 is implied, stored entry i is at 160 + 32 (i - 1)", () => {
    assert.equal(storedEntryAt(1), 160);
    assert.equal(storedEntryAt(2), 192);
    assert.throws(() => storedEntryAt(0));
    assert.deepEqual(
      [0, 4095, 65535, 65536, 131072, 64 * MiB, 4096 * MiB, 8192 * MiB].map(indexCapacityFor),
      [0, 0, 0, 1, 2, 1024, 65536, 65536],
    );
    assert.equal(dataStartFor(indexCapacityFor(64 * MiB)), 32928);
  });

  it("a slot round-trips in its own parity; its CRC is seeded with log id and firstSeq", () => {
    const h = hdr();
    const s = v2Slot(ID, 10, m);
    assert.equal(s.length, SLOT_BYTES);
    assert.equal(new DataView(s.buffer).getUint32(32, true), 2, "storedEntries at 32");
    assert.deepEqual(decodeV2Slot(s, h, "A"), { ok: true, mark: m, damage: null });
    assert.equal(decodeV2Slot(s, h, "B").ok, false, "odd generation in slot B");
    assert.equal(decodeV2Slot(v2Slot(FOREIGN, 10, m), h, "A").ok, false, "another log's slot");
    assert.equal(decodeV2Slot(v2Slot(ID, 11, m), h, "A").ok, false, "another segment's slot");
    assert.equal(decodeV2Slot(new Uint8Array(40), h, "A").ok, false, "zeros");
    assert.equal(decodeV2Slot(new Uint8Array(40), h, "B").ok, false, "zeros");
    // Not a slot (ignored): a generation of 0 or above 2^53 - 1.
    assert.equal(decodeV2Slot(v2Slot(ID, 10, { ...m, generation: 0 }), h, "B").ok, false);
    assert.equal(decodeV2Slot(v2Slot(ID, 10, { ...m, generation: 2 ** 53 }), h, "B").ok, false);
    // A slot whose mark does not fit its segment: damage, not ignored.
    for (
      const bad of [
        { durableEnd: 100 },
        { nextSeq: 9 },
        { lastTimestamp: BASE - 1 },
        { storedEntries: 5 },
        { durableEnd: 2 ** 53 },
      ]
    ) {
      const r = decodeV2Slot(v2Slot(ID, 10, { ...m, ...bad }), h, "A");
      assert.ok(r.ok && r.damage !== null, JSON.stringify(bad));
    }
    assert.equal(
      (decodeV2Slot(v2Slot(ID, 10, { ...m, storedEntries: 4 }), h, "A") as {
        damage: string | null;
      }).damage,
      null,
      "storedEntries = indexCapacity fits",
    );
  });

  it("the mark is the slot with the larger generation, else the default", () => {
    const h = hdr();
    const file = new Uint8Array(h.dataStart + 200);
    const none = {
      mark: {
        generation: 0,
        durableEnd: h.dataStart,
        nextSeq: 10,
        lastTimestamp: BASE,
        storedEntries: 0,
      },
      from: null,
      damage: null,
    };
    assert.deepEqual(chooseMark(file, h), none);
    assert.deepEqual(chooseMark(file.subarray(0, V2_HEADER), h), none, "a file of its header");
    file.set(v2Slot(ID, 10, m), SLOT_A_AT);
    assert.equal(chooseMark(file, h).from, "A");
    file.set(v2Slot(ID, 10, { ...m, generation: 4, durableEnd: 450 }), SLOT_B_AT);
    assert.equal(chooseMark(file, h).from, "B");
    assert.equal(chooseMark(file, h).mark.durableEnd, 450);
    assert.equal(chooseMark(file.subarray(0, 449), h).damage, "mark past the end of the file");
    file[SLOT_B_AT + 9] ^= 1; // a torn newer slot: the older one stands
    assert.equal(chooseMark(file, h).from, "A");
    // A newer slot that counts but does not fit is damage: the older one does not stand in.
    file.set(v2Slot(ID, 10, { ...m, generation: 4, nextSeq: 2 }), SLOT_B_AT);
    assert.deepEqual(
      [chooseMark(file, h).from, chooseMark(file, h).damage],
      ["B", "nextSeq below firstSeq"],
    );
  });

  it("an index entry round-trips; reserved bytes and other seeds are refused", () => {
    const h = hdr();
    const e: IndexEntry = { seq: 11, offset: 300, prevTimestamp: BASE + 2 };
    const b = v2Entry(ID, 10, e);
    assert.equal(b.length, ENTRY_BYTES);
    assert.deepEqual(decodeV2Entry(b, h), { ok: true, entry: e });
    assert.equal(decodeV2Entry(v2Entry(FOREIGN, 10, e), h).ok, false);
    assert.equal(decodeV2Entry(v2Entry(ID, 0, e), h).ok, false);
    const r = b.slice();
    r[30] = 1;
    assert.equal(decodeV2Entry(r, h).ok, false, "reserved 28..31");
  });
});

describe("v2 codec: frames", () => {
  const ctx = (seq: number, prevTimestamp = BASE, logId = ID) => ({
    logId,
    seq,
    prevTimestamp,
    maxRecordBytes: MiB,
  });

  it("round-trips; sizes are 7 bytes for an empty record and 107 for 100 bytes", () => {
    const f = v2Frame(ID, 5, T_LAST, 3, new Uint8Array(0));
    assert.equal(f.length, 7);
    const g = v2Frame(ID, 5, T_MORE, 100, new Uint8Array(100).fill(9));
    assert.equal(g.length, 107);
    const r = decodeV2Frame(g, 0, g.length, ctx(5));
    assert.ok(r.status === "ok");
    assert.equal(r.type, T_MORE);
    assert.equal(r.timestamp, BASE + 100);
    assert.equal(r.size, 107);
    assert.deepEqual(r.payload, new Uint8Array(100).fill(9));
    assert.equal(v2Frame(ID, 5, T_LAST, 128, new Uint8Array(100)).length, 108, "delta >= 128");
  });

  it("the CRC is seeded with the log id and the sequence number", () => {
    const f = v2Frame(ID, 41, T_LAST, 7, enc.encode("payload"));
    assert.equal(decodeV2Frame(f, 0, f.length, ctx(41)).status, "ok");
    for (const other of [0, 40, 42, 41 + 2 ** 31, 41 + 2 ** 32, 2 ** 53 - 2]) {
      assert.deepEqual(decodeV2Frame(f, 0, f.length, ctx(other)), {
        status: "bad",
        reason: "bad frame checksum",
      }, `seq ${other}`);
    }
    assert.equal(decodeV2Frame(f, 0, f.length, ctx(41, BASE, FOREIGN)).status, "bad");
    const body = f.subarray(4);
    assert.equal(new DataView(f.buffer).getUint32(0, true), seededCrc(cat(ID, u64le(41)), body));
  });

  it("a copy at another position of the same log never decodes (seqs agreeing in the upper 32 bits)", () => {
    const f = v2Frame(ID, 1_000_000, T_LAST, 0, enc.encode("x"));
    for (let d = 1; d <= 20_000; d++) {
      assert.notEqual(decodeV2Frame(f, 0, f.length, ctx(1_000_000 + d)).status, "ok");
      assert.notEqual(decodeV2Frame(f, 0, f.length, ctx(1_000_000 - d)).status, "ok");
    }
  });

  it("checks in FORMAT.md's order", () => {
    const f = v2Frame(ID, 0, T_LAST, 0, enc.encode("abc"));
    assert.deepEqual(decodeV2Frame(f, 0, 6, ctx(0)), { status: "short" }, "(1) fewer than 7");
    const t = f.slice();
    for (const type of [0, 4, 255]) {
      t[4] = type;
      assert.deepEqual(decodeV2Frame(t, 0, t.length, ctx(0)), {
        status: "bad",
        reason: `bad frame type ${type}`,
      });
    }
    // (3) a length over the cap, before anything else is read.
    const big = cat(Uint8Array.of(0, 0, 0, 0, 1), varint(MiB + 1), varint(0));
    assert.match(
      (decodeV2Frame(big, 0, big.length, ctx(0)) as { reason: string }).reason,
      /exceeds/,
    );
    const seal = cat(Uint8Array.of(0, 0, 0, 0, 2), varint(16 * MiB + 1), varint(0));
    assert.equal(decodeV2Frame(seal, 0, seal.length, ctx(0)).status, "bad", "seal cap 16 MiB");
    const sealOk = cat(Uint8Array.of(0, 0, 0, 0, 2), varint(16 * MiB), varint(0));
    assert.deepEqual(decodeV2Frame(sealOk, 0, sealOk.length, ctx(0)), { status: "short" });
    // The header's cap is read as at most 256 MiB.
    const huge = cat(Uint8Array.of(0, 0, 0, 0, 1), varint(256 * MiB + 1), varint(0));
    const r = decodeV2Frame(huge, 0, huge.length, { ...ctx(0), maxRecordBytes: 0xffff_ffff });
    assert.equal(r.status, "bad");
    // Non-minimal varints.
    const nm = Uint8Array.of(0, 0, 0, 0, 1, 0x81, 0x00, 0, 0, 0);
    assert.equal(decodeV2Frame(nm, 0, nm.length, ctx(0)).status, "bad");
    // A varint running past the available bytes is short.
    const cut = Uint8Array.of(0, 0, 0, 0, 1, 0x81, 0x81);
    assert.deepEqual(decodeV2Frame(cut, 0, cut.length, ctx(0)), { status: "short" });
    // (4) the timestamp bound.
    const late = v2Frame(ID, 0, T_LAST, 2, enc.encode("x"));
    assert.match(
      (decodeV2Frame(late, 0, late.length, ctx(0, MAX_U64 - 1)) as { reason: string }).reason,
      /2\^53/,
    );
    // (5) short before (6) CRC.
    assert.deepEqual(decodeV2Frame(f, 0, f.length - 1, ctx(0)), { status: "short" });
    const flipped = f.slice();
    flipped[f.length - 1] ^= 1;
    assert.equal(decodeV2Frame(flipped, 0, f.length, ctx(0)).status, "bad");
  });

  it("zeros and 0xff never decode, at any offset, for any seq", () => {
    const zeros = new Uint8Array(4096 + 16);
    const ff = new Uint8Array(4096 + 16).fill(0xff);
    for (const seq of [0, 1, 2 ** 32]) {
      for (let off = 0; off < 4096; off++) {
        assert.deepEqual(decodeV2Frame(zeros, off, zeros.length, ctx(seq)), {
          status: "bad",
          reason: "bad frame type 0",
        });
        assert.equal(decodeV2Frame(ff, off, ff.length, ctx(seq)).status, "bad");
      }
    }
  });

  it("every byte is covered: any flip is rejected", () => {
    const f = v2Frame(ID, 5, T_MORE, 300, enc.encode("0123456789"));
    for (let i = 0; i < f.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const g = f.slice();
        g[i] ^= mask;
        const r = decodeV2Frame(g, 0, g.length, ctx(5));
        assert.ok(r.status !== "ok", `byte ${i} ^ ${mask}`);
      }
    }
  });
});

describe("v2 codec: seals and whole segments", () => {
  it("a seal's size, endSeq, trailer and bound", () => {
    assert.equal(v2SealSize(1, 1), 63, "the smallest seal: one entry");
    const s = v2Seal(ID, 3, 1, {
      firstTimestamp: BASE,
      lastTimestamp: BASE,
      entries: [{ seq: 0, offset: 192, prevTimestamp: BASE }],
    });
    assert.equal(s.length, 63);
    const v = new DataView(s.buffer);
    assert.equal(s[5], 56, "payload length 32 + 24 n");
    assert.equal(Number(v.getBigUint64(7, true)), 3, "the payload starts with endSeq");
    assert.equal(v.getUint32(59, true), 63, "the trailer is the frame size");
    assert.equal(maxSealSize(192, 192), 18 + 32 + 24);
    assert.equal(maxSealSize(192 + 65536, 192), 18 + 32 + 48);
    assert.ok(v2SealSize(1, 2 ** 53 - 1) <= maxSealSize(192, 192));
  });

  it("round-trips sealed and active segments with batches, slots, index entries and gaps", () => {
    const big = (i: number) => ({ data: new Uint8Array(5000).fill(i & 0xff), delta: i % 3 });
    const batches: V2Record[][] = [];
    for (let i = 0; i < 60; i++) {
      batches.push(i % 4 === 0 ? [big(i), big(i + 1), big(i + 2)] : [big(i)]);
    }
    const sealed = buildV2Segment({
      logId: ID,
      firstSeq: 100,
      prevEndSeq: 90,
      baseTimestamp: BASE,
      indexCapacity: 8,
      batches,
      slots: (l) => ({ A: l.markAfter(31, 5, 2), B: l.markAfter(30, 4, 2) }),
      stored: (l) => l.defaultEntries().slice(1, 3),
      seal: { delta: 10 },
    });
    const d = decodeV2Segment(sealed.bytes, true);
    assert.equal(d.header.prevEndSeq, 90);
    assert.equal(d.markFrom, "A");
    assert.equal(d.entries.length, 3);
    assert.equal(d.frames.length, sealed.layout.frames.length);
    assert.ok(d.seal!.body.entries.length >= 4, "one entry per 64 KiB");
    assert.deepEqual(
      d.frames.map((f) => f.timestamp),
      sealed.layout.frames.map((f) => f.timestamp),
    );
    assert.equal(d.seal!.seq, sealed.layout.endSeq);

    const active = buildV2Segment({
      logId: ID,
      firstSeq: 5,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b"), rec("c")]],
      slots: (l) => ({ B: l.markAfter(1, 2) }),
      zeroTail: 1000,
    });
    const a = decodeV2Segment(active.bytes, false);
    assert.equal(a.end, active.layout.end);
    assert.ok(a.zeroTail);
    assert.deepEqual(recoverV2Active(active.bytes), {
      end: active.layout.end,
      nextSeq: 8,
      truncatedBytes: 0,
      sealed: false,
    });
    // A sealed segment always holds a record: a seal of none (seal seq = firstSeq) is refused.
    const empty = buildV2Segment({
      logId: ID,
      firstSeq: 7,
      baseTimestamp: BASE,
      batches: [],
      seal: { delta: 0, entries: (l) => [{ seq: 7, offset: l.dataStart, prevTimestamp: BASE }] },
    });
    assert.throws(() => decodeV2Segment(empty.bytes, true), /without records/);
    // A new active segment holds only its header: it decodes, with nothing in it.
    const fresh = buildV2Segment({ logId: ID, firstSeq: 7, baseTimestamp: BASE, batches: [] });
    const h80 = decodeV2Segment(fresh.bytes.subarray(0, V2_HEADER), false);
    assert.deepEqual([h80.end, h80.frames.length, h80.markFrom, h80.zeroTail], [
      fresh.layout.dataStart,
      0,
      null,
      true,
    ]);
  });

  it("the decoder refuses what FORMAT.md forbids", () => {
    const base = {
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a")], [rec("b"), rec("c")]],
    };
    // A seal after a type-3 frame.
    const s = buildV2Segment({ ...base, batches: [[rec("a"), rec("b")]], seal: { delta: 0 } });
    const l = s.layout;
    const bad = cat(
      s.bytes.subarray(0, l.frames[1].offset),
      v2Seal(ID, 1, 0, {
        firstTimestamp: l.frames[0].timestamp,
        lastTimestamp: l.frames[0].timestamp,
        entries: [{ seq: 0, offset: l.dataStart, prevTimestamp: BASE }],
      }),
    );
    assert.throws(() => decodeV2Segment(bad, true));
    // A seal whose payload's endSeq is not the seq its CRC was computed with.
    const s2 = buildV2Segment({ ...base, seal: { delta: 0 } }).bytes;
    const sealAt = s2.length - new DataView(s2.buffer).getUint32(s2.length - 4, true);
    const wrongEnd = cat(
      s2.subarray(0, sealAt),
      v2Seal(ID, 3, 0, {
        firstTimestamp: BASE + 1,
        lastTimestamp: BASE + 3,
        entries: [{ seq: 0, offset: 192, prevTimestamp: BASE }],
      }, { endSeq: 4 }),
    );
    assert.throws(() => decodeV2Segment(wrongEnd, true), /seal/);
    // A seal whose entry 0 is not (firstSeq, dataStart, baseTimestamp).
    const e0 = buildV2Segment({
      ...base,
      seal: {
        delta: 0,
        entries: (lay) => [{ seq: 0, offset: lay.dataStart, prevTimestamp: BASE + 1 }],
      },
    });
    assert.throws(() => decodeV2Segment(e0.bytes, true), /entry 0/);
    // A mark past the frames, or not at a batch end.
    const past = buildV2Segment({
      ...base,
      slots: () => ({
        A: { generation: 1, durableEnd: 10_000, nextSeq: 3, lastTimestamp: BASE, storedEntries: 0 },
      }),
    });
    assert.throws(() => decodeV2Segment(past.bytes, false), /mark/);
    assert.throws(() => recoverV2Active(past.bytes), /mark/);
    const mid = buildV2Segment({
      ...base,
      slots: (lay) => ({
        A: {
          ...lay.markAfter(2, 1),
          durableEnd: lay.frames[1].offset + lay.frames[1].size,
          nextSeq: 2,
        },
      }),
    });
    assert.throws(() => decodeV2Segment(mid.bytes, false), /batch/);
    // Stored entries [1, storedEntries] must be valid.
    const idx = buildV2Segment({ ...base, slots: (lay) => ({ A: lay.markAfter(2, 1, 1) }) });
    assert.throws(() => decodeV2Segment(idx.bytes, false), /index entry 1/);
    assert.throws(() => recoverV2Active(idx.bytes), /index entry 1/);
    // A stored entry must come after entry 0 and before the mark, prevTimestamp included.
    for (
      const e of [
        (lay: V2Layout) => ({ seq: 0, offset: lay.frames[1].offset, prevTimestamp: BASE }),
        (lay: V2Layout) => ({ seq: 1, offset: lay.dataStart, prevTimestamp: BASE }),
        (lay: V2Layout) => ({ seq: 1, offset: lay.frames[1].offset, prevTimestamp: BASE + 99 }),
        (lay: V2Layout) => ({ seq: 3, offset: lay.frames[1].offset, prevTimestamp: BASE }),
      ]
    ) {
      const bad = buildV2Segment({
        ...base,
        stored: (lay) => [e(lay)],
        slots: (lay) => ({ A: lay.markAfter(2, 1, 1) }),
      });
      assert.throws(() => recoverV2Active(bad.bytes), /index entry 1/);
    }
    const good = buildV2Segment({
      ...base,
      stored: (lay) => [{ seq: 1, offset: lay.frames[1].offset, prevTimestamp: BASE + 1 }],
      slots: (lay) => ({ A: lay.markAfter(2, 1, 1) }),
    });
    assert.equal(decodeV2Segment(good.bytes, false).entries.length, 2);
  });

  it("recovery model: zero tail kept, torn tail and incomplete batch cut, other log's frame cut", () => {
    const base = {
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a")], [rec("b"), rec("c")], [rec("d"), rec("e"), rec("f")]],
    };
    const s = buildV2Segment(base);
    const l = s.layout;
    // Cut the last frame: batch 3 is incomplete.
    const incomplete = s.bytes.subarray(0, l.frames[5].offset);
    assert.deepEqual(recoverV2Active(incomplete), {
      end: l.batchEnds[1],
      nextSeq: 3,
      truncatedBytes: incomplete.length - l.batchEnds[1],
      sealed: false,
    });
    const withZeros = cat(incomplete, new Uint8Array(500));
    assert.equal(recoverV2Active(withZeros).truncatedBytes, withZeros.length - l.batchEnds[1]);
    assert.equal(recoverV2Active(cat(s.bytes, new Uint8Array(4096))).truncatedBytes, 0);
    // Another log's frame after the last batch.
    const foreign = cat(
      s.bytes,
      v2Frame(FOREIGN, 6, T_LAST, 0, enc.encode("g")),
      v2Frame(ID, 7, T_LAST, 0, enc.encode("h")),
    );
    assert.deepEqual(recoverV2Active(foreign), {
      end: s.bytes.length,
      nextSeq: 6,
      truncatedBytes: foreign.length - s.bytes.length,
      sealed: false,
    });
    // A newest segment that ends in a seal; a seal after a type-3 frame is a torn tail.
    const sealed = buildV2Segment({ ...base, seal: { delta: 0 } });
    assert.equal(recoverV2Active(sealed.bytes).sealed, true);
    const inBatch = cat(
      s.bytes.subarray(0, l.frames[4].offset),
      v2Seal(ID, 4, 0, {
        firstTimestamp: BASE + 1,
        lastTimestamp: l.frames[3].timestamp,
        entries: [{ seq: 0, offset: l.dataStart, prevTimestamp: BASE }],
      }),
    );
    assert.deepEqual(recoverV2Active(inBatch), {
      end: l.batchEnds[1],
      nextSeq: 3,
      truncatedBytes: inBatch.length - l.batchEnds[1],
      sealed: false,
    });
    // A file of its header alone: nothing to scan, nothing cut.
    assert.deepEqual(recoverV2Active(s.bytes.subarray(0, V2_HEADER)), {
      end: l.dataStart,
      nextSeq: 0,
      truncatedBytes: 0,
      sealed: false,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// (b) hand-built v2 segments through the Store
// ---------------------------------------------------------------------------------------------

describe("the Store opens hand-built v2 segments", () => {
  it("a sealed segment, then an active one with mark slots and a zero tail", async () => {
    const dir = freshDir();
    const seg0 = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("r0", 0)], [rec("r1", 2), rec("r2", 0), rec("r3", 1)], [rec("r4", 7)]],
      seal: { delta: 3 },
    });
    const seg5 = buildV2Segment({
      logId: ID,
      firstSeq: 5,
      prevEndSeq: 5,
      baseTimestamp: seg0.seal!.timestamp,
      batches: [[rec("r5", 1)], [rec("r6", 1), rec("r7", 0)], [rec("r8", 200)]],
      slots: (l) => ({ A: l.markAfter(1, 1), B: l.markAfter(2, 2) }),
      zeroTail: 4096,
    });
    const d = writeLog(dir, "l", [[0, seg0.bytes], [5, seg5.bytes]]);

    const store = await open(dir);
    const log = await store.log("l");
    assert.equal(log.openReport.truncatedBytes, 0);
    assert.equal(log.firstSeq, 0);
    assert.equal(log.nextSeq, 9);
    assert.equal(idOf(log), hex(ID), "log.id is the segments' log id, in hex");
    const got: LogRecord[] = [];
    for await (const r of log.read({ from: 0 })) got.push(r);
    sameRecords(got, expected(seg0, seg5));
    const from3: LogRecord[] = [];
    for await (const r of log.read({ from: 3 })) from3.push(r);
    sameRecords(from3, expected(seg0, seg5).slice(3));
    assert.equal(await log.append("r9"), 9);
    assert.deepEqual(await log.appendBatch(["x", "y"]), [10, 11]);
    await store.close();

    assert.deepEqual(fileBytes(join(d, segName(0))), seg0.bytes, "the sealed segment is untouched");
    const after5 = fileBytes(join(d, segName(5)));
    const l5 = seg5.layout;
    assert.deepEqual(after5.subarray(0, 80), seg5.bytes.subarray(0, 80), "header untouched");
    assert.deepEqual(
      after5.subarray(l5.dataStart, l5.end),
      seg5.bytes.subarray(l5.dataStart, l5.end),
      "frames untouched",
    );
    const dec5 = decodeV2Segment(after5, false);
    assert.deepEqual(dec5.frames.map((f) => [f.seq, f.type]), [
      [5, 1],
      [6, 3],
      [7, 1],
      [8, 1],
      [9, 1],
      [10, 3],
      [11, 1],
    ]);
    assert.deepEqual(dec5.frames.slice(4).map((f) => dec.decode(f.payload)), ["r9", "x", "y"]);
    // The slots go on from the mark found at open (slot B, generation 2), each written after the
    // fdatasync it names: r9's, then the batch's. None names r8, which recovery found past the
    // mark and fdatasynced itself.
    assert.ok(dec5.slots.A.ok && dec5.slots.B.ok);
    assert.deepEqual(dec5.slots.A.mark, {
      generation: 3,
      durableEnd: dec5.frames[5].offset,
      nextSeq: 10,
      lastTimestamp: dec5.frames[4].timestamp,
      storedEntries: 0,
    });
    assert.equal(dec5.markFrom, "B");
    assert.deepEqual(dec5.mark, {
      generation: 4,
      durableEnd: dec5.end,
      nextSeq: 12,
      lastTimestamp: dec5.frames[6].timestamp,
      storedEntries: 0,
    });
    assert.ok(dec5.zeroTail);
    const ts = dec5.frames.map((f) => f.timestamp);
    assert.ok(ts.every((t, i) => i === 0 || t >= ts[i - 1]), "timestamps never decrease");
  });

  it("an active segment with a zero-filled preallocated tail is not torn", async () => {
    const dir = freshDir();
    const seg = buildV2Segment({
      logId: ID,
      firstSeq: 1000,
      baseTimestamp: BASE,
      batches: [[rec("alpha", 0)], [{ data: new Uint8Array(0), delta: 1 }], [{
        data: Uint8Array.from({ length: 256 }, (_, i) => i),
        delta: 3,
      }]],
      zeroTail: 60_000,
    });
    const d = writeLog(dir, "z", [[1000, seg.bytes]]);
    const store = await open(dir);
    const log = await store.log("z");
    assert.equal(log.openReport.truncatedBytes, 0, "zeros after the last batch: never written");
    assert.equal(log.openReport.truncatedAt, null);
    assert.equal(log.nextSeq, 1003);
    const got: LogRecord[] = [];
    for await (const r of log.read({ from: 0 })) got.push(r);
    sameRecords(got, expected(seg));
    assert.ok(statSync(join(d, segName(1000))).size >= seg.bytes.length, "the zero tail is kept");
    assert.equal(await log.append("delta"), 1003);
    await store.close();
    const after = decodeV2Segment(fileBytes(join(d, segName(1000))), false);
    assert.equal(after.frames.length, 4);
    assert.equal(after.frames[3].offset, seg.layout.end, "the next frame overwrites the zeros");
    assert.equal(dec.decode(after.frames[3].payload), "delta");
    assert.ok(after.zeroTail);
    // The first slot, after the append's fdatasync: what it covered, "delta" included.
    assert.equal(after.markFrom, "A");
    assert.equal(after.mark.generation, 1);
    assert.equal(after.mark.durableEnd, after.end);
    assert.equal(after.mark.nextSeq, 1004);
  });

  for (
    const [what, tail] of [
      ["a partial frame at the end of the file", (f: Uint8Array) => f.subarray(0, 5)],
      [
        "a partial frame, then zeros",
        (f: Uint8Array) => cat(f.subarray(0, 6), new Uint8Array(3000)),
      ],
      ["garbage after zeros", () => cat(new Uint8Array(700), Uint8Array.of(1, 2, 3))],
    ] as const
  ) {
    it(`a torn tail after the last batch is cut and reported: ${what}`, async () => {
      const dir = freshDir();
      const seg = buildV2Segment({
        logId: ID,
        firstSeq: 0,
        baseTimestamp: BASE,
        batches: [[rec("a", 0)], [rec("b"), rec("c")]],
        slots: (l) => ({ A: l.markAfter(1, 1) }),
      });
      const torn = tail(v2Frame(ID, 3, T_LAST, 0, enc.encode("lost record")));
      const file = cat(seg.bytes, torn);
      assert.equal(recoverV2Active(file).truncatedBytes, torn.length, "the spec model agrees");
      const d = writeLog(dir, "t", [[0, file]]);
      const r = await readAll(dir, "t");
      assert.equal(r.report.truncatedBytes, torn.length);
      assert.deepEqual(r.report.truncatedAt, { path: join(d, segName(0)), offset: seg.layout.end });
      sameRecords(r.records, expected(seg));
      assert.equal(r.next, 3);
      const after = fileBytes(join(d, segName(0)));
      assert.ok(after.subarray(seg.layout.end).every((x) => x === 0), "nothing non-zero is left");
    });
  }

  it("an incomplete batch at the tail: its records are not there", async () => {
    const dir = freshDir();
    const full = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b"), rec("c")], [rec("d"), rec("e"), rec("f")]],
      slots: (l) => ({ B: l.markAfter(1, 2) }),
    });
    const l = full.layout;
    const file = cat(full.bytes.subarray(0, l.frames[5].offset), new Uint8Array(2048));
    const d = writeLog(dir, "b", [[0, file]]);
    const store = await open(dir);
    const log = await store.log("b");
    assert.equal(log.nextSeq, 3);
    assert.equal(log.openReport.truncatedBytes, file.length - l.batchEnds[1]);
    const got: LogRecord[] = [];
    for await (const r of log.read({ from: 0 })) got.push(r);
    assert.deepEqual(got.map((r) => dec.decode(r.data)), ["a", "b", "c"]);
    assert.equal(await log.append("z"), 3);
    await store.close();
    const after = decodeV2Segment(fileBytes(join(d, segName(0))), false);
    assert.deepEqual(after.frames.map((f) => dec.decode(f.payload)), ["a", "b", "c", "z"]);
    assert.deepEqual(after.frames.map((f) => f.type), [1, 3, 1, 1]);
  });

  it("a frame CRC'd with another log id never decodes: cut as a torn tail in the active segment", async () => {
    const dir = freshDir();
    const seg = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b")]],
      slots: (l) => ({ A: l.markAfter(2, 1) }),
    });
    const tail = cat(
      v2Frame(FOREIGN, 2, T_LAST, 0, enc.encode("foreign")),
      v2Frame(ID, 3, T_LAST, 0, enc.encode("after it")),
    );
    writeLog(dir, "f", [[0, cat(seg.bytes, tail)]]);
    const r = await readAll(dir, "f");
    assert.equal(r.report.truncatedBytes, tail.length);
    sameRecords(r.records, expected(seg));
    assert.equal(r.next, 2);
  });

  it("a frame CRC'd with another log id before the mark of the active segment is CorruptionError", async () => {
    const dir = freshDir();
    const seg = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b")], [rec("c")]],
      slots: (l) => ({ A: l.markAfter(3, 1) }),
    });
    const f1 = seg.layout.frames[1];
    const bytes = seg.bytes.slice();
    bytes.set(v2Frame(FOREIGN, 1, T_LAST, 1, enc.encode("b")), f1.offset);
    writeLog(dir, "f", [[0, bytes]]);
    await expectCorruption(dir, "f");
  });

  it("a frame CRC'd with another log id in a sealed segment is CorruptionError", async () => {
    const dir = freshDir();
    const seg0 = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b")], [rec("c")]],
      seal: { delta: 0 },
    });
    const bytes = seg0.bytes.slice();
    bytes.set(v2Frame(FOREIGN, 1, T_LAST, 1, enc.encode("b")), seg0.layout.frames[1].offset);
    const seg3 = buildV2Segment({
      logId: ID,
      firstSeq: 3,
      baseTimestamp: BASE + 5,
      batches: [[rec("d")]],
    });
    writeLog(dir, "f", [[0, bytes], [3, seg3.bytes]]);
    await expectCorruption(dir, "f");
    // The records of the other segment stay readable.
    const r = await readAll(dir, "f", 3);
    sameRecords(r.records, expected(seg3));
  });

  it("a segment of another log in the middle, or as the newest, is CorruptionError on open", async () => {
    const mk = (logId: Uint8Array, firstSeq: number, sealed: boolean) =>
      buildV2Segment({
        logId,
        firstSeq,
        baseTimestamp: BASE + firstSeq,
        batches: [[rec(`${firstSeq}`)], [rec(`${firstSeq + 1}`)], [rec(`${firstSeq + 2}`)]],
        seal: sealed ? { delta: 0 } : undefined,
      }).bytes;
    const dir1 = freshDir();
    writeLog(dir1, "m", [[0, mk(ID, 0, true)], [3, mk(FOREIGN, 3, true)], [6, mk(ID, 6, false)]]);
    await expectCorruption(dir1, "m", "open");
    const dir2 = freshDir();
    writeLog(dir2, "m", [[0, mk(ID, 0, true)], [3, mk(FOREIGN, 3, false)]]);
    await expectCorruption(dir2, "m", "open");
  });

  it("a chain mismatch between segments is CorruptionError on open", async () => {
    const seg0 = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a")], [rec("b")], [rec("c")]],
      seal: { delta: 0 },
    }).bytes;
    const next = (firstSeq: number, prevEndSeq: number) =>
      buildV2Segment({
        logId: ID,
        firstSeq,
        prevEndSeq,
        baseTimestamp: BASE + 10,
        batches: [[rec("x")]],
      }).bytes;
    // prevEndSeq 2 (a gap from 2 that the seal, at 3, does not agree with).
    const dir1 = freshDir();
    writeLog(dir1, "c", [[0, seg0], [3, next(3, 2)]]);
    await expectCorruption(dir1, "c", "open");
    // A segment missing in the middle: sealed at 3, then a segment that follows one ending at 6.
    const dir2 = freshDir();
    writeLog(dir2, "c", [[0, seg0], [6, next(6, 6)]]);
    await expectCorruption(dir2, "c", "open");
    // prevEndSeq above the seal's seq.
    const dir3 = freshDir();
    writeLog(dir3, "c", [[0, seg0], [5, next(5, 4)]]);
    await expectCorruption(dir3, "c", "open");
  });

  it("a declared gap (prevEndSeq < firstSeq): readers skip it, seqs jump", async () => {
    const dir = freshDir();
    const seg0 = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b")], [rec("c")]],
      seal: { delta: 0 },
    });
    const seg10 = buildV2Segment({
      logId: ID,
      firstSeq: 10,
      prevEndSeq: 3,
      baseTimestamp: BASE + 50,
      batches: [[rec("k", 0)], [rec("l"), rec("m")]],
      zeroTail: 100,
    });
    writeLog(dir, "g", [[0, seg0.bytes], [10, seg10.bytes]]);
    const all = await readAll(dir, "g");
    assert.equal(all.report.truncatedBytes, 0);
    sameRecords(all.records, expected(seg0, seg10));
    assert.deepEqual(all.records.map((r) => r.seq), [0, 1, 2, 10, 11, 12]);
    assert.equal(all.first, 0);
    assert.equal(all.next, 13);
    const from5 = await readAll(dir, "g", 5);
    assert.deepEqual(from5.records.map((r) => r.seq), [10, 11, 12]);
    const from2 = await readAll(dir, "g", 2);
    assert.deepEqual(from2.records.map((r) => r.seq), [2, 10, 11, 12]);
  });

  it("a mark past the end of the file, or a bad index entry it counts, is CorruptionError", async () => {
    const base = {
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b")]],
    };
    const past = buildV2Segment({
      ...base,
      slots: (l) => ({ A: { ...l.markAfter(2, 1), durableEnd: l.end + 10 } }),
    });
    const dir1 = freshDir();
    writeLog(dir1, "k", [[0, past.bytes]]);
    await expectCorruption(dir1, "k", "open");
    const idx = buildV2Segment({ ...base, slots: (l) => ({ B: l.markAfter(2, 2, 1) }) });
    const dir2 = freshDir();
    writeLog(dir2, "k", [[0, idx.bytes]]);
    await expectCorruption(dir2, "k", "open", /index entry 1/);
    // A bad stored entry past storedEntries is ignored.
    const ignored = buildV2Segment({
      ...base,
      slots: (l) => ({ B: l.markAfter(2, 2, 0) }),
      stored: () => [{ seq: 99, offset: 5, prevTimestamp: 1 }],
    });
    const dir3 = freshDir();
    writeLog(dir3, "k", [[0, ignored.bytes]]);
    sameRecords((await readAll(dir3, "k")).records, expected(ignored));
    // A stored entry the mark counts, valid: the log opens and reads.
    const counted = buildV2Segment({
      ...base,
      slots: (l) => ({ B: l.markAfter(2, 2, 1) }),
      stored: (l) => [{ seq: 1, offset: l.frames[1].offset, prevTimestamp: l.frames[0].timestamp }],
    });
    const dir4 = freshDir();
    writeLog(dir4, "k", [[0, counted.bytes]]);
    sameRecords((await readAll(dir4, "k", 1)).records, expected(counted).slice(1));
    // Counted entries out of order, or past the mark (prevTimestamp included): damage.
    for (
      const e of [
        (l: V2Layout) => ({ seq: 0, offset: l.frames[1].offset, prevTimestamp: BASE }),
        (l: V2Layout) => ({ seq: 1, offset: l.dataStart, prevTimestamp: BASE }),
        (l: V2Layout) => ({ seq: 1, offset: l.frames[1].offset, prevTimestamp: BASE + 99 }),
        (l: V2Layout) => ({ seq: 2, offset: l.frames[1].offset, prevTimestamp: BASE }),
      ]
    ) {
      const bad = buildV2Segment({
        ...base,
        slots: (l) => ({ B: l.markAfter(2, 2, 1) }),
        stored: (l) => [e(l)],
      });
      const dir = freshDir();
      writeLog(dir, "k", [[0, bad.bytes]]);
      await expectCorruption(dir, "k", "open", /index entry 1/);
    }
  });

  it("a slot that counts but does not fit its segment is CorruptionError; a torn one is ignored", async () => {
    const base = {
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b")], [rec("c")]],
    };
    for (
      const bad of [
        { storedEntries: 2 }, // the area has room for 1
        { nextSeq: 0, durableEnd: 100 }, // before dataStart
        { lastTimestamp: BASE - 1 },
      ]
    ) {
      // Slot A (older) is fine; the newer slot B does not fit: damage, A does not stand in.
      const seg = buildV2Segment({
        ...base,
        slots: (l) => ({ A: l.markAfter(1, 1), B: { ...l.markAfter(2, 2), ...bad } }),
      });
      const dir = freshDir();
      writeLog(dir, "n", [[0, seg.bytes]]);
      await expectCorruption(dir, "n", "open", /mark slot/);
    }
    // A newer slot with a bad CRC (a torn slot write) is ignored: the log opens from slot A.
    const torn = buildV2Segment({
      ...base,
      slots: (l) => ({ A: l.markAfter(1, 1), B: l.markAfter(2, 2) }),
    });
    const bytes = torn.bytes.slice();
    bytes[SLOT_B_AT + 36] ^= 0xff;
    const dir = freshDir();
    writeLog(dir, "n", [[0, bytes]]);
    const r = await readAll(dir, "n");
    assert.equal(r.report.truncatedBytes, 0);
    sameRecords(r.records, expected(torn));
  });

  it("a new segment holding only its header opens empty, and the next frame goes to dataStart", async () => {
    const seg = buildV2Segment({
      logId: ID,
      firstSeq: 40,
      prevEndSeq: 40,
      baseTimestamp: BASE,
      indexCapacity: 1024,
      batches: [],
    });
    for (const size of [V2_HEADER, V2_HEADER + 7, seg.layout.dataStart - 1]) {
      const dir = freshDir();
      const d = writeLog(dir, "h", [[40, seg.bytes.subarray(0, size)]]);
      const store = await open(dir);
      const log = await store.log("h");
      assert.deepEqual(log.openReport.truncatedAt, null, `size ${size}: nothing cut`);
      assert.equal(log.openReport.recreatedSegment, null, `size ${size}: not a torn header`);
      assert.equal(log.nextSeq, 40);
      assert.equal(await log.append("first"), 40);
      await store.close();
      const s = decodeV2Segment(fileBytes(join(d, segName(40))), false);
      assert.deepEqual(s.frames.map((f) => [f.offset, f.seq]), [[32928, 40]]);
    }
    // Shorter than dataStart, with a slot that claims data: durable data is missing.
    const claim = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      indexCapacity: 1024,
      batches: [[rec("a", 0)]],
      slots: (l) => ({ A: l.markAfter(1, 1) }),
    });
    const dir = freshDir();
    writeLog(dir, "h", [[0, claim.bytes.subarray(0, 1000)]]);
    await expectCorruption(dir, "h", "open", /durable data missing/);
  });

  it("damage before the mark is not cut: CorruptionError (at read)", async () => {
    const dir = freshDir();
    const seg = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("aaaa", 0)], [rec("bbbb")], [rec("cccc")]],
      slots: (l) => ({ A: l.markAfter(3, 1) }),
    });
    const bytes = seg.bytes.slice();
    bytes[seg.layout.frames[1].offset + 8] ^= 0x04; // a payload byte of "bbbb"
    const d = writeLog(dir, "x", [[0, bytes]]);
    await expectCorruption(dir, "x");
    assert.deepEqual(
      fileBytes(join(d, segName(0))).subarray(0, bytes.length),
      bytes,
      "nothing cut",
    );
  });

  it("damage in the first record, before the mark, is CorruptionError at open (its timestamp is read)", async () => {
    const dir = freshDir();
    const seg = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("aaaa", 0)], [rec("bbbb")]],
      slots: (l) => ({ A: l.markAfter(2, 1) }),
    });
    const bytes = seg.bytes.slice();
    bytes[seg.layout.frames[0].offset + 8] ^= 0x04; // a payload byte of "aaaa"
    const d = writeLog(dir, "x", [[0, bytes]]);
    await expectCorruption(dir, "x", "open", /first record/);
    assert.deepEqual(fileBytes(join(d, segName(0))), bytes, "nothing cut");
  });

  it("a newest segment that ends in a seal: the next segment is created at the seal's seq", async () => {
    const dir = freshDir();
    const seg0 = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      batches: [[rec("a", 0)], [rec("b"), rec("c")]],
      seal: { delta: 4 },
    });
    const d = writeLog(dir, "s", [[0, seg0.bytes]]);
    const store = await open(dir);
    const log = await store.log("s");
    assert.equal(log.nextSeq, 3);
    assert.equal(await log.append("d"), 3);
    await store.close();
    assert.deepEqual(readdirSync(d).sort(), [segName(0), segName(3)]);
    assert.deepEqual(fileBytes(join(d, segName(0))), seg0.bytes);
    const s3 = decodeV2Segment(fileBytes(join(d, segName(3))), false);
    assert.equal(s3.header.firstSeq, 3);
    assert.equal(s3.header.prevEndSeq, 3);
    assert.equal(hex(s3.header.logId), hex(ID));
    assert.deepEqual(s3.frames.map((f) => [f.seq, dec.decode(f.payload)]), [[3, "d"]]);
  });

  it("reads from the middle of a segment through its index entries (prevTimestamp)", async () => {
    const dir = freshDir();
    const batches: V2Record[][] = [];
    for (let i = 0; i < 300; i++) {
      const data = new Uint8Array(700 + (i % 13)).fill(i & 0xff);
      batches.push(
        i % 5 === 0 ? [{ data, delta: i % 7 }, { data, delta: 0 }] : [{ data, delta: i % 7 }],
      );
    }
    const seg0 = buildV2Segment({
      logId: ID,
      firstSeq: 0,
      baseTimestamp: BASE,
      indexCapacity: 6,
      batches,
      stored: (l) => l.defaultEntries().slice(1),
      slots: (l) => ({ A: l.markAfter(300, 1, l.defaultEntries().length - 1) }),
      seal: { delta: 1 },
    });
    assert.ok(seg0.layout.defaultEntries().length >= 3);
    const n0 = seg0.layout.endSeq;
    const seg1 = buildV2Segment({
      logId: ID,
      firstSeq: n0,
      baseTimestamp: seg0.seal!.timestamp,
      indexCapacity: 6,
      batches,
      stored: (l) => l.defaultEntries().slice(1),
      slots: (l) => ({ B: l.markAfter(300, 2, l.defaultEntries().length - 1) }),
    });
    writeLog(dir, "i", [[0, seg0.bytes], [n0, seg1.bytes]]);
    const want = expected(seg0, seg1);
    for (const from of [0, 95, 96, 97, 200, n0 - 1, n0, n0 + 150, 2 * n0 - 1]) {
      const r = await readAll(dir, "i", from);
      sameRecords(r.records, want.slice(from));
    }
  });

  it("refuses an unknown format version", async () => {
    const dir = freshDir();
    const h = {
      maxRecordBytes: MiB,
      firstSeq: 0,
      logId: ID,
      prevEndSeq: 0,
      baseTimestamp: BASE,
      indexCapacity: 1,
    };
    writeLog(dir, "v", [[
      0,
      cat(v2Header(h, { version: 3 }), new Uint8Array(112), v2Frame(ID, 0, 1, 0, enc.encode("x"))),
    ]]);
    await expectCorruption(dir, "v", "open", /version 3/);
  });
});

// ---------------------------------------------------------------------------------------------
// (c) what the Store writes decodes by FORMAT.md
// ---------------------------------------------------------------------------------------------

/** Every check of a Store-written log: returns the decoded segments. */
function checkWrittenLog(
  d: string,
  opts: {
    id: string;
    segmentBytes: number;
    maxRecordBytes: number;
    appended: { seq: number; data: Uint8Array; last: boolean }[];
    tsFrom: number;
    tsTo: number;
  },
) {
  const names = readdirSync(d).sort();
  assert.ok(names.every((n) => /^\d{20}\.seg$/.test(n)), names.join(","));
  const segs = names.map((n, i) => ({
    name: n,
    bytes: fileBytes(join(d, n)),
    dec: decodeV2Segment(fileBytes(join(d, n)), i < names.length - 1),
  }));
  const frames: {
    seq: number;
    timestamp: number;
    type: number;
    payload: Uint8Array;
    size: number;
  }[] = [];
  segs.forEach(({ name, bytes, dec: s }, i) => {
    const h = s.header;
    assert.equal(h.firstSeq, Number(name.slice(0, 20)), `${name}: firstSeq is the name`);
    assert.equal(hex(h.logId), opts.id, `${name}: log id = log.id`);
    assert.equal(h.maxRecordBytes, opts.maxRecordBytes);
    assert.equal(h.indexCapacity, indexCapacityFor(opts.segmentBytes));
    assert.equal(h.dataStart, dataStartFor(h.indexCapacity));
    assert.equal(h.prevEndSeq, i === 0 ? h.firstSeq : segs[i - 1].dec.seal!.seq, `${name}: chain`);
    assert.equal(h.firstSeq, h.prevEndSeq, `${name}: no gap in a log never repaired`);
    assert.ok(h.baseTimestamp >= opts.tsFrom && h.baseTimestamp <= opts.tsTo, "base time");
    // Each slot is zeros or valid, and the valid ones are ordered.
    for (const [which, at] of [["A", SLOT_A_AT], ["B", SLOT_B_AT]] as const) {
      const raw = bytes.subarray(at, at + SLOT_BYTES);
      assert.ok(
        raw.every((x) => x === 0) || s.slots[which].ok,
        `${name}: slot ${which} zeros or valid`,
      );
    }
    if (s.slots.A.ok && s.slots.B.ok) {
      const [older, newer] = s.slots.A.mark.generation < s.slots.B.mark.generation
        ? [s.slots.A.mark, s.slots.B.mark]
        : [s.slots.B.mark, s.slots.A.mark];
      assert.ok(older.durableEnd < newer.durableEnd && older.nextSeq < newer.nextSeq);
      assert.ok(older.storedEntries <= newer.storedEntries);
      assert.equal(newer.generation, older.generation + 1, "slots alternate");
    }
    // Index entries (entry 0, the stored ones, the seal's) are record-frame starts with the right
    // seq and prevTimestamp, 64 KiB apart.
    const byOffset = new Map(
      s.frames.map((
        f,
        k,
      ) => [f.offset, { f, prev: k === 0 ? h.baseTimestamp : s.frames[k - 1].timestamp }]),
    );
    const checkEntries = (entries: IndexEntry[], what: string) => {
      entries.forEach((e, k) => {
        const hit = byOffset.get(e.offset);
        assert.ok(hit, `${name}: ${what} entry ${k} at ${e.offset} is a frame start`);
        assert.equal(hit.f.seq, e.seq, `${name}: ${what} entry ${k} seq`);
        assert.equal(hit.prev, e.prevTimestamp, `${name}: ${what} entry ${k} prevTimestamp`);
        if (k > 0) {
          assert.ok(e.offset - entries[k - 1].offset >= 65536, `${what} entries 64 KiB apart`);
        }
      });
    };
    checkEntries(s.entries, "counted");
    // Every entry written to the area (up to the first zero one), counted by the mark or not.
    const area: IndexEntry[] = [s.entries[0]];
    for (let k = 1; k <= h.indexCapacity; k++) {
      const raw = bytes.subarray(storedEntryAt(k), storedEntryAt(k) + ENTRY_BYTES);
      if (raw.every((x) => x === 0)) break;
      const r = decodeV2Entry(raw, h);
      assert.ok(r.ok, `${name}: stored entry ${k} is valid`);
      area.push(r.entry);
    }
    assert.ok(s.mark.storedEntries <= area.length - 1, `${name}: the mark counts written entries`);
    checkEntries(area, "area");
    if (s.seal) {
      const sealAt = s.seal.offset;
      assert.ok(
        sealAt <= opts.segmentBytes,
        `${name}: records end within segmentBytes (${sealAt})`,
      );
      checkEntries(s.seal.body.entries, "seal");
      const sealOffsets = new Set(s.seal.body.entries.map((e) => e.offset));
      assert.ok(
        s.entries.every((e) => sealOffsets.has(e.offset)),
        `${name}: area entries are in the seal`,
      );
      // The writer stored every entry the area has room for; the seal lists them and any more.
      assert.deepEqual(area, s.seal.body.entries.slice(0, area.length), `${name}: area = seal`);
      assert.equal(area.length, Math.min(s.seal.body.entries.length, h.indexCapacity + 1));
      assert.equal(s.seal.body.firstTimestamp, s.frames[0]?.timestamp ?? h.baseTimestamp);
      assert.equal(s.seal.body.lastTimestamp, s.frames.at(-1)?.timestamp ?? h.baseTimestamp);
      assert.equal(s.seal.seq, Number(names[i + 1].slice(0, 20)), "seal seq = next firstSeq");
      assert.equal(bytes.length, sealAt + s.seal.size, "the file ends at its seal");
    } else {
      assert.ok(s.zeroTail, `${name}: an active segment ends in zeros`);
      // Preallocated: zeros up to the next MiB boundary past the data, at most segmentBytes.
      if (s.frames.length > 0 && opts.segmentBytes <= MiB) {
        assert.equal(bytes.length, Math.max(s.end, opts.segmentBytes), `${name}: preallocated`);
      }
      // A clean close leaves less than 1 MiB after the mark (else it writes a last slot).
      assert.ok(s.mark.durableEnd <= s.end);
      assert.ok(s.end - s.mark.durableEnd < MARK_ON_CLOSE, `${name}: unmarked tail`);
    }
    for (const f of s.frames) frames.push(f);
  });
  // Frames: seqs, payloads, batch types, timestamps, overhead.
  assert.equal(frames.length, opts.appended.length);
  frames.forEach((f, k) => {
    const a = opts.appended[k];
    assert.equal(f.seq, a.seq);
    assert.deepEqual(f.payload, a.data, `payload of ${a.seq}`);
    assert.equal(f.type, a.last ? T_LAST : T_MORE, `type of ${a.seq}`);
    assert.ok(f.timestamp >= opts.tsFrom && f.timestamp <= opts.tsTo, `timestamp of ${a.seq}`);
    if (k > 0) assert.ok(f.timestamp >= frames[k - 1].timestamp, "timestamps never decrease");
  });
  return { names, segs, frames };
}

describe("what the Store writes decodes by FORMAT.md (version 2)", () => {
  it("a rolled-over log of appends and batches: headers, slots, index, frames, seals", async () => {
    const dir = freshDir();
    const segmentBytes = 200_000;
    const maxRecordBytes = 1000;
    const tsFrom = Date.now();
    const store = await open(dir, {
      syncPolicy: SyncPolicy.osManaged(),
      segmentBytes,
      maxRecordBytes,
    });
    const log = await store.log("w");
    const id = idOf(log);
    assert.match(id, /^[0-9a-f]{32}$/, "log.id is 32 hex digits");
    assert.notEqual(id, "0".repeat(32));
    const payload = (i: number) => {
      const p = new Uint8Array(100);
      for (let k = 0; k < 100; k++) p[k] = (i * 7 + k) & 0xff;
      return p;
    };
    const appended: { seq: number; data: Uint8Array; last: boolean }[] = [];
    let seq = 0;
    while (seq < 5000) {
      const n = 1 + (seq % 5);
      if (n === 1) {
        assert.equal(await log.append(payload(seq)), seq);
        appended.push({ seq, data: payload(seq), last: true });
        seq++;
      } else {
        const batch = Array.from({ length: n }, (_, k) => payload(seq + k));
        const seqs = await log.appendBatch(batch);
        assert.deepEqual(seqs, batch.map((_, k) => seq + k));
        batch.forEach((data, k) => appended.push({ seq: seq + k, data, last: k === n - 1 }));
        seq += n;
      }
    }
    await store.close();
    const tsTo = Date.now();
    const { names, frames } = checkWrittenLog(join(dir, "w"), {
      id,
      segmentBytes,
      maxRecordBytes,
      appended,
      tsFrom,
      tsTo,
    });
    assert.ok(names.length >= 3, `rolled over: ${names.length} segments`);
    for (const f of frames) assert.ok(f.size - f.payload.length <= 12, `overhead ${f.size - 100}`);
    const total = frames.reduce((n, f) => n + f.size - f.payload.length, 0);
    assert.ok(total / frames.length <= 12, `mean overhead ${total / frames.length}`);

    // And it reads back through the Store, with the same timestamps the frames hold.
    const r = await readAll(dir, "w");
    assert.equal(r.id, id);
    assert.deepEqual(r.records.map((x) => x.seq), appended.map((a) => a.seq));
    assert.deepEqual(r.records.map((x) => x.timestamp), frames.map((f) => f.timestamp));
  });

  it("with SyncPolicy.always: every mark on disk claims only what the file holds", async () => {
    const dir = freshDir();
    const tsFrom = Date.now();
    const store = await open(dir, { syncPolicy: SyncPolicy.always(), segmentBytes: 4096 });
    const log = await store.log("a");
    const id = idOf(log);
    const appended: { seq: number; data: Uint8Array; last: boolean }[] = [];
    for (let i = 0; i < 60; i++) {
      const data = enc.encode(`record ${i} `.padEnd(60 + i, "."));
      if (i % 3 === 2) {
        await log.appendBatch([data, data]);
        appended.push({ seq: appended.length, data, last: false });
        appended.push({ seq: appended.length, data, last: true });
      } else {
        await log.append(data);
        appended.push({ seq: appended.length, data, last: true });
      }
      // While the store is open: the newest segment's mark (if any) is at a batch end it holds.
      const names = readdirSync(join(dir, "a")).sort();
      const newest = fileBytes(join(dir, "a", names.at(-1)!));
      const s = decodeV2Segment(newest, false);
      assert.ok(s.mark.durableEnd <= s.end, "the mark never claims more than the file holds");
    }
    await store.close();
    checkWrittenLog(join(dir, "a"), {
      id,
      segmentBytes: 4096,
      maxRecordBytes: 16 * MiB,
      appended,
      tsFrom,
      tsTo: Date.now(),
    });
  });

  it("a new log's first segment: its 80-byte header alone, firstSeq 0, prevEndSeq 0", async () => {
    const dir = freshDir();
    const store = await open(dir);
    const log = await store.log("e");
    const id = idOf(log);
    await store.close();
    const bytes = fileBytes(join(dir, "e", segName(0)));
    assert.equal(bytes.length, V2_HEADER, "slots and index area are not written at creation");
    const s = decodeV2Segment(bytes, false);
    assert.equal(s.markFrom, null);
    assert.equal(s.header.firstSeq, 0);
    assert.equal(s.header.prevEndSeq, 0);
    assert.equal(hex(s.header.logId), id);
    assert.deepEqual(s.entries, [{
      seq: 0,
      offset: s.header.dataStart,
      prevTimestamp: s.header.baseTimestamp,
    }]);
    assert.equal(s.frames.length, 0);
    assert.ok(s.zeroTail);
    // The default segmentBytes (64 MiB) gives room for 1024 stored entries.
    assert.equal(s.header.indexCapacity, 1024);
    assert.equal(s.header.dataStart, 32928);
    // Reopened: the same id.
    assert.equal((await readAll(dir, "e")).id, id);
  });

  it("each slot follows the fdatasync it names; none that would claim nothing new", async () => {
    const sim = new SimPlatform();
    const path = "/s/k/" + segName(0);
    const slotsOf = (image: SimPlatform) => {
      const s = decodeV2Segment(image.fileBytes(path)!, false);
      return {
        from: s.markFrom,
        A: s.slots.A.ok ? [s.slots.A.mark.generation, s.slots.A.mark.nextSeq] : null,
        B: s.slots.B.ok ? [s.slots.B.mark.generation, s.slots.B.mark.nextSeq] : null,
      };
    };
    const store = await open("/s", { platform: sim, segmentBytes: 4096 });
    const log = await store.log("k");
    assert.deepEqual(slotsOf(sim), { from: null, A: null, B: null }, "the creation's: no record");
    await log.append("r0"); // after its fdatasync, at once
    assert.deepEqual(slotsOf(sim), { from: "A", A: [1, 1], B: null });
    assert.deepEqual(slotsOf(sim.crash("none")), { from: null, A: null, B: null }, "not durable");
    await log.sync(); // nothing to fdatasync
    assert.deepEqual(slotsOf(sim), { from: "A", A: [1, 1], B: null });
    await log.append("r1"); // its fdatasync made slot A durable
    assert.deepEqual(slotsOf(sim), { from: "B", A: [1, 1], B: [2, 2] });
    assert.deepEqual(slotsOf(sim.crash("none")), { from: "A", A: [1, 1], B: null });
    await log.appendBatch(["r2", "r3"]);
    assert.deepEqual(slotsOf(sim), { from: "A", A: [3, 4], B: [2, 2] });
    await log.append("r4");
    assert.deepEqual(slotsOf(sim), { from: "B", A: [3, 4], B: [4, 5] });
    await store.close(); // less than 1 MiB after the durable slot: no fdatasync for the last one
    assert.deepEqual(slotsOf(sim), { from: "B", A: [3, 4], B: [4, 5] });
    const cut = sim.crash("none");
    assert.deepEqual(slotsOf(cut), { from: "A", A: [3, 4], B: [2, 2] });
    // After the power cut: the open scans r4 from slot A's end and fdatasyncs it, writing no slot;
    // the next slot is one generation above the mark found, and claims r5.
    const store2 = await open("/s", { platform: cut, segmentBytes: 4096 });
    const log2 = await store2.log("k");
    assert.equal(log2.nextSeq, 5);
    assert.equal(log2.openReport.truncatedBytes, 0);
    assert.deepEqual(slotsOf(cut), { from: "A", A: [3, 4], B: [2, 2] });
    await log2.append("r5");
    await store2.close();
    assert.deepEqual(slotsOf(cut), { from: "B", A: [3, 4], B: [4, 6] });
  });

  it("a clean close fdatasyncs its last slot only if 1 MiB or more lies after the durable one", async () => {
    const payload = new Uint8Array(1000).fill(3);
    for (const [records, marked] of [[900, false], [1200, true]] as const) {
      const sim = new SimPlatform();
      const path = "/s/c/" + segName(0);
      const store = await open("/s", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
      const log = await store.log("c");
      for (let i = 0; i < records; i += 100) {
        await log.appendBatch(Array.from({ length: 100 }, () => payload));
      }
      await store.close(); // one fdatasync, the slot naming it, maybe a second fdatasync
      const written = decodeV2Segment(sim.fileBytes(path)!, false);
      const durable = decodeV2Segment(sim.crash("none").fileBytes(path)!, false);
      assert.equal(durable.end, written.end, "the close's fdatasync covered every record");
      const unmarked = durable.end - durable.header.dataStart;
      assert.equal(unmarked >= MARK_ON_CLOSE, marked, `${unmarked} bytes`);
      for (const s of marked ? [written, durable] : [written]) {
        assert.equal(s.markFrom, "A");
        assert.equal(s.mark.generation, 1);
        assert.equal(s.mark.durableEnd, s.end, "the last slot claims the end");
        assert.equal(s.mark.nextSeq, records);
        assert.equal(s.mark.lastTimestamp, s.frames.at(-1)!.timestamp);
        // One entry per flush (here one batch, ~100 KB) that starts 64 KiB or more after the last.
        const batchBytes = s.frames[100].offset - s.frames[0].offset;
        assert.deepEqual(
          s.entries.map((e) => [e.seq, e.offset]),
          Array.from(
            { length: records / 100 },
            (_, k) => [100 * k, s.end - (records / 100 - k) * batchBytes],
          ),
        );
        assert.equal(s.mark.storedEntries, records / 100 - 1);
      }
      if (!marked) assert.equal(durable.markFrom, null, "no durable slot: the next open scans");
      const dir = freshDir();
      writeLog(dir, "c", [[0, sim.crash("none").fileBytes(path)!]]);
      const r = await readAll(dir, "c");
      assert.equal(r.next, records);
      assert.equal(r.report.truncatedBytes, 0);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// (d) version 1 still opens, alone and followed by version 2
// ---------------------------------------------------------------------------------------------

const v1Segment = (firstSeq: number, payloads: string[], ts: number, sealed: boolean) => {
  const frames = payloads.map((p, i) => specFrame(1, firstSeq + i, ts + i, enc.encode(p)));
  const parts = [specHeader(firstSeq, 16 * MiB), ...frames];
  if (sealed) parts.push(specSeal(firstSeq + payloads.length, ts + 100, [[firstSeq, HEADER]]));
  return cat(...parts);
};

describe("version-1 segments (read only)", () => {
  it("the v1 worked example opens; the next segment is v2", async () => {
    const dir = freshDir();
    const d = writeLog(dir, "w1", [[0, dumpAfter("### Worked example (version 1)")]]);
    const store = await open(dir);
    const log = await store.log("w1");
    const got: LogRecord[] = [];
    for await (const r of log.read({ from: 0 })) got.push(r);
    assert.deepEqual(got.map((r) => [r.seq, r.timestamp, dec.decode(r.data)]), [[0, BASE, "hi"]]);
    assert.equal(await log.append("next"), 1);
    const id = idOf(log);
    await store.close();
    assert.deepEqual(readdirSync(d).sort(), [segName(0), segName(1)]);
    const s1 = decodeV2Segment(fileBytes(join(d, segName(1))), false);
    assert.equal(s1.header.firstSeq, 1);
    assert.equal(s1.header.prevEndSeq, 1);
    assert.equal(hex(s1.header.logId), id);
    assert.deepEqual(s1.frames.map((f) => dec.decode(f.payload)), ["next"]);
  });

  it("a v1 newest segment with records gets a v1 seal and a v2 segment after it", async () => {
    const dir = freshDir();
    const seg0 = v1Segment(0, ["a", "b", "c", "d"], BASE, true);
    const seg4 = v1Segment(4, ["e", "f"], BASE + 10, false);
    const d = writeLog(dir, "m", [[0, seg0], [4, seg4]]);
    const store = await open(dir);
    const log = await store.log("m");
    assert.equal(log.nextSeq, 6);
    assert.equal(log.openReport.truncatedBytes, 0);
    const got: LogRecord[] = [];
    for await (const r of log.read({ from: 0 })) got.push(r);
    assert.deepEqual(got.map((r) => dec.decode(r.data)), ["a", "b", "c", "d", "e", "f"]);
    assert.deepEqual(got.map((r) => r.timestamp), [0, 1, 2, 3, 10, 11].map((x) => BASE + x));
    assert.equal(await log.append("g"), 6);
    const id = idOf(log);
    await store.close();
    assert.deepEqual(readdirSync(d).sort(), [segName(0), segName(4), segName(6)]);
    assert.deepEqual(fileBytes(join(d, segName(0))), seg0, "a sealed v1 segment is never touched");
    const s4 = fileBytes(join(d, segName(4)));
    assert.deepEqual(s4.subarray(0, seg4.length), seg4, "the v1 records keep their bytes");
    const v1 = decodeV1Segment(s4, true);
    assert.equal(v1.frames.length, 2);
    assert.equal(v1.seal!.seq, 6);
    assert.deepEqual(v1.seal!.index, [[4, HEADER]]);
    const s6 = decodeV2Segment(fileBytes(join(d, segName(6))), false);
    assert.equal(s6.header.firstSeq, 6);
    assert.equal(s6.header.prevEndSeq, 6);
    assert.equal(hex(s6.header.logId), id);
    assert.deepEqual(s6.frames.map((f) => [f.seq, dec.decode(f.payload)]), [[6, "g"]]);
    // Reopened: the mixed log reads in order.
    const r = await readAll(dir, "m");
    assert.deepEqual(r.records.map((x) => dec.decode(x.data)), ["a", "b", "c", "d", "e", "f", "g"]);
  });

  it("a v1 newest segment's torn tail is cut by the v1 rules before its seal", async () => {
    const dir = freshDir();
    const seg0 = v1Segment(0, ["a", "b"], BASE, false);
    const torn = specFrame(1, 2, BASE + 2, enc.encode("lost")).subarray(0, 20);
    const d = writeLog(dir, "t", [[0, cat(seg0, torn)]]);
    const r = await readAll(dir, "t");
    assert.equal(r.report.truncatedBytes, 20);
    assert.deepEqual(r.records.map((x) => dec.decode(x.data)), ["a", "b"]);
    assert.equal(r.next, 2);
    const names = readdirSync(d).sort();
    assert.deepEqual(names, [segName(0), segName(2)]);
    const v1 = decodeV1Segment(fileBytes(join(d, segName(0))), true);
    assert.equal(v1.seal!.offset, seg0.length, "the seal follows the kept records");
  });

  it("an empty v1 newest segment is rewritten in place as an empty v2 segment", async () => {
    const dir = freshDir();
    const seg0 = v1Segment(0, ["a", "b", "c"], BASE, true);
    const d = writeLog(dir, "e", [[0, seg0], [3, specHeader(3, 16 * MiB)]]);
    const store = await open(dir);
    const log = await store.log("e");
    assert.equal(log.nextSeq, 3);
    const id = idOf(log);
    await store.close();
    assert.deepEqual(readdirSync(d).sort(), [segName(0), segName(3)]);
    const b3 = fileBytes(join(d, segName(3)));
    assert.equal(b3.length, V2_HEADER, "rewritten as a new segment: its header alone");
    const s3 = decodeV2Segment(b3, false);
    assert.equal(s3.header.firstSeq, 3);
    assert.equal(s3.header.prevEndSeq, 3);
    assert.equal(hex(s3.header.logId), id);
    assert.equal(s3.frames.length, 0);
  });

  it("a log mixing v1 sealed segments, then v2 sealed and active ones, reads in order", async () => {
    const dir = freshDir();
    const a = v1Segment(0, ["v1-0", "v1-1", "v1-2", "v1-3"], BASE, true);
    const b = v1Segment(4, ["v1-4", "v1-5"], BASE + 20, true);
    const c = buildV2Segment({
      logId: ID,
      firstSeq: 6,
      baseTimestamp: BASE + 200,
      batches: [[rec("v2-6", 0)], [rec("v2-7"), rec("v2-8")]],
      seal: { delta: 1 },
    });
    const e = buildV2Segment({
      logId: ID,
      firstSeq: 9,
      baseTimestamp: c.seal!.timestamp,
      batches: [[rec("v2-9", 0)], [rec("v2-10")]],
      slots: (l) => ({ A: l.markAfter(1, 1) }),
      zeroTail: 512,
    });
    writeLog(dir, "mix", [[0, a], [4, b], [6, c.bytes], [9, e.bytes]]);
    const names = [
      "v1-0",
      "v1-1",
      "v1-2",
      "v1-3",
      "v1-4",
      "v1-5",
      "v2-6",
      "v2-7",
      "v2-8",
      "v2-9",
      "v2-10",
    ];
    const all = await readAll(dir, "mix");
    assert.equal(all.report.truncatedBytes, 0);
    assert.equal(all.id, hex(ID));
    assert.deepEqual(all.records.map((r) => dec.decode(r.data)), names);
    assert.deepEqual(all.records.map((r) => r.seq), names.map((_, i) => i));
    const ts = all.records.map((r) => r.timestamp);
    assert.deepEqual(ts.slice(6), expected(c, e).map((x) => x.timestamp));
    for (const from of [3, 5, 6, 8, 9]) {
      const r = await readAll(dir, "mix", from);
      assert.deepEqual(r.records.map((x) => dec.decode(x.data)), names.slice(from));
    }
    // A v1 seal whose seq disagrees with the v2 segment's prevEndSeq is a chain mismatch.
    const dir2 = freshDir();
    const c2 = buildV2Segment({
      logId: ID,
      firstSeq: 6,
      prevEndSeq: 5,
      baseTimestamp: BASE + 200,
      batches: [[rec("x")]],
    });
    writeLog(dir2, "mix", [[0, a], [4, b], [6, c2.bytes]]);
    await expectCorruption(dir2, "mix", "open");
  });
});
