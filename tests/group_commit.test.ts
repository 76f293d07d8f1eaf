// Group commit: concurrent appends share writes and fdatasyncs; appends that arrive while an
// fdatasync is in flight are written at once and wait for the next one; each append resolves only
// after an fdatasync that followed its write. Counted through the recording platform.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Log, Store, SyncPolicy } from "../mod.ts";
import { GroupCommit } from "../src/group_commit.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import type { Platform } from "../src/platform/types.ts";
import { SyncObserver } from "./fixtures/sync_observer.ts";
import { realDisk, wrapFile } from "./helpers.ts";

const L = 16;
let counter = 0;
const payload = () => new TextEncoder().encode(String(counter++).padStart(L, "-"));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** Lets every queued microtask and I/O callback run. */
const settle = () => new Promise<void>((r) => setTimeout(r, 1));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Waits until `done()` holds, for at most 5 s (a generous bound). */
async function until(done: () => boolean): Promise<void> {
  for (let waited = 0; !done() && waited < 5000; waited += 5) await sleep(5);
}

const real = realDisk("group");

async function diskStore(syncPolicy: SyncPolicy) {
  const root = real.tempDir();
  const rec = recordingPlatform(real.platform());
  const store = await Store.open(join(root, "s"), { platform: rec, syncPolicy });
  const log = await store.log("ev");
  return { rec, store, log, obs: new SyncObserver(rec, L) };
}

/**
 * A platform whose fdatasyncs of segment files, while `closed`, take effect at once but report
 * completion only when the test releases them, one by one: an fdatasync "in flight" for as long as
 * the test likes. Bytes written meanwhile are not covered by it (the simulator shows that).
 */
class GatedPlatform implements Platform {
  readonly name = "gated";
  closed = false;
  readonly waiting: (() => void)[] = [];
  readonly inner: Platform;
  constructor(inner: Platform) {
    this.inner = inner;
  }

  /** Lets the oldest waiting fdatasync proceed. */
  release(): void {
    const go = this.waiting.shift();
    assert.ok(go, "no fdatasync is waiting");
    go();
  }

  async open(path: string, how: "read" | "append" | "createExclusive", mode?: number) {
    const f = await this.inner.open(path, how, mode);
    return wrapFile(f, {
      datasync: async () => {
        // The sync takes effect when it starts; its completion is reported only on release.
        await f.datasync();
        if (this.closed && path.endsWith(".seg")) {
          await new Promise<void>((r) => this.waiting.push(r));
        }
      },
    });
  }
  syncDir(p: string) {
    return this.inner.syncDir(p);
  }
  rename(a: string, b: string) {
    return this.inner.rename(a, b);
  }
  unlink(p: string) {
    return this.inner.unlink(p);
  }
  mkdir(p: string, m?: number) {
    return this.inner.mkdir(p, m);
  }
  readdir(p: string) {
    return this.inner.readdir(p);
  }
  remove(p: string) {
    return this.inner.remove(p);
  }
  stat(p: string) {
    return this.inner.stat(p);
  }
  lstat(p: string) {
    return this.inner.lstat(p);
  }
  lock(p: string, mode?: number) {
    return this.inner.lock(p, mode);
  }
  watch(dir: string, onChange: () => void) {
    return this.inner.watch(dir, onChange);
  }
}

async function records(fs: SimPlatform): Promise<number> {
  const store = await Store.open("/s", { platform: fs });
  const log = await store.log("ev");
  let n = 0;
  for await (const _ of log.read()) n++;
  await store.close();
  return n;
}

function checkAllCovered(obs: SyncObserver, n: number): void {
  const v = obs.verdicts();
  assert.equal(v.length, n);
  assert.deepEqual(v.filter((x) => !x.written).map((x) => x.seq), [], "resolved before written");
  assert.deepEqual(
    v.filter((x) => !x.covered).map((x) => x.seq),
    [],
    "resolved before an fdatasync that followed its write had completed",
  );
}

