// Durable named cursors (src/cursor.ts): creation at the log's first seq, commit and resume across
// reopen, the monotonic rule, reset, lag, list and delete, the cursor lock (in this process,
// against a child process, take-over after kill -9), group commit (N commits, few fdatasyncs),
// power cuts after resolved and in-flight commits, damaged and foreign cursor files, and a
// consumer killed with SIGKILL that resumes at its last resolved commit (at-least-once).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  LockedError,
  NotFoundError,
  Store,
  SyncPolicy,
} from "../mod.ts";
import { CRASH_MODES, FaultyPlatform, recordingPlatform, SimPlatform } from "../testing.ts";
import type { Log } from "../src/log.ts";
import type { Platform } from "../src/platform/types.ts";
import {
  CURSOR_FILE_BYTES,
  cursorSeed,
  decodeCursorFile,
  encodeCursorFile,
  encodeCursorSlot,
} from "../src/format/cursor_file.ts";
import { readU64 } from "../src/format/bytes.ts";
import { currentRuntime, ROOT, runtimeCommand } from "./fixtures/runtimes.ts";
import { realDisk, wrapFile } from "./helpers.ts";

const rt = currentRuntime();
const disk = realDisk("cursor");

/** A store (at `dir`, default /data) with `n` records in log "orders". */
async function setup(
  platform: Platform,
  n: number,
  { dir = "/data", segmentBytes }: { dir?: string; segmentBytes?: number } = {},
) {
  const store = await Store.open(dir, { platform, syncPolicy: SyncPolicy.always(), segmentBytes });
  const log = await store.log("orders");
  if (n > 0) await log.appendBatch(Array.from({ length: n }, (_, i) => `order ${i}`));
  return { store, log };
}

const cursorFile = (log: Log, name: string) => `${log.path}/cursors/${name}.cursor`;

async function seqs(it: AsyncIterable<{ seq: number }>): Promise<number[]> {
  const out: number[] = [];
  for await (const r of it) out.push(r.seq);
  return out;
}

async function rejects<T extends Error>(
  p: Promise<unknown>,
  type: new (...args: never[]) => T,
  message?: RegExp,
): Promise<T> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
  if (message) assert.match(err.message, message);
  return err;
}

describe("cursor: create, commit, resume", () => {
  it("is created at the log's first seq, whole, with no temporary file left", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 0, { segmentBytes: 4096 });
    for (let i = 0; i < 20; i++) await log.append(new Uint8Array(1000));
    await log.truncateBefore(10);
    assert.ok(log.firstSeq > 0);
    const cur = await log.cursor("billing");
    assert.equal(cur.position, log.firstSeq);
    assert.equal(cur.lag, log.nextSeq - log.firstSeq);
    assert.equal(sim.fileBytes(cursorFile(log, "billing"))?.length, CURSOR_FILE_BYTES);
    assert.deepEqual(
      sim.listFiles().filter((p) => p.includes("/cursors/")).map((p) => p.split("/").pop()),
      ["billing.cursor", "billing.lock"],
    );
    // The creation is durable once openCursor resolves.
    const after = sim.crash("none");
    assert.equal(after.fileBytes(cursorFile(log, "billing"))?.length, CURSOR_FILE_BYTES);
    await cur.close();
    await store.close();
  });

  it("commits survive close and reopen, and read() starts at the position", async () => {
    const sim = new SimPlatform();
    let { store, log } = await setup(sim, 10);
    const cur = await log.cursor("billing");
    assert.deepEqual(await seqs(cur.read({ to: 3 })), [0, 1, 2]);
    await cur.commit(5);
    assert.equal(cur.position, 6);
    assert.equal(cur.lag, 4);
    await cur.close();
    assert.equal(cur.closed, true);
    await store.close();
    ({ store, log } = await setup(sim, 0));
    const again = await log.cursor("billing");
    assert.equal(again.position, 6);
    assert.deepEqual(await seqs(again.read()), [6, 7, 8, 9]);
    await again.close();
    await store.close();
  });

  it("follow() yields records appended later, from the position", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 3);
    await using cur = await log.cursor("billing");
    await cur.commit(1);
    const stop = new AbortController();
    const seen: number[] = [];
    const following = (async () => {
      for await (const r of cur.follow({ signal: stop.signal })) {
        seen.push(r.seq);
        await cur.commit(r.seq);
        if (r.seq === 4) stop.abort();
      }
    })();
    await log.appendBatch(["d", "e"]);
    await following;
    assert.deepEqual(seen, [2, 3, 4]);
    assert.equal(cur.position, 5);
    await store.close();
  });

  it("reads only durable records by default, committed: false the rest; options are checked", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/data", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
    const log = await store.log("orders");
    await log.appendBatch(["a", "b", "c"]);
    await log.sync();
    await log.appendBatch(["d", "e"]); // acknowledged, not yet durable
    await using cur = await log.cursor("billing");
    await cur.commit(0);
    assert.deepEqual(await seqs(cur.read()), [1, 2]);
    assert.deepEqual(await seqs(cur.read({ committed: false })), [1, 2, 3, 4]);
    assert.deepEqual(await seqs(cur.read({ committed: false, to: 2 })), [1]);
    assert.throws(() => cur.follow({ to: 3 }), InvalidArgumentError);
    assert.throws(() => cur.read({ comitted: true } as never), /unknown option "comitted"/);
    assert.throws(() => cur.read({ committed: "yes" } as never), InvalidArgumentError);
    await store.close();
  });
});

