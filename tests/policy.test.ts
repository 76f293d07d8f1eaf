// What each SyncPolicy promises about a resolved append, checked by observation: the order of
// writes, fdatasyncs and resolutions seen through the recording platform (on the simulator and on
// the real disk), and what survives a simulated power cut or process crash. Also: an fdatasync
// failure poisons the log (no retry, later appends refused, reads still work).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  InvalidArgumentError,
  IoError,
  type Log,
  PoisonedError,
  Store,
  SyncPolicy,
} from "../mod.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { SimPlatform, type SimSnapshot } from "../src/testing/sim.ts";
import { FaultyPlatform } from "../src/testing/faulty.ts";
import type { Platform } from "../src/platform/types.ts";
import { SyncObserver } from "./fixtures/sync_observer.ts";
import { realDisk } from "./helpers.ts";

const L = 24; // every payload in the observed workloads has this size
let counter = 0;
/** A fresh payload of exactly L bytes. */
function payload(): Uint8Array {
  return new TextEncoder().encode(String(counter++).padStart(L, "."));
}
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Waits until no appended record waits for an fdatasync, for at most 5 s (a generous bound). */
async function untilClean(log: Log): Promise<void> {
  for (let waited = 0; log.dirty && waited < 5000; waited += 5) await sleep(5);
}

const real = realDisk("policy");

/** A store on a recording wrapper around the simulator or the real disk. */
async function observed(backend: "sim" | "disk", syncPolicy: SyncPolicy, segmentBytes = 64 << 20) {
  let dir = "/s";
  let inner: Platform = new SimPlatform();
  if (backend === "disk") {
    const root = real.tempDir();
    dir = join(root, "s");
    inner = real.platform();
  }
  const rec = recordingPlatform(inner);
  const store = await Store.open(dir, { platform: rec, syncPolicy, segmentBytes });
  const log = await store.log("ev");
  const sim = inner instanceof SimPlatform ? inner : null;
  const obs = new SyncObserver(rec, L, sim ? (p) => sim.fileBytes(p) : undefined);
  return { rec, store, log, obs };
}

/**
 * Sequential appends, a burst of concurrent ones, concurrent clients each appending in a loop,
 * and batches (one larger than the everyN(8) window). Returns how many records it appended.
 */
async function workload(log: Log, obs: SyncObserver): Promise<number> {
  for (let i = 0; i < 40; i++) await obs.track(log.append(payload()));
  await Promise.all(range(200).map(() => obs.track(log.append(payload()))));
  await Promise.all(
    range(8).map(async () => {
      for (let j = 0; j < 15; j++) await obs.track(log.append(payload()));
    }),
  );
  await obs.track(log.appendBatch([payload(), payload(), payload()]));
  await obs.track(log.appendBatch(range(20).map(payload)));
  return 40 + 200 + 8 * 15 + 3 + 20;
}

async function countRecords(log: Log): Promise<number> {
  let n = 0;
  for await (const r of log.read({ from: 0 })) {
    assert.equal(r.seq, n);
    n++;
  }
  return n;
}

