// Hardening regressions: the version-1 lost-write rule's exact bounds (and version 2's absence of
// it), the 256 MiB record cap, the end of the sequence-number space, close()/sync() racing a
// failed write, typed and recoverable ENOSPC / EMFILE at rollover, close() ending readers, and
// bounded work on hostile segment files.
//
// Segment files are built from FORMAT.md with tests/spec_codec.ts (DataView and node:zlib's crc32,
// not the project's encoder): version 1 for the v1 rules, version 2 for the format the writer
// writes; or written through the Store and then damaged byte by byte, with offsets taken from the
// files (header byte 24 gives dataStart; frames are walked with the spec codec). Work is measured,
// never time: a wrapping platform records every readAt, and any wait that could hang is bounded by
// a timer that rejects. Fault rules on writes name all four write calls (write, writev, writeAt,
// writevAt): the writer uses the positional ones for data, mark slots, index entries and zeros.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { crc32 } from "node:zlib";
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  IoError,
  KhipuError,
  LogFullError,
  NoSpaceError,
  PoisonedError,
  Store,
  SyncPolicy,
} from "../mod.ts";
import type { Platform, PlatformFile } from "../platform.ts";
import { FaultyPlatform, SimPlatform } from "../testing.ts";
import { concat, realDisk, within } from "./helpers.ts";
import {
  decodeV1Segment,
  decodeV2Frame,
  seed,
  seededCrc,
  segName,
  specFrame,
  specHeader,
  specSeal,
  u32,
  u64le,
  v2Frame,
  v2Header,
  varint,
} from "./spec_codec.ts";

const disk = realDisk("hardening");

const LOG = "l";
const HEADER = 32;
const FH = 28;
const MiB = 1 << 20;
/** The largest maxRecordBytes the store accepts. */
const CAP = 256 * MiB;
const MAX = Number.MAX_SAFE_INTEGER;
/**
 * Bound on any wait that must not hang (each finishes in milliseconds when correct). Below bun's
 * default 5 s test timeout, so a hang fails its own test with this message.
 */
const HANG_MS = 2_000;
/** For the tests that move hundreds of MiB (bun's default per-test timeout is 5 s). */
const HEAVY = { timeout: 300_000 };

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u64 = (b: Uint8Array, at: number) => Number(dv(b).getBigUint64(at, true));
const TS = 1_700_000_000_000;
/** Every write call of a PlatformFile: a fault on "writes" must name all four. */
const WRITES = ["write", "writev", "writeAt", "writevAt"] as const;

// ---- FORMAT.md codec ----

/** A v1 28-byte frame header without its CRC (bytes 0..3 left zero). */
function frameHead(type: number, len: number, seq: number, timestamp: number): Uint8Array {
  const b = new Uint8Array(FH);
  const v = dv(b);
  b[4] = type;
  v.setUint32(8, u32(len), true);
  v.setBigUint64(12, BigInt(seq), true);
  v.setBigUint64(20, BigInt(timestamp), true);
  return b;
}

/** A v1 newest segment from FORMAT.md: records 0.. of the given payload sizes, no seal. */
function v1Newest(sizes: number[], fill = 0): Uint8Array {
  const frames = sizes.map((n, i) =>
    specFrame(1, i, TS + i, new Uint8Array(n).fill(((i * 29 + fill) % 250) + 1))
  );
  return concat(specHeader(0, 16 * MiB), ...frames);
}

/** A fresh random log id. */
function newId(): Uint8Array {
  const id = new Uint8Array(16);
  crypto.getRandomValues(id);
  id[0] |= 1; // never all zero
  return id;
}

/** A v2 header by FORMAT.md (its index area holds `indexCapacity` stored entries). */
function v2Head(
  h: { firstSeq: number; logId: Uint8Array; maxRecordBytes?: number; indexCapacity?: number },
): Uint8Array {
  return v2Header({
    maxRecordBytes: h.maxRecordBytes ?? 16 * MiB,
    firstSeq: h.firstSeq,
    logId: h.logId,
    prevEndSeq: h.firstSeq,
    baseTimestamp: TS,
    indexCapacity: h.indexCapacity ?? 0,
  });
}

interface V2Walk {
  firstSeq: number;
  dataStart: number;
  logId: Uint8Array;
  /** Record frames from dataStart, up to the first that does not decode or a seal. */
  frames: { offset: number; end: number; seq: number; timestamp: number }[];
  seal: { offset: number; size: number; seq: number; timestamp: number } | null;
  /** The newest valid mark slot's durable end (dataStart if none). */
  markEnd: number;
}

/** Walks a v2 segment file by FORMAT.md (tests/spec_codec.ts's frame decoder). */
function walkV2(bytes: Uint8Array): V2Walk {
  assert.equal(dv(bytes).getUint16(8, true), 2, "a version-2 segment");
  const firstSeq = u64(bytes, 16);
  const dataStart = dv(bytes).getUint32(24, true);
  const logId = bytes.slice(32, 48);
  const maxRecordBytes = Math.min(dv(bytes).getUint32(12, true), CAP);
  const frames: V2Walk["frames"] = [];
  let seal: V2Walk["seal"] = null;
  let at = dataStart;
  let seq = firstSeq;
  let ts = u64(bytes, 56);
  for (;;) {
    const f = decodeV2Frame(bytes, at, bytes.length, {
      logId,
      seq,
      prevTimestamp: ts,
      maxRecordBytes,
    });
    if (f.status !== "ok") break;
    if (f.type === 2) {
      seal = { offset: at, size: f.size, seq, timestamp: f.timestamp };
      break;
    }
    frames.push({ offset: at, end: at + f.size, seq, timestamp: f.timestamp });
    at += f.size;
    seq++;
    ts = f.timestamp;
  }
  let markEnd = dataStart;
  let generation = 0;
  for (const [slotAt, parity] of [[80, 1], [120, 0]]) {
    const slot = bytes.subarray(slotAt, slotAt + 40);
    if (slot.length < 40) continue;
    if (dv(slot).getUint32(36, true) !== seededCrc(seed(logId, firstSeq), slot.subarray(0, 36))) {
      continue;
    }
    const g = u64(slot, 0);
    if (g >= 1 && g % 2 === parity && g > generation) {
      generation = g;
      markEnd = u64(slot, 8);
    }
  }
  return { firstSeq, dataStart, logId, frames, seal, markEnd };
}

/**
 * A v2 seal frame by FORMAT.md (REVISED layout): payload u64 endSeq, u64 firstTimestamp,
 * u64 lastTimestamp, u32 n, n x (u64 seq, u64 offset, u64 prevTimestamp), u32 trailer = frame size.
 */
function v2SealFrame(
  logId: Uint8Array,
  endSeq: number,
  t: { first: number; last: number; delta: number },
  entries: [number, number, number][],
): Uint8Array {
  const p = new Uint8Array(28 + 24 * entries.length + 4);
  const v = dv(p);
  v.setBigUint64(0, BigInt(endSeq), true);
  v.setBigUint64(8, BigInt(t.first), true);
  v.setBigUint64(16, BigInt(t.last), true);
  v.setUint32(24, entries.length, true);
  entries.forEach(([seq, off, prev], i) => {
    v.setBigUint64(28 + 24 * i, BigInt(seq), true);
    v.setBigUint64(36 + 24 * i, BigInt(off), true);
    v.setBigUint64(44 + 24 * i, BigInt(prev), true);
  });
  const size = 5 + varint(p.length).length + varint(t.delta).length + p.length;
  v.setUint32(p.length - 4, size, true);
  const frame = v2Frame(logId, endSeq, 2, t.delta, p);
  assert.equal(frame.length, size);
  return frame;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- waiting without hanging ----

/** The rejection of `p` (bounded); fails if it resolves. */
async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  const r = await within(
    p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e })),
    what,
    HANG_MS,
  );
  if (r.ok) assert.fail(`${what}: expected a rejection, resolved with ${String(r.v)}`);
  return r.e;
}

