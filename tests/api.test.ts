// The public API v1: what each entry point exports (and that nothing opens a log without the
// store lock), strict inputs with typed errors that show the bad value, store housekeeping
// (logs, deleteLog, case-insensitive names against the disk), byteSize equal to the bytes on
// disk, async disposal, and a waiting follower keeping the process alive.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as mod from "../mod.ts";
import * as testing from "../testing.ts";
import * as platformEntry from "../platform.ts";
import {
  FileTypeError,
  InvalidArgumentError,
  IoError,
  KhipuError,
  NotFoundError,
  Store,
  type StoreOptions,
  SyncPolicy,
} from "../mod.ts";
import { CRASH_MODES, FaultyPlatform, SimPlatform } from "../testing.ts";
import { fromOsError } from "../src/errors.ts";
import { realDisk } from "./helpers.ts";
import { ROOT, runScript } from "./fixtures/runtimes.ts";

const disk = realDisk("api");

/** Rejects (or throws) an InvalidArgumentError whose message matches `message`. */
async function invalid(call: () => unknown, message: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await call();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidArgumentError, `expected InvalidArgumentError: ${caught}`);
  assert.match((caught as Error).message, message);
}

describe("entry points", () => {
  it("'.' is the library: Store, SyncPolicy and the error classes, nothing else at run time", () => {
    assert.deepEqual(Object.keys(mod).sort(), [
      "AlreadyExistsError",
      "ClosedError",
      "CorruptionError",
      "FileTypeError",
      "InvalidArgumentError",
      "IoError",
      "KhipuError",
      "LockedError",
      "LogFullError",
      "NoSpaceError",
      "NotFoundError",
      "PermissionDeniedError",
      "PoisonedError",
      "ReadOnlyError",
      "RecordTooLargeError",
      "RecordsRemovedError",
      "Store",
      "SyncPolicy",
    ]);
  });

  it("'./testing' is the crash-testing kit, './platform' the file-system contract's adapters", () => {
    assert.deepEqual(Object.keys(testing).sort(), [
      "CRASH_MODES",
      "FaultyPlatform",
      "SimPlatform",
      "SimSnapshot",
      "recordingPlatform",
      "seededRandom",
    ]);
    assert.deepEqual(Object.keys(platformEntry).sort(), [
      "createFileDurable",
      "createNodePlatform",
      "defaultPlatform",
      "dirModeFor",
      "mkdirDurable",
      "nodePlatform",
      "renameDurable",
      "unlinkDurable",
    ]);
  });

  it("no export opens a log without the store lock: Log has no open and no usable constructor", async () => {
    const store = await Store.open("/s", { platform: new SimPlatform() });
    const log = await store.log("events");
    const LogClass = log.constructor as unknown as Record<string, unknown> & (new () => unknown);
    assert.equal(LogClass.open, undefined, "Log.open must not exist");
    assert.deepEqual(
      Object.getOwnPropertyNames(LogClass).filter((n) => typeof LogClass[n] === "function"),
      [],
      "no static method at all",
    );
    assert.throws(() => new LogClass(), InvalidArgumentError);
    for (const value of [...Object.values(mod), ...Object.values(platformEntry)]) {
      assert.notEqual(value, LogClass, "the Log class is not exported");
    }
    await store.close();
  });
});

