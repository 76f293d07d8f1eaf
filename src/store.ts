/**
 * A store: a directory holding named logs under one sync policy, owned by one writer at a time
 * (an exclusive lock that works across processes and runtimes).
 *
 * @example
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * await using store = await Store.open(dir, { syncPolicy: SyncPolicy.everyN(64) });
 * const events = await store.log("events");
 * const seq = await events.append(new Uint8Array([1, 2, 3]));
 * await store.sync(); // on disk now, whatever the policy
 * if (seq !== 0 || events.nextSeq !== 1) throw new Error(`seq ${seq}`);
 * ```
 * @module
 */
import {
  ClosedError,
  FileTypeError,
  InvalidArgumentError,
  NotFoundError,
  ReadOnlyError,
} from "./errors.ts";
import { type Log, openLog, openReadOnlyLog, withTreeProblems } from "./log.ts";
import { TREE_NODES_FILE } from "./merkle_tree.ts";
import { dirModeFor, mkdirDurable, renameDurable } from "./platform/durable.ts";
import { defaultPlatform } from "./platform/detect.ts";
import type { Platform, PlatformLock } from "./platform/types.ts";
import { isLogName, LOCK_FILE, validateLogName } from "./log_name.ts";
import {
  type LogOpenOptions,
  type ResolvedStoreOptions,
  resolveLogOptions,
  resolveOptions,
  type StoreOptions,
} from "./store_options.ts";
import { describeValue } from "./validate.ts";
import {
  checkVerifyOptions,
  type StoreVerifyReport,
  verifyLogs,
  type VerifyOptions,
} from "./verify.ts";

/** Finishes deletions a crash interrupted: their directories were already renamed away. */
async function removeDeleted(platform: Platform, dir: string): Promise<void> {
  const doomed = (await platform.readdir(dir)).filter((n) => n.startsWith(DELETED_PREFIX));
  for (const name of doomed) await platform.remove(`${dir}/${name}`);
  if (doomed.length > 0) await platform.syncDir(dir);
}

/** A log directory being deleted is renamed to this prefix first: no log name starts with '.'. */
const DELETED_PREFIX = ".deleted-";

/**
 * A directory of named logs with one writer. Open with {@linkcode Store.open}; close with
 * `close()` or `await using`.
 *
 * @example
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir, { syncPolicy: SyncPolicy.always() });
 * const log = await store.log("events");
 * await log.append("durable");
 * await store.close();
 * await using reopened = await Store.open(dir);
 * if ((await reopened.log("events")).nextSeq !== 1) throw new Error("the record is gone");
 * ```
 */
export class Store {
  /** The store directory. */
  readonly path: string;
  /** The options in force. */
  readonly options: ResolvedStoreOptions;
  #lock: PlatformLock | null;
  #logs = new Map<string, { name: string; log: Promise<Log | null> }>();
  #opened = new Set<Log>();
  #closing: Promise<void> | null = null;

  private constructor(path: string, options: ResolvedStoreOptions, lock: PlatformLock | null) {
    this.path = path;
    this.options = options;
    this.#lock = lock;
  }

  /**
   * Opens the store in `dir`, creating the directory (durably) if missing, and takes its lock.
   * Throws `LockedError` if another writer (any process, any runtime) has it open. With
   * `readOnly: true`, opens an existing store beside its writer instead: no lock, no writes
   * (`NotFoundError` if `dir` does not exist).
   *
   * @example
   * ```ts
   * import { LockedError, Store } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
   * const store = await Store.open(dir, { segmentBytes: 8 << 20 });
   * const second = await Store.open(dir).catch((e) => e); // a second writer is refused
   * await store.close();
   * if (!(second instanceof LockedError)) throw new Error("two writers");
   * ```
   */
  static async open(dir: string, options: StoreOptions = {}): Promise<Store> {
    if (typeof dir !== "string" || dir.length === 0) {
      throw new InvalidArgumentError({
        message: `Store.open needs a directory path, got ${describeValue(dir)}`,
      });
    }
    const given = resolveOptions(options);
    const resolved: ResolvedStoreOptions = {
      ...given,
      platform: given.platform ?? await defaultPlatform(),
    };
    const path = dir.length > 1 ? dir.replace(/[\\/]+$/, "") : dir;
    const existing = await resolved.platform.stat(path);
    if (existing && !existing.isDirectory) {
      throw new FileTypeError({
        path,
        found: "a file",
        expected: "a directory (a store is a directory)",
      });
    }
    if (resolved.readOnly) {
      if (!existing) throw new NotFoundError({ op: "Store.open (readOnly)", path });
      return new Store(path, resolved, null);
    }
    if (!existing) await mkdirDurable(resolved.platform, path, dirModeFor(resolved.fileMode));
    const lock = await resolved.platform.lock(`${path}/${LOCK_FILE}`, resolved.fileMode);
    try {
      await removeDeleted(resolved.platform, path);
    } catch (err) {
      await lock.release();
      throw err;
    }
    return new Store(path, resolved, lock);
  }