function assertCode(err: unknown, code: string, what: string): KhipuError {
  assert.ok(err instanceof KhipuError, `${what}: not a KhipuError: ${String(err)}`);
  assert.equal(err.code, code, `${what}: ${err.code} (${err.message}), expected ${code}`);
  return err;
}

// ---- platform wrappers ----

/**
 * `inner`, with `open` passing each opened file through `onFile`; every other member is forwarded
 * as it is (a Proxy, so the wrapper keeps up with the Platform interface).
 */
function wrapPlatform(
  inner: Platform,
  name: string,
  onFile: (f: PlatformFile) => PlatformFile,
): Platform {
  const open: Platform["open"] = async (path, how, mode) =>
    onFile(await inner.open(path, how, mode));
  return forward(inner, { name: `${name}(${inner.name})`, open });
}

/** `target` with some members replaced; the others forwarded (methods bound to `target`). */
function forward<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) {
        return (overrides as Record<string | symbol, unknown>)[prop];
      }
      const v = Reflect.get(t, prop, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}

interface ReadStats {
  /** Largest buffer ever passed to readAt. */
  maxBuffer: number;
  /** Bytes readAt returned, in total. */
  total: number;
  /** The first limit broken, if any. */
  violation: string | null;
}

/**
 * Records every readAt. A call over a limit is refused with a plain Error (before it reaches the
 * disk), so code that would read gigabytes fails at once instead of doing it.
 */
function readAccounting(
  inner: Platform,
  limits: { maxBuffer: number; maxTotal?: number },
): { platform: Platform; stats: ReadStats } {
  const stats: ReadStats = { maxBuffer: 0, total: 0, violation: null };
  const refuse = (why: string): never => {
    stats.violation ??= why;
    throw new Error(`read accounting: ${why}`);
  };
  const platform = wrapPlatform(inner, "readAccounting", (f) =>
    forward<PlatformFile>(f, {
      readAt: (buf, pos) => {
        stats.maxBuffer = Math.max(stats.maxBuffer, buf.length);
        if (buf.length > limits.maxBuffer) {
          refuse(`readAt with a ${buf.length}-byte buffer (limit ${limits.maxBuffer})`);
        }
        const n = f.readAt(buf, pos);
        stats.total += n;
        if (limits.maxTotal !== undefined && stats.total > limits.maxTotal) {
          refuse(`${stats.total} bytes read in total (limit ${limits.maxTotal})`);
        }
        return n;
      },
    }));
  return { platform, stats };
}

/** Counts open file handles: every file opened through it, minus those closed. */
function handleCounting(
  inner: Platform,
): { platform: Platform; open: Set<string>; opened: number } {
  const state = { platform: inner, open: new Set<string>(), opened: 0 };
  let id = 0;
  state.platform = wrapPlatform(inner, "handles", (f) => {
    const key = `#${++id} ${f.path}`;
    state.open.add(key);
    state.opened++;
    return forward<PlatformFile>(f, {
      close: () => {
        state.open.delete(key);
        f.close();
      },
    });
  });
  return state;
}

/** The error a real platform raises for a failed fdatasync (see src/platform/handle.ts). */
function fdatasyncFailer(inner: Platform): { platform: Platform; arm(): void } {
  let armed = false;
  const platform = wrapPlatform(inner, "fdatasyncFailer", (f) =>
    forward<PlatformFile>(f, {
      datasync: () => {
        if (armed && f.path.endsWith(".seg")) {
          armed = false;
          const raw = Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
          return Promise.reject(
            new IoError({ op: "fdatasync", path: f.path, osCode: "EIO", cause: raw }),
          );
        }
        return f.datasync();
      },
    }));
  return { platform, arm: () => void (armed = true) };
}

// ---- real-disk helpers ----

function openReal(dir: string, opts: Parameters<typeof Store.open>[1] = {}): Promise<Store> {
  return Store.open(dir, { platform: disk.platform(), syncPolicy: SyncPolicy.always(), ...opts });
}

function logFiles(dir: string): Map<string, Uint8Array> {
  const d = join(dir, LOG);
  return new Map(readdirSync(d).sort().map((f) => [f, new Uint8Array(readFileSync(join(d, f)))]));
}

/** Opening the log must fail with CorruptionError at `where`, and change no file of the log. */
async function expectCorruption(
  dir: string,
  where: { path: string; offset: number; seq?: number },
): Promise<CorruptionError> {
  const before = logFiles(dir);
  const store = await openReal(dir);
  let caught: unknown = null;
  let log: unknown = null;
  try {
    log = await store.log(LOG);
  } catch (err) {
    caught = err;
  } finally {
    await store.close();
  }
  if (log) {
    const r = log as { openReport: unknown; nextSeq: number };
    assert.fail(
      `expected CorruptionError at offset ${where.offset}; the log opened with nextSeq ` +
        `${r.nextSeq}, report ${JSON.stringify(r.openReport)}`,
    );
  }
  assert.ok(caught instanceof CorruptionError, `expected CorruptionError, got ${String(caught)}`);
  assert.equal(caught.code, "CORRUPTION");
  assert.equal(caught.path, where.path);
  assert.equal(caught.offset, where.offset, `offset: ${caught.message}`);
  if (where.seq !== undefined) assert.equal(caught.seq, where.seq);
  const after = logFiles(dir);
  assert.deepEqual([...after.keys()], [...before.keys()], "no file added or removed");
  for (const [f, b] of before) assert.ok(sameBytes(after.get(f)!, b), `${f} changed`);
  return caught;
}

/** After a v1 open that kept records [0, n): the v1 file ends in a v1 seal, a v2 segment follows. */
function assertSealedThenV2(dir: string, n: number): void {
  const files = logFiles(dir);
  assert.deepEqual([...files.keys()], [segName(0), segName(n)], "one v2 segment added");
  const v1 = decodeV1Segment(files.get(segName(0))!, true);
  assert.deepEqual(v1.frames.map((f) => f.seq), Array.from({ length: n }, (_, i) => i));
  assert.equal(v1.seal?.seq, n);
  const next = files.get(segName(n))!;
  assert.equal(dv(next).getUint16(8, true), 2);
  assert.equal(u64(next, 48), n, "its prevEndSeq: where the v1 segment ends");
}

/** Places crafted segment files (by first seq) in a fresh store directory on the real disk. */
function placeReal(
  files: Record<number, Uint8Array>,
): { dir: string; path: (s: number) => string } {
  const dir = disk.tempDir();
  const d = join(dir, LOG);
  mkdirSync(d, { recursive: true });
  for (const [seq, bytes] of Object.entries(files)) writeFileSync(join(d, segName(+seq)), bytes);
  return { dir, path: (s) => join(d, segName(s)) };
}

async function readAll(store: Store): Promise<{ seq: number; data: Uint8Array }[]> {
  const log = await store.log(LOG);
  const out: { seq: number; data: Uint8Array }[] = [];
  for await (const r of log.read({ from: 0 })) out.push({ seq: r.seq, data: r.data.slice() });
  return out;
}