describe("inputs are checked, errors are all typed", () => {
  const sim = () => new SimPlatform();

  it("appendBatch of a non-array, and records that are not bytes or strings", async () => {
    const store = await Store.open("/s", { platform: sim() });
    const log = await store.log("l");
    await invalid(
      () => log.appendBatch("xyz" as never),
      /appendBatch takes an array.*"xyz" \(a string\)/,
    );
    await invalid(() => log.appendBatch(null as never), /appendBatch takes an array.*got null/);
    await invalid(() => log.append(42 as never), /got 42/);
    await invalid(() => log.appendBatch(["ok", {} as never]), /got an object/);
    assert.equal(log.nextSeq, 0, "nothing of a refused batch is written");
    await store.close();
  });

  it("Store.open options: not an object, unknown keys, wrong types and ranges", async () => {
    const cases: [unknown, RegExp][] = [
      [null, /options must be an object, got null/],
      ["fast", /options must be an object, got "fast" \(a string\)/],
      [
        { syncpolicy: SyncPolicy.always() },
        /unknown option "syncpolicy" \(did you mean "syncPolicy"\?\)/,
      ],
      [{ fsync: true }, /unknown option "fsync" \(known: syncPolicy/],
      [{ repair: "yes" }, /repair must be true or false, got "yes" \(a string\)/],
      [{ syncPolicy: null }, /syncPolicy must come from SyncPolicy.*got null/],
      [{ syncPolicy: { kind: "always" } }, /syncPolicy must come from SyncPolicy/],
      [{ maxRecordBytes: 0 }, /maxRecordBytes must be a whole number in \[1, 268435456\], got 0/],
      [{ segmentBytes: "1048576" }, /segmentBytes .* got "1048576" \(a string\)/],
      [{ fileMode: 0o7777 }, /fileMode must be a whole number in \[0, 511\], got 4095/],
      [{ bufferBytes: 1.5 }, /bufferBytes .* got 1.5/],
      [{ platform: {} }, /platform must be a Platform/],
    ];
    for (const [options, message] of cases) {
      await invalid(() => Store.open("/s", options as StoreOptions), message);
    }
    await invalid(() => Store.open(42 as never), /needs a directory path, got 42/);
  });

  it("SyncPolicy factories: whole numbers, and interval within what a timer holds", () => {
    assert.throws(
      () => SyncPolicy.interval(3e9),
      /interval\(ms\) must be a whole number in \[1, 2147483647\], got 3000000000/,
    );
    assert.throws(() => SyncPolicy.interval(0), InvalidArgumentError);
    assert.throws(() => SyncPolicy.everyN("8" as never), /got "8" \(a string\)/);
    assert.equal(SyncPolicy.interval(2 ** 31 - 1).ms, 2 ** 31 - 1);
  });

  it("read, follow and truncateBefore options", async () => {
    const store = await Store.open("/s", { platform: sim() });
    const log = await store.log("l");
    await invalid(
      () => log.read({ form: 3 } as never).next(),
      /unknown option "form" \(known: from, fromTime, to, follow, signal, committed\)/,
    );
    await invalid(
      () => log.read({ from: "3" } as never).next(),
      /read: from .* got "3" \(a string\)/,
    );
    await invalid(
      () => log.read({ follow: 1 } as never).next(),
      /follow must be true or false, got 1/,
    );
    await invalid(() => log.read({ signal: {} } as never).next(), /signal must be an AbortSignal/);
    await invalid(() => log.follow({ sigal: null } as never), /unknown option "sigal"/);
    await invalid(() => log.truncateBefore(-1), /truncateBefore\(seq\) .* got -1/);
    await store.close();
  });

  it("a store on a regular file is 'not a directory'", async () => {
    const file = join(disk.tempDir(), "plain");
    writeFileSync(file, "not a store");
    await assert.rejects(Store.open(file), (err: unknown) => {
      assert.ok(err instanceof FileTypeError, String(err));
      assert.match(err.message, /a file, not a directory/);
      assert.equal(err.path, file);
      return true;
    });
  });

  it("running out of file descriptors says so", async () => {
    const e = fromOsError(Object.assign(new Error("EMFILE"), { code: "EMFILE" }), "open", "/d/x");
    assert.ok(e instanceof IoError);
    assert.match(e.message, /open: too many open files in this process EMFILE/);
    const faulty = new FaultyPlatform(new SimPlatform()).inject({
      op: "open",
      path: "events",
      code: "EMFILE",
    });
    const store = await Store.open("/s", { platform: faulty });
    await assert.rejects(store.log("events"), /too many open files/);
    await store.close();
  });
});

describe("store and log housekeeping", () => {
  it("store.logs() lists the logs on disk, not only the open ones", async () => {
    const dir = disk.tempDir();
    const first = await Store.open(dir);
    await (await first.log("orders")).append("1");
    await (await first.log("audit")).append("2");
    await first.close();
    mkdirSync(join(dir, ".hidden")); // not a log name
    writeFileSync(join(dir, "notes"), "a file, not a log");
    const store = await Store.open(dir);
    assert.deepEqual(store.openLogs, []);
    assert.deepEqual(await store.logs(), ["audit", "orders"]);
    await store.close();
  });

  it("names that differ only in case are refused against what is on disk", async () => {
    const dir = disk.tempDir();
    const first = await Store.open(dir);
    await (await first.log("Events")).append("x");
    await first.close();
    const store = await Store.open(dir);
    await invalid(() => store.log("events"), /"events" differs only in case from the log "Events"/);
    assert.equal((await store.log("Events")).nextSeq, 1);
    await store.close();
  });

  it("deleteLog removes a log durably, refuses an open one, and is NotFound for a missing one", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/s", { platform: sim });
    const log = await store.log("scratch");
    await log.append("x");
    await invalid(() => store.deleteLog("scratch"), /"scratch" is open; close it before deleting/);
    assert.equal(log.closed, false, "the refused delete left the log open");
    await log.close();
    await store.deleteLog("scratch");
    assert.deepEqual(await store.logs(), []);
    await assert.rejects(store.deleteLog("scratch"), NotFoundError);
    await invalid(() => store.deleteLog("../x"), /invalid log name/);
    const again = await store.log("scratch");
    assert.equal(again.nextSeq, 0, "a new log of the same name starts empty");
    assert.notEqual(again.id, log.id, "and is another log: a new log id");
    await store.close();
    for (const mode of CRASH_MODES) {
      const after = await Store.open("/s", { platform: sim.crash(mode, 7) });
      assert.equal(
        (await after.log("scratch")).nextSeq,
        0,
        `${mode}: the deleted records are gone`,
      );
      await after.close();
    }
  });

  it("a deletion a crash interrupted (directory renamed away, not yet removed) is finished at open", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/s", { platform: sim });
    await (await store.log("keep")).append("k");
    await (await store.log("gone")).append("g");
    await store.close();
    // What #removeLog leaves after its durable rename, before the removal.
    await sim.rename("/s/gone", "/s/.deleted-gone-1");
    await sim.syncDir("/s");
    const reopened = await Store.open("/s", { platform: sim.crash("none", 1) });
    assert.deepEqual(await reopened.logs(), ["keep"]);
    const names = await reopened.options.platform.readdir("/s");
    assert.ok(!names.some((n) => n.startsWith(".deleted-")), names.join());
    await reopened.close();
  });

  it("log.byteSize equals the bytes of the segment files on disk, seals and preallocated zeros included", async () => {
    const dir = disk.tempDir();
    const onDisk = (name: string) =>
      readdirSync(join(dir, name)).filter((n) => n.endsWith(".seg")).reduce(
        (n, f) => n + statSync(join(dir, name, f)).size,
        0,
      );
    let store = await Store.open(dir, { segmentBytes: 4096, syncPolicy: SyncPolicy.osManaged() });
    let log = await store.log("l");
    assert.equal(log.byteSize, onDisk("l"), "empty log (a new segment holds just its header)");
    for (let i = 0; i < 40; i++) {
      await log.append(new Uint8Array(300).fill(i));
      assert.equal(log.byteSize, onDisk("l"), `after append ${i} (${log.segmentCount} segments)`);
    }
    assert.ok(log.segmentCount > 2, "rolled over, so sealed segments are counted");
    await store.close();
    // Segments larger than the 1 MiB preallocation step: the active file runs ahead of its data.
    store = await Store.open(dir, { segmentBytes: 4 << 20, syncPolicy: SyncPolicy.osManaged() });
    log = await store.log("l");
    assert.equal(log.byteSize, onDisk("l"), "reopened");
    const big = await store.log("big");
    for (let i = 0; i < 25; i++) {
      await big.append(new Uint8Array(100_000).fill(i));
      assert.equal(big.byteSize, onDisk("big"), `after big append ${i}`);
    }
    assert.equal(onDisk("big"), 3 << 20, "2.5 MB of records, preallocated to 3 MiB");
    await store.close();
  });

  it("Log and RecordIterator implement Symbol.asyncDispose", async () => {
    const sim = new SimPlatform();
    const store = await Store.open("/s", { platform: sim });
    const log = await store.log("l");
    await log.appendBatch(["a", "b"]);
    const it = log.read();
    assert.equal((await it.next()).value?.seq, 0);
    await it[Symbol.asyncDispose]();
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    await log[Symbol.asyncDispose]();
    assert.equal(log.closed, true);
    await store.close();
    assert.equal(sim.openFileCount, 0);
  });

  it("a follower waiting for records keeps the process alive (Node exited with code 13)", async () => {
    const dir = disk.tempDir();
    const mod = pathToFileURL(join(ROOT, "mod.ts")).href;
    const { code, out, err } = await runScript(
      dir,
      `import { Store } from ${JSON.stringify(mod)};
const store = await Store.open(${JSON.stringify(join(dir, "store"))});
const log = await store.log("l");
// AbortSignal.timeout's timer does not keep a process alive: only the waiting follower can.
for await (const _ of log.follow({ signal: AbortSignal.timeout(300) }));
await store.close();
console.log("follower ended");
`,
    );
    assert.equal(code, 0, `child ${code}: ${out} ${err}`);
    assert.match(out, /follower ended/);
  });
});

describe("every error is a KhipuError", () => {
  it("the cases above are all KhipuErrors with a code", async () => {
    const errors: unknown[] = [];
    const store = await Store.open("/s", { platform: new SimPlatform() });
    const log = await store.log("l");
    for (
      const call of [
        () => log.appendBatch("x" as never),
        () => Store.open("/t", null as never),
        () => store.log("" as never),
        () => log.read({ from: -1 }).next(),
      ]
    ) {
      try {
        await call();
      } catch (err) {
        errors.push(err);
      }
    }
    await store.close();
    assert.equal(errors.length, 4);
    for (const e of errors) {
      assert.ok(e instanceof KhipuError && typeof e.code === "string", String(e));
    }
  });
});
