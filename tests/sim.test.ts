// The power-loss simulator itself: the durability model, each crash mode, determinism, the call hook,
// and the fault-injecting wrapper. The store's crash tests rest on these behaving as documented.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CRASH_MODES, type CrashMode, seededRandom, SimPlatform } from "../src/testing/sim.ts";
import { FaultyPlatform } from "../src/testing/faulty.ts";
import { createFileDurable, mkdirDurable, renameDurable } from "../src/platform/durable.ts";
import { IoError, KhipuError, LockedError, NoSpaceError } from "../src/errors.ts";
import { concat } from "./helpers.ts";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

/** A file system with durable `/d` and a durable empty file `/d/f`, open for appends. */
async function setup() {
  const sim = new SimPlatform();
  await mkdirDurable(sim, "/d");
  const f = await createFileDurable(sim, "/d/f", new Uint8Array(0));
  return { sim, f };
}

describe("SimPlatform model", () => {
  it("keeps un-synced data only in the cache", async () => {
    const { sim, f } = await setup();
    f.write(bytes(10, 1));
    assert.equal(f.size(), 10);
    assert.deepEqual(sim.fileBytes("/d/f"), bytes(10, 1));
    assert.deepEqual(sim.crash("none").fileBytes("/d/f"), new Uint8Array(0));
    assert.deepEqual(sim.crash("all").fileBytes("/d/f"), bytes(10, 1));
    await f.datasync();
    assert.equal(sim.pendingCount, 0);
    assert.deepEqual(sim.crash("none").fileBytes("/d/f"), bytes(10, 1));
  });

  it("makes names durable only through a directory sync", async () => {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/d");
    const f = await sim.open("/d/a", "createExclusive");
    f.write(bytes(3, 7));
    await f.sync(); // fsync of the file does not persist its name
    assert.equal(await sim.crash("none").stat("/d/a"), null);
    await sim.syncDir("/d");
    assert.deepEqual(sim.crash("none").fileBytes("/d/a"), bytes(3, 7));
  });

  it("loses a directory whose own creation was not synced, with everything in it", async () => {
    const sim = new SimPlatform();
    await sim.mkdir("/d");
    const f = await sim.open("/d/a", "createExclusive");
    await f.datasync();
    await sim.syncDir("/d"); // /d's entries are durable, but "/" never learnt about /d
    assert.equal(await sim.crash("none").stat("/d"), null);
    await sim.syncDir("/");
    assert.ok((await sim.crash("none").stat("/d/a"))?.isFile);
  });

  it("truncate and zero-extension are cache-only until datasync", async () => {
    const { sim, f } = await setup();
    f.write(bytes(8, 9));
    await f.datasync();
    f.truncate(3);
    assert.equal(f.size(), 3);
    assert.equal(sim.crash("none").fileBytes("/d/f")!.length, 8);
    f.truncate(6); // zero-extends: no stale bytes come back
    assert.deepEqual(sim.fileBytes("/d/f"), new Uint8Array([9, 9, 9, 0, 0, 0]));
    await f.datasync();
    assert.deepEqual(sim.crash("none").fileBytes("/d/f"), new Uint8Array([9, 9, 9, 0, 0, 0]));
  });

  it("reads, stat, readdir and errors behave like a file system", async () => {
    const { sim, f } = await setup();
    f.write(new Uint8Array([1, 2, 3, 4]));
    const buf = new Uint8Array(10);
    assert.equal(f.readAt(buf, 1), 3);
    assert.deepEqual(buf.subarray(0, 3), new Uint8Array([2, 3, 4]));
    assert.equal(f.readAt(buf, 4), 0);
    const shape = async (p: string) => {
      const st = await sim.stat(p);
      assert.ok(st && Number.isFinite(st.mtimeMs), `${p}: mtimeMs ${st?.mtimeMs}`);
      assert.deepEqual(await sim.lstat(p), st, "lstat = stat: the simulator models no links");
      const { mtimeMs: _, ...rest } = st;
      return rest;
    };
    assert.deepEqual(await shape("/d/f"), {
      size: 4,
      isFile: true,
      isDirectory: false,
      isSymlink: false,
    });
    assert.deepEqual(await shape("/d"), {
      size: 0,
      isFile: false,
      isDirectory: true,
      isSymlink: false,
    });
    assert.deepEqual(await sim.readdir("/d"), ["f"]);
    await assert.rejects(sim.open("/d/f", "createExclusive"), { code: "ALREADY_EXISTS" });
    await assert.rejects(sim.open("/d/nope", "read"), { code: "NOT_FOUND" });
    await assert.rejects(sim.open("/x/y", "createExclusive"), { code: "NOT_FOUND" });
    await assert.rejects(sim.unlink("/d/nope"), { code: "NOT_FOUND" });
    assert.equal(await sim.mkdir("/d"), false);
    const r = await sim.open("/d/f", "read");
    assert.throws(() => r.write(bytes(1, 1)), (e) => e instanceof KhipuError && e.code === "IO");
    r.close();
    assert.throws(() => r.size(), { code: "CLOSED" });
    f.close();
    f.close(); // idempotent
    assert.equal(sim.openFileCount, 0);
    await sim.remove("/d");
    assert.equal(await sim.stat("/d"), null);
    await sim.remove("/d"); // a missing path is not an error
  });

  it("an unlinked file stays readable through an open handle", async () => {
    const { sim, f } = await setup();
    f.write(bytes(5, 5));
    await sim.unlink("/d/f");
    assert.equal(await sim.stat("/d/f"), null);
    const buf = new Uint8Array(5);
    assert.equal(f.readAt(buf, 0), 5);
  });

  it("lock() is exclusive per simulator and gone after a crash", async () => {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/s");
    const l = await sim.lock("/s/LOCK");
    await assert.rejects(sim.lock("/s/LOCK"), (e) => e instanceof LockedError);
    const after = sim.crash("all");
    const l2 = await after.lock("/s/LOCK"); // the dead process held it; the new one takes over
    await l2.release();
    await l.release();
    await l.release(); // idempotent
    await (await sim.lock("/s/LOCK")).release();
  });

  it("counts calls and reports each to onCall after it took effect", async () => {
    const sim = new SimPlatform();
    const seen: string[] = [];
    sim.onCall = (c) => {
      seen.push(`${c.n}:${c.op}:${c.mutates ? "m" : "-"}`);
      if (c.op === "datasync") assert.equal(sim.pendingCount, 1); // only the link remains
    };
    const f = await sim.open("/a", "createExclusive");
    f.write(bytes(2, 1));
    f.size();
    await f.datasync();
    assert.deepEqual(seen, ["1:open:m", "2:write:m", "3:size:-", "4:datasync:m"]);
    assert.equal(sim.calls, 4);
  });

  it("a throwing hook stops the call's caller", async () => {
    const sim = new SimPlatform();
    sim.onCall = (c) => {
      if (c.n === 2) throw new Error("halt");
    };
    const f = await sim.open("/a", "createExclusive");
    assert.throws(() => f.write(bytes(1, 1)), /halt/);
  });

  it("freeze() is unaffected by later operations", async () => {
    const { sim, f } = await setup();
    f.write(bytes(4, 1));
    await f.datasync();
    const snap = sim.freeze();
    f.write(bytes(4, 2));
    await f.datasync();
    f.truncate(0);
    await f.datasync();
    assert.deepEqual(snap.crash("none").fileBytes("/d/f"), bytes(4, 1));
    assert.deepEqual(sim.crash("none").fileBytes("/d/f"), new Uint8Array(0));
  });
});

