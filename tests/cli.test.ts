// The `khipu` command as a user runs it: a child process of the runtime running this file (Deno:
// `deno run -A cli.ts`; Bun: `bun cli.ts`; Node with type stripping: `node cli.ts`; Node 20 under
// tsx: `node --import tsx cli.ts`) on stores built here. Every command in text and --json, every
// exit status (0 ok, 1 damage, 2 usage, 3 other failure), read-only commands beside a writer that
// holds the lock in this process while repair and cursor set are refused, dump ranges and formats,
// tail -n and tail -f following appends made here until SIGTERM, verify and repair of a store with
// a flipped byte in a sealed segment, a log too damaged to open, and a reader that closes the pipe.
// The long tables of bad command lines run in this process too (`runCli`, the code the child runs,
// on memory streams): a child costs up to a second, and a few of each kind run as children.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import { type Log, Store } from "../mod.ts";
import { memoryIo } from "../src/cli/io.ts";
import { runCli } from "../src/cli/main.ts";
import { VERSION } from "../src/cli/version.ts";
import { currentRuntime, ROOT } from "./fixtures/runtimes.ts";
import { childEnv, realDisk } from "./helpers.ts";
import { cliCommand, type Finished, runToEnd } from "./cli_child.ts";

const disk = realDisk("cli");
/** Per test: a child start-up is ~0.1-0.5 s; bun's default per-test timeout is 5 s. */
const SLOW = { timeout: 120_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

type Result = Finished;

/** Runs `khipu args...` to its end (killed after 30 s: a hang fails the test). */
function khipu(...args: string[]): Promise<Result> {
  return runToEnd([...cliCommand(), ...args]);
}

/** Runs `khipu args...` in this process, on memory streams. */
async function inProcess(...args: string[]): Promise<Result> {
  const m = memoryIo();
  const code = await runCli(args, m.io);
  return { code, stdout: m.stdout(), stderr: m.stderr() };
}

/** Asserts exit status `code` and, unless 0, exactly one `khipu: CODE: ...` line on stderr. */
function expectExit(r: Result, code: number, errorCode?: string): void {
  assert.equal(r.code, code, `exit status; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  if (errorCode === undefined) return;
  assert.match(r.stderr, new RegExp(`^khipu: ${errorCode}: [^\\n]+\\n$`), "one error line");
}

const json = (r: Result) => JSON.parse(r.stdout);
const ndjson = (r: Result) =>
  r.stdout.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));

/** Record `i` of the log "events": text, except a binary one and one with a newline. */
function eventPayload(i: number): Uint8Array | string {
  if (i === 5) return new Uint8Array([0xff, 0x00, 0x41]);
  if (i === 6) return "line one\nline two";
  return `event ${i} ${"x".repeat(40 + (i % 50))}`;
}
const EVENTS = 400;
const SPLIT = 200; // records from SPLIT on were appended after `splitTime`

/** The segment files of log `name` in `dir`, oldest first. */
function segmentFiles(dir: string, name: string): string[] {
  return readdirSync(join(dir, name)).filter((f) => f.endsWith(".seg")).sort().map((f) =>
    join(dir, name, f)
  );
}

/** Flips a byte of the payload `text` in one of `files`; returns that file. */
function flipPayloadByte(files: readonly string[], text: string): string {
  for (const f of files) {
    const bytes = readFileSync(f);
    const at = bytes.indexOf(text);
    if (at < 0) continue;
    bytes[at + 2] ^= 0x20;
    writeFileSync(f, bytes);
    return f;
  }
  throw new Error(`${text} is in none of ${files.join(", ")}`);
}

describe(`khipu on ${currentRuntime()}: a store at rest`, () => {
  let dir = "";
  let splitTime = 0;
  const figures = new Map<string, { nextSeq: number; segments: number; bytes: number }>();

  before(async () => {
    dir = join(disk.tempDir(), "store");
    const store = await Store.open(dir, { segmentBytes: 8192 });
    const events = await store.log("events");
    for (const i of range(SPLIT)) await events.append(eventPayload(i));
    await sleep(30);
    splitTime = Date.now();
    await sleep(5);
    for (const i of range(EVENTS - SPLIT, SPLIT)) await events.append(eventPayload(i));
    const orders = await store.log("orders");
    await orders.appendBatch(["#1", "#2", "#3"]);
    await orders.sync();
    const billing = await orders.cursor("billing");
    await billing.commit(0);
    await billing.close();
    await store.log("empty");
    await store.close();
    const ro = await Store.open(dir, { readOnly: true });
    for (const name of await ro.logs()) {
      const log = await ro.log(name);
      figures.set(name, { nextSeq: log.nextSeq, segments: log.segmentCount, bytes: log.byteSize });
    }
    await ro.close();
    assert.ok(figures.get("events")!.segments >= 4, "events spans several segments");
  });

  it(
    "--help lists every command and the exit statuses; each command has its own --help",
    SLOW,
    async () => {
      const r = await khipu("--help");
      expectExit(r, 0);
      for (
        const usage of [
          "ls DIR",
          "stat DIR LOG",
          "verify DIR [LOG]",
          "dump DIR LOG",
          "tail DIR LOG",
          "cursors DIR LOG",
          "cursor set DIR LOG NAME SEQ",
          "repair DIR LOG",
        ]
      ) assert.ok(r.stdout.includes(`khipu ${usage}`), usage);
      assert.match(r.stdout, /0 +done[\s\S]*1 +damage[\s\S]*2 +usage[\s\S]*3 +failure/);
      for (const cmd of ["ls", "stat", "verify", "dump", "tail", "cursors", "repair"]) {
        const h = await (cmd === "dump" ? khipu : inProcess)(cmd, "--help");
        expectExit(h, 0);
        assert.ok(h.stdout.startsWith(`Usage: khipu ${cmd} `), h.stdout);
        assert.match(h.stdout, /--json[\s\S]*Exit status:/);
      }
      const set = await inProcess("cursor", "set", "-h");
      assert.ok(set.stdout.startsWith("Usage: khipu cursor set DIR LOG NAME SEQ"), set.stdout);
      assert.equal((await inProcess("cursor", "--help")).stdout, set.stdout);
      const dumpHelp = await inProcess("dump", "--help");
      for (const opt of ["--from N", "--to N", "--from-time ISO", "--format FORMAT"]) {
        assert.ok(dumpHelp.stdout.includes(opt), opt);
      }
    },
  );

  it("--version prints the version of package.json and deno.json", SLOW, async () => {
    const r = await khipu("--version");
    expectExit(r, 0);
    assert.equal(r.stdout, `${VERSION}\n`);
    for (const f of ["package.json", "deno.json"]) {
      assert.equal(JSON.parse(readFileSync(join(ROOT, f), "utf8")).version, VERSION, f);
    }
  });

  it(
    "a bad command line exits 2 with one line naming the help to read, and does nothing",
    SLOW,
    async () => {
      const cases: [string[], RegExp][] = [
        [[], /no command given; see khipu --help$/],
        [["frobnicate"], /unknown command "frobnicate"; see khipu --help$/],
        [["cursor"], /needs a subcommand: set; see khipu --help$/],
        [["cursor", "get", dir, "events", "x"], /unknown command "cursor get"/],
        [["ls", dir, "--frobnicate"], /unknown option --frobnicate; see khipu ls --help$/],
        [["ls"], /missing DIR; see khipu ls --help$/],
        [["ls", dir, "extra"], /unexpected argument "extra".*; see khipu ls --help$/],
        [["stat", dir], /missing LOG; see khipu stat --help$/],
        [["dump", dir, "events", "--from", "ten"], /--from must be a whole number, got "ten"/],
        [["dump", dir, "events", "--to", "-1"], /--to/],
        [["dump", dir, "events", "--from"], /--from needs a value; see khipu dump --help$/],
        [["dump", dir, "events", "--format", "xml"], /--format must be one of ndjson, text, hex/],
        [["dump", dir, "events", "--json", "--format", "hex"], /--json prints ndjson/],
        [["dump", dir, "events", "--from-time", "yesterday"], /--from-time must be an ISO 8601/],
        [["dump", dir, "events", "--from", "1", "--from-time", "2026-01-01"], /exclude each other/],
        [["dump", dir, "events", "--from", "9", "--to", "3"], /--to 3 is below --from 9/],
        [["tail", dir, "events", "-n", "1.5"], /-n must be a whole number/],
        [["tail", dir, "events", "-f=yes"], /-f|unknown option/],
        [["verify", dir, "--dry-run"], /unknown option --dry-run/],
        [["cursor", "set", dir, "events", "billing", "x"], /SEQ must be a whole number/],
        [["stat", dir, "../etc"], /invalid log name "..\/etc"/],
      ];
      for (const [i, [args, message]] of cases.entries()) {
        const r = await (i % 10 === 4 ? khipu : inProcess)(...args);
        expectExit(r, 2, "INVALID_ARGUMENT");
        assert.match(r.stderr.trim(), message, args.join(" "));
        assert.equal(r.stdout, "", "nothing on stdout");
      }
    },
  );

  it("a missing store or log exits 3 (NOT_FOUND), and no command creates one", SLOW, async () => {
    const nowhere = join(disk.tempDir(), "nowhere");
    for (
      const [i, args] of [
        ["ls", nowhere],
        ["verify", nowhere],
        ["repair", nowhere, "events"],
        ["cursor", "set", nowhere, "events", "c", "0"],
        ["stat", dir, "nolog"],
        ["dump", dir, "nolog"],
        ["tail", dir, "nolog"],
        ["cursors", dir, "nolog"],
        ["verify", dir, "nolog"],
        ["repair", dir, "nolog"],
        ["repair", dir, "nolog", "--dry-run"],
        ["cursor", "set", dir, "nolog", "c", "0"],
      ].entries()
    ) {
      const r = await (i % 6 === 2 ? khipu : inProcess)(...args);
      expectExit(r, 3, "NOT_FOUND");
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    assert.throws(() => statSync(nowhere), "the store was not created");
    assert.throws(() => statSync(join(dir, "nolog")), "the log was not created");
  });

  it("ls lists every log with its records, segments, bytes and times", SLOW, async () => {
    const doc = json(await khipu("ls", dir, "--json"));
    assert.equal(doc.store, dir);
    assert.deepEqual(doc.logs.map((l: { name: string }) => l.name), ["empty", "events", "orders"]);
    for (const l of doc.logs) {
      const f = figures.get(l.name)!;
      assert.equal(l.error, null);
      assert.equal(l.records, f.nextSeq, l.name);
      assert.equal(l.nextSeq, f.nextSeq, l.name);
      assert.equal(l.segments, f.segments, l.name);
      assert.equal(l.bytes, f.bytes, l.name);
    }
    const events = doc.logs[1];
    assert.ok(Date.parse(events.firstTime) < splitTime && Date.parse(events.lastTime) >= splitTime);
    assert.equal(doc.logs[0].firstTime, null, "an empty log has no first time");
    const text = await khipu("ls", dir);
    expectExit(text, 0);
    const lines = text.stdout.trim().split("\n");
    assert.match(lines[0], /^LOG +RECORDS +SEGMENTS +BYTES +FIRST +LAST$/);
    assert.match(lines[2], new RegExp(`^events +${EVENTS} +${figures.get("events")!.segments} `));
    assert.equal(text.stderr, "");
  });

  it(
    "stat shows each segment's seq and time range and each cursor's position and lag",
    SLOW,
    async () => {
      const doc = json(await khipu("stat", dir, "events", "--json"));
      assert.equal(doc.log.records, EVENTS);
      assert.equal(doc.segments.length, figures.get("events")!.segments);
      let seq = 0;
      for (const [i, s] of doc.segments.entries()) {
        assert.equal(s.firstSeq, seq, "segments are contiguous");
        assert.equal(s.records, s.endSeq - s.firstSeq);
        assert.equal(s.sealed, i < doc.segments.length - 1, "all but the newest are sealed");
        if (s.records > 0) assert.ok(Date.parse(s.firstTime) <= Date.parse(s.lastTime));
        seq = s.endSeq;
      }
      assert.equal(seq, EVENTS);
      assert.deepEqual(doc.cursors, []);
      const orders = json(await inProcess("stat", dir, "orders", "--json"));
      assert.deepEqual(orders.cursors, [{ name: "billing", position: 1, lag: 2 }]);
      const text = await khipu("stat", dir, "orders");
      expectExit(text, 0);
      assert.match(text.stdout, /^log +orders$/m);
      assert.match(text.stdout, /^records +3$/m);
      assert.match(text.stdout, /^0{20}\.seg +0 +3 +3 /m);
      assert.match(text.stdout, /^billing +1 +2$/m);
    },
  );

  it("dump prints every record, a range, from a time, as text, ndjson and hex", SLOW, async () => {
    const all = await khipu("dump", dir, "events", "--json");
    expectExit(all, 0);
    const records = ndjson(all);
    assert.deepEqual(records.map((r) => r.seq), range(EVENTS));
    for (const r of records) {
      const want = eventPayload(r.seq);
      if (typeof want === "string") {
        assert.equal(r.data, want);
        assert.equal(r.encoding, undefined);
      } else {
        assert.equal(r.encoding, "base64", "binary data is base64");
        assert.deepEqual(new Uint8Array(Buffer.from(r.data, "base64")), want);
      }
      assert.ok(!Number.isNaN(Date.parse(r.timestamp)));
    }
    const part = ndjson(
      await inProcess("dump", dir, "events", "--from", "10", "--to", "13", "--json"),
    );
    assert.deepEqual(part.map((r) => r.seq), [10, 11, 12]);
    const fromTime = new Date(splitTime).toISOString();
    const late = ndjson(await inProcess("dump", dir, "events", "--from-time", fromTime, "--json"));
    assert.deepEqual(late.map((r) => r.seq), range(EVENTS - SPLIT, SPLIT));
    const past = await inProcess("dump", dir, "events", "--from", "100000");
    expectExit(past, 0);
    assert.equal(past.stdout, "");

    const text = await khipu("dump", dir, "events", "--from", "4", "--to", "8");
    expectExit(text, 0);
    const lines = text.stdout.split("\n");
    assert.equal(lines.length, 5, "one line per record");
    assert.match(lines[0], /^4 \d{4}-\d\d-\d\dT[\d:.]+Z event 4 x+$/);
    assert.match(lines[1], /^5 \S+ base64:\/wBB$/);
    assert.match(lines[2], /^6 \S+ line one\\nline two$/);

    const hex = await inProcess(
      "dump",
      dir,
      "events",
      "--from",
      "5",
      "--to",
      "7",
      "--format",
      "hex",
    );
    expectExit(hex, 0);
    assert.match(hex.stdout, /^seq 5 {2}\S+ {2}3 bytes\n00000000 {2}ff 00 41 +\|\.\.A\|\n/);
    assert.match(hex.stdout, /\n\nseq 6 .*\n00000000 {2}6c 69 6e 65 .*\|line one\.line tw\|\n/);
    assert.match(hex.stdout, /\n00000010 {2}6f {48}\|o\|\n/);
    assert.equal((await inProcess("dump", dir, "events", "--format", "ndjson")).stdout, all.stdout);
  });

  it("tail prints the last N records (10 by default)", SLOW, async () => {
    const seqs = (r: Result) => r.stdout.trim().split("\n").map((l) => Number(l.split(" ")[0]));
    assert.deepEqual(seqs(await khipu("tail", dir, "events")), range(10, EVENTS - 10));
    assert.deepEqual(seqs(await inProcess("tail", dir, "events", "-n", "3")), range(3, EVENTS - 3));
    const many = ndjson(await inProcess("tail", dir, "orders", "--lines", "50", "--json"));
    assert.deepEqual(many.map((r) => r.data), ["#1", "#2", "#3"]);
    const none = await khipu("tail", dir, "events", "-n", "0");
    expectExit(none, 0);
    assert.equal(none.stdout, "");
  });

  it("cursors lists positions and lags; cursor set creates and moves a cursor", SLOW, async () => {
    const copy = join(disk.tempDir(), "cursors");
    cpSync(dir, copy, { recursive: true });
    assert.deepEqual(json(await khipu("cursors", copy, "orders", "--json")), {
      log: "orders",
      nextSeq: 3,
      cursors: [{ name: "billing", position: 1, lag: 2 }],
    });
    const created = await khipu("cursor", "set", copy, "orders", "audit", "2", "--json");
    expectExit(created, 0);
    assert.deepEqual(json(created), {
      log: "orders",
      cursor: "audit",
      created: true,
      before: null,
      position: 2,
      lag: 1,
    });
    const moved = await khipu("cursor", "set", copy, "orders", "billing", "0");
    expectExit(moved, 0);
    assert.equal(moved.stdout, "cursor billing of orders: moved from 1 to 0 (lag 3)\n");
    const text = await inProcess("cursors", copy, "orders");
    assert.equal(
      text.stdout,
      "CURSOR   POSITION  LAG\naudit           2    1\nbilling         0    3\n",
    );
    const none = await inProcess("cursors", copy, "events");
    assert.equal(none.stdout, "no cursors on events\n");
    const past = await inProcess("cursor", "set", copy, "orders", "billing", "4");
    expectExit(past, 2, "INVALID_ARGUMENT");
    assert.match(past.stderr, /past the log's next seq 3/);
  });

  it("verify exits 0 on a sound store, in text and --json", SLOW, async () => {
    const text = await khipu("verify", dir);
    expectExit(text, 0);
    assert.match(text.stdout, new RegExp(`^events: ok: ${EVENTS} records in \\d+ segments`, "m"));
    assert.match(text.stdout, /^verified 3 logs, .*: all ok$/m);
    const doc = json(await inProcess("verify", dir, "orders", "--json"));
    assert.equal(doc.ok, true);
    assert.deepEqual(doc.logs.map((l: { log: string }) => l.log), ["orders"]);
    assert.equal(doc.logs[0].records, 3);
    assert.deepEqual(doc.logs[0].problems, []);
  });

  it(
    "a flipped byte in a sealed segment: verify and dump exit 1, repair keeps every other record",
    SLOW,
    async () => {
      const copy = join(disk.tempDir(), "flipped");
      cpSync(dir, copy, { recursive: true });
      const sealed = segmentFiles(copy, "events").slice(0, -1);
      const damaged = flipPayloadByte(sealed, "event 42 ");
      const v = await khipu("verify", copy, "--json");
      expectExit(v, 1);
      const report = json(v);
      assert.equal(report.ok, false);
      const events = report.logs.find((l: { log: string }) => l.log === "events");
      assert.equal(events.problems.length, 1);
      assert.equal(events.problems[0].path, damaged);
      assert.equal(events.problems[0].seq, 42);
      const text = await inProcess("verify", copy);
      expectExit(text, 1);
      assert.match(text.stdout, /^events: DAMAGED \(1 problem\)/m);
      assert.ok(text.stdout.includes(`  ${damaged} offset `), text.stdout);
      assert.match(text.stdout, /damaged: events$/m);
      const cut = await khipu("dump", copy, "events");
      expectExit(cut, 1, "CORRUPTION");
      assert.equal(
        cut.stdout.split("\n").length - 1,
        42,
        "the records before the damage are shown",
      );

      const before = snapshot(copy);
      const plan = await khipu("repair", copy, "events", "--dry-run");
      expectExit(plan, 0);
      assert.match(plan.stdout, /^events: repair would take \d+ actions? \(nothing changed\)$/m);
      assert.match(plan.stdout, new RegExp(`^salvaged ${damaged}$`, "m"));
      assert.match(plan.stdout, /^ {2}lost +\[42, 43\)$/m);
      assert.deepEqual(snapshot(copy), before, "a dry run changes nothing");
      const planned = json(await inProcess("repair", copy, "events", "--dry-run", "--json"));

      const done = await khipu("repair", copy, "events", "--json");
      expectExit(done, 0);
      const repaired = json(done);
      assert.deepEqual(repaired.actions, planned.actions, "repair does what the dry run said");
      assert.equal(repaired.actions[0].kind, "salvaged");
      assert.equal(statSync(repaired.actions[0].movedTo).isFile(), true, "the .broken copy");
      assert.deepEqual(repaired.after.gaps, [{ from: 42, to: 43 }]);
      assert.equal(repaired.after.records, EVENTS - 1);
      const after = await inProcess("verify", copy);
      expectExit(after, 0);
      assert.match(after.stdout, /gaps \[42, 43\) \(1 seq lost\)/);
      const left = ndjson(await inProcess("dump", copy, "events", "--json")).map((r) => r.seq);
      assert.deepEqual(left, range(EVENTS).filter((s) => s !== 42), "every intact record stays");
      const again = await inProcess("repair", copy, "events");
      expectExit(again, 0);
      assert.match(again.stdout, /^events: nothing to repair$/m);
    },
  );

  it(
    "a log too damaged to open (a deleted middle segment): ls and stat exit 1, verify reports it",
    SLOW,
    async () => {
      const copy = join(disk.tempDir(), "hole");
      cpSync(dir, copy, { recursive: true });
      const files = segmentFiles(copy, "events");
      rmSync(files[1]);
      const listed = await khipu("ls", copy, "--json");
      expectExit(listed, 1, "CORRUPTION");
      const entry = json(listed).logs.find((l: { name: string }) => l.name === "events");
      assert.equal(entry.error.code, "CORRUPTION");
      assert.equal(json(listed).logs.find((l: { name: string }) => l.name === "orders").records, 3);
      expectExit(await khipu("stat", copy, "events"), 1, "CORRUPTION");
      const v = await inProcess("verify", copy, "events", "--json");
      expectExit(v, 1);
      assert.equal(json(v).logs[0].problems.length > 0, true);
    },
  );

  it(
    "a reader that closes the pipe early ends the command quietly with status 0",
    SLOW,
    async () => {
      const [cmd, ...rest] = cliCommand();
      // Far more than a pipe holds, so the command is still writing when the reader goes.
      const child = spawn(cmd, [...rest, "dump", dir, "events", "--format", "hex"], {
        cwd: ROOT,
        env: childEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
      child.stdout!.once("data", () => child.stdout!.destroy());
      const code = await new Promise((done) => child.on("close", (c) => done(c)));
      assert.equal(stderr, "");
      assert.equal(code, 0);
    },
  );
});

describe(`khipu on ${currentRuntime()}: beside a live writer in this process`, () => {
  let dir = "";
  let store: Store;
  let log: Log;

  before(async () => {
    dir = join(disk.tempDir(), "live");
    store = await Store.open(dir, { segmentBytes: 8192 });
    log = await store.log("events");
    for (const i of range(50)) await log.append(`live ${i}`);
    await log.sync();
  });
  after(async () => {
    await store?.close();
  });

  it("read-only commands work while this process holds the lock", SLOW, async () => {
    const listed = json(await khipu("ls", dir, "--json"));
    assert.equal(listed.logs[0].records, 50);
    expectExit(await khipu("stat", dir, "events"), 0);
    expectExit(await khipu("cursors", dir, "events"), 0);
    expectExit(await khipu("verify", dir), 0);
    assert.equal(ndjson(await khipu("dump", dir, "events", "--json")).length, 50);
    assert.equal(
      ndjson(await khipu("tail", dir, "events", "-n", "2", "--json"))[1].data,
      "live 49",
    );
  });

  it("repair, repair --dry-run and cursor set are refused with LOCKED (exit 3)", SLOW, async () => {
    for (
      const args of [
        ["repair", dir, "events"],
        ["repair", dir, "events", "--dry-run"],
        ["cursor", "set", dir, "events", "billing", "0"],
      ]
    ) {
      const r = await khipu(...args);
      expectExit(r, 3, "LOCKED");
      assert.match(r.stderr, /store is locked by /);
    }
    assert.deepEqual(await log.cursors(), [], "no cursor was made");
  });

  it("cursor set is refused (LOCKED) while a consumer holds the cursor", SLOW, async () => {
    const other = join(disk.tempDir(), "held");
    cpSync(dir, other, { recursive: true, filter: (p) => !p.endsWith("LOCK") });
    const reader = await Store.open(other, { readOnly: true });
    try {
      const held = await (await reader.log("events")).cursor("billing");
      const r = await khipu("cursor", "set", other, "events", "billing", "3");
      expectExit(r, 3, "LOCKED");
      assert.match(r.stderr, /cursor "billing" is locked/);
      assert.equal(held.position, 0);
    } finally {
      await reader.close();
    }
  });

  it("tail -f follows appends made here until SIGTERM or SIGINT, then exits 0", SLOW, async () => {
    const followers = (["SIGTERM", "SIGINT"] as const).map((signal) => {
      const [cmd, ...rest] = cliCommand();
      const child = spawn(cmd, [...rest, "tail", dir, "events", "-n", "2", "-f", "--json"], {
        cwd: ROOT,
        env: childEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      const f = {
        signal,
        child,
        stdout: "",
        stderr: "",
        closed: Promise.resolve<number | null>(0),
      };
      child.stdout!.setEncoding("utf8").on("data", (c: string) => (f.stdout += c));
      child.stderr!.setEncoding("utf8").on("data", (c: string) => (f.stderr += c));
      f.closed = new Promise((done) => child.on("close", (c) => done(c)));
      return f;
    });
    const lines = (f: { stdout: string }) =>
      f.stdout.split("\n").filter((l) => l).map((l) => JSON.parse(l));
    const waitFor = async (n: number) => {
      for (const f of followers) {
        for (let t = 0; lines(f).length < n; t++) {
          if (t === 600) throw new Error(`tail -f: ${lines(f).length} of ${n} lines; ${f.stderr}`);
          await sleep(50);
        }
      }
    };
    try {
      await waitFor(2);
      for (const i of range(5, 50)) await log.append(`live ${i}`);
      await log.sync();
      await waitFor(7);
      await log.roll(); // a rollover under the followers
      await log.appendBatch(["after the roll", "and one more"]);
      await waitFor(9);
    } finally {
      // Not child.kill(): Deno's then reports the signal even when the child handled it.
      for (const f of followers) {
        if (f.child.exitCode === null) process.kill(f.child.pid!, f.signal);
      }
    }
    for (const f of followers) {
      assert.equal(await f.closed, 0, `tail -f stopped by ${f.signal}; stderr:\n${f.stderr}`);
      assert.deepEqual(lines(f).map((r) => r.seq), range(9, 48));
      assert.deepEqual(lines(f).slice(-2).map((r) => r.data), ["after the roll", "and one more"]);
      assert.equal(f.stderr, "");
    }
  });
});

/** Every file under `dir` with its bytes, to see that nothing changed. */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()) {
    const p = join(dir, f);
    if (statSync(p).isFile()) files.set(f, readFileSync(p).toString("base64"));
  }
  return files;
}