// =================================================================================================

describe("1. lost-write rule (version 1 only): only zeros a lost page leaves (a zeroed sector, zeros to a page boundary, >= 28 zeros to a sector boundary)", () => {
  // Version-1 newest segments built from FORMAT.md: the rule exists only for them. Records that
  // open are then sealed (v1 seal) and a v2 segment follows them.
  it("a zeroed byte 511 (first byte of a frame, 1 byte before the boundary) is damage, not a torn hole", async () => {
    // Record 0: 451-byte payload, a 479-byte frame from 32, so record 1's frame starts at 511.
    // Records 1..7: 16-byte payloads (44-byte frames). Byte 511 is the low byte of record 1's CRC.
    const sizes = [451, 16, 16, 16, 16, 16, 16, 16];
    let bytes: Uint8Array = new Uint8Array(0);
    for (let variant = 0;; variant++) {
      assert.ok(variant < 16, "no variant of record 1 had a nonzero CRC low byte");
      bytes = v1Newest(sizes, variant);
      assert.equal(bytes.length, 511 + 7 * 44);
      assert.equal(bytes[511 + 4], 1, "a record frame starts at 511");
      if (bytes[511] !== 0) break; // else it already is 0: the frame is valid, try other bytes
    }
    bytes[511] = 0;
    const { dir, path } = placeReal({ 0: bytes });
    const seg = path(0);
    await expectCorruption(dir, { path: seg, offset: 511, seq: 1 });

    // repair: true sets the damage aside (records 1..7 kept in the .broken copy), never a torn cut;
    // record 0 stays (sealed), and the log goes on past every seq the set-aside bytes could hold.
    const beyond = Math.ceil(bytes.length / 7) + 1;
    const store = await openReal(dir, { repair: true });
    try {
      const log = await store.log(LOG);
      assert.equal(log.openReport.tornHole, false, "repair of damage is not a torn hole");
      assert.equal(log.openReport.truncatedBytes, 0);
      assert.equal(log.openReport.repaired.length, 1, JSON.stringify(log.openReport));
      assert.equal(log.openReport.repaired[0].offset, 511);
      assert.ok(
        sameBytes(new Uint8Array(readFileSync(log.openReport.repaired[0].movedTo!)), bytes),
      );
      assert.deepEqual(log.openReport.skippedSeqs, { from: 1, to: beyond });
      assert.equal(log.nextSeq, beyond);
    } finally {
      await store.close();
    }
    const kept = decodeV1Segment(new Uint8Array(readFileSync(seg)), true);
    assert.deepEqual(kept.frames.map((f) => f.seq), [0], "record 0 kept, sealed in v1");
  });

  it("one flipped payload bit in a frame at 511 whose CRC low byte is 0 is damage", async () => {
    // Crafted: record 1's payload carries a counter, chosen so that its CRC's low byte (at 511) is 0.
    const r0 = specFrame(1, 0, TS, new Uint8Array(451).fill(7));
    let r1: Uint8Array = new Uint8Array(0);
    for (let k = 0; k < 1_000_000; k++) {
      const p = new Uint8Array(16).fill(9);
      dv(p).setUint32(0, k, true);
      r1 = specFrame(1, 1, TS, p);
      if (r1[0] === 0) break;
    }
    assert.equal(r1[0], 0, "found a frame whose CRC low byte is 0");
    const rest = [2, 3, 4, 5, 6, 7].map((s) => specFrame(1, s, TS, new Uint8Array(16).fill(s)));
    const good = concat(specHeader(0, 16 * MiB), r0, r1, ...rest);
    assert.equal(good[511], 0);
    assert.equal(good[511 + 4], 1);

    // Sanity: intact, it opens with all 8 records and nothing cut (then sealed, a v2 one after).
    const intact = placeReal({ 0: good });
    const s0 = await openReal(intact.dir);
    try {
      const log = await s0.log(LOG);
      assert.equal(log.nextSeq, 8);
      assert.equal(log.openReport.truncatedBytes, 0);
    } finally {
      await s0.close();
    }
    assertSealedThenV2(intact.dir, 8);

    const bad = good.slice();
    bad[511 + FH + 5] ^= 0x08; // one bit of record 1's payload
    const { dir, path } = placeReal({ 0: bad });
    await expectCorruption(dir, { path: path(0), offset: 511, seq: 1 });
  });

  it("27 zero bytes up to the sector boundary (less than a frame header) are damage", async () => {
    // Record 0: 425-byte payload (453-byte frame), so record 1 starts at 485; 485..511 zeroed.
    const bytes = v1Newest([425, 100, 100, 100, 100]);
    assert.equal(bytes[485 + 4], 1, "a record frame starts at 485");
    bytes.fill(0, 485, 512);
    const { dir, path } = placeReal({ 0: bytes });
    await expectCorruption(dir, { path: path(0), offset: 485, seq: 1 });
  });

  it("guard: 20 zero bytes from a frame at 4076 up to a 4 KiB page boundary, valid frames after: torn hole", async () => {
    // What the crash exploration produced: the page holding the synced end was lost, later pages
    // reached the disk. Fewer than 28 zeros, but up to a page boundary, so a lost write.
    const bytes = v1Newest([4076 - 32 - 28, 100, 100, 100, 100]);
    assert.equal(bytes[4076 + 4], 1, "a record frame starts at 4076");
    bytes.fill(0, 4076, 4096);
    const { dir, path } = placeReal({ 0: bytes });
    const store = await openReal(dir);
    try {
      const log = await store.log(LOG);
      assert.equal(log.openReport.tornHole, true);
      assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: 4076 });
      assert.equal(log.openReport.truncatedBytes, bytes.length - 4076);
      assert.equal(log.nextSeq, 1);
    } finally {
      await store.close();
    }
    assertSealedThenV2(dir, 1);
  });

  for (const [x, p0] of [[484, 424], [412, 352]] as const) {
    it(`guard: ${512 - x} zero bytes from a frame at ${x} up to the boundary, valid frames after: torn hole`, async () => {
      // A lost page tail: the frame at x lost its bytes up to 512, its tail and later frames
      // reached the disk.
      const bytes = v1Newest([p0, 100, 100, 100, 100]);
      assert.equal(bytes[x + 4], 1, `a record frame starts at ${x}`);
      bytes.fill(0, x, 512);
      const { dir, path } = placeReal({ 0: bytes });
      const store = await openReal(dir);
      try {
        const log = await store.log(LOG);
        assert.equal(log.openReport.tornHole, true);
        assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: x });
        assert.equal(log.openReport.truncatedBytes, bytes.length - x);
        assert.equal(log.nextSeq, 1);
      } finally {
        await store.close();
      }
      assertSealedThenV2(dir, 1);
    });
  }

  it("version 2 has no such rule: the same zero patterns before a v2 segment's mark are kept, and a reader gets CorruptionError", async () => {
    // Written through the Store (SyncPolicy.always: a slot after each fdatasync), 45 records of
    // 100 bytes from dataStart 32928, so a 4 KiB page boundary (36864) falls among them.
    const src = disk.tempDir();
    const s = await openReal(src);
    const l = await s.log(LOG);
    const data = (i: number) => new Uint8Array(100).fill((i * 29 % 250) + 1);
    for (let i = 0; i < 45; i++) await l.append(data(i));
    await s.close();
    const file = logFiles(src).get(segName(0))!;
    const w = walkV2(file);
    assert.equal(w.frames.length, 45);
    assert.equal(w.markEnd, w.frames[44].end, "the mark covers records 0..44");
    const next = (off: number, unit: number) => (Math.floor(off / unit) + 1) * unit;
    const pageFrame = w.frames.findIndex((f, i) => i > 0 && next(f.offset, 4096) < f.end);
    const sectorFrame = w.frames.findIndex((f, i) => i > 0 && next(f.offset, 512) - f.offset >= 28);
    const firstByte = w.frames.findIndex((f, i) => i > 0 && file[f.offset] !== 0);
    const sector = next(w.frames[3].offset, 512);
    const inSector = w.frames.findIndex((f) => f.end > sector);
    const shapes: [string, number, number, number][] = [
      // [what, frame reported, zeros from, zeros to]
      [
        "one zeroed byte, a frame's first",
        firstByte,
        w.frames[firstByte].offset,
        w.frames[firstByte].offset + 1,
      ],
      ["27 zeros from a frame's start", 5, w.frames[5].offset, w.frames[5].offset + 27],
      [
        "zeros from a frame's start to a page boundary",
        pageFrame,
        w.frames[pageFrame].offset,
        next(w.frames[pageFrame].offset, 4096),
      ],
      [
        ">= 28 zeros from a frame's start to a sector boundary",
        sectorFrame,
        w.frames[sectorFrame].offset,
        next(w.frames[sectorFrame].offset, 512),
      ],
      ["a zeroed aligned sector", inSector, sector, sector + 512],
    ];
    for (const [what, k, from, to] of shapes) {
      assert.ok(k > 0 && to < w.frames[43].offset, `${what}: before the mark, frames after it`);
      const bytes = file.slice();
      bytes.fill(0, from, to);
      const { dir, path } = placeReal({ 0: bytes });
      const before = logFiles(dir);
      const store = await openReal(dir);
      try {
        const log = await store.log(LOG);
        assert.equal(log.nextSeq, 45, what);
        assert.equal(log.openReport.tornHole, false, what);
        assert.equal(log.openReport.truncatedBytes, 0, what);
        const seqs: number[] = [];
        const err = await (async () => {
          try {
            for await (const r of log.read({ from: 0 })) {
              assert.ok(sameBytes(r.data, data(r.seq)), `${what}: record ${r.seq}`);
              seqs.push(r.seq);
            }
          } catch (e) {
            return e;
          }
          return null;
        })();
        assert.ok(err instanceof CorruptionError, `${what}: ${String(err)}`);
        assert.equal(err.path, path(0));
        assert.equal(err.offset, w.frames[k].offset, what);
        assert.equal(err.seq, k, what);
        assert.deepEqual(seqs, Array.from({ length: k }, (_, i) => i), what);
      } finally {
        await store.close();
      }
      for (const [f, b] of before) assert.ok(sameBytes(logFiles(dir).get(f)!, b), `${what}: ${f}`);
    }
  });
});