describe("crash modes", () => {
  /** Four un-synced 1000-byte appends to a durable file: fills 1, 2, 3, 4. */
  async function fourWrites() {
    const { sim, f } = await setup();
    for (let i = 1; i <= 4; i++) f.write(bytes(1000, i));
    return { sim, f, all: concat(...[1, 2, 3, 4].map((i) => bytes(1000, i))) };
  }

  it("every mode is deterministic from its seed", async () => {
    const { sim } = await fourWrites();
    await sim.rename("/d/f", "/d/g");
    for (const mode of CRASH_MODES) {
      for (let seed = 0; seed < 20; seed++) {
        const a = sim.crash(mode, seed);
        const b = sim.crash(mode, seed);
        assert.deepEqual(a.lastCrash, b.lastCrash);
        assert.deepEqual(a.listFiles(), b.listFiles());
        for (const p of a.listFiles()) assert.deepEqual(a.fileBytes(p), b.fileBytes(p));
      }
    }
  });

  it("no mode ever changes durable data", async () => {
    const { sim, f } = await setup();
    f.write(bytes(3000, 0xaa));
    await f.datasync();
    f.write(bytes(3000, 0xbb));
    f.truncate(4500);
    f.write(bytes(100, 0xcc));
    for (const mode of CRASH_MODES) {
      for (let seed = 0; seed < 50; seed++) {
        const got = sim.crash(mode, seed).fileBytes("/d/f");
        assert.ok(got, `${mode}/${seed}: file lost`);
        assert.ok(got.length >= 3000 || mode === "subset" || mode === "prefix", `${mode}/${seed}`);
        const durablePart = got.subarray(0, Math.min(3000, got.length));
        assert.ok(durablePart.every((b) => b === 0xaa), `${mode}/${seed}: durable bytes changed`);
      }
    }
  });

  it("none: nothing un-synced survives; all: everything does", async () => {
    const { sim, all } = await fourWrites();
    assert.equal(sim.crash("none", 5).fileBytes("/d/f")!.length, 0);
    assert.deepEqual(sim.crash("all", 5).fileBytes("/d/f"), all);
  });

  it("prefix: some prefix survives, in order, and every prefix length is reached", async () => {
    const { sim, all } = await fourWrites();
    const lengths = new Set<number>();
    for (let seed = 0; seed < 200; seed++) {
      const got = sim.crash("prefix", seed).fileBytes("/d/f")!;
      assert.equal(got.length % 1000, 0);
      assert.deepEqual(got, all.subarray(0, got.length));
      lengths.add(got.length);
    }
    assert.deepEqual([...lengths].sort((a, b) => a - b), [0, 1000, 2000, 3000, 4000]);
    assert.equal(sim.crash("prefix", 0, { keep: 2 }).fileBytes("/d/f")!.length, 2000);
  });

  it("subset: reorders page write-back, so later pages can survive behind a zero hole", async () => {
    const { sim, f } = await setup();
    for (let i = 1; i <= 4; i++) f.write(bytes(3000, i)); // 12000 bytes over three 4 KiB pages
    const all = sim.fileBytes("/d/f")!;
    let sawHole = false;
    for (let seed = 0; seed < 300; seed++) {
      const got = sim.crash("subset", seed).fileBytes("/d/f")!;
      for (let i = 0; i < got.length; i++) {
        // each byte is either what was written or a zero of a page that did not reach the disk
        if (got[i] !== all[i]) {
          assert.equal(got[i], 0, `seed ${seed} byte ${i}`);
          sawHole = true;
        }
      }
      // a page is written back as it was at some moment: its bytes are a prefix of its writes
      for (let page = 0; page * 4096 < got.length; page++) {
        const p = got.subarray(page * 4096, (page + 1) * 4096);
        const firstZero = p.indexOf(0);
        if (firstZero >= 0) assert.ok(p.subarray(firstZero).every((b) => b === 0), `seed ${seed}`);
      }
    }
    assert.ok(sawHole, "no seed produced a hole");
  });

  it("subset: directory operations are kept or dropped independently", async () => {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/d");
    for (const n of ["a", "b", "c"]) (await sim.open(`/d/${n}`, "createExclusive")).close();
    const outcomes = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      outcomes.add(sim.crash("subset", seed).listFiles().join(","));
    }
    assert.ok(outcomes.has("/d/b"), [...outcomes].join(" | ")); // b without a: reordered
    assert.equal(outcomes.size, 8);
  });

  it("torn: the last write tears at a sector boundary; the rest is cut, zeros or garbage", async () => {
    const { sim, f } = await setup();
    f.write(bytes(100, 1));
    await f.datasync();
    f.write(bytes(9000, 2)); // bytes [100, 9100): 512-byte boundaries at 512, 1024, ... 8704
    const tails = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const fs = sim.crash("torn", seed);
      const got = fs.fileBytes("/d/f")!;
      const m = /sector=(\d+) at=(\d+) tail=(\w+)/.exec(fs.lastCrash!.detail)!;
      const [sector, at, tail] = [Number(m[1]), Number(m[2]), m[3]];
      tails.add(tail);
      assert.ok(at === 100 || at % sector === 0, fs.lastCrash!.detail);
      assert.ok(got.subarray(0, 100).every((b) => b === 1));
      assert.ok(got.subarray(100, at).every((b) => b === 2));
      if (tail === "cut") assert.equal(got.length, at);
      else assert.equal(got.length, 9100);
      if (tail === "zeros") assert.ok(got.subarray(at).every((b) => b === 0));
    }
    assert.deepEqual([...tails].sort(), ["cut", "garbage", "zeros"]);
    const fixed = sim.crash("torn", 1, { sector: 4096, tail: "cut" });
    assert.equal(
      fixed.fileBytes("/d/f")!.length % 4096 === 0 || fixed.fileBytes("/d/f")!.length === 100,
      true,
    );
  });

  it("zeros: the size grows as written but the bytes from some write on are 0x00", async () => {
    const { sim } = await fourWrites();
    const starts = new Set<number>();
    for (let seed = 0; seed < 100; seed++) {
      const got = sim.crash("zeros", seed).fileBytes("/d/f")!;
      assert.equal(got.length, 4000);
      const z = got.indexOf(0);
      assert.ok(z >= 0 && z % 1000 === 0);
      assert.ok(got.subarray(z).every((b) => b === 0));
      for (let i = 0; i < z; i++) assert.equal(got[i], Math.floor(i / 1000) + 1);
      starts.add(z);
    }
    assert.deepEqual([...starts].sort((a, b) => a - b), [0, 1000, 2000, 3000]);
  });

  it("emptyCreate: a file created since the last sync exists with zero length", async () => {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/d");
    const f = await sim.open("/d/new", "createExclusive");
    f.write(bytes(50, 3));
    await sim.syncDir("/d"); // the name is durable, the data is not
    const old = await createFileDurable(sim, "/d/old", bytes(10, 1));
    old.write(bytes(10, 2));
    const fs = sim.crash("emptyCreate", 1);
    assert.deepEqual(fs.fileBytes("/d/new"), new Uint8Array(0));
    assert.equal(fs.fileBytes("/d/old")!.length, 20);
    // and without the directory sync, the "all" mode still shows the data
    assert.equal(sim.crash("all").fileBytes("/d/new")!.length, 50);
  });

  it("undoDirOps: an un-synced rename or unlink is undone; synced ones are not", async () => {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/d");
    (await createFileDurable(sim, "/d/a", bytes(4, 1))).close();
    (await createFileDurable(sim, "/d/b", bytes(4, 2))).close();
    (await createFileDurable(sim, "/d/c", bytes(4, 3))).close();
    await renameDurable(sim, "/d/c", "/d/c2"); // durable
    await sim.rename("/d/a", "/d/a2");
    await sim.unlink("/d/b");
    const fs = sim.crash("undoDirOps", 1);
    assert.deepEqual(fs.listFiles(), ["/d/a", "/d/b", "/d/c2"]);
    assert.deepEqual(sim.crash("all").listFiles(), ["/d/a2", "/d/c2"]);
  });

  it("a rename over an existing file is atomic in every mode", async () => {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/d");
    (await createFileDurable(sim, "/d/cur", bytes(4, 1))).close();
    (await createFileDurable(sim, "/d/tmp", bytes(4, 2))).close();
    await sim.rename("/d/tmp", "/d/cur");
    for (const mode of CRASH_MODES) {
      for (let seed = 0; seed < 30; seed++) {
        const fs = sim.crash(mode, seed);
        const cur = fs.fileBytes("/d/cur");
        assert.ok(cur, `${mode}/${seed}: /d/cur vanished`);
        assert.ok(cur.every((b) => b === cur[0]) && cur.length === 4);
      }
    }
  });

  it("a crashed file system can be used and crashed again", async () => {
    const { sim, f } = await setup();
    f.write(bytes(10, 1));
    const fs1 = sim.crash("all");
    const g = await fs1.open("/d/f", "append");
    g.write(bytes(10, 2));
    await g.datasync();
    g.write(bytes(10, 3));
    const fs2 = fs1.crash("none");
    assert.deepEqual(fs2.fileBytes("/d/f"), concat(...[bytes(10, 1), bytes(10, 2)]));
  });

  it("random workloads: every mode yields a state between durable and cache", async () => {
    // A property check over random operation sequences: after any crash, each file is either
    // absent or present, and its bytes agree with the cache wherever both are non-zero...
    const modes: CrashMode[] = [...CRASH_MODES];
    for (let w = 0; w < 30; w++) {
      const rnd = seededRandom(w);
      const sim = new SimPlatform();
      await mkdirDurable(sim, "/d");
      const files = [];
      for (let i = 0; i < 3; i++) files.push(await createFileDurable(sim, `/d/${i}`, bytes(1, i)));
      for (let step = 0; step < 30; step++) {
        const f = files[Math.floor(rnd() * files.length)];
        const r = rnd();
        if (r < 0.6) f.write(bytes(1 + Math.floor(rnd() * 5000), 1 + Math.floor(rnd() * 255)));
        else if (r < 0.8) await f.datasync();
        else if (r < 0.9) f.truncate(Math.floor(f.size() / 2));
        else await sim.syncDir("/d");
      }
      const snap = sim.freeze();
      for (const mode of modes) {
        const fs = snap.crash(mode, w);
        for (let i = 0; i < 3; i++) {
          const got = fs.fileBytes(`/d/${i}`);
          assert.ok(got, `${mode} w=${w}: durable file lost`);
          const cache = sim.fileBytes(`/d/${i}`)!;
          if (mode === "all") assert.deepEqual(got, cache);
        }
      }
    }
  });
});

