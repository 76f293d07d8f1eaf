/**
 * Repair mode under test, shared by `tests/repair_cases.test.ts` (one repair of each kind of
 * damage), `tests/crash_repair.test.ts` (a damaged newest segment) and
 * `tests/crash_repair_steps.test.ts` (a damaged sealed segment, a missing one). Not itself a test
 * file. Three parts:
 *
 * - **Logs and their bytes.** {@linkcode writeLog} writes a log through the Store on a
 *   {@linkcode SimPlatform}; {@linkcode specSegments} decodes its segments with
 *   `tests/spec_codec.ts`, which knows FORMAT.md and nothing of `src/`, so which records a damage
 *   touches is found from the bytes, never from the code under test.
 * - **Damage and what one repair must leave.** {@linkcode plant} flips bytes, zeroes a range, cuts
 *   a segment or deletes one, and works out the records whose frames the damage touches.
 *   {@linkcode checkRepaired} opens with `repair: true` and checks: every other record is readable
 *   at its own seq with its own data and timestamp; exactly the touched seqs are missing, listed
 *   in `log.gaps` and as `lost` in `openReport.repaired` (one action per segment acted on); each
 *   intact run of a damaged segment is a sealed segment named by its first seq, whose header
 *   declares the gap before it, valid by FORMAT.md alone; every other segment is byte for byte as
 *   it was (a `gap-declared` one but for its `prevEndSeq`); `.broken` holds the damaged bytes; an
 *   append gets a fresh seq; reads and cursors that start inside a gap go on at the next record;
 *   `log.verify()` finds nothing wrong; and reopening, without repair or with, gives the same
 *   records and gaps and repairs nothing more.
 * - **Crash exploration** ({@linkcode exploreRepair}), below.
 *
 * The exploration: one repair-mode open runs on the damaged log, then reads, two appends, reads
 * and a close; the disk is frozen before its first call and after every call that changed it (a
 * call that changes nothing, a read or a stat, leaves the state the call before it left), with
 * what reads had yielded and which appends had resolved by then. Each frozen state is crashed in
 * every mode (several seeds for the seeded ones), and on the crashed disk:
 *
 * 1. the damaged segment's bytes exist byte for byte under its own name or a `.broken` /
 *    `.broken.N` name, at the crash and after every open that follows; and every `.broken` file
 *    on the crashed disk is still there, byte for byte, after those opens (nothing set aside is
 *    ever deleted);
 * 2. a plain open (no repair) either fails with `CorruptionError` (at the open, or where a read
 *    reaches the damage) or yields a log holding every intact record, then appended ones only;
 * 3. a repair-mode open succeeds; the log holds every intact record at its seq, byte for byte,
 *    then only records appended after the repair, in order, every resolved one among them; an
 *    append after it succeeds too; no `*.seg.repair` file is left; and its `gaps` are those the
 *    uninterrupted repair left (a repair after a crash gives the same log as one without);
 * 4. no seq is given to two different records: every record read, before the damage, after the
 *    repair, and after each crash and open, is remembered by its seq, and a seq never comes back
 *    with other bytes (the log skips the seqs it sets aside, it never reuses them);
 * 5. a sequence of crashes: the repair-mode open of (3), its append and its close are frozen after
 *    every disk-changing call too, and one of those states (chosen by a seeded draw per state) is
 *    crashed again and reopened with repair: (1), (3) and (4) hold again, with everything read up
 *    to the second crash remembered.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Store, SyncPolicy } from "../mod.ts";
import type { KhipuError } from "../src/errors.ts";
import type { Log } from "../src/log.ts";
import {
  CRASH_MODES,
  type CrashMode,
  seededRandom,
  SimPlatform,
  type SimSnapshot,
} from "../src/testing/sim.ts";
import {
  decodeV2Segment,
  ENTRY_BYTES,
  INDEX_AT,
  type IndexEntry,
  seed,
  seededCrc,
  SLOT_A_AT,
  SLOT_BYTES,
  V2_HEADER,
  type V2FrameOk,
  type V2HeaderDecoded,
} from "./spec_codec.ts";

/** Where the store lives, and its one log. */
export const DIR = "/s";
export const LOG = "a";
export const LOG_DIR: string = `${DIR}/${LOG}`;

/** The store options a test log is written and opened with (the same at every open). */
export interface LogOpts {
  syncPolicy: SyncPolicy;
  segmentBytes: number;
}

/** Every write synced before its append resolves; 4096-byte segments (five 700-byte records). */
export const STORE_OPTS: LogOpts = {
  syncPolicy: SyncPolicy.always(),
  segmentBytes: 4096,
};
/** 700-byte records, each filled with one byte value: `rec(i)` is filled with `i % 250 + 1`. */
export const rec = (i: number): Uint8Array => new Uint8Array(700).fill((i % 250) + 1);
/** A segment's file name. */
export const segName = (firstSeq: number): string => `${String(firstSeq).padStart(20, "0")}.seg`;
const SEG_NAME = /^\d{20}\.seg$/;

// ---- reading v2 files (FORMAT.md v2: header u32 dataStart at 24, varint frame lengths) ----

/** A DataView of `b`'s bytes. */
export const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
/** The u64 (little-endian) at `at`. */
export const u64 = (b: Uint8Array, at: number): number => Number(dv(b).getBigUint64(at, true));

