// The store owns its files: what it finds inside its directory where a regular file belongs (a FIFO,
// a symbolic link, a dangling link) is refused with a FileTypeError naming the path, never opened,
// followed or written through. An open that would block (a FIFO) runs in a child process killed
// after a timeout, so a regression fails the test instead of hanging the runner.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { FileTypeError, Store } from "../mod.ts";
import { segmentFileName } from "../src/segment.ts";
import { currentRuntime, ROOT, runtimeCommand } from "./fixtures/runtimes.ts";
import { realDisk } from "./helpers.ts";

const disk = realDisk("hostile");
const FIXTURE = "tests/fixtures/hostile_open.ts";
/** Far above a child's start-up (under a second), far below the test's own timeout. */
const CHILD_TIMEOUT_MS = 20_000;
const posix = process.platform !== "win32";
const hasMkfifo = posix && spawnSync("sh", ["-c", "command -v mkfifo"]).status === 0;
/** Deno also runs the store on `nodePlatform` (node:fs works there too). */
const adapters = currentRuntime() === "deno" ? ["default", "node"] : ["default"];

interface Refusal {
  code: string;
  path?: string;
  found?: string;
}

/** Runs the fixture; fails if it had to be killed (the open blocked) or did not fail. */
async function refusalInChild(what: "store" | "log", dir: string, adapter: string) {
  const [cmd, ...args] = runtimeCommand(currentRuntime(), FIXTURE, [what, dir, adapter]);
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  child.stderr!.on("data", (b: Uint8Array) => (err += new TextDecoder().decode(b)));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, CHILD_TIMEOUT_MS);
  await new Promise<void>((resolve) => child.on("close", () => resolve()));
  clearTimeout(timer);
  assert.ok(!killed, `blocked: killed after ${CHILD_TIMEOUT_MS} ms (stderr: ${err})`);
  const line = out.trim();
  assert.match(line, /^ERROR /, `expected a refusal, got: ${line} ${err}`);
  return JSON.parse(line.slice("ERROR ".length)) as Refusal;
}

function mkfifo(path: string): void {
  const r = spawnSync("mkfifo", [path], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

/** The error `p` rejects with, which must be a FileTypeError. */
async function fileTypeError(p: Promise<unknown>): Promise<FileTypeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FileTypeError, `expected FileTypeError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected FileTypeError, but it succeeded");
}

describe(`FIFOs inside the store are refused without blocking (${currentRuntime()})`, {
  skip: !hasMkfifo && "needs mkfifo",
}, () => {
  for (const adapter of adapters) {
    it(`a FIFO named LOCK: Store.open fails with FILE_TYPE (${adapter} platform)`, {
      timeout: 2 * CHILD_TIMEOUT_MS,
    }, async () => {
      const dir = disk.tempDir();
      mkfifo(join(dir, "LOCK"));
      const r = await refusalInChild("store", dir, adapter);
      assert.deepEqual(r, { code: "FILE_TYPE", path: `${dir}/LOCK`, found: "a FIFO" });
    });

    // A FIFO where the newest segment belongs, and where an older (sealed) one does.
    for (const older of [false, true]) {
      it(
        `a FIFO named like ${
          older ? "an older (sealed)" : "the newest"
        } segment: store.log fails with FILE_TYPE (${adapter} platform)`,
        { timeout: 2 * CHILD_TIMEOUT_MS },
        async () => {
          const dir = disk.tempDir();
          mkdirSync(join(dir, "events"));
          const seg = join(dir, "events", segmentFileName(0));
          mkfifo(seg);
          if (older) writeFileSync(join(dir, "events", segmentFileName(10)), "");
          assert.deepEqual(await refusalInChild("log", dir, adapter), {
            code: "FILE_TYPE",
            path: seg,
            found: "a FIFO",
          });
        },
      );
    }
  }
});

describe("symbolic links inside the store are refused, never followed", {
  skip: !posix && "symlinks need privileges on Windows",
}, () => {
  const precious = new TextEncoder().encode("precious, not a segment\n");

  it("a symlinked newest segment: FILE_TYPE, and the file it points to is byte-identical", async () => {
    const dir = disk.tempDir();
    const outside = join(disk.tempDir(), "outside.txt");
    writeFileSync(outside, precious);
    mkdirSync(join(dir, "events"));
    const seg = join(dir, "events", segmentFileName(0));
    symlinkSync(outside, seg);
    const store = await Store.open(dir);
    try {
      const e = await fileTypeError(store.log("events"));
      assert.equal(e.path, seg);
      assert.equal(e.found, "a symbolic link");
    } finally {
      await store.close();
    }
    assert.deepEqual(new Uint8Array(readFileSync(outside)), precious);
  });

  it("a LOCK symlink to a file outside: Store.open fails with FILE_TYPE; that file is untouched", async () => {
    const dir = disk.tempDir();
    const outside = join(disk.tempDir(), "outside.txt");
    writeFileSync(outside, precious);
    symlinkSync(outside, join(dir, "LOCK"));
    const e = await fileTypeError(Store.open(dir));
    assert.equal(e.path, `${dir}/LOCK`);
    assert.equal(e.found, "a symbolic link");
    assert.deepEqual(new Uint8Array(readFileSync(outside)), precious);
  });

  it("a dangling LOCK symlink is FILE_TYPE on LOCK, not 'the lock kept changing hands'", async () => {
    const dir = disk.tempDir();
    symlinkSync(join(dir, "nowhere"), join(dir, "LOCK"));
    const e = await fileTypeError(Store.open(dir));
    assert.equal(e.path, `${dir}/LOCK`);
    assert.equal(e.found, "a symbolic link");
  });

  it("the store directory itself may be a symlink (only entries inside it are refused)", async () => {
    const real = disk.tempDir();
    const link = join(disk.tempDir(), "store-link");
    symlinkSync(real, link);
    const store = await Store.open(link);
    const log = await store.log("events");
    await log.append("through the link");
    await store.close();
    const again = await Store.open(link);
    const got: string[] = [];
    for await (const r of (await again.log("events")).read()) {
      got.push(new TextDecoder().decode(r.data));
    }
    await again.close();
    assert.deepEqual(got, ["through the link"]);
  });
});
