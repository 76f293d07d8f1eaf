// Proves with strace, on the runtime running this test, that the durable helpers really fsync the
// parent directory after create, rename and unlink (and each new directory's parent after mkdir):
// the recording-wrapper test shows what the code asks for, this one what reaches the kernel. And
// that writable files are opened without O_APPEND, so positional writes reach the kernel at their
// offset: pwrite64/pwritev on node:fs (Node, Bun), lseek + one write on Deno.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { currentRuntime, ROOT, runtimeCommand } from "./fixtures/runtimes.ts";

const hasStrace = spawnSync("strace", ["-V"], { encoding: "utf8" }).status === 0;
const TRACE =
  "trace=openat,open,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat";

interface Call {
  name: string;
  args: string;
}

/** Syscall starts from `strace -f -y -qq` output (a resumed line is not a new call). */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^(?:\[pid\s+)?\d+\]?\s+([a-z0-9_]+)\((.*)$/.exec(line);
    if (m) calls.push({ name: m[1], args: m[2] });
  }
  return calls;
}

/** First index >= from where `pred` holds, or -1. */
function findFrom(calls: Call[], from: number, pred: (c: Call) => boolean): number {
  for (let i = Math.max(0, from); i < calls.length; i++) if (pred(calls[i])) return i;
  return -1;
}

const isSyncOf = (path: string, names = ["fsync"]) => (c: Call) =>
  names.includes(c.name) && c.args.startsWith(`${/^\d+/.exec(c.args)?.[0]}<${path}>`);