/** A varint (FORMAT.md v2): its value and the offset after it. */
export function varint(b: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  for (let i = 0, scale = 1; i < 8; i++, scale *= 128) {
    value += (b[at + i] & 0x7f) * scale;
    if ((b[at + i] & 0x80) === 0) return { value, next: at + i + 1 };
  }
  throw new Error(`varint at ${at}`);
}

export interface V2Frame {
  offset: number;
  size: number;
  type: number;
  payloadAt: number;
}

/** The frames of a v2 segment from its dataStart (header u32 at 24), by their varint lengths. */
export function v2Frames(b: Uint8Array): V2Frame[] {
  if (dv(b).getUint16(8, true) !== 2) throw new Error("not a v2 segment");
  const out: V2Frame[] = [];
  for (let at = dv(b).getUint32(24, true); at + 7 <= b.length;) {
    const type = b[at + 4];
    if (type !== 1 && type !== 2 && type !== 3) break;
    const len = varint(b, at + 5);
    const delta = varint(b, len.next);
    const size = delta.next - at + len.value;
    if (at + size > b.length) break;
    out.push({ offset: at, size, type, payloadAt: delta.next });
    if (type === 2) break;
    at += size;
  }
  return out;
}

/** The durable mark of a v2 segment: the valid slot (seeded CRC) with the larger generation. */
export function markOf(b: Uint8Array): { durableEnd: number; nextSeq: number } | null {
  const s = seed(b.slice(32, 48), u64(b, 16));
  let best: { generation: number; durableEnd: number; nextSeq: number } | null = null;
  for (const at of [80, 120]) {
    if (dv(b).getUint32(at + 36, true) !== seededCrc(s, b.subarray(at, at + 36))) continue;
    const generation = u64(b, at);
    if (!best || generation > best.generation) {
      best = { generation, durableEnd: u64(b, at + 8), nextSeq: u64(b, at + 16) };
    }
  }
  return best;
}

/** The files in the log directory, by name. */
export function files(sim: SimPlatform): string[] {
  return sim.listFiles().filter((p) => p.startsWith(`${LOG_DIR}/`)).map((p) =>
    p.slice(LOG_DIR.length + 1)
  );
}

