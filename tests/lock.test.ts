// The store lock (src/platform/lock.ts): exclusion within a process and across processes of
// different runtimes, take-over of locks left by dead processes (kill -9, recycled pids, previous
// boots, crashes between create and write, crashed take-overs, empty or zero-filled lock files
// left by a power cut), one winner when several processes race to take over the same stale lock,
// and the lock file's mode.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { LockedError } from "../src/errors.ts";
import { acquireLock, parseLockOwner, parseProcStat } from "../src/platform/lock.ts";
import { defaultPlatform } from "../src/platform/detect.ts";
import { nodePlatform } from "../src/platform/node.ts";
import type { Platform } from "../src/platform/types.ts";
import {
  currentRuntime,
  ROOT,
  type Runtime,
  runtimeCommand,
  RUNTIMES,
} from "./fixtures/runtimes.ts";

const isLinux = process.platform === "linux";
const posix = process.platform !== "win32";
const linuxOnly = !isLinux && "uses /proc to fabricate lock owners";
const HOLDER = "tests/fixtures/lock_holder.ts";
const others = RUNTIMES.filter((r) => r !== currentRuntime());

let platform: Platform;
let dir = "";
let n = 0;
const fresh = () => join(dir, `LOCK${++n}`);

function bootId(): string {
  return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}
function startOf(pid: number): string {
  return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"))!.start;
}
/** A pid that is not running: one of a process that already exited. */
function deadPid(): number {
  const r = spawnSync("true");
  assert.ok(r.pid && !existsSync(`/proc/${r.pid}`));
  return r.pid;
}
function writeOwner(path: string, o: Record<string, unknown>): void {
  const owner = {
    pid: 0,
    start: null,
    boot: bootId(),
    host: hostname(),
    runtime: "fake",
    token: "t",
    ...o,
  };
  writeFileSync(path, JSON.stringify(owner) + "\n");
}
async function assertLocked(p: Promise<unknown>, holder?: RegExp): Promise<LockedError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LockedError, `expected LockedError, got ${String(err)}`);
    if (holder) assert.match(err.message, holder);
    return err;
  }
  assert.fail("expected LockedError, but the lock was taken");
}

/** Runs the holder fixture on `rt`; resolves with the child once it printed its first line. */
function runHolder(
  rt: Runtime,
  path: string,
  mode: "hold" | "try",
): Promise<{ child: ChildProcess; line: string }> {
  const [cmd, ...args] = runtimeCommand(rt, HOLDER, [path, mode]);
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout!.on("data", (b: Uint8Array) => {
      out += new TextDecoder().decode(b);
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve({ child, line: out.slice(0, nl) });
    });
    child.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (!out.includes("\n")) {
        reject(new Error(`${rt} holder exited ${code} without output: ${err}`));
      }
    });
  });
}
function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