describe(`strace: durable helpers on ${currentRuntime()}`, {
  skip: !hasStrace && "strace not installed (apt-get install -y strace)",
}, () => {
  let tmp = "";
  let calls: Call[] = [];
  let sub = "";
  let excerpt = ""; // the trace lines about our files, shown when an assertion fails

  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), "khipu-strace-")));
    sub = `${tmp}/sub`;
    const out = `${tmp}.trace`;
    const [cmd, ...args] = runtimeCommand(currentRuntime(), "tests/fixtures/durable_ops.ts", [tmp]);
    const r = spawnSync("strace", ["-f", "-y", "-qq", "-o", out, "-e", TRACE, cmd, ...args], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `fixture failed: ${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /done/);
    const text = readFileSync(out, "utf8");
    calls = parseTrace(text);
    excerpt = text.split("\n").filter((l) => l.includes(tmp)).join("\n");
    rmSync(out, { force: true });
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("mkdir: the new directory and its parent are fsynced after the mkdir", () => {
    const mk = findFrom(calls, 0, (c) => /^mkdir/.test(c.name) && c.args.includes(`"${sub}"`));
    assert.ok(mk >= 0, `mkdir not seen:\n${excerpt}`);
    assert.ok(findFrom(calls, mk, isSyncOf(sub)) > mk, `new directory not fsynced:\n${excerpt}`);
    assert.ok(findFrom(calls, mk, isSyncOf(tmp)) > mk, `parent directory not fsynced:\n${excerpt}`);
  });

  it("create: O_EXCL open, fdatasync of the file, then fsync of the directory", () => {
    const file = `${sub}/created.seg`;
    const open = findFrom(
      calls,
      0,
      (c) => /^open/.test(c.name) && c.args.includes(`"${file}"`) && c.args.includes("O_EXCL"),
    );
    assert.ok(open >= 0, `exclusive create not seen:\n${excerpt}`);
    const ds = findFrom(calls, open, isSyncOf(file, ["fdatasync", "fsync"]));
    assert.ok(ds > open, `file not synced after create:\n${excerpt}`);
    const dirSync = findFrom(calls, ds, isSyncOf(sub));
    const rename = findFrom(calls, 0, (c) => /^rename/.test(c.name) && c.args.includes(sub));
    assert.ok(
      dirSync > ds && (rename < 0 || dirSync < rename),
      `directory not fsynced after create:\n${excerpt}`,
    );
  });

  it("rename: fsync of the directory after the rename", () => {
    const rn = findFrom(
      calls,
      0,
      (c) =>
        /^rename/.test(c.name) && c.args.includes("created.seg") && c.args.includes("renamed.seg"),
    );
    assert.ok(rn >= 0, `rename not seen:\n${excerpt}`);
    const un = findFrom(calls, rn, (c) => /^unlink/.test(c.name) && c.args.includes(sub));
    const dirSync = findFrom(calls, rn, isSyncOf(sub));
    assert.ok(
      dirSync > rn && (un < 0 || dirSync < un),
      `directory not fsynced after rename:\n${excerpt}`,
    );
  });

  it("unlink: fsync of the directory after the unlink", () => {
    const un = findFrom(calls, 0, (c) => /^unlink/.test(c.name) && c.args.includes("renamed.seg"));
    assert.ok(un >= 0, `unlink not seen:\n${excerpt}`);
    assert.ok(
      findFrom(calls, un, isSyncOf(sub)) > un,
      `directory not fsynced after unlink:\n${excerpt}`,
    );
  });
});

describe(`strace: positional writes on ${currentRuntime()}`, {
  skip: !hasStrace && "strace not installed (apt-get install -y strace)",
}, () => {
  const rt = currentRuntime();
  let tmp = "";
  let file = "";
  let calls: Call[] = [];
  let excerpt = "";

  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), "khipu-strace-at-")));
    file = `${tmp}/at.seg`;
    const detect = pathToFileURL(join(ROOT, "src/platform/detect.ts")).href;
    // .mts: Node loads a .ts outside the package as CommonJS, which has no top-level await.
    const script = `${tmp}/writes.mts`;
    writeFileSync(
      script,
      `import { defaultPlatform } from ${JSON.stringify(detect)};
const p = await defaultPlatform();
const enc = new TextEncoder();
const f = await p.open(${JSON.stringify(file)}, "createExclusive");
f.write(enc.encode("0123456789"));
f.writeAt(enc.encode("AT"), 100);
f.writevAt([enc.encode("VE"), enc.encode("C")], 200);
f.write(enc.encode("END"));
f.close();
const g = await p.open(${JSON.stringify(file)}, "append");
g.writeAt(enc.encode("IN"), 4);
g.write(enc.encode("TAIL"));
g.close();
console.log("done");
`,
    );
    const out = `${tmp}.trace`;
    const [cmd, ...args] = runtimeCommand(rt, script);
    const trace = "trace=openat,open,write,writev,pwrite64,pwritev,pwritev2,lseek";
    const r = spawnSync("strace", ["-f", "-y", "-qq", "-o", out, "-e", trace, cmd, ...args], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `script failed: ${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /done/);
    const text = readFileSync(out, "utf8");
    rmSync(out, { force: true });
    calls = parseTrace(text).filter((c) => c.args.includes(`<${file}>`) || c.args.includes(file));
    excerpt = calls.map((c) => `${c.name}(${c.args}`).join("\n");
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** The write syscalls in order, as `name "bytes" @offset` (the offset a seek set, on Deno). */
  function writes(): string[] {
    const out: string[] = [];
    let seekTo: number | undefined;
    for (const c of calls) {
      const data = /, "([^"]*)",/.exec(c.args)?.[1];
      if (c.name === "lseek") seekTo = Number(/^\d+<[^>]*>, (\d+), SEEK_SET/.exec(c.args)?.[1]);
      else if (c.name === "pwrite64") {
        out.push(`pwrite64 "${data}" @${/, (\d+)\)?(?: = | <unfinished)/.exec(c.args)?.[1]}`);
      } else if (c.name === "pwritev") {
        const bufs = [...c.args.matchAll(/iov_base="([^"]*)"/g)].map((m) => m[1]).join("+");
        out.push(`pwritev "${bufs}" @${/\], \d+, (\d+)\)?(?: = | <unfinished)/.exec(c.args)?.[1]}`);
      } else if (c.name === "write" || c.name === "writev") {
        out.push(`${c.name} "${data}"${seekTo === undefined ? "" : ` @${seekTo}`}`);
        seekTo = undefined;
      }
    }
    return out;
  }

  it("writable opens have O_RDWR and no O_APPEND", () => {
    const opens = calls.filter((c) => /^open/.test(c.name) && c.args.includes(`"${file}"`));
    assert.equal(opens.length, 2, excerpt);
    for (const o of opens) {
      assert.match(o.args, /O_RDWR/, excerpt);
      assert.doesNotMatch(o.args, /O_APPEND/, excerpt);
    }
  });

  it("writeAt/writevAt go to their offset, and write() to the end the file keeps", () => {
    const expected = rt === "deno"
      ? [
        'write "0123456789"', // a new descriptor is at 0 already: no seek
        'write "AT" @100',
        'write "VEC" @200', // no writev in Deno: one buffer, one write
        'write "END"', // right after the writevAt: the descriptor is at 203, the end, already
        'write "IN" @4', // the reopened descriptor is at 0: an lseek
        'write "TAIL" @206',
      ]
      : [
        'pwrite64 "0123456789" @0',
        'pwrite64 "AT" @100',
        'pwritev "VE+C" @200',
        'pwrite64 "END" @203',
        'pwrite64 "IN" @4',
        'pwrite64 "TAIL" @206',
      ];
    assert.deepEqual(writes(), expected, excerpt);
  });
});