describe("positional writes (writeAt, writevAt) and crashes over old bytes", () => {
  const OLD = 0xaa;

  /** A durable `/d/f` of `length` bytes of 0xaa (a preallocated segment), open read-write. */
  async function preallocated(length: number) {
    const sim = new SimPlatform();
    await mkdirDurable(sim, "/d");
    const f = await createFileDurable(sim, "/d/f", bytes(length, OLD));
    return { sim, f };
  }

  /** The bytes after applying `writes` in order to `base` (a gap past the end reads as zeros). */
  function applied(base: Uint8Array, writes: ReadonlyArray<{ off: number; data: Uint8Array }>) {
    let out = base.slice();
    for (const w of writes) {
      const end = w.off + w.data.length;
      if (end > out.length) {
        const grown = new Uint8Array(end);
        grown.set(out);
        out = grown;
      }
      out.set(w.data, w.off);
    }
    return out;
  }

  it("writeAt overwrites in place, extends past the end with a zero gap; write() appends at the end", async () => {
    const { sim, f } = await setup();
    f.write(new Uint8Array([1, 2, 3, 4]));
    f.writeAt(new Uint8Array([9]), 1);
    assert.equal(f.size(), 4);
    f.writeAt(new Uint8Array([7]), 6);
    assert.equal(f.size(), 7);
    f.write(new Uint8Array([8]));
    f.writevAt([new Uint8Array([5]), new Uint8Array(0), new Uint8Array([6])], 2);
    f.writev([new Uint8Array([10]), new Uint8Array([11])]);
    assert.deepEqual(sim.fileBytes("/d/f"), new Uint8Array([1, 9, 5, 6, 0, 0, 7, 8, 10, 11]));
    f.truncate(3);
    f.write(new Uint8Array([12])); // the end is the truncated length
    assert.deepEqual(sim.fileBytes("/d/f"), new Uint8Array([1, 9, 5, 12]));
    await f.datasync();
    assert.deepEqual(sim.crash("none").fileBytes("/d/f"), new Uint8Array([1, 9, 5, 12]));
  });

  it("one writevAt is one write operation; empty writes record nothing", async () => {
    const seen: string[] = [];
    const { sim, f } = await setup();
    sim.onCall = (c) => seen.push(`${c.op} ${c.mutates}`);
    const before = sim.pendingCount;
    f.writevAt([bytes(3, 1), bytes(3, 2)], 0);
    assert.equal(sim.pendingCount, before + 1);
    f.writeAt(new Uint8Array(0), 100); // a 0-byte pwrite neither writes nor extends
    f.writevAt([], 50);
    assert.equal(sim.pendingCount, before + 1);
    assert.deepEqual(seen, ["writevAt true", "writeAt false", "writevAt false"]);
    assert.equal(f.size(), 6);
  });

  it("refuses a read-only file (EBADF), a bad position (EINVAL) and a closed file", async () => {
    const { sim, f } = await setup();
    f.write(bytes(4, 1));
    const r = await sim.open("/d/f", "read");
    const isIo = (code: string) => (e: unknown) => e instanceof IoError && e.osCode === code;
    assert.throws(() => r.writeAt(bytes(1, 2), 0), isIo("EBADF"));
    assert.throws(() => r.writevAt([bytes(1, 2)], 0), isIo("EBADF"));
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      assert.throws(() => f.writeAt(bytes(1, 2), bad), isIo("EINVAL"), String(bad));
      assert.throws(() => f.writevAt([bytes(1, 2)], bad), isIo("EINVAL"), String(bad));
    }
    assert.deepEqual(sim.fileBytes("/d/f"), bytes(4, 1));
    r.close();
    assert.throws(() => r.writeAt(bytes(1, 2), 0), { code: "CLOSED" });
    assert.throws(() => r.writevAt([bytes(1, 2)], -1), { code: "CLOSED" });
  });

  it("every mode keeps the durable bytes, and never zeroes (or garbles) old data", async () => {
    const LEN = 3 * 4096;
    const { sim, f } = await preallocated(LEN);
    const writes = [
      { off: 1000, data: bytes(5000, 0xbb) }, // across the page boundary at 4096
      { off: 8000, data: concat(bytes(500, 0xcc), bytes(500, 0xcd)) }, // one writevAt
      { off: 12000, data: bytes(1000, 0xdd) }, // straddles the old end, 12288
      { off: 13000, data: bytes(200, 0xee) }, // write(): at the end
      { off: 2000, data: bytes(100, 0xbf) }, // overwrites the first write's bytes
    ];
    f.writeAt(writes[0].data, writes[0].off);
    f.writevAt([bytes(500, 0xcc), bytes(500, 0xcd)], 8000);
    f.writeAt(writes[2].data, writes[2].off);
    f.write(writes[3].data);
    f.writeAt(writes[4].data, writes[4].off);
    const durable = bytes(LEN, OLD);
    const cache = sim.fileBytes("/d/f")!;
    assert.deepEqual(cache, applied(durable, writes));
    const prefixes = writes.map((_, k) => applied(durable, writes.slice(0, k))).concat([cache]);
    /** Every value byte `i` held: the old one (or a zero past the old end), then each write's. */
    const held = (i: number) => prefixes.map((p) => p[i] ?? 0);
    for (const mode of CRASH_MODES) {
      for (let seed = 0; seed < 60; seed++) {
        const fs = sim.crash(mode, seed);
        const got = fs.fileBytes("/d/f")!;
        const at = `${mode}/${seed} ${fs.lastCrash!.detail}`;
        assert.ok(got.length >= LEN, `${at}: shorter than its durable length (${got.length})`);
        for (let i = 0; i < LEN; i++) {
          if (!held(i).includes(got[i])) {
            assert.fail(`${at}: byte ${i} is ${got[i]}, neither old nor ever written there`);
          }
        }
        // Past the old end: what was written, or zeros (a torn garbage tail may be anything).
        const garbage = mode === "torn" && fs.lastCrash!.detail.includes("tail=garbage");
        for (let i = LEN; i < got.length && !garbage; i++) {
          if (!held(i).includes(got[i])) assert.fail(`${at}: byte ${i} is ${got[i]}`);
        }
        if (mode === "none") assert.deepEqual(got, durable, at);
        if (mode === "all" || mode === "emptyCreate" || mode === "undoDirOps") {
          assert.deepEqual(got, cache, at);
        }
        if (mode === "prefix") assert.ok(prefixes.some((p) => equal(p, got)), at);
      }
    }
  });

  it("subset: each page is its old bytes plus some prefix of its own writes", async () => {
    const LEN = 3 * 4096;
    const { sim, f } = await preallocated(LEN);
    const writes = [
      { off: 3000, data: bytes(2000, 1) }, // pages 0 and 1
      { off: 4500, data: bytes(4000, 2) }, // pages 1 and 2
      { off: 3500, data: bytes(100, 3) }, // page 0 again
      { off: 12000, data: bytes(500, 4) }, // page 2, and page 3 past the old end
    ];
    for (const w of writes) f.writeAt(w.data, w.off);
    const durable = bytes(LEN, OLD);
    let reordered = false;
    for (let seed = 0; seed < 300; seed++) {
      const got = sim.crash("subset", seed).fileBytes("/d/f")!;
      for (let page = 0; page * 4096 < got.length; page++) {
        const [from, to] = [page * 4096, Math.min(got.length, (page + 1) * 4096)];
        const mine = writes.filter((w) =>
          w.off < (page + 1) * 4096 && w.off + w.data.length > from
        );
        const states = mine.map((_, k) => applied(durable, mine.slice(0, k)))
          .concat([applied(durable, mine)])
          .map((s) => {
            const page = new Uint8Array(to - from); // zeros past the end of the state
            page.set(s.subarray(from, Math.min(to, s.length)));
            return page;
          });
        const seen = got.subarray(from, to);
        assert.ok(states.some((s) => equal(s, seen)), `seed ${seed} page ${page}`);
      }
      // write 2 reached page 2 while write 1 (before it) did not reach page 0
      if (got[4000] === OLD && got[8300] === 2) reordered = true;
    }
    assert.ok(reordered, "no seed wrote a later page back before an earlier one");
  });

  it("torn: a torn overwrite keeps the old bytes past the tear, whatever the tail", async () => {
    const { sim, f } = await preallocated(8192);
    f.writeAt(bytes(4900, 0xbb), 100); // [100, 5000), inside the file
    const tails = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const fs = sim.crash("torn", seed);
      const got = fs.fileBytes("/d/f")!;
      const m = /sector=(\d+) at=(\d+) tail=(\w+)/.exec(fs.lastCrash!.detail)!;
      const [sector, at, tail] = [Number(m[1]), Number(m[2]), m[3]];
      tails.add(tail);
      assert.ok(at === 100 || at % sector === 0, fs.lastCrash!.detail);
      assert.equal(got.length, 8192, fs.lastCrash!.detail);
      assert.ok(got.subarray(0, 100).every((b) => b === OLD));
      assert.ok(got.subarray(100, at).every((b) => b === 0xbb));
      assert.ok(got.subarray(at).every((b) => b === OLD), `seed ${seed}: ${fs.lastCrash!.detail}`);
    }
    assert.deepEqual([...tails].sort(), ["cut", "garbage", "zeros"]);
  });

  it("torn: an overwrite that extends the file tears old bytes inside, the tail only past the end", async () => {
    const { sim, f } = await preallocated(8192);
    f.writeAt(bytes(2000, 0xcc), 7000); // [7000, 9000): 1192 old bytes, 808 new
    for (let seed = 0; seed < 200; seed++) {
      const fs = sim.crash("torn", seed);
      const got = fs.fileBytes("/d/f")!;
      const [, at, tail] = /at=(\d+) tail=(\w+)/.exec(fs.lastCrash!.detail)!;
      const cut = Number(at);
      const why = `seed ${seed}: ${fs.lastCrash!.detail}`;
      assert.ok(got.subarray(0, 7000).every((b) => b === OLD), why);
      assert.ok(got.subarray(7000, cut).every((b) => b === 0xcc), why);
      assert.ok(got.subarray(cut, 8192).every((b) => b === OLD), why);
      assert.equal(got.length, tail === "cut" ? Math.max(8192, cut) : 9000, why);
      if (tail === "zeros") assert.ok(got.subarray(Math.max(8192, cut)).every((b) => b === 0), why);
    }
  });

  it("zeros: a lost overwrite keeps the old bytes; only bytes past the old end become 0x00", async () => {
    const { sim, f } = await preallocated(4000);
    f.writeAt(bytes(1000, 0xbb), 1000); // write 0: inside
    f.write(bytes(1000, 0xcc)); // write 1: [4000, 5000), extends
    f.writeAt(bytes(1000, 0xdd), 3500); // write 2: [3500, 4500), over old bytes and write 1's
    const expected = [
      // from write 0 on, every write is lost: the extension reads as zeros, the old bytes stay
      concat(bytes(4000, OLD), bytes(1000, 0)),
      concat(bytes(1000, OLD), bytes(1000, 0xbb), bytes(2000, OLD), bytes(1000, 0)),
      concat(bytes(1000, OLD), bytes(1000, 0xbb), bytes(2000, OLD), bytes(1000, 0xcc)),
    ];
    const froms = new Set<number>();
    for (let seed = 0; seed < 100; seed++) {
      const fs = sim.crash("zeros", seed);
      const from = Number(/zerosFromWrite=(\d+)/.exec(fs.lastCrash!.detail)![1]);
      froms.add(from);
      assert.deepEqual(fs.fileBytes("/d/f"), expected[from], fs.lastCrash!.detail);
    }
    assert.deepEqual([...froms].sort(), [0, 1, 2]);
  });
});

