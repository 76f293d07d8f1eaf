/**
 * Read-only stores and cursors across processes and runtimes, with the fixtures in
 * `tests/fixtures/cross/` as the processes (a writer, a read-only reader, a cursor consumer):
 * 1. cross-runtime pairs: a Node writer with a Deno reader and a Bun consumer, and the reverse (Deno
 *    and Bun writers with Node readers and consumers, on Node 20 through tsx and on Node 24's own
 *    type stripping): every record seen in order exactly once, the cursor at the end;
 * 2. `kill -9` of the writer while a reader and a consumer run: they keep what they saw, see no
 *    damage, and continue without a gap or a duplicate once a new writer recovers and appends;
 * 3. `kill -9` of a consumer, again and again on each runtime: each resumes at the last resolved
 *    commit, every record is processed at least once;
 * 4. strace proof that a read-only reader (open, read, follow across a rollover, list cursors)
 *    writes nothing under the store, on each runtime.
 *
 * Runs once, under the machine's Node (`npx tsx --test`), and drives every runtime itself; under
 * `deno test`, `bun test` and the Node 22/24 runs it is skipped with a message.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { childEnv } from "./helpers.ts";
import { Store, SyncPolicy } from "../mod.ts";
import { killPayload } from "./fixtures/kill_payload.ts";
import { checkRecord } from "./fixtures/cross/child_io.ts";
import { ROOT, runtimeCommand } from "./fixtures/runtimes.ts";

const NODE24 = join(ROOT, "node_modules", "node24", "bin", "node");
const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
const SKIP: string | false = runtime.Deno !== undefined || runtime.Bun !== undefined ||
    process.execPath === NODE24 || process.execPath.includes(join("node_modules", "node22"))
  ? "cross-process tests run once, under the machine's Node (npx tsx --test); they drive Deno, " +
    "Bun and Node 24 themselves"
  : false;
if (SKIP) console.log(`tests/cross_process.test.ts: skipped here: ${SKIP}`);

/** A process the test runs: the machine's Node (through tsx), Node 24 (type stripping), Deno, Bun. */
type Exe = "node" | "node24" | "deno" | "bun";

const FIXTURE = (name: string) => `tests/fixtures/cross/${name}.ts`;

function command(exe: Exe, script: string, args: string[]): string[] {
  if (exe === "node24") return [NODE24, resolve(ROOT, script), ...args];
  return runtimeCommand(exe, script, args);
}

/** A running fixture, its stdout as lines. */
interface Child {
  label: string;
  proc: ChildProcess;
  lines: string[];
  exited: Promise<void>;
  stderr(): string;
  /** The first line satisfying `ok` (waits for it); rejects if the child exits first. */
  line(ok: (l: string) => boolean, ms?: number): Promise<string>;
  send(line: string): void;
}

const children = new Set<Child>();

function start(exe: Exe, fixture: string, args: string[], prefix: string[] = []): Child {
  const [cmd, ...rest] = [...prefix, ...command(exe, FIXTURE(fixture), args)];
  const proc = spawn(cmd, rest, { cwd: ROOT, env: childEnv(), stdio: ["pipe", "pipe", "pipe"] });
  const label = `${fixture} on ${exe}`;
  const lines: string[] = [];
  const watchers = new Set<() => void>();
  let partial = "";
  let err = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!; // a line cut by a kill is not a line
    lines.push(...parts);
    for (const w of watchers) w();
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (c: string) => (err += c));
  proc.stdin!.on("error", () => {}); // writing to a killed child
  const exited = new Promise<void>((done) => proc.on("close", () => done()));
  const child: Child = {
    label,
    proc,
    lines,
    exited,
    stderr: () => err,
    line: (ok, ms = 30_000) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`${label}: no such line after ${ms} ms; stderr:\n${err}`));
        }, ms);
        const check = () => {
          const found = lines.find(ok);
          if (found === undefined) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve(found);
        };
        watchers.add(check);
        check();
        exited.then(() => {
          check();
          clearTimeout(timer);
          reject(new Error(`${label} exited (${proc.exitCode ?? proc.signalCode}): ${err}`));
        });
      }),
    send: (line) => void proc.stdin!.write(line + "\n"),
  };
  children.add(child);
  exited.then(() => children.delete(child));
  return child;
}

