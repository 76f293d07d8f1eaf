/**
 * A named log: a directory of segments, appended to under a {@linkcode SyncPolicy} with group
 * commit, read with async iterators, trimmed with `truncateBefore`.
 *
 * How an append travels: `append` encodes the frame into the active segment's buffer at once (so
 * sequence numbers follow call order) and schedules one flush for everything appended in the same
 * turn of the event loop. The flush is a single `writev`; then each append resolves as its policy
 * allows, or waits for the next fdatasync. One fdatasync runs at a time and covers every record
 * written before it started; appends that arrive meanwhile are written at once and wait for the
 * next one (group commit). fdatasync is asynchronous, so the event loop never blocks on it.
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
 * const seq = await log.append("hello"); // durable when this resolves
 * const texts: string[] = [];
 * for await (const r of log.read({ from: seq })) texts.push(new TextDecoder().decode(r.data));
 * await store.close();
 * if (texts.join() !== "hello") throw new Error(texts.join());
 * ```
 * @module
 */
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  NotFoundError,
  ReadOnlyError,
} from "./errors.ts";
import type { SignedCheckpoint } from "./checkpoint.ts";
import {
  catchUp,
  checkpointOf,
  type CheckpointOptions,
  consistencyOf,
  inclusionOf,
  type Integrity,
  openTree,
  openTreeReadOnly,
  verifyTreeAgainst,
} from "./log_integrity.ts";
import type { ConsistencyProof, InclusionProof } from "./merkle.ts";
import type { MerkleTree } from "./merkle_tree.ts";
import type { PlatformFile } from "./platform/types.ts";
import { ChangeSignal } from "./change_signal.ts";
import {
  type Cursor,
  type CursorHost,
  type CursorInfo,
  deleteCursor,
  listCursors,
  openCursor,
} from "./cursor.ts";
import { logIdHex } from "./format/header.ts";
import { LogTail } from "./log_tail.ts";
import { LogWriter } from "./log_writer.ts";
import { deleteSegmentsBefore } from "./retention.ts";
import { hasRetention, retentionCut } from "./retention_policy.ts";
import { backgroundInterval, type BackgroundTimer } from "./unref_timer.ts";
import { describeValue, options as checkOptions, recordBytes, wholeNumber } from "./validate.ts";
import { type OpenReport, recoverLog } from "./recovery.ts";
import { emptyReport } from "./open_context.ts";
import { type Gap, gapsBetween } from "./gaps.ts";
import { type ReadOptions, readRecords, type ReadSource, type RecordIterator } from "./reader.ts";
import type { Segment } from "./segment.ts";
import { endSeqOf, type SegmentView } from "./segment_view.ts";
import type { ResolvedStoreOptions } from "./store_options.ts";
import { seqAtTime } from "./time_seek.ts";
import {
  checkVerifyOptions,
  verifyLogDir,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyReport,
} from "./verify.ts";

/** Options of `log.follow()`. */
export interface FollowOptions {
  /** First sequence number to yield (default: the next one appended). Not with `fromTime`. */
  from?: number;
  /** Start at the first record with a timestamp `>= fromTime` (see `ReadOptions.fromTime`). */
  fromTime?: number;
  /** Ends the iteration (cleanly) when aborted. */
  signal?: AbortSignal;
  /** Only records durable on disk (see `ReadOptions.committed`). */
  committed?: boolean;
}

/** One segment of a log, as `log.segments()` lists it. */
export interface SegmentInfo {
  /** Its file. */
  path: string;
  /** Seq of its first record (its file name). */
  firstSeq: number;
  /** One past its last record (for the active segment: the log's `nextSeq`). */
  endSeq: number;
  /** Its file's size (the active one's preallocated zeros included). */
  bytes: number;
  /** True once sealed: it never changes again. */
  sealed: boolean;
  /** Its first record's timestamp; null if it holds none, or unknown (a version-1 segment). */
  firstTimestamp: number | null;
  /** Its last record's timestamp; null if it holds none, or unknown (a version-1 segment). */
  lastTimestamp: number | null;
}

/** Settings a log runs with: the store's options, overridden by the log's own. */
export type LogOptions = ResolvedStoreOptions;

/** What a log reads and (in a writer's store) writes through. */
type Backend =
  | {
    kind: "writer";
    segments: SegmentView[];
    active: Segment;
    report: OpenReport;
    tree: MerkleTree | null;
  }
  | { kind: "tail"; tail: LogTail; tree: MerkleTree | null };

type LogArgs = [string, string, LogOptions, Backend];
let construct: (...args: LogArgs) => Log;
let constructing = false;
let treeCheck: (log: Log, report: VerifyReport) => Promise<VerifyReport>;