describe("cursor: the commit rules", () => {
  it("is monotonic, refuses records not yet appended and values that are not whole numbers", async () => {
    const rec = recordingPlatform(new SimPlatform());
    const { store, log } = await setup(rec, 10);
    await using cur = await log.cursor("billing");
    await cur.commit(4);
    await rejects(cur.commit(3), InvalidArgumentError, /goes back: the cursor is at 5/);
    await rejects(cur.commit(10), InvalidArgumentError, /no such record yet.*next seq is 10/);
    for (const bad of [-1, 1.5, NaN, Infinity, "6", null, 2 ** 53]) {
      await rejects(cur.commit(bad as number), InvalidArgumentError);
    }
    assert.equal(cur.position, 5);
    // Committing the record just before the position again changes nothing and writes nothing.
    rec.clear();
    await cur.commit(4);
    assert.equal(rec.count("writeAt") + rec.count("datasync"), 0);
    await cur.commit(9);
    assert.equal(cur.position, 10);
    assert.equal(cur.lag, 0);
    await log.append("late");
    assert.equal(cur.lag, 1);
    await store.close();
  });

  it("reset moves back and forward (by seq or by time), durably, up to nextSeq", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 5);
    const cur = await log.cursor("billing");
    await cur.commit(3);
    await cur.reset(1);
    assert.equal(cur.position, 1);
    await cur.reset(5); // the end: nothing left to process
    assert.equal(cur.lag, 0);
    await rejects(cur.reset(6), InvalidArgumentError, /past the log's next seq 5/);
    await rejects(cur.reset(-1), InvalidArgumentError);
    await rejects(cur.reset({ tme: 1 } as never), InvalidArgumentError, /unknown option "tme"/);
    await new Promise((r) => setTimeout(r, 5));
    const cutoff = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    await log.appendBatch(["after the cutoff", "and another"]);
    await cur.reset({ time: cutoff });
    assert.equal(cur.position, 5);
    await cur.reset({ time: 0 });
    assert.equal(cur.position, 0);
    // A power cut after reset resolved keeps it.
    const after = sim.crash("none");
    await cur.close();
    await store.close();
    const { store: s2, log: l2 } = await setup(after, 0);
    const back = await l2.cursor("billing");
    assert.equal(back.position, 0);
    await back.close();
    await s2.close();
  });

  it("a closed cursor, or one of a closed log, refuses everything; close waits for commits", async () => {
    const rec = recordingPlatform(new SimPlatform());
    const { store, log } = await setup(rec, 5);
    const cur = await log.cursor("billing");
    const committing = cur.commit(2);
    const closing = cur.close();
    assert.equal(cur.closed, true);
    await closing;
    await committing; // written before the file closed
    assert.equal(rec.count("datasync", cursorFile(log, "billing")), 1);
    await cur.close(); // idempotent
    await rejects(cur.commit(3), ClosedError, /cursor "billing" is closed/);
    await rejects(cur.reset(0), ClosedError);
    assert.throws(() => cur.read(), ClosedError);
    const other = await log.cursor("billing"); // the lock was released
    assert.equal(other.position, 3);
    await store.close();
    assert.equal(other.closed, true, "the log closes its cursors");
    await rejects(other.commit(4), ClosedError);
    await rejects(log.cursor("x"), ClosedError);
  });

  it("a failed fdatasync rejects the commit; the next commit writes again; a crash keeps one of them", async () => {
    const sim = new SimPlatform();
    const faulty = new FaultyPlatform(sim);
    const { store, log } = await setup(faulty, 10);
    await using cur = await log.cursor("billing");
    await cur.commit(2);
    faulty.inject({ op: "datasync", path: ".cursor" });
    const err = await rejects(cur.commit(5), Error);
    assert.equal((err as { code?: string }).code, "IO");
    assert.equal(cur.position, 6, "position is the last commit issued");
    for (const mode of CRASH_MODES) {
      const { store: s, log: l } = await setup(sim.crash(mode, 3), 0);
      const c = await l.cursor("billing");
      assert.ok([3, 6].includes(c.position), `${mode}: ${c.position}`);
      await c.close();
      await s.close();
    }
    await cur.commit(5); // same position: written again, and now it resolves
    const { store: s, log: l } = await setup(sim.crash("none"), 0);
    assert.equal((await l.cursors())[0].position, 6);
    await s.close();
    assert.equal(log.nextSeq, 10);
    await store.close();
  });
});

