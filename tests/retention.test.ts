// Retention and per-log options (issue 15), on the simulator and on the real disk:
// 1. each limit alone and combined, checked against an independent computation from the segment
//    files on disk (names, sizes, the records' timestamps), seeded combinations included; the
//    boundaries of "a segment goes only when all its records are past a limit";
// 2. keepUnconsumed with cursors in this process and in a child process (a read-only store): it
//    holds the age and count limits until the commit; maxBytes wins and the cursor left behind
//    gets RECORDS_REMOVED on its next read;
// 3. retention while readers are mid-segment (the writer's, a read-only store's, another
//    process's): each finishes what it had open or gets RECORDS_REMOVED, never damage or a gap;
// 4. roll(); the background timer (a quiet log trimmed by age with no call; a child that never
//    closes its store still exits);
// 5. per-log options: overrides, refusals, reopening with other or the same options.
// Crash safety of retention is tests/crash*.test.ts's.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync } from "node:fs";
import { join } from "node:path";
import {
  InvalidArgumentError,
  type KhipuError,
  type Log,
  ReadOnlyError,
  RecordsRemovedError,
  type RetentionOptions,
  Store,
  type StoreOptions,
  SyncPolicy,
} from "../mod.ts";
import { recordingPlatform, seededRandom, SimPlatform } from "../testing.ts";
import type { Platform } from "../src/platform/types.ts";
import { currentRuntime, ROOT, runtimeCommand } from "./fixtures/runtimes.ts";
import { isPayload, payload } from "./fixtures/retention/payload.ts";
import { childEnv, realDisk, within } from "./helpers.ts";

const disk = realDisk("retention");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SEG = 4096;

/** A store directory on a platform, and a copy of it as it is now (for one case each). */
interface Env {
  kind: "sim" | "disk";
  platform: Platform;
  dir: string;
  clone(): Env;
}

function simEnv(sim = new SimPlatform()): Env {
  // A process crash keeps everything: an identical, independent file system.
  return { kind: "sim", platform: sim, dir: "/data", clone: () => simEnv(sim.crash("all")) };
}

function diskEnv(dir = join(disk.tempDir(), "s")): Env {
  return {
    kind: "disk",
    platform: disk.platform(),
    dir,
    clone() {
      const copy = join(disk.tempDir(), "s");
      cpSync(dir, copy, { recursive: true });
      return diskEnv(copy);
    },
  };
}

const ENVS: ReadonlyArray<readonly [Env["kind"], () => Env]> = [
  ["sim", () => simEnv()],
  ["disk", () => diskEnv()],
];

function open(env: Env, o: StoreOptions = {}): Promise<Store> {
  return Store.open(env.dir, {
    platform: env.platform,
    segmentBytes: SEG,
    syncPolicy: SyncPolicy.osManaged(),
    ...o,
  });
}

/**
 * `Date.now` under the test's control (appends stamp records with it, retention compares with it);
 * timers still run on the real clock. Restored by `restore()`.
 */
function fakeClock(start: number) {
  const real = Date.now;
  let now = start;
  Date.now = () => now;
  return {
    get now() {
      return now;
    },
    set(t: number) {
      now = t;
    },
    restore() {
      Date.now = real;
    },
  };
}

/** Appends `n` records `payload(seq)`, the clock moving by `gap(i)` ms before each. */
async function fill(
  log: Log,
  n: number,
  clock?: ReturnType<typeof fakeClock>,
  gap: (i: number) => number = () => 1000,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    clock?.set(clock.now + gap(i));
    await log.append(payload(log.nextSeq));
  }
}

/** A segment file as the oracle sees it, from the disk and the records' timestamps alone. */
interface SegFile {
  firstSeq: number;
  bytes: number;
  /** One past its last record; null for the newest (the active) one. */
  endSeq: number | null;
  /** Its last record's timestamp (sealed ones). */
  lastTimestamp: number;
}

async function segmentFiles(platform: Platform, logDir: string, log: Log): Promise<SegFile[]> {
  const names = (await platform.readdir(logDir)).filter((n) => /^\d{20}\.seg$/.test(n)).sort();
  const stamps = new Map<number, number>();
  for await (const r of log.read()) stamps.set(r.seq, r.timestamp);
  const out: SegFile[] = [];
  for (const [i, name] of names.entries()) {
    const st = await platform.stat(`${logDir}/${name}`);
    const endSeq = i + 1 < names.length ? Number(names[i + 1].slice(0, 20)) : null;
    out.push({
      firstSeq: Number(name.slice(0, 20)),
      bytes: st!.size,
      endSeq,
      lastTimestamp: endSeq === null ? NaN : stamps.get(endSeq - 1)!,
    });
  }
  return out;
}