/**
 * Adds to `report` (a verify of `log`'s directory) what recomputing its Merkle tree finds: how
 * `store.verify()` checks a log's tree without reading its segments twice. A log without a tree
 * gets `report` back.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { withTreeProblems } from "./log.ts";
 * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
 * const audit = await store.log("audit", { integrity: "merkle" });
 * await audit.append("a");
 * const report = await withTreeProblems(audit, await audit.verify());
 * await store.close();
 * if (!report.ok) throw new Error(JSON.stringify(report.problems));
 * ```
 */
export function withTreeProblems(log: Log, report: VerifyReport): Promise<VerifyReport> {
  return treeCheck(log, report);
}

/**
 * Opens (creating if needed) the log in directory `path` and recovers it. Only a `Store` calls
 * this, holding the store's lock: it is not part of the package's entry points.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-"))); // takes the lock
 * const log = await store.log("events"); // calls openLog under it
 * await store.close();
 * if (!log.closed) throw new Error("closed with its store");
 * ```
 */
export async function openLog(name: string, path: string, opts: LogOptions): Promise<Log> {
  const r = await recoverLog(opts.platform, path, opts);
  let tree: MerkleTree | null;
  try {
    tree = await openTree(opts.platform, path, opts.integrity, r.active.nextSeq, opts.fileMode);
  } catch (err) {
    r.active.close();
    throw err;
  }
  const log = construct(name, path, { ...opts, integrity: tree ? "merkle" : "none" }, {
    kind: "writer",
    segments: r.segments,
    active: r.active,
    report: r.report,
    tree,
  });
  if (tree) {
    try {
      await catchUp(tree, log.read({ from: tree.size }), log.nextSeq);
    } catch (err) {
      await log.close().catch(() => {});
      throw err;
    }
  }
  return log;
}

/**
 * Opens the existing log in directory `path` read-only: no lock, nothing written, the writer (if
 * any) in another process. Only a read-only `Store` calls this.
 *
 * @example
 * ```ts
 * import { ReadOnlyError, Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const writer = await Store.open(dir);
 * await (await writer.log("orders")).append("#1");
 * const reader = await Store.open(dir, { readOnly: true });
 * const orders = await reader.log("orders"); // calls openReadOnlyLog
 * const refused = await orders.append("#2").catch((e) => e);
 * await reader.close();
 * await writer.close();
 * if (!(refused instanceof ReadOnlyError) || orders.nextSeq !== 1) throw new Error("read-only");
 * ```
 */
export async function openReadOnlyLog(
  name: string,
  path: string,
  opts: LogOptions,
): Promise<Log> {
  const tail = await LogTail.open(opts.platform, path);
  let tree: MerkleTree | null;
  try {
    tree = await openTreeReadOnly(opts.platform, path);
  } catch (err) {
    tail.close();
    throw err;
  }
  return construct(name, path, opts, { kind: "tail", tail, tree });
}

/**
 * An open log. Get one from `store.log(name)`.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
 * const log = await store.log("audit");
 * const [a, b] = await log.appendBatch(["one", "two"]);
 * await log.sync();
 * await store.close();
 * if (a !== 0 || b !== 1 || log.firstSeq !== 0 || log.nextSeq !== 2) throw new Error(`${a} ${b}`);
 * ```
 */
export class Log {
  /** The log's name in its store. */
  readonly name: string;
  /** The log's directory. */
  readonly path: string;
  /** What opening the log found and repaired (nothing, in a read-only store). */
  readonly openReport: OpenReport;
  /** True if this log is from a store opened `readOnly`: it reads, follows and keeps cursors. */
  readonly readOnly: boolean;
  /** The options in force: the store's, overridden by the ones given to `store.log(name, ...)`. */
  readonly options: LogOptions;
  #opts: LogOptions;
  #writer: LogWriter | null;
  #tree: MerkleTree | null = null;
  #treeCatchUp: Promise<void> = Promise.resolve();
  #tail: LogTail | null;
  #segments: readonly SegmentView[];
  #cursors = new Set<Cursor>();
  #cursorHost: CursorHost;
  #closing: Promise<void> | null = null;
  #closed = false;
  #changed = new ChangeSignal();
  #retention: Promise<unknown> = Promise.resolve();
  /** A background retention pass queued or running (they coalesce). */
  #retaining = false;
  #retentionTimer: BackgroundTimer | null = null;
  #readerFiles = new Set<PlatformFile>();
  #source: ReadSource;

  static {
    treeCheck = (log, report) => log.#tree ? log.#verifyTree(report) : Promise.resolve(report);
    construct = (...args) => {
      constructing = true;
      try {
        return new Log(...args);
      } finally {
        constructing = false;
      }
    };
  }