describe("group commit under always()", () => {
  it("1,000 concurrent appends share far fewer than 1,000 fdatasyncs, each resolving after one covering it", async () => {
    const { rec, store, log, obs } = await diskStore(SyncPolicy.always());
    const before = rec.count("datasync");
    const seqs = await Promise.all(range(1000).map(() => obs.track(log.append(payload()))));
    assert.deepEqual([...seqs].sort((a, b) => a - b), range(1000));
    const syncs = rec.count("datasync") - before;
    assert.ok(syncs >= 1 && syncs <= 10, `1,000 concurrent appends took ${syncs} fdatasyncs`);
    assert.ok(rec.count("writev") + rec.count("write") - 1 <= 10, "appends were not coalesced");
    checkAllCovered(obs, 1000);
    await store.close();
  });

  it("50 clients appending in loops (1,000 appends) share fdatasyncs", async () => {
    const { rec, store, log, obs } = await diskStore(SyncPolicy.always());
    const before = rec.count("datasync");
    await Promise.all(
      range(50).map(async () => {
        for (let i = 0; i < 20; i++) await obs.track(log.append(payload()));
      }),
    );
    const syncs = rec.count("datasync") - before;
    assert.ok(syncs <= 100, `1,000 appends from 50 clients took ${syncs} fdatasyncs`);
    checkAllCovered(obs, 1000);
    let n = 0;
    for await (const r of log.read({ from: 0 })) assert.equal(r.seq, n++);
    assert.equal(n, 1000);
    await store.close();
  });

  it("while an fdatasync is in flight, new appends are written at once and share the next fdatasync", async () => {
    const sim = new SimPlatform();
    const gated = new GatedPlatform(sim);
    const rec = recordingPlatform(gated);
    const store = await Store.open("/s", { platform: rec, syncPolicy: SyncPolicy.always() });
    const log = await store.log("ev");
    const obs = new SyncObserver(rec, L, (p) => sim.fileBytes(p));
    await obs.track(log.append(payload())); // creates the segment; not gated
    gated.closed = true;
    const syncsBefore = rec.count("datasync");
    const resolved = new Set<number>();
    const track = (p: Promise<number>) => obs.track(p).then((s) => resolved.add(s));

    // Wave A: written, one fdatasync starts and hangs.
    const a = range(10).map(() => track(log.append(payload())));
    await settle();
    assert.equal(gated.waiting.length, 1, "one fdatasync in flight");
    assert.equal(resolved.size, 0, "an append resolved before its fdatasync completed");
    assert.equal(await records(sim.crash("all")), 11, "wave A is in the page cache");
    assert.equal(await records(sim.crash("none")), 11, "wave A's fdatasync has started");

    // Wave B, while A's fdatasync is in flight: accepted and written, but no second fdatasync.
    const b = range(10).map(() => track(log.append(payload())));
    await settle();
    assert.equal(
      await records(sim.crash("all")),
      21,
      "wave B was not written during the fdatasync",
    );
    assert.equal(gated.waiting.length, 1, "a second fdatasync started while one was in flight");
    assert.equal(rec.count("datasync") - syncsBefore, 1);
    assert.equal(resolved.size, 0);
    assert.equal(await records(sim.crash("none")), 11, "wave B is not durable yet");

    // A's fdatasync completes: exactly wave A resolves; B's fdatasync starts.
    gated.release();
    await Promise.all(a);
    await settle();
    assert.deepEqual([...resolved].sort((x, y) => x - y), range(10).map((i) => i + 1));
    assert.equal(gated.waiting.length, 1, "wave B's fdatasync did not start");
    assert.equal(await records(sim.crash("none")), 21, "wave B's fdatasync has started");

    gated.release();
    await Promise.all(b);
    assert.equal(resolved.size, 20);
    assert.equal(rec.count("datasync") - syncsBefore, 2, "20 appends in two waves: 2 fdatasyncs");
    assert.equal(await records(sim.crash("none")), 21);
    checkAllCovered(obs, 21);
    gated.closed = false;
    await store.close();
  });

  it("the event loop keeps running while an fdatasync is in flight", async () => {
    const sim = new SimPlatform();
    const gated = new GatedPlatform(sim);
    const store = await Store.open("/s", { platform: gated, syncPolicy: SyncPolicy.always() });
    const log: Log = await store.log("ev");
    await log.append("x");
    gated.closed = true;
    let done = false;
    const p = log.append("y").then(() => (done = true));
    let ticks = 0;
    for (let i = 0; i < 5; i++) {
      await settle();
      ticks++;
    }
    assert.equal(ticks, 5);
    assert.equal(done, false);
    assert.equal(gated.waiting.length, 1);
    gated.release();
    await p;
    gated.closed = false;
    await store.close();
  });

  it("store.sync() and log.sync() calls made together share fdatasyncs", async () => {
    const { rec, store, log } = await diskStore(SyncPolicy.osManaged());
    for (let i = 0; i < 100; i++) await log.append(payload());
    const before = rec.count("datasync");
    await Promise.all([...range(20).map(() => log.sync()), store.sync(), store.sync()]);
    const syncs = rec.count("datasync") - before;
    assert.ok(syncs >= 1 && syncs <= 2, `21 concurrent syncs took ${syncs} fdatasyncs`);
    assert.equal(log.dirty, false);
    await store.close();
  });
});

/**
 * A log stand-in for GroupCommit alone: `flushed` is how far the "log" has written; each
 * fdatasync is recorded with the flushed end it covers and, while `gated`, completes only on
 * `release()`.
 */
