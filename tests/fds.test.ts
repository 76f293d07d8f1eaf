// close() releases every file descriptor and timer: /proc/self/fd is counted across 1,000
// open/append/read/close cycles on Linux; the simulator's open-handle count is checked everywhere
// (early-exited readers, aborted followers, rollovers, retention, and the opens that do more than
// read: a v1 newest segment sealed and followed by a v2 one, a refused damaged log, a repair); the
// interval policy's timer is cleared by close(), and a process that used it exits on its own.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { Store, SyncPolicy } from "../mod.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { defaultPlatform } from "../src/platform/detect.ts";
import type { Platform } from "../src/platform/types.ts";
import { concat, wrapFile } from "./helpers.ts";
import { segName, specFrame, specHeader } from "./spec_codec.ts";
import { ROOT, runScript } from "./fixtures/runtimes.ts";

const isLinux = process.platform === "linux";
let root = "";
before(() => {
  root = mkdtempSync(join(tmpdir(), "khipu-fds-"));
});
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * The real platform with file fdatasync/fsync turned into no-ops: every open, close and directory
 * sync is real (so is every descriptor), but 1,000 cycles do not wait for 2,000 disk flushes.
 */
function withoutFileSyncs(inner: Platform): Platform {
  return {
    name: `nosync(${inner.name})`,
    open: async (path, how, mode) => {
      const f = await inner.open(path, how, mode);
      return wrapFile(f, { datasync: () => Promise.resolve(), sync: () => Promise.resolve() });
    },
    syncDir: (p) => inner.syncDir(p),
    rename: (a, b) => inner.rename(a, b),
    unlink: (p) => inner.unlink(p),
    mkdir: (p, m) => inner.mkdir(p, m),
    readdir: (p) => inner.readdir(p),
    remove: (p) => inner.remove(p),
    stat: (p) => inner.stat(p),
    lstat: (p) => inner.lstat(p),
    lock: (p, m) => inner.lock(p, m),
    watch: (d, f) => inner.watch(d, f),
  };
}

/**
 * Open descriptors of this process that name a file or directory (the runtime's own sockets,
 * pipes and event fds, which some runtimes open lazily at any time, are not ours to count).
 */
function fileFds(): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the fd readdir itself used, closed by now
    }
    if (target.startsWith("/")) out.set(fd, target);
  }
  return out;
}
const ours = (fds: Map<string, string>) => [...fds.values()].filter((t) => t.startsWith(root));

describe("file descriptors", () => {
  it("1,000 open/append/read/close cycles leave no descriptor open (/proc/self/fd)", {
    skip: !isLinux && "counts /proc/self/fd",
    timeout: 120_000,
  }, async () => {
    const dir = join(root, "cycles");
    const real = await defaultPlatform();
    const fast = withoutFileSyncs(real);
    const cycle = async (i: number, check?: () => void) => {
      const store = await Store.open(dir, {
        syncPolicy: i % 2 ? SyncPolicy.osManaged() : SyncPolicy.everyN(64),
        segmentBytes: 4096,
        platform: i % 20 === 0 ? real : fast, // every 20th cycle with real fdatasyncs
      });
      const log = await store.log(i % 3 ? "ev" : "other");
      await log.append(`record ${i} ${"x".repeat(200)}`);
      for await (const _ of log.read({ from: 0 })) break; // a reader left early
      check?.();
      await store.close();
    };
    await cycle(0);
    await cycle(1);
    const before = fileFds();
    assert.deepEqual(ours(before), []);
    // The count can see our descriptors: while open, the store holds some.
    await cycle(2, () => assert.ok(ours(fileFds()).length > 0, "no descriptor of ours seen"));
    for (let i = 3; i < 1003; i++) await cycle(i);
    const afterFds = fileFds();
    assert.deepEqual(ours(afterFds), [], "descriptors left open in the store");
    assert.equal(
      afterFds.size,
      before.size,
      `before ${[...before.values()]}, after ${[...afterFds.values()]}`,
    );
    assert.ok(readdirSync(join(dir, "ev")).length > 10, "the cycles should have rolled over");
  });

  it("readers, followers, rollover and retention release every simulated handle", async () => {
    const sim = new SimPlatform();
    for (let i = 0; i < 100; i++) {
      const store = await Store.open("/s", { platform: sim, segmentBytes: 4096 });
      const log = await store.log("ev");
      const ac = new AbortController();
      const follower = (async () => {
        let n = 0;
        for await (const _ of log.follow({ from: 0, signal: ac.signal })) if (++n === 3) break;
      })();
      const waiting = (async () => { // ends when the log closes
        for await (const _ of log.read({ from: log.nextSeq + 1000, follow: true }));
      })();
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => log.append(`${i}:${j} ${"y".repeat(150)}`)),
      );
      for await (const r of log.read({ from: Math.max(0, log.nextSeq - 50) })) {
        if ((r.seq + i) % 10 === 0) break;
      }
      await follower;
      if (i % 10 === 9) await log.truncateBefore(log.nextSeq - 30);
      assert.ok(sim.openFileCount > 0);
      await store.close();
      await waiting;
      ac.abort();
      assert.equal(sim.openFileCount, 0, `cycle ${i}: ${sim.openFileCount} handles left open`);
    }
  });
});