for (const backend of ["sim", "disk"] as const) {
  describe(`sync policies observed through the recording platform (${backend})`, () => {
    it("always(): every append resolves only after an fdatasync that followed its write", async () => {
      const { store, log, obs } = await observed(backend, SyncPolicy.always());
      const n = await workload(log, obs);
      const v = obs.verdicts();
      assert.equal(v.length, n);
      assert.deepEqual(v.filter((x) => !x.written), [], "resolved before it was written");
      assert.deepEqual(v.filter((x) => !x.covered), [], "resolved before an fdatasync covered it");
      assert.equal(obs.maxUncovered(), 0);
      assert.equal(await countRecords(log), n);
      await store.close();
    });

    // With a long maxDelayMs the timer never fires here: the count bound alone must hold.
    for (const policy of [SyncPolicy.everyN(8), SyncPolicy.everyN(8, { maxDelayMs: 60_000 })]) {
      it(`${policy}: at most 7 resolved records are ever not covered by an fdatasync`, async () => {
        const { store, log, obs } = await observed(backend, policy);
        const n = await workload(log, obs);
        const v = obs.verdicts();
        assert.equal(v.length, n);
        assert.deepEqual(v.filter((x) => !x.written), [], "resolved before it was written");
        const max = obs.maxUncovered();
        assert.ok(max <= 7, `${max} resolved records were not covered by an fdatasync at once`);
        assert.ok(max >= 1, `${policy} never let an append resolve before its fdatasync`);
        // The 20-record batch cannot fit the window: it resolves only once covered.
        const batch = v.slice(-20);
        assert.deepEqual(batch.filter((x) => !x.covered).map((x) => x.seq), []);
        await store.close();
      });
    }

    for (const policy of [SyncPolicy.everyN(64), SyncPolicy.everyN(64, { maxDelayMs: 60_000 })]) {
      it(`${policy}: a sequential loop issues one fdatasync per 64 appends`, async () => {
        const { store, log, obs } = await observed(backend, policy);
        for (let i = 0; i < 640; i++) await obs.track(log.append(payload()));
        const syncs = obs.recordSyncs();
        assert.ok(
          syncs >= 9 && syncs <= 11,
          `expected ~10 fdatasyncs for 640 appends, got ${syncs}`,
        );
        assert.ok(obs.maxUncovered() <= 63);
        assert.deepEqual(obs.verdicts().filter((x) => !x.written), []);
        await store.close();
      });
    }

    it("osManaged(): written before resolving, no fdatasync until sync(), then all covered", async () => {
      const { rec, store, log, obs } = await observed(backend, SyncPolicy.osManaged());
      const n = await workload(log, obs);
      const v = obs.verdicts();
      assert.deepEqual(v.filter((x) => !x.written), [], "resolved before it was written");
      assert.equal(obs.recordSyncs(), 0, "osManaged issued an fdatasync on its own");
      assert.equal(obs.maxUncovered(), n);
      await sleep(20);
      assert.equal(obs.recordSyncs(), 0, "osManaged issued an fdatasync later, unasked");
      assert.equal(log.dirty, true);
      await log.sync();
      assert.equal(log.dirty, false);
      // Every record's write is now followed by a completed fdatasync.
      obs.note([log.nextSeq - 1]);
      assert.equal(obs.verdicts().at(-1)!.covered, true);
      assert.equal(obs.recordSyncs(), 1);
      // close() syncs what sync() did not cover.
      await obs.track(log.append(payload()));
      const before = rec.count("datasync");
      await store.close();
      assert.equal(rec.count("datasync"), before + 1);
      obs.note([n]);
      assert.equal(obs.verdicts().at(-1)!.covered, true);
    });

    it("every policy: each append is in the page cache before it resolves, also across rollovers", async () => {
      const policies = [
        SyncPolicy.always(),
        SyncPolicy.everyN(8),
        SyncPolicy.everyN(8, { maxDelayMs: 5 }),
        SyncPolicy.interval(10_000),
        SyncPolicy.osManaged(),
      ];
      for (const policy of policies) {
        // Small segments: many appends wait for a new segment file to be created.
        const { store, log, obs } = await observed(backend, policy, 4096);
        const n = await workload(log, obs);
        assert.ok(log.segmentCount >= 4, `${policy}: only ${log.segmentCount} segments`);
        const v = obs.verdicts();
        assert.equal(v.length, n);
        assert.deepEqual(v.filter((x) => !x.written).map((x) => x.seq), [], `${policy}`);
        if (policy.kind === "always") assert.equal(obs.maxUncovered(), 0);
        if (policy.kind === "everyN") assert.ok(obs.maxUncovered() <= 7);
        assert.equal(await countRecords(log), n);
        await store.close();
      }
    });

    it("interval(20): a dirty log is fdatasynced without further appends, a clean one is not", async () => {
      const { store, log, obs } = await observed(backend, SyncPolicy.interval(20));
      const seq = await obs.track(log.append(payload()));
      const first = obs.verdicts()[0];
      assert.equal(first.written, true);
      assert.equal(first.covered, false, "interval resolved an append only after an fdatasync");
      assert.equal(log.dirty, true);
      // No more appends: the timer alone must sync it (wait up to 5 s).
      for (let waited = 0; log.dirty && waited < 5000; waited += 5) await sleep(5);
      assert.equal(log.dirty, false, "the dirty log was never fdatasynced");
      obs.note([seq]);
      assert.equal(obs.verdicts().at(-1)!.covered, true);
      const syncs = obs.recordSyncs();
      assert.equal(syncs, 1);
      await sleep(100); // five more intervals: nothing is dirty, so nothing is synced
      assert.equal(obs.recordSyncs(), syncs);
      // Appends resolve at once (page cache), then a timer covers them.
      const more = await Promise.all(range(30).map(() => obs.track(log.append(payload()))));
      assert.deepEqual(obs.verdicts().slice(-30).filter((x) => !x.written), []);
      for (let waited = 0; log.dirty && waited < 5000; waited += 5) await sleep(5);
      obs.note(more);
      assert.deepEqual(obs.verdicts().slice(-30).filter((x) => !x.covered), []);
      await store.close();
    });

    it("everyN(1000, { maxDelayMs: 20 }): a lone append is fdatasynced with no further appends", async () => {
      const policy = SyncPolicy.everyN(1000, { maxDelayMs: 20 });
      const { store, log, obs } = await observed(backend, policy);
      const seq = await obs.track(log.append(payload()));
      const first = obs.verdicts()[0];
      assert.equal(first.written, true);
      assert.equal(first.covered, false, "resolved only after an fdatasync (the count is 1000)");
      assert.equal(log.dirty, true);
      // Far below the count: only the timer can sync it (wait up to 5 s).
      await untilClean(log);
      assert.equal(log.dirty, false, "the lone append was never fdatasynced");
      obs.note([seq]);
      assert.equal(obs.verdicts().at(-1)!.covered, true);
      const syncs = obs.recordSyncs();
      assert.equal(syncs, 1);
      await sleep(100); // five delays: nothing is unsynced, so no timer and no fdatasync
      assert.equal(obs.recordSyncs(), syncs);
      // A burst resolves at once (page cache) and one timer covers all of it.
      const more = await Promise.all(range(30).map(() => obs.track(log.append(payload()))));
      const burst = obs.verdicts().slice(-30);
      assert.deepEqual(burst.filter((x) => !x.written), []);
      assert.ok(burst.some((x) => !x.covered), "the burst waited for an fdatasync");
      await untilClean(log);
      obs.note(more);
      assert.deepEqual(obs.verdicts().slice(-30).filter((x) => !x.covered), []);
      const after = obs.recordSyncs() - syncs;
      assert.ok(after >= 1 && after <= 2, `30 concurrent appends took ${after} fdatasyncs`);
      assert.ok(obs.maxUncovered() <= 999);
      await store.close();
    });

    it("everyN(1000, { maxDelayMs: 20 }): under a trickle far below the count, the timer syncs", async () => {
      const policy = SyncPolicy.everyN(1000, { maxDelayMs: 20 });
      const { store, log, obs } = await observed(backend, policy);
      // 60 appends, one per >= 5 ms: at least 300 ms, fifteen delays, and never 1000 records.
      for (let i = 0; i < 60; i++) {
        await obs.track(log.append(payload()));
        await sleep(5);
      }
      // The first record's timer was due long before the trickle's last sleeps.
      obs.note([0]);
      assert.equal(obs.verdicts().at(-1)!.covered, true, "the first record waited for the count");
      assert.ok(obs.recordSyncs() >= 1);
      await untilClean(log);
      assert.equal(log.dirty, false);
      obs.note(range(60));
      assert.deepEqual(obs.verdicts().slice(-60).filter((x) => !x.covered), []);
      await store.close();
    });

    it("everyN(1000, { maxDelayMs: 50 }): close() fdatasyncs and clears the timer", async () => {
      const policy = SyncPolicy.everyN(1000, { maxDelayMs: 50 });
      const { rec, store, log, obs } = await observed(backend, policy);
      const seq = await obs.track(log.append(payload()));
      assert.equal(obs.verdicts()[0].covered, false);
      await store.close();
      obs.note([seq]);
      assert.equal(obs.verdicts().at(-1)!.covered, true, "close() did not fdatasync");
      const calls = rec.calls.length;
      await sleep(150); // three delays
      assert.equal(rec.calls.length, calls, "the timer ran after close()");
    });
  });
}

