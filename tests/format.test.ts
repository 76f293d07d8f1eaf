// The on-disk format version 1 as FORMAT.md ("Version 1 (read only)") describes it: segments of
// earlier releases, which this one still reads. This file builds v1 segments with the spec codec
// (./spec_codec.ts, written from FORMAT.md with DataView and node:zlib's crc32, not the project's
// encoder) and carries its own strict v1 decoder, and checks that (1) v1 segments built byte by
// byte open and read through the Store, a v1 newest segment getting a v1 seal and a v2 segment
// after it, (2) the "impossible by construction" properties hold for the v1 frame decoder
// (src/format/v1/frame.ts: zeros, copied frames, huge lengths), and (3) the frame scanner works
// across its buffer boundaries with bounded reads, for v1 and v2 frames (its codec comes from the
// segment's header). What the Store writes (version 2) is checked in ./format_v2.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { Store, SyncPolicy } from "../mod.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import type { PlatformFile } from "../src/platform/types.ts";
import { codecFor } from "../src/format/codec.ts";
import { decodeHeader, type SegmentHeader } from "../src/format/header.ts";
import { FrameScanner, SCAN_CHUNK_BYTES } from "../src/format/scanner.ts";
import { decodeFrame, encodeFrame, FRAME_RECORD } from "../src/format/v1/frame.ts";
import { concat } from "./helpers.ts";
import {
  decodeV2Segment,
  FH,
  HEADER,
  MAGIC,
  segName,
  specFrame,
  specHeader,
  specSeal,
  T_LAST,
  u32,
  V2_HEADER,
  v2Frame,
  v2Header,
} from "./spec_codec.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// The spec codec (FORMAT.md, independent of src/format) is in ./spec_codec.ts.

interface SpecFrame {
  offset: number;
  type: number;
  seq: number;
  timestamp: number;
  payload: Uint8Array;
}

interface SpecSegment {
  firstSeq: number;
  maxRecordBytes: number;
  frames: SpecFrame[];
  seal: { offset: number; seq: number; index: [number, number][] } | null;
}

/** Decodes a whole segment file strictly by FORMAT.md; throws on anything the spec forbids. */
function specDecode(bytes: Uint8Array, sealed: boolean): SpecSegment {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.deepEqual(bytes.subarray(0, 8), MAGIC, "magic");
  assert.equal(v.getUint16(8, true), 1, "version");
  assert.equal(v.getUint8(10), 32, "header length");
  assert.equal(v.getUint8(11), 0);
  assert.equal(v.getUint32(24, true), 0);
  assert.equal(v.getUint32(28, true), u32(crc32(bytes.subarray(0, 28))), "header crc");
  const maxRecordBytes = v.getUint32(12, true);
  const firstSeq = Number(v.getBigUint64(16, true));
  let end = bytes.length;
  let sealAt = -1;
  if (sealed) {
    const sealBytes = v.getUint32(bytes.length - 4, true);
    sealAt = bytes.length - sealBytes;
    end = sealAt;
  }
  const frames: SpecFrame[] = [];
  let off = HEADER;
  let seq = firstSeq;
  const readFrame = (at: number, expectSeq: number): SpecFrame => {
    const type = v.getUint8(at + 4);
    assert.ok(type === 1 || type === 2, `type at ${at}`);
    assert.deepEqual([...bytes.subarray(at + 5, at + 8)], [0, 0, 0], "reserved");
    const len = v.getUint32(at + 8, true);
    assert.equal(Number(v.getBigUint64(at + 12, true)), expectSeq, `seq at ${at}`);
    const timestamp = Number(v.getBigUint64(at + 20, true));
    assert.equal(v.getUint32(at, true), u32(crc32(bytes.subarray(at + 4, at + FH + len))), "crc");
    return {
      offset: at,
      type,
      seq: expectSeq,
      timestamp,
      payload: bytes.subarray(at + FH, at + FH + len),
    };
  };
  while (off < end) {
    const f = readFrame(off, seq);
    assert.equal(f.type, 1, "only records before the seal");
    assert.ok(f.payload.length <= maxRecordBytes, "length cap");
    frames.push(f);
    off += FH + f.payload.length;
    seq++;
  }
  assert.equal(off, end, "frames end exactly where the seal (or the file) begins");
  let seal: SpecSegment["seal"] = null;
  if (sealed) {
    const f = readFrame(sealAt, seq);
    assert.equal(f.type, 2);
    const p = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength);
    const n = p.getUint32(0, true);
    assert.equal(f.payload.length, 8 + 16 * n);
    const index: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      index.push([
        Number(p.getBigUint64(4 + 16 * i, true)),
        Number(p.getBigUint64(12 + 16 * i, true)),
      ]);
    }
    assert.equal(p.getUint32(f.payload.length - 4, true), bytes.length - sealAt, "trailer");
    seal = { offset: sealAt, seq: f.seq, index };
  }
  return { firstSeq, maxRecordBytes, frames, seal };
}