describe("file descriptors: opens that convert, refuse or repair", () => {
  it("a v1 newest segment (sealed, a v2 segment added), a refused damaged log and a repair release every handle", async () => {
    const sim = new SimPlatform();
    const enc = new TextEncoder();
    await sim.mkdir("/s");
    await sim.mkdir("/s/ev");
    // A v1 writer's active segment: five records, no seal (FORMAT.md's v1 layout).
    const v1 = [0, 1, 2, 3, 4].map((i) => specFrame(1, i, 1_000 + i, enc.encode(`v1 record ${i}`)));
    sim.setFileBytes(`/s/ev/${segName(0)}`, concat(specHeader(0, 1024), ...v1));
    const opts = { platform: sim, segmentBytes: 4096 };
    const seqs = async (log: Awaited<ReturnType<Store["log"]>>) => {
      const out: number[] = [];
      for await (const r of log.read()) out.push(r.seq);
      return out;
    };
    let store = await Store.open("/s", opts);
    let log = await store.log("ev");
    assert.equal(log.segmentCount, 2, "the v1 segment was sealed and a v2 one added");
    assert.deepEqual(await seqs(log), [0, 1, 2, 3, 4]);
    for (let i = 0; i < 40; i++) await log.append(`v2 ${i} ${"z".repeat(150)}`); // rollovers
    await store.close();
    assert.equal(sim.openFileCount, 0, "after converting a v1 segment");
    // Damage the seal of the second segment (the first v2 one): a sealed segment is refused...
    const names = sim.listFiles().filter((p) => p.endsWith(".seg")).sort();
    assert.ok(names.length >= 3, names.join()); // v1, then sealed v2 ones, then the active one
    const b = sim.fileBytes(names[1])!;
    b[b.length - 6] ^= 0x5a;
    sim.setFileBytes(names[1], b);
    store = await Store.open("/s", opts);
    await assert.rejects(
      store.log("ev"),
      (e: unknown) => (e as { code?: string }).code === "CORRUPTION",
    );
    await store.close();
    assert.equal(sim.openFileCount, 0, "after refusing a damaged log");
    // ...and repaired: copied aside, its records sealed again, the later segments kept.
    store = await Store.open("/s", { ...opts, repair: true });
    log = await store.log("ev");
    assert.equal(log.openReport.repaired.length, 1, JSON.stringify(log.openReport.repaired));
    assert.equal((await seqs(log))[0], 0);
    await log.append("after the repair");
    await store.close();
    assert.equal(sim.openFileCount, 0, "after a repair");
    store = await Store.open("/s", opts);
    log = await store.log("ev");
    await log.append("and again");
    await store.close();
    assert.equal(sim.openFileCount, 0);
  });
});

describe("timers", () => {
  it("close() clears the interval policy's pending timer", async () => {
    const MS = 3_456_789; // recognisable among the test runner's own timers
    const armed = new Map<unknown, boolean>(); // timer -> still pending
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = (fn: () => void, ms?: number, ...rest: unknown[]) => {
      const t = realSet(fn, ms, ...rest);
      if (ms === MS) armed.set(t, true);
      return t;
    };
    g.clearTimeout = (t: Parameters<typeof clearTimeout>[0]) => {
      if (armed.has(t)) armed.set(t, false);
      return realClear(t);
    };
    try {
      const pending = () => [...armed.values()].filter(Boolean).length;
      const sim = new SimPlatform();
      const store = await Store.open("/s", { platform: sim, syncPolicy: SyncPolicy.interval(MS) });
      const [a, b] = await Promise.all([store.log("a"), store.log("b")]);
      await a.append("dirty");
      await b.append("dirty");
      assert.equal(pending(), 2, "a dirty log under interval() should have a timer armed");
      await a.close();
      assert.equal(pending(), 1, "log.close() left its timer pending");
      await store.close();
      assert.equal(pending(), 0, "store.close() left a timer pending");
    } finally {
      g.setTimeout = realSet;
      g.clearTimeout = realClear;
    }
  });

  it("a process that appended under interval(60 s) and closed its store exits on its own", {
    timeout: 60_000,
  }, async () => {
    const mod = pathToFileURL(join(ROOT, "mod.ts")).href;
    const { code, out, err } = await runScript(
      root,
      `import { Store, SyncPolicy } from ${JSON.stringify(mod)};
const store = await Store.open(${
        JSON.stringify(join(root, "exit"))
      }, { syncPolicy: SyncPolicy.interval(60_000) });
const log = await store.log("ev");
const follower = (async () => { for await (const _ of log.follow({ signal: new AbortController().signal })); })();
await log.append("armed");
await store.close();
await follower;
console.log("closed");
`,
    );
    assert.equal(code, 0, `child ${code}: ${out} ${err}`);
    assert.match(out, /closed/);
  });
});