/**
 * The log's first seq after retention, computed from the segment files: the oldest sealed
 * segments go while each has all its records past a limit: its last record older than
 * `now - maxAgeMs`, or all of it outside the newest `maxRecords`, (age and count only if no
 * cursor is below its end, under keepUnconsumed), or the files from it on exceed `maxBytes`.
 */
function expectedFirst(
  segs: readonly SegFile[],
  limits: RetentionOptions,
  now: number,
  nextSeq: number,
  cursors: readonly number[],
): number {
  let total = segs.reduce((n, s) => n + s.bytes, 0);
  let first = segs[0].firstSeq;
  for (const s of segs) {
    if (s.endSeq === null) break;
    const held = limits.keepUnconsumed === true && cursors.some((c) => c < s.endSeq!);
    const byAge = limits.maxAgeMs !== undefined && s.lastTimestamp < now - limits.maxAgeMs;
    const byCount = limits.maxRecords !== undefined && nextSeq - s.endSeq >= limits.maxRecords;
    const byBytes = limits.maxBytes !== undefined && total > limits.maxBytes;
    if (!(byBytes || (!held && (byAge || byCount)))) break;
    total -= s.bytes;
    first = s.endSeq;
  }
  return first;
}

/** Every record of the log is the one appended, from firstSeq to nextSeq, in order. */
async function assertIntact(log: Log): Promise<void> {
  let next = log.firstSeq;
  for await (const r of log.read()) {
    assert.equal(r.seq, next++, "records in order, no gap");
    assert.ok(isPayload(r.data, r.seq), `record ${r.seq} is the one appended`);
  }
  assert.equal(next, log.nextSeq);
}

/**
 * Opens a clone of `base` with `limits` (cursors at `cursors` made first, without retention), runs
 * `enforceRetention()` at clock time `now` and checks it against the oracle: the result, the log's
 * first seq, the files left, the records left.
 */
async function checkCut(
  base: Env,
  limits: RetentionOptions,
  now: number,
  cursors: readonly number[] = [],
): Promise<{ first: number; removed: number }> {
  const env = base.clone();
  if (cursors.length > 0) {
    const s = await open(env);
    const log = await s.log("r");
    for (const [i, p] of cursors.entries()) await (await log.cursor(`c${i}`)).reset(p);
    await s.close();
  }
  const store = await open(env);
  try {
    const clock = fakeClock(now);
    try {
      const log = await store.log("r", { retention: limits });
      const before = await segmentFiles(env.platform, log.path, log);
      const want = expectedFirst(before, limits, now, log.nextSeq, cursors);
      const what = `${JSON.stringify(limits)} at ${now}, cursors ${cursors.join()}`;
      const r = await log.enforceRetention();
      const gone = before.filter((s) => s.endSeq !== null && s.endSeq <= want).length;
      assert.deepEqual(r, { removedSegments: gone, removedRecords: want, firstSeq: want }, what);
      assert.equal(log.firstSeq, want, what);
      const after = await segmentFiles(env.platform, log.path, log);
      assert.deepEqual(after, before.slice(gone), `${what}: the files left`);
      await assertIntact(log);
      return { first: want, removed: gone };
    } finally {
      clock.restore();
    }
  } finally {
    await store.close();
  }
}

/** A store with log "r" of `n` records at 1 s apart from T0 + 1000, closed. */
const T0 = 1_700_000_000_000;
async function base(env: Env, n: number, gap?: (i: number) => number): Promise<SegFile[]> {
  const clock = fakeClock(T0);
  try {
    const store = await open(env);
    const log = await store.log("r");
    await fill(log, n, clock, gap);
    await store.close();
    const again = await open(env);
    const segs = await segmentFiles(env.platform, `${env.dir}/r`, await again.log("r"));
    await again.close();
    return segs;
  } finally {
    clock.restore();
  }
}