async function readAll(dir: string, name: string, from = 0) {
  const store = await Store.open(dir, { platform: nodePlatform, syncPolicy: SyncPolicy.always() });
  try {
    const log = await store.log(name);
    const out = [];
    for await (const r of log.read({ from })) out.push(r);
    return { out, report: log.openReport, first: log.firstSeq, next: log.nextSeq };
  } finally {
    await store.close();
  }
}

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), "khipu-format-"));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});
let counter = 0;
const freshDir = () => join(root, `s${counter++}`);

describe("FORMAT.md: a hand-built version-1 segment", () => {
  it("opens and reads through the Store; it is sealed (v1) and appends go to a v2 segment", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "events"), { recursive: true });
    const ts = 1_700_000_000_000;
    const payloads = [
      enc.encode("alpha"),
      new Uint8Array(0),
      Uint8Array.from({ length: 256 }, (_, i) => i),
    ];
    const file = concat(...[
      specHeader(1000, 1 << 20),
      ...payloads.map((p, i) => specFrame(1, 1000 + i, ts + i, p)),
    ]);
    const path = join(dir, "events", segName(1000));
    writeFileSync(path, file);

    const store = await Store.open(dir, {
      platform: nodePlatform,
      syncPolicy: SyncPolicy.always(),
    });
    const log = await store.log("events");
    assert.equal(log.openReport.truncatedBytes, 0);
    assert.equal(log.firstSeq, 1000);
    assert.equal(log.nextSeq, 1003);
    const got = [];
    for await (const r of log.read({ from: 0 })) got.push(r);
    assert.deepEqual(got.map((r) => r.seq), [1000, 1001, 1002]);
    assert.deepEqual(got.map((r) => r.timestamp), [ts, ts + 1, ts + 2]);
    got.forEach((r, i) => assert.deepEqual(r.data, payloads[i]));
    assert.equal(await log.append("delta"), 1003);
    await store.close();

    assert.deepEqual(readdirSync(join(dir, "events")).sort(), [segName(1000), segName(1003)]);
    const after = new Uint8Array(readFileSync(path));
    assert.deepEqual(after.subarray(0, file.length), file, "existing bytes untouched");
    // The v1 newest segment got a v1 seal right after its records: one index entry, at 32.
    const seg = specDecode(after, true);
    assert.equal(seg.frames.length, 3);
    assert.equal(seg.seal!.offset, file.length);
    assert.equal(seg.seal!.seq, 1003);
    assert.deepEqual(seg.seal!.index, [[1000, HEADER]]);
    // The new record is in a v2 segment after it, which follows on from the seal.
    const next = decodeV2Segment(
      new Uint8Array(readFileSync(join(dir, "events", segName(1003)))),
      false,
    );
    assert.equal(next.header.prevEndSeq, 1003);
    assert.deepEqual(next.frames.map((f) => [f.seq, dec.decode(f.payload)]), [[1003, "delta"]]);
  });

  it("reads a hand-built sealed segment (seal, sparse index, trailer) and the next one", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "l"), { recursive: true });
    const p = (s: number) => enc.encode(`record ${s}`.padEnd(20 + s, "."));
    const frames0 = [0, 1, 2, 3].map((s) => specFrame(1, s, 5 + s, p(s)));
    const offsets = [HEADER];
    for (const f of frames0) offsets.push(offsets[offsets.length - 1] + f.length);
    // One index entry (entries are 64 KiB apart, so a segment this small has room for one).
    const seg0 = concat(...[
      specHeader(0, 4096),
      ...frames0,
      specSeal(4, 99, [[0, offsets[0]]]),
    ]);
    const seg4 = concat(...[
      specHeader(4, 4096),
      specFrame(1, 4, 9, p(4)),
      specFrame(1, 5, 10, p(5)),
    ]);
    writeFileSync(join(dir, "l", segName(0)), seg0);
    writeFileSync(join(dir, "l", segName(4)), seg4);

    const all = await readAll(dir, "l");
    assert.equal(all.report.truncatedBytes, 0);
    assert.deepEqual(all.out.map((r) => r.seq), [0, 1, 2, 3, 4, 5]);
    all.out.forEach((r) => {
      assert.deepEqual(r.data, p(r.seq));
      assert.equal(r.timestamp, 5 + r.seq);
    });
    assert.equal(all.next, 6);
    const from3 = await readAll(dir, "l", 3);
    assert.deepEqual(from3.out.map((r) => r.seq), [3, 4, 5]);
    // The sealed segment was trusted, not rewritten.
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, "l", segName(0)))), seg0);
    // The v1 newest segment was sealed at the first open (seq 6), and a v2 segment follows it,
    // holding only its header.
    assert.deepEqual(readdirSync(join(dir, "l")).sort(), [segName(0), segName(4), segName(6)]);
    const sealed4 = new Uint8Array(readFileSync(join(dir, "l", segName(4))));
    assert.deepEqual(sealed4.subarray(0, seg4.length), seg4);
    assert.equal(specDecode(sealed4, true).seal!.seq, 6);
    const six = new Uint8Array(readFileSync(join(dir, "l", segName(6))));
    assert.equal(six.length, V2_HEADER);
    assert.equal(decodeV2Segment(six, false).header.prevEndSeq, 6);
  });

  it("refuses a hand-built segment of an unknown format version, even a short one", async () => {
    // A 32-byte header of version 3, then a v1 frame: 61 bytes, shorter than a v2 header, yet
    // never taken for a torn header (which would be recreated empty).
    const dir = freshDir();
    mkdirSync(join(dir, "v"), { recursive: true });
    const bytes = concat(...[specHeader(0, 4096, 3), specFrame(1, 0, 0, enc.encode("x"))]);
    writeFileSync(join(dir, "v", segName(0)), bytes);
    const store = await Store.open(dir, { platform: nodePlatform });
    try {
      await assert.rejects(store.log("v"), (e: Error & { code?: string }) => {
        assert.equal(e.code, "CORRUPTION");
        assert.match(e.message, /version 3/);
        return true;
      });
    } finally {
      await store.close();
    }
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, "v", segName(0)))), bytes, "untouched");
  });
});