/** Waits for a child to end by itself and checks it succeeded. */
async function finished(c: Child): Promise<void> {
  await c.exited;
  assert.equal(c.proc.exitCode, 0, `${c.label} failed:\n${c.stderr()}`);
}

/** Waits until `c` has printed `n` lines starting with `prefix`. */
function atLeast(c: Child, n: number, prefix: string): Promise<string> {
  return c.line(() => c.lines.filter((l) => l.startsWith(prefix)).length >= n);
}

const fields = (c: Child, prefix: string) =>
  c.lines.filter((l) => l.startsWith(`${prefix} `)).map((l) => l.split(" ").slice(1));

/** What the writer's `A <seq> <n>` lines say: seq -> "runId n". */
function appended(c: Child, runId: string): Map<number, string> {
  return new Map(fields(c, "A").map(([seq, n]) => [Number(seq), `${runId} ${n}`]));
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every record of log "x" in `dir`, as "runId n", read by this process. */
async function contents(dir: string): Promise<string[]> {
  const store = await Store.open(dir, { readOnly: true });
  try {
    const out: string[] = [];
    for await (const r of (await store.log("x")).read()) out.push(checkRecord(r));
    return out;
  } finally {
    await store.close();
  }
}

async function cursorsOf(dir: string) {
  const store = await Store.open(dir, { readOnly: true });
  try {
    return await (await store.log("x")).cursors();
  } finally {
    await store.close();
  }
}

describe("read-only stores across processes and runtimes", { skip: SKIP }, () => {
  let tmp = "";
  let n = 0;
  const storeDir = () => join(tmp, `s${++n}`);
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), "khipu-cross-")));
  });
  after(() => {
    for (const c of children) c.proc.kill("SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
  });

  const PAIRS: ReadonlyArray<readonly [writer: Exe, reader: Exe, consumer: Exe]> = [
    ["node", "deno", "bun"],
    ["deno", "node24", "node"],
    ["bun", "node", "node24"],
  ];
  for (const [w, r, c] of PAIRS) {
    it(`a ${w} writer, a ${r} reader and a ${c} consumer: each record once, in order`, {
      timeout: 60_000,
    }, async () => {
      const dir = storeDir();
      const N = 150;
      const writer = start(w, "writer", [dir, "w", String(N)]);
      assert.equal(await writer.line((l) => l.startsWith("ready")), "ready 0");
      const reader = start(r, "reader", [dir]);
      const consumer = start(c, "consumer", [dir, "billing"]);
      await reader.line((l) => l === "ready");
      assert.equal(await consumer.line((l) => l.startsWith("ready")), "ready 0");
      writer.send("go");
      assert.equal(await writer.line((l) => l.startsWith("done")), `done ${N}`);
      await finished(writer);
      consumer.send(`end ${N}`);
      await finished(consumer);
      reader.send(`end ${N}`); // after the consumer's last commit: the reader lists the cursors
      await finished(reader);
      const written = appended(writer, "w");
      assert.deepEqual([...written.keys()].sort((a, b) => a - b), range(N));
      const read = fields(reader, "R");
      assert.deepEqual(read.map(([seq]) => Number(seq)), range(N), `${r} reader's seqs`);
      for (const [seq, run, k] of read) assert.equal(`${run} ${k}`, written.get(Number(seq)));
      const processed = fields(consumer, "P").map(([seq]) => Number(seq));
      assert.deepEqual(processed, range(N), `${c} consumer's records`);
      assert.deepEqual(fields(consumer, "C").map(([seq]) => Number(seq)), range(N));
      assert.equal(consumer.lines.at(-1), `done ${N}`);
      assert.deepEqual(await cursorsOf(dir), [{ name: "billing", position: N, lag: 0 }]);
      assert.equal(
        reader.lines.at(-2),
        `cursors ${JSON.stringify([{ name: "billing", position: N, lag: 0 }])}`,
      );
    });
  }

  it(
    "kill -9 of the writer while a reader and a consumer run: they keep what they saw and go on without gaps",
    {
      timeout: 90_000,
    },
    async () => {
      const dir = storeDir();
      const first = start("node", "writer", [dir, "w1", "forever"]);
      await first.line((l) => l.startsWith("ready"));
      const reader = start("bun", "reader", [dir]);
      const consumer = start("node24", "consumer", [dir, "billing"]);
      await reader.line((l) => l === "ready");
      await consumer.line((l) => l.startsWith("ready"));
      first.send("go");
      await atLeast(reader, 60, "R ");
      await atLeast(consumer, 20, "C ");
      await sleep(Math.floor(Math.random() * 100));
      first.proc.kill("SIGKILL");
      await first.exited;
      assert.equal(
        first.proc.signalCode,
        "SIGKILL",
        `the writer ended by itself: ${first.stderr()}`,
      );
      // The readers outlive the writer: no error, they wait.
      await sleep(800);
      assert.equal(reader.proc.exitCode, null, `reader ended: ${reader.stderr()}`);
      assert.equal(consumer.proc.exitCode, null, `consumer ended: ${consumer.stderr()}`);
      const seenBefore = fields(reader, "R").length;
      const resolvedBefore = appended(first, "w1");
      const second = start("deno", "writer", [dir, "w2", "60"]);
      const ready = await second.line((l) => l.startsWith("ready"));
      const resumeAt = Number(ready.split(" ")[1]);
      assert.ok(resumeAt >= seenBefore, `recovery at ${resumeAt} lost records a reader saw`);
      for (const seq of resolvedBefore.keys()) assert.ok(seq < resumeAt, `resolved ${seq} lost`);
      second.send("go");
      const end = Number((await second.line((l) => l.startsWith("done"))).split(" ")[1]);
      await finished(second);
      assert.equal(end, resumeAt + 60);
      reader.send(`end ${end}`);
      consumer.send(`end ${end}`);
      await Promise.all([finished(reader), finished(consumer)]);
      const log = await contents(dir);
      assert.equal(log.length, end);
      const read = fields(reader, "R");
      assert.deepEqual(read.map(([seq]) => Number(seq)), range(end), "the reader's seqs");
      assert.deepEqual(
        read.map(([, run, k]) => `${run} ${k}`),
        log,
        "the reader saw what is there",
      );
      for (const [seq, who] of resolvedBefore) assert.equal(log[seq], who);
      for (const [seq, who] of appended(second, "w2")) assert.equal(log[seq], who);
      assert.deepEqual(log.slice(resumeAt), range(60).map((k) => `w2 ${k}`));
      const processed = fields(consumer, "P");
      assert.deepEqual(processed.map(([seq]) => Number(seq)), range(end), "the consumer's seqs");
      assert.deepEqual(processed.map(([, run, k]) => `${run} ${k}`), log);
      assert.deepEqual(await cursorsOf(dir), [{ name: "billing", position: end, lag: 0 }]);
      console.log(
        `writer kill -9: reader had seen ${seenBefore} records, the new writer resumed at ` +
          `${resumeAt} and ended at ${end}; reader and consumer saw ${end} records, each once`,
      );
    },
  );

  it("kill -9 of a consumer, on each runtime in turn: it resumes at its last resolved commit", {
    timeout: 90_000,
  }, async () => {
    const dir = storeDir();
    const N = 400;
    const w = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged() });
    const log = await w.log("x");
    await log.appendBatch(range(N).map((k) => killPayload("w", k)));
    await w.close();
    const runs: Exe[] = ["deno", "bun", "node24", "node", "deno"];
    const processed = new Map<number, number>();
    let position = 0;
    let duplicates = 0;
    for (const [i, exe] of runs.entries()) {
      const last = i === runs.length - 1;
      // On a fast disk one run can process everything before its kill: nothing is left to kill.
      if (!last && position >= N) continue;
      const c = start(exe, "consumer", [dir, "billing"]);
      assert.equal(await c.line((l) => l.startsWith("ready")), `ready ${position}`, c.label);
      if (last) c.send(`end ${N}`);
      else {
        await c.line((l) => l.startsWith("C "));
        await sleep(10 + Math.floor(Math.random() * 60));
        c.proc.kill("SIGKILL");
      }
      await c.exited;
      if (last) assert.equal(c.proc.exitCode, 0, c.stderr());
      else assert.equal(c.proc.signalCode, "SIGKILL", `${c.label} ended by itself: ${c.stderr()}`);
      const p = fields(c, "P").map(([seq]) => Number(seq));
      const committed = fields(c, "C").map(([seq]) => Number(seq));
      assert.equal(p[0], position, `${c.label} started at its cursor's position`);
      assert.deepEqual(p, range(p.length, position), `${c.label} processed in order`);
      const [info] = await cursorsOf(dir);
      const lastResolved = committed.at(-1) ?? position - 1;
      const lastIssued = p.at(-1) ?? position - 1;
      assert.ok(
        info.position >= lastResolved + 1 && info.position <= lastIssued + 1,
        `${c.label}: position ${info.position}, last resolved commit ${lastResolved}, ` +
          `last processed ${lastIssued}`,
      );
      for (const seq of p) processed.set(seq, (processed.get(seq) ?? 0) + 1);
      duplicates += p.filter((seq) => seq >= info.position).length;
      position = info.position;
    }
    assert.equal(position, N);
    for (const seq of range(N)) assert.ok(processed.has(seq), `record ${seq} never processed`);
    const twice = [...processed.values()].filter((k) => k > 1).length;
    assert.equal(twice, duplicates, "only records past a killed consumer's position come again");
    assert.ok(
      twice <= runs.length - 1,
      `${twice} records processed twice in ${runs.length - 1} kills`,
    );
    console.log(
      `consumer kill -9 on ${runs.join(", ")}: ${runs.length - 1} kills, ${N} records each ` +
        `processed at least once, ${twice} twice`,
    );
  });
});