class FakeTarget {
  flushed = 0;
  gated = false;
  /** The flushed end each fdatasync started at. */
  readonly syncs: number[] = [];
  readonly waiting: (() => void)[] = [];
  readonly failures: { err: unknown; covering: { from: number; to: number } }[] = [];
  /** How often the commit said appends resolved. */
  acks = 0;
  flushedEnd = (): number => this.flushed;
  datasync = (): Promise<void> => {
    this.syncs.push(this.flushed);
    return this.gated ? new Promise<void>((r) => this.waiting.push(r)) : Promise.resolve();
  };
  failed = (err: unknown, covering: { from: number; to: number }): void => {
    this.failures.push({ err, covering });
  };
  acked = (): void => {
    this.acks++;
  };
  release(): void {
    const go = this.waiting.shift();
    assert.ok(go, "no fdatasync is waiting");
    go();
  }
}

/** `commit` and its fake log: `append(k)` writes k more records and settles them. */
function timed(policy: SyncPolicy) {
  const target = new FakeTarget();
  const commit = new GroupCommit(policy, target, 0);
  const resolved: number[] = [];
  const append = (k = 1): Promise<number> => {
    const end = target.flushed + k;
    const p = commit.append(end, k, end).then((v) => (resolved.push(v), v));
    target.flushed = end;
    commit.settle();
    return p;
  };
  return { target, commit, resolved, append };
}

/**
 * Watches the timers of at least `minMs` (the test's own short sleeps pass unseen) by wrapping the
 * global `setTimeout`/`clearTimeout`, which group commit looks up at each call: `pending` holds
 * those armed and neither fired nor cleared, `armed` every delay asked for.
 */
function watchTimers(minMs: number) {
  type Timers = {
    setTimeout: (fn: () => void, ms?: number) => unknown;
    clearTimeout: (h: unknown) => void;
  };
  const g = globalThis as unknown as Timers;
  const { setTimeout: realSet, clearTimeout: realClear } = g;
  const pending = new Set<unknown>();
  const armed: number[] = [];
  g.setTimeout = (fn, ms = 0) => {
    if (ms < minMs) return realSet(fn, ms);
    const h = realSet(() => {
      pending.delete(h);
      fn();
    }, ms);
    pending.add(h);
    armed.push(ms);
    return h;
  };
  g.clearTimeout = (h) => {
    pending.delete(h);
    realClear(h);
  };
  return {
    pending,
    armed,
    restore() {
      g.setTimeout = realSet;
      g.clearTimeout = realClear;
    },
  };
}

