// The Store: durable creation of its directory, log names (a bad one is InvalidArgumentError and
// never a file outside the store), one writer per directory (LockedError in this process; the
// cross-process and cross-runtime cases are in lock.test.ts), ClosedError on every method of a
// closed store or log, `await using`, store.sync() touching only dirty logs, close() writing a last
// mark slot only when at least 1 MiB lies after the newest one, options, file mode.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import process from "node:process";
import {
  ClosedError,
  InvalidArgumentError,
  LockedError,
  type Log,
  Store,
  SyncPolicy,
} from "../mod.ts";
import { validateLogName } from "../src/log_name.ts";
import { defaultPlatform } from "../src/platform/detect.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import type { Platform } from "../src/platform/types.ts";

let disk: Platform;
let root = "";
let n = 0;
before(async () => {
  disk = await defaultPlatform();
  root = mkdtempSync(join(tmpdir(), "khipu-store-"));
});
after(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => join(root, `s${++n}`);

/** Every path under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(join(d, e.name), r);
    }
  };
  walk(dir, "");
  return out.sort();
}

const BAD_NAMES = [
  "../x",
  "a/b",
  "a\\b",
  "/abs",
  ".",
  "..",
  "",
  ".hidden",
  "-dash",
  "trailing.",
  "LOCK",
  "lock",
  "con",
  "CON",
  "nul.txt",
  "com1",
  "LPT9",
  "x".repeat(101),
  "nul\0byte",
  "\0",
  "sp ace",
  "tab\t",
  "new\nline",
  "é",
  "a:b",
  "a*b",
];
const GOOD_NAMES = ["a", "events", "A_b-c.d", "x".repeat(100), "_", "9", "LOCK2", "orders-2026.v1"];

describe("store directory and log names", () => {
  it("creates a missing store directory, with its missing parents, durably", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/a/b/store", { platform: sim });
    const log = await store.log("ev");
    await log.append("x");
    await log.sync();
    const after = sim.crash("none");
    assert.ok((await after.stat("/a/b/store"))?.isDirectory, "store directory lost");
    assert.ok((await after.stat("/a/b/store/ev"))?.isDirectory, "log directory lost");
    await store.close();
    // On the real disk too, and a trailing slash is accepted.
    const dir = join(freshDir(), "deeper", "store");
    const s2 = await Store.open(dir + "/");
    assert.equal(s2.path, dir);
    await (await s2.log("ev")).append("y");
    await s2.close();
    assert.ok(existsSync(join(dir, "ev")));
  });

  it("a bad log name is InvalidArgumentError and creates no file anywhere", async () => {
    const dir = freshDir();
    const store = await Store.open(dir);
    const parent = root;
    const before = tree(parent);
    for (const name of BAD_NAMES) {
      await assert.rejects(store.log(name), InvalidArgumentError, JSON.stringify(name));
      assert.throws(() => validateLogName(name), InvalidArgumentError, JSON.stringify(name));
    }
    for (const bad of [undefined, null, 7, {}]) {
      await assert.rejects(store.log(bad as unknown as string), InvalidArgumentError);
    }
    assert.deepEqual(tree(parent), before, "a bad name created a file");
    assert.deepEqual(store.openLogs, []);
    for (const name of GOOD_NAMES) {
      validateLogName(name);
      const log = await store.log(name);
      assert.equal(log.name, name);
      assert.equal(log.path, `${dir}/${name}`);
    }
    assert.deepEqual(
      readdirSync(dir).filter((f) => f !== "LOCK").sort(),
      [...GOOD_NAMES].sort(),
    );
    await store.close();
  });

  it("the same name gives the same Log, even when asked for concurrently", async () => {
    const store = await Store.open(freshDir());
    const [a, b] = await Promise.all([store.log("ev"), store.log("ev")]);
    assert.equal(a, b);
    assert.equal(await store.log("ev"), a);
    const other = await store.log("other");
    assert.notEqual(other, a);
    await a.append("to ev");
    assert.equal(other.nextSeq, 0);
    assert.deepEqual(store.openLogs.sort(), ["ev", "other"]);
    await store.close();
  });
});

describe("one writer per store directory", () => {
  it("a second Store.open of an open directory fails with LockedError until the first closes", async () => {
    const dir = freshDir();
    const first = await Store.open(dir);
    await (await first.log("ev")).append("one");
    await assert.rejects(Store.open(dir), LockedError);
    await assert.rejects(Store.open(dir + "/"), LockedError);
    await assert.rejects(Store.open(relative(process.cwd(), dir)), LockedError);
    await assert.rejects(Store.open(join(dir, "..", basename(dir))), LockedError);
    if (process.platform !== "win32") {
      symlinkSync(dir, dir + "-link");
      await assert.rejects(Store.open(dir + "-link"), LockedError, "through a symlink");
    }
    await first.close();
    const second = await Store.open(dir);
    const log = await second.log("ev");
    assert.equal(log.nextSeq, 1);
    await second.close();
  });

  it("two concurrent opens of one directory: exactly one wins", async () => {
    const dir = freshDir();
    const results = await Promise.allSettled([Store.open(dir), Store.open(dir), Store.open(dir)]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    assert.equal(won.length, 1);
    for (const r of lost) assert.ok((r as PromiseRejectedResult).reason instanceof LockedError);
    await (won[0] as PromiseFulfilledResult<Store>).value.close();
  });
});

async function assertClosed(log: Log): Promise<void> {
  await assert.rejects(log.append("x"), ClosedError);
  await assert.rejects(log.appendBatch(["x"]), ClosedError);
  await assert.rejects(log.sync(), ClosedError);
  await assert.rejects(log.truncateBefore(0), ClosedError);
  assert.throws(() => log.read(), ClosedError);
  assert.throws(() => log.read({ from: 0, follow: true }), ClosedError);
  assert.throws(() => log.follow(), ClosedError);
  assert.equal(log.closed, true);
  await log.close(); // idempotent
}

describe("closed stores and logs", () => {
  it("every method of a closed store and of its logs fails with ClosedError", async () => {
    const store = await Store.open(freshDir());
    const log = await store.log("ev");
    await log.append("a");
    await store.close();
    await assert.rejects(store.log("ev"), ClosedError);
    await assert.rejects(store.log("new"), ClosedError);
    await assert.rejects(store.sync(), ClosedError);
    await store.close(); // idempotent
    await assertClosed(log);
  });

  it("a log closed on its own refuses every method; its store still closes", async () => {
    const store = await Store.open(freshDir());
    const log = await store.log("ev");
    await log.append("a");
    await log.close();
    await assertClosed(log);
    await store.close();
  });

  it("appends pending when close() is called are written and synced, not dropped", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/s", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
    const log = await store.log("ev");
    const other = await store.log("other");
    const pending = [log.append("a"), log.appendBatch(["b", "c"]), other.append("o")];
    const closingLog = log.close(); // a log refuses appends from the moment close() is called
    await assert.rejects(log.append("too late"), ClosedError);
    const closing = store.close();
    assert.deepEqual(await Promise.all(pending), [0, [1, 2], 0]);
    await closingLog;
    await closing;
    const s2 = await Store.open("/s", { platform: sim.crash("none") });
    for (const [name, want] of [["ev", ["a", "b", "c"]], ["other", ["o"]]] as const) {
      const got: string[] = [];
      for await (const r of (await s2.log(name)).read()) got.push(new TextDecoder().decode(r.data));
      assert.deepEqual(got, want);
    }
    await s2.close();
  });

  it("await using closes the store (and its logs) at the end of the scope", async () => {
    const dir = freshDir();
    let log: Log;
    {
      await using store = await Store.open(dir);
      log = await store.log("ev");
      await log.append("inside");
      await assert.rejects(Store.open(dir), LockedError);
    }
    await assert.rejects(log.append("outside"), ClosedError);
    await using again = await Store.open(dir); // the lock was released
    assert.equal((await again.log("ev")).nextSeq, 1);
  });
});

describe("store.sync()", () => {
  it("fdatasyncs only the logs that are dirty", async () => {
    const rec = recordingPlatform(disk);
    const dir = freshDir();
    const store = await Store.open(dir, { platform: rec, syncPolicy: SyncPolicy.osManaged() });
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((x) => store.log(x)));
    await b.append("b"); // make b's segment exist, then clean
    await b.sync();
    await a.append("a");
    await c.appendBatch(["c1", "c2"]);
    assert.deepEqual([a.dirty, b.dirty, c.dirty], [true, false, true]);
    rec.clear();
    await store.sync();
    const synced = rec.calls.filter((x) => x.op === "datasync").map((x) =>
      x.path.slice(dir.length)
    );
    assert.deepEqual(synced.map((p) => p.split("/")[1]).sort(), ["a", "c"]);
    assert.deepEqual([a.dirty, b.dirty, c.dirty], [false, false, false]);
    rec.clear();
    await store.sync();
    assert.equal(rec.count("datasync"), 0, "a clean store was synced again");
    await store.close();
  });
});

describe("close(): the last mark slot", () => {
  const MiB = 1 << 20;
  const SEG = "/s/ev/00000000000000000000.seg";
  const isSlot = (c: { op: string; position?: number; bytes?: number }) =>
    c.op === "writeAt" && (c.position === 80 || c.position === 120) && c.bytes === 40;
  /** Generation and durable end of the newer mark slot as a power cut now would leave them. */
  const durableMark = (sim: SimPlatform) => {
    const b = sim.crash("none").fileBytes(SEG)!;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const slot = (at: number) => ({
      generation: Number(v.getBigUint64(at, true)),
      durableEnd: Number(v.getBigUint64(at + 8, true)),
    });
    const [a, c] = [slot(80), slot(120)];
    return a.generation > c.generation ? a : c;
  };
  const dataEnd = async (sim: SimPlatform) => {
    const store = await Store.open("/s", { platform: sim.crash("none") });
    const log = await store.log("ev");
    const n = log.nextSeq;
    await store.close();
    return n;
  };

  for (
    const [label, kib, midSync, finalSync] of [
      [
        "2 MiB after the newest durable slot: a second fdatasync makes the last slot durable",
        2048,
        false,
        true,
      ],
      ["96 KiB after it: nothing more than the fdatasync and its slot", 96, false, false],
      [
        "1.5 MiB written, 0.8 MiB after the durable slot of a sync() in between: no second fdatasync",
        1536,
        true,
        false,
      ],
    ] as const
  ) {
    it(label, async () => {
      const sim = new SimPlatform();
      const rec = recordingPlatform(sim);
      const store = await Store.open("/s", {
        platform: rec,
        syncPolicy: SyncPolicy.osManaged(),
        segmentBytes: 8 * MiB,
      });
      const log = await store.log("ev");
      const records = kib / 8; // 8 KiB each
      for (let i = 0; i < records; i++) {
        await log.append(new Uint8Array(8192).fill(i & 0xff));
        if (midSync && i === Math.floor(records * 0.45)) {
          await log.sync(); // slot 1 names its end, ~0.7 MiB in
          await log.append("one more");
          await log.sync(); // makes slot 1 durable; slot 2 names one more record
        }
      }
      rec.clear();
      await store.close();
      const segCalls = rec.calls.filter((c) => c.path === SEG);
      // The last slot comes after the close's fdatasync and names all of it.
      const ops = segCalls.filter((c) => isSlot(c) || c.op === "datasync").map((c) => c.op);
      assert.deepEqual(ops, ["datasync", "writeAt", ...(finalSync ? ["datasync"] : [])]);
      const mark = durableMark(sim);
      const file = sim.fileBytes(SEG)!;
      if (finalSync) {
        assert.equal(mark.generation, 1);
        assert.ok(mark.durableEnd > 2 * MiB && mark.durableEnd < file.length);
        // The next open starts there: it does not read the 2 MiB of records again.
        const reopen = recordingPlatform(sim.crash("none"));
        const again = await Store.open("/s", { platform: reopen });
        assert.equal((await again.log("ev")).nextSeq, records);
        const read = reopen.calls.filter((c) => c.op === "readAt" && c.path === SEG)
          .reduce((n, c) => n + c.bytes!, 0);
        await again.close();
        assert.ok(read < 1.5 * MiB, `the open read ${read} bytes of the segment`);
      } else {
        // The last slot is not durable: a power cut leaves the one the close's fdatasync covered.
        assert.equal(mark.generation, midSync ? 2 : 0);
        assert.equal(await dataEnd(sim), records + (midSync ? 1 : 0), "every record durable");
      }
    });
  }
});