describe("cursor: list and delete", () => {
  it("lists every cursor sorted by name with position and lag, without creating anything", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 4);
    assert.deepEqual(await log.cursors(), []);
    assert.equal(await sim.stat(`${log.path}/cursors`), null, "listing created the directory");
    for (const name of ["b.x", "b", "a-2", "LOCK"]) {
      const c = await log.cursor(name);
      await c.commit(name.length - 1);
      if (name !== "b") await c.close();
    }
    sim.setFileBytes(`${log.path}/cursors/b.cursor.tmp`, new Uint8Array(3)); // litter
    sim.setFileBytes(`${log.path}/cursors/.hidden.cursor`, new Uint8Array(3)); // not a name of ours
    assert.deepEqual(await log.cursors(), [
      { name: "LOCK", position: 4, lag: 0 },
      { name: "a-2", position: 3, lag: 1 },
      { name: "b", position: 1, lag: 3 }, // held open: listing needs no lock
      { name: "b.x", position: 3, lag: 1 },
    ]);
    await store.close();
  });

  it("deletes durably; NotFoundError for none; LockedError while held", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 4);
    await rejects(log.deleteCursor("billing"), NotFoundError, /deleteCursor\("billing"\)/);
    assert.equal(await sim.stat(`${log.path}/cursors`), null, "delete created the directory");
    const cur = await log.cursor("billing");
    await cur.commit(2);
    await rejects(log.deleteCursor("billing"), LockedError, /cursor "billing" is locked/);
    await cur.close();
    await log.deleteCursor("billing");
    assert.deepEqual(await log.cursors(), []);
    assert.equal(sim.crash("none").fileBytes(cursorFile(log, "billing")), null, "not durable");
    const fresh = await log.cursor("billing");
    assert.equal(fresh.position, 0, "a deleted cursor starts again at the first seq");
    await fresh.close();
    await rejects(log.deleteCursor("../x"), InvalidArgumentError);
    await rejects(log.cursor("a/b"), InvalidArgumentError);
    await store.close();
  });
});