describe("version-1 frames: impossible by construction", () => {
  const MAX = 1 << 20;

  it("uses CRC-32 (IEEE), check value 0xCBF43926", () => {
    assert.equal(u32(crc32(enc.encode("123456789"))), 0xcbf43926);
    const f = encodeFrame(FRAME_RECORD, 3, 4, enc.encode("abc"));
    assert.deepEqual(f, specFrame(1, 3, 4, enc.encode("abc")), "v1 encoder = spec v1 encoder");
  });

  it("no offset of an all-zero region decodes as a frame, for any expected seq", () => {
    const zeros = new Uint8Array(4096 + FH);
    for (const expected of [0, 1, 2 ** 32]) {
      for (let off = 0; off < 4096; off++) {
        const r = decodeFrame(zeros, off, zeros.length, expected, MAX);
        assert.deepEqual(r, { status: "bad", reason: "bad frame type 0" }, `offset ${off}`);
      }
    }
    // Type 0 is refused even when everything else checks out (checksum, seq, length).
    const type0 = specFrame(0, 0, 0, new Uint8Array(0));
    assert.equal(decodeFrame(type0, 0, FH, 0, MAX).status, "bad");
    // A zero header with only the type set still fails its checksum.
    const typed = new Uint8Array(FH);
    typed[4] = 1;
    assert.equal(decodeFrame(typed, 0, FH, 0, MAX).status, "bad");
  });

  it("a valid frame decodes only at its own sequence number", () => {
    const f = specFrame(1, 41, 7, enc.encode("payload"));
    assert.equal(decodeFrame(f, 0, f.length, 41, MAX).status, "ok");
    for (const other of [0, 40, 42, 41 + 2 ** 32]) {
      const r = decodeFrame(f, 0, f.length, other, MAX);
      assert.equal(r.status, "bad");
      assert.match((r as { reason: string }).reason, /sequence number/);
    }
  });

  it("every header byte and the payload are covered: any flip is rejected", () => {
    const f = specFrame(1, 5, 1_700_000_000_000, enc.encode("0123456789"));
    for (let i = 0; i < f.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const g = f.slice();
        g[i] ^= mask;
        assert.notEqual(decodeFrame(g, 0, g.length, 5, MAX).status, "ok", `byte ${i} ^ ${mask}`);
      }
    }
  });

  it("a huge length is refused before anything is read, and a long one asks for no more than the cap", () => {
    const f = specFrame(1, 0, 0, enc.encode("x"));
    new DataView(f.buffer).setUint32(8, 0xffff_ffff, true);
    const r = decodeFrame(f, 0, f.length, 0, MAX);
    assert.equal(r.status, "bad");
    assert.match((r as { reason: string }).reason, /exceeds/);
    new DataView(f.buffer).setUint32(8, MAX, true);
    const s = decodeFrame(f, 0, f.length, 0, MAX);
    assert.deepEqual(s, { status: "short", need: FH + MAX });
  });
});

