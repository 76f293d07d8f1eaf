// Read-only stores in one process, on the simulator and on the real disk: opening refuses what is
// missing and creates nothing, every write is refused with READ_ONLY and nothing reaches the disk,
// a read-only log follows a writer (a separate Store on the same files) through appends, batches,
// rollovers, seals and retention deleting segments under a reader, a torn tail being written is
// "not yet there", and committed reads see only what the writer's fdatasyncs covered. Then, in the
// writer's process: a follower never yields a record before its append resolved, and never the
// record whose append rejected with PoisonedError. And `read({ fromTime })` in a read-only store.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import {
  type FollowOptions,
  InvalidArgumentError,
  type Log,
  type LogRecord,
  NotFoundError,
  PoisonedError,
  ReadOnlyError,
  RecordsRemovedError,
  Store,
  type StoreOptions,
  SyncPolicy,
} from "../mod.ts";
import { FaultyPlatform, type RecordedCall, recordingPlatform, SimPlatform } from "../testing.ts";
import type { Platform } from "../src/platform/types.ts";
import { segmentFileName } from "../src/segment.ts";
import { currentRuntime } from "./fixtures/runtimes.ts";
import { concat, realDisk, within, wrapFile } from "./helpers.ts";
import { decodeV2Segment, T_LAST, T_MORE, v2Frame } from "./spec_codec.ts";

const rt = currentRuntime();
const disk = realDisk("ro");
const enc = new TextEncoder();
const dec = new TextDecoder();
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Record `i`'s payload: its number and a length that varies (0 to 299 bytes of filler). */
const payload = (i: number) => `record ${i} ${"x".repeat((i * 37) % 300)}`;

/** Where a test runs: the simulator, or this runtime's real file system. */
interface Env {
  kind: "sim" | "disk";
  platform: Platform;
  dir: string;
}

const ENVS: ReadonlyArray<readonly [Env["kind"], () => Env]> = [
  ["sim", () => ({ kind: "sim", platform: new SimPlatform(), dir: "/data" })],
  ["disk", () => ({ kind: "disk", platform: disk.platform(), dir: join(disk.tempDir(), "s") })],
];

/**
 * What the running test opened, closed after it whatever happened (followers and held fdatasyncs
 * first, then stores): a failed assertion must not leave a waiting follower keeping the process
 * alive.
 */
const leftOpen: { phase: number; close(): unknown }[] = [];

/** `it`, closing what the test left open. */
function test(name: string, body: () => Promise<void>): void {
  it(name, async () => {
    try {
      await body();
    } finally {
      for (const o of leftOpen.splice(0).sort((a, b) => a.phase - b.phase)) {
        await Promise.resolve().then(() => o.close()).catch(() => {});
      }
    }
  });
}

/** A writer's store in `env` (its own Store object) and log "orders" with `n` records. */
async function writer(env: Env, n: number, opts: StoreOptions = {}) {
  const store = await Store.open(env.dir, {
    platform: env.platform,
    syncPolicy: SyncPolicy.always(),
    ...opts,
  });
  leftOpen.push({ phase: 1, close: () => store.close() });
  const log = await store.log("orders");
  for (let i = 0; i < n; i++) await log.append(payload(i));
  return { store, log };
}

async function readOnly(env: Env, platform: Platform = env.platform) {
  const store = await Store.open(env.dir, { platform, readOnly: true });
  leftOpen.push({ phase: 1, close: () => store.close() });
  return { store, log: await store.log("orders") };
}

async function rejects<T extends Error>(
  p: Promise<unknown>,
  type: new (...args: never[]) => T,
  what: string,
): Promise<T> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof type, `${what}: expected ${type.name}, got ${String(err)}`);
  return err;
}

async function records(it: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of it) out.push({ ...r, data: r.data.slice() });
  return out;
}
const seqsOf = (rs: readonly LogRecord[]) => rs.map((r) => r.seq);
const textsOf = (rs: readonly LogRecord[]) => rs.map((r) => dec.decode(r.data));