// ---- the same promises, observed as what survives a crash of the simulator ----

/** Sequence numbers readable after reopening a crashed simulator. */
async function survivors(fs: SimPlatform): Promise<number[]> {
  const store = await Store.open("/s", { platform: fs, syncPolicy: SyncPolicy.osManaged() });
  const log = await store.log("ev");
  const seqs: number[] = [];
  for await (const r of log.read()) seqs.push(r.seq);
  await store.close();
  return seqs;
}

async function simStore(syncPolicy: SyncPolicy, segmentBytes = 64 << 20) {
  const sim = new SimPlatform();
  const store = await Store.open("/s", { platform: sim, syncPolicy, segmentBytes });
  const log = await store.log("ev");
  return { sim, store, log };
}

describe("sync policies observed as what survives a power cut (simulator)", () => {
  it("always(): a power cut right after an append resolved never loses it", async () => {
    const { sim, store, log } = await simStore(SyncPolicy.always(), 4096);
    for (let i = 0; i < 25; i++) {
      await log.append(payload());
      assert.deepEqual(await survivors(sim.crash("none")), range(i + 1), `after append ${i}`);
    }
    // Concurrent appends (some roll over to new segments): freeze the disk as each one resolves.
    const snaps: [number, SimSnapshot][] = [];
    await Promise.all(
      range(400).map(() =>
        log.append(new Uint8Array(100)).then((s) => snaps.push([s, sim.freeze()]))
      ),
    );
    assert.ok(log.segmentCount > 5, "the workload should span several segments");
    for (const [seq, snap] of snaps.filter((_, i) => i % 37 === 0 || i === snaps.length - 1)) {
      const got = await survivors(snap.crash("none"));
      assert.ok(got.length > seq, `record ${seq} resolved but was lost (kept ${got.length})`);
    }
    await store.close();
  });

  for (const policy of [SyncPolicy.everyN(8), SyncPolicy.everyN(8, { maxDelayMs: 60_000 })]) {
    it(`${policy}: a power cut loses at most 7 resolved records; a process crash loses none`, async () => {
      const { sim, store, log } = await simStore(policy);
      let lostMax = 0;
      for (let i = 0; i < 40; i++) {
        await log.append(payload());
        const cut = await survivors(sim.crash("none"));
        assert.deepEqual(cut, range(cut.length));
        lostMax = Math.max(lostMax, i + 1 - cut.length);
        assert.ok(
          i + 1 - cut.length <= 7,
          `after append ${i} a power cut lost ${i + 1 - cut.length}`,
        );
        assert.deepEqual(await survivors(sim.crash("all")), range(i + 1));
      }
      assert.equal(lostMax, 7, `${policy} should let exactly 7 resolved records wait for a sync`);
      await store.close();
    });
  }

  it("everyN(1000, { maxDelayMs: 10 }): the timer makes the last append durable with no further calls", async () => {
    const { sim, store, log } = await simStore(SyncPolicy.everyN(1000, { maxDelayMs: 10 }));
    await log.append(payload());
    await log.append(payload());
    assert.deepEqual(await survivors(sim.crash("none")), []);
    assert.deepEqual(await survivors(sim.crash("all")), [0, 1]);
    await untilClean(log);
    assert.deepEqual(await survivors(sim.crash("none")), [0, 1]);
    // Again, after the timer was cleared: a new unsynced append arms a new one.
    await log.append(payload());
    assert.deepEqual(await survivors(sim.crash("none")), [0, 1]);
    await untilClean(log);
    assert.deepEqual(await survivors(sim.crash("none")), [0, 1, 2]);
    await store.close();
  });

  it("osManaged(): a process crash loses nothing resolved; a power cut loses what sync() did not cover", async () => {
    const { sim, store, log } = await simStore(SyncPolicy.osManaged());
    for (let i = 0; i < 20; i++) await log.append(payload());
    assert.deepEqual(await survivors(sim.crash("all")), range(20));
    assert.deepEqual(await survivors(sim.crash("none")), []);
    await log.sync();
    assert.deepEqual(await survivors(sim.crash("none")), range(20));
    await log.append(payload());
    assert.deepEqual(await survivors(sim.crash("none")), range(20));
    await store.close();
    assert.deepEqual(await survivors(sim.crash("none")), range(21));
  });

  it("interval(10): the timer makes the last append durable with no further calls", async () => {
    const { sim, store, log } = await simStore(SyncPolicy.interval(10));
    await log.append(payload());
    assert.deepEqual(await survivors(sim.crash("none")), []);
    assert.deepEqual(await survivors(sim.crash("all")), [0]);
    for (let waited = 0; log.dirty && waited < 5000; waited += 5) await sleep(5);
    assert.deepEqual(await survivors(sim.crash("none")), [0]);
    await store.close();
  });
});