for (const [kind, makeEnv] of ENVS) {
  describe(`retention limits (${kind})`, () => {
    it("maxAgeMs: a sealed segment goes once its last record is older, not at the boundary", async () => {
      const env = makeEnv();
      const segs = await base(env, 20);
      assert.ok(segs.length >= 5, `${segs.length} segments`);
      const s1 = segs[1]; // goes once its last record is older than now - maxAgeMs
      const maxAgeMs = 60_000;
      const at = await checkCut(env, { maxAgeMs }, s1.lastTimestamp + maxAgeMs);
      assert.equal(at.first, s1.firstSeq, "exactly maxAgeMs old: still kept");
      const past = await checkCut(env, { maxAgeMs }, s1.lastTimestamp + maxAgeMs + 1);
      assert.equal(past.first, s1.endSeq, "1 ms older: gone");
      // Records of segment 1 but its last older than the limit: the segment stays whole.
      const mid = await checkCut(env, { maxAgeMs }, s1.lastTimestamp - 1 + maxAgeMs);
      assert.equal(mid.first, s1.firstSeq);
      const all = await checkCut(env, { maxAgeMs: 1 }, T0 + 10 ** 9);
      assert.equal(all.first, segs.at(-1)!.firstSeq, "every sealed one; the active one stays");
    });

    it("maxRecords: a segment goes once all of it is outside the newest maxRecords", async () => {
      const env = makeEnv();
      const segs = await base(env, 20);
      const next = 20;
      const s2 = segs[2];
      const boundary = next - s2.endSeq!; // the newest `boundary` records start at s2's end
      assert.equal((await checkCut(env, { maxRecords: boundary }, T0)).first, s2.endSeq);
      assert.equal((await checkCut(env, { maxRecords: boundary + 1 }, T0)).first, s2.firstSeq);
      assert.equal((await checkCut(env, { maxRecords: 0 }, T0)).first, segs.at(-1)!.firstSeq);
      assert.equal((await checkCut(env, { maxRecords: 20 }, T0)).removed, 0);
    });

    it("maxBytes: the oldest go until the files on disk (the active one's too) fit", async () => {
      const env = makeEnv();
      const segs = await base(env, 20);
      const total = segs.reduce((n, s) => n + s.bytes, 0);
      assert.equal((await checkCut(env, { maxBytes: total }, T0)).removed, 0, "exactly: fits");
      assert.equal((await checkCut(env, { maxBytes: total - 1 }, T0)).removed, 1);
      const fromThird = total - segs[0].bytes - segs[1].bytes;
      assert.equal((await checkCut(env, { maxBytes: fromThird }, T0)).removed, 2);
      assert.equal((await checkCut(env, { maxBytes: fromThird - 1 }, T0)).removed, 3);
      // Smaller than the active segment alone: every sealed one goes, the active one stays.
      const r = await checkCut(env, { maxBytes: 1 }, T0);
      assert.equal(r.first, segs.at(-1)!.firstSeq);
    });

    it("combined: the highest cut wins; maxBytes beats keepUnconsumed", async () => {
      const env = makeEnv();
      const segs = await base(env, 20);
      const total = segs.reduce((n, s) => n + s.bytes, 0);
      const byAge = { maxAgeMs: 60_000 };
      const ageNow = segs[1].lastTimestamp + 60_001; // age alone: 2 segments
      const byCount = { maxRecords: 20 - segs[3].endSeq! }; // count alone: 4 segments
      const bytesOne = { maxBytes: total - 1 }; // bytes alone: 1 segment
      assert.equal((await checkCut(env, { ...byAge, ...bytesOne }, ageNow)).removed, 2);
      assert.equal((await checkCut(env, { ...byAge, ...byCount }, ageNow)).removed, 4);
      assert.equal((await checkCut(env, { ...byCount, ...bytesOne }, ageNow)).removed, 4);
      const three = { maxBytes: total - segs[0].bytes - segs[1].bytes - 1 }; // 3 by bytes
      const held = { ...byAge, ...byCount, ...three, keepUnconsumed: true };
      // A cursor at 0 holds age and count back; bytes still take 3.
      assert.equal((await checkCut(env, held, ageNow, [0])).removed, 3);
      // A cursor past segment 3: the count limit acts again.
      assert.equal((await checkCut(env, held, ageNow, [segs[4].firstSeq])).removed, 4);
      // Two cursors: the lowest one holds.
      const lowest = [segs[4].firstSeq + 1, segs[2].firstSeq];
      assert.equal(
        (await checkCut(env, { ...byCount, keepUnconsumed: true }, T0, lowest)).removed,
        2,
      );
      // A cursor inside a segment holds that segment whole.
      const inside = [segs[1].firstSeq + 1];
      assert.equal(
        (await checkCut(env, { ...byCount, keepUnconsumed: true }, T0, inside)).removed,
        1,
      );
      // keepUnconsumed with no cursor at all holds nothing back.
      assert.equal((await checkCut(env, { ...byCount, keepUnconsumed: true }, T0)).removed, 4);
    });
  });
}

