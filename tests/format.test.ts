// The on-disk format as FORMAT.md describes it. This file carries its own small encoder and decoder,
// written from FORMAT.md with DataView and node:zlib's crc32 (not the project's encoder), and checks
// that (1) segments built byte by byte from the spec open and read through the Store, (2) what the
// Store writes decodes with the spec's decoder, (3) the "impossible by construction" properties hold
// at the frame level (zeros, copied frames, huge lengths), and (4) the frame scanner works across
// its buffer boundaries with bounded reads.
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
import { decodeFrame, encodeFrame, FRAME_RECORD } from "../src/format/frame.ts";
import { decodeHeader } from "../src/format/header.ts";
import { FrameScanner, SCAN_CHUNK_BYTES } from "../src/format/scanner.ts";
import { concat } from "./helpers.ts";
import { FH, HEADER, MAGIC, segName, specFrame, specHeader, specSeal, u32 } from "./spec_codec.ts";

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

describe("FORMAT.md: a hand-built segment", () => {
  it("opens and reads through the Store, and appends after it", async () => {
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

    const after = new Uint8Array(readFileSync(path));
    assert.deepEqual(after.subarray(0, file.length), file, "existing bytes untouched");
    const seg = specDecode(after, false);
    assert.equal(seg.frames.length, 4);
    assert.equal(seg.frames[3].seq, 1003);
    assert.equal(dec.decode(seg.frames[3].payload), "delta");
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
  });

  it("refuses a hand-built segment of an unknown format version", async () => {
    const dir = freshDir();
    mkdirSync(join(dir, "v"), { recursive: true });
    writeFileSync(
      join(dir, "v", segName(0)),
      concat(...[specHeader(0, 4096, 2), specFrame(1, 0, 0, enc.encode("x"))]),
    );
    const store = await Store.open(dir, { platform: nodePlatform });
    try {
      await assert.rejects(store.log("v"), (e: Error & { code?: string }) => {
        assert.equal(e.code, "CORRUPTION");
        assert.match(e.message, /version 2/);
        return true;
      });
    } finally {
      await store.close();
    }
  });
});

describe("FORMAT.md: what the Store writes decodes by the spec", () => {
  it("headers, frames, seals, sparse index and trailers of a rolled-over log", async () => {
    const dir = freshDir();
    const store = await Store.open(dir, {
      platform: nodePlatform,
      syncPolicy: SyncPolicy.osManaged(),
      segmentBytes: 8192,
      maxRecordBytes: 1000,
    });
    const log = await store.log("r");
    const payload = (i: number) =>
      enc.encode(`#${i}:`.padEnd(50 + (i % 97), String.fromCharCode(97 + (i % 26))));
    const before = Date.now();
    for (let i = 0; i < 600; i++) await log.append(payload(i));
    const afterTs = Date.now();
    await store.close();

    const names = readdirSync(join(dir, "r")).sort();
    assert.ok(names.length >= 3, `rolled over: ${names.join(",")}`);
    let seq = 0;
    names.forEach((name, i) => {
      assert.match(name, /^\d{20}\.seg$/);
      const bytes = new Uint8Array(readFileSync(join(dir, "r", name)));
      const sealed = i < names.length - 1;
      const seg = specDecode(bytes, sealed);
      assert.equal(seg.firstSeq, Number(name.slice(0, 20)), "header firstSeq matches the name");
      assert.equal(seg.firstSeq, seq, "contiguous across segments");
      assert.equal(seg.maxRecordBytes, 1000);
      // Records stop before segmentBytes; the seal comes on top.
      const sealSize = sealed ? bytes.length - seg.seal!.offset : 0;
      assert.ok(bytes.length - sealSize <= 8192, "segmentBytes respected");
      for (const f of seg.frames) {
        assert.equal(f.seq, seq);
        assert.deepEqual(f.payload, payload(seq));
        assert.ok(f.timestamp >= before && f.timestamp <= afterTs);
        seq++;
      }
      if (sealed) {
        const s = seg.seal!;
        assert.equal(s.seq, Number(names[i + 1].slice(0, 20)), "seal seq = next firstSeq");
        assert.ok(s.index.length >= 1);
        assert.deepEqual(s.index[0], [seg.firstSeq, HEADER], "first entry: the first frame");
        for (const [iseq, ioff] of s.index) {
          const f = seg.frames.find((x) => x.offset === ioff);
          assert.ok(f, `index entry at ${ioff} is a frame start`);
          assert.equal(f.seq, iseq);
        }
      }
    });
    assert.equal(seq, 600);
  });
});