/** Every file and directory under `dir` with the bytes of each file, read through `p`. */
async function tree(p: Platform, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(d: string): Promise<void> {
    for (const name of (await p.readdir(d)).sort()) {
      const path = `${d}/${name}`;
      const st = await p.lstat(path);
      if (st?.isDirectory) {
        out.set(path, "dir");
        await walk(path);
        continue;
      }
      const f = await p.open(path, "read");
      const bytes = new Uint8Array(f.size());
      f.readAt(bytes, 0);
      f.close();
      out.set(path, bytes.join(","));
    }
  }
  await walk(dir);
  return out;
}

/** The calls of a recording that change something on disk (or take a lock). */
function mutations(calls: readonly RecordedCall[]): string[] {
  const changes = new Set([
    "syncDir",
    "rename",
    "unlink",
    "mkdir",
    "remove",
    "lock",
    "write",
    "writev",
    "writeAt",
    "writevAt",
    "truncate",
    "datasync",
    "sync",
  ]);
  return calls.filter((c) => changes.has(c.op) || (c.op === "open" && c.how !== "read"))
    .map((c) => `${c.op}${c.how ? `(${c.how})` : ""} ${c.path}`);
}

/** A background follower of `log`, collecting what it yields. */
function follower(log: Log, opts: FollowOptions = {}) {
  const stop = new AbortController();
  const seen: LogRecord[] = [];
  let failure: unknown = null;
  let wake = () => {};
  const onRecord: ((r: LogRecord) => void)[] = [];
  const done = (async () => {
    try {
      for await (const r of log.follow({ ...opts, signal: stop.signal })) {
        const copy = { ...r, data: r.data.slice() };
        for (const f of onRecord) f(copy);
        seen.push(copy);
        wake();
      }
    } catch (err) {
      failure = err;
    } finally {
      wake();
    }
  })();
  leftOpen.push({ phase: 0, close: () => stop.abort() });
  return {
    seen,
    onRecord,
    get failure(): unknown {
      return failure;
    },
    /** Resolves once `n` records were yielded (throws what the follower threw, if it did). */
    async until(n: number, what: string, ms = 15_000): Promise<void> {
      await within(
        new Promise<void>((resolve) => {
          wake = () => {
            if (seen.length >= n || failure !== null) resolve();
          };
          wake();
        }),
        `${what} (yielded ${seen.length} of ${n})`,
        ms,
      );
      if (failure !== null) throw failure;
    },
    /** Aborts it and waits for it to end; returns what it yielded. */
    async stop(): Promise<LogRecord[]> {
      stop.abort();
      await done;
      if (failure !== null) throw failure;
      return seen;
    },
  };
}