describe("retention limits: seeded combinations against the oracle (sim)", () => {
  it("200 random combinations of limits, clock and cursors", async () => {
    const env = simEnv();
    const rand = seededRandom(15);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    // Irregular gaps, some records in the same millisecond.
    const segs = await base(env, 60, (i) => (i % 7 === 3 ? 0 : int(1, 5000)));
    const total = segs.reduce((n, s) => n + s.bytes, 0);
    const lastTime = segs.at(-2)!.lastTimestamp + 10_000;
    let removedSome = 0;
    let heldBack = 0;
    for (let k = 0; k < 200; k++) {
      const limits: RetentionOptions = {};
      if (rand() < 0.5) limits.maxAgeMs = int(1, lastTime - T0);
      if (rand() < 0.5) limits.maxRecords = int(0, 70);
      if (rand() < 0.5) limits.maxBytes = int(1, total + 3000);
      if ((limits.maxAgeMs ?? limits.maxRecords) !== undefined && rand() < 0.4) {
        limits.keepUnconsumed = true;
      }
      const cursors = Array.from({ length: int(0, 2) }, () => int(0, 60));
      const now = int(T0, lastTime + 60_000);
      const r = await checkCut(env, limits, now, cursors);
      if (r.removed > 0) removedSome++;
      const free = { ...limits, keepUnconsumed: false };
      if (limits.keepUnconsumed && cursors.length > 0) {
        if (expectedFirst(segs, free, now, 60, []) > r.first) heldBack++;
      }
    }
    console.log(
      `retention oracle: 200 combinations, ${removedSome} removed segments, ` +
        `${heldBack} held back by a cursor`,
    );
    assert.ok(removedSome > 50 && heldBack > 5, `${removedSome} ${heldBack}`);
  });
});

/** What an iterator yields until it ends or throws. */
async function drain(it: AsyncIterator<{ seq: number; data: Uint8Array }>, seen: number[] = []) {
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      assert.ok(isPayload(r.value.data, r.value.seq), `record ${r.value.seq} intact`);
      seen.push(r.value.seq);
    }
    return { seen, error: null };
  } catch (error) {
    return { seen, error };
  }
}

/** `err` is RECORDS_REMOVED for a reader that wanted `position` of a log now at `firstSeq`. */
function assertRemoved(err: unknown, position: number, firstSeq: number): void {
  assert.ok(err instanceof RecordsRemovedError, `RecordsRemovedError, got ${err}`);
  assert.equal(err.code, "RECORDS_REMOVED");
  assert.equal(err.position, position);
  assert.equal(err.firstSeq, firstSeq);
}

