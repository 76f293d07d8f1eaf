// Crash-point exploration with cursor commits: one workload interleaves appends, awaited and
// group-committed cursor commits, commits left in flight across appends, resets back and forward,
// retention, cursor close/reopen and a store reopen. The crash harness (tests/crash_harness.ts)
// runs it and checks the log's six properties in every crash state, as for its own workloads;
// this file freezes the same crash points with what the cursor had been promised and checks, after
// a crash at every disk-changing call in every crash mode, that the reopened cursor:
//   1. opens (and lists) without error, whatever the crash left (no file, a temporary file);
//   2. is at a position that was issued, and not before the last change that resolved: a value
//      from the suffix of issued values that starts at the last resolved one;
//   3. never points past the recovered log (every commit named a record whose append resolved);
//   4. commits again after recovery, durably (a second power cut keeps it).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { Store, SyncPolicy } from "../mod.ts";
import type { Cursor } from "../src/cursor.ts";
import {
  CRASH_MODES,
  type CrashMode,
  type SimCall,
  type SimPlatform,
  type SimSnapshot,
} from "../src/testing/sim.ts";
import { type Ctx, DIR, runWorkload, type Workload } from "./crash_harness.ts";

const LOG = "a";
const NAME = "billing";
const SEEDED: ReadonlySet<CrashMode> = new Set(["prefix", "subset", "torn", "zeros"]);
const storeOptions = () => ({
  syncPolicy: SyncPolicy.always(),
  segmentBytes: 4096,
  bufferBytes: 1024,
});

/** Every position the workload gave one cursor, in issue order, and which of them resolved. */
class CursorModel {
  /** Positions issued (index 0: the creation at the log's first seq); repeats are one entry. */
  readonly values: number[] = [];
  /** Index in `values` of the last change that resolved; -1 until the creation resolved. */
  resolved = -1;
  /** Set when `deleteCursor` is called, and when it resolved. */
  deleting = false;
  deleted = false;

  /** Issues `position`; returns the index whose durability the call waits for. */
  issue(position: number): number {
    if (this.values[this.values.length - 1] !== position) this.values.push(position);
    return this.values.length - 1;
  }

  settle(i: number): void {
    this.resolved = Math.max(this.resolved, i);
  }

  capture(): Promised {
    const { deleting, deleted, resolved } = this;
    return { issued: this.values.length, resolved, deleting, deleted };
  }
}

/** What one cursor had been promised at a crash point. */
interface Promised {
  issued: number;
  resolved: number;
  deleting: boolean;
  deleted: boolean;
}

/** A crash point: the disk after call `call`, and what each cursor had been promised then. */
interface Point {
  call: number;
  what: string;
  snap: SimSnapshot;
  promised: Map<string, Promised>;
}

/** The workload, tracking the cursors in `models` and freezing `points` after each disk change. */
function cursorWorkload(models: Map<string, CursorModel>, points: Point[]): Workload {
  return {
    name: "cursor-commits",
    opts: { policy: "always()", lossBound: 1, open: storeOptions },
    async run(c: Ctx) {
      /** Run once, from inside the next fdatasync of a cursor file: while that one is in flight. */
      let duringSync: (() => void) | null = null;
      c.onCall = (call: SimCall) => {
        if (duringSync && call.op === "datasync" && call.path.endsWith(`/${NAME}.cursor`)) {
          const run = duringSync;
          duringSync = null;
          run();
        }
        if (!call.mutates) return;
        const promised = new Map([...models].map(([name, m]) => [name, m.capture()]));
        points.push({
          call: call.n,
          what: `${call.op} ${call.path}`,
          snap: c.sim.freeze(),
          promised,
        });
      };
      await c.open();
      const open = async (name: string) => {
        const log = await c.log(LOG);
        let m = models.get(name);
        if (!m) models.set(name, m = new CursorModel());
        const i = m.values.length === 0 ? m.issue(log.firstSeq) : m.resolved;
        const cur = await log.cursor(name);
        m.settle(i);
        return cur;
      };
      const commit = (cur: Cursor, seq: number) => {
        const m = models.get(cur.name)!;
        const i = m.issue(seq + 1);
        return cur.commit(seq).then(() => m.settle(i));
      };
      const reset = (cur: Cursor, seq: number) => {
        const m = models.get(cur.name)!;
        const i = m.issue(seq);
        return cur.reset(seq).then(() => m.settle(i));
      };
      for (let i = 0; i < 3; i++) await c.append(LOG, c.payload(300));
      let log = await c.log(LOG);
      let cur = await open(NAME);
      let audit: Cursor | null = null;
      for (let i = 0; i < 18; i++) {
        await c.append(LOG, c.payload(600));
        const last = log.nextSeq - 1;
        if (i % 3 === 0) await commit(cur, last);
        if (i % 3 === 1) {
          // A burst: group-committed into one or two writes.
          const burst = [last - 1, last, last].map((s) =>
            commit(cur, Math.max(s, cur.position - 1))
          );
          await Promise.all(burst);
        }
        if (i % 3 === 2) {
          // Left in flight while the log appends (and maybe rolls over), with the other cursor's;
          // one more commit arrives while the first one's fdatasync runs, for the next write.
          await c.append(LOG, c.payload(200));
          const top = log.nextSeq - 1;
          const pending = [commit(cur, top - 1)];
          duringSync = () => pending.push(commit(cur, top));
          if (audit) pending.push(commit(audit, last));
          await c.append(LOG, c.payload(200));
          assert.equal(duringSync, null, "the commit's fdatasync ran");
          await Promise.all(pending);
        }
        if (i === 4) audit = await open("audit");
        if (i === 8) await reset(cur, 2);
        if (i === 10) await reset(cur, log.nextSeq);
        if (i === 12) await c.truncateBefore(LOG, 6);
        if (i === 14) {
          await audit!.close();
          const m = models.get("audit")!;
          m.deleting = true;
          await log.deleteCursor("audit");
          m.deleted = true;
          audit = null;
        }
      }
      await cur.close();
      await c.reopen();
      log = await c.log(LOG);
      cur = await open(NAME);
      await commit(cur, log.nextSeq - 1);
      await c.append(LOG, c.payload(100));
      const late = commit(cur, log.nextSeq - 1);
      await cur.close(); // waits for the commit in flight
      await late;
      await c.close();
      c.onCall = undefined;
    },
  };
}

