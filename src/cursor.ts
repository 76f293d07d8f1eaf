/**
 * Durable named cursors: a consumer's position in a log, committed durably (group-committed
 * fdatasyncs), locked to one holder across processes and runtimes, readable by any process.
 *
 * A cursor lives in `<log dir>/cursors/`: its state in `<name>.cursor` (a header and two slots
 * written alternately, FORMAT.md "Cursor files"), its holder's lock in `<name>.lock` (the store
 * lock's protocol, so a lock left by `kill -9` is taken over). A commit overwrites the slot not
 * holding the last resolved commit and fdatasyncs it, so a power cut at any moment leaves the
 * cursor at a position some commit gave it, never below the last one that resolved. Cursor state
 * needs neither the writer's lock nor a writable store.
 *
 * @example A consumer that resumes where it stopped
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/data", { platform: sim });
 * const log = await store.log("orders");
 * await log.appendBatch(["a", "b", "c"]);
 * await log.sync(); // a cursor reads durable records only
 * const cur = await log.cursor("billing"); // created at the log's first seq
 * for await (const r of cur.read()) {
 *   if (r.seq === 1) break; // stop before "b": only "a" is processed
 *   await cur.commit(r.seq);
 * }
 * await cur.close();
 * const again = await log.cursor("billing");
 * const next = await again.read().next();
 * await again.close();
 * await store.close();
 * if (again.position !== 1 || next.value?.seq !== 1) throw new Error(`${again.position}`);
 * ```
 * @module
 */
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  LockedError,
  NotFoundError,
} from "./errors.ts";
import type { Platform, PlatformFile, PlatformLock } from "./platform/types.ts";
import type { RecordIterator } from "./reader.ts";
import {
  createFileDurable,
  dirModeFor,
  mkdirDurable,
  renameDurable,
  unlinkDurable,
} from "./platform/durable.ts";
import { errorCode } from "./platform/os_call.ts";
import { type Gap, seqsInGaps } from "./gaps.ts";
import { validateCursorName } from "./log_name.ts";
import { boolean, options as checkOptions, wholeNumber } from "./validate.ts";
import {
  CURSOR_FILE_BYTES,
  cursorSeed,
  type CursorSlot,
  cursorSlotOffset,
  decodeCursorFile,
  encodeCursorFile,
  encodeCursorSlot,
} from "./format/cursor_file.ts";

/** What a cursor needs from its log (a writer's or a read-only store's); `Log` implements it. */
export interface CursorHost {
  /** The log directory: cursors live in `${path}/cursors/`. */
  readonly path: string;
  /** The file system. */
  readonly platform: Platform;
  /** The log's 16-byte id (seeds the cursor files' checksums). */
  readonly logId: Uint8Array;
  /** Permission bits for files the cursor creates. */
  readonly fileMode: number;
  /** The log's first seq now. */
  firstSeq(): number;
  /** One past the last record this process sees (writer: `nextSeq`; read-only: what it has seen). */
  nextSeq(): number;
  /** Seq ranges between the log's segments that repair set aside (no record has those seqs). */
  gaps(): readonly Gap[];
  /**
   * Reads from `from`, strictly: the first `next()` rejects with `RecordsRemovedError` if `from` is
   * below the log's first seq (instead of starting at the first), and so does a follower that
   * retention overtakes. `who` names the reader in that error (`cursor "billing"`).
   */
  readFrom(
    from: number,
    opts: { to?: number; follow?: boolean; signal?: AbortSignal; committed?: boolean },
    who: string,
  ): RecordIterator;
  /** Seq of the first record with timestamp >= `time` (`nextSeq` if none is that late). */
  seqAtTime(time: number): Promise<number>;
  /** True once the log is closed. */
  isClosed(): boolean;
  /** A cursor of this host closed (the log forgets it: it closes the open ones when it closes). */
  released?(cursor: Cursor): void;
}

/** One cursor as `log.cursors()` lists it. */
export interface CursorInfo {
  /** Its name. */
  name: string;
  /** Next seq it has not processed. */
  position: number;
  /** Records from `position` to `nextSeq` (as this process sees it), seqs in gaps not counted. */
  lag: number;
}

/** Options of `cursor.follow()` / `cursor.read()`. */
export interface CursorReadOptions {
  /** Stop before this seq (read only). */
  to?: number;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
  /** Only records durable on disk (default true for cursors). */
  committed?: boolean;
}

