// Group commit: concurrent appends share writes and fdatasyncs; appends that arrive while an
// fdatasync is in flight are written at once and wait for the next one; each append resolves only
// after an fdatasync that followed its write. Counted through the recording platform.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Log, Store, SyncPolicy } from "../mod.ts";
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
    const obs = new SyncObserver(rec, L);
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
