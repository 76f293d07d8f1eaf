/**
 * A log's write pipeline: records are encoded into the active segment's buffer as they are
 * appended (so sequence numbers follow call order), and one flush per turn of the event loop hands
 * everything appended in that turn to the OS in a single `writev`; then group commit
 * (`./group_commit.ts`) decides when each append resolves. A rollover starts the next segment in
 * memory at once and the pump, one writer at a time, seals the old segment and creates the new
 * file before it flushes again. A failed write or segment creation drops the records it kept off
 * the disk and rejects their appends (the log goes on); a failed fdatasync poisons the log.
 *
 * @example
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const store = await Store.open("/s", { platform: new SimPlatform(), segmentBytes: 4096 });
 * const log = await store.log("l"); // its LogWriter does the work below
 * const seqs = await Promise.all([0, 1, 2, 3, 4].map(() => log.append(new Uint8Array(1500))));
 * await store.close();
 * if (seqs.join() !== "0,1,2,3,4" || log.segmentCount < 2) throw new Error("rolled over in order");
 * ```
 * @module
 */
import { IoError, KhipuError, LogFullError, PoisonedError } from "./errors.ts";
import type { Platform } from "./platform/types.ts";
import { frameBytes } from "./format/frame.ts";
import { GroupCommit } from "./group_commit.ts";
import { leafHashOf } from "./merkle.ts";
import type { MerkleTree } from "./merkle_tree.ts";
import { Segment, type SegmentOptions } from "./segment.ts";
import { liveView, sealedView, type SegmentView } from "./segment_view.ts";
import type { SyncPolicy } from "./sync_policy.ts";

/** What the writer works with: the segment sizes (rollover at `segmentBytes`) and the policy. */
export interface WriterOptions extends SegmentOptions {
  /** The file system. */
  platform: Platform;
  /** The durability policy. */
  syncPolicy: SyncPolicy;
}

/**
 * Appends to one log directory. The log validates what callers pass; this class only writes.
 *
 * @example
 * ```ts
 * import { LogWriter } from "./log_writer.ts";
 * import { recoverLog } from "./recovery.ts";
 * import { SyncPolicy } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const opts = { platform: sim, syncPolicy: SyncPolicy.always(), segmentBytes: 1 << 20,
 *   bufferBytes: 4096, maxRecordBytes: 1024 };
 * const r = await recoverLog(sim, "/l", { ...opts, repair: false });
 * const w = new LogWriter("/l", opts, r.segments, r.active, () => {});
 * const seq = w.encode([new Uint8Array([1])], Date.now());
 * if ((await w.wait(seq + 1, 1, seq)) !== 0 || w.durableEnd !== 1) throw new Error("durable");
 * await w.close(new Error("closed"));
 * ```
 */
export class LogWriter {
  /** Every segment, oldest first: one list, changed in place, that readers and retention share. */
  readonly segments: SegmentView[];
  #dir: string;
  #opts: WriterOptions;
  #writing: Segment[];
  #active: Segment;
  #nextSeq: number;
  #commit: GroupCommit;
  #changed: () => void;
  #pumpScheduled = false;
  #pumpRunning = false;
  #pumpDone: Promise<void> = Promise.resolve();
  #pumpAgain = false;
  #poison: KhipuError | null = null;
  #rolled: () => void;
  #tree: MerkleTree | null;