for (const [kind, makeEnv] of ENVS) {
  describe(`keepUnconsumed and lagging cursors (${kind})`, () => {
    it("a cursor holds age and count limits until it commits past a segment", async () => {
      const env = makeEnv();
      const store = await open(env, { syncPolicy: SyncPolicy.always() });
      try {
        const log = await store.log("r", { retention: { maxRecords: 2, keepUnconsumed: true } });
        await log.append(payload(0));
        const cur = await log.cursor("c"); // at 0
        await fill(log, 19); // each rollover runs a pass: the cursor holds them all
        const segs = await segmentFiles(env.platform, log.path, log);
        assert.ok(segs.length >= 5);
        assert.deepEqual(await log.enforceRetention(), {
          removedSegments: 0,
          removedRecords: 0,
          firstSeq: 0,
        });
        await cur.commit(segs[2].firstSeq); // position inside segment 2: it stays
        const r = await log.enforceRetention();
        assert.deepEqual(r, {
          removedSegments: 2,
          removedRecords: segs[2].firstSeq,
          firstSeq: r.firstSeq,
        });
        assert.equal(log.firstSeq, segs[2].firstSeq);
        await cur.commit(19);
        await log.enforceRetention();
        assert.equal(log.firstSeq, expectedFirst(segs, { maxRecords: 2 }, 0, 20, []));
        await assertIntact(log);
      } finally {
        await store.close();
      }
    });

    it("maxBytes wins over a cursor: it gets RECORDS_REMOVED on its next read, never a skip", async () => {
      const env = makeEnv();
      const store = await open(env, { syncPolicy: SyncPolicy.always() });
      try {
        const retention = { maxBytes: 3 * SEG, maxRecords: 1000, keepUnconsumed: true };
        const log = await store.log("r", { retention });
        await log.append(payload(0));
        const cur = await log.cursor("lagging");
        await fill(log, 29);
        await log.enforceRetention();
        assert.ok(log.firstSeq > 0, "bytes deleted past the cursor");
        assert.ok(log.byteSize <= 3 * SEG, `${log.byteSize} bytes on disk`);
        await assert.rejects(cur.read().next(), (e) => (assertRemoved(e, 0, log.firstSeq), true));
        await assert.rejects(cur.follow().next(), (e) => (assertRemoved(e, 0, log.firstSeq), true));
        const named = await cur.read().next().catch((e: Error) => e.message);
        assert.match(String(named), /^cursor "lagging" at seq 0 is behind/, "the error names it");
        assert.equal(cur.position, 0, "the cursor did not move by itself");
        assert.deepEqual((await log.cursors()).map((c) => c.position), [0]);
        // Moving it on (the consumer's choice) reads again from there.
        await cur.reset(log.firstSeq);
        assert.equal((await drain(cur.read())).seen[0], log.firstSeq);
      } finally {
        await store.close();
      }
    });
    it("an unreadable cursor file does not lift the maxBytes cap", async () => {
      const env = makeEnv();
      const store = await open(env, { syncPolicy: SyncPolicy.always() });
      try {
        const retention = { maxBytes: 3 * SEG, maxRecords: 1000, keepUnconsumed: true };
        const log = await store.log("r", { retention });
        await log.append(payload(0));
        await (await log.cursor("fine")).close();
        const junk = await env.platform.open(`${log.path}/cursors/junk.cursor`, "createExclusive");
        junk.write(new Uint8Array(64).fill(7));
        junk.close();
        await fill(log, 29);
        // The pass reports the damaged cursor, and the hard cap holds all the same.
        await assert.rejects(
          log.enforceRetention(),
          (e) => (e as KhipuError).code === "CORRUPTION",
        );
        assert.ok(log.byteSize <= 3 * SEG, `${log.byteSize} bytes on disk, cap ${3 * SEG}`);
      } finally {
        await store.close();
      }
    });
  });

  describe(`retention under readers mid-segment (${kind})`, () => {
    /** Log "r" of 20 records at T0.., a maxAgeMs limit none of them is past yet. */
    async function setup(env: Env) {
      const clock = fakeClock(T0);
      const store = await open(env, { syncPolicy: SyncPolicy.always() });
      const log = await store.log("r", { retention: { maxAgeMs: 60_000 } });
      await fill(log, 20, clock);
      const segs = await segmentFiles(env.platform, log.path, log);
      const ro = await Store.open(env.dir, { readOnly: true, platform: env.platform });
      const roLog = await ro.log("r");
      const readers = [log.read(), roLog.read()];
      for (const it of readers) assert.equal((await it.next()).value?.seq, 0); // segment 0 open
      return { clock, store, log, segs, ro, readers };
    }

    it("only the segment being read goes: both readers finish it and read on, no gap", async () => {
      const env = makeEnv();
      const { clock, store, log, segs, ro, readers } = await setup(env);
      try {
        clock.set(segs[0].lastTimestamp + 60_001);
        assert.equal((await log.enforceRetention()).firstSeq, segs[0].endSeq);
        for (const it of readers) {
          const { seen, error } = await drain(it, [0]);
          assert.equal(error, null);
          assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => i));
        }
      } finally {
        clock.restore();
        await ro.close();
        await store.close();
      }
    });

    it("every sealed segment goes: each finishes the open one, then RECORDS_REMOVED", async () => {
      const env = makeEnv();
      const { clock, store, log, segs, ro, readers } = await setup(env);
      try {
        clock.set(T0 + 10 ** 9);
        assert.equal((await log.enforceRetention()).firstSeq, segs.at(-1)!.firstSeq);
        for (const it of readers) {
          const { seen, error } = await drain(it, [0]);
          // Records of the open segment may come (a reader keeps its file), then the error names
          // the next one it wanted: never a skip to the active segment, never damage.
          assert.deepEqual(seen, Array.from({ length: seen.length }, (_, i) => i));
          assert.ok(seen.length <= segs[0].endSeq!, `${seen.length} records`);
          assertRemoved(error, seen.length, log.firstSeq);
        }
      } finally {
        clock.restore();
        await ro.close();
        await store.close();
      }
    });
  });

  describe(`roll() (${kind})`, () => {
    it("seals now: one segment more, its records readable, appends go on in the new one", async () => {
      const env = makeEnv();
      const store = await open(env, { segmentBytes: 1 << 20 });
      try {
        const log = await store.log("r");
        await fill(log, 3);
        await log.roll();
        assert.equal(log.segmentCount, 2);
        const files = await segmentFiles(env.platform, log.path, log);
        assert.deepEqual(files.map((f) => [f.firstSeq, f.endSeq]), [[0, 3], [3, null]]);
        // Nothing in the active segment: roll() changes nothing.
        await log.roll();
        await log.roll();
        assert.equal(log.segmentCount, 2);
        assert.equal((await segmentFiles(env.platform, log.path, log)).length, 2);
        assert.equal(await log.append(payload(3)), 3);
        await assertIntact(log);
        await store.close();
        const again = await open(env, { segmentBytes: 1 << 20 });
        const reopened = await again.log("r");
        assert.equal(reopened.segmentCount, 2);
        await assertIntact(reopened);
        await again.close();
      } finally {
        await store.close();
      }
    });

    it("resolves once the seal and the records are on disk (sim: a power cut after it)", async () => {
      if (kind !== "sim") return; // a power cut is the simulator's
      const sim = new SimPlatform();
      const env0 = simEnv(sim);
      const store = await open(env0, { segmentBytes: 1 << 20 });
      try {
        const log = await store.log("r");
        await fill(log, 3);
        await log.roll();
        const cut = await Store.open(env0.dir, { platform: sim.crash("none") });
        const after = await cut.log("r");
        assert.equal(after.segmentCount, 2);
        await assertIntact(after);
        assert.equal(after.nextSeq, 3);
        await cut.close();
      } finally {
        await store.close();
      }
    });

    it("racing appends and batches: every record kept once, in order", async () => {
      const env = makeEnv();
      const store = await open(env, { segmentBytes: 1 << 20 });
      try {
        const log = await store.log("r");
        const pending: Promise<unknown>[] = [];
        const seqs: number[] = [];
        for (let i = 0; i < 120;) {
          if (i % 10 === 4) {
            const batch = [payload(i), payload(i + 1)];
            pending.push(log.appendBatch(batch).then((s) => seqs.push(...s)));
            i += 2;
          } else pending.push(log.append(payload(i++)).then((s) => seqs.push(s)));
          if (i % 7 === 0) pending.push(log.roll());
        }
        await Promise.all(pending);
        assert.deepEqual(seqs.sort((a, b) => a - b), Array.from({ length: 120 }, (_, i) => i));
        assert.ok(log.segmentCount > 10, `${log.segmentCount} segments`);
        await assertIntact(log);
        await store.close();
        const again = await open(env, { segmentBytes: 1 << 20 });
        await assertIntact(await again.log("r"));
        await again.close();
      } finally {
        await store.close();
      }
    });
  });

  describe(`the retention timer (${kind})`, () => {
    it("a quiet log's records go by age with no call (segmentMaxAgeMs rolls it)", async () => {
      const env = makeEnv();
      const store = await open(env);
      try {
        const log = await store.log("q", { retention: { maxAgeMs: 300 }, segmentMaxAgeMs: 100 });
        await fill(log, 3);
        const last = Date.now();
        const start = Date.now();
        while (log.firstSeq < 3 && Date.now() - start < 10_000) await sleep(20);
        assert.equal(log.firstSeq, 3, "trimmed by the timer");
        assert.ok(Date.now() - last > 300, "not before its records were past maxAgeMs");
        assert.equal(log.segmentCount, 1);
        assert.equal(await log.append(payload(3)), 3);
        await assertIntact(log);
      } finally {
        await store.close();
      }
    });

    it("segmentMaxAgeMs alone rolls a quiet segment and deletes nothing", async () => {
      const env = makeEnv();
      const store = await open(env);
      try {
        const log = await store.log("q", { segmentMaxAgeMs: 60 });
        await fill(log, 2);
        const start = Date.now();
        while (log.segmentCount < 2 && Date.now() - start < 10_000) await sleep(20);
        assert.equal(log.segmentCount, 2);
        await sleep(300); // an empty active segment is not rolled again
        assert.equal(log.segmentCount, 2);
        assert.equal(log.firstSeq, 0);
        await assertIntact(log);
      } finally {
        await store.close();
      }
    });
  });
}

