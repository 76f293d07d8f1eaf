// The platform layer on the runtime running the test: the write loops against fakes that write a
// few bytes at a time, every adapter available here (Deno: both the Deno and the node:fs adapter),
// each typed error produced by a real OS error, and the durable helpers observed through the
// recording wrapper.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { ClosedError, FileTypeError, fromOsError, IoError, KhipuError } from "../src/errors.ts";
import { writeAll, writevAll } from "../src/platform/write_all.ts";
import { HandleGate } from "../src/platform/handle.ts";
import { defaultPlatform, detectRuntime } from "../src/platform/detect.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { recordingPlatform } from "../src/testing/recording.ts";
import {
  createFileDurable,
  dirModeFor,
  mkdirDurable,
  renameDurable,
  unlinkDurable,
} from "../src/platform/durable.ts";
import type { Platform } from "../src/platform/types.ts";
import { currentRuntime } from "./fixtures/runtimes.ts";

const enc = new TextEncoder();
const isLinux = process.platform === "linux";
const posix = process.platform !== "win32";

/** Runs `fn` with the process umask at 0, so a created file's mode is exactly the one asked for. */
async function withUmask0(fn: () => Promise<unknown>): Promise<void> {
  const old = process.umask(0);
  try {
    await fn();
  } finally {
    process.umask(old);
  }
}