describe("frames: impossible by construction", () => {
  const MAX = 1 << 20;

  it("uses CRC-32 (IEEE), check value 0xCBF43926", () => {
    assert.equal(u32(crc32(enc.encode("123456789"))), 0xcbf43926);
    const f = encodeFrame(FRAME_RECORD, 3, 4, enc.encode("abc"));
    assert.deepEqual(f, specFrame(1, 3, 4, enc.encode("abc")), "project encoder = spec encoder");
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
  const file: PlatformFile = {
    path: "/mem.seg",
    write() {
      throw new Error("read-only");
    },
    writev() {
      throw new Error("read-only");
    },
    readAt(buf, position) {
      reads.push(buf.length);
      const n = Math.max(0, Math.min(buf.length, bytes.length - position));
      buf.set(bytes.subarray(position, position + n));
      return n;
    },
    size: () => bytes.length,
    truncate() {
      throw new Error("read-only");
    },
    datasync: () => Promise.resolve(),
    sync: () => Promise.resolve(),
    close() {},
  };
  return { file, reads };
}

describe("FrameScanner: bounded buffer, chunk boundaries", () => {
  /** A segment of `n` records whose sizes vary; record `big` has `bigSize` payload bytes. */
  function build(n: number, big: number, bigSize: number) {
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const len = i === big ? bigSize : (i * 37) % 300;
      const p = new Uint8Array(len);
      for (let k = 0; k < len; k++) p[k] = (i * 31 + k) & 0xff;
      payloads.push(p);
    }
    const bytes = concat(...[
      specHeader(0, 1 << 24),
      ...payloads.map((p, i) => specFrame(1, i, i, p)),
    ]);
    return { bytes, payloads };
  }

  it("reads every frame with a 256-byte buffer, including one bigger than the buffer", () => {
    const { bytes, payloads } = build(400, 123, 5000);
    const { file, reads } = memFile(bytes);
    const s = new FrameScanner(file, HEADER, bytes.length, 0, 1 << 24, 256);
    let i = 0;
    let off = HEADER;
    for (let st = s.next();; st = s.next()) {
      if (st.kind !== "frame") {
        assert.deepEqual(st, { kind: "end", offset: bytes.length });
        break;
      }
      assert.equal(st.seq, i);
      assert.equal(st.offset, off);
      assert.deepEqual(st.payload, payloads[i]);
      off += st.frameBytes;
      i++;
    }
    assert.equal(i, 400);
    // The buffer grows to fit the one big frame and is then kept: memory stays bounded by
    // max(buffer, largest frame), never by the file.
    assert.ok(Math.max(...reads) <= FH + 5000, `largest read ${Math.max(...reads)}`);
    assert.ok(reads.length > 40, "many small reads, not one big one");
  });

  it("a 64 KiB scanner over a 3 MiB segment never reads more than a chunk (or one big frame)", () => {
    const { bytes, payloads } = build(20_000, 7_000, 100 * 1024);
    assert.ok(bytes.length > 3 << 20);
    const { file, reads } = memFile(bytes);
    const s = new FrameScanner(file, HEADER, bytes.length, 0, 1 << 24, 64 * 1024);
    let n = 0;
    for (let st = s.next(); st.kind === "frame"; st = s.next()) {
      assert.equal(st.payload.length, payloads[n].length);
      if (n === 7_000) assert.deepEqual(st.payload, payloads[n]);
      n++;
    }
    assert.equal(n, 20_000);
    assert.ok(Math.max(...reads) <= FH + 100 * 1024, `largest read ${Math.max(...reads)}`);
    assert.ok(reads.length > (3 << 20) / (FH + 100 * 1024), `${reads.length} reads`);
  });

  it("stops at its limit (the flushed length) and continues after extendLimit", () => {
    const { bytes } = build(10, -1, 0);
    const { file } = memFile(bytes);
    const s = new FrameScanner(file, HEADER, HEADER, 0, 1 << 24, 64);
    assert.deepEqual(s.next(), { kind: "end", offset: HEADER });
    let third = HEADER;
    for (let i = 0; i < 3; i++) third += FH + ((i * 37) % 300);
    s.extendLimit(third + 10); // inside the fourth frame
    for (let i = 0; i < 3; i++) assert.equal((s.next() as { seq: number }).seq, i);
    assert.deepEqual(s.next(), { kind: "short", offset: third });
    s.extendLimit(bytes.length);
    assert.equal((s.next() as { seq: number }).seq, 3);
  });

  it("reports bad bytes at their offset and stays there", () => {
    const { bytes } = build(5, -1, 0);
    const at = HEADER + FH + 0; // record 1 starts after record 0 (empty payload)
    bytes[at + 4] = 0; // type 0
    const { file } = memFile(bytes);
    const s = new FrameScanner(file, HEADER, bytes.length, 0, 1 << 24, 64);
    assert.equal(s.next().kind, "frame");
    const bad = s.next();
    assert.equal(bad.kind, "bad");
    assert.equal((bad as { offset: number }).offset, at);
    assert.deepEqual(s.next(), bad);
    assert.equal(s.expectedSeq, 1);
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

describe("header", () => {
  it("the project's header decoder accepts the spec's bytes", () => {
    const h = decodeHeader(specHeader(12345, 777));
    assert.deepEqual(h, { ok: true, header: { firstSeq: 12345, maxRecordBytes: 777 } });
    const zero = decodeHeader(new Uint8Array(HEADER));
    assert.equal(zero.ok, false);
  });
});