/** Where cursor `name` of a log keeps its files. */
interface CursorFiles {
  dir: string;
  file: string;
  lock: string;
  /** Where a new cursor file is written before it is renamed into place. */
  temp: string;
}

function cursorsDir(host: CursorHost): string {
  return `${host.path}/cursors`;
}

function filesOf(host: CursorHost, name: string): CursorFiles {
  const dir = cursorsDir(host);
  return {
    dir,
    file: `${dir}/${name}.cursor`,
    lock: `${dir}/${name}.lock`,
    temp: `${dir}/${name}.cursor.tmp`,
  };
}

/** What {@linkcode openCursor} hands the constructor. */
interface OpenedCursor {
  host: CursorHost;
  name: string;
  path: string;
  file: PlatformFile;
  lock: PlatformLock;
  seed: number;
  slot: CursorSlot;
}

/** Settled when the write covering change number `upTo` completes or fails. */
interface Waiter {
  upTo: number;
  resolve(): void;
  reject(err: unknown): void;
}

const CONSTRUCT = Symbol("Cursor");
/** Set by the class's static block: the constructor as `openCursor` calls it. */
let construct: (c: OpenedCursor) => Cursor;

/**
 * A named, durable consumer position. Get one from `log.cursor(name)`.
 *
 * `position` is the next seq this consumer has not processed, as of the last `commit` or `reset`
 * issued: it moves when the call is made, before it resolves. What a crash keeps is at least the
 * last one that resolved (and at most the last one issued). Commits are group-committed: one
 * fdatasync at a time, and every commit issued while one runs is written by the next one, which
 * writes only the newest position.
 *
 * @example Many commits, few fdatasyncs
 * ```ts
 * import { Store } from "@khipu/log";
 * import { recordingPlatform, SimPlatform } from "@khipu/log/testing";
 * const rec = recordingPlatform(new SimPlatform());
 * const store = await Store.open("/data", { platform: rec });
 * const log = await store.log("orders");
 * for (let i = 0; i < 100; i++) await log.append(`order ${i}`);
 * await using cur = await log.cursor("billing");
 * rec.clear();
 * await Promise.all(Array.from({ length: 100 }, (_, seq) => cur.commit(seq)));
 * const syncs = rec.count("datasync", `${log.path}/cursors/billing.cursor`);
 * if (cur.position !== 100 || cur.lag !== 0 || syncs !== 1) throw new Error(`${syncs} fdatasyncs`);
 * await store.close();
 * ```
 */
export class Cursor {
  /** Its name. */
  readonly name: string;
  #host: CursorHost;
  #path: string;
  #file: PlatformFile;
  #lock: PlatformLock;
  #seed: number;
  #position: number;
  /** Generation of the slot the last completed write left: the next write goes one above. */
  #generation: number;
  /** Changes of position issued so far, and how many of them a completed write covered. */
  #issued = 0;
  #durable = 0;
  #waiters: Waiter[] = [];
  #flushing: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  /** Use `log.cursor(name)`. */
  private constructor(c: OpenedCursor, token: symbol) {
    if (token !== CONSTRUCT) {
      throw new InvalidArgumentError({
        message: "a Cursor comes from log.cursor(name); it has no public constructor",
      });
    }
    this.name = c.name;
    this.#host = c.host;
    this.#path = c.path;
    this.#file = c.file;
    this.#lock = c.lock;
    this.#seed = c.seed;
    this.#position = c.slot.position;
    this.#generation = c.slot.generation;
  }

  static {
    construct = (c) => new Cursor(c, CONSTRUCT);
  }

  /** Next seq this consumer has not yet processed. */
  get position(): number {
    return this.#position;
  }