// ---- fsync failure ----

async function faultyStore(syncPolicy: SyncPolicy, segmentBytes = 64 << 20) {
  const sim = new SimPlatform();
  const faulty = new FaultyPlatform(sim);
  const rec = recordingPlatform(faulty);
  const store = await Store.open("/s", { platform: rec, syncPolicy, segmentBytes });
  const log = await store.log("ev");
  return { sim, faulty, rec, store, log };
}

function assertPoisoned(err: unknown): boolean {
  assert.ok(err instanceof PoisonedError, `expected PoisonedError, got ${String(err)}`);
  return true;
}

async function readAll(log: Log): Promise<{ seq: number; text: string }[]> {
  const out: { seq: number; text: string }[] = [];
  for await (const r of log.read({ from: 0 })) {
    out.push({ seq: r.seq, text: new TextDecoder().decode(r.data) });
  }
  return out;
}

describe("an fdatasync failure poisons the log", () => {
  it("always(): pending and later appends reject with PoisonedError, nothing is retried, reads work", async () => {
    const { faulty, rec, store, log } = await faultyStore(SyncPolicy.always());
    assert.equal(await log.append("first"), 0);
    faulty.inject({ op: "datasync", times: Infinity });
    const before = rec.count("datasync");
    const results = await Promise.allSettled(range(5).map((i) => log.append(`doomed ${i}`)));
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assertPoisoned((r as PromiseRejectedResult).reason);
      assert.ok((r as PromiseRejectedResult).reason.cause instanceof IoError, "cause is the EIO");
    }
    assert.equal(rec.count("datasync") - before, 1, "exactly one fdatasync was attempted");
    await assert.rejects(log.append("later"), assertPoisoned);
    await assert.rejects(log.appendBatch(["a", "b"]), assertPoisoned);
    await assert.rejects(log.sync(), assertPoisoned);
    await sleep(20);
    assert.equal(rec.count("datasync") - before, 1, "the failed fdatasync was retried");
    assert.equal(faulty.injected.length, 1);
    // Reads still work and see what reached the file.
    const recs = await readAll(log);
    assert.deepEqual(recs[0], { seq: 0, text: "first" });
    assert.deepEqual(recs.map((r) => r.seq), range(recs.length));
    await store.close().catch(() => {});
    assert.equal(rec.count("datasync") - before, 1, "close retried the failed fdatasync");
  });

  it("everyN(4): the append that needed the fdatasync and every later one reject", async () => {
    const { faulty, rec, store, log } = await faultyStore(SyncPolicy.everyN(4));
    await log.append("a");
    await log.sync();
    faulty.inject({ op: "datasync", times: Infinity });
    const before = rec.count("datasync");
    for (let i = 0; i < 3; i++) await log.append(`ok ${i}`); // within the window: no fdatasync
    await assert.rejects(log.append("needs a sync"), assertPoisoned);
    await assert.rejects(log.append("after"), assertPoisoned);
    assert.equal(rec.count("datasync") - before, 1);
    assert.equal((await readAll(log))[0].text, "a");
    await store.close().catch(() => {});
    assert.equal(rec.count("datasync") - before, 1);
  });

  it("interval(5): a failed timer fdatasync poisons the log with nobody waiting", async () => {
    const { faulty, rec, store, log } = await faultyStore(SyncPolicy.interval(5));
    faulty.inject({ op: "datasync", times: Infinity });
    await log.append("resolved before the sync");
    const before = rec.count("datasync");
    for (let waited = 0; faulty.injected.length === 0 && waited < 5000; waited += 5) await sleep(5);
    assert.equal(faulty.injected.length, 1, "the timer never tried to fdatasync");
    await assert.rejects(log.append("after"), assertPoisoned);
    await sleep(30);
    assert.equal(rec.count("datasync") - before, 1, "the timer retried the failed fdatasync");
    assert.equal((await readAll(log))[0].text, "resolved before the sync");
    await store.close().catch(() => {});
  });

  it("everyN(1000, { maxDelayMs: 5 }): a failed timer fdatasync poisons the log with nobody waiting", async () => {
    const { faulty, rec, store, log } = await faultyStore(
      SyncPolicy.everyN(1000, { maxDelayMs: 5 }),
    );
    faulty.inject({ op: "datasync", times: Infinity });
    await log.append("resolved before the sync");
    const before = rec.count("datasync");
    for (let waited = 0; faulty.injected.length === 0 && waited < 5000; waited += 5) await sleep(5);
    assert.equal(faulty.injected.length, 1, "the timer never tried to fdatasync");
    await assert.rejects(log.append("after"), assertPoisoned);
    await sleep(30);
    assert.equal(rec.count("datasync") - before, 1, "the timer retried the failed fdatasync");
    assert.equal((await readAll(log))[0].text, "resolved before the sync");
    await store.close().catch(() => {});
  });

  it("a failed fdatasync while sealing a segment at rollover poisons the log", async () => {
    const { faulty, rec, store, log } = await faultyStore(SyncPolicy.osManaged(), 4096);
    await log.append(new Uint8Array(3000));
    faulty.inject({ op: "datasync", times: Infinity });
    const before = rec.count("datasync");
    await assert.rejects(log.append(new Uint8Array(3000)), assertPoisoned); // needs a rollover
    await assert.rejects(log.append("x"), assertPoisoned);
    assert.equal(rec.count("datasync") - before, 1);
    assert.equal((await readAll(log)).length, 1);
    await store.close().catch(() => {});
  });
});