describe("cursor: one holder", () => {
  it("a second open in this process gets LockedError naming the cursor, until the first closes", async () => {
    const { store, log } = await setup(new SimPlatform(), 2);
    const cur = await log.cursor("billing");
    const err = await rejects(
      log.cursor("billing"),
      LockedError,
      /^cursor "billing" is locked/,
    );
    assert.ok(err.holder.length > 0);
    await cur.close();
    await (await log.cursor("billing")).close();
    await store.close();
  });

  it("a cursor held by another process is LockedError; after its kill -9 the lock is taken over", {
    timeout: 60_000,
  }, async () => {
    const dir = join(disk.tempDir(), "store");
    const platform = disk.platform();
    const { store, log } = await setup(platform, 5, { dir });
    const child = startChild(dir, "hold");
    try {
      await child.line((l) => l === "held");
      const err = await rejects(log.cursor("billing"), LockedError, /cursor "billing"/);
      assert.match(err.holder, new RegExp(`pid ${child.proc.pid}`));
      await rejects(log.deleteCursor("billing"), LockedError);
      child.proc.kill("SIGKILL");
      await child.exited;
      const cur = await log.cursor("billing");
      assert.equal(cur.position, 3, "the child's commit(2) was durable");
      await cur.close();
      await store.close();
    } finally {
      child.proc.kill("SIGKILL");
    }
  });
});

describe("cursor: group commit", () => {
  it("N commits issued together cost one fdatasync; commits during one in flight share the next", async () => {
    let gate: (() => void)[] | null = null;
    const rec = recordingPlatform(new SimPlatform());
    const gated = withDatasyncGate(
      rec,
      (path) =>
        gate && path.endsWith(".cursor") ? new Promise<void>((r) => gate!.push(r)) : undefined,
    );
    const { store, log } = await setup(gated, 1000);
    const file = cursorFile(log, "billing");
    await using cur = await log.cursor("billing");
    rec.clear();
    await Promise.all(Array.from({ length: 1000 }, (_, seq) => cur.commit(seq)));
    assert.equal(rec.count("datasync", file), 1, "1000 commits in one turn: one fdatasync");
    await cur.reset(0);
    // One fdatasync held in flight; 200 commits arrive one per turn meanwhile.
    gate = [];
    rec.clear();
    const first = cur.commit(0);
    const later: Promise<void>[] = [];
    await until(() => gate!.length > 0, "the first fdatasync");
    for (let seq = 1; seq <= 200; seq++) {
      later.push(cur.commit(seq));
      await new Promise((r) => setTimeout(r, 0));
    }
    gate.shift()!();
    await first;
    assert.equal(cur.position, 201);
    await until(() => gate!.length > 0, "a second fdatasync for the commits that came meanwhile");
    gate.shift()!();
    await Promise.all(later);
    assert.equal(rec.count("datasync", file), 2, "201 commits: two fdatasyncs");
    const written = rec.calls.filter((c) => c.op === "writeAt" && c.path === file);
    assert.equal(written.length, 2, "only the newest position is written");
    gate = null;
    await store.close();
  });

  it("the slots alternate: a commit never overwrites the slot holding the last resolved one", async () => {
    const rec = recordingPlatform(new SimPlatform());
    const { store, log } = await setup(rec, 10);
    await using cur = await log.cursor("billing");
    rec.clear();
    for (let seq = 0; seq < 6; seq++) await cur.commit(seq);
    const at = rec.calls.filter((c) => c.op === "writeAt" && c.path === cursorFile(log, "billing"))
      .map((c) => c.position);
    assert.deepEqual(at, [80, 48, 80, 48, 80, 48]); // slot A (48) holds generation 1, the creation
    await store.close();
  });
});