/** The error this adapter's own runtime API raises for a write to /dev/full: a real ENOSPC. */
function realEnospc(platform: Platform): unknown {
  const D = (globalThis as {
    Deno?: { openSync(p: string, o: object): { writeSync(b: Uint8Array): number; close(): void } };
  }).Deno;
  try {
    if (platform.name === "deno" && D) {
      const f = D.openSync("/dev/full", { write: true });
      try {
        f.writeSync(new Uint8Array(16));
      } finally {
        f.close();
      }
    } else {
      const fd = openSync("/dev/full", "w");
      try {
        writeSync(fd, new Uint8Array(16));
      } finally {
        closeSync(fd);
      }
    }
  } catch (err) {
    return err;
  }
  assert.fail("writing /dev/full succeeded");
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string, path?: string) {
  let caught: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof KhipuError, `expected a KhipuError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (path !== undefined) {
    assert.equal(caught.path, path);
    assert.ok(caught.message.includes(path), "the path is in the message");
  }
  return caught;
}

describe("write loops (partial writes)", () => {
  /** A fake file that accepts at most `max` bytes per call, cycling 1..max. */
  function trickle(max: number) {
    const out: number[] = [];
    let k = 0;
    const take = (bytes: Uint8Array[], limit: number) => {
      let n = 0;
      for (const b of bytes) {
        for (const x of b) {
          if (n === limit) return n;
          out.push(x);
          n++;
        }
      }
      return n;
    };
    return {
      out,
      calls: () => k,
      write: (b: Uint8Array) => take([b], (k++ % max) + 1),
      writev: (cs: Uint8Array[]) => take(cs, (k++ % max) + 1),
    };
  }
  const data = Uint8Array.from({ length: 100 }, (_, i) => i);

  it("writeAll delivers every byte in order through 1..3-byte writes", () => {
    const t = trickle(3);
    writeAll(t.write, data, "write", "/fake");
    assert.deepEqual(t.out, [...data]);
    assert.equal(t.calls(), 51); // 6 bytes per 3 calls: 48 calls -> 96, then 1, 2, 1
  });

  it("writevAll resumes inside the chunk where a partial writev stopped", () => {
    const t = trickle(7);
    const chunks = [
      data.subarray(0, 10),
      new Uint8Array(0),
      data.subarray(10, 11),
      data.subarray(11),
    ];
    writevAll(t.writev, chunks, "writev", "/fake");
    assert.deepEqual(t.out, [...data]);
  });

  it("writevAll passes at most maxChunks chunks per call", () => {
    const seen: number[] = [];
    const chunks = Array.from({ length: 10 }, (_, i) => data.subarray(i * 10, i * 10 + 10));
    const out: number[] = [];
    writevAll(
      (cs) => {
        seen.push(cs.length);
        for (const c of cs) out.push(...c);
        return cs.reduce((s, c) => s + c.length, 0);
      },
      chunks,
      "writev",
      "/fake",
      4,
    );
    assert.deepEqual(seen, [4, 4, 2]);
    assert.deepEqual(out, [...data]);
  });

  it("a write that makes no progress is an IoError, not an endless loop", () => {
    assert.throws(() => writeAll(() => 0, data, "write", "/fake"), IoError);
    assert.throws(() => writevAll(() => 0, [data], "writev", "/fake"), IoError);
  });

  it("an error mid-way propagates after the written prefix", () => {
    let n = 0;
    const boom = Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
    assert.throws(() =>
      writeAll(
        () => {
          if (n++ === 2) throw boom;
          return 10;
        },
        data,
        "write",
        "/fake",
      ), (e) => e === boom);
    assert.equal(n, 3);
  });
});

describe("runtime detection", () => {
  it("picks the adapter of this runtime", async () => {
    assert.equal(detectRuntime(), currentRuntime());
    assert.equal((await defaultPlatform()).name, currentRuntime());
  });
});

/** Adapters that work here: the default one, plus node:fs under Deno (it works there too). */
async function adapters(): Promise<Platform[]> {
  const def = await defaultPlatform();
  return def === nodePlatform ? [def] : [def, nodePlatform];
}

for (const platform of await adapters()) {
  describe(`${platform.name} adapter`, () => {
    let dir = "";
    before(() => {
      dir = mkdtempSync(join(tmpdir(), `khipu-platform-${platform.name}-`));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("create, write, writev, readAt, size, truncate, sync, close", async () => {
      const path = `${dir}/a.seg`;
      const f = await platform.open(path, "createExclusive", 0o600);
      f.write(enc.encode("hello "));
      f.writev([enc.encode("wor"), new Uint8Array(0), enc.encode("ld")]);
      await f.datasync();
      await f.sync();
      assert.equal(f.size(), 11);
      const buf = new Uint8Array(5);
      assert.equal(f.readAt(buf, 6), 5);
      assert.equal(new TextDecoder().decode(buf), "world");
      assert.equal(f.readAt(new Uint8Array(4), 9), 2, "short read at the end");
      assert.equal(f.readAt(new Uint8Array(4), 11), 0, "0 at end of file");
      f.truncate(5);
      assert.equal(f.size(), 5);
      f.write(enc.encode("!")); // lands at the new end, not at the read position
      f.close();
      f.close(); // idempotent
      assert.equal(readFileSync(path, "utf8"), "hello!");
      if (isLinux) assert.equal((await platform.stat(path))?.size, 6);
    });

    it("append reopens an existing file and writes at its end", async () => {
      const path = `${dir}/b.seg`;
      (await platform.open(path, "createExclusive")).close();
      const f = await platform.open(path, "append");
      f.write(enc.encode("x"));
      f.write(enc.encode("y"));
      f.close();
      const r = await platform.open(path, "read");
      const buf = new Uint8Array(8);
      assert.equal(r.readAt(buf, 0), 2);
      r.close();
    });

    it("writeAt overwrites in place and past the end (a zero gap); write() still appends at the end", async () => {
      const path = `${dir}/at.seg`;
      const f = await platform.open(path, "createExclusive");
      f.write(enc.encode("hello world"));
      f.writeAt(enc.encode("J"), 0);
      f.writeAt(enc.encode("W"), 6);
      assert.equal(f.size(), 11, "an overwrite does not grow the file");
      f.write(enc.encode("!")); // at 11, not after the last writeAt
      f.writeAt(enc.encode("#"), 16);
      assert.equal(f.size(), 17);
      f.write(enc.encode("$")); // the end moved past the gap
      const buf = new Uint8Array(18);
      assert.equal(f.readAt(buf, 0), 18);
      assert.equal(new TextDecoder().decode(buf.subarray(0, 12)), "Jello World!");
      assert.deepEqual([...buf.subarray(12, 16)], [0, 0, 0, 0], "the gap reads as zeros");
      assert.equal(new TextDecoder().decode(buf.subarray(16)), "#$");
      f.writeAt(enc.encode("j"), 0); // a read in between moves nothing either
      f.write(enc.encode("%"));
      f.truncate(5);
      f.write(enc.encode("?")); // the truncated length is the end
      f.writeAt(enc.encode("@"), 8);
      f.write(enc.encode("*"));
      f.close();
      assert.equal(readFileSync(path, "latin1"), "jello?\0\0@*");
      // A reopened file appends at its size then, and writes at an offset still go in place.
      const g = await platform.open(path, "append");
      g.write(enc.encode("+"));
      g.writeAt(enc.encode("H"), 0);
      g.close();
      assert.equal(readFileSync(path, "latin1"), "Hello?\0\0@*+");
    });

    it("writevAt writes its chunks as one write at the offset, even over 1024 chunks", async () => {
      const path = `${dir}/atv.seg`;
      const f = await platform.open(path, "createExclusive");
      f.write(new Uint8Array(10).fill(1));
      f.writevAt([new Uint8Array([2, 2]), new Uint8Array(0), new Uint8Array([3])], 4);
      assert.equal(f.size(), 10);
      f.writevAt([new Uint8Array([4]), new Uint8Array([5, 5])], 9); // over the end
      assert.equal(f.size(), 12);
      // more chunks than one writev takes (IOV_MAX): the offset must carry on across calls
      const many = Array.from({ length: 1500 }, (_, i) => new Uint8Array([i % 251]));
      f.writevAt(many, 20);
      f.writev([new Uint8Array([6]), new Uint8Array([7])]); // appends at 1520
      f.close();
      const got = readFileSync(path);
      assert.deepEqual([...got.subarray(0, 12)], [1, 1, 1, 1, 2, 2, 3, 1, 1, 4, 5, 5]);
      assert.deepEqual([...got.subarray(12, 20)], new Array(8).fill(0));
      assert.deepEqual([...got.subarray(20, 1520)], many.map((c) => c[0]));
      assert.deepEqual([...got.subarray(1520)], [6, 7]);
    });

    it("writeAt past 4 GiB (a sparse file), then write() appends after it", {
      skip: !posix && "a sparse file needs no 4 GiB of disk on POSIX file systems only",
    }, async () => {
      const path = `${dir}/far.seg`;
      const far = 2 ** 32 + 3; // past every int32/uint32 offset path
      const f = await platform.open(path, "createExclusive");
      try {
        f.writeAt(enc.encode("far"), far);
        f.write(enc.encode("!"));
        assert.equal(f.size(), far + 4);
        const buf = new Uint8Array(6);
        assert.equal(f.readAt(buf, far - 1), 5);
        assert.deepEqual([...buf.subarray(0, 5)], [0, ...enc.encode("far!")]);
      } finally {
        f.truncate(0);
        f.close();
      }
    });

    it("writeAt and writevAt refuse a read-only file, a bad offset and a closed file", async () => {
      const path = `${dir}/ro-at`;
      const w = await platform.open(path, "createExclusive");
      w.write(enc.encode("keep"));
      for (const bad of [-1, 0.5, NaN, 2 ** 53]) {
        const e = await rejectsWith(() => w.writeAt(enc.encode("x"), bad), "IO", path);
        assert.equal((e as IoError).osCode, "EINVAL");
        await rejectsWith(() => w.writevAt([enc.encode("x")], bad), "IO", path);
      }
      w.close();
      const r = await platform.open(path, "read");
      try {
        const e = await rejectsWith(() => r.writeAt(enc.encode("X"), 0), "IO", path);
        assert.equal((e as IoError).osCode, "EBADF", e.message);
        await rejectsWith(() => r.writevAt([enc.encode("X"), enc.encode("Y")], 1), "IO", path);
        await rejectsWith(() => r.write(enc.encode("X")), "IO", path);
      } finally {
        r.close();
      }
      assert.equal(readFileSync(path, "utf8"), "keep");
      assert.throws(() => r.writeAt(enc.encode("X"), 0), ClosedError);
      assert.throws(() => r.writevAt([enc.encode("X")], 0), ClosedError);
    });

    it("the recording wrapper passes writeAt and writevAt through with size and offset", async () => {
      const rec = recordingPlatform(platform);
      const path = `${dir}/rec-at.seg`;
      const f = await rec.open(path, "createExclusive");
      f.writeAt(enc.encode("abc"), 2);
      f.writevAt([enc.encode("d"), enc.encode("ef")], 0);
      f.close();
      const at = rec.calls.filter((c) => c.op === "writeAt" || c.op === "writevAt");
      assert.deepEqual(at.map((c) => [c.op, c.bytes, c.position, c.outcome]), [
        ["writeAt", 3, 2, "ok"],
        ["writevAt", 3, 0, "ok"],
      ]);
      assert.equal(readFileSync(path, "utf8"), "defbc");
    });

    it("a closed file throws ClosedError on every method", async () => {
      const f = await platform.open(`${dir}/c.seg`, "createExclusive");
      f.close();
      for (
        const call of [
          () => f.write(new Uint8Array(1)),
          () => f.writev([new Uint8Array(1)]),
          () => f.readAt(new Uint8Array(1), 0),
          () => f.size(),
          () => f.truncate(0),
          () => f.writeAt(new Uint8Array(1), 0),
          () => f.writevAt([new Uint8Array(1)], 0),
        ]
      ) assert.throws(call, ClosedError);
      await assert.rejects(f.datasync(), ClosedError);
      await assert.rejects(f.sync(), ClosedError);
    });

    it("close() during a pending datasync waits for it instead of reusing the descriptor", async () => {
      const f = await platform.open(`${dir}/d.seg`, "createExclusive");
      f.write(new Uint8Array(4096));
      const pending = f.datasync();
      f.close();
      await pending; // would fail with EBADF if the fd had been closed under it
      assert.throws(() => f.size(), ClosedError);
    });

    it("directory calls: mkdir, readdir, stat, rename, unlink, remove, syncDir", async () => {
      assert.equal(await platform.mkdir(`${dir}/sub`), true);
      assert.equal(await platform.mkdir(`${dir}/sub`), false, "existing directory");
      (await platform.open(`${dir}/sub/x`, "createExclusive")).close();
      await platform.rename(`${dir}/sub/x`, `${dir}/sub/y`);
      assert.deepEqual(await platform.readdir(`${dir}/sub`), ["y"]);
      const st = await platform.stat(`${dir}/sub/y`);
      assert.ok(st && Math.abs(st.mtimeMs - Date.now()) < 60_000, `mtimeMs ${st?.mtimeMs}`);
      assert.deepEqual(st, {
        size: 0,
        isFile: true,
        isDirectory: false,
        isSymlink: false,
        mtimeMs: st.mtimeMs,
      });
      assert.equal((await platform.stat(`${dir}/sub`))?.isDirectory, true);
      assert.equal(await platform.stat(`${dir}/nope`), null);
      assert.equal(await platform.stat(`${dir}/sub/y/below-a-file`), null);
      await platform.syncDir(`${dir}/sub`);
      await platform.unlink(`${dir}/sub/y`);
      assert.deepEqual(await platform.readdir(`${dir}/sub`), []);
      await platform.remove(`${dir}/sub`);
      await platform.remove(`${dir}/sub`); // missing: not an error
      assert.equal(await platform.stat(`${dir}/sub`), null);
    });

    it("lstat reports a link itself, stat follows it; both give mtimeMs", {
      skip: !posix && "symlinks need privileges on Windows",
    }, async () => {
      const target = `${dir}/lst-target`;
      writeFileSync(target, "abc");
      const hourAgo = Date.now() - 3_600_000;
      utimesSync(target, new Date(hourAgo), new Date(hourAgo));
      symlinkSync(target, `${dir}/lst-link`);
      symlinkSync(`${dir}/lst-nowhere`, `${dir}/lst-dangling`);
      const followed = await platform.stat(`${dir}/lst-link`);
      assert.equal(followed?.isFile, true);
      assert.equal(followed?.isSymlink, false);
      assert.equal(followed?.size, 3);
      assert.ok(Math.abs(followed.mtimeMs - hourAgo) < 1000, `mtimeMs ${followed.mtimeMs}`);
      const link = await platform.lstat(`${dir}/lst-link`);
      assert.equal(link?.isSymlink, true);
      assert.equal(link?.isFile, false);
      assert.equal(link?.isDirectory, false);
      const file = await platform.lstat(target);
      assert.equal(file?.isFile, true);
      assert.equal(file?.isSymlink, false);
      assert.equal(file?.mtimeMs, followed.mtimeMs);
      assert.equal((await platform.lstat(dir))?.isDirectory, true);
      assert.equal(await platform.stat(`${dir}/lst-dangling`), null);
      assert.equal((await platform.lstat(`${dir}/lst-dangling`))?.isSymlink, true);
      assert.equal(await platform.lstat(`${dir}/lst-nowhere`), null);
      assert.equal(await platform.lstat(`${target}/below-a-file`), null);
    });

    it(
      "mkdirDurable with dirModeFor(fileMode) creates every directory with exactly that mode (umask 0)",
      {
        skip: !posix && "no POSIX modes",
      },
      async () => {
        assert.equal(dirModeFor(0o644), 0o755);
        assert.equal(dirModeFor(0o600), 0o700);
        assert.equal(dirModeFor(0o640), 0o750);
        assert.equal(dirModeFor(0o000), 0o000);
        await withUmask0(() => mkdirDurable(platform, `${dir}/modes/a`, dirModeFor(0o640)));
        assert.equal(statSync(`${dir}/modes`).mode & 0o7777, 0o750);
        assert.equal(statSync(`${dir}/modes/a`).mode & 0o7777, 0o750);
      },
    );

    describe("open opens regular files only", { skip: !posix && "POSIX file types" }, () => {
      const modes = ["read", "append"] as const;

      async function refused(path: string, found: string) {
        for (const how of modes) {
          const e = await rejectsWith(platform.open(path, how), "FILE_TYPE", path);
          assert.ok(e instanceof FileTypeError);
          assert.equal(e.found, found, `${how}: ${e.message}`);
        }
      }

      it("a directory", () => refused(dir, "a directory"));

      it(
        "a device (/dev/null)",
        { skip: !isLinux && "needs /dev/null" },
        () => refused("/dev/null", "a device"),
      );

      it("a socket", async () => {
        const path = `${dir}/sock`;
        const server = createServer();
        await new Promise<void>((resolve) => server.listen(path, resolve));
        try {
          await refused(path, "a socket");
        } finally {
          await new Promise((resolve) => server.close(resolve));
        }
      });

      it("a symbolic link to a regular file, and a dangling one", async () => {
        const target = `${dir}/link-target`;
        writeFileSync(target, "keep");
        symlinkSync(target, `${dir}/link`);
        await refused(`${dir}/link`, "a symbolic link");
        symlinkSync(`${dir}/link-nowhere`, `${dir}/dangling`);
        await refused(`${dir}/dangling`, "a symbolic link");
        assert.equal(readFileSync(target, "utf8"), "keep");
      });

      it("createExclusive over any existing link is ALREADY_EXISTS and creates nothing", async () => {
        symlinkSync(`${dir}/excl-nowhere`, `${dir}/excl-dangling`);
        await rejectsWith(
          platform.open(`${dir}/excl-dangling`, "createExclusive"),
          "ALREADY_EXISTS",
          `${dir}/excl-dangling`,
        );
        assert.equal(await platform.lstat(`${dir}/excl-nowhere`), null);
      });
    });

    describe("typed errors from real OS errors", () => {
      it("NOT_FOUND: open/read, append, unlink, readdir, rename, syncDir of missing paths", async () => {
        const missing = `${dir}/missing`;
        await rejectsWith(platform.open(missing, "read"), "NOT_FOUND", missing);
        await rejectsWith(platform.open(missing, "append"), "NOT_FOUND", missing); // never creates
        await rejectsWith(platform.unlink(missing), "NOT_FOUND", missing);
        await rejectsWith(platform.readdir(missing), "NOT_FOUND", missing);
        await rejectsWith(platform.rename(missing, `${dir}/z`), "NOT_FOUND", missing);
        await rejectsWith(platform.syncDir(missing), "NOT_FOUND", missing);
        await rejectsWith(platform.mkdir(`${missing}/child`), "NOT_FOUND");
      });

      it("ALREADY_EXISTS: exclusive create of an existing file, mkdir over a file", async () => {
        const path = `${dir}/exists`;
        (await platform.open(path, "createExclusive")).close();
        await rejectsWith(platform.open(path, "createExclusive"), "ALREADY_EXISTS", path);
        await rejectsWith(platform.mkdir(path), "ALREADY_EXISTS", path);
      });

      it(
        "NO_SPACE: the runtime's real ENOSPC writing /dev/full (which open itself refuses)",
        { skip: !isLinux && "needs /dev/full" },
        async () => {
          // open opens regular files only, so the ENOSPC comes from the runtime's own write,
          // mapped the way the adapter maps the errors of its writes.
          await rejectsWith(platform.open("/dev/full", "append"), "FILE_TYPE", "/dev/full");
          const e = fromOsError(realEnospc(platform), "write", "/dev/full");
          assert.equal(e.code, "NO_SPACE", e.message);
          assert.equal(e.path, "/dev/full");
        },
      );

      it(
        "PERMISSION_DENIED: EPERM and EACCES even as root (procfs, sysfs)",
        { skip: !isLinux && "needs /proc and /sys" },
        async () => {
          // unlink in procfs is EPERM and creating in sysfs EACCES, whoever we are.
          await rejectsWith(platform.unlink("/proc/version"), "PERMISSION_DENIED", "/proc/version");
          const sys = `/sys/khipu-${process.pid}`;
          await rejectsWith(platform.open(sys, "createExclusive"), "PERMISSION_DENIED", sys);
        },
      );

      it("IO: a real EIO (/proc/self/mem at address 0), and EISDIR", async () => {
        if (isLinux) {
          const f = await platform.open("/proc/self/mem", "read");
          try {
            const e = await rejectsWith(
              () => f.readAt(new Uint8Array(8), 0),
              "IO",
              "/proc/self/mem",
            );
            assert.equal((e as IoError).osCode, "EIO");
          } finally {
            f.close();
          }
        }
        // rename(2) of a file over a directory: open now calls a directory a FILE_TYPE.
        const file = `${dir}/over-a-dir`;
        const target = `${dir}/a-dir`;
        (await platform.open(file, "createExclusive")).close();
        await platform.mkdir(target);
        const e = await rejectsWith(platform.rename(file, target), "IO", file);
        assert.equal((e as IoError).osCode, "EISDIR");
      });

      it("writing through a read-only file is an error, not a silent no-op", async () => {
        const path = `${dir}/ro`;
        (await platform.open(path, "createExclusive")).close();
        const f = await platform.open(path, "read");
        try {
          await rejectsWith(() => f.write(new Uint8Array(1)), "IO", path);
        } finally {
          f.close();
        }
      });
    });

    describe("durable helpers, observed through the recording wrapper", () => {
      it("createFileDurable: exclusive open, write, fdatasync, then fsync of the parent", async () => {
        const rec = recordingPlatform(platform);
        const path = `${dir}/dur/created.seg`;
        await mkdirDurable(rec, `${dir}/dur`);
        rec.clear();
        const f = await createFileDurable(rec, path, enc.encode("header"));
        f.close();
        assert.deepEqual(rec.ops(), [
          `open ${path}`,
          `write ${path}`,
          `datasync ${path}`,
          `syncDir ${dir}/dur`,
          `close ${path}`,
        ]);
        assert.equal(rec.calls[0].how, "createExclusive");
        assert.equal(rec.calls[1].bytes, 6);
        assert.ok(rec.calls.every((c) => c.outcome === "ok"));
      });

      it("renameDurable: fsync of the destination directory, and of the source when it differs", async () => {
        const rec = recordingPlatform(platform, { ignore: ["stat"] });
        await mkdirDurable(rec, `${dir}/ren/a`);
        await mkdirDurable(rec, `${dir}/ren/b`);
        (await createFileDurable(rec, `${dir}/ren/a/x`, new Uint8Array(1))).close();
        rec.clear();
        await renameDurable(rec, `${dir}/ren/a/x`, `${dir}/ren/a/y`);
        assert.deepEqual(rec.ops(), [
          `rename ${dir}/ren/a/x -> ${dir}/ren/a/y`,
          `syncDir ${dir}/ren/a`,
        ]);
        rec.clear();
        await renameDurable(rec, `${dir}/ren/a/y`, `${dir}/ren/b/y`);
        assert.deepEqual(rec.ops(), [
          `rename ${dir}/ren/a/y -> ${dir}/ren/b/y`,
          `syncDir ${dir}/ren/b`,
          `syncDir ${dir}/ren/a`,
        ]);
      });

      it("unlinkDurable: fsync of the parent after the unlink", async () => {
        const rec = recordingPlatform(platform);
        (await createFileDurable(rec, `${dir}/gone`, new Uint8Array(1))).close();
        rec.clear();
        await unlinkDurable(rec, `${dir}/gone`);
        assert.deepEqual(rec.ops(), [`unlink ${dir}/gone`, `syncDir ${dir}`]);
      });

      it("mkdirDurable: each created directory and each parent that gained an entry is fsynced", async () => {
        const rec = recordingPlatform(platform, { ignore: ["stat"] });
        await mkdirDurable(rec, `${dir}/m1/m2`);
        assert.deepEqual(rec.ops(), [
          `mkdir ${dir}/m1`,
          `syncDir ${dir}/m1`,
          `syncDir ${dir}`,
          `mkdir ${dir}/m1/m2`,
          `syncDir ${dir}/m1/m2`,
          `syncDir ${dir}/m1`,
        ]);
      });

      it("a failed step is recorded as an error, and beforeCall can inject it", async () => {
        const rec = recordingPlatform(platform, {
          beforeCall: (c) => {
            if (c.op === "syncDir") {
              throw new IoError({ op: "fsync directory", path: c.path, osCode: "EIO" });
            }
          },
        });
        const path = `${dir}/injected`;
        await rejectsWith(createFileDurable(rec, path, new Uint8Array(1)), "IO");
        const sync = rec.calls.find((c) => c.op === "syncDir");
        assert.equal(sync?.outcome, "error");
        assert.equal(sync?.error, "IO");
        assert.equal(await platform.stat(path), null, "the half-made file was removed");
        assert.equal(rec.count("unlink", path), 1);
      });
    });
  });
}

describe("HandleGate: closing a file while an fsync is in flight", () => {
  it("defers the real close until the last sync settles, releases once, refuses use after close", async () => {
    const released: number[] = [];
    const gate = new HandleGate("/tmp/gate", 7, (h) => released.push(h));
    let finish = () => {};
    const pending = gate.sync("fdatasync", () => new Promise<void>((r) => (finish = r)));
    gate.close();
    gate.close();
    assert.deepEqual(released, [], "closed while the sync could still land on a recycled fd");
    assert.throws(() => gate.get(), ClosedError);
    await assert.rejects(gate.sync("fsync", () => Promise.resolve()), ClosedError);
    finish();
    await pending;
    assert.deepEqual(released, [7]);
  });

  it("maps a failed sync to a typed error naming the file, and still releases after it", async () => {
    const released: number[] = [];
    const gate = new HandleGate("/tmp/gate-eio", 9, (h) => released.push(h));
    const eio = Object.assign(new Error("EIO"), { code: "EIO" });
    const failing = gate.sync("fdatasync", () => Promise.reject(eio));
    gate.close();
    await assert.rejects(
      failing,
      (e: unknown) => e instanceof IoError && e.path === "/tmp/gate-eio",
    );
    assert.deepEqual(released, [9]);
  });
});