const hasStrace = spawnSync("strace", ["-V"], { encoding: "utf8" }).status === 0;
if (!SKIP && !hasStrace) {
  console.log("tests/cross_process.test.ts: strace not installed: the no-writes proof is skipped");
}

/** The calls that change something, and those that tell which process and descriptor does what. */
const TRACED = [
  "openat",
  "open",
  "creat",
  "write",
  "pwrite64",
  "writev",
  "pwritev",
  "pwritev2",
  "fallocate",
  "truncate",
  "ftruncate",
  "rename",
  "renameat",
  "renameat2",
  "unlink",
  "unlinkat",
  "rmdir",
  "mkdir",
  "mkdirat",
  "link",
  "linkat",
  "symlink",
  "symlinkat",
  "close",
  "dup",
  "dup2",
  "dup3",
  "fcntl",
  "clone",
  "clone3",
  "fork",
  "vfork",
];

/** One completed system call of an `strace -f -y -qq` log (unfinished and resumed halves joined). */
interface Syscall {
  pid: number;
  name: string;
  /** Everything after the name: arguments, `) = `, the result. */
  text: string;
}

function parseStrace(log: string): Syscall[] {
  const calls: Syscall[] = [];
  const pending = new Map<number, { name: string; text: string }>();
  for (const line of log.split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const rest = m[2];
    const resumed = /^<\.\.\. ([a-z0-9_]+) resumed>(.*)$/.exec(rest);
    if (resumed) {
      const p = pending.get(pid);
      pending.delete(pid);
      if (p) calls.push({ pid, name: p.name, text: p.text + resumed[2] });
      continue;
    }
    const call = /^([a-z0-9_]+)\((.*)$/.exec(rest);
    if (!call) continue; // signals, exits
    const unfinished = / <unfinished \.\.\.>$/.exec(call[2]);
    if (unfinished) pending.set(pid, { name: call[1], text: call[2].slice(0, unfinished.index) });
    else calls.push({ pid, name: call[1], text: call[2] });
  }
  return calls;
}

/** The paths a call names: quoted strings, and the `<path>` strace -y gives each descriptor. */
function pathsOf(c: Syscall): string[] {
  const quoted = [...c.text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  const fds = [...c.text.matchAll(/\d+<([^>]*)>/g)].map((m) => m[1]);
  return [...quoted, ...fds];
}

const result = (c: Syscall) => /\)\s+=\s+(-?\d+)/.exec(c.text)?.[1];

/**
 * What the trace shows the processes doing under `store` that a read-only store must not: opens
 * for writing, creating or truncating, any rename, unlink, mkdir, link or truncate, and any write
 * to a descriptor opened on a path under the store. Descriptors are tracked per descriptor table
 * (threads, and clones with CLONE_FILES, share their parent's; a fork copies it).
 */
function violations(calls: readonly Syscall[], store: string): string[] {
  const under = (p: string) => p === store || p.startsWith(`${store}/`);
  const bad: string[] = [];
  const show = (c: Syscall) => `${c.pid} ${c.name}(${c.text}`;
  const tables = new Map<number, Map<number, string>>();
  const tableOf = (pid: number) => {
    let t = tables.get(pid);
    if (!t) tables.set(pid, t = new Map());
    return t;
  };
  for (const c of calls) {
    const fdTable = tableOf(c.pid);
    const ret = Number(result(c));
    const fdArg = Number(/^(\d+)/.exec(c.text)?.[1]);
    switch (c.name) {
      case "clone":
      case "clone3":
      case "fork":
      case "vfork": {
        if (!(ret > 0)) break;
        // The child may have run (and been given a table of its own) before its clone returned.
        const early = tables.get(ret) ?? new Map<number, string>();
        const table = /CLONE_FILES/.test(c.text) ? fdTable : new Map(fdTable);
        for (const [fd, path] of early) table.set(fd, path);
        tables.set(ret, table);
        break;
      }
      case "open":
      case "openat":
      case "creat": {
        const path = /"((?:[^"\\]|\\.)*)"/.exec(c.text)?.[1] ?? "";
        const opened = /=\s+\d+<([^>]*)>/.exec(c.text)?.[1] ?? path;
        if (!under(path) && !under(opened)) break;
        if (c.name === "creat" || /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(c.text)) bad.push(show(c));
        if (ret >= 0) fdTable.set(ret, opened);
        break;
      }
      case "close":
        fdTable.delete(fdArg);
        break;
      case "dup":
      case "dup2":
      case "dup3":
      case "fcntl": {
        if (c.name === "fcntl" && !/F_DUPFD/.test(c.text)) break;
        const from = fdTable.get(fdArg);
        if (from !== undefined && ret >= 0) fdTable.set(ret, from);
        break;
      }
      case "write":
      case "pwrite64":
      case "writev":
      case "pwritev":
      case "pwritev2":
      case "fallocate":
      case "ftruncate": {
        // The descriptor as opened, or as strace -y names it (never the bytes written).
        const target = fdTable.get(fdArg) ?? /^\d+<([^>]*)>/.exec(c.text)?.[1];
        if (target !== undefined && under(target)) bad.push(show(c));
        break;
      }
      default:
        // truncate, rename*, unlink*, rmdir, mkdir*, link*, symlink*: any under the store.
        if (pathsOf(c).some(under)) bad.push(show(c));
    }
  }
  return bad;
}