describe("group commit under everyN(n, { maxDelayMs })", () => {
  it("one timer while records wait unsynced: cleared once an fdatasync covers them all, armed again for the next", async () => {
    const timers = watchTimers(50_000);
    try {
      const { target, commit, append } = timed(SyncPolicy.everyN(4, { maxDelayMs: 60_000 }));
      await append();
      assert.equal(timers.pending.size, 1, "no timer for the unsynced record");
      assert.ok(timers.armed[0] > 59_000 && timers.armed[0] <= 60_000, `${timers.armed}`);
      await append();
      await append();
      assert.equal(timers.armed.length, 1, "a timer per append");
      await append(); // the 4th: the count starts an fdatasync, which covers all four
      await commit.idle();
      assert.deepEqual(target.syncs, [4]);
      assert.equal(timers.pending.size, 0, "a timer outlived the records it was for");
      await append();
      assert.equal(timers.pending.size, 1, "no timer for the next unsynced record");
      assert.equal(timers.armed.length, 2);
      commit.stop();
      assert.equal(timers.pending.size, 0, "stop() left the timer armed");
    } finally {
      timers.restore();
    }
  });

  it("a lone append resolves at once, and a timer alone fdatasyncs it", async () => {
    const { target, commit, append } = timed(SyncPolicy.everyN(1000, { maxDelayMs: 20 }));
    assert.equal(await append(), 1);
    assert.deepEqual(target.syncs, [], "an fdatasync before the delay, far below the count");
    assert.equal(target.acks, 1, "the log heard of the resolved append");
    await until(() => commit.durableEnd === 1);
    assert.equal(commit.durableEnd, 1, "the timer never fdatasynced the unsynced append");
    assert.deepEqual(target.syncs, [1]);
    assert.equal(target.acks, 2, "the log heard that the record became durable");
    await sleep(100); // five delays with nothing unsynced: no timer, no fdatasync
    assert.deepEqual(target.syncs, [1]);
    assert.equal(target.acks, 2, "nothing moved, nothing told");
    // A new unsynced append arms a new timer.
    await append(3);
    await until(() => commit.durableEnd === 4);
    assert.deepEqual(target.syncs, [1, 4]);
    commit.stop();
  });

  it("the count bound still comes first: the n-th record starts an fdatasync at once", async () => {
    const { target, commit, resolved, append } = timed(
      SyncPolicy.everyN(4, { maxDelayMs: 60_000 }),
    );
    for (let i = 0; i < 3; i++) await append();
    assert.deepEqual(target.syncs, []);
    const fourth = append();
    assert.deepEqual(target.syncs, [4], "the 4th unsynced record did not start an fdatasync");
    await settle();
    assert.equal(await fourth, 4);
    assert.equal(commit.durableEnd, 4);
    assert.deepEqual(resolved, [1, 2, 3, 4]);
    // The covered records cleared the timer; the window starts over.
    for (let i = 0; i < 3; i++) await append();
    assert.deepEqual(target.syncs, [4]);
    commit.stop();
  });

  it("an fdatasync that covers only the older unsynced records re-arms the timer for the rest", async () => {
    const { target, commit, append } = timed(SyncPolicy.everyN(1000, { maxDelayMs: 20 }));
    await append(); // record 1: unsynced, timer armed
    target.gated = true;
    const synced = commit.syncThrough(1); // a sync() call: starts an fdatasync of record 1
    commit.settle();
    assert.deepEqual(target.syncs, [1]);
    await append(2); // records 2 and 3 resolve while it runs: it does not cover them
    const idle = commit.idle();
    target.release();
    await idle;
    await synced;
    assert.equal(commit.durableEnd, 1);
    target.gated = false;
    // Only the timer re-armed for record 2 can sync records 2 and 3 now.
    await until(() => commit.durableEnd === 3);
    assert.equal(commit.durableEnd, 3, "the timer was not re-armed after a partial cover");
    assert.deepEqual(target.syncs, [1, 3]);
    commit.stop();
  });

  it("a record whose delay passed during a longer fdatasync is fdatasynced as soon as that completes", async () => {
    const { target, commit, append } = timed(SyncPolicy.everyN(1000, { maxDelayMs: 10 }));
    await append();
    target.gated = true;
    await until(() => target.syncs.length === 1); // the timer's fdatasync of record 1 hangs
    assert.deepEqual(target.syncs, [1]);
    await append(); // record 2 was written after it started
    await sleep(60); // record 2's delay passes while the first fdatasync still runs
    assert.deepEqual(target.syncs, [1], "two fdatasyncs ran at once");
    const idle = commit.idle();
    target.release();
    await idle;
    // Its completion started the next one itself, not a timer later.
    assert.deepEqual(target.syncs, [1, 2]);
    target.release();
    await commit.idle();
    assert.equal(commit.durableEnd, 2);
    commit.stop();
  });

  it("stop() clears an armed timer", async () => {
    const { target, commit, append } = timed(SyncPolicy.everyN(1000, { maxDelayMs: 10 }));
    await append();
    commit.stop();
    await sleep(60);
    assert.deepEqual(target.syncs, [], "the timer fired after stop()");
    assert.equal(commit.durableEnd, 0);
  });

  it("a failed timer fdatasync goes to the log's failed()", async () => {
    const target = new FakeTarget();
    const eio = new Error("EIO");
    const commit = new GroupCommit(SyncPolicy.everyN(1000, { maxDelayMs: 5 }), {
      flushedEnd: target.flushedEnd,
      datasync: () => (target.syncs.push(target.flushed), Promise.reject(eio)),
      failed: target.failed,
      acked: target.acked,
    }, 0);
    const ack = commit.append(1, 1, "a");
    target.flushed = 1;
    commit.settle();
    assert.equal(await ack, "a");
    await until(() => target.failures.length > 0);
    assert.deepEqual(target.failures, [{ err: eio, covering: { from: 0, to: 1 } }]);
    assert.deepEqual(target.syncs, [1]);
    commit.stop();
  });

  it("concurrent appends on disk resolve at once and share one timer fdatasync", async () => {
    const policy = SyncPolicy.everyN(1000, { maxDelayMs: 20 });
    const { rec, store, log, obs } = await diskStore(policy);
    await obs.track(log.append(payload())); // creates the segment
    await until(() => !log.dirty);
    const before = rec.count("datasync");
    const seqs = await Promise.all(range(200).map(() => obs.track(log.append(payload()))));
    assert.deepEqual([...seqs].sort((a, b) => a - b), range(200).map((i) => i + 1));
    assert.equal(rec.count("datasync"), before, "resolved only after an fdatasync");
    assert.equal(log.dirty, true);
    await until(() => !log.dirty);
    assert.equal(log.dirty, false, "the timer never fdatasynced the burst");
    const syncs = rec.count("datasync") - before;
    assert.ok(syncs >= 1 && syncs <= 2, `200 concurrent appends took ${syncs} timer fdatasyncs`);
    obs.note(seqs);
    assert.deepEqual(obs.verdicts().slice(-200).filter((x) => !x.covered), []);
    await store.close();
  });
});