/** An in-memory PlatformFile that records the size of every read. */
function memFile(bytes: Uint8Array) {
  const reads: number[] = [];
  const readOnly = () => {
    throw new Error("read-only");
  };
  const file: PlatformFile = {
    path: "/mem.seg",
    write: readOnly,
    writev: readOnly,
    writeAt: readOnly,
    writevAt: readOnly,
    readAt(buf, position) {
      reads.push(buf.length);
      const n = Math.max(0, Math.min(buf.length, bytes.length - position));
      buf.set(bytes.subarray(position, position + n));
      return n;
    },
    size: () => bytes.length,
    truncate: readOnly,
    datasync: () => Promise.resolve(),
    sync: () => Promise.resolve(),
    close() {},
  };
  return { file, reads };
}

const V2_ID = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);

/** A segment of either version whose record `i` has timestamp `i` (v2: base 0, deltas 0 then 1). */
interface Built {
  bytes: Uint8Array;
  payloads: Uint8Array[];
  header: SegmentHeader;
  /** Offset of each frame, then the end. */
  offsets: number[];
}

function buildSegment(version: 1 | 2, payloads: Uint8Array[], maxRecordBytes: number): Built {
  // Version 2: its header, then two zero slots and no index area (indexCapacity 0): dataStart 160.
  const v2 = () =>
    concat(
      v2Header({
        maxRecordBytes,
        firstSeq: 0,
        logId: V2_ID,
        prevEndSeq: 0,
        baseTimestamp: 0,
        indexCapacity: 0,
      }),
      new Uint8Array(80),
    );
  const head = version === 1 ? specHeader(0, maxRecordBytes) : v2();
  const frames = payloads.map((p, i) =>
    version === 1 ? specFrame(1, i, i, p) : v2Frame(V2_ID, i, T_LAST, i === 0 ? 0 : 1, p)
  );
  const offsets = [head.length];
  for (const f of frames) offsets.push(offsets[offsets.length - 1] + f.length);
  const h = decodeHeader(head);
  assert.ok(h.ok);
  return { bytes: concat(head, ...frames), payloads, header: h.header, offsets };
}

