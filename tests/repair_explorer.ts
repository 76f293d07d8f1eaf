/**
 * Crash-point exploration of repair mode, shared by `tests/crash_repair.test.ts` (a damaged
 * newest segment) and `tests/crash_repair_steps.test.ts` (a damaged sealed segment, segments after
 * it). Not itself a test file.
 *
 * A log on a {@linkcode SimPlatform} holds damage that open finds. One repair-mode open runs, then
 * reads, two appends, reads and a close; the disk is frozen before its first call and after every
 * call that changed it (a call that changes nothing, a read or a stat, leaves the state the call
 * before it left), with what reads had yielded and which appends had resolved by then. Each
 * frozen state is crashed in every mode (several seeds for the seeded ones), and on the crashed
 * disk:
 *
 * 1. the damaged segment's original bytes, and each later segment's, exist byte for byte under
 *    their own name or a `.broken` / `.broken.N` name (nothing set aside is ever deleted), at the
 *    crash and after every open that follows;
 * 2. a plain open (no repair) either fails with `CorruptionError` or yields a log that keeps every
 *    record before the damage;
 * 3. a repair-mode open succeeds; the log starts with every record before the damage, byte for
 *    byte, then holds only records appended after the repair, in order, every resolved one among
 *    them; an append after it succeeds too; no `*.seg.repair` file is left;
 * 4. no seq is given to two different records: every record read, before the damage, after the
 *    repair, and after each crash and open, is remembered by its seq, and a seq never comes back
 *    with other bytes (the log skips the seqs it set aside, it never reuses them);
 * 5. a sequence of crashes: the repair-mode open of (3), its append and its close are frozen after
 *    every disk-changing call too, and one of those states (chosen by a seeded draw per state) is
 *    crashed again and reopened with repair: (1), (3) and (4) hold again, with everything read up
 *    to the second crash remembered.
 *
 * @module
 */
import { Store, SyncPolicy } from "../mod.ts";
import type { Log } from "../src/log.ts";
import {
  CRASH_MODES,
  type CrashMode,
  seededRandom,
  type SimPlatform,
  type SimSnapshot,
} from "../src/testing/sim.ts";
import { seed, seededCrc } from "./spec_codec.ts";

/** Where the store lives, and its one log. */
export const DIR = "/s";
export const LOG = "a";
export const LOG_DIR: string = `${DIR}/${LOG}`;
/** Every write synced before its append resolves; 4096-byte segments (five 700-byte records). */
export const STORE_OPTS: { syncPolicy: SyncPolicy; segmentBytes: number } = {
  syncPolicy: SyncPolicy.always(),
  segmentBytes: 4096,
};
/** 700-byte records, each filled with one byte value: `rec(i)` is filled with `i % 250 + 1`. */
export const rec = (i: number): Uint8Array => new Uint8Array(700).fill((i % 250) + 1);
/** A segment's file name. */
export const segName = (firstSeq: number): string => `${String(firstSeq).padStart(20, "0")}.seg`;

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

/** One record as read. */
export interface Got {
  seq: number;
  data: Uint8Array;
}

/** The damaged log, before the repair-mode open. */
export interface Damaged {
  /** Every record ever read (or, for v1 bytes built by hand, written) before the damage. */
  seen: Seen;
  /** The records before the damage, seq 0 on: a repair must keep them all. */
  kept: Got[];
  /** File name (in the log directory) -> bytes, of the damaged segment and each later one. */
  originals: Map<string, Uint8Array>;
}

/** What an exploration covered and found. */
export interface Explored {
  points: number;
  states: number;
  chains: number;
  failures: string[];
}

function same(a: Uint8Array | null, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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

/** Every record of `log`, from its first. */
export async function readAll(log: Log): Promise<Got[]> {
  const out: Got[] = [];
  for await (const r of log.read({ from: log.firstSeq })) {
    out.push({ seq: r.seq, data: r.data.slice() });
  }
  return out;
}

/** The records of the log on `sim`, read through a store opened (and closed) for it. */
export async function readLog(sim: SimPlatform, repair: boolean): Promise<Got[]> {
  const s = await Store.open(DIR, { ...STORE_OPTS, platform: sim, repair });
  try {
    return await readAll(await s.log(LOG));
  } finally {
    await s.close();
  }
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

/**
 * Checks the records of a log after the damage: `kept` first, then only appended records, in
 * append order: a prefix of AFTER_REPAIR at least `acked` long, then AFTER_REOPEN if `reopened`
 * says so ("yes": it must be there, "maybe": it may, "no": it must not). Returns what is wrong (or
 * null) and how many of AFTER_REPAIR are there.
 */
function checkRecords(
  got: readonly Got[],
  kept: readonly Got[],
  acked: number,
  reopened: "yes" | "maybe" | "no",
): { bad: string | null; appended: number } {
  for (let i = 0; i < kept.length; i++) {
    if (!got[i] || got[i].seq !== kept[i].seq || !same(got[i].data, kept[i].data)) {
      const bad = `record ${
        kept[i].seq
      } (before the damage) lost or changed (log has ${got.length})`;
      return { bad, appended: 0 };
    }
  }
  const tail = got.slice(kept.length);
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
    bad: `records after the damage are not the appended ones: seqs ${seqs} (${m} appended first)`,
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
  const points = await recording(sim, seen, () => acked, async () => {
    const err = await withLog(sim, true, async (log) => {
      failures.push(...remember(seen, await readAll(log), "after the repair"));
      for (const r of AFTER_REPAIR) {
        await log.append(r);
        acked++;
      }
      const got = await readAll(log);
      failures.push(...remember(seen, got, "after appending to the repaired log"));
      const { bad } = checkRecords(got, d.kept, AFTER_REPAIR.length, "no");
      if (bad) failures.push(`the repaired log: ${bad}`);
    });
    if (err) failures.push(`the repair-mode open: ${message(err)}`);
  });
  const lostByRepair = missing(sim, d.originals);
  if (lostByRepair.length) failures.push(`the repair lost the bytes of ${lostByRepair.join(", ")}`);

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
        const known = p.seen.snapshot();

        // A plain open: refuses the damage, or (the repair done) keeps what it must.
        const plainErr = await withLog(fs, false, async (log) => {
          const got = await readAll(log);
          failures.push(...remember(known, got, `${where}, then a plain open`));
          const { bad } = checkRecords(got, d.kept, p.acked, "no");
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
            const r = checkRecords(got, d.kept, p.acked, "no");
            if (r.bad) fail(`repair-mode open: ${r.bad}`);
            present = Math.max(present, r.appended);
            await log.append(AFTER_REOPEN);
            acked2++;
            const again = await readAll(log);
            failures.push(...remember(known, again, `${where}, then an append`));
            const { bad } = checkRecords(again, d.kept, present, "yes");
            if (bad) fail(`after an append: ${bad}`);
          });
          if (err) fail(`repair-mode open: ${message(err)}`);
        });
        const after = missing(fs, d.originals);
        if (after.length) fail(`bytes of ${after.join(", ")} lost by the opens after the crash`);
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
          const { bad } = checkRecords(got, d.kept, present, q.acked > 0 ? "yes" : "maybe");
          if (bad) failures.push(`${where2}: ${bad}`);
        });
        if (err2) failures.push(`${where2}: repair-mode open: ${message(err2)}`);
        const lost2 = missing(fs2, d.originals);
        if (lost2.length) failures.push(`${where2}: bytes of ${lost2.join(", ")} lost`);
      }
    }
  }
  return { points: points.length, states, chains, failures };
}