function fingerprint(fs: SimPlatform): string {
  return fs.listFiles().map((p) => `${p}:${crc32(fs.fileBytes(p)!)}`).join("|");
}

/** Checks property 2 for every cursor the workload made; returns what is wrong, or null. */
function checkListed(
  listed: Map<string, number>,
  models: Map<string, CursorModel>,
  pt: Point,
): string | null {
  for (const name of listed.keys()) {
    if (!pt.promised.get(name)?.issued) return `property 2: ${name} listed before its creation`;
  }
  for (const [name, p] of pt.promised) {
    const position = listed.get(name);
    if (p.deleted) {
      if (position !== undefined) return `property 2: ${name} listed after its deletion resolved`;
      continue;
    }
    if (p.issued === 0) continue;
    // Before its creation resolved, or once its deletion began, a cursor may be missing.
    const mayBeMissing = p.resolved < 0 || p.deleting;
    const allowed = models.get(name)!.values.slice(Math.max(p.resolved, 0), p.issued);
    if (position === undefined ? !mayBeMissing : !allowed.includes(position)) {
      return `property 2: ${name} at ${position ?? "(missing)"}, allowed ${
        JSON.stringify(allowed)
      }${mayBeMissing ? " or missing" : ""}`;
    }
  }
  return null;
}

/** Checks one crashed state; returns what is wrong, or null. */
async function checkState(
  fs: SimPlatform,
  models: Map<string, CursorModel>,
  pt: Point,
): Promise<string | null> {
  let store = await Store.open(DIR, { ...storeOptions(), platform: fs });
  try {
    let log = await store.log(LOG);
    const listed = new Map((await log.cursors()).map((i) => [i.name, i.position]));
    const bad = checkListed(listed, models, pt);
    if (bad) return bad;
    const cur = await log.cursor(NAME);
    const position = cur.position;
    const want = listed.get(NAME) ?? log.firstSeq;
    if (position !== want) return `property 1: opened at ${position}, listed at ${want}`;
    if (position > log.nextSeq) {
      return `property 3: position ${position} is past the log's next seq ${log.nextSeq}`;
    }
    // Property 4: commit after recovery, then a second power cut.
    if (log.nextSeq > position) await cur.commit(log.nextSeq - 1);
    const committed = cur.position;
    await cur.close();
    await store.close();
    const cut = fs.crash("none");
    store = await Store.open(DIR, { ...storeOptions(), platform: cut });
    log = await store.log(LOG);
    const again = (await log.cursors()).find((i) => i.name === NAME);
    if (again?.position !== committed) {
      return `property 4: committed to ${committed} after recovery, then a second cut: ` +
        `${JSON.stringify(again)}`;
    }
    return null;
  } catch (err) {
    return `property 1: ${(err as Error)?.stack ?? err}`;
  } finally {
    await store.close().catch(() => {});
  }
}

/** Cursor crash states to explore (seeds are added until the count reaches it). */
const MIN_STATES = 3000;

describe("crash exploration with cursor commits", () => {
  it(`explores at least ${MIN_STATES} cursor crash states with zero violations`, {
    timeout: 600_000,
  }, async () => {
    const started = Date.now();
    let harnessStates = 0;
    let crashPoints = 0;
    let generated = 0;
    let states = 0;
    let runs = 0;
    const violations: string[] = [];
    // Seeds change record sizes (so where rollovers fall among the commits).
    for (let seed = 1; states < MIN_STATES; seed++) {
      runs++;
      const models = new Map<string, CursorModel>();
      const points: Point[] = [];
      const harness = await runWorkload(cursorWorkload(models, points), seed, {
        seedsPerMode: 1,
        recoveryCrashes: false,
      });
      assert.deepEqual(harness.violations, [], "the log's properties, with cursors beside it");
      harnessStates += harness.states;
      crashPoints += points.length;
      const checked = new Set<string>();
      for (const pt of points) {
        const promised = JSON.stringify([...pt.promised]);
        for (const mode of CRASH_MODES) {
          for (let k = 0; k < (SEEDED.has(mode) ? 2 : 1); k++) {
            const crashSeed = seed * 1_000_003 + pt.call * 131 + CRASH_MODES.indexOf(mode) * 7 + k;
            const fs = pt.snap.crash(mode, crashSeed);
            generated++;
            const key = `${fingerprint(fs)}#${promised}`;
            if (checked.has(key)) continue;
            checked.add(key);
            const bad = await checkState(fs, models, pt);
            if (bad) {
              violations.push(
                `seed ${seed}, after call #${pt.call} (${pt.what}), ${mode} crash seed ` +
                  `${crashSeed} [${fs.lastCrash?.detail}]: ${bad}`,
              );
            }
          }
        }
      }
      states += checked.size;
    }
    console.log(
      `cursor crash exploration: ${runs} workload runs, ${crashPoints} crash points; cursor ` +
        `states=${states} (distinct image+promise pairs of ${generated} generated); log ` +
        `properties checked by the harness in ${harnessStates} states; ` +
        `violations=${violations.length}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    assert.deepEqual(violations.slice(0, 5), []);
  });
});