/** A scanner over `bytes` from the segment's first frame up to `limit`. */
function scanner(b: Built, file: PlatformFile, limit: number, chunk: number): FrameScanner {
  const at = {
    start: b.header.dataStart,
    limit,
    seq: 0,
    timestamp: 0,
    maxPayload: b.header.maxRecordBytes,
  };
  return new FrameScanner(file, codecFor(b.header), at, chunk);
}

for (const version of [1, 2] as const) {
  describe(`FrameScanner, version ${version}: bounded buffer, chunk boundaries`, () => {
    /** `n` records whose sizes vary; record `big` has `bigSize` payload bytes. */
    function build(n: number, big: number, bigSize: number): Built {
      const payloads: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const len = i === big ? bigSize : (i * 37) % 300;
        const p = new Uint8Array(len);
        for (let k = 0; k < len; k++) p[k] = (i * 31 + k) & 0xff;
        payloads.push(p);
      }
      return buildSegment(version, payloads, 1 << 24);
    }

    it("reads every frame with a 256-byte buffer, including one bigger than the buffer", () => {
      const b = build(400, 123, 5000);
      const { file, reads } = memFile(b.bytes);
      const s = scanner(b, file, b.bytes.length, 256);
      let i = 0;
      for (let st = s.next();; st = s.next()) {
        if (st.kind !== "frame") {
          assert.deepEqual(st, { kind: "end", offset: b.bytes.length });
          break;
        }
        assert.equal(st.seq, i);
        assert.equal(st.timestamp, i);
        assert.equal(st.offset, b.offsets[i]);
        assert.deepEqual(st.payload, b.payloads[i]);
        i++;
      }
      assert.equal(i, 400);
      // The buffer grows to fit the one big frame and is then kept: memory stays bounded by
      // max(buffer, largest frame), never by the file.
      const bigFrame = b.offsets[124] - b.offsets[123];
      assert.ok(Math.max(...reads) <= bigFrame, `largest read ${Math.max(...reads)}`);
      assert.ok(reads.length > 40, "many small reads, not one big one");
    });

    it("a 64 KiB scanner over a 3 MiB segment never reads more than a chunk (or one big frame)", () => {
      const b = build(20_000, 7_000, 100 * 1024);
      assert.ok(b.bytes.length > 3 << 20);
      const { file, reads } = memFile(b.bytes);
      const s = scanner(b, file, b.bytes.length, 64 * 1024);
      let n = 0;
      for (let st = s.next(); st.kind === "frame"; st = s.next()) {
        assert.equal(st.payload.length, b.payloads[n].length);
        if (n === 7_000) assert.deepEqual(st.payload, b.payloads[n]);
        n++;
      }
      assert.equal(n, 20_000);
      const bigFrame = b.offsets[7_001] - b.offsets[7_000];
      assert.ok(Math.max(...reads) <= bigFrame, `largest read ${Math.max(...reads)}`);
      assert.ok(reads.length > (3 << 20) / bigFrame, `${reads.length} reads`);
    });

    it("stops at its limit (the flushed length) and continues after extendLimit", () => {
      const b = build(10, -1, 0);
      const { file } = memFile(b.bytes);
      const start = b.header.dataStart;
      const s = scanner(b, file, start, 64);
      assert.deepEqual(s.next(), { kind: "end", offset: start });
      const third = b.offsets[3];
      s.extendLimit(third + 10); // inside the fourth frame
      for (let i = 0; i < 3; i++) assert.equal((s.next() as { seq: number }).seq, i);
      assert.deepEqual(s.next(), { kind: "short", offset: third });
      s.extendLimit(b.bytes.length);
      assert.equal((s.next() as { seq: number }).seq, 3);
    });

    it("reports bad bytes at their offset and stays there", () => {
      const b = build(5, -1, 0);
      const at = b.offsets[1]; // record 1 starts after record 0 (empty payload)
      b.bytes[at + 4] = 0; // type 0
      const { file } = memFile(b.bytes);
      const s = scanner(b, file, b.bytes.length, 64);
      assert.equal(s.next().kind, "frame");
      const bad = s.next();
      assert.equal(bad.kind, "bad");
      assert.equal((bad as { offset: number }).offset, at);
      assert.deepEqual(s.next(), bad);
      assert.equal(s.expectedSeq, 1);
    });
  });
}