// ---- everyN(n, { maxDelayMs }): construction, checks, descriptions ----

function assertInvalid(f: () => unknown, text: string): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${err}`);
    assert.ok(err.message.includes(text), `${JSON.stringify(err.message)} lacks ${text}`);
    return true;
  });
}

describe("SyncPolicy.everyN(n, { maxDelayMs })", () => {
  it("exposes n, maxDelayMs and the count bound", () => {
    const p = SyncPolicy.everyN(64, { maxDelayMs: 20 });
    assert.equal(p.kind, "everyN");
    assert.equal(p.n, 64);
    assert.equal(p.maxDelayMs, 20);
    assert.equal(p.maxUnsyncedRecords, 63);
    assert.equal(p.ms, 0);
    for (const q of [SyncPolicy.interval(10), SyncPolicy.osManaged(), SyncPolicy.always()]) {
      assert.equal(q.maxDelayMs, Infinity, `${q}`);
    }
    assert.equal(SyncPolicy.everyN().maxDelayMs, Infinity);
  });

  it("without maxDelayMs it is everyN(n) as before", () => {
    for (
      const p of [
        SyncPolicy.everyN(64),
        SyncPolicy.everyN(64, {}),
        SyncPolicy.everyN(64, undefined),
        SyncPolicy.everyN(64, { maxDelayMs: undefined }),
      ]
    ) {
      assert.equal(p.kind, "everyN");
      assert.equal(p.maxDelayMs, Infinity);
      assert.equal(`${p}`, "everyN(64)");
      assert.equal(p.maxLossOnPowerCut(), "at most 63 resolved records");
    }
  });

  it("toString and maxLossOnPowerCut", () => {
    const p = SyncPolicy.everyN(64, { maxDelayMs: 20 });
    assert.equal(p.toString(), "everyN(64, { maxDelayMs: 20 })");
    assert.equal(
      p.maxLossOnPowerCut(),
      "at most 63 resolved records, none resolved more than max(20 ms, one fdatasync) before " +
        "the last fdatasync started",
    );
    assert.equal(`${SyncPolicy.everyN(2, { maxDelayMs: 1 })}`, "everyN(2, { maxDelayMs: 1 })");
  });

  it("everyN(1, { maxDelayMs }) is always()", () => {
    const p = SyncPolicy.everyN(1, { maxDelayMs: 20 });
    assert.equal(p.kind, "always");
    assert.equal(p.n, 1);
    assert.equal(p.maxDelayMs, Infinity);
    assert.equal(p.maxUnsyncedRecords, 0);
    assert.equal(`${p}`, "always()");
    assert.equal(p.maxLossOnPowerCut(), "nothing that resolved");
    // Its options are still checked.
    assertInvalid(() => SyncPolicy.everyN(1, { maxDelayMs: 0 }), "maxDelayMs");
  });

  it("accepts 1 to 2^31 - 1 ms (the longest timer delay)", () => {
    assert.equal(SyncPolicy.everyN(8, { maxDelayMs: 1 }).maxDelayMs, 1);
    assert.equal(SyncPolicy.everyN(8, { maxDelayMs: 2 ** 31 - 1 }).maxDelayMs, 2 ** 31 - 1);
  });

  it("refuses a maxDelayMs that is not a whole number in [1, 2^31 - 1]", () => {
    const bad: unknown[] = [0, -1, 2 ** 31, 1.5, NaN, Infinity, "20", null, 20n, true];
    for (const v of bad) {
      assertInvalid(
        () => SyncPolicy.everyN(8, { maxDelayMs: v as number }),
        "everyN: maxDelayMs must be a whole number in [1, 2147483647]",
      );
    }
    assertInvalid(() => SyncPolicy.everyN(8, { maxDelayMs: "20" as never }), '"20" (a string)');
  });

  it("refuses unknown option keys and an options value that is not an object", () => {
    assertInvalid(
      () => SyncPolicy.everyN(8, { maxdelayms: 20 } as never),
      'everyN options: unknown option "maxdelayms" (did you mean "maxDelayMs"?)',
    );
    assertInvalid(
      () => SyncPolicy.everyN(8, { maxDelayMs: 20, ms: 5 } as never),
      'unknown option "ms" (known: maxDelayMs)',
    );
    for (const v of [null, 20, "20", [20]]) {
      assertInvalid(() => SyncPolicy.everyN(8, v as never), "everyN options must be an object");
    }
  });

  it("still checks n first", () => {
    assertInvalid(() => SyncPolicy.everyN(0, { maxDelayMs: 20 }), "everyN(n)");
    assertInvalid(() => SyncPolicy.everyN(1.5, { maxDelayMs: 20 }), "everyN(n)");
  });

  it("is accepted by Store.open", async () => {
    const policy = SyncPolicy.everyN(16, { maxDelayMs: 20 });
    const store = await Store.open("/s", { platform: new SimPlatform(), syncPolicy: policy });
    const log = await store.log("ev");
    await log.append("x");
    await store.close();
  });
});