describe("cursor: power cuts", () => {
  it("after a resolved commit, no crash in any mode moves the cursor back", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 50);
    await using cur = await log.cursor("billing");
    for (let seq = 0; seq < 50; seq += 7) {
      await cur.commit(seq);
      for (const mode of CRASH_MODES) {
        for (let seed = 0; seed < 3; seed++) {
          const { store: s, log: l } = await setup(sim.crash(mode, seed), 0);
          const [info] = await l.cursors();
          assert.equal(info.position, seq + 1, `${mode}/${seed} after commit(${seq})`);
          await s.close();
        }
      }
    }
    await store.close();
  });

  it("a commit in flight at the cut leaves the old position or the new one, never another", async () => {
    const sim = new SimPlatform();
    // While `gate.open` is false, the next fdatasync of a cursor file waits for `gate.held()`.
    const gate: { open: boolean; held: (() => void) | null } = { open: true, held: null };
    const gated = withDatasyncGate(
      sim,
      (path) =>
        path.endsWith(".cursor") && !gate.open
          ? new Promise<void>((r) => (gate.held = r))
          : undefined,
    );
    const { store, log } = await setup(gated, 10);
    const cur = await log.cursor("billing");
    await cur.commit(3);
    gate.open = false;
    const inFlight = cur.commit(8); // written, its fdatasync not started
    await until(() => gate.held !== null, "the commit's fdatasync");
    const seen = new Set<number>();
    for (const mode of CRASH_MODES) {
      for (let seed = 0; seed < 4; seed++) {
        const { store: s, log: l } = await setup(sim.crash(mode, seed), 0);
        const c = await l.cursor("billing");
        assert.ok(c.position === 4 || c.position === 9, `${mode}/${seed}: ${c.position}`);
        seen.add(c.position);
        await c.close();
        await s.close();
      }
    }
    assert.deepEqual([...seen].sort(), [4, 9], "both outcomes occur across the modes");
    gate.held!();
    await inFlight;
    await cur.close();
    await store.close();
  });
});

describe("cursor: the file format", () => {
  it("FORMAT.md's worked example is what the codec encodes, and the code writes that layout", async () => {
    const text = readFileSync(join(ROOT, "FORMAT.md"), "utf8");
    const section = text.slice(text.indexOf("### Worked example (cursor file)"));
    const open = section.indexOf("```\n") + 4;
    const dump = section.slice(open, section.indexOf("```", open)).trim().split("\n");
    // Each line: a 4-digit offset, two spaces, 16 bytes in hex (47 columns), then the comment.
    const bytes = Uint8Array.from(dump.flatMap((l) => l.slice(6, 53).split(" ")), (h) => {
      assert.match(h, /^[0-9a-f]{2}$/);
      return parseInt(h, 16);
    });
    const id = Uint8Array.from({ length: 16 }, (_, i) => i);
    const seed = cursorSeed(id, "billing");
    assert.equal(seed, 0xcce09d39);
    const want = encodeCursorFile(
      id,
      { generation: 1, position: 0, commitTime: 1700000000000 },
      seed,
    );
    want.set(encodeCursorSlot({ generation: 2, position: 3, commitTime: 1700000000005 }, seed), 80);
    assert.deepEqual(bytes, want);
    const decoded = decodeCursorFile(bytes, id, seed);
    assert.deepEqual(decoded.ok && decoded.slot.position, 3);
    // The same steps through the code: created at 0, committed through 2.
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 3);
    const cur = await log.cursor("billing");
    await cur.commit(2);
    await store.close();
    const real = sim.fileBytes(cursorFile(log, "billing"))!;
    const realId = real.slice(16, 32);
    const realSeed = cursorSeed(realId, "billing");
    const same = encodeCursorFile(realId, {
      generation: 1,
      position: 0,
      commitTime: readU64(real, 64),
    }, realSeed);
    same.set(
      encodeCursorSlot({ generation: 2, position: 3, commitTime: readU64(real, 96) }, realSeed),
      80,
    );
    assert.deepEqual(real, same);
  });
});