// ---- other processes (the real disk; the children run on this test's runtime) ----

/** A running child fixture, its stdout as lines. */
interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  /** The first line starting with `prefix` after the first `skip` such lines (waits for it). */
  line(prefix: string, skip?: number): Promise<string>;
  send(line: string): void;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill("SIGKILL");
});

function child(dir: string, ...rest: string[]): Child {
  const [cmd, ...argv] = runtimeCommand(currentRuntime(), "tests/fixtures/retention/child.ts", [
    dir,
    ...rest,
  ]);
  const proc = spawn(cmd, argv, { cwd: ROOT, env: childEnv(), stdio: ["pipe", "pipe", "pipe"] });
  children.add(proc);
  const lines: string[] = [];
  let partial = "";
  let err = "";
  const wake = new Set<() => void>();
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of wake) w();
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (c: string) => (err += c));
  const exited = new Promise<number | null>((done) =>
    proc.on("close", (code) => {
      children.delete(proc);
      for (const w of wake) w();
      done(code);
    })
  );
  return {
    proc,
    lines,
    exited,
    line: (prefix, skip = 0) =>
      within(
        new Promise<string>((resolve, reject) => {
          const check = () => {
            const found = lines.filter((l) => l.startsWith(prefix))[skip];
            if (found !== undefined) {
              wake.delete(check);
              resolve(found);
            } else if (proc.exitCode !== null) reject(new Error(`child exited: ${err}`));
          };
          wake.add(check);
          check();
        }),
        `child line "${prefix}"`,
        30_000,
      ),
    send: (line) => void proc.stdin!.write(line + "\n"),
  };
}