describe("FrameScanner, version 2: a varint cut by the limit is short, not bad", () => {
  it("a frame whose 2-byte length varint straddles the limit decodes once the limit moves", () => {
    const payloads = [new Uint8Array(3), new Uint8Array(200).fill(9), new Uint8Array(1)];
    const b = buildSegment(2, payloads, 1 << 20);
    const { file } = memFile(b.bytes);
    // Frame 1: CRC (4), type (1), then the length 200 = c8 01; the limit cuts after c8.
    const cut = b.offsets[1] + 6;
    assert.equal(b.bytes[cut - 1], 0xc8);
    const s = scanner(b, file, cut, 16);
    assert.equal(s.next().kind, "frame");
    assert.deepEqual(s.next(), { kind: "short", offset: b.offsets[1] });
    s.extendLimit(b.offsets[1] + 7); // the whole length varint, not the delta
    assert.deepEqual(s.next(), { kind: "short", offset: b.offsets[1] });
    s.extendLimit(b.bytes.length);
    const f = s.next();
    assert.ok(f.kind === "frame" && f.seq === 1 && f.payload.length === 200 && f.timestamp === 1);
    assert.equal((s.next() as { seq: number }).seq, 2);
    assert.deepEqual(s.next(), { kind: "end", offset: b.bytes.length });
  });
});

describe("reader memory is bounded by its buffer, not the segment", () => {
  it("log.read over a 4 MiB segment reads at most one chunk at a time", async () => {
    const dir = freshDir();
    const rec = recordingPlatform(nodePlatform, { ignore: ["stat", "size"] });
    const store = await Store.open(dir, { platform: rec, syncPolicy: SyncPolicy.osManaged() });
    const log = await store.log("big");
    const payload = new Uint8Array(1000).fill(7);
    const batch = Array.from({ length: 100 }, () => payload);
    for (let i = 0; i < 42; i++) await log.appendBatch(batch);
    await log.sync();
    assert.equal(log.segmentCount, 1);
    assert.ok(log.byteSize > 4 << 20);
    rec.clear();
    let n = 0;
    for await (const r of log.read({ from: 0 })) {
      assert.equal(r.data.length, 1000);
      n++;
    }
    assert.equal(n, 4200);
    const reads = rec.calls.filter((c) => c.op === "readAt").map((c) => c.bytes ?? 0);
    assert.ok(reads.length >= 16, `${reads.length} reads`);
    assert.ok(Math.max(...reads) <= SCAN_CHUNK_BYTES, `largest read ${Math.max(...reads)}`);
    await store.close();
  });
});

describe("version-1 header", () => {
  it("the project's header decoder accepts the spec's v1 bytes", () => {
    const h = decodeHeader(specHeader(12345, 777));
    assert.deepEqual(h, {
      ok: true,
      header: {
        version: 1,
        firstSeq: 12345,
        maxRecordBytes: 777,
        dataStart: HEADER,
        logId: null,
        prevEndSeq: 12345,
        baseTimestamp: 0,
        indexCapacity: 0,
      },
    });
    assert.equal(codecFor((h as { header: SegmentHeader }).header).version, 1);
    const zero = decodeHeader(new Uint8Array(HEADER));
    assert.equal(zero.ok, false);
    // A v1 header's reserved bytes 24..27 are checked (inside its CRC).
    const reserved = specHeader(1, 777);
    reserved[24] = 1;
    new DataView(reserved.buffer).setUint32(28, u32(crc32(reserved.subarray(0, 28))), true);
    assert.equal(decodeHeader(reserved).ok, false);
  });
});