describe("cursor: damaged and foreign files", () => {
  async function withFile(edit: (bytes: Uint8Array) => Uint8Array, name = "billing") {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 10);
    const cur = await log.cursor("billing");
    await cur.commit(4); // generation 2, in slot B
    await cur.close();
    const path = cursorFile(log, "billing");
    sim.setFileBytes(cursorFile(log, name), edit(sim.fileBytes(path)!));
    return { store, log, sim };
  }

  it("a torn slot falls back to the other one, which holds the previous commit", async () => {
    const { store, log } = await withFile((b) => {
      b.fill(0xee, 80 + 10, 80 + 32); // slot B half overwritten
      return b;
    });
    const cur = await log.cursor("billing");
    assert.equal(cur.position, 0, "slot A: the creation");
    await cur.commit(6); // goes to slot B again, generation 2
    await cur.close();
    assert.equal((await log.cursors())[0].position, 7);
    await store.close();
  });

  it("both slots bad, a wrong header, or another log's or cursor's file: CorruptionError with file and offset", async () => {
    const cases: [string, (b: Uint8Array) => Uint8Array, number, RegExp, string?][] = [
      ["both slots", (b) => b.fill(0, 48), 48, /no valid slot/],
      ["magic", (b) => b.fill(0x41, 0, 8), 0, /bad magic/],
      ["header crc", (b) => ((b[12] = 1), b), 44, /header checksum/],
      ["short", (b) => b.subarray(0, 100), 100, /112 bytes, this one 100/],
      ["long", (b) => Uint8Array.from([...b, 0]), 112, /this one 113/],
      ["another cursor's", (b) => b, 48, /no valid slot/, "audit"],
    ];
    for (const [what, edit, offset, message, name] of cases) {
      const { store, log } = await withFile(edit, name);
      const target = name ?? "billing";
      const err = await rejects(log.cursor(target), CorruptionError, message);
      assert.equal(err.path, cursorFile(log, target), what);
      assert.equal(err.offset, offset, what);
      await rejects(log.cursors(), CorruptionError);
      await log.deleteCursor(target); // the way out
      await (await log.cursor(target)).close();
      await store.close();
    }
    // A log's cursor file copied into another log.
    const { store, log, sim } = await withFile((b) => b);
    const other = await store.log("other");
    await sim.mkdir(`${other.path}/cursors`);
    sim.setFileBytes(cursorFile(other, "billing"), sim.fileBytes(cursorFile(log, "billing"))!);
    const err = await rejects(
      other.cursor("billing"),
      CorruptionError,
      /belongs to another log/,
    );
    assert.equal(err.offset, 16);
    await store.close();
  });

  it("a temporary file left by a crashed creation is removed by the next open", async () => {
    const sim = new SimPlatform();
    const { store, log } = await setup(sim, 3);
    await sim.mkdir(`${log.path}/cursors`);
    sim.setFileBytes(`${log.path}/cursors/billing.cursor.tmp`, new Uint8Array(50));
    const cur = await log.cursor("billing");
    assert.equal(cur.position, 0);
    assert.equal(sim.fileBytes(`${log.path}/cursors/billing.cursor.tmp`), null);
    await cur.close();
    await store.close();
  });
});

describe(`cursor: kill -9 of a consumer (${rt})`, () => {
  it("resumes at the last resolved commit: every record processed, duplicates only at the kills", {
    timeout: 120_000,
  }, async () => {
    const N = 400;
    const dir = join(disk.tempDir(), "store");
    const { store, log } = await setup(disk.platform(), N / 2, { dir });
    const processed = new Map<number, number>();
    let kills = 0;
    let duplicates = 0;
    let writing: Promise<void> | null = null;
    for (let run = 0;; run++) {
      const child = startChild(dir, "consume", N);
      // The other half is appended while the consumers follow.
      writing ??= (async () => {
        for (let i = N / 2; i < N; i++) await log.append(`order ${i}`);
      })();
      if (run < 5) {
        // Once it committed something, at a moment that moves with the run (the child may finish
        // first: then that run is the last).
        await child.line((l) => l.startsWith("C ")).catch(() => {});
        await new Promise((r) => setTimeout(r, 20 + 60 * run));
        child.proc.kill("SIGKILL");
      }
      await child.exited;
      const killed = child.proc.signalCode === "SIGKILL";
      if (!killed) assert.equal(child.proc.exitCode, 0, child.stderr());
      const runProcessed = child.lines.filter((l) => l.startsWith("P ")).map((l) => +l.slice(2));
      const runCommitted = child.lines.filter((l) => l.startsWith("C ")).map((l) => +l.slice(2));
      const [info] = await log.cursors();
      const lastResolved = runCommitted.length ? runCommitted[runCommitted.length - 1] : -1;
      const lastIssued = runProcessed.length ? runProcessed[runProcessed.length - 1] : -1;
      assert.ok(
        info.position >= lastResolved + 1 && info.position <= lastIssued + 1,
        `run ${run}: position ${info.position}, last resolved commit ${lastResolved}, ` +
          `last issued ${lastIssued}`,
      );
      for (const seq of runProcessed) processed.set(seq, (processed.get(seq) ?? 0) + 1);
      const again = runProcessed.filter((seq) => seq >= info.position).length;
      assert.ok(again <= 1, `run ${run}: ${again} records processed past the position`);
      duplicates += again;
      if (!killed) break;
      kills++;
    }
    await writing;
    await store.close();
    assert.ok(kills > 0, "every child finished before its kill");
    for (let seq = 0; seq < N; seq++) {
      assert.ok(processed.has(seq), `record ${seq} never processed`);
    }
    const twice = [...processed.values()].filter((n) => n > 1).length;
    assert.equal(twice, duplicates);
    console.log(
      `cursor kill -9 on ${rt}: kills=${kills}, records=${N}, processed at least once=${processed.size}, ` +
        `processed twice=${twice}`,
    );
  });
});