  private constructor(name: string, path: string, opts: LogOptions, backend: Backend) {
    // Only openLog makes logs: a Log must never exist without the store lock held for it.
    if (!constructing) {
      throw new InvalidArgumentError({
        message: "a Log comes from store.log(name); it has no public constructor",
      });
    }
    this.name = name;
    this.path = path;
    this.#opts = opts;
    this.options = opts;
    if (backend.kind === "writer") {
      const { segments, active } = backend;
      this.#writer = new LogWriter(
        path,
        opts,
        segments,
        active,
        () => this.#changed.notify(),
        () => this.#retainInBackground(),
        backend.tree,
      );
      this.#tree = backend.tree;
      this.#tail = null;
      this.#segments = this.#writer.segments;
      this.openReport = backend.report;
    } else {
      this.#writer = null;
      this.#tail = backend.tail;
      this.#tree = backend.tree;
      this.#segments = backend.tail.segments;
      // A read-only log repairs nothing.
      this.openReport = { ...emptyReport(), segments: backend.tail.segments.length };
    }
    this.readOnly = this.#tail !== null;
    const tail = this.#tail;
    const writer = this.#writer;
    const visibleEnd = tail
      ? (committed: boolean) => committed ? tail.committedEnd : tail.nextSeq
      : (committed: boolean) => committed ? writer!.durableEnd : writer!.ackedEnd;
    this.#source = {
      path,
      platform: opts.platform,
      segments: () => this.#segments,
      visibleEnd,
      seqAtTime: async (time) => {
        for (let attempt = 0;; attempt++) {
          try {
            return await seqAtTime(opts.platform, this.#segments, time, visibleEnd(false));
          } catch (err) {
            // Retention deleted a segment it chose: choose again among the ones left.
            if (!(err instanceof NotFoundError) || attempt === 3) throw err;
            await tail?.refresh();
          }
        }
      },
      failure: () => tail?.failure ?? null,
      isClosed: () => this.#closed,
      changed: () => tail ? tail.changed() : this.#changed.next(),
      ...(tail ? { catchUp: () => tail.refresh() } : {}),
      opened: (file) => {
        if (this.#closed) file.close();
        else this.#readerFiles.add(file);
      },
      released: (file) => this.#readerFiles.delete(file),
    };
    this.#cursorHost = {
      path,
      platform: opts.platform,
      get logId() {
        return writer ? writer.logId : tail!.logId;
      },
      fileMode: opts.fileMode ?? 0o644,
      firstSeq: () => this.firstSeq,
      nextSeq: () => this.nextSeq,
      gaps: () => this.gaps,
      readFrom: (from, o, who) => {
        if (this.#closed) throw new ClosedError({ what: "log", path });
        return readRecords(this.#source, { ...o, from }, { who });
      },
      seqAtTime: (time) => this.#source.seqAtTime(time),
      isClosed: () => this.closed,
      released: (c) => this.#cursors.delete(c),
    };
    if (writer && (hasRetention(opts.retention) || opts.segmentMaxAgeMs !== Infinity)) {
      this.#retentionTimer = backgroundInterval(
        () => this.#onRetentionTimer(),
        retentionPeriod(opts),
      );
    }
  }

  /**
   * The log's identity: 128 random bits chosen when the log was created, as 32 hex digits. Every
   * segment header holds it and every frame's checksum covers it, so that a segment or a frame of
   * another log never decodes in this one. Stable for the log's life (a deleted and recreated
   * log gets a new one); use it to tell records of this log from another's, e.g. in message ids.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim });
   * const id = (await store.log("orders")).id;
   * await store.close();
   * const again = await Store.open("/data", { platform: sim });
   * if ((await again.log("orders")).id !== id || !/^[0-9a-f]{32}$/.test(id)) throw new Error(id);
   * await again.close();
   * ```
   */
  get id(): string {
    return logIdHex(this.#cursorHost.logId);
  }

  /** Sequence number of the oldest record still in the log (equals `nextSeq` when empty). */
  get firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? this.nextSeq;
  }

  /**
   * Sequence number the next append will get; in a read-only store, one past the last record
   * the writer has written whole, as this process last saw.
   */
  get nextSeq(): number {
    return this.#writer ? this.#writer.nextSeq : this.#tail!.nextSeq;
  }