/** Byte-wise equality (assert.deepEqual without throwing). */
function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

describe("FaultyPlatform", () => {
  it("raises typed errors: EIO and ENOSPC on write, with partial bytes written", async () => {
    const sim = new SimPlatform();
    const p = new FaultyPlatform(sim, [{ op: "write", code: "ENOSPC", partial: 3, after: 1 }]);
    await mkdirDurable(p, "/d");
    const f = await p.open("/d/f", "createExclusive");
    f.write(bytes(5, 1));
    assert.throws(
      () => f.write(bytes(5, 2)),
      (e) => e instanceof NoSpaceError && e.path === "/d/f",
    );
    assert.deepEqual(sim.fileBytes("/d/f"), new Uint8Array([1, 1, 1, 1, 1, 2, 2, 2]));
    f.write(bytes(1, 3)); // times defaults to 1
    p.inject({ op: ["write", "writev"], times: Infinity });
    assert.throws(() => f.writev([bytes(2, 4)]), (e) => e instanceof IoError && e.osCode === "EIO");
    assert.throws(() => f.write(bytes(2, 4)), IoError);
    assert.equal(p.injected.length, 3);
    assert.deepEqual(p.injected.map((i) => i.code), ["ENOSPC", "EIO", "EIO"]);
  });

  it("fails datasync, syncDir, rename and unlink without performing them", async () => {
    const sim = new SimPlatform();
    const p = new FaultyPlatform(sim);
    await mkdirDurable(p, "/d");
    const f = await createFileDurable(p, "/d/f", bytes(1, 1));
    f.write(bytes(1, 2));
    p.inject({ op: "datasync", path: "/d/f" });
    await assert.rejects(f.datasync(), { code: "IO" });
    assert.equal(sim.crash("none").fileBytes("/d/f")!.length, 1); // not synced
    p.inject({ op: "rename", path: /g$/ }).inject({ op: "unlink" }).inject({ op: "syncDir" });
    await assert.rejects(p.rename("/d/f", "/d/g"), { code: "IO", path: "/d/g" });
    assert.ok(await p.stat("/d/f"));
    await assert.rejects(p.unlink("/d/f"), { code: "IO" });
    assert.ok(await p.stat("/d/f"));
    await assert.rejects(p.syncDir("/d"), { code: "IO" });
    await p.rename("/d/f", "/d/g"); // rules are spent
    assert.ok(await p.stat("/d/g"));
  });

  it("writeAt and writevAt fail by their own names, with partial bytes at the position", async () => {
    const sim = new SimPlatform();
    sim.setFileBytes("/f", bytes(10, 1));
    const p = new FaultyPlatform(sim, [{ op: ["write", "writev"], times: Infinity }]);
    const f = await p.open("/f", "append");
    f.writeAt(bytes(2, 2), 0); // a rule for the appends does not fire on positional writes
    f.writevAt([bytes(1, 3)], 9);
    p.clear();
    p.inject({ op: "writeAt", code: "ENOSPC", partial: 3 });
    p.inject({ op: "writevAt", partial: 4 });
    assert.throws(() => f.writeAt(bytes(5, 4), 4), NoSpaceError);
    assert.throws(() => f.writevAt([bytes(2, 5), bytes(4, 6)], 8), (e) => e instanceof IoError);
    assert.deepEqual(sim.fileBytes("/f"), new Uint8Array([2, 2, 1, 1, 4, 4, 4, 1, 5, 5, 6, 6]));
    assert.deepEqual(p.injected.map((i) => `${i.op} ${i.code}`), [
      "writeAt ENOSPC",
      "writevAt EIO",
    ]);
    p.inject({ op: "writeAt", performed: true });
    assert.throws(() => f.writeAt(bytes(2, 7), 0), IoError);
    assert.deepEqual(sim.fileBytes("/f")!.subarray(0, 3), new Uint8Array([7, 7, 1]));
  });

  it("performed: the call happens, then the error is reported", async () => {
    const sim = new SimPlatform();
    const p = new FaultyPlatform(sim, [{ op: "rename", performed: true }]);
    (await p.open("/a", "createExclusive")).close();
    await assert.rejects(p.rename("/a", "/b"));
    assert.ok(await sim.stat("/b"));
  });
});