before(async () => {
  platform = await defaultPlatform();
  dir = mkdtempSync(join(tmpdir(), "khipu-lock-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("lock: within one process", () => {
  it("a second acquire fails with LockedError until the first is released", async () => {
    const path = fresh();
    const a = await platform.lock(path);
    await assertLocked(platform.lock(path), /this process/);
    await assertLocked(nodePlatform.lock(path)); // another adapter, same process
    await a.release();
    await a.release(); // idempotent
    assert.equal(existsSync(path), false, "release removes the lock file");
    const b = await platform.lock(path);
    await b.release();
  });

  it("concurrent acquires in one process: exactly one wins", async () => {
    const path = fresh();
    const results = await Promise.allSettled([
      platform.lock(path),
      platform.lock(path),
      platform.lock(path),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) if (r.status === "fulfilled") await r.value.release();
  });

  it("the lock file names the owner", async () => {
    const path = fresh();
    const l = await platform.lock(path);
    const o = parseLockOwner(readFileSync(path, "utf8"));
    assert.equal(o?.pid, process.pid);
    assert.equal(o?.runtime, currentRuntime());
    if (isLinux) {
      assert.equal(o?.boot, bootId());
      assert.equal(o?.start, startOf(process.pid));
    }
    await l.release();
  });

  it("release does not remove a lock file that is no longer ours", async () => {
    const path = fresh();
    const l = await platform.lock(path);
    writeOwner(path, { pid: 1, token: "someone-else" });
    await l.release();
    assert.equal(existsSync(path), true);
  });

  it("parses /proc/<pid>/stat even with spaces and parentheses in the command name", () => {
    const line = "42 (a b) c)) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
    assert.deepEqual(parseProcStat(line), { state: "Z", start: "98765" });
    assert.equal(parseProcStat("garbage"), null);
  });

  it("the lock file is created with the mode asked for (0o644 by default), under umask 0", {
    skip: !posix && "no POSIX modes",
  }, async () => {
    const old = process.umask(0);
    try {
      const path = fresh();
      const l = await platform.lock(path, 0o600);
      assert.equal(statSync(path).mode & 0o7777, 0o600);
      await l.release();
      const byDefault = await platform.lock(path);
      assert.equal(statSync(path).mode & 0o7777, 0o644);
      await byDefault.release();
    } finally {
      process.umask(old);
    }
  });
});

describe("lock: unparsable lock files that no live process can be writing", () => {
  // A grace of a minute: a regression that watches these files for the grace period fails by the
  // test's timeout instead of passing slowly.
  const slowGrace = { unreadableGraceMs: 60_000 };

  it("an empty lock file older than the grace period (a power cut) is taken over at once", {
    timeout: 10_000,
  }, async () => {
    const path = fresh();
    writeFileSync(path, "");
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(path, hourAgo, hourAgo);
    const l = await acquireLock(platform, path, slowGrace);
    assert.equal(parseLockOwner(readFileSync(path, "utf8"))?.pid, process.pid);
    await l.release();
  });

  it("a zero-filled lock file is taken over at once", { timeout: 10_000 }, async () => {
    // However fresh: a live maker writes its whole line in one write, so zeros are never its.
    const path = fresh();
    writeFileSync(path, new Uint8Array(120));
    const l = await acquireLock(platform, path, slowGrace);
    assert.equal(parseLockOwner(readFileSync(path, "utf8"))?.pid, process.pid);
    await l.release();
  });
});

describe("lock: stale owners are taken over, live ones are not", { skip: linuxOnly }, () => {
  it("an owner pid that no longer exists", async () => {
    const path = fresh();
    writeOwner(path, { pid: deadPid(), token: "dead" });
    const l = await platform.lock(path);
    assert.equal(parseLockOwner(readFileSync(path, "utf8"))?.pid, process.pid);
    await l.release();
  });

  it("a live pid with another start time (a recycled pid) is stale; with its own start time it is held", async () => {
    const path = fresh();
    writeOwner(path, { pid: 1, start: "1", token: "recycled" });
    await (await platform.lock(path)).release();
    writeOwner(path, { pid: 1, start: startOf(1), token: "live" });
    await assertLocked(platform.lock(path), /pid 1\b/);
  });

  it("an owner from a previous boot of this host is stale; one on another host is held", async () => {
    const path = fresh();
    writeOwner(path, { pid: 1, start: startOf(1), boot: "previous-boot", token: "old-boot" });
    await (await platform.lock(path)).release();
    writeOwner(path, { pid: 1, boot: "other-boot", host: "elsewhere.example", token: "remote" });
    await assertLocked(platform.lock(path), /elsewhere\.example/);
  });

  it("an unparsable (empty) lock file left by a crash is taken over after the grace period", async () => {
    const path = fresh();
    writeFileSync(path, "");
    const l = await acquireLock(platform, path, { unreadableGraceMs: 100 });
    assert.equal(parseLockOwner(readFileSync(path, "utf8"))?.pid, process.pid);
    await l.release();
  });

  it("a fresh empty lock file is watched, not taken at once: its maker writes its line meanwhile", async () => {
    const path = fresh();
    writeFileSync(path, "");
    const t = setTimeout(() => writeOwner(path, { pid: 1, start: startOf(1), token: "slow" }), 50);
    try {
      await assertLocked(acquireLock(platform, path, { unreadableGraceMs: 1000 }), /pid 1\b/);
    } finally {
      clearTimeout(t);
    }
  });

  it("a take-over that crashed (stale breaker) is itself taken over; the litter is removed", async () => {
    const path = fresh();
    writeOwner(path, { pid: deadPid(), token: "t1" });
    writeOwner(`${path}.break-t1`, { pid: deadPid(), token: "b1" });
    writeOwner(`${path}.break-old`, { pid: deadPid(), token: "b0" }); // litter of an old take-over
    const l = await platform.lock(path);
    const base = path.slice(dir.length + 1);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(base)), [base]);
    await l.release();
  });

  it("a take-over in progress by a live process blocks", async () => {
    const path = fresh();
    writeOwner(path, { pid: deadPid(), token: "t2" });
    writeOwner(`${path}.break-t2`, { pid: 1, start: startOf(1), token: "b2" });
    await assertLocked(platform.lock(path), /taking over/);
  });
});

describe(`lock: across runtimes (this is ${currentRuntime()})`, () => {
  for (const rt of others) {
    it(`a ${rt} holder blocks this process; after kill -9 the lock is taken over`, async () => {
      const path = fresh();
      const { child, line } = await runHolder(rt, path, "hold");
      try {
        assert.match(line, /^HELD \d+$/);
        await assertLocked(platform.lock(path), new RegExp(`${rt} pid ${child.pid}\\b`));
      } finally {
        await killed(child);
      }
      const l = await platform.lock(path);
      assert.equal(parseLockOwner(readFileSync(path, "utf8"))?.pid, process.pid);
      await l.release();
    });

    it(`this process blocks a ${rt} writer`, async () => {
      const path = fresh();
      const l = await platform.lock(path);
      try {
        const { child, line } = await runHolder(rt, path, "try");
        await killed(child);
        assert.match(line, new RegExp(`^LOCKED .*${currentRuntime()} pid ${process.pid}\\b`));
      } finally {
        await l.release();
      }
    });
  }

  it(`${others[0]} holds, ${others[1]} is refused; after kill -9 of the holder ${others[1]} gets it`, async () => {
    const path = fresh();
    const { child } = await runHolder(others[0], path, "hold");
    try {
      const refused = await runHolder(others[1], path, "try");
      await killed(refused.child);
      assert.match(refused.line, new RegExp(`^LOCKED .*${others[0]} pid ${child.pid}\\b`));
    } finally {
      await killed(child);
    }
    const taken = await runHolder(others[1], path, "try");
    await killed(taken.child);
    assert.match(taken.line, /^HELD /);
  });

  it("processes of all runtimes racing to take over one stale lock: exactly one wins", {
    skip: linuxOnly,
  }, async () => {
    const path = fresh();
    writeOwner(path, { pid: deadPid(), token: "race" });
    const racers = await Promise.all(
      [...RUNTIMES, ...RUNTIMES].map((rt) => runHolder(rt, path, "hold")),
    );
    try {
      const lines = racers.map((r) => r.line);
      assert.equal(lines.filter((l) => l.startsWith("HELD")).length, 1, lines.join("\n"));
      assert.equal(
        lines.filter((l) => l.startsWith("LOCKED")).length,
        racers.length - 1,
        lines.join("\n"),
      );
    } finally {
      await Promise.all(racers.map((r) => killed(r.child)));
    }
  });
});