  /**
   * Takes over the recovered `segments`, whose last one is `active`; `changed` wakes readers,
   * `rolled` runs after each rollover (a segment sealed: retention may act). `tree`, for a log
   * with integrity on, gets every record's leaf and holds exactly `nextSeq` leaves.
   */
  constructor(
    dir: string,
    opts: WriterOptions,
    segments: SegmentView[],
    active: Segment,
    changed: () => void,
    rolled: () => void = () => {},
    tree: MerkleTree | null = null,
  ) {
    this.#rolled = rolled;
    this.#tree = tree;
    this.#dir = dir;
    this.#opts = opts;
    this.segments = segments;
    this.#active = active;
    this.#writing = [active];
    this.#nextSeq = active.nextSeq;
    this.#changed = changed;
    // Recovery fdatasynced the newest segment: everything in it is durable.
    this.#commit = new GroupCommit(opts.syncPolicy, {
      flushedEnd: () => this.flushedEnd,
      datasync: () => {
        const seg = this.#writing[0];
        if (this.#poison || this.#writing.length !== 1 || !seg.materialized) return null;
        return seg.datasync();
      },
      failed: (err, covering) => this.#fail(err, covering),
      acked: changed,
    }, active.nextSeq);
  }

  /** The log's 16-byte id, in every segment header and every frame's checksum. */
  get logId(): Uint8Array {
    return this.#active.start.log.id;
  }

  /** Sequence number the next append will get. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** One past the last record an fdatasync covered. */
  get durableEnd(): number {
    return this.#commit.durableEnd;
  }

  /** One past the last record handed to the OS. */
  get flushedEnd(): number {
    return this.#writing[0].flushedSeq;
  }

  /**
   * One past the last record a reader sees by default: flushed, its append and every earlier one
   * resolved, none of them rejected.
   */
  get ackedEnd(): number {
    return this.#commit.ackedEnd;
  }

  /** The failure that poisoned the log, if one did. */
  get poison(): KhipuError | null {
    return this.#poison;
  }

  /** Settles once no rollover or flush is under way. */
  get pumpDone(): Promise<void> {
    return this.#pumpDone;
  }

  /** Throws `LogFullError` unless `count` more records fit below the last sequence number. */
  assertSeqsLeft(count: number): void {
    // The last record's seq is 2^53 - 2, so the seal after it (one past) is still a safe integer.
    if (this.#nextSeq + count > Number.MAX_SAFE_INTEGER) {
      throw new LogFullError({ path: this.#dir, seq: this.#nextSeq });
    }
  }

  /**
   * Waits for the pump and the running fdatasync, then stops group commit, closes every segment
   * file and rejects what still waits with `err`.
   */
  async close(err: unknown): Promise<void> {
    await this.#pumpDone;
    await this.#commit.idle();
    this.#commit.stop();
    const active = this.#writing[this.#writing.length - 1];
    if (!this.#poison && this.#writing.length === 1 && active.flushedSeq === this.durableEnd) {
      try {
        await active.markClean();
      } catch {
        // Only the next open's speed depends on this mark; the records are durable already.
      }
    }
    if (this.#tree) {
      if (!this.#poison) await this.#persistTree(this.durableEnd);
      this.#tree.close();
    }
    for (const s of this.#writing) s.close();
    this.#commit.rejectAll(err);
  }

  /**
   * Names `size` durable in the tree's head. A failure costs only time: the next open rehashes
   * the records after the older head.
   */
  async #persistTree(size: number): Promise<void> {
    try {
      await this.#tree?.persist(size);
    } catch {
      // See above: the records are the truth, the tree is rebuilt from them.
    }
  }

  /**
   * Encodes records as one batch into the active segment, rolling over first if the batch would
   * not fit (a batch never spans segments, so recovery keeps it whole or drops it whole). Every
   * record gets the timestamp `max(clock, the log's last timestamp)`. Returns the first seq.
   */
  encode(payloads: readonly Uint8Array[], clock: number): number {
    const a = this.#active;
    const timestamp = Math.max(clock, a.lastTimestamp);
    // Only the first record's delta may be nonzero: the batch shares one timestamp.
    let bytes = 0;
    let largest = 0;
    for (let i = 0; i < payloads.length; i++) {
      const n = payloads[i].length;
      bytes += frameBytes(n, i === 0 ? timestamp - a.lastTimestamp : 0);
      largest = Math.max(largest, n);
    }
    if (
      a.recordCount > 0 &&
      (a.projectedBytes + bytes > this.#opts.segmentBytes ||
        largest > a.maxRecordBytes) // a recovered segment's header may cap records lower
    ) {
      this.#rollover(timestamp);
    }
    const first = this.#nextSeq;
    const seg = this.#active;
    for (let i = 0; i < payloads.length; i++) {
      this.#tree?.append(leafHashOf({ seq: this.#nextSeq, timestamp, data: payloads[i] }));
      seg.append(this.#nextSeq++, timestamp, payloads[i], i === payloads.length - 1);
    }
    return first;
  }

  /**
   * Timestamp of the active segment's first record, or null while it is empty: how old the
   * segment is, for `segmentMaxAgeMs`.
   */
  get activeSince(): number | null {
    return this.#active.recordCount > 0 ? this.#active.firstTimestamp : null;
  }

  /**
   * Seals the active segment now (if it holds records) and starts the next one; resolves once the
   * seal is on disk. Appends made meanwhile go to the new segment.
   */
  roll(): Promise<void> {
    if (this.#active.recordCount === 0) return this.syncThrough(this.#nextSeq);
    this.#rollover(Math.max(Date.now(), this.#active.lastTimestamp));
    return this.syncThrough(this.#nextSeq);
  }

  /** Starts the next segment in memory; the pump seals the old one and creates the new file. */
  #rollover(timestamp: number): void {
    const start = {
      firstSeq: this.#nextSeq,
      prevEndSeq: this.#nextSeq,
      baseTimestamp: timestamp,
      log: this.#active.start.log,
    };
    const seg = Segment.pending(this.#opts.platform, this.#dir, start, this.#opts);
    this.#writing.push(seg);
    this.#active = seg;
    this.segments.push(liveView(seg));
  }

  /** Resolves with `value` once the records before `end` are acknowledged under the policy. */
  wait<T>(end: number, count: number, value: T): Promise<T> {
    const acked = this.#commit.append(end, count, value);
    this.#schedule();
    return acked;
  }

  /** Resolves once an fdatasync covered every record before `end`. */
  syncThrough(end: number): Promise<void> {
    const synced = this.#commit.syncThrough(end);
    this.#schedule();
    return synced;
  }

  #schedule(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(this.#onMicrotask);
  }

  /** Runs once per turn with appends: the common case (no rollover due) without an async hop. */
  #onMicrotask = (): void => {
    this.#pumpScheduled = false;
    if (this.#pumpRunning) {
      this.#pumpAgain = true;
    } else if (this.#writing.length === 1 && this.#active.materialized && !this.#poison) {
      try {
        if (this.#flushActive()) this.#commit.settle();
        this.#flushTree();
      } catch (err) {
        this.#fail(err);
      }
    } else {
      this.#pumpDone = this.#pump();
    }
  };

  /** One writer at a time: seal/create segments if a rollover is due, flush, settle waiters. */
  async #pump(): Promise<void> {
    this.#pumpRunning = true;
    try {
      do {
        this.#pumpAgain = false;
        if (this.#writing.length > 1 || !this.#active.materialized) {
          if (!(await this.#rollOut())) continue;
        }
        if (this.#poison) break;
        if (this.#flushActive()) this.#commit.settle();
        this.#flushTree();
      } while (this.#pumpAgain && !this.#poison);
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#pumpRunning = false;
    }
  }

  /**
   * Seals the segments that are full and creates the active one's file. False if a write or a
   * file creation failed in a way that loses nothing durable (the appends that needed it were
   * rejected, see `#abandon`); a failed fdatasync throws and poisons the log.
   */
  async #rollOut(): Promise<boolean> {
    while (this.#writing.length > 1) {
      const old = this.#writing[0];
      await this.#commit.idle();
      if (this.#poison) return false;
      try {
        await old.seal(Date.now());
      } catch (err) {
        if (old.poisoned || (!old.materialized && !isTransient(err))) throw err;
        this.#abandon(old, err);
        return false;
      }
      old.close();
      // A new view replaces the live one: a reader still holding that sees its writer sealed.
      const i = this.segments.findIndex((s) => s.kind === "live" && s.writer === old);
      if (i >= 0) this.segments[i] = sealedView(old);
      // Before the seal's waiters resolve: roll() means the tree's head covers the seal too.
      if (this.#tree) await this.#persistTree(old.flushedSeq);
      this.#writing.shift();
      this.#commit.markDurable(old.flushedSeq);
      this.#changed();
      this.#rolled();
    }
    const active = this.#writing[0];
    try {
      await active.materialize();
    } catch (err) {
      if (!isTransient(err)) throw err;
      this.#abandon(active, err);
      return false;
    }
    return true;
  }

  /** Hands the active segment's buffer to the OS. False if the write failed and was undone. */
  #flushActive(): boolean {
    const a = this.#writing[0];
    if (a.bufferedBytes === 0) return true;
    try {
      a.flush();
    } catch (err) {
      if (a.poisoned) throw err;
      // The file was cut back to its last whole frame: the buffered records are not in the log.
      this.#abandon(a, err);
      return false;
    }
    this.#changed();
    return true;
  }

  /**
   * After the records' write and the start of their fdatasync: hashes the tree's new nodes (while
   * the disk works) and writes them once there are enough.
   */
  #flushTree(): void {
    try {
      this.#tree?.flush();
    } catch {
      // The nodes stay in memory and go out with the next flush; nothing waits for them.
    }
  }

  /**
   * Forgets every record buffered in `keep` and in the segments started after it, which a failed
   * write or file creation kept off the disk: `keep` is the active segment again, the appends of
   * those records reject with `err`, and `sync()`/`close()` stop waiting for them (they were never
   * appended). The log stays usable: the next append retries the write or the creation.
   */
  #abandon(keep: Segment, err: unknown): void {
    const from = keep.discardBuffer();
    for (const dropped of this.#writing.splice(this.#writing.indexOf(keep) + 1)) {
      dropped.close();
      const i = this.segments.findIndex((s) => s.kind === "live" && s.writer === dropped);
      if (i >= 0) this.segments.splice(i, 1);
    }
    this.#active = keep;
    this.#nextSeq = from;
    this.#tree?.truncate(from);
    this.#commit.forget(from, err);
  }

  /**
   * A failed fdatasync (of the records `covering`) or a write that could not be undone poisons the
   * log: no retry.
   */
  #fail(err: unknown, covering?: { from: number; to: number }): void {
    if (this.#poison) return;
    this.#poison = err instanceof PoisonedError && !covering
      ? err
      : new PoisonedError({ path: this.#dir, cause: err, covering });
    this.#commit.stop();
    this.#commit.rejectAll(this.#poison);
    this.#changed();
  }
}

/**
 * Failures that leave nothing half-done on disk and may pass: a full disk, or too many open files
 * (the creation of the next segment file is undone by `createFileDurable`).
 */
function isTransient(err: unknown): boolean {
  if (!(err instanceof KhipuError)) return false;
  if (err.code === "NO_SPACE") return true;
  return err instanceof IoError && (err.osCode === "EMFILE" || err.osCode === "ENFILE");
}