describe("strace: a read-only reader writes nothing under the store", {
  skip: SKIP || (!hasStrace && "strace not installed (apt-get install -y strace)"),
}, () => {
  let tmp = "";
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), "khipu-cross-strace-")));
  });
  after(() => {
    for (const c of children) c.proc.kill("SIGKILL");
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const exe of ["node", "node24", "deno", "bun"] as const) {
    it(
      `${exe}: open, read, follow across a rollover, list cursors`,
      { timeout: 60_000 },
      async () => {
        const dir = join(tmp, exe);
        const store = await Store.open(dir, {
          syncPolicy: SyncPolicy.always(),
          segmentBytes: 32 * 1024,
        });
        const log = await store.log("x");
        for (let k = 0; k < 30; k++) await log.append(killPayload("w", k));
        const billing = await log.cursor("billing");
        await billing.commit(4);
        await billing.close();
        const trace = `${dir}.trace`;
        const reader = start(exe, "reader", [dir], [
          "strace",
          "-f",
          "-y",
          "-qq",
          "-o",
          trace,
          "-e",
          `trace=${TRACED.join(",")}`,
        ]);
        try {
          await reader.line((l) => l === "ready");
          await atLeast(reader, 30, "R ");
          const segments = log.segmentCount;
          for (let k = 30; k < 70; k++) await log.append(killPayload("w", k));
          assert.ok(log.segmentCount > segments, "the appends rolled the log over");
          reader.send("end 70");
          await finished(reader);
        } finally {
          await store.close();
        }
        assert.deepEqual(fields(reader, "R").map(([seq]) => Number(seq)), range(70));
        assert.equal(
          reader.lines.at(-2),
          `cursors ${JSON.stringify([{ name: "billing", position: 5, lag: 65 }])}`,
        );
        assert.ok(existsSync(trace), "no trace written");
        const text = readFileSync(trace, "utf8");
        rmSync(trace, { force: true });
        const calls = parseStrace(text);
        // The trace saw the reader at work: it opened the segments and the cursor file to read.
        const opened = calls.filter((c) => /^open/.test(c.name) && c.text.includes(dir));
        assert.ok(opened.some((c) => c.text.includes(".seg")), "no segment open in the trace");
        assert.ok(opened.some((c) => c.text.includes("billing.cursor")), "no cursor file read");
        assert.deepEqual(violations(calls, dir), [], `${exe}: writes under the store`);
      },
    );
  }

  it("the check finds what a writer does under the store", () => {
    const store = "/s";
    const log = [
      '10 openat(AT_FDCWD, "/s/x/0.seg", O_RDONLY|O_CLOEXEC) = 5</s/x/0.seg>',
      "10 clone3({flags=CLONE_VM|CLONE_FILES|CLONE_THREAD, exit_signal=0}, 88) = 11",
      '11 pwrite64(5, "ab", 2, 100 <unfinished ...>',
      "10 close(7) = 0",
      "11 <... pwrite64 resumed>) = 2",
      '10 openat(AT_FDCWD, "/s/LOCK", O_RDWR|O_CREAT, 0644) = 6</s/LOCK>',
      '10 mkdirat(AT_FDCWD, "/s/y", 0755) = 0',
      "10 close(5) = 0",
      '10 write(5, "x", 1) = 1',
      '10 openat(AT_FDCWD, "/elsewhere", O_RDWR) = 5</elsewhere>',
    ].join("\n");
    const found = violations(parseStrace(log), store).map((v) => v.split("(")[0]);
    // pwrite64 by a thread to the fd its process opened; the writable open; the mkdir. Not the
    // write after the close, nor what happens elsewhere.
    assert.deepEqual(found, ["11 pwrite64", "10 openat", "10 mkdirat"]);
  });
});