/** Writes `bytes` at `offset` of `path` by hand, behind the library's back. */
async function scribble(env: Env, path: string, bytes: Uint8Array, offset: number): Promise<void> {
  if (env.kind === "disk") {
    const fd = openSync(path, "r+");
    try {
      writeSync(fd, bytes, 0, bytes.length, offset);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const f = await env.platform.open(path, "append");
  f.writeAt(bytes, offset);
  f.close();
}

async function fileBytes(p: Platform, path: string): Promise<Uint8Array> {
  const f = await p.open(path, "read");
  const b = new Uint8Array(f.size());
  f.readAt(b, 0);
  f.close();
  return b;
}

/** `inner`, with every fdatasync of a segment waiting until `open()` is called once `hold()` was. */
function gatedPlatform(inner: Platform) {
  let gate: Promise<void> | null = null;
  let release = () => {};
  const platform = new Proxy(inner, {
    get(target, key) {
      if (key === "open") {
        return async (path: string, how: "read" | "append" | "createExclusive", mode?: number) => {
          const f = await target.open(path, how, mode);
          if (!path.endsWith(".seg")) return f;
          return wrapFile(f, {
            datasync: async () => {
              if (gate) await gate;
              await f.datasync();
            },
          });
        };
      }
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  leftOpen.push({ phase: 0, close: () => release() });
  return {
    platform,
    hold(): void {
      gate = new Promise((r) => (release = r));
    },
    open(): void {
      gate = null;
      release();
    },
  };
}

for (const [kind, makeEnv] of ENVS) {
  describe(`read-only store: open and refusals (${kind}, ${rt})`, () => {
    test("opening a missing directory is NotFoundError and creates nothing", async () => {
      const env = makeEnv();
      for (const dir of [env.dir, `${env.dir}/a/b`]) {
        const err = await rejects(
          Store.open(dir, { platform: env.platform, readOnly: true }),
          NotFoundError,
          dir,
        );
        assert.equal(err.code, "NOT_FOUND");
        assert.equal(await env.platform.stat(dir), null, `${dir} was created`);
      }
      assert.equal(await env.platform.stat(env.dir), null);
    });

    test("ro.log(name) opens existing logs only: NotFoundError, no directory; a log the writer creates later opens", async () => {
      const env = makeEnv();
      const w = await writer(env, 2);
      const ro = await Store.open(env.dir, { platform: env.platform, readOnly: true });
      const before = await tree(env.platform, env.dir);
      for (let i = 0; i < 2; i++) {
        // Twice: a failed open is not remembered as a log.
        await rejects(ro.log("nope"), NotFoundError, "ro.log(nope)");
      }
      assert.equal(await env.platform.stat(`${env.dir}/nope`), null);
      assert.deepEqual(await ro.logs(), ["orders"]);
      assert.deepEqual(await tree(env.platform, env.dir), before);
      const later = await w.store.log("later");
      await later.append("made after the read-only store opened");
      const seen = await records((await ro.log("later")).read());
      assert.deepEqual(textsOf(seen), ["made after the read-only store opened"]);
      await ro.close();
      await w.store.close();
    });

    test("append, appendBatch, sync, truncateBefore, store.sync and deleteLog are READ_ONLY; nothing is written", async () => {
      const env = makeEnv();
      const w = await writer(env, 5, { segmentBytes: 4096 });
      await w.log.cursor("billing").then((c) => c.close());
      await w.store.close();
      const before = await tree(env.platform, env.dir);
      const rec = recordingPlatform(env.platform);
      const { store, log } = await readOnly(env, rec);
      assert.equal(store.readOnly, true);
      assert.equal(log.readOnly, true);
      assert.equal(log.dirty, false);
      assert.equal(log.openReport.truncatedBytes, 0);
      const refused: [string, () => Promise<unknown>][] = [
        ["append", () => log.append("x")],
        ["appendBatch", () => log.appendBatch(["a", "b"])],
        ["sync", () => log.sync()],
        ["truncateBefore", () => log.truncateBefore(3)],
        ["store.sync", () => store.sync()],
        ["deleteLog", () => store.deleteLog("orders")],
        ["deleteLog of a missing log", () => store.deleteLog("missing")],
      ];
      for (const [what, call] of refused) {
        const err = await rejects(call(), ReadOnlyError, what);
        assert.equal(err.code, "READ_ONLY", what);
      }
      // Reading, following, listing do not write either.
      assert.deepEqual(seqsOf(await records(log.read())), range(5));
      const f = follower(log, { from: 0 });
      await f.until(5, "follow");
      await sleep(50);
      await f.stop();
      assert.deepEqual(await log.cursors(), [{ name: "billing", position: 0, lag: 5 }]);
      assert.deepEqual(await store.logs(), ["orders"]);
      assert.deepEqual(mutations(rec.calls), []);
      await store.close();
      assert.deepEqual(mutations(rec.calls), []);
      assert.deepEqual(await tree(env.platform, env.dir), before);
    });
  });

  describe(`read-only store beside a writer (${kind}, ${rt})`, () => {
    test("follows through appends, batches, empty records, rollovers and seals: each record once, in order, intact", async () => {
      const env = makeEnv();
      const w = await writer(env, 3, { segmentBytes: 4096 });
      const ro = await readOnly(env); // no LockedError: the writer's lock is not taken
      const all = follower(ro.log, { from: 0 });
      const late = follower(ro.log, { from: 57 });
      const texts = range(3).map(payload);
      for (let i = 3; i < 240;) {
        if (i % 7 === 0) {
          const batch = range(1 + (i % 5), i).map(payload);
          await w.log.appendBatch(batch);
          texts.push(...batch);
          i += batch.length;
        } else {
          const text = i % 11 === 0 ? "" : payload(i);
          await w.log.append(text);
          texts.push(text);
          i++;
        }
      }
      await all.until(texts.length, "follower from 0");
      await late.until(texts.length - 57, "follower from 57");
      const seen = await all.stop();
      assert.deepEqual(seqsOf(seen), range(texts.length));
      assert.deepEqual(textsOf(seen), texts);
      assert.deepEqual(seqsOf(await late.stop()), range(texts.length - 57, 57));
      assert.ok(w.log.segmentCount > 5, `only ${w.log.segmentCount} segments`);
      assert.equal(ro.log.segmentCount, w.log.segmentCount);
      assert.equal(ro.log.nextSeq, w.log.nextSeq);
      assert.equal(ro.log.id, w.log.id);
      assert.deepEqual(textsOf(await records(ro.log.read({ from: 0 }))), texts);
      await ro.store.close();
      await w.store.close();
    });

    test("appends issued concurrently while a read-only follower runs: no gap, no duplicate", async () => {
      const env = makeEnv();
      const w = await writer(env, 0, { segmentBytes: 8192, syncPolicy: SyncPolicy.everyN(4) });
      await w.log.append(payload(0));
      const ro = await readOnly(env);
      const f = follower(ro.log, { from: 0 });
      const N = 300;
      let next = 1;
      await Promise.all(
        range(6).map(async () => {
          while (next < N) await w.log.append(payload(next++));
        }),
      );
      await f.until(N, "follower");
      const seen = await f.stop();
      assert.deepEqual(seqsOf(seen), range(N));
      const written = await records(w.log.read({ from: 0 }));
      assert.deepEqual(textsOf(seen), textsOf(written));
      await ro.store.close();
      await w.store.close();
    });

    for (const follow of [false, true]) {
      test(
        `truncateBefore deletes segments under a ${
          follow ? "follower" : "reader"
        } mid-segment: it finishes the open file, then RECORDS_REMOVED, never a skip`,
        async () => {
          const env = makeEnv();
          const w = await writer(env, 0, { segmentBytes: 4096 });
          // 500-byte records: 7 to a segment, so the reader's next segments go too.
          for (let i = 0; i < 60; i++) await w.log.append(payload(i).padEnd(500, "."));
          const ro = await readOnly(env);
          const stop = new AbortController();
          const it = ro.log.read({ from: 0, follow, signal: stop.signal });
          const seen: number[] = [];
          for (let i = 0; i < 3; i++) seen.push((await it.next()).value!.seq);
          await w.log.truncateBefore(40);
          assert.ok(w.log.firstSeq > 10, `retention kept seq ${w.log.firstSeq}`);
          const timer = setTimeout(() => stop.abort(), 5_000);
          let failure: unknown = null;
          try {
            for (let r = await it.next(); !r.done; r = await it.next()) seen.push(r.value.seq);
          } catch (err) {
            failure = err;
          } finally {
            clearTimeout(timer);
          }
          assert.deepEqual(seen, range(seen.length), "what was yielded is a contiguous run from 0");
          assert.ok(seen.length < w.log.firstSeq, `yielded ${seen.length}: records were removed`);
          assert.ok(
            failure instanceof RecordsRemovedError,
            `after seq ${seen.at(-1)}, expected RecordsRemovedError, got ${String(failure)}`,
          );
          assert.equal(failure.position, seen.length);
          assert.equal(failure.firstSeq, w.log.firstSeq);
          await ro.store.close();
          await w.store.close();
        },
      );
    }

    test("retention under a reader in a segment it keeps, an idle follower, and a cursor behind it", async () => {
      const env = makeEnv();
      const w = await writer(env, 60, { segmentBytes: 4096 });
      const ro = await readOnly(env);
      const cur = await ro.log.cursor("billing"); // at 0: retention will overtake it
      const idle = follower(ro.log); // at the end, waiting
      const it = ro.log.read({ from: 50 });
      const first = await it.next();
      assert.equal(first.value?.seq, 50);
      await w.log.truncateBefore(40);
      const rest = await records(it);
      assert.deepEqual(seqsOf(rest), range(9, 51));
      await w.log.append(payload(60));
      await idle.until(1, "idle follower");
      assert.deepEqual(seqsOf(await idle.stop()), [60]);
      assert.equal(ro.log.firstSeq, w.log.firstSeq, "the listing dropped the deleted segments");
      const err = await rejects(cur.read().next(), RecordsRemovedError, "cursor behind retention");
      assert.equal(err.code, "RECORDS_REMOVED");
      assert.equal(err.position, 0);
      assert.equal(err.firstSeq, w.log.firstSeq);
      await cur.close();
      // A read-only store opened after the retention: the same for the cursor, a plain read starts
      // at the first record left.
      const fresh = await readOnly(env);
      const again = await fresh.log.cursor("billing");
      await rejects(again.read().next(), RecordsRemovedError, "cursor in a fresh store");
      await again.close();
      assert.equal((await fresh.log.read({ from: 0 }).next()).value?.seq, w.log.firstSeq);
      await fresh.store.close();
      await ro.store.close();
      await w.store.close();
    });

    test("a read() made after the writer appended sees those records (no follower running)", async () => {
      const env = makeEnv();
      const w = await writer(env, 2);
      const ro = await readOnly(env);
      await w.log.append(payload(2));
      assert.deepEqual(seqsOf(await records(ro.log.read())), range(3));
      await w.log.append(payload(3));
      assert.deepEqual(seqsOf(await records(ro.log.read({ from: 3 }))), [3]);
      await ro.store.close();
      await w.store.close();
    });

    test("a torn tail being written is not there yet: neither an error nor a record, nothing cut", async () => {
      const env = makeEnv();
      const w = await writer(env, 5);
      await w.store.close(); // a clean close: the writer's mark says where the records end
      const seg = `${env.dir}/orders/${segmentFileName(0)}`;
      const file = decodeV2Segment(await fileBytes(env.platform, seg), false);
      assert.equal(file.frames.length, 5);
      const logId = file.header.logId;
      const end = file.end;
      const more = v2Frame(logId, 5, T_MORE, 0, enc.encode("batch part 1"));
      const last = v2Frame(logId, 6, T_LAST, 0, enc.encode("batch part 2"));
      const half = more.length >> 1;
      const ro = await readOnly(env);
      const f = follower(ro.log, { from: 0 });
      await f.until(5, "the five records");
      // Half a frame: short, so "not yet there" (a writer would cut it as a torn tail).
      await scribble(env, seg, more.subarray(0, half), end);
      await sleep(env.kind === "disk" ? 700 : 20); // past a watch event and a poll
      assert.deepEqual(seqsOf(await records(ro.log.read())), range(5));
      assert.equal(f.failure, null);
      assert.equal(f.seen.length, 5);
      // The frame whole, but its batch is not: still not there.
      await scribble(env, seg, more.subarray(half), end + half);
      await sleep(env.kind === "disk" ? 700 : 20);
      assert.equal(f.failure, null);
      assert.equal(f.seen.length, 5);
      assert.equal(ro.log.nextSeq, 5);
      // The batch's last frame: both records arrive together.
      await scribble(env, seg, last, end + more.length);
      await f.until(7, "the completed batch");
      const seen = await f.stop();
      assert.deepEqual(textsOf(seen.slice(5)), ["batch part 1", "batch part 2"]);
      const bytes = await fileBytes(env.platform, seg);
      assert.deepEqual(bytes.subarray(end, end + more.length + last.length), concat(more, last));
      await ro.store.close();
      // The writer's recovery agrees with what the reader saw.
      const again = await writer(env, 0);
      assert.equal(again.log.nextSeq, 7);
      await again.store.close();
    });

    test("committed reads under osManaged() see nothing new until log.sync(), then everything", async () => {
      const env = makeEnv();
      const w = await writer(env, 0, { syncPolicy: SyncPolicy.osManaged() });
      await w.log.appendBatch(range(3).map(payload));
      await w.log.sync();
      const ro = await readOnly(env);
      const committed = follower(ro.log, { from: 0, committed: true });
      const written = follower(ro.log, { from: 0 });
      await committed.until(3, "synced records");
      for (let i = 3; i < 8; i++) await w.log.append(payload(i));
      await written.until(8, "records written whole");
      await sleep(50);
      assert.deepEqual(seqsOf(committed.seen), range(3), "committed follower ran ahead of sync");
      assert.deepEqual(seqsOf(await records(ro.log.read({ committed: true }))), range(3));
      const fresh = await readOnly(env);
      assert.deepEqual(seqsOf(await records(fresh.log.read({ committed: true }))), range(3));
      assert.deepEqual(seqsOf(await records(fresh.log.read())), range(8));
      await w.log.sync();
      await committed.until(8, "records after sync");
      assert.deepEqual(seqsOf(await committed.stop()), range(8));
      assert.deepEqual(seqsOf(await records(ro.log.read({ committed: true }))), range(8));
      assert.deepEqual(seqsOf(await written.stop()), range(8));
      await fresh.store.close();
      await ro.store.close();
      await w.store.close();
    });

    test("read({ fromTime }) and follow({ fromTime }) start at the first record at or after the time", async () => {
      const env = makeEnv();
      const w = await writer(env, 0, { segmentBytes: 4096 });
      const starts: number[] = [];
      for (let b = 0; b < 4; b++) {
        starts.push(w.log.nextSeq);
        await w.log.appendBatch(range(10, w.log.nextSeq).map(payload));
        await sleep(5);
      }
      const ro = await readOnly(env);
      const all = await records(ro.log.read());
      const times = all.map((r) => r.timestamp);
      for (const start of starts) {
        const t = times[start];
        const from = await records(ro.log.read({ fromTime: t }));
        assert.equal(from[0].seq, times.findIndex((x) => x >= t));
        assert.equal(from.at(-1)?.seq, all.length - 1);
      }
      assert.equal((await records(ro.log.read({ fromTime: 0 })))[0].seq, 0);
      assert.deepEqual(await records(ro.log.read({ fromTime: times.at(-1)! + 1 })), []);
      await rejects(
        ro.log.read({ from: 0, fromTime: 0 }).next(),
        InvalidArgumentError,
        "from and fromTime",
      );
      const future = Date.now() + 20;
      const f = follower(ro.log, { fromTime: future });
      await sleep(5); // the follower has sought (to the end: no record is that late yet)
      await w.log.append("too early");
      await sleep(40);
      await w.log.append("late enough");
      await f.until(1, "follow from a future time");
      const seen = await f.stop();
      assert.deepEqual(textsOf(seen), ["late enough"]);
      assert.ok(seen[0].timestamp >= future);
      await w.log.truncateBefore(25);
      const fresh = await readOnly(env);
      assert.equal((await records(fresh.log.read({ fromTime: 0 })))[0].seq, fresh.log.firstSeq);
      assert.ok(fresh.log.firstSeq > 0);
      await fresh.store.close();
      await ro.store.close();
      await w.store.close();
    });
  });

  describe(`the writer's own readers see what appends were told (${kind}, ${rt})`, () => {
    test("under always(), a follower never yields a record before its append resolved", async () => {
      const env = makeEnv();
      const gated = gatedPlatform(env.platform);
      const w = await writer({ ...env, platform: gated.platform }, 2);
      const resolved = new Set<number>([0, 1]);
      const early: number[] = [];
      const f = follower(w.log, { from: 0 });
      f.onRecord.push((r) => {
        if (!resolved.has(r.seq)) early.push(r.seq);
      });
      await f.until(2, "records appended before");
      // The appends are written, their fdatasync held: written is not acknowledged.
      gated.hold();
      const appends = range(10, 2).map((i) =>
        w.log.append(payload(i)).then((seq) => void resolved.add(seq))
      );
      await sleep(50);
      assert.equal(resolved.size, 2, "an append resolved before its fdatasync");
      assert.deepEqual(seqsOf(f.seen), [0, 1]);
      assert.deepEqual(seqsOf(await records(w.log.read())), [0, 1]);
      // A read-only store sees the bytes written whole, and not as committed.
      const ro = await readOnly(env);
      assert.deepEqual(seqsOf(await records(ro.log.read())), range(12));
      assert.deepEqual(seqsOf(await records(ro.log.read({ committed: true }))), [0, 1]);
      await ro.store.close();
      gated.open();
      await Promise.all(appends);
      await f.until(12, "records after their fdatasync");
      // And under load: many appends in flight, each yielded only after it resolved.
      const more = range(200, 12).map((i) =>
        w.log.append(payload(i)).then((seq) => void resolved.add(seq))
      );
      await Promise.all(more);
      await f.until(212, "records under load");
      assert.deepEqual(seqsOf(await f.stop()), range(212));
      assert.deepEqual(early, [], "yielded before its append resolved");
      await w.store.close();
    });

    test("after a failed fdatasync, a follower is never handed the record whose append rejected (payment-42)", async () => {
      const env = makeEnv();
      const faulty = new FaultyPlatform(env.platform);
      const w = await writer({ ...env, platform: faulty }, 0);
      const f = follower(w.log, { from: 0 });
      for (let i = 0; i < 42; i++) await w.log.append(`payment-${i}`);
      await f.until(42, "the acknowledged payments");
      faulty.inject({ op: "datasync", path: ".seg" });
      const err = await rejects(w.log.append("payment-42"), PoisonedError, "payment-42");
      assert.equal(err.code, "POISONED");
      assert.deepEqual(err.covering, { from: 42, to: 43 });
      assert.match(err.message, /the fdatasync of records \[42, 43\) failed/);
      assert.match(err.message, /EIO|I\/O/);
      assert.equal(faulty.injected.length, 1);
      const later = await rejects(w.log.append("payment-43"), PoisonedError, "payment-43");
      assert.match(later.message, /the fdatasync of records \[42, 43\) failed/);
      await sleep(50);
      const seen = await f.stop();
      assert.deepEqual(textsOf(seen), range(42).map((i) => `payment-${i}`));
      assert.deepEqual(seqsOf(await records(w.log.read())), range(42), "reads still work");
      const ro = await readOnly(env);
      assert.deepEqual(seqsOf(await records(ro.log.read({ committed: true }))), range(42));
      await ro.store.close();
      await w.store.close();
    });

    test("a batch and appends sharing one failed fdatasync: all reject naming its records, none is yielded", async () => {
      const env = makeEnv();
      const faulty = new FaultyPlatform(env.platform);
      const w = await writer({ ...env, platform: faulty }, 3);
      const f = follower(w.log, { from: 0 });
      await f.until(3, "the first records");
      faulty.inject({ op: "datasync", path: ".seg" });
      const outcomes = await Promise.allSettled([
        w.log.append("a"),
        w.log.appendBatch(["b", "c"]),
        w.log.append("d"),
      ]);
      for (const o of outcomes) {
        assert.equal(o.status, "rejected");
        const e = (o as PromiseRejectedResult).reason;
        assert.ok(e instanceof PoisonedError, String(e));
        assert.match(e.message, /the fdatasync of records \[3, 7\) failed/);
      }
      await sleep(50);
      assert.deepEqual(seqsOf(await f.stop()), range(3));
      await w.store.close();
    });
  });
}
