// `khipu verify`'s progress on a terminal and off one: under a pseudo-terminal (util-linux
// `script -qec CMD /dev/null`, which gives the command a pty and copies what it prints) the bar is
// redrawn in place with `\r` once per segment and erased at the end; with stderr a pipe there is
// no `\r` at all, one plain line per segment instead. The command runs on the runtime running this
// file, as in tests/cli.test.ts.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { Store } from "../mod.ts";
import { currentRuntime } from "./fixtures/runtimes.ts";
import { realDisk } from "./helpers.ts";
import { cliCommand, runToEnd } from "./cli_child.ts";

const disk = realDisk("cli-pty");
const SLOW = { timeout: 60_000 };
const hasScript = spawnSync("script", ["--version"], { encoding: "utf8" }).status === 0;

/** `words` as one POSIX shell command line. */
const shell = (words: string[]) => words.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(" ");

describe(`khipu verify's progress on ${currentRuntime()}`, SLOW, () => {
  let dir = "";
  let segments = 0;

  before(async () => {
    dir = join(disk.tempDir(), "store");
    const store = await Store.open(dir, { segmentBytes: 4096 });
    const log = await store.log("events");
    for (let i = 0; i < 240; i++) await log.append(`record ${i} ${"x".repeat(100)}`);
    segments = log.segmentCount;
    await store.close();
    assert.ok(segments >= 6, `${segments} segments`);
  });

  it("on a terminal: a bar redrawn with \\r at each segment, erased at the end", {
    ...SLOW,
    skip: !hasScript && "util-linux `script` is not installed (apt-get install -y bsdutils)",
  }, async () => {
    const r = await runToEnd([
      "script",
      "-qec",
      shell([...cliCommand(), "verify", dir]),
      "/dev/null",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // The pty turns each "\n" into "\r\n"; a "\r" on its own is a redraw.
    const redraws = r.stdout.match(/\r(?!\n)verify events \[[#-]{20}\] +\d+%/g) ?? [];
    assert.ok(redraws.length >= segments, JSON.stringify(r.stdout)); // and maybe mid-segment ones
    assert.match(redraws.at(-1)!, /\[#{20}\] 100%/);
    assert.ok(r.stdout.includes("\r\x1b[K"), "the bar is erased");
    assert.match(r.stdout, /events: ok: 240 records/);
    assert.doesNotMatch(r.stdout, /verify: events: segment/, "no plain progress lines");
  });

  it("off a terminal: one plain line per segment, no \\r", SLOW, async () => {
    const r = await runToEnd([...cliCommand(), "verify", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes("\r") && !r.stdout.includes("\r"), JSON.stringify(r.stderr));
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, segments);
    lines.forEach((l, i) => assert.match(l, new RegExp(`^verify: events: segment ${i + 1}/`)));
    assert.match(r.stdout, /^events: ok: 240 records/);
  });
});