  /** Records from `position` to `nextSeq` as this process sees it (seqs in gaps not counted). */
  get lag(): number {
    return lagOf(this.#host, this.#position);
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * "Processed through `seq`": moves `position` to `seq + 1`, durable when it resolves. Commits are
   * monotonic: a `seq` below `position - 1` is an `InvalidArgumentError` (use `reset` to move
   * back), `position - 1` itself changes nothing (it resolves once that position is durable), and
   * a `seq` the log does not have yet (`>= nextSeq`) is an `InvalidArgumentError`.
   *
   * @example
   * ```ts
   * import { InvalidArgumentError, Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim });
   * const log = await store.log("orders");
   * await log.appendBatch(["a", "b", "c"]);
   * await using cur = await log.cursor("billing");
   * await cur.commit(1); // records 0 and 1 are processed
   * const refused = await cur.commit(0).catch((e) => e);
   * if (!(refused instanceof InvalidArgumentError) || cur.position !== 2) throw new Error();
   * await store.close();
   * ```
   */
  commit(seq: number): Promise<void> {
    try {
      this.#assertOpen();
      wholeNumber(`cursor "${this.name}": commit(seq)`, seq, 0, Number.MAX_SAFE_INTEGER - 1);
      const nextSeq = this.#host.nextSeq();
      if (seq >= nextSeq) {
        throw new InvalidArgumentError({
          message: `cursor "${this.name}": commit(${seq}): no such record yet ` +
            `(the log's next seq is ${nextSeq})`,
          path: this.#path,
        });
      }
      if (seq + 1 < this.#position) {
        throw new InvalidArgumentError({
          message: `cursor "${this.name}": commit(${seq}) goes back: the cursor is at ` +
            `${this.#position} (commits are monotonic; reset(seq) moves a cursor back)`,
          path: this.#path,
        });
      }
      this.#move(seq + 1);
      return this.#durableNow();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Moves the cursor to `to` (a seq, or the first record at or after `{ time }`), durably: back
   * or forward, up to the log's `nextSeq`. `position` moves when the seq is known (at once for a
   * seq, once the time is looked up for `{ time }`).
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim });
   * const log = await store.log("orders");
   * await log.appendBatch(["a", "b", "c"]);
   * await log.sync(); // a cursor reads durable records only
   * await using cur = await log.cursor("billing");
   * await cur.commit(2);
   * await cur.reset(1); // process "b" and "c" again
   * if (cur.position !== 1 || (await cur.read().next()).value?.seq !== 1) throw new Error();
   * await store.close();
   * ```
   */
  async reset(to: number | { time: number }): Promise<void> {
    this.#assertOpen();
    let seq: number;
    if (typeof to === "object" && to !== null) {
      const o = checkOptions(`cursor "${this.name}": reset`, to, ["time"]);
      const time = wholeNumber(`cursor "${this.name}": reset({ time })`, o.time, 0, 2 ** 53 - 1);
      seq = await this.#host.seqAtTime(time);
      this.#assertOpen();
    } else {
      seq = wholeNumber(`cursor "${this.name}": reset(seq)`, to, 0, Number.MAX_SAFE_INTEGER);
      const nextSeq = this.#host.nextSeq();
      if (seq > nextSeq) {
        throw new InvalidArgumentError({
          message: `cursor "${this.name}": reset(${seq}) is past the log's next seq ${nextSeq}`,
          path: this.#path,
        });
      }
    }
    this.#move(seq);
    return await this.#durableNow();
  }

  /**
   * Records from `position` to the end of what the log holds now (committed only by default).
   * Rejects with `RecordsRemovedError` if retention removed records the cursor had not reached.
   */
  read(opts: CursorReadOptions = {}): RecordIterator {
    return this.#records(opts, false);
  }

  /** Records from `position`, waiting for new ones (committed only by default). */
  follow(opts: CursorReadOptions = {}): RecordIterator {
    return this.#records(opts, true);
  }

  /**
   * Waits for commits in flight, releases the lock and the file. Idempotent. A commit that fails
   * rejects its own promise; `close` does not throw for it.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Closes at the end of an `await using` scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #assertOpen(): void {
    if (this.#closing) throw new ClosedError({ what: `cursor "${this.name}"`, path: this.#path });
    if (this.#host.isClosed()) throw new ClosedError({ what: "log", path: this.#host.path });
  }

  #records(opts: CursorReadOptions, follow: boolean): RecordIterator {
    this.#assertOpen();
    const what = `cursor "${this.name}": ${follow ? "follow" : "read"} options`;
    const o = checkOptions<CursorReadOptions>(
      what,
      opts,
      follow ? ["signal", "committed"] : ["to", "signal", "committed"],
    );
    const committed = o.committed === undefined ? true : boolean(`${what}: committed`, o.committed);
    const read = { to: o.to, signal: o.signal, follow, committed };
    return this.#host.readFrom(this.#position, read, `cursor "${this.name}"`);
  }

  #move(position: number): void {
    if (position === this.#position) return;
    this.#position = position;
    this.#issued++;
  }

  /** Resolves once every change issued so far is durable; starts a write if none runs. */
  #durableNow(): Promise<void> {
    const upTo = this.#issued;
    if (this.#durable >= upTo) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ upTo, resolve, reject }));
    this.#flushing ??= this.#flush();
    return p;
  }

  /**
   * The group commit: writes the newest position to the slot after the last completed write's,
   * fdatasyncs, settles every waiter that write covered, and goes again while waiters remain.
   * A failed write keeps the generation, so the retry overwrites the same slot and the other one
   * still holds the last resolved commit.
   */
  async #flush(): Promise<void> {
    // Commits issued in the same turn as the one that started the write join it.
    await null;
    try {
      while (this.#waiters.length > 0) {
        const upTo = this.#issued;
        const slot = {
          generation: this.#generation + 1,
          position: this.#position,
          commitTime: Date.now(),
        };
        let failure: unknown = null;
        try {
          this.#file.writeAt(encodeCursorSlot(slot, this.#seed), cursorSlotOffset(slot.generation));
          await this.#file.datasync();
          this.#generation = slot.generation;
          this.#durable = upTo;
        } catch (err) {
          failure = err;
        }
        this.#waiters = this.#waiters.filter((w) => {
          if (w.upTo > upTo) return true;
          if (failure === null) w.resolve();
          else w.reject(failure);
          return false;
        });
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #shutdown(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    try {
      this.#file.close();
    } finally {
      this.#host.released?.(this);
      await this.#lock.release();
    }
  }
}