  /**
   * Bytes of the log's segment files on disk: sealed segments whole, and the active one as large
   * as it is, preallocated zeros included (what the files take, not just what records hold).
   */
  get byteSize(): number {
    let n = 0;
    for (const s of this.#segments) n += s.kind === "sealed" ? s.bytes : s.writer.diskBytes;
    return n;
  }

  /** Number of segment files. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * The log's segments now, oldest first: each one's file, seq range, size and time range.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform(), segmentBytes: 4096 });
   * const log = await store.log("events");
   * for (let i = 0; i < 5; i++) await log.append(new Uint8Array(1000)); // 3 to a 4 KiB segment
   * const [first, active] = log.segments();
   * await store.close();
   * if (!first.sealed || first.endSeq !== 3 || active.sealed || active.endSeq !== 5) {
   *   throw new Error(JSON.stringify([first, active]));
   * }
   * ```
   */
  segments(): SegmentInfo[] {
    return this.#segments.map((s): SegmentInfo => {
      const base = { path: s.path, firstSeq: s.firstSeq };
      if (s.kind === "sealed") {
        // A version-1 seal records the sealing time, and no first timestamp.
        const known = s.codec.version === 2;
        return {
          ...base,
          endSeq: s.endSeq,
          bytes: s.bytes,
          sealed: true,
          firstTimestamp: known ? s.firstTimestamp : null,
          lastTimestamp: known ? s.lastTimestamp : null,
        };
      }
      const endSeq = endSeqOf(s) ?? this.nextSeq;
      const held = endSeq > s.firstSeq;
      return {
        ...base,
        endSeq,
        bytes: s.writer.diskBytes,
        sealed: s.writer.sealed,
        firstTimestamp: held ? s.writer.firstTimestamp : null,
        lastTimestamp: held ? s.writer.lastTimestamp : null,
      };
    });
  }

  /**
   * Seq ranges `[from, to)` between the log's segments that repair set aside (declared on disk,
   * never reused): readers pass over them, cursor lag does not count them.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const log = await store.log("events");
   * await log.append("a healthy log has no gap");
   * const gaps = log.gaps;
   * await store.close();
   * if (gaps.length !== 0) throw new Error(JSON.stringify(gaps));
   * ```
   */
  get gaps(): readonly Gap[] {
    return gapsBetween(this.#segments);
  }

  /**
   * Reads every segment of the log as it is on disk, up to the end this log sees, and checks every
   * frame, seal, index entry and mark and the chain between segments: see `store.verify()`. Never
   * writes, takes no lock; works in a read-only store beside a writer.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const log = await store.log("events");
   * await log.appendBatch(["a", "b", "c"]);
   * const report = await log.verify();
   * await store.close();
   * if (!report.ok || report.records !== 3 || report.nextSeq !== 3) throw new Error("damaged?");
   * ```
   */
  verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    try {
      if (this.closed) throw new ClosedError({ what: "log", path: this.path });
      const o = checkVerifyOptions(opts);
      const report = verifyLogDir(this.#opts.platform, this.path, this.name, o, this.nextSeq);
      return this.#tree ? report.then((r) => this.#verifyTree(r)) : report;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Adds what recomputing the tree from the records finds to a verify report. */
  async #verifyTree(report: VerifyReport): Promise<VerifyReport> {
    let found: VerifyProblem[];
    try {
      const tree = await this.#readyTree("verify");
      found = await verifyTreeAgainst(tree, this.read({ from: this.firstSeq }));
    } catch (err) {
      // A damaged frame stops the read; the segment checks have reported it.
      if (err instanceof CorruptionError && !report.ok) return report;
      throw err;
    }
    if (found.length === 0) return report;
    return { ...report, ok: false, problems: [...report.problems, ...found] };
  }

  /** `"merkle"` if the log keeps a Merkle tree (and this store writes it), else `"none"`. */
  get integrity(): Integrity {
    return this.#tree ? "merkle" : "none";
  }

  /**
   * Signs a C2SP checkpoint of every record appended before the call, once they are durable (a
   * crash can never take back what a signed checkpoint covers).
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { verifyCheckpoint } from "@khipu/log/integrity";
   * import { generateKeyPairSync } from "node:crypto";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * const audit = await store.log("audit", { integrity: "merkle" });
   * await audit.appendBatch(["a", "b"]);
   * const { privateKey, publicKey } = generateKeyPairSync("ed25519");
   * const cp = await audit.checkpoint({ origin: "example.com/audit", sign: privateKey });
   * await store.close();
   * if (verifyCheckpoint(cp.text, publicKey)?.size !== 2) throw new Error(cp.text);
   * ```
   */
  async checkpoint(opts: CheckpointOptions): Promise<SignedCheckpoint> {
    const o = checkOptions("checkpoint options", opts, ["origin", "sign", "name"]);
    const tree = await this.#readyTree("checkpoint");
    let size = tree.size; // a reader's tree holds the committed records only
    if (!this.readOnly) {
      const writer = this.#writable("checkpoint");
      size = writer.nextSeq;
      await writer.syncThrough(size);
    }
    return checkpointOf(tree, size, o as CheckpointOptions);
  }

  /**
   * The audit path of the record `seq` in the tree of `size` records (a checkpoint's size):
   * check it with `verifyInclusion` from `@khipu/log/integrity`. `RecordsRemovedError` if
   * retention removed the record.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { leafHashOf, verifyInclusion } from "@khipu/log/integrity";
   * import { generateKeyPairSync } from "node:crypto";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * const audit = await store.log("audit", { integrity: "merkle" });
   * await audit.appendBatch(["a", "b", "c"]);
   * const { privateKey } = generateKeyPairSync("ed25519");
   * const cp = await audit.checkpoint({ origin: "o", sign: privateKey });
   * const proof = await audit.proveInclusion(1, cp.size);
   * let record;
   * for await (const r of audit.read({ from: 1 })) { record = r; break; }
   * await store.close();
   * if (!verifyInclusion(leafHashOf(record!), proof, cp.root)) throw new Error("inclusion");
   * ```
   */
  async proveInclusion(seq: number, size: number): Promise<InclusionProof> {
    return inclusionOf(await this.#readyTree("proveInclusion"), seq, size, this.firstSeq);
  }

  /**
   * The proof that the tree of `oldSize` records is a prefix of the one of `newSize`: check it
   * with `verifyConsistency` from `@khipu/log/integrity` and two checkpoints' roots.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { verifyConsistency } from "@khipu/log/integrity";
   * import { generateKeyPairSync } from "node:crypto";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * const audit = await store.log("audit", { integrity: "merkle" });
   * const { privateKey } = generateKeyPairSync("ed25519");
   * await audit.append("a");
   * const old = await audit.checkpoint({ origin: "o", sign: privateKey });
   * await audit.appendBatch(["b", "c"]);
   * const now = await audit.checkpoint({ origin: "o", sign: privateKey });
   * const proof = await audit.proveConsistency(old.size, now.size);
   * await store.close();
   * if (!verifyConsistency(old.root, now.root, proof)) throw new Error("consistency");
   * ```
   */
  async proveConsistency(oldSize: number, newSize: number): Promise<ConsistencyProof> {
    return consistencyOf(await this.#readyTree("proveConsistency"), oldSize, newSize);
  }

  /** The tree, in a read-only store first extended with the records committed since. */
  async #readyTree(op: string): Promise<MerkleTree> {
    if (this.closed) throw new ClosedError({ what: "log", path: this.path });
    const tree = this.#tree;
    if (!tree) {
      throw new InvalidArgumentError({
        message: `${op} needs a log created with integrity "merkle"`,
        path: this.path,
      });
    }
    if (this.#tail) {
      // One catch-up at a time: two would append the same leaves twice.
      const run = this.#treeCatchUp.then(() =>
        catchUp(tree, this.read({ from: tree.size, committed: true }), null)
      );
      this.#treeCatchUp = run.catch(() => {});
      await run;
    }
    return tree;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed || this.#closing !== null;
  }

  /** True if appended records are not yet covered by an fdatasync. */
  get dirty(): boolean {
    return this.#writer !== null && this.#writer.nextSeq > this.#writer.durableEnd;
  }

  /**
   * Appends one record (bytes, or a string stored as UTF-8). Resolves with its sequence number once
   * the sync policy is satisfied; it is in the OS page cache at the latest by then.
   *
   * @example
   * ```ts
   * import { type Log, Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * async function audit(log: Log, event: object): Promise<number> {
   *   return await log.append(JSON.stringify(event));
   * }
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const seq = await audit(await store.log("audit"), { user: "ana", action: "login" });
   * await store.close();
   * if (seq !== 0) throw new Error(`seq ${seq}`);
   * ```
   */
  append(data: Uint8Array | string): Promise<number> {
    try {
      const writer = this.#writable("append");
      const payload = recordBytes(data, this.#opts.maxRecordBytes, this.path);
      writer.assertSeqsLeft(1);
      const seq = writer.encode([payload], Date.now());
      return writer.wait(seq + 1, 1, seq);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Appends several records atomically: after a crash of any kind, either all of them are in the
   * log or none is, so a retry never duplicates part of a batch. One write, at most one fdatasync
   * wait, one segment (the log rolls over before a batch that would not fit). Every record is
   * checked before any is written. Resolves with their sequence numbers.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const log = await store.log("events");
   * await log.append("first");
   * const seqs = await log.appendBatch(["a", "b", new Uint8Array([1, 2])]);
   * await store.close();
   * if (seqs.join() !== "1,2,3") throw new Error(seqs.join());
   * ```
   */
  appendBatch(items: readonly (Uint8Array | string)[]): Promise<number[]> {
    try {
      const writer = this.#writable("appendBatch");
      if (!Array.isArray(items)) {
        throw new InvalidArgumentError({
          message: `appendBatch takes an array of Uint8Array or string records, got ${
            describeValue(items)
          }`,
          path: this.path,
        });
      }
      const payloads = items.map((d) => recordBytes(d, this.#opts.maxRecordBytes, this.path));
      if (payloads.length === 0) return Promise.resolve([]);
      writer.assertSeqsLeft(payloads.length);
      const first = writer.encode(payloads, Date.now());
      const seqs = payloads.map((_, i) => first + i);
      return writer.wait(first + seqs.length, seqs.length, seqs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Resolves once every record appended before the call is on disk (fdatasync), whatever the
   * policy. Concurrent calls share fdatasyncs.
   *
   * @example
   * ```ts
   * import { Store, SyncPolicy } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
   * const log = await store.log("events");
   * await log.append("checkpointed");
   * await log.sync();
   * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
   * await using reopened = await Store.open("/data", { platform: afterCut });
   * if ((await reopened.log("events")).nextSeq !== 1) throw new Error("lost a synced record");
   * await store.close();
   * ```
   */
  sync(): Promise<void> {
    try {
      const writer = this.#writable("sync");
      return writer.syncThrough(writer.nextSeq);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Iterates records from `from` (default: the first). Sees every record flushed before the call;
   * with `follow: true` keeps yielding new ones until `signal` aborts or the log closes. Each
   * record's checksum is verified; damage throws `CorruptionError`.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const log = await store.log("events");
   * await log.appendBatch(["a", "b", "c"]);
   * const seen: string[] = [];
   * for await (const { seq, data } of log.read({ from: 1 })) {
   *   seen.push(`${seq}:${new TextDecoder().decode(data)}`);
   * }
   * await store.close();
   * if (seen.join() !== "1:b,2:c") throw new Error(seen.join());
   * ```
   */
  read(opts: ReadOptions = {}): RecordIterator {
    if (this.#closed) throw new ClosedError({ what: "log", path: this.path });
    return readRecords(this.#source, opts);
  }

  /**
   * Tails the log from `from` (default: the next record appended), yielding records as they are
   * written, until `signal` aborts or the log closes. Same as `read({ from, follow: true, signal })`.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const log = await store.log("events");
   * await log.append("before the follower");
   * const stop = new AbortController();
   * const seen: number[] = [];
   * const watching = (async () => {
   *   for await (const r of log.follow({ signal: stop.signal })) {
   *     if (seen.push(r.seq) === 2) stop.abort();
   *   }
   * })();
   * await log.appendBatch(["a", "b"]);
   * await watching;
   * await store.close();
   * if (seen.join() !== "1,2") throw new Error(seen.join());
   * ```
   */
  follow(opts: FollowOptions = {}): RecordIterator {
    const o = checkOptions("follow options", opts, ["from", "fromTime", "signal", "committed"]);
    const from = o.fromTime === undefined ? o.from ?? this.nextSeq : o.from;
    return this.read({ ...o, from, follow: true });
  }

  /**
   * Retention: deletes, oldest first, every sealed segment whose records all lie below `seq`. The
   * active segment is never deleted, so `firstSeq` may stay below `seq`. Each deletion is made
   * durable (directory fsync) before the next, so a crash leaves a contiguous suffix of segments.
   *
   * @example
   * ```ts
   * import { type Log, Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * async function keepLast(log: Log, n: number) {
   *   await log.truncateBefore(Math.max(0, log.nextSeq - n));
   * }
   * const store = await Store.open("/data", { platform: new SimPlatform(), segmentBytes: 4096 });
   * const log = await store.log("events");
   * for (let i = 0; i < 20; i++) await log.append(new Uint8Array(1000)); // 3 to a 4 KiB segment
   * await keepLast(log, 5);
   * await store.close();
   * if (log.firstSeq === 0 || log.firstSeq > 15) throw new Error(`firstSeq ${log.firstSeq}`);
   * ```
   */
  truncateBefore(seq: number): Promise<void> {
    let writer: LogWriter;
    try {
      writer = this.#writable("truncateBefore");
      wholeNumber("truncateBefore(seq)", seq, 0, Number.MAX_SAFE_INTEGER);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#retention.then(async () => {
      await deleteSegmentsBefore(this.#opts.platform, seq, writer);
    });
    this.#retention = run.catch(() => {});
    return run;
  }

  /**
   * Seals the active segment now and starts the next one (nothing to do if it is empty), so that
   * retention can delete its records once they are past a limit. Resolves once the seal is on
   * disk. `segmentMaxAgeMs` does this on a timer.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform() });
   * const log = await store.log("audit");
   * await log.append("the only record of the day");
   * await log.roll();
   * const segments = log.segmentCount;
   * await store.close();
   * if (segments !== 2) throw new Error(`${segments} segments`);
   * ```
   */
  roll(): Promise<void> {
    try {
      return this.#writable("roll").roll();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Runs retention now (it also runs on a background timer and at each rollover): deletes,
   * oldest first and durably, every sealed segment past one of the log's `retention` limits.
   * Resolves with what it removed and the log's first seq after it.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const store = await Store.open("/data", { platform: new SimPlatform(), segmentBytes: 4096 });
   * const log = await store.log("events", { retention: { maxRecords: 5 } });
   * for (let i = 0; i < 20; i++) await log.append(new Uint8Array(1000)); // 3 to a segment
   * const r = await log.enforceRetention();
   * await store.close();
   * if (r.firstSeq !== log.firstSeq || log.nextSeq - r.firstSeq < 5 || r.firstSeq < 12) {
   *   throw new Error(JSON.stringify(r));
   * }
   * ```
   */
  enforceRetention(): Promise<RetentionResult> {
    let writer: LogWriter;
    try {
      writer = this.#writable("enforceRetention");
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#retention.then(() => this.#retainOnce(writer));
    this.#retention = run.catch(() => {});
    return run;
  }

  async #retainOnce(writer: LogWriter): Promise<RetentionResult> {
    const limits = this.#opts.retention;
    const firstBefore = this.firstSeq;
    let removedSegments = 0;
    let unreadable: unknown = null;
    if (hasRetention(limits)) {
      let consumed: number | null = null;
      if (limits.keepUnconsumed) {
        try {
          consumed = lowestPosition(await listCursors(this.#cursorHost));
        } catch (err) {
          // A cursor that cannot be read holds back every age and count cut (it might be behind
          // any of them), but never the size cap; the pass then reports why.
          unreadable = err;
          consumed = -Infinity;
        }
      }
      let liveBytes = 0;
      for (const s of writer.segments) if (s.kind === "live") liveBytes += s.writer.diskBytes;
      const cut = retentionCut(writer.segments, liveBytes, limits, {
        now: Date.now(),
        nextSeq: writer.nextSeq,
        consumed,
      });
      removedSegments = await deleteSegmentsBefore(this.#opts.platform, cut, writer);
    }
    if (unreadable !== null) throw unreadable;
    return {
      removedSegments,
      removedRecords: this.firstSeq - firstBefore,
      firstSeq: this.firstSeq,
    };
  }

  /** A retention pass from the timer or a rollover: one at a time, its failure left to the next. */
  #retainInBackground(): void {
    if (this.#retaining || this.closed || !hasRetention(this.#opts.retention)) return;
    this.#retaining = true;
    this.enforceRetention().catch(() => {}).finally(() => (this.#retaining = false));
  }

  #onRetentionTimer(): void {
    const writer = this.#writer;
    if (!writer || this.closed || writer.poison) return;
    const since = writer.activeSince;
    if (since !== null && Date.now() - since >= this.#opts.segmentMaxAgeMs) {
      // The rollover runs a retention pass when the seal is on disk.
      writer.roll().catch(() => {});
    } else this.#retainInBackground();
  }

  /**
   * Flushes and fdatasyncs everything, then releases every file descriptor and timer. Idempotent.
   * Throws if that final fdatasync fails (the resources are released anyway).
   *
   * @example
   * ```ts
   * import { Store, SyncPolicy } from "@khipu/log";
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const store = await Store.open("/data", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
   * const log = await store.log("events");
   * await log.append("x");
   * await log.close();
   * await log.close(); // idempotent
   * if (sim.openFileCount !== 0) throw new Error("left a file open");
   * const afterCut = sim.crash("none"); // a power cut: the record was fdatasynced by close()
   * await using reopened = await Store.open("/data", { platform: afterCut });
   * if ((await reopened.log("events")).nextSeq !== 1) throw new Error("close() did not sync");
   * await store.close();
   * ```
   */
  close(): Promise<void> {
    if (!this.#closing) this.#closing = this.#shutdown();
    return this.#closing;
  }

  /** `await using log = await store.log(name)` closes the log at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(): Promise<void> {
    let failure: unknown = null;
    this.#retentionTimer?.clear();
    const cursors = await Promise.allSettled([...this.#cursors].map((c) => c.close()));
    const writer = this.#writer;
    if (writer && !writer.poison) {
      try {
        await writer.syncThrough(writer.nextSeq);
      } catch (err) {
        failure = err;
      }
    }
    await this.#retention;
    await writer?.close(new ClosedError({ what: "log", path: this.path }));
    this.#tail?.close();
    if (this.#tail) this.#tree?.close(); // a writer's tree closes with its writer
    failure ??= cursors.find((r) => r.status === "rejected")?.reason ?? null;
    this.#closed = true;
    for (const f of this.#readerFiles) f.close();
    this.#readerFiles.clear();
    this.#changed.notify();
    if (failure) throw failure;
  }

  /**
   * Opens (creating it at `firstSeq` if missing) the consumer position called `name`, durable on
   * disk and locked to one holder at a time across processes (`LockedError` for a second). Works
   * in a read-only store too: cursor state needs no writer's lock. The log closes its cursors
   * when it closes.
   *
   * @example
   * ```ts
   * import { Store, SyncPolicy } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
   * const store = await Store.open(dir, { syncPolicy: SyncPolicy.always() });
   * const orders = await store.log("orders");
   * await orders.appendBatch(["#1", "#2", "#3"]);
   * const billing = await orders.cursor("billing");
   * for await (const r of billing.read()) await billing.commit(r.seq); // durable when it resolves
   * await billing.close();
   * const again = await orders.cursor("billing");
   * const position = again.position;
   * await store.close();
   * if (position !== 3) throw new Error(`position ${position}`);
   * ```
   */
  cursor(name: string): Promise<Cursor> {
    if (this.closed) return Promise.reject(new ClosedError({ what: "log", path: this.path }));
    return openCursor(this.#cursorHost, name).then((c) => {
      if (this.closed) {
        return c.close().then(() => {
          throw new ClosedError({ what: "log", path: this.path });
        });
      }
      this.#cursors.add(c);
      return c;
    });
  }

  /**
   * Every cursor of the log (whoever holds it, in any process), with its position and its lag
   * behind `nextSeq`, sorted by name.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * const log = await store.log("events");
   * await log.appendBatch(["a", "b"]);
   * await log.sync();
   * const audit = await log.cursor("audit");
   * await audit.commit(0);
   * const list = await log.cursors();
   * await store.close();
   * if (JSON.stringify(list) !== '[{"name":"audit","position":1,"lag":1}]') {
   *   throw new Error(JSON.stringify(list));
   * }
   * ```
   */
  cursors(): Promise<CursorInfo[]> {
    if (this.closed) return Promise.reject(new ClosedError({ what: "log", path: this.path }));
    return listCursors(this.#cursorHost);
  }

  /**
   * Deletes the cursor `name` durably. `LockedError` while anyone (this process too) holds it;
   * `NotFoundError` if there is none.
   *
   * @example
   * ```ts
   * import { Store } from "@khipu/log";
   * import { mkdtempSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
   * const log = await store.log("events");
   * await (await log.cursor("scratch")).close();
   * await log.deleteCursor("scratch");
   * const left = await log.cursors();
   * await store.close();
   * if (left.length !== 0) throw new Error(JSON.stringify(left));
   * ```
   */
  deleteCursor(name: string): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError({ what: "log", path: this.path }));
    return deleteCursor(this.#cursorHost, name);
  }

  // ---- append path ----

  /** The writer, if `op` may run now: not closed, not poisoned, not read-only. */
  #writable(op: string): LogWriter {
    if (this.#closed || this.#closing) throw new ClosedError({ what: "log", path: this.path });
    if (!this.#writer) throw new ReadOnlyError({ op, path: this.path });
    if (this.#writer.poison) throw this.#writer.poison;
    return this.#writer;
  }
}

/** What a retention pass did (`log.enforceRetention()`). */
export interface RetentionResult {
  /** Sealed segments deleted. */
  removedSegments: number;
  /** Records they held (and any that `truncateBefore` removed meanwhile). */
  removedRecords: number;
  /** The log's first seq after the pass. */
  firstSeq: number;
}

/** The lowest cursor position, or null if there is no cursor. */
function lowestPosition(cursors: readonly CursorInfo[]): number | null {
  return cursors.length === 0 ? null : Math.min(...cursors.map((c) => c.position));
}

/**
 * How often the retention timer looks: a quarter of the shortest age that matters (`maxAgeMs`,
 * `segmentMaxAgeMs`), from 50 ms to 10 s; every 10 s when only size and count limits are set
 * (they change with appends, which roll over, but a cursor committing can release segments).
 */
function retentionPeriod(opts: LogOptions): number {
  const age = Math.min(opts.retention.maxAgeMs, opts.segmentMaxAgeMs);
  return age === Infinity ? 10_000 : Math.min(10_000, Math.max(50, Math.floor(age / 4)));
}