  /**
   * Opens (creating if needed) the log called `name`; the same name gives the same `Log`.
   * `options` override the store's defaults for this log (`syncPolicy`, `segmentBytes`,
   * `retention`, `segmentMaxAgeMs`, ...); asking again for an open log with other options is an
   * `InvalidArgumentError`.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const orders = await store.log("orders");
   * await orders.append("created #1");
   * if ((await store.log("orders")) !== orders) throw new Error("two Logs for one name");
   * await store.close();
   * ```
   *
   * @example One log's own options
   * ```ts
   * import { InvalidArgumentError, Store, SyncPolicy } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() }); // everyN(64)
   * const audit = await store.log("audit", {
   *   syncPolicy: SyncPolicy.always(),
   *   retention: { maxAgeMs: 90 * 86_400_000 },
   * });
   * const other = await store.log("audit", { syncPolicy: SyncPolicy.osManaged() }).catch((e) => e);
   * await store.close();
   * if (audit.options.syncPolicy.kind !== "always" || !(other instanceof InvalidArgumentError)) {
   *   throw new Error("per-log options");
   * }
   * ```
   */
  async log(name: string, options?: LogOpenOptions): Promise<Log> {
    // Read-only: an existing log only (`NotFoundError` if there is none); it never creates one.
    // No await before the entry is set: two calls in one turn share the same Log.
    this.#checkUsable(name);
    const opts = resolveLogOptions(this.options, options);
    // Keyed case-insensitively: on macOS and Windows "Events" and "events" are one directory, and
    // two writers on it would corrupt it.
    const key = name.toLowerCase();
    const entry = this.#logs.get(key);
    if (entry && entry.name !== name) {
      throw new InvalidArgumentError({
        message: `log name ${JSON.stringify(name)} differs only in case from open log ${
          JSON.stringify(entry.name)
        }`,
      });
    }
    const log = (entry?.log ?? Promise.resolve(null)).then(async (open) => {
      if (open && !open.closed) return open;
      // Closed by its owner: reopen once its close has finished, so two writers never overlap.
      if (open) {
        this.#opened.delete(open);
        await open.close().catch(() => {});
      }
      if (this.#closing) throw new ClosedError({ what: "store", path: this.path });
      return await this.#openLog(name, opts);
    });
    this.#logs.set(key, { name, log });
    log.catch(() => {
      if (this.#logs.get(key)?.log === log) this.#logs.delete(key);
    });
    const opened = await log;
    const differ = options === undefined ? [] : differingOptions(opened.options, opts);
    if (differ.length > 0) {
      throw new InvalidArgumentError({
        message: `log ${JSON.stringify(name)} is open with other ${differ.join(", ")}; ` +
          "close it to reopen it with these options",
        path: opened.path,
      });
    }
    return opened;
  }

  async #openLog(name: string, opts: ResolvedStoreOptions): Promise<Log> {
    const { platform } = this.options;
    const twin = (await platform.readdir(this.path)).find((n) =>
      n !== name && n.toLowerCase() === name.toLowerCase()
    );
    if (twin !== undefined) {
      throw new InvalidArgumentError({
        message: `log name ${JSON.stringify(name)} differs only in case from the log ${
          JSON.stringify(twin)
        } in this store`,
        path: `${this.path}/${twin}`,
      });
    }
    const open = this.options.readOnly ? openReadOnlyLog : openLog;
    const log = await open(name, `${this.path}/${name}`, opts);
    this.#opened.add(log);
    return log;
  }

  /** True if opened with `readOnly: true`. */
  get readOnly(): boolean {
    return this.options.readOnly;
  }

  /** Names of the logs opened through this store so far. */
  get openLogs(): string[] {
    return [...this.#logs.values()].map((e) => e.name);
  }

  /**
   * Names of the logs in the store directory, open or not, sorted.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * await store.log("orders");
   * await store.log("audit");
   * const names = await store.logs();
   * await store.close();
   * if (names.join() !== "audit,orders") throw new Error(names.join());
   * ```
   */
  async logs(): Promise<string[]> {
    if (this.#closing) throw new ClosedError({ what: "store", path: this.path });
    const { platform } = this.options;
    const names: string[] = [];
    for (const name of await platform.readdir(this.path)) {
      if (!isLogName(name)) continue;
      const st = await platform.lstat(`${this.path}/${name}`);
      if (st?.isDirectory) names.push(name);
    }
    return names.sort();
  }

  /**
   * Deletes the log `name` and all its records, durably: its directory is first renamed out of
   * the way (one atomic, fsynced step, after which the log no longer exists even if a crash
   * follows), then removed. Refused with `InvalidArgumentError` while the log is open in this
   * store (close it first); `NotFoundError` if there is no such log.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * const scratch = await store.log("scratch");
   * await scratch.append("temporary");
   * await scratch.close();
   * await store.deleteLog("scratch");
   * const left = await store.logs();
   * await store.close();
   * if (left.length !== 0) throw new Error(left.join());
   * ```
   */
  async deleteLog(name: string): Promise<void> {
    this.#checkUsable(name);
    if (this.options.readOnly) {
      throw new ReadOnlyError({ op: "deleteLog", path: `${this.path}/${name}` });
    }
    const key = name.toLowerCase();
    const prev = this.#logs.get(key)?.log ?? Promise.resolve(null);
    // Chained on the name's entry, so a store.log(name) made meanwhile waits for the outcome.
    const outcome = prev.catch(() => null).then(async (open) => {
      if (open && !open.closed) return open;
      if (open) {
        this.#opened.delete(open);
        await open.close().catch(() => {});
      }
      if (this.#closing) throw new ClosedError({ what: "store", path: this.path });
      await this.#removeLog(name);
      return null;
    });
    const current = outcome.catch(() => null);
    this.#logs.set(key, { name, log: current });
    current.then((open) => {
      if (!open && this.#logs.get(key)?.log === current) this.#logs.delete(key);
    });
    await outcome.then((open) => {
      if (open) {
        throw new InvalidArgumentError({
          message: `log ${JSON.stringify(name)} is open; close it before deleting it`,
          path: open.path,
        });
      }
    });
  }

  /** Throws unless the store is open and `name` is a valid log name. */
  #checkUsable(name: string): void {
    if (this.#closing) throw new ClosedError({ what: "store", path: this.path });
    validateLogName(name);
  }

  async #removeLog(name: string): Promise<void> {
    const { platform } = this.options;
    const dir = `${this.path}/${name}`;
    const st = await platform.lstat(dir);
    if (!st) throw new NotFoundError({ op: "deleteLog", path: dir });
    if (st.isSymlink || !st.isDirectory) {
      throw new FileTypeError({
        path: dir,
        found: st.isSymlink ? "a symbolic link" : "a file",
        expected: "a log directory",
      });
    }
    const doomed = `${this.path}/${DELETED_PREFIX}${name}-${crypto.randomUUID()}`;
    await renameDurable(platform, dir, doomed);
    await platform.remove(doomed);
    await platform.syncDir(this.path);
  }

  /**
   * Verifies the logs `logs` (default: every log of the store): reads every segment file, checks
   * every frame's checksum and seq, every seal and index entry, the newest segment's mark and the
   * chain between segments, and reports, per log, the records, segments and bytes found and every
   * problem (file, offset, seq, reason). It reads the log directories itself, so a log that cannot
   * be opened (`CorruptionError`) gets its report too. Never writes, takes no lock: in a read-only
   * store it runs beside a writer (the newest segment is read to its last complete batch; what
   * follows is not there yet, or a torn tail a crash left, never a problem). Streams: memory is
   * one 256 KiB scan buffer, whatever the segment sizes. `onProgress` is called every 256 KiB
   * and at each segment's end; aborting `signal` rejects with its reason. Rejects up front for a
   * name that is not a log (`NotFoundError`).
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
   * const writer = await Store.open(dir);
   * await (await writer.log("orders")).appendBatch(["#1", "#2"]);
   * await (await writer.log("audit")).append("login");
   * await writer.sync();
   * const reader = await Store.open(dir, { readOnly: true }); // beside the running writer
   * const seen = new Set<string>();
   * const report = await reader.verify({ onProgress: (p) => seen.add(p.log) });
   * await reader.close();
   * await writer.close();
   * const records = report.logs.map((l) => `${l.log} ${l.records}`).join(", ");
   * if (!report.ok || records !== "audit 1, orders 2" || seen.size !== 2) throw new Error(records);
   * ```
   */
  async verify(opts: VerifyOptions & { logs?: string[] } = {}): Promise<StoreVerifyReport> {
    if (this.#closing) throw new ClosedError({ what: "store", path: this.path });
    const o = checkVerifyOptions(opts, ["logs"]);
    if (o.logs !== undefined && !Array.isArray(o.logs)) {
      throw new InvalidArgumentError({
        message: `verify: logs must be an array of log names, got ${describeValue(o.logs)}`,
      });
    }
    const report = await verifyLogs(
      this.options.platform,
      this.path,
      o.logs ?? await this.logs(),
      o,
    );
    // A log's Merkle tree is checked against its records through the log (opened if need be).
    const logs = [];
    for (const r of report.logs) {
      const tree = await this.options.platform.stat(`${this.path}/${r.log}/${TREE_NODES_FILE}`);
      logs.push(tree ? await withTreeProblems(await this.log(r.log), r) : r);
    }
    return { ...report, ok: logs.every((l) => l.ok), logs };
  }

  /**
   * fdatasyncs every log that has records not yet on disk.
   *
   * @example
   * ```ts
   * import { Store, SyncPolicy } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
   * await (await store.log("events")).append("checkpointed");
   * await store.sync();
   * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
   * await using reopened = await Store.open("/data", { platform: afterCut });
   * if ((await reopened.log("events")).nextSeq !== 1) throw new Error("lost a synced record");
   * await store.close();
   * ```
   */
  async sync(): Promise<void> {
    if (this.#closing) throw new ClosedError({ what: "store", path: this.path });
    if (this.options.readOnly) throw new ReadOnlyError({ op: "sync", path: this.path });
    const logs = await Promise.all([...this.#logs.values()].map((e) => e.log));
    await Promise.all(logs.filter((l) => l?.dirty).map((l) => l!.sync()));
  }

  /**
   * Syncs and closes every log, then releases the lock. Idempotent. Throws the first failure after
   * releasing everything.
   *
   * @example
   * ```ts
   * import { Store, SyncPolicy } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
   * await (await store.log("events")).append("last words");
   * await store.close();
   * await store.close(); // idempotent
   * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
   * await using reopened = await Store.open("/data", { platform: afterCut });
   * if ((await reopened.log("events")).nextSeq !== 1) throw new Error("close() did not sync");
   * ```
   */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    // Logs already open start closing now, so an append later in this same turn is refused.
    const closing = [...this.#opened].map((l) => l.close());
    const results = await Promise.allSettled([
      ...closing,
      // A log whose open failed has nothing to close; its failure was the caller's to see.
      ...[...this.#logs.values()].map((e) => e.log.then((l) => l?.close(), () => {})),
    ]);
    await this.#lock?.release();
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** `await using store = await Store.open(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The names of the options two logs' settings differ in (the platform is always the store's). */
function differingOptions(a: ResolvedStoreOptions, b: ResolvedStoreOptions): string[] {
  const text = (v: unknown) => JSON.stringify(v, (_k, x) => (x === Infinity ? "Infinity" : x));
  return (Object.keys(a) as (keyof ResolvedStoreOptions)[])
    // A log's tree is fixed at its creation: leaving `integrity` out takes it as it is.
    .filter((k) => k !== "platform" && !(k === "integrity" && b.integrity === undefined))
    .filter((k) => text(a[k]) !== text(b[k]));
}