describe("options", () => {
  it("rejects out-of-range options and foreign policies with InvalidArgumentError", async () => {
    const dir = freshDir();
    const bad = [
      { segmentBytes: 100 },
      { segmentBytes: 1.5e4 + 0.5 },
      { bufferBytes: 0 },
      { maxRecordBytes: -1 },
      { fileMode: 0o10000 },
      { syncPolicy: { kind: "always", n: 1, ms: 0 } as unknown as SyncPolicy },
    ];
    for (const opts of bad) {
      await assert.rejects(Store.open(dir, opts), InvalidArgumentError, JSON.stringify(opts));
    }
    await assert.rejects(Store.open(""), InvalidArgumentError);
    assert.ok(!existsSync(dir), "a rejected open created the directory");
    for (
      const f of [
        () => SyncPolicy.everyN(0),
        () => SyncPolicy.everyN(1.5),
        () => SyncPolicy.interval(0),
      ]
    ) {
      assert.throws(f, InvalidArgumentError);
    }
    assert.equal(SyncPolicy.everyN(1).kind, "always");
    assert.equal(SyncPolicy.everyN().n, 64);
    const store = await Store.open(dir);
    assert.equal(store.options.syncPolicy.kind, "everyN");
    assert.equal(store.options.syncPolicy.n, 64);
    assert.equal(store.options.segmentBytes, 64 << 20);
    await store.close();
  });

  it(
    "creates segment files with the configured mode",
    { skip: process.platform === "win32" },
    async () => {
      for (const mode of [0o600, 0o640]) {
        const dir = freshDir();
        mkdirSync(dir);
        const store = await Store.open(dir, { fileMode: mode, segmentBytes: 4096 });
        const log = await store.log("ev");
        for (let i = 0; i < 60; i++) await log.append(new Uint8Array(100)); // several segments
        await store.close();
        const segs = readdirSync(join(dir, "ev"));
        assert.ok(segs.length > 1);
        for (const s of segs) {
          assert.equal(statSync(join(dir, "ev", s)).mode & 0o777, mode, `${s} mode`);
        }
      }
    },
  );
});

describe("log handles", () => {
  it("store.log(name) after log.close() opens a fresh Log that continues the sequence", async () => {
    const store = await Store.open(freshDir(), { platform: disk });
    const first = await store.log("events");
    await first.append("one");
    await first.close();
    const second = await store.log("events");
    assert.notEqual(second, first);
    assert.equal(second.closed, false);
    assert.equal(await second.append("two"), 1);
    assert.equal(await store.log("events"), second);
    await store.close();
  });

  it("a name differing only in case from an open log is refused (one directory on macOS/Windows)", async () => {
    const store = await Store.open(freshDir(), { platform: disk });
    await store.log("events");
    await assert.rejects(store.log("Events"), InvalidArgumentError);
    assert.deepEqual(store.openLogs, ["events"]);
    await store.close();
  });

  it("an append in the same turn as store.close() is refused with ClosedError", async () => {
    const store = await Store.open(freshDir(), { platform: disk });
    const log = await store.log("events");
    const closing = store.close();
    await assert.rejects(log.append("late"), ClosedError);
    await closing;
  });
});