describe("other processes (disk)", () => {
  it("a cursor committed by another process holds retention until its commit", {
    timeout: 60_000,
  }, async () => {
    const env = diskEnv();
    const store = await open(env, { syncPolicy: SyncPolicy.always() });
    try {
      let log = await store.log("r", { retention: { maxRecords: 2, keepUnconsumed: true } });
      await log.append(payload(0));
      const remote = child(env.dir, "cursor", "remote");
      assert.equal(await remote.line("ready"), "ready 0");
      await fill(log, 19);
      const segs = await segmentFiles(env.platform, log.path, log);
      assert.equal((await log.enforceRetention()).removedSegments, 0, "held at 0");
      assert.deepEqual(await log.cursors(), [{ name: "remote", position: 0, lag: 20 }]);
      remote.send(`commit ${segs[3].firstSeq - 1}`);
      assert.equal(await remote.line("C"), `C ${segs[3].firstSeq}`);
      assert.deepEqual(await log.enforceRetention(), {
        removedSegments: 3,
        removedRecords: segs[3].firstSeq,
        firstSeq: segs[3].firstSeq,
      });
      remote.send("read");
      assert.equal(await remote.line("R"), `R ${segs[3].firstSeq} ok`);
      // maxBytes is a hard cap: reopened with one, it deletes past the remote cursor.
      await log.close();
      log = await store.log("r", {
        retention: { maxBytes: 2 * SEG, maxRecords: 2, keepUnconsumed: true },
      });
      await log.enforceRetention();
      assert.ok(log.firstSeq > segs[3].firstSeq);
      remote.send("read");
      assert.equal(await remote.line("E"), `E RECORDS_REMOVED ${segs[3].firstSeq} ${log.firstSeq}`);
      remote.send("close");
      await remote.line("done");
      assert.equal(await remote.exited, 0);
    } finally {
      await store.close();
    }
  });

  it("a reader in another process mid-segment: finishes it, then RECORDS_REMOVED", {
    timeout: 60_000,
  }, async () => {
    const env = diskEnv();
    const clock = fakeClock(T0);
    const store = await open(env, { syncPolicy: SyncPolicy.always() });
    try {
      const log = await store.log("r", { retention: { maxAgeMs: 60_000 } });
      await fill(log, 20, clock);
      const segs = await segmentFiles(env.platform, log.path, log);
      const reader = child(env.dir, "reader");
      assert.equal(await reader.line("R"), "R 0 ok");
      await reader.line("ready"); // segment 0 is open in the child
      clock.set(T0 + 10 ** 9);
      assert.equal((await log.enforceRetention()).firstSeq, segs.at(-1)!.firstSeq);
      reader.send("rest");
      await reader.line("done");
      assert.equal(await reader.exited, 0);
      const seen = reader.lines.filter((l) => l.startsWith("R "));
      assert.deepEqual(seen, seen.map((_, i) => `R ${i} ok`), "in order, intact");
      assert.ok(seen.length <= segs[0].endSeq!);
      assert.ok(
        reader.lines.includes(`E RECORDS_REMOVED ${seen.length} ${log.firstSeq}`),
        reader.lines.join("\n"),
      );
    } finally {
      clock.restore();
      await store.close();
    }
  });

  it("the timer keeps no process alive: a child that never closes its store exits", {
    timeout: 60_000,
  }, async () => {
    // Found: the child exits by itself (code 0) with its store, log and retention timer left open;
    // what it appended under osManaged() is in the page cache, so a reopen sees it.
    const env = diskEnv();
    const run = child(env.dir, "leave");
    assert.equal(await run.line("appended"), "appended 5");
    const code = await within(run.exited, "a child with an open store exiting", 15_000);
    assert.equal(code, 0);
    const store = await open(env);
    assert.equal((await store.log("r")).nextSeq, 5);
    await store.close();
  });
});