// =================================================================================================

describe("2. maxRecordBytes is capped at 256 MiB", () => {
  it(
    "256 MiB + 1 is refused with InvalidArgumentError; a record of exactly 256 MiB round-trips on disk",
    HEAVY,
    async () => {
      const sim = new SimPlatform();
      const err = await rejection(
        Store.open("/s", { platform: sim, maxRecordBytes: CAP + 1 }),
        "Store.open with maxRecordBytes 256 MiB + 1",
      );
      assert.ok(err instanceof InvalidArgumentError, `not InvalidArgumentError: ${String(err)}`);
      assert.equal(err.code, "INVALID_ARGUMENT");
      await (await Store.open("/s", { platform: sim, maxRecordBytes: CAP })).close();

      // Exactly 256 MiB, on the real disk. The payload is a cheap pattern; it is checked by length,
      // CRC-32 and 4,096 sampled positions, and dropped before the read so memory stays modest.
      const dir = disk.tempDir();
      try {
        let payload: Uint8Array | null = new Uint8Array(CAP);
        for (let i = 0; i < 4096; i++) payload[i] = (i * 131 + (i >> 8) * 7 + 1) & 0xff;
        for (let n = 4096; n < CAP; n *= 2) payload.copyWithin(n, 0, Math.min(n, CAP - n));
        payload[CAP - 1] = 0x5a;
        const want = u32(crc32(payload));
        const positions: number[] = [0, 1, CAP - 2, CAP - 1];
        for (let i = 0, x = 12345; i < 4096; i++) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          positions.push(x % CAP);
        }
        const samples = positions.map((p) => payload![p]);

        const store = await openReal(dir, { maxRecordBytes: CAP });
        const log = await store.log(LOG);
        assert.equal(await log.append(payload), 0);
        payload = null;
        await log.sync();
        await store.close();

        const again = await openReal(dir); // the default option: the segment's header cap governs
        try {
          const l = await again.log(LOG);
          assert.equal(l.nextSeq, 1);
          assert.equal(l.openReport.truncatedBytes, 0);
          const it = l.read({ from: 0 });
          const r = await it.next();
          assert.ok(!r.done);
          const got = r.value.data;
          assert.equal(got.length, CAP);
          assert.deepEqual(positions.map((p) => got[p]), samples);
          assert.equal(u32(crc32(got)), want);
          assert.ok((await it.next()).done);
        } finally {
          await again.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("v1: a segment header claiming a cap above 256 MiB is read as 256 MiB", HEAVY, async () => {
    // Newest v1 segment, header cap 0xFFFFFFFF: record 0 (10 bytes), then a whole, checksum-valid
    // frame of 256 MiB + 1 zero bytes (a sparse file). Under a 256 MiB cap that frame is invalid,
    // and nothing valid follows it: a torn tail at its offset, never a 256 MiB + 29 byte read.
    const len = CAP + 1;
    const r0 = specFrame(1, 0, TS, new Uint8Array(10).fill(3));
    const head = frameHead(1, len, 1, TS + 1);
    let c = crc32(head.subarray(4));
    const zeros = new Uint8Array(16 * MiB);
    for (let left = len; left > 0; left -= Math.min(left, zeros.length)) {
      c = crc32(zeros.subarray(0, Math.min(left, zeros.length)), c);
    }
    dv(head).setUint32(0, u32(c), true);
    const { dir, path } = placeReal({ 0: concat(specHeader(0, 0xffff_ffff), r0, head) });
    const at = HEADER + r0.length;
    const fd = openSync(path(0), "r+");
    ftruncateSync(fd, at + FH + len);
    closeSync(fd);
    try {
      const acct = readAccounting(disk.platform(), { maxBuffer: CAP + FH });
      const store = await Store.open(dir, { platform: acct.platform, maxRecordBytes: CAP });
      try {
        const log = await store.log(LOG);
        assert.equal(log.nextSeq, 1, "the over-cap frame is not a record");
        assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: at });
      } finally {
        await store.close();
      }
      assert.equal(acct.stats.violation, null, "no read buffer over 256 MiB + 28");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("v2: a segment header claiming a cap above 256 MiB is read as 256 MiB", HEAVY, async () => {
    // The same in a v2 newest segment: record 0, then a checksum-valid frame (CRC seeded with the
    // log id and seq 1) of 256 MiB + 1 zero bytes, its length a 5-byte varint. Over the cap, it is
    // not a record: a torn tail at its offset (it lies after the mark), never a 256 MiB read.
    const len = CAP + 1;
    const id = newId();
    const r0 = v2Frame(id, 0, 1, 0, new Uint8Array(10).fill(3));
    const head = concat(new Uint8Array(4), Uint8Array.of(1), varint(len), varint(1));
    let c = crc32(head.subarray(4), crc32(concat(id, u64le(1))));
    const zeros = new Uint8Array(16 * MiB);
    for (let left = len; left > 0; left -= Math.min(left, zeros.length)) {
      c = crc32(zeros.subarray(0, Math.min(left, zeros.length)), c);
    }
    dv(head).setUint32(0, u32(c), true);
    const header = v2Head({ firstSeq: 0, logId: id, maxRecordBytes: 0xffff_ffff });
    const dataStart = 160;
    const prefix = concat(header, new Uint8Array(dataStart - header.length), r0, head);
    const { dir, path } = placeReal({ 0: prefix });
    const at = dataStart + r0.length;
    const fd = openSync(path(0), "r+");
    ftruncateSync(fd, at + head.length + len);
    closeSync(fd);
    try {
      const acct = readAccounting(disk.platform(), { maxBuffer: CAP + 18 });
      const store = await Store.open(dir, { platform: acct.platform, maxRecordBytes: CAP });
      try {
        const log = await store.log(LOG);
        assert.equal(log.nextSeq, 1, "the over-cap frame is not a record");
        assert.deepEqual(log.openReport.truncatedAt, { path: path(0), offset: at });
        assert.equal(log.openReport.truncatedBytes, head.length + len);
      } finally {
        await store.close();
      }
      assert.equal(acct.stats.violation, null, "no read buffer over 256 MiB + 18");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// =================================================================================================

describe("3. sequence numbers past 2^53 - 1 are refused", () => {
  const FIRST = MAX - 3; // 2^53 - 4
  const LAST = MAX - 1; // 2^53 - 2, the last record a log can hold

  function craftedFullLog(): string {
    // A new v2 segment as the writer creates it: just its 80-byte header.
    const { dir } = placeReal({ [FIRST]: v2Head({ firstSeq: FIRST, logId: newId() }) });
    return dir;
  }

  async function reopenAndCheck(dir: string, want: string[]): Promise<void> {
    const store = await openReal(dir);
    try {
      const log = await store.log(LOG);
      const got: { seq: number; data: string }[] = [];
      for await (const r of log.read({ from: 0 })) {
        got.push({ seq: r.seq, data: new TextDecoder().decode(r.data) });
      }
      assert.deepEqual(got, want.map((data, i) => ({ seq: FIRST + i, data })));
      assert.equal(log.nextSeq, MAX);
    } finally {
      await store.close();
    }
  }

  it("the last record has seq 2^53 - 2; the next append rejects with LogFullError", async () => {
    const dir = craftedFullLog();
    const store = await openReal(dir);
    try {
      const log = await store.log(LOG);
      assert.equal(log.nextSeq, FIRST);
      assert.equal(await log.append("a"), FIRST);
      assert.equal(await log.append("b"), FIRST + 1);
      assert.equal(await log.append("c"), LAST);
      const err = await rejection(log.append("d"), "append of seq 2^53 - 1");
      assert.ok(err instanceof LogFullError, `not LogFullError: ${String(err)}`);
      assert.equal(err.code, "LOG_FULL");
      const again = await rejection(log.append("e"), "a second append once full");
      assertCode(again, "LOG_FULL", "second append");
      assert.equal(log.nextSeq, MAX);
    } finally {
      await store.close();
    }
    await reopenAndCheck(dir, ["a", "b", "c"]);
  });

  it("appendBatch of 2 with one slot left rejects with LogFullError and writes nothing", async () => {
    const dir = craftedFullLog();
    const store = await openReal(dir);
    try {
      const log = await store.log(LOG);
      assert.equal(await log.append("a"), FIRST);
      assert.equal(await log.append("b"), FIRST + 1);
      const err = await rejection(log.appendBatch(["x", "y"]), "appendBatch past 2^53 - 2");
      assert.ok(err instanceof LogFullError, `not LogFullError: ${String(err)}`);
      assert.equal(log.nextSeq, LAST, "the refused batch took no sequence number");
      assert.equal(await log.append("c"), LAST);
      assertCode(await rejection(log.appendBatch(["z"]), "appendBatch once full"), "LOG_FULL", "z");
    } finally {
      await store.close();
    }
    await reopenAndCheck(dir, ["a", "b", "c"]);
  });
});

// =================================================================================================

describe("4. close() and sync() in the same turn as an append whose write fails do not hang", () => {
  const policies: [string, () => SyncPolicy][] = [
    ["always()", () => SyncPolicy.always()],
    ["everyN(4)", () => SyncPolicy.everyN(4)],
    ["interval(20)", () => SyncPolicy.interval(20)],
    ["osManaged()", () => SyncPolicy.osManaged()],
  ];

  async function setup(policy: () => SyncPolicy) {
    const sim = new SimPlatform();
    const faulty = new FaultyPlatform(sim);
    const store = await Store.open("/s", { platform: faulty, syncPolicy: policy() });
    const log = await store.log(LOG);
    assert.equal(await log.append("before"), 0);
    await log.sync();
    faulty.inject({ op: WRITES, path: ".seg", code: "ENOSPC" });
    return { sim, faulty, store, log };
  }

  async function contents(sim: SimPlatform, policy: () => SyncPolicy): Promise<string[]> {
    const store = await within(
      Store.open("/s", { platform: sim, syncPolicy: policy() }),
      "reopen",
      HANG_MS,
    );
    try {
      return (await readAll(store)).map((r) => new TextDecoder().decode(r.data));
    } finally {
      await store.close();
    }
  }

  for (const [name, policy] of policies) {
    it(`${name}: append, log.sync(), store.close() in one turn, write ENOSPC: all settle, lock released`, async () => {
      const { sim, faulty, store, log } = await setup(policy);
      const a = log.append("x");
      const s = log.sync();
      const c = store.close();
      const err = await rejection(a, "the failed append");
      assert.ok(err instanceof NoSpaceError, `not NoSpaceError: ${String(err)}`);
      await within(s, "log.sync()", HANG_MS);
      await within(c, "store.close()", HANG_MS);
      assert.equal(faulty.injected.length, 1);
      // The lock is released: the same directory opens again on the same platform.
      const other = await within(
        Store.open("/s", { platform: faulty }),
        "second Store.open",
        HANG_MS,
      );
      await other.close();
      assert.deepEqual(await contents(sim, policy), ["before"]);
    });

    it(`${name}: append and log.sync() in one turn, write ENOSPC: sync settles, the log goes on`, async () => {
      const { sim, faulty, store, log } = await setup(policy);
      const a = log.append("x");
      const s = log.sync();
      const err = await rejection(a, "the failed append");
      assert.ok(err instanceof NoSpaceError, `not NoSpaceError: ${String(err)}`);
      await within(s, "log.sync()", HANG_MS);
      assert.equal(faulty.injected.length, 1);
      assert.equal(await within(log.append("after"), "append after the fault", HANG_MS), 1);
      await within(log.sync(), "log.sync() after the fault", HANG_MS);
      await within(store.close(), "store.close()", HANG_MS);
      assert.deepEqual(await contents(sim, policy), ["before", "after"]);
    });
  }
});

// =================================================================================================

describe("5. ENOSPC / EMFILE at rollover is typed and recoverable; a failed fdatasync still poisons", () => {
  const SEG_BYTES = 4096;
  const payload = (k: number) => new Uint8Array(700).fill((k * 37 + 11) % 251 + 1);

  interface Run {
    sim: SimPlatform;
    faulty: FaultyPlatform;
    failer: { arm(): void };
    store: Store;
    log: Awaited<ReturnType<Store["log"]>>;
    resolved: Map<number, Uint8Array>;
    rejected: Uint8Array[];
    attempts: number;
  }

  async function setup(): Promise<Run> {
    const sim = new SimPlatform();
    const failer = fdatasyncFailer(sim);
    const faulty = new FaultyPlatform(failer.platform);
    const store = await Store.open("/s", {
      platform: faulty,
      syncPolicy: SyncPolicy.always(),
      segmentBytes: SEG_BYTES,
      bufferBytes: 1024,
    });
    const log = await store.log(LOG);
    return {
      sim,
      faulty,
      failer,
      store,
      log,
      resolved: new Map(),
      rejected: [],
      attempts: 0,
    };
  }

  /** One append; its outcome is recorded. Returns the rejection, if any. */
  async function attempt(r: Run): Promise<unknown> {
    const data = payload(r.attempts++);
    const out = await within(
      r.log.append(data).then((seq) => ({ seq }), (e: unknown) => ({ e })),
      `append #${r.attempts}`,
      HANG_MS,
    );
    if ("seq" in out) {
      r.resolved.set(out.seq, data);
      return null;
    }
    r.rejected.push(data);
    return out.e;
  }

  async function fill(r: Run, n: number): Promise<void> {
    for (let i = 0; i < n; i++) assert.equal(await attempt(r), null, `append ${i} must resolve`);
  }

  /** Reopens (after a clean close and after a power cut) and checks exactly the resolved records. */
  async function verify(r: Run): Promise<void> {
    for (const fs of [r.sim, r.sim.crash("none")]) {
      const store = await within(Store.open("/s", { platform: fs }), "reopen", HANG_MS);
      try {
        const got = await readAll(store);
        assert.deepEqual(got.map((x) => x.seq), [...r.resolved.keys()].sort((a, b) => a - b));
        assert.deepEqual(got.map((x) => x.seq), got.map((_, i) => i), "contiguous from 0");
        for (const x of got) {
          assert.ok(sameBytes(x.data, r.resolved.get(x.seq)!), `record ${x.seq} changed`);
          assert.ok(!r.rejected.some((d) => sameBytes(d, x.data)), `rejected data at ${x.seq}`);
        }
      } finally {
        await store.close();
      }
    }
  }

  const faults: {
    name: string;
    code: string;
    rule: () => Parameters<FaultyPlatform["inject"]>[0];
  }[] = [
    {
      name: "ENOSPC creating the next segment file",
      code: "NO_SPACE",
      rule: () => ({ op: "open", path: `/${segName(5)}`, code: "ENOSPC", times: Infinity }),
    },
    {
      name: "EMFILE creating the next segment file",
      code: "IO",
      rule: () => ({ op: "open", path: `/${segName(5)}`, code: "EMFILE", times: Infinity }),
    },
    {
      name: "ENOSPC writing the old segment's seal (9 bytes written)",
      code: "NO_SPACE",
      rule: () => ({
        op: WRITES,
        path: `/${segName(0)}`,
        code: "ENOSPC",
        partial: 9,
        times: Infinity,
      }),
    },
  ];

  for (const f of faults) {
    it(`${f.name}: the appends that need the new segment reject typed (${f.code}, not POISONED); then the log goes on`, async () => {
      const r = await setup();
      // v2: 5 x 708-byte frames from dataStart 160 fill segment 0; the next append rolls over.
      await fill(r, 5);
      assert.equal(r.log.segmentCount, 1);
      r.faulty.inject(f.rule());
      for (let i = 0; i < 3; i++) {
        const err = await attempt(r);
        assert.ok(err !== null, `append ${i} during the fault resolved`);
        assertCode(err, f.code, `append ${i} during the fault`);
        assert.ok(!(err instanceof PoisonedError));
        if (f.code === "IO") assert.match((err as Error).message, /EMFILE/);
        assert.equal(r.log.nextSeq, 5, "a rejected append takes no sequence number");
      }
      assert.ok(r.faulty.injected.length >= 3, `faults injected: ${r.faulty.injected.length}`);
      r.faulty.clear(); // the fault has passed
      await fill(r, 7);
      assert.deepEqual([...r.resolved.keys()], Array.from({ length: 12 }, (_, i) => i));
      assert.ok(r.log.segmentCount >= 2);
      await within(r.store.close(), "store.close()", HANG_MS);
      await verify(r);
    });
  }

  it("after a recovered ENOSPC at rollover, EIO on fdatasync still poisons; the PoisonedError names fdatasync", async () => {
    const r = await setup();
    await fill(r, 5);
    r.faulty.inject({ op: "open", path: `/${segName(5)}`, code: "ENOSPC", times: 1 });
    assertCode(await attempt(r), "NO_SPACE", "append during the fault");
    await fill(r, 2); // seqs 5, 6 in the new segment
    r.failer.arm();
    const first = await attempt(r);
    assert.ok(first !== null, "the append whose fdatasync failed resolved");
    assert.ok(first instanceof KhipuError && ["IO", "POISONED"].includes(first.code));
    for (let i = 0; i < 2; i++) {
      const err = await attempt(r);
      assert.ok(err instanceof PoisonedError, `not PoisonedError: ${String(err)}`);
      assert.equal(err.code, "POISONED");
      assert.match(err.message, /fdatasync/, "names the real cause");
      assert.doesNotMatch(err.message, /fsync failure/);
      assert.doesNotMatch(err.message, /no space/i, "the recovered ENOSPC is not the cause");
    }
    // Reads still work.
    const seqs: number[] = [];
    for await (const rec of r.log.read({ from: 0 })) seqs.push(rec.seq);
    assert.deepEqual(seqs.slice(0, 7), [0, 1, 2, 3, 4, 5, 6]);
    await within(r.store.close().catch(() => {}), "store.close()", HANG_MS);
  });
});

// =================================================================================================

describe("6. store.close() ends readers and releases their files", () => {
  async function scenario(platform: Platform) {
    const store = await Store.open("/s", {
      platform,
      syncPolicy: SyncPolicy.always(),
      segmentBytes: 4096,
    });
    const log = await store.log(LOG);
    for (let i = 0; i < 20; i++) await log.append(new Uint8Array(700).fill(i + 1));
    assert.ok(log.segmentCount >= 4);
    const early = log.read(); // in the first (sealed) segment
    const late = log.read({ from: 17 }); // in the active segment
    for (let i = 0; i < 3; i++) {
      const r = await within(early.next(), "early.next()", HANG_MS);
      assert.ok(!r.done && r.value.seq === i);
    }
    const r17 = await within(late.next(), "late.next()", HANG_MS);
    assert.ok(!r17.done && r17.value.seq === 17);
    const follower = log.follow();
    const waiting = follower.next();
    await within(store.close(), "store.close()", HANG_MS);
    assert.deepEqual(await within(waiting, "follow().next() across close", HANG_MS), {
      done: true,
      value: undefined,
    });
    for (const [name, iter] of [["read()", early], ["read({ from: 17 })", late]] as const) {
      const err = await rejection(iter.next(), `${name}.next() after close`);
      assertCode(err, "CLOSED", `${name}.next() after close`);
      assert.ok(err instanceof ClosedError);
      const again = await within(
        iter.next().then((x) => x, (e: unknown) => ({ error: e })),
        `${name}.next() once more`,
        HANG_MS,
      );
      assert.ok("error" in again || again.done, `${name} yielded a record after close`);
    }
    assert.deepEqual(await within(follower.next(), "follower.next() after close", HANG_MS), {
      done: true,
      value: undefined,
    });
  }

  it("simulator: readers end with ClosedError, a follower ends, every opened file is closed", async () => {
    const sim = new SimPlatform();
    const handles = handleCounting(sim);
    await scenario(handles.platform);
    assert.ok(handles.opened > 4);
    assert.deepEqual([...handles.open], [], "files still open after store.close()");
    assert.equal(sim.openFileCount, 0);
  });

  it("real disk: no descriptor under the store stays open after close (/proc/self/fd)", {
    skip: process.platform !== "linux" && "counts /proc/self/fd",
  }, async () => {
    const dir = disk.tempDir();
    const handles = handleCounting(disk.platform());
    await scenario(realRooted(handles.platform, dir));
    assert.deepEqual([...handles.open], [], "files still open after store.close()");
    const ours: string[] = [];
    for (const fd of readdirSync("/proc/self/fd")) {
      try {
        const t = readlinkSync(`/proc/self/fd/${fd}`);
        if (t.startsWith(dir)) ours.push(t);
      } catch {
        // the descriptor readdir used
      }
    }
    assert.deepEqual(ours, []);
  });
});

/** `inner` with the simulator's "/s" store path mapped into `dir` on the real disk. */
function realRooted(inner: Platform, dir: string): Platform {
  const map = (p: string) => (p === "/s" || p.startsWith("/s/") ? dir + p.slice(2) : p);
  return forward<Platform>(inner, {
    name: `rooted(${inner.name})`,
    open: (p, how, mode) => inner.open(map(p), how, mode),
    syncDir: (p) => inner.syncDir(map(p)),
    rename: (a, b) => inner.rename(map(a), map(b)),
    unlink: (p) => inner.unlink(map(p)),
    mkdir: (p, m) => inner.mkdir(map(p), m),
    readdir: (p) => inner.readdir(map(p)),
    remove: (p) => inner.remove(map(p)),
    stat: (p) => inner.stat(map(p)),
    lock: (p) => inner.lock(map(p)),
  });
}

// =================================================================================================

describe("7. bounded work on hostile segment files", () => {
  it(
    "(a) a sealed segment whose trailer claims a ~4 GiB seal (4.5 GB sparse file): CorruptionError, reads <= 16 MiB + 64",
    HEAVY,
    async () => {
      const dir = disk.tempDir();
      try {
        const store = await openReal(dir, { segmentBytes: 4096 });
        const log = await store.log(LOG);
        for (let i = 0; i < 8; i++) await log.append(new Uint8Array(700).fill(i + 1));
        assert.equal(log.segmentCount, 2);
        await store.close();
        const sealed = join(dir, LOG, segName(0));
        const size = 4_500_000_000;
        const fd = openSync(sealed, "r+");
        try {
          ftruncateSync(fd, size);
          const trailer = new Uint8Array(4);
          dv(trailer).setUint32(0, 0xffff_fff0, true);
          writeSync(fd, trailer, 0, 4, size - 4);
        } finally {
          closeSync(fd);
        }
        const acct = readAccounting(disk.platform(), { maxBuffer: 16 * MiB + 64 });
        const s = await Store.open(dir, {
          platform: acct.platform,
          syncPolicy: SyncPolicy.always(),
        });
        let caught: unknown = null;
        try {
          await s.log(LOG);
        } catch (err) {
          caught = err;
        } finally {
          await s.close();
        }
        assert.equal(acct.stats.violation, null, "no read buffer over 16 MiB + 64");
        assert.ok(
          caught instanceof CorruptionError,
          `expected CorruptionError, got ${String(caught)}`,
        );
        assert.equal(caught.path, sealed);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it(
    "(b) v1: a header cap of 0xFFFFFFFF and a frame claiming 500 MiB in a 600 MiB sparse file: no read over 256 MiB + 28",
    HEAVY,
    async () => {
      const r0 = specFrame(1, 0, TS, new Uint8Array(10).fill(1));
      const bogus = frameHead(1, 500 * MiB, 1, TS + 1);
      dv(bogus).setUint32(0, 0x1234_5678, true);
      const { dir, path } = placeReal({ 0: concat(specHeader(0, 0xffff_ffff), r0, bogus) });
      try {
        const fd = openSync(path(0), "r+");
        ftruncateSync(fd, 600 * MiB);
        closeSync(fd);
        const acct = readAccounting(disk.platform(), { maxBuffer: CAP + FH });
        const store = await Store.open(dir, { platform: acct.platform });
        let caught: unknown = null;
        try {
          const log = await store.log(LOG);
          assert.equal(log.nextSeq, 1, "only record 0 is a record");
        } catch (err) {
          caught = err;
        } finally {
          await store.close();
        }
        assert.equal(acct.stats.violation, null, "no read buffer over 256 MiB + 28");
        if (caught !== null) {
          assert.ok(caught instanceof KhipuError, `not a KhipuError: ${String(caught)}`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it(
    "(b) v2: a header cap of 0xFFFFFFFF and a frame claiming 500 MiB in a 600 MiB sparse file: no read over 256 MiB + 18",
    HEAVY,
    async () => {
      const id = newId();
      const r0 = v2Frame(id, 0, 1, 0, new Uint8Array(10).fill(1));
      // CRC, type 1, a 5-byte length varint of 500 MiB, delta 1; the CRC is wrong.
      const bogus = concat(Uint8Array.of(0x78, 0x56, 0x34, 0x12, 1), varint(500 * MiB), varint(1));
      const header = v2Head({ firstSeq: 0, logId: id, maxRecordBytes: 0xffff_ffff });
      const dataStart = 160;
      const { dir, path } = placeReal({
        0: concat(header, new Uint8Array(dataStart - header.length), r0, bogus),
      });
      try {
        const fd = openSync(path(0), "r+");
        ftruncateSync(fd, 600 * MiB);
        closeSync(fd);
        const acct = readAccounting(disk.platform(), { maxBuffer: CAP + 18 });
        const store = await Store.open(dir, { platform: acct.platform });
        try {
          const log = await store.log(LOG);
          assert.equal(log.nextSeq, 1, "only record 0 is a record");
          assert.deepEqual(log.openReport.truncatedAt, {
            path: path(0),
            offset: dataStart + r0.length,
          });
        } finally {
          await store.close();
        }
        assert.equal(acct.stats.violation, null, "no read buffer over 256 MiB + 18");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it(
    "(c) v1: the search for a valid frame after a bad one reads O(file size), not O(n^2)",
    HEAVY,
    async () => {
      // Version 1's torn-tail rule searches for a valid frame after a bad one (v2 needs no search:
      // its mark says how far the data was synced). A bad v1 frame (wrong CRC) at X, then ~1 MiB
      // in which every 32 bytes holds a plausible frame header: type 1, reserved 0, seq in the
      // expected range, a length that fits in the file, a wrong CRC. Checking each candidate by
      // reading its whole frame costs ~16 GiB here.
      const ts = TS;
      const r0 = specFrame(1, 0, ts, new Uint8Array(100).fill(1));
      const X = HEADER + r0.length;
      const REGION = MiB;
      const size = X + REGION;
      const bytes = new Uint8Array(size).fill(0x5a);
      bytes.set(specHeader(0, 16 * MiB), 0);
      bytes.set(r0, HEADER);
      let candidates = 0;
      for (let at = X; at + FH <= size; at += 32, candidates++) {
        const k = (at - X) / 32;
        const len = size - at - FH - (k % 7);
        const h = frameHead(1, Math.max(0, len), 1 + (k % 3), ts + k);
        dv(h).setUint32(0, 0xdead_beef ^ k, true);
        bytes.set(h, at);
      }
      const sim = new SimPlatform();
      await sim.mkdir("/s");
      await sim.mkdir(`/s/${LOG}`);
      sim.setFileBytes(`/s/${LOG}/${segName(0)}`, bytes);
      const budget = 8 * size;
      const acct = readAccounting(sim, { maxBuffer: CAP + FH, maxTotal: budget });
      const store = await Store.open("/s", { platform: acct.platform });
      let caught: unknown = null;
      try {
        const log = await store.log(LOG);
        assert.equal(log.nextSeq, 1);
      } catch (err) {
        caught = err;
      } finally {
        await store.close();
      }
      assert.equal(
        acct.stats.violation,
        null,
        `${candidates} candidates after the bad frame; file ${size} bytes`,
      );
      assert.ok(acct.stats.total <= budget);
      if (caught !== null) {
        assert.ok(caught instanceof KhipuError, `not a KhipuError: ${String(caught)}`);
      }
    },
  );

  it("(d) v2: a sealed segment whose seal lists more index entries than its size allows is corruption", async () => {
    // 16 KiB segments of 27-byte frames; a seal there may list at most
    // floor((sealOffset - dataStart) / 65536) + 1 = 1 entry. Checksum-valid seals claiming 2 or
    // 500 entries (strictly ascending, within the segment) fail, before 500 are read.
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 16384 };
    const store = await Store.open("/s", { ...opts, platform: sim });
    const log = await store.log(LOG);
    for (let b = 0; b < 8; b++) {
      await log.appendBatch(
        Array.from({ length: 100 }, (_, i) => new Uint8Array(20).fill(i % 251)),
      );
    }
    assert.ok(log.segmentCount >= 2);
    await store.close();
    const path = `/s/${LOG}/${segName(0)}`;
    const bytes = sim.fileBytes(path)!;
    const w = walkV2(bytes);
    assert.ok(w.seal, "segment 0 is sealed");
    assert.equal(w.seal.offset + w.seal.size, bytes.length);
    assert.equal(dv(bytes).getUint32(bytes.length - 4, true), w.seal.size, "the trailer");
    const records = w.frames.length;
    assert.equal(w.seal.seq, records);
    assert.ok(records >= 500, `${records} records`);
    assert.ok(w.seal.offset <= 16384);
    const last = w.frames[records - 1].timestamp;
    for (const n of [2, 500]) {
      const index: [number, number, number][] = Array.from({ length: n }, (_, i) => {
        const f = w.frames[Math.floor((i * records) / n)];
        return [f.seq, f.offset, i === 0 ? u64(bytes, 56) : w.frames[f.seq - 1].timestamp];
      });
      const seal = v2SealFrame(w.logId, records, {
        first: w.frames[0].timestamp,
        last,
        delta: w.seal.timestamp - last,
      }, index);
      sim.setFileBytes(path, concat(bytes.subarray(0, w.seal.offset), seal));
      const again = await Store.open("/s", { ...opts, platform: sim });
      let caught: unknown = null;
      try {
        const l = await again.log(LOG);
        assert.fail(`opened with ${l.segmentCount} segments; the seal's ${n} entries were trusted`);
      } catch (err) {
        caught = err;
      } finally {
        await again.close();
      }
      assert.ok(
        caught instanceof CorruptionError,
        `${n}: expected CorruptionError, got ${String(caught)}`,
      );
      assert.equal(caught.path, path);
      assert.match(caught.message, /seal/);
    }
    // Sanity: the same builder's seal with the one entry allowed opens.
    const one = v2SealFrame(w.logId, records, {
      first: w.frames[0].timestamp,
      last,
      delta: w.seal.timestamp - last,
    }, [[0, w.dataStart, u64(bytes, 56)]]);
    sim.setFileBytes(path, concat(bytes.subarray(0, w.seal.offset), one));
    const ok = await Store.open("/s", { ...opts, platform: sim });
    try {
      assert.equal((await ok.log(LOG)).nextSeq, 800);
    } finally {
      await ok.close();
    }
  });

  it("(d) v1: a sealed segment whose seal lists more index entries than its size allows is corruption", async () => {
    // A v1 sealed segment of 340 records (48-byte frames, 16 352 bytes before the seal): at most
    // floor((sealOffset - 32) / 65536) + 1 = 1 entry. A checksum-valid seal claiming 1000 fails.
    const records = 340;
    const frames = Array.from(
      { length: records },
      (_, i) => specFrame(1, i, TS + i, new Uint8Array(20).fill(i % 251)),
    );
    const index: [number, number][] = Array.from({ length: 1000 }, (_, i) => {
      const j = Math.floor((i * records) / 1000);
      return [j, HEADER + 48 * j];
    });
    const sealed = concat(specHeader(0, 16 * MiB), ...frames, specSeal(records, TS + 1e6, index));
    const { dir, path } = placeReal({ 0: sealed, [records]: specHeader(records, 16 * MiB) });
    const err = await expectCorruption(dir, { path: path(0), offset: sealed.length });
    assert.match(err.message, /seal/);
  });

  it("(e) v2: open reads from the mark on, not the whole segment (16 MiB of records, the last batch after the mark)", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.always() };
    const store = await Store.open("/s", { ...opts, platform: sim });
    const log = await store.log(LOG);
    const batch = Array.from({ length: 64 }, (_, i) => new Uint8Array(1024).fill(i + 1));
    for (let b = 0; b < 256; b++) await log.appendBatch(batch);
    await store.close();
    // After a power cut: the slot naming the close's fdatasync was not made durable (less than
    // 1 MiB after the one before), so the last batch lies after the mark.
    const cut = sim.crash("none");
    const path = `/s/${LOG}/${segName(0)}`;
    const bytes = cut.fileBytes(path)!;
    const w = walkV2(bytes);
    assert.equal(w.frames.length, 256 * 64);
    const dataEnd = w.frames[w.frames.length - 1].end;
    assert.ok(
      w.markEnd >= dataEnd - 70_000 && w.markEnd < dataEnd,
      `the mark (${w.markEnd}) is near the end (${dataEnd})`,
    );
    // What open may read: header, slots and the stored index entries before dataStart, from the
    // mark to the end of the file (the zeros included), and 1 MiB for the first record and the
    // scan's chunks; re-reading the 16 MiB before the mark would be far over.
    const budget = w.dataStart + (bytes.length - w.markEnd) + MiB;
    assert.ok(budget < dataEnd / 4, `the budget ${budget} is far below the ${dataEnd} data bytes`);
    const acct = readAccounting(cut, { maxBuffer: 1 * MiB, maxTotal: budget });
    const again = await Store.open("/s", { ...opts, platform: acct.platform });
    try {
      const l = await again.log(LOG);
      assert.equal(l.nextSeq, 256 * 64);
      assert.equal(l.openReport.truncatedBytes, 0);
    } finally {
      await again.close();
    }
    assert.equal(acct.stats.violation, null, `read ${acct.stats.total} bytes, budget ${budget}`);
  });
});