/**
 * Opens (creating at the log's first seq if missing) the cursor `name` and takes its lock:
 * `LockedError` while another holder, in this process or any other, has it open. A cursor file
 * that fails its checks is a `CorruptionError` (`deleteCursor` removes it).
 *
 * @example
 * ```ts
 * import { LockedError, Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/data", { platform: sim });
 * const log = await store.log("orders");
 * const cur = await log.cursor("billing");
 * const second = await log.cursor("billing").catch((e) => e);
 * await cur.close();
 * await store.close();
 * if (!(second instanceof LockedError) || !second.message.startsWith('cursor "billing"')) {
 *   throw new Error(String(second));
 * }
 * ```
 */
export async function openCursor(host: CursorHost, name: string): Promise<Cursor> {
  validateCursorName(name);
  assertHostOpen(host);
  const p = host.platform;
  const f = filesOf(host, name);
  await mkdirDurable(p, f.dir, dirModeFor(host.fileMode));
  const lock = await takeLock(host, name, f.lock);
  try {
    const seed = cursorSeed(host.logId, name);
    // Left by a creation that crashed before its rename; only the lock's holder creates.
    await unlinkIfPresent(p, f.temp);
    let file = await openIfPresent(p, f.file, "append");
    if (!file) {
      const first = { generation: 1, position: host.firstSeq(), commitTime: Date.now() };
      const bytes = encodeCursorFile(host.logId, first, seed);
      (await createFileDurable(p, f.temp, bytes, host.fileMode)).close();
      await renameDurable(p, f.temp, f.file);
      file = await p.open(f.file, "append", host.fileMode);
    }
    try {
      const slot = readSlot(file, host, name, seed);
      assertHostOpen(host);
      return construct({ host, name, path: f.file, file, lock, seed, slot });
    } catch (err) {
      file.close();
      throw err;
    }
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** The records between `position` and the host's `nextSeq`: seqs in gaps hold none. */
function lagOf(host: CursorHost, position: number): number {
  const end = host.nextSeq();
  return end - position - seqsInGaps(position, end, host.gaps());
}

/**
 * Every cursor of the log, any process's, sorted by name, without taking their locks (a slot
 * being written meanwhile leaves the other one to read).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/data", { platform: sim });
 * const log = await store.log("orders");
 * await log.appendBatch(["a", "b", "c"]);
 * await using billing = await log.cursor("billing");
 * await billing.commit(0);
 * await (await log.cursor("audit")).close();
 * const list = JSON.stringify(await log.cursors());
 * await store.close();
 * const want = '[{"name":"audit","position":0,"lag":3},{"name":"billing","position":1,"lag":2}]';
 * if (list !== want) throw new Error(list);
 * ```
 */
export async function listCursors(host: CursorHost): Promise<CursorInfo[]> {
  assertHostOpen(host);
  const dir = cursorsDir(host);
  let entries: string[];
  try {
    entries = await host.platform.readdir(dir);
  } catch (err) {
    if (errorCode(err) === "NOT_FOUND") return [];
    throw err;
  }
  const out: CursorInfo[] = [];
  for (const entry of entries) {
    if (!entry.endsWith(".cursor")) continue;
    const name = entry.slice(0, -".cursor".length);
    try {
      validateCursorName(name);
    } catch {
      continue; // no cursor of ours is called that
    }
    const file = await openIfPresent(host.platform, `${dir}/${entry}`, "read");
    if (!file) continue; // deleted since the readdir
    let slot: CursorSlot;
    try {
      slot = readSlot(file, host, name, cursorSeed(host.logId, name));
    } finally {
      file.close();
    }
    out.push({ name, position: slot.position, lag: lagOf(host, slot.position) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Deletes cursor `name` durably; `LockedError` while anyone holds it (this process included),
 * `NotFoundError` if there is none.
 *
 * @example
 * ```ts
 * import { NotFoundError, Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/data", { platform: sim });
 * const log = await store.log("orders");
 * await (await log.cursor("billing")).close();
 * await log.deleteCursor("billing");
 * const again = await log.deleteCursor("billing").catch((e) => e);
 * if ((await log.cursors()).length !== 0 || !(again instanceof NotFoundError)) throw again;
 * await store.close();
 * ```
 */
export async function deleteCursor(host: CursorHost, name: string): Promise<void> {
  validateCursorName(name);
  assertHostOpen(host);
  const p = host.platform;
  const f = filesOf(host, name);
  const missing = () =>
    new NotFoundError({ op: `deleteCursor(${JSON.stringify(name)})`, path: f.file });
  // Checked before the lock, whose file would otherwise create the cursors directory.
  if (!(await p.lstat(f.file))) throw missing();
  const lock = await takeLock(host, name, f.lock);
  try {
    try {
      await unlinkDurable(p, f.file);
    } catch (err) {
      throw errorCode(err) === "NOT_FOUND" ? missing() : err;
    }
    await unlinkIfPresent(p, f.temp);
  } finally {
    await lock.release();
  }
}

function assertHostOpen(host: CursorHost): void {
  if (host.isClosed()) throw new ClosedError({ what: "log", path: host.path });
}

/** The platform lock of cursor `name`, its `LockedError` saying which cursor is held. */
async function takeLock(host: CursorHost, name: string, path: string): Promise<PlatformLock> {
  try {
    return await host.platform.lock(path, host.fileMode);
  } catch (err) {
    if (!(err instanceof LockedError)) throw err;
    throw new LockedError({ path, holder: err.holder, what: `cursor ${JSON.stringify(name)}` });
  }
}

async function openIfPresent(
  p: Platform,
  path: string,
  how: "read" | "append",
): Promise<PlatformFile | null> {
  try {
    return await p.open(path, how);
  } catch (err) {
    if (errorCode(err) === "NOT_FOUND") return null;
    throw err;
  }
}

async function unlinkIfPresent(p: Platform, path: string): Promise<void> {
  try {
    await p.unlink(path);
  } catch (err) {
    if (errorCode(err) !== "NOT_FOUND") throw err;
  }
}

/** The slot `file` says the cursor is at; `CorruptionError` if the file fails its checks. */
function readSlot(file: PlatformFile, host: CursorHost, name: string, seed: number): CursorSlot {
  // One byte more than a cursor file has, so that a longer file is seen as one.
  const buf = new Uint8Array(CURSOR_FILE_BYTES + 1);
  const n = file.readAt(buf, 0);
  const r = decodeCursorFile(buf.subarray(0, n), host.logId, seed);
  if (r.ok) return r.slot;
  throw new CorruptionError({
    message: `cursor ${JSON.stringify(name)}: ${r.reason}; deleteCursor(${
      JSON.stringify(name)
    }) removes it`,
    path: file.path,
    offset: r.offset,
  });
}