/** Waits (a turn at a time, 2 s at most) until `done()`; a hang fails, naming `what`. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** `inner` with each fdatasync waiting first for what `wait(path)` returns (if anything). */
function withDatasyncGate(
  inner: Platform,
  wait: (path: string) => Promise<void> | undefined,
): Platform {
  return new Proxy(inner, {
    get(target, key) {
      if (key === "open") {
        return async (path: string, how: "read" | "append" | "createExclusive", mode?: number) => {
          const f = await target.open(path, how, mode);
          return wrapFile(f, {
            datasync: async () => {
              await wait(path);
              await f.datasync();
            },
          });
        };
      }
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/**
 * The consumer child, written next to the store, which it opens read-only beside the parent's
 * writer. `hold` opens cursor "billing", commits 2 and waits to be killed. `consume` processes
 * every record below `end` through the cursor (printing `P seq`, then taking 2 ms), commits each
 * (printing `C seq` once it resolved) and exits.
 */
function childSource(): string {
  const mod = JSON.stringify(pathToFileURL(join(ROOT, "mod.ts")).href);
  return `import process from "node:process";
import { Store } from ${mod};
const [dir, mode, end] = globalThis.Deno?.args ?? process.argv.slice(2);
const store = await Store.open(dir, { readOnly: true });
const log = await store.log("orders");
const cur = await log.cursor("billing");
if (mode === "hold") {
  await cur.commit(2);
  console.log("held");
  await new Promise((r) => setTimeout(r, 60_000));
} else {
  const stop = new AbortController();
  if (cur.position >= Number(end)) stop.abort();
  for await (const r of cur.follow({ signal: stop.signal })) {
    console.log("P " + r.seq);
    await new Promise((r) => setTimeout(r, 2)); // the handler's work
    await cur.commit(r.seq);
    console.log("C " + r.seq);
    if (r.seq === Number(end) - 1) stop.abort();
  }
}
await store.close();
`;
}

interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<void>;
  stderr(): string;
  /** Resolves when a line satisfying `ok` has been printed; rejects if the child exits first. */
  line(ok: (l: string) => boolean): Promise<void>;
}

function startChild(storeDir: string, mode: "hold" | "consume", end = 0): Child {
  const script = join(storeDir, "..", "cursor-child.mts");
  writeFileSync(script, childSource());
  const [cmd, ...args] = runtimeCommand(rt, script, [storeDir, mode, String(end)]);
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const watchers: (() => void)[] = [];
  let partial = "";
  let err = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!; // a line cut by the kill is not a line
    lines.push(...parts);
    for (const w of watchers) w();
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (c: string) => (err += c));
  const exited = new Promise<void>((resolve) => proc.on("close", () => resolve()));
  return {
    proc,
    lines,
    exited,
    stderr: () => err,
    line: (ok) =>
      new Promise<void>((resolve, reject) => {
        const check = () => lines.some(ok) && resolve();
        watchers.push(check);
        check();
        exited.then(() => reject(new Error(`child exited first: ${err}`)));
      }),
  };
}