describe("per-log options (sim)", () => {
  it("override the store's: segmentBytes, syncPolicy (counted fdatasyncs), retention", async () => {
    const rec = recordingPlatform(new SimPlatform(), { ignore: ["stat", "readAt", "size"] });
    const store = await Store.open("/data", {
      platform: rec,
      syncPolicy: SyncPolicy.osManaged(),
      segmentBytes: 1 << 20,
      retention: { maxRecords: 1000 },
    });
    try {
      const small = await store.log("small", {
        segmentBytes: SEG,
        syncPolicy: SyncPolicy.always(),
        retention: { maxRecords: 3 },
      });
      const plain = await store.log("plain");
      assert.equal(small.options.segmentBytes, SEG);
      assert.equal(small.options.syncPolicy.kind, "always");
      assert.deepEqual(small.options.retention, {
        maxAgeMs: Infinity,
        maxBytes: Infinity,
        maxRecords: 3,
        keepUnconsumed: false,
      });
      assert.equal(plain.options.segmentBytes, 1 << 20);
      assert.equal(plain.options.retention.maxRecords, 1000);
      rec.clear();
      await fill(small, 20);
      await fill(plain, 20);
      const syncs = (log: string) =>
        rec.calls.filter((c) => c.op === "datasync" && c.path.startsWith(`/data/${log}/`)).length;
      assert.ok(syncs("small") >= 20, `always(): ${syncs("small")} fdatasyncs for 20 appends`);
      assert.equal(syncs("plain"), 0, "osManaged(): none");
      assert.ok(small.segmentCount > 1 && plain.segmentCount === 1);
      await small.enforceRetention();
      await plain.enforceRetention();
      assert.ok(small.firstSeq > 0 && small.nextSeq - small.firstSeq >= 3);
      assert.equal(plain.firstSeq, 0);
    } finally {
      await store.close();
    }
  });

  it("unknown keys, store-wide keys and bad values: InvalidArgumentError, nothing created", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/data", { platform: sim });
    try {
      const refused: unknown[] = [
        { foo: 1 },
        { segmentbytes: 4096 },
        { platform: sim },
        { readOnly: true },
        { repair: true },
        { segmentBytes: 100 },
        { segmentBytes: 4096.5 },
        { syncPolicy: "always" },
        { bufferBytes: -1 },
        { maxRecordBytes: 0 },
        { fileMode: 0o1000 },
        { segmentMaxAgeMs: 0 },
        { segmentMaxAgeMs: Infinity },
        { retention: "forever" },
        { retention: { maxAge: 5 } },
        { retention: { maxAgeMs: 0 } },
        { retention: { maxBytes: -1 } },
        { retention: { maxRecords: 1.5 } },
        { retention: { keepUnconsumed: "yes", maxRecords: 1 } },
        { retention: { keepUnconsumed: true } },
        { retention: { keepUnconsumed: true, maxBytes: 100 } },
        "options",
        null,
      ];
      for (const o of refused) {
        await assert.rejects(
          store.log("bad", o as never),
          InvalidArgumentError,
          `${JSON.stringify(o)} refused`,
        );
      }
      assert.deepEqual(await store.logs(), []);
    } finally {
      await store.close();
    }
  });

  it("an open log asked for with other options: refused, the log untouched; same: the same Log", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/data", { platform: sim, segmentBytes: 1 << 20 });
    try {
      const o = { segmentBytes: SEG, retention: { maxRecords: 5 }, segmentMaxAgeMs: 60_000 };
      const log = await store.log("r", o);
      await fill(log, 3);
      const others = [
        { segmentBytes: 2 * SEG },
        { ...o, retention: { maxRecords: 6 } },
        { ...o, syncPolicy: SyncPolicy.always() },
        { ...o, segmentMaxAgeMs: 1000 },
      ];
      for (const other of others) {
        await assert.rejects(store.log("r", other), InvalidArgumentError, JSON.stringify(other));
      }
      assert.equal(log.closed, false);
      assert.equal(log.options.segmentBytes, SEG);
      assert.equal(log.options.retention.maxRecords, 5);
      assert.equal(await log.append(payload(3)), 3);
      assert.equal(await store.log("r", { ...o, retention: { maxRecords: 5 } }), log);
      assert.equal(await store.log("r"), log, "no options: the open log as it is");
      // Two asks in one turn with different options: one Log, one refusal.
      const both = await Promise.allSettled([
        store.log("t", o),
        store.log("t", { segmentBytes: SEG * 2 }),
      ]);
      assert.equal(both[0].status, "fulfilled");
      assert.ok(both[1].status === "rejected" && both[1].reason instanceof InvalidArgumentError);
      // Closed, it reopens with other options.
      await log.close();
      const again = await store.log("r", { segmentBytes: 2 * SEG });
      assert.notEqual(again, log);
      assert.equal(again.options.segmentBytes, 2 * SEG);
      assert.equal(again.options.retention.maxRecords, Infinity);
      await assertIntact(again);
    } finally {
      await store.close();
    }
  });

  it("a read-only store's logs take no options and refuse roll and enforceRetention", async () => {
    const sim = new SimPlatform();
    const writer = await Store.open("/data", { platform: sim, retention: { maxRecords: 1 } });
    const reader = await Store.open("/data", { platform: sim, readOnly: true });
    try {
      await (await writer.log("r")).append(payload(0));
      await assert.rejects(reader.log("r", { segmentBytes: SEG }), InvalidArgumentError);
      await assert.rejects(reader.log("r", { retention: { maxRecords: 1 } }), InvalidArgumentError);
      const log = await reader.log("r");
      for (const op of [() => log.roll(), () => log.enforceRetention()]) {
        await assert.rejects(op(), (e) => e instanceof ReadOnlyError && e.code === "READ_ONLY");
      }
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});