/** Whether `a` holds exactly the bytes of `b`. */
export function same(a: Uint8Array | null, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- logs, records and segments ----

/** Seqs `[from, to)`, as `log.gaps` and a repair action's `kept` and `lost` list them. */
export interface Range {
  from: number;
  to: number;
}

/** The fewest ranges holding exactly `seqs`, ascending. */
export function rangesOf(seqs: Iterable<number>): Range[] {
  const out: Range[] = [];
  for (const s of [...new Set(seqs)].sort((a, b) => a - b)) {
    const last = out.at(-1);
    if (last?.to === s) last.to++;
    else out.push({ from: s, to: s + 1 });
  }
  return out;
}

/** Ranges as `from-to` text (comparable, and short in a message). */
const showRanges = (rs: readonly Range[]) => rs.map((r) => `${r.from}-${r.to}`).join(",");

/** One record as read. */
export interface Got {
  seq: number;
  data: Uint8Array;
}

/** One record as read, with its timestamp. */
export interface Rec extends Got {
  timestamp: number;
}

/** Every record of `log`, from its first. */
export async function readAll(log: Log): Promise<Rec[]> {
  const out: Rec[] = [];
  for await (const r of log.read({ from: log.firstSeq })) {
    out.push({ seq: r.seq, timestamp: r.timestamp, data: r.data.slice() });
  }
  return out;
}

/** The records of the log on `sim`, read through a store opened (and closed) for it. */
export async function readLog(
  sim: SimPlatform,
  repair: boolean,
  opts: LogOpts = STORE_OPTS,
): Promise<Rec[]> {
  const s = await Store.open(DIR, { ...opts, platform: sim, repair });
  try {
    return await readAll(await s.log(LOG));
  } finally {
    await s.close();
  }
}

/** Asserts that `got` holds exactly the records `want` (seq, timestamp and bytes). */
export function assertRecords(got: readonly Rec[], want: readonly Rec[], what: string): void {
  assert.deepEqual(
    showRanges(rangesOf(got.map((r) => r.seq))),
    showRanges(rangesOf(want.map((r) => r.seq))),
    `${what}: seqs`,
  );
  assert.equal(got.length, want.length, `${what}: records (a seq read twice?)`);
  got.forEach((g, i) => {
    assert.equal(g.timestamp, want[i].timestamp, `${what}: record ${g.seq}'s timestamp`);
    assert.ok(same(g.data, want[i].data), `${what}: record ${g.seq}'s bytes`);
  });
}

/** A version-2 segment of a log, decoded by FORMAT.md alone (`tests/spec_codec.ts`). */
export interface SpecSegment {
  name: string;
  path: string;
  bytes: Uint8Array;
  header: V2HeaderDecoded;
  /** One past its last record. */
  endSeq: number;
  /** Its record frames, in order. */
  frames: V2FrameOk[];
  /** Its seal frame (null for the newest segment). */
  seal: V2FrameOk | null;
  /** Its index entries: the seal's, or (newest) entry 0 and the stored entries its mark counts. */
  entries: IndexEntry[];
  /** The newest segment's durable end (its mark's); null for a sealed one. */
  durableEnd: number | null;
}

/**
 * Decodes a segment strictly by FORMAT.md: sealed through its trailer and seal, every frame before
 * it; the newest from its mark. A sealed segment's slots and index area are never consulted
 * (FORMAT.md "What open checks"), so they are read as zeros here: a repair may leave there what it
 * likes.
 */
export function decodeSegment(name: string, bytes: Uint8Array, sealed: boolean): SpecSegment {
  const file = sealed ? bytes.slice() : bytes;
  if (sealed) file.fill(0, SLOT_A_AT, Math.min(file.length, dv(file).getUint32(24, true)));
  const d = decodeV2Segment(file, sealed);
  return {
    name,
    path: `${LOG_DIR}/${name}`,
    bytes,
    header: d.header,
    endSeq: d.seal?.seq ?? (d.frames.at(-1)?.seq ?? d.header.firstSeq - 1) + 1,
    frames: d.frames,
    seal: d.seal,
    entries: sealed ? d.seal!.body.entries : d.entries,
    durableEnd: sealed ? null : d.mark.durableEnd,
  };
}

/** The segments of the log on `sim`, oldest first (the last one is the newest). */
export function specSegments(sim: SimPlatform): SpecSegment[] {
  const names = files(sim).filter((n) => SEG_NAME.test(n));
  return names.map((name, i) =>
    decodeSegment(name, sim.fileBytes(`${LOG_DIR}/${name}`)!, i < names.length - 1)
  );
}

/** A log as written, on a disk where all of it is durable, with every record read back. */
export interface Written {
  sim: SimPlatform;
  all: Rec[];
  segs: SpecSegment[];
}

/** The clock a log is written with: 1 to 3 ms a call, so that records carry distinct timestamps. */
const T0 = 1_700_000_000_000;

/**
 * Writes a log with `write`, reads every record back, closes, and returns it on a disk where all
 * of it is durable (a close leaves its last mark slot in the page cache; what a crash may lose of
 * the repair's own steps is the question, not that slot).
 */
export async function writeLog(
  opts: LogOpts,
  write: (log: Log) => Promise<void>,
): Promise<Written> {
  const writing = new SimPlatform();
  const realNow = Date.now;
  let now = T0;
  Date.now = () => (now += 1 + (now % 3));
  let all: Rec[];
  try {
    const store = await Store.open(DIR, { ...opts, platform: writing });
    try {
      const log = await store.log(LOG);
      await write(log);
      all = await readAll(log);
    } finally {
      await store.close();
    }
  } finally {
    Date.now = realNow;
  }
  const sim = writing.crash("all");
  return { sim, all, segs: specSegments(sim) };
}

// ---- damage, and what a repair must leave ----

/** One change to a segment file: a byte xor `mask` (default 0xff), a range zeroed, or a cut. */
export type Edit = { flip: number; mask?: number } | { zero: [number, number] } | { cut: number };

/** The damaged log, before the repair-mode open. */
export interface Damaged {
  /** Every record ever read (or, for v1 bytes built by hand, written) before the damage. */
  seen: Seen;
  /** The records a repair must keep, at their seqs, in order. */
  kept: Got[];
  /** File name (in the log directory) -> bytes, of each damaged segment: never to be lost. */
  originals: Map<string, Uint8Array>;
  /**
   * One past every seq the log held before the damage, the damaged records' included: a record
   * appended after a repair must get a seq at least this.
   */
  above: number;
  /**
   * The log an interrupted repair leaves may skip other seqs than an uninterrupted one (the v1
   * rules: each new try starts a new segment further on); otherwise its gaps must be the same.
   */
  gapsMayDiffer?: boolean;
}

/** A log with damage planted in one segment. */
export interface Planted extends Damaged {
  sim: SimPlatform;
  /** The log before the damage. */
  written: Written;
  /** The damaged (or deleted) segment. */
  target: SpecSegment;
  /** Its bytes as damaged (null: deleted). */
  bytes: Uint8Array | null;
  /** The seqs of the records whose frames the damage touches, ascending. */
  lost: number[];
  /** The first damaged byte, and where the unit holding it starts (a frame, the header, ...). */
  offset: { frame: number; byte: number } | null;
}

/**
 * Damages segment `firstSeq` of `w` by `edits` (offsets in the file as written) or deletes it,
 * and works out the records whose frames the damage touches from the segment's decoded frames.
 */
export async function plant(
  w: Written,
  firstSeq: number,
  edits: readonly Edit[] | "delete",
): Promise<Planted> {
  const target = w.segs.find((s) => s.header.firstSeq === firstSeq);
  if (!target) throw new Error(`no segment starts at ${firstSeq}`);
  const seen = new Seen();
  remember(seen, w.all, "before the damage");
  let bytes: Uint8Array | null = null;
  const ranges: [number, number][] = [];
  if (edits === "delete") {
    await w.sim.unlink(target.path);
    await w.sim.syncDir(LOG_DIR);
  } else {
    bytes = target.bytes.slice();
    for (const e of edits) {
      if ("flip" in e) {
        bytes[e.flip] ^= e.mask ?? 0xff;
        ranges.push([e.flip, e.flip + 1]);
      } else if ("zero" in e) {
        bytes.fill(0, e.zero[0], e.zero[1]);
        ranges.push(e.zero);
      } else {
        ranges.push([e.cut, bytes.length]);
        bytes = bytes.slice(0, e.cut);
      }
    }
    w.sim.setFileBytes(target.path, bytes);
  }
  const touched = (f: V2FrameOk) =>
    edits === "delete" || ranges.some(([a, b]) => f.offset < b && a < f.offset + f.size);
  const lost = target.frames.filter(touched).map((f) => f.seq);
  const byte = Math.min(...ranges.map((r) => r[0]));
  const offset = ranges.length === 0 ? null : { frame: unitAt(target, byte), byte };
  const gone = new Set(lost);
  return {
    sim: w.sim,
    seen,
    kept: w.all.filter((r) => !gone.has(r.seq)),
    originals: bytes ? new Map([[target.name, bytes]]) : new Map(),
    above: w.segs.at(-1)!.endSeq,
    written: w,
    target,
    bytes,
    lost,
    offset,
  };
}

/**
 * Where the checksummed unit holding byte `at` of `s` starts: the header, a mark slot, a stored
 * index entry, a frame or the seal (a repair cannot tell which byte of a unit is wrong, only which
 * unit).
 */
function unitAt(s: SpecSegment, at: number): number {
  if (at < V2_HEADER) return 0;
  if (at < INDEX_AT) return SLOT_A_AT + SLOT_BYTES * Math.floor((at - SLOT_A_AT) / SLOT_BYTES);
  if (at < s.header.dataStart) {
    return INDEX_AT + ENTRY_BYTES * Math.floor((at - INDEX_AT) / ENTRY_BYTES);
  }
  const extents = [...s.frames, ...(s.seal ? [s.seal] : [])];
  return extents.find((f) => f.offset <= at && at < f.offset + f.size)?.offset ?? at;
}

/** The record frame of `seq` in `s`. */
export function frameOf(s: SpecSegment, seq: number): V2FrameOk {
  const f = s.frames.find((x) => x.seq === seq);
  if (!f) throw new Error(`no record ${seq} in ${s.name}`);
  return f;
}

/** Where the payload of a record frame starts. */
export const payloadAt = (f: V2FrameOk): number => f.offset + f.size - f.payload.length;

/** What a plain open (no repair) of the log does: its error, or a full read's records and error. */
export async function openPlain(
  sim: SimPlatform,
  opts: LogOpts,
): Promise<{ open: KhipuError | null; read: KhipuError | null; got: Rec[] }> {
  const store = await Store.open(DIR, { ...opts, platform: sim });
  try {
    let log: Log;
    try {
      log = await store.log(LOG);
    } catch (err) {
      return { open: err as KhipuError, read: null, got: [] };
    }
    const got: Rec[] = [];
    try {
      for await (const r of log.read({ from: log.firstSeq })) {
        got.push({ seq: r.seq, timestamp: r.timestamp, data: r.data.slice() });
      }
      return { open: null, read: null, got };
    } catch (err) {
      return { open: null, read: err as KhipuError, got };
    }
  } finally {
    await store.close();
  }
}

/**
 * Without repair mode, damage inside a sealed segment, or before a newest segment's mark, is not
 * looked for at open: the open succeeds, and a reader reaching the first damaged record gets
 * `CorruptionError` naming the file, the frame's offset and the seq, after every record before.
 */
export async function assertFoundByReaders(p: Planted, opts: LogOpts): Promise<void> {
  const r = await openPlain(p.sim, opts);
  assert.equal(r.open, null, `a plain open: ${r.open}`);
  const first = frameOf(p.target, p.lost[0]);
  assert.equal(r.read?.code, "CORRUPTION", `a read: ${r.read}`);
  assert.deepEqual(
    { path: r.read.path, offset: r.read.offset, seq: r.read.seq },
    { path: p.target.path, offset: first.offset, seq: first.seq },
  );
  assertRecords(r.got, p.written.all.filter((x) => x.seq < first.seq), "read before the damage");
  assert.ok(same(p.sim.fileBytes(p.target.path), p.bytes!), "a plain open changes nothing");
}

/** `actual` deep-equals one of `options` (each given as ranges). */
function oneOf(actual: readonly Range[], options: Range[][], what: string): void {
  const got = showRanges(actual);
  assert.ok(
    options.some((o) => showRanges(o) === got),
    `${what}: ${got}, expected ${options.map((o) => showRanges(o) || "none").join(" or ")}`,
  );
}

/** What a repair left in the log directory, for one segment: how it must look. */
interface Expected {
  name: string;
  /** As it was (`seg`), as it was but for `prevEndSeq`, a run of a damaged one, or new. */
  kind: "as-it-was" | "header-rewritten" | "run" | "new-active";
  seg?: SpecSegment;
  run?: Range;
}

/**
 * Repairs `p`'s log (opened with `repair: true`) and checks everything the module doc lists. For a
 * damaged newest segment the log may go on past its end (seqs up to its `nextSeq` skipped, as a
 * gap), never below it.
 */
export async function checkRepaired(p: Planted, opts: LogOpts): Promise<void> {
  const { sim, target: t, written: w } = p;
  const segs = w.segs;
  const at = segs.indexOf(t);
  const next = segs[at + 1] ?? null;
  const newest = next === null;
  const origNext = segs.at(-1)!.endSeq;
  const byseq = new Map(w.all.map((r) => [r.seq, r]));
  const gone = new Set(p.lost);
  const intact = w.all.filter((r) => !gone.has(r.seq));
  const keptRuns = rangesOf(t.frames.map((f) => f.seq).filter((s) => !gone.has(s)));
  const tailLost = p.lost.includes(t.endSeq - 1);
  // What an earlier repair left: declared gaps, `.broken` copies and cursors, all to stay as they
  // are; this repair's copy goes to the first free `.broken` name.
  const earlier = segs.slice(1).flatMap((s) =>
    Array.from(
      { length: s.header.firstSeq - s.header.prevEndSeq },
      (_, i) => s.header.prevEndSeq + i,
    )
  );
  const others = new Map(
    files(sim).filter((n) => !SEG_NAME.test(n)).map((n) => [n, sim.fileBytes(`${LOG_DIR}/${n}`)!]),
  );
  let aside = `${t.name}.broken`;
  for (let n = 1; others.has(aside); n++) aside = `${t.name}.broken.${n}`;
  const asidePath = `${LOG_DIR}/${aside}`;

  let gaps: Range[];
  let after: Rec[];
  const store = await Store.open(DIR, { ...opts, platform: sim, repair: true });
  try {
    const log = await store.log(LOG);
    const nextSeq = log.nextSeq;
    if (newest && p.bytes) {
      assert.ok(nextSeq >= origNext, `nextSeq ${nextSeq} is below ${origNext}`);
    } else assert.equal(nextSeq, origNext, "nextSeq");
    const skipped = Array.from({ length: nextSeq - origNext }, (_, i) => origNext + i);
    gaps = rangesOf([...earlier, ...p.lost, ...skipped]);
    assert.equal(showRanges(log.gaps), showRanges(gaps), "log.gaps: exactly the damaged seqs");
    // Past a damaged newest segment, the seqs between its last kept record and the log's new
    // segment are named (they may be more than the damaged ones: none of them can be reused).
    const keptEnd = keptRuns.at(-1)?.to ?? t.header.prevEndSeq;
    const skips = newest && p.bytes !== null && nextSeq > keptEnd;
    assert.deepEqual(
      log.openReport.skippedSeqs,
      skips ? { from: keptEnd, to: nextSeq } : null,
      "openReport.skippedSeqs",
    );

    // One action per segment acted on.
    const actions = [...log.openReport.repaired].sort((a, b) => a.path < b.path ? -1 : 1);
    const lostTail = rangesOf(p.lost).at(-1);
    const expected: [string, string, string | null][] = [];
    if (p.bytes) expected.push([t.path, "salvaged", asidePath]);
    if (next && (!p.bytes || tailLost)) expected.push([next.path, "gap-declared", null]);
    assert.deepEqual(
      actions.map((a) => [a.path, a.kind, a.movedTo]),
      expected,
      `openReport.repaired: ${JSON.stringify(actions)}`,
    );
    for (const a of actions) {
      assert.equal(typeof a.reason, "string");
      assert.ok(a.reason.length > 0, "a reason");
      if (a.kind === "salvaged") {
        assert.equal(showRanges(a.kept), showRanges(keptRuns), "salvaged: kept");
        oneOf(
          a.lost,
          [rangesOf(p.lost), rangesOf([...p.lost, ...skipped])],
          "salvaged: lost",
        );
        const { frame, byte } = p.offset!;
        assert.ok(
          frame <= a.offset && a.offset <= byte,
          `salvaged: offset ${a.offset}: the first damaged byte is ${byte}, in the unit (frame, header, ...) at ${frame}`,
        );
      } else {
        const whole = [{ from: next!.header.firstSeq, to: next!.endSeq }];
        oneOf(a.kept, [[], whole], "gap-declared: kept");
        if (p.bytes) oneOf(a.lost, [[], [lostTail!]], "gap-declared: lost");
        else {
          const e1 = segs[at - 1].endSeq;
          assert.equal(showRanges(a.lost), showRanges([{ from: e1, to: next!.header.prevEndSeq }]));
        }
      }
    }

    // The segments: each intact run of the damaged one sealed under its first seq, the rest as
    // they were (the one after a gap the repair declared: but for its prevEndSeq).
    const want: Expected[] = [];
    for (const s of segs) {
      if (s !== t) {
        const rewritten = s === next && (!p.bytes || tailLost);
        want.push({ name: s.name, kind: rewritten ? "header-rewritten" : "as-it-was", seg: s });
      } else if (p.bytes) {
        for (const run of keptRuns) want.push({ name: segName(run.from), kind: "run", run });
      }
    }
    if (newest && p.bytes) want.push({ name: segName(nextSeq), kind: "new-active" });
    assert.deepEqual(
      files(sim),
      [...want.map((e) => e.name), ...others.keys(), ...(p.bytes ? [aside] : [])].sort(),
      "the log's files",
    );
    for (const [n, bytes] of others) assert.ok(same(sim.fileBytes(`${LOG_DIR}/${n}`), bytes), n);
    let prevEnd = segs[0].header.prevEndSeq;
    want.forEach((e, i) => {
      const bytes = sim.fileBytes(`${LOG_DIR}/${e.name}`)!;
      const d = decodeSegment(e.name, bytes, i < want.length - 1);
      assert.equal(d.header.firstSeq, parseInt(e.name, 10), `${e.name}: firstSeq = its name`);
      assert.equal(d.header.prevEndSeq, prevEnd, `${e.name}: prevEndSeq`);
      assert.ok(same(d.header.logId, t.header.logId), `${e.name}: the log's id`);
      if (e.kind === "as-it-was") assert.ok(same(bytes, e.seg!.bytes), `${e.name} unchanged`);
      if (e.kind === "header-rewritten") {
        const was = e.seg!.bytes;
        const keep = (a: number, b: number) => same(bytes.subarray(a, b), was.subarray(a, b));
        assert.ok(
          bytes.length === was.length && keep(0, 48) && keep(56, 76) && keep(80, was.length),
          `${e.name}: only prevEndSeq (and its CRC) changed`,
        );
      }
      if (e.kind === "run") {
        const seqs = d.frames.map((f) => f.seq);
        assert.equal(showRanges(rangesOf(seqs)), showRanges([e.run!]), `${e.name}: its records`);
        assert.equal(d.endSeq, e.run!.to, `${e.name}: its seal`);
        for (const f of d.frames) {
          const r = byseq.get(f.seq)!;
          assert.equal(f.timestamp, r.timestamp, `${e.name}: record ${f.seq}'s timestamp`);
          assert.ok(same(f.payload, r.data), `${e.name}: record ${f.seq}'s bytes`);
        }
      }
      if (e.kind === "new-active") assert.equal(d.frames.length, 0, `${e.name}: a new segment`);
      prevEnd = d.endSeq;
    });
    if (p.bytes) {
      assert.ok(same(sim.fileBytes(asidePath), p.bytes), `${aside}: the damaged bytes`);
    }

    assertRecords(await readAll(log), intact, "after the repair");

    // An append gets a fresh seq; reads and cursors starting in a gap go on at the next record.
    const data = new Uint8Array(1500).fill(0xab);
    const appendedAt = await log.append(data);
    assert.equal(appendedAt, nextSeq, "an append after the repair");
    assert.ok(appendedAt >= p.above, `appended at ${appendedAt}: a seq the damaged log held`);
    after = await readAll(log);
    assertRecords(after.slice(0, -1), intact, "after an append");
    assert.ok(after.at(-1)!.seq === nextSeq && same(after.at(-1)!.data, data), "the appended one");
    const cursor = await log.cursor("repair-check");
    try {
      for (const g of gaps) {
        const want = after.find((r) => r.seq >= g.to)!.seq;
        for (const from of new Set([g.from, g.to - 1])) {
          assert.equal(await firstSeq(log.read({ from })), want, `read from ${from} (in a gap)`);
          await cursor.reset(from);
          assert.equal(await firstSeq(cursor.read()), want, `a cursor at ${from} (in a gap)`);
        }
      }
    } finally {
      await cursor.close();
    }
    const v = await log.verify();
    assert.deepEqual(v.problems, [], "verify after the repair");
    assert.equal(v.ok, true);
    assert.equal(showRanges(v.gaps), showRanges(gaps), "verify: gaps");
    assert.equal(v.records, intact.length + 1, "verify: records");
  } finally {
    await store.close();
  }

  // Reopened, without repair and with: the same records and gaps, nothing more repaired.
  for (const repair of [false, true]) {
    const s = await Store.open(DIR, { ...opts, platform: sim, repair });
    try {
      const log = await s.log(LOG);
      assert.deepEqual(log.openReport.repaired, [], `reopened (repair: ${repair}): nothing to do`);
      assert.equal(showRanges(log.gaps), showRanges(gaps), `reopened (repair: ${repair}): gaps`);
      assertRecords(await readAll(log), after, `reopened (repair: ${repair})`);
    } finally {
      await s.close();
    }
  }
  if (p.bytes) assert.ok(same(sim.fileBytes(asidePath), p.bytes), `${aside} kept`);
}

/** The seq of the first record an iterator yields (null if none); the iterator is closed. */
async function firstSeq(it: AsyncIterable<{ seq: number }>): Promise<number | null> {
  for await (const r of it) return r.seq;
  return null;
}

// ---- the crash exploration ----

/** Modes whose outcome depends on the seed get several seeds; the others are one state each. */
export const SEEDS: Partial<Record<CrashMode, number[]>> = {
  prefix: [1, 2, 3],
  subset: [1, 2, 3],
  torn: [1, 2, 3],
  zeros: [1, 2, 3],
};

/** The records appended after the repair (in this order), and the one after a reopen. */
const AFTER_REPAIR = [rec(100), rec(101)];
const AFTER_REOPEN = rec(200);

/** A record as first read: its bytes (as text) and where. */
interface SeenRecord {
  bytes: string;
  where: string;
  /** Its position in the map it was added to. */
  order: number;
}

/**
 * Every record reads have yielded: seq -> its bytes, and where it was first read. Only ever grows.
 * `snapshot()` is a cheap copy (what it saw then, plus what is added to the copy later; additions
 * to the original after the snapshot are not visible to it), taken at every crash point.
 */
export class Seen {
  readonly #own = new Map<number, SeenRecord>();
  readonly #parent: Seen | null;
  readonly #limit: number;

  constructor(parent: Seen | null = null, limit = 0) {
    this.#parent = parent;
    this.#limit = limit;
  }

  /** A copy as this is now. */
  snapshot(): Seen {
    return new Seen(this, this.#own.size);
  }

  #lookup(seq: number, limit: number): SeenRecord | undefined {
    const e = this.#own.get(seq);
    if (e && e.order < limit) return e;
    return this.#parent === null ? undefined : this.#parent.#lookup(seq, this.#limit);
  }

  /** The record first read at `seq`, if any. */
  get(seq: number): SeenRecord | undefined {
    return this.#lookup(seq, Infinity);
  }

  /** Remembers the record at `seq` (not seen before). */
  add(seq: number, bytes: string, where: string): void {
    this.#own.set(seq, { bytes, where, order: this.#own.size });
  }
}

/** What an exploration covered and found. */
export interface Explored {
  points: number;
  states: number;
  chains: number;
  failures: string[];
}

const describeBytes = (d: string) => {
  const b = d.split(",");
  return `${b.length} bytes [${b.slice(0, 2).join(",")}..]`;
};

/** Records what reads yield in `seen`; returns the seqs that came back with other bytes. */
export function remember(seen: Seen, got: readonly Got[], where: string): string[] {
  const reused: string[] = [];
  for (const r of got) {
    const bytes = r.data.join(",");
    const was = seen.get(r.seq);
    if (!was) seen.add(r.seq, bytes, where);
    else if (was.bytes !== bytes) {
      reused.push(
        `seq ${r.seq} read as ${describeBytes(was.bytes)} ${was.where}, then as ` +
          `${describeBytes(bytes)} ${where}`,
      );
    }
  }
  return reused;
}

/**
 * The originals (by file name) whose bytes are nowhere on `fs`: not under their own name, nor
 * under `<name>.broken` or `<name>.broken.N`.
 */
export function missing(fs: SimPlatform, originals: Map<string, Uint8Array>): string[] {
  const files = fs.listFiles().filter((p) => p.startsWith(`${LOG_DIR}/`));
  const out: string[] = [];
  for (const [name, bytes] of originals) {
    const re = new RegExp(`^${name.replace(".", "\\.")}(\\.broken(\\.\\d+)?)?$`);
    const found = files.some((p) =>
      re.test(p.slice(LOG_DIR.length + 1)) && same(fs.fileBytes(p), bytes)
    );
    if (!found) out.push(name);
  }
  return out;
}

/** The `.broken` files on `fs` (path -> bytes). */
function brokenCopies(fs: SimPlatform): Map<string, Uint8Array> {
  const paths = fs.listFiles().filter((p) => /\.seg\.broken(\.\d+)?$/.test(p));
  return new Map(paths.map((p) => [p, fs.fileBytes(p)!]));
}

/** The `.broken` files of `copies` that `fs` no longer holds byte for byte. */
function deletedCopies(fs: SimPlatform, copies: Map<string, Uint8Array>): string[] {
  return [...copies].filter(([p, bytes]) => !same(fs.fileBytes(p), bytes)).map(([p]) => p);
}

/**
 * Checks the records of a log after the damage: `d.kept` first, then only appended records, at
 * seqs from `d.above` on, in append order: a prefix of AFTER_REPAIR at least `acked` long, then AFTER_REOPEN if `reopened`
 * says so ("yes": it must be there, "maybe": it may, "no": it must not). Returns what is wrong (or
 * null) and how many of AFTER_REPAIR are there.
 */
function checkRecords(
  got: readonly Got[],
  d: Damaged,
  acked: number,
  reopened: "yes" | "maybe" | "no",
): { bad: string | null; appended: number } {
  const kept = d.kept;
  for (let i = 0; i < kept.length; i++) {
    if (!got[i] || got[i].seq !== kept[i].seq || !same(got[i].data, kept[i].data)) {
      const bad = `intact record ${kept[i].seq} lost or changed (log has ${got.length}: ` +
        `${showRanges(rangesOf(got.map((r) => r.seq)))})`;
      return { bad, appended: 0 };
    }
  }
  const tail = got.slice(kept.length);
  const reused = tail.find((r) => r.seq < d.above);
  if (reused) {
    const bad = `a record after the intact ones has seq ${reused.seq}, which the damaged log held`;
    return { bad, appended: 0 };
  }
  let m = 0;
  while (m < tail.length && m < AFTER_REPAIR.length && same(tail[m].data, AFTER_REPAIR[m])) m++;
  if (m < acked) {
    return { bad: `an append after the repair is lost (${m} of ${acked} there)`, appended: m };
  }
  const rest = tail.slice(m);
  if (rest.length === 1 && same(rest[0].data, AFTER_REOPEN) && reopened !== "no") {
    return { bad: null, appended: m };
  }
  if (rest.length === 0 && reopened !== "yes") return { bad: null, appended: m };
  const seqs = tail.map((r) => r.seq).join(",");
  return {
    bad: `records after the intact ones are not the appended ones: seqs ${seqs} ` +
      `(${m} appended first)`,
    appended: m,
  };
}

interface Point {
  call: number;
  snap: SimSnapshot;
  seen: Seen;
  /** Appends resolved by then (of AFTER_REPAIR, or of AFTER_REOPEN). */
  acked: number;
}

/**
 * Freezes `sim` now (call 0) and after every disk-changing call while `run` runs, with a copy of
 * `seen` and `acked()` as they were then.
 */
async function recording(
  sim: SimPlatform,
  seen: Seen,
  acked: () => number,
  run: () => Promise<void>,
): Promise<Point[]> {
  const points: Point[] = [{ call: 0, snap: sim.freeze(), seen: seen.snapshot(), acked: acked() }];
  sim.onCall = (c) => {
    if (c.mutates) {
      points.push({ call: c.n, snap: sim.freeze(), seen: seen.snapshot(), acked: acked() });
    }
  };
  try {
    await run();
  } finally {
    sim.onCall = undefined;
  }
  return points;
}

/** Opens the log on `fs`, runs `body` on it, closes; errors are returned, not thrown. */
async function withLog(
  fs: SimPlatform,
  repair: boolean,
  body: (log: Log) => Promise<void>,
): Promise<unknown> {
  let store: Store;
  try {
    store = await Store.open(DIR, { ...STORE_OPTS, platform: fs, repair });
  } catch (err) {
    return err;
  }
  try {
    await body(await store.log(LOG));
    return null;
  } catch (err) {
    return err;
  } finally {
    await store.close();
  }
}

const message = (err: unknown) =>
  err instanceof Error ? `${err.name}: ${err.message}` : String(err);

/**
 * The exploration described in the module doc, on `sim` holding the damaged log `d`. `seen` is
 * updated with what the repair-mode open and its appends read.
 */
export async function exploreRepair(sim: SimPlatform, d: Damaged): Promise<Explored> {
  const failures: string[] = [];
  const seen = d.seen;
  let acked = 0;
  let gaps = "";
  const points = await recording(sim, seen, () => acked, async () => {
    const err = await withLog(sim, true, async (log) => {
      gaps = showRanges(log.gaps);
      failures.push(...remember(seen, await readAll(log), "after the repair"));
      for (const r of AFTER_REPAIR) {
        await log.append(r);
        acked++;
      }
      const got = await readAll(log);
      failures.push(...remember(seen, got, "after appending to the repaired log"));
      const { bad } = checkRecords(got, d, AFTER_REPAIR.length, "no");
      if (bad) failures.push(`the repaired log: ${bad}`);
    });
    if (err) failures.push(`the repair-mode open: ${message(err)}`);
  });
  const lostByRepair = missing(sim, d.originals);
  if (lostByRepair.length) failures.push(`the repair lost the bytes of ${lostByRepair.join(", ")}`);
  /** The log after a repair that a crash interrupted is the one the uninterrupted repair left. */
  const sameGaps = (log: Log) =>
    d.gapsMayDiffer || showRanges(log.gaps) === gaps
      ? null
      : `gaps ${showRanges(log.gaps) || "none"}, not ${
        gaps || "none"
      } as the uninterrupted repair left`;

  let states = 0;
  let chains = 0;
  for (const p of points) {
    for (const mode of CRASH_MODES) {
      for (const seed of SEEDS[mode] ?? [p.call]) {
        const fs = p.snap.crash(mode, seed);
        const where = `crash after call #${p.call}, ${mode} seed ${seed} [${fs.lastCrash?.detail}]`;
        states++;
        const fail = (what: string) => failures.push(`${where}: ${what}`);
        const lost = missing(fs, d.originals);
        if (lost.length) {
          fail(`bytes of ${lost.join(", ")} lost at the crash`);
          continue;
        }
        const copies = brokenCopies(fs);
        const known = p.seen.snapshot();

        // A plain open: refuses the damage, or (the repair done) keeps what it must.
        const plainErr = await withLog(fs, false, async (log) => {
          const got = await readAll(log);
          failures.push(...remember(known, got, `${where}, then a plain open`));
          const bad = checkRecords(got, d, p.acked, "no").bad ?? sameGaps(log);
          if (bad) fail(`plain open: ${bad}`);
        });
        if (plainErr && (plainErr as { code?: string }).code !== "CORRUPTION") {
          fail(`plain open: ${message(plainErr)}`);
        }

        // A repair-mode open, then an append: recorded, to crash once more below.
        let acked2 = 0;
        // The appended records this open found: durable, so a later crash must keep them too.
        let present = p.acked;
        const points2 = await recording(fs, known, () => acked2, async () => {
          const err = await withLog(fs, true, async (log) => {
            const got = await readAll(log);
            failures.push(...remember(known, got, `${where}, then a repair-mode open`));
            const r = checkRecords(got, d, p.acked, "no");
            const bad = r.bad ?? sameGaps(log);
            if (bad) fail(`repair-mode open: ${bad}`);
            present = Math.max(present, r.appended);
            await log.append(AFTER_REOPEN);
            acked2++;
            const again = await readAll(log);
            failures.push(...remember(known, again, `${where}, then an append`));
            const after = checkRecords(again, d, present, "yes").bad;
            if (after) fail(`after an append: ${after}`);
          });
          if (err) fail(`repair-mode open: ${message(err)}`);
        });
        const after = missing(fs, d.originals);
        if (after.length) fail(`bytes of ${after.join(", ")} lost by the opens after the crash`);
        const deleted = deletedCopies(fs, copies);
        if (deleted.length) fail(`${deleted.join(", ")} deleted or changed by the opens after it`);
        const leftovers = fs.listFiles().filter((f) => f.endsWith(".seg.repair"));
        if (leftovers.length) fail(`${leftovers.join(", ")} left after a repair-mode open`);

        // A second crash, during that open or its append, and a repair-mode open after it.
        const rnd = seededRandom(states);
        const q = points2[Math.floor(rnd() * points2.length)];
        const mode2 = CRASH_MODES[Math.floor(rnd() * CRASH_MODES.length)];
        const seed2 = Math.floor(rnd() * 1000);
        const fs2 = q.snap.crash(mode2, seed2);
        const where2 = `${where}, then a crash after call #${q.call} of the reopen, ${mode2} ` +
          `seed ${seed2} [${fs2.lastCrash?.detail}]`;
        chains++;
        const known2 = q.seen.snapshot();
        const err2 = await withLog(fs2, true, async (log) => {
          const got = await readAll(log);
          failures.push(...remember(known2, got, `${where2}, then a repair-mode open`));
          const { bad } = checkRecords(got, d, present, q.acked > 0 ? "yes" : "maybe");
          const bad2 = bad ?? sameGaps(log);
          if (bad2) failures.push(`${where2}: ${bad2}`);
        });
        if (err2) failures.push(`${where2}: repair-mode open: ${message(err2)}`);
        const lost2 = missing(fs2, d.originals);
        if (lost2.length) failures.push(`${where2}: bytes of ${lost2.join(", ")} lost`);
        const deleted2 = deletedCopies(fs2, copies);
        if (deleted2.length) failures.push(`${where2}: ${deleted2.join(", ")} deleted or changed`);
      }
    }
  }
  return { points: points.length, states, chains, failures };
}
