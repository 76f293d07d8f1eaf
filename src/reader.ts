/**
 * Reading a log: an async iterator over records from a sequence number, across segments, verifying
 * every checksum, seeking through each segment's sparse index, and (with `follow`) waiting for new
 * appends. Memory is bounded by the scan buffer, not by segment size.
 *
 * @example
 * ```ts
 * import { type Log, Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * async function tail(log: Log, signal: AbortSignal, onRecord: (seq: number) => void) {
 *   for await (const r of log.read({ from: log.nextSeq, follow: true, signal })) onRecord(r.seq);
 * }
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * const log = await store.log("events");
 * const stop = new AbortController();
 * const seen: number[] = [];
 * const tailing = tail(log, stop.signal, (seq) => {
 *   if (seen.push(seq) === 2) stop.abort(); // two records are enough
 * });
 * await log.appendBatch(["a", "b"]);
 * await tailing;
 * await store.close();
 * if (seen.join() !== "0,1") throw new Error(seen.join());
 * ```
 * @module
 */
import {
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  NotFoundError,
  RecordsRemovedError,
} from "./errors.ts";
import { boolean, describeValue, options as checkOptions, wholeNumber } from "./validate.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { FrameScanner } from "./format/scanner.ts";
import { FRAME_SEAL } from "./format/frame.ts";
import { endSeqOf, readableEnd, type SegmentView } from "./segment_view.ts";

/** One record as a reader yields it. */
export interface LogRecord {
  /** Its sequence number. */
  seq: number;
  /** When it was appended, in ms since the Unix epoch. */
  timestamp: number;
  /**
   * Its bytes: a copy the caller owns. Records up to 4 KiB are copied into a shared 64 KiB block (as
   * Node's `Buffer` pool does), so `data.buffer` may hold other records too; `data.slice()` detaches
   * one. One `ArrayBuffer` per record costs ~15x more on V8 and capped scans at ~0.3 GB/s.
   */
  data: Uint8Array;
}

/** Options of `log.read()`. */
export interface ReadOptions {
  /** First sequence number to yield (default: the log's first). Below the first, reading starts there. */
  from?: number;
  /**
   * Start at the first record whose timestamp (ms since the Unix epoch) is `>= fromTime`, found
   * through the segments' time index and one bounded scan, not a scan of the log. Not with `from`.
   */
  fromTime?: number;
  /** Stop before this sequence number (exclusive; default: no bound). */
  to?: number;
  /** Keep waiting for new records instead of ending at the last flushed one. */
  follow?: boolean;
  /** Ends the iteration (cleanly) when aborted. */
  signal?: AbortSignal;
  /**
   * Yield only records already durable on disk (covered by an fdatasync; in a read-only store, as
   * far as the writer's newest mark slot says). Default false: records whose `append` resolved (in
   * the writer's process) or that are written whole (in a read-only store).
   */
  committed?: boolean;
}

/** What a reader needs from its log; implemented by `Log`. */
export interface ReadSource {
  /** The log directory, for errors. */
  readonly path: string;
  /** Platform to open segment files with. */
  readonly platform: Platform;
  /** Current segments, oldest first. */
  segments(): readonly SegmentView[];
  /** One past the last record a reader may see: every one, or only the durable ones. */
  visibleEnd(committed: boolean): number;
  /** Seq of the first record with timestamp >= `time` (the visible end if none). */
  seqAtTime(time: number): Promise<number>;
  /** Why the log can no longer be followed (a read-only store's refresh failed), or null. */
  failure(): unknown;
  /** True once the log is closed. */
  isClosed(): boolean;
  /** A reader opened `file`; the log closes it at close if the reader has not. */
  opened(file: PlatformFile): void;
  /** A reader closed `file`. */
  released(file: PlatformFile): void;
  /** Resolves at the next change readers may see, or at close. */
  changed(): Promise<void>;
  /**
   * Brings `segments()` and `visibleEnd()` up to date with what another process wrote, for a
   * read-only store (a writer's own log is always up to date and has none).
   */
  catchUp?(): Promise<void>;
}

/** How a cursor reads: from exactly its position, never silently past removed records. */
export interface StrictStart {
  /** Name the reader in errors (`cursor "billing"`). */
  who: string;
}

interface Cursor {
  ref: SegmentView;
  file: PlatformFile;
  scanner: FrameScanner;
}

/**
 * Iterates the records of `src` as {@linkcode ReadOptions} says. Records flushed before the call
 * are all seen; with `follow`, later ones too.
 *
 * @example
 * ```ts
 * import { readRecords, type ReadSource } from "./reader.ts";
 * async function count(src: ReadSource) {
 *   let n = 0;
 *   for await (const _ of readRecords(src, {})) n++;
 *   return n;
 * }
 * ```
 */
export function readRecords(
  src: ReadSource,
  opts: ReadOptions,
  strict?: StrictStart,
): RecordIterator {
  return new RecordIterator(src, opts, strict);
}

/** Records at most this big share pooled blocks of {@linkcode POOL_BYTES}; larger ones are sliced. */
const POOLED_RECORD_BYTES = 4096;
const POOL_BYTES = 64 * 1024;

const END = 0;
const OPEN = 1;
const WAIT = 2;

/**
 * The iterator `log.read()` returns. Not an async generator: `next()` decodes synchronously and
 * hands back an already-settled promise, which is several times cheaper per record on V8; it only
 * goes asynchronous to open a segment or to wait for new records when following.
 *
 * @example
 * ```ts
 * import { type Log, Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * async function firstRecord(log: Log) {
 *   const it = log.read({ from: 0 });
 *   const r = await it.next();
 *   await it.return(); // releases the open segment file
 *   return r.done ? null : r.value;
 * }
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * const log = await store.log("events");
 * await log.appendBatch(["a", "b"]);
 * const first = await firstRecord(log);
 * await store.close();
 * if (first?.seq !== 0 || new TextDecoder().decode(first.data) !== "a") throw new Error("not a");
 * ```
 */
export class RecordIterator implements AsyncIterableIterator<LogRecord> {
  #src: ReadSource;
  #opts: ReadOptions;
  #seq: number;
  #to: number;
  #visibleEnd: number;
  #cur: Cursor | null = null;
  #done = false;
  #busy: Promise<IteratorResult<LogRecord, undefined>> | null = null;
  #argError: unknown = null;
  #pool: Uint8Array = new Uint8Array(0);
  #poolUsed = 0;
  #committed = false;
  #seekTime: number | null = null;
  /** Records older than `fromTime` are passed over until the first that is not (see #step). */
  #minTime: number | null = null;
  #caughtUp: boolean;
  /** Who reads, for `RecordsRemovedError` (a cursor names itself). */
  #who: string | undefined;

  /**
   * Use `log.read()`. Bad options reject the first `next()` with `InvalidArgumentError`; so does
   * a `strict` start below the log's first record, with `RecordsRemovedError`.
   */
  constructor(src: ReadSource, opts: ReadOptions, strict?: StrictStart) {
    const first = src.segments()[0]?.firstSeq ?? src.visibleEnd(false);
    this.#src = src;
    this.#opts = {};
    this.#seq = first;
    this.#to = Infinity;
    this.#visibleEnd = 0;
    this.#caughtUp = src.catchUp === undefined;
    this.#who = strict?.who;
    try {
      // Reported where an async generator reports it: by the first next().
      this.#opts = checkReadOptions(opts);
      this.#committed = this.#opts.committed === true;
      this.#visibleEnd = src.visibleEnd(this.#committed);
      const from = this.#opts.from ?? first;
      if (strict && from < first) {
        throw new RecordsRemovedError({
          path: src.path,
          position: from,
          firstSeq: first,
          who: strict.who,
        });
      }
      this.#seq = Math.max(from, first);
      this.#to = this.#opts.to ?? Infinity;
      if (this.#opts.fromTime !== undefined) {
        this.#seekTime = this.#opts.fromTime;
        this.#minTime = this.#opts.fromTime;
      }
    } catch (err) {
      this.#argError = err;
    }
  }

  /** Returns itself, so it works with `for await`. */
  [Symbol.asyncIterator](): RecordIterator {
    return this;
  }

  /** `await using it = log.read()` releases the open segment file at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  /** The next record, or `done` at the end (or, when following, on abort or close). */
  next(): Promise<IteratorResult<LogRecord, undefined>> {
    // A caller that does not await each next() gets its results in order all the same.
    if (this.#argError !== null) {
      const err = this.#argError;
      this.#argError = null;
      this.#finish();
      return Promise.reject(err);
    }
    if (this.#busy) return this.#busy = this.#busy.then(() => this.next());
    if (this.#done) return Promise.resolve({ done: true, value: undefined });
    try {
      const r = this.#step();
      if (typeof r === "object") return Promise.resolve({ done: false, value: r });
      if (r === END) return Promise.resolve(this.#finish());
      const slow = this.#slow(r).finally(() => {
        if (this.#busy === slow) this.#busy = null;
      });
      return this.#busy = slow;
    } catch (err) {
      this.#finish();
      return Promise.reject(err);
    }
  }

  /** Stops early (what `break` in `for await` calls), releasing the open segment file. */
  return(): Promise<IteratorResult<LogRecord, undefined>> {
    return Promise.resolve(this.#finish());
  }

  async #slow(first: typeof OPEN | typeof WAIT): Promise<IteratorResult<LogRecord, undefined>> {
    try {
      for (let r: LogRecord | number = first;; r = this.#step()) {
        if (typeof r === "object") return { done: false, value: r };
        if (r === END) return this.#finish();
        if (!this.#caughtUp) {
          // A read-only store learns what the writer did since its last look, once, up front:
          // "every record written before the call" holds for another process's writes too.
          await this.#src.catchUp!();
          this.#caughtUp = true;
          this.#visibleEnd = this.#src.visibleEnd(this.#committed);
          continue;
        }
        if (r === OPEN) {
          if (this.#seekTime !== null) {
            this.#seq = Math.max(this.#seq, await this.#src.seqAtTime(this.#seekTime));
            this.#seekTime = null;
            continue;
          }
          this.#cur = await openAt(this.#src, this.#seq, this.#who);
          // Past a range of seqs the log skipped (repair set records aside), the next record is
          // the next segment's first.
          this.#seq = Math.max(this.#seq, this.#cur.ref.firstSeq);
        } else if (await waitForChange(this.#src, this.#opts.signal)) {
          const failure = this.#src.failure();
          if (failure !== null) throw failure;
          this.#visibleEnd = this.#src.visibleEnd(this.#committed);
        } else return this.#finish();
      }
    } catch (err) {
      this.#finish();
      throw err;
    }
  }

  /** Copies a payload out of the scan buffer (which is reused); see `LogRecord.data`. */
  #copy(payload: Uint8Array): Uint8Array {
    const n = payload.length;
    if (n > POOLED_RECORD_BYTES) return payload.slice();
    if (this.#poolUsed + n > this.#pool.length) {
      this.#pool = new Uint8Array(POOL_BYTES);
      this.#poolUsed = 0;
    }
    const out = this.#pool.subarray(this.#poolUsed, this.#poolUsed + n);
    out.set(payload);
    this.#poolUsed += n;
    return out;
  }

  #finish(): IteratorResult<LogRecord, undefined> {
    this.#done = true;
    this.#release();
    return { done: true, value: undefined };
  }

  #release(): void {
    const cur = this.#cur;
    if (!cur) return;
    this.#cur = null;
    cur.file.close();
    this.#src.released(cur.file);
  }

  /** Advances synchronously as far as it can: a record, or what must happen before the next. */
  #step(): LogRecord | typeof END | typeof OPEN | typeof WAIT {
    const src = this.#src;
    for (;;) {
      if (src.isClosed()) {
        // A follower's documented end is the log's close; a plain read cut short is an error.
        if (this.#opts.follow) return END;
        throw new ClosedError({ what: "log", path: src.path });
      }
      if (this.#opts.signal?.aborted || this.#seq >= this.#to) return END;
      if (this.#seekTime !== null || !this.#caughtUp) return OPEN;
      if (this.#seq >= this.#visibleEnd) {
        if (!this.#opts.follow) return END;
        // Records made visible since `visibleEnd` was taken signalled no one: read them first.
        const end = src.visibleEnd(this.#committed);
        if (end > this.#visibleEnd) {
          this.#visibleEnd = end;
          continue;
        }
        return WAIT;
      }
      const cur = this.#cur;
      if (!cur) return OPEN;
      const { ref, scanner } = cur;
      scanner.extendLimit(readableEnd(ref));
      const step = scanner.next();
      if (step.kind === "frame" && step.type !== FRAME_SEAL) {
        if (step.seq < this.#seq) continue;
        this.#seq = step.seq + 1;
        if (this.#minTime !== null) {
          // The seek landed past every record then in the log; later ones may still be older
          // than fromTime. Timestamps never decrease, so the first one that is not ends this.
          if (step.timestamp < this.#minTime) continue;
          this.#minTime = null;
        }
        return { seq: step.seq, timestamp: step.timestamp, data: this.#copy(step.payload) };
      }
      const endSeq = endSeqOf(ref);
      if (step.kind === "frame" || (step.kind === "end" && endSeq !== null)) {
        // A seal, or the end of a sealed segment: it must have held exactly [firstSeq, endSeq).
        if (scanner.expectedSeq !== endSeq || scanner.batchEnd !== scanner.offset) {
          throw new CorruptionError({
            message: scanner.expectedSeq !== endSeq
              ? `segment ends at seq ${scanner.expectedSeq}, expected ${endSeq}`
              : "segment ends inside a batch",
            path: ref.path,
            offset: scanner.offset,
            seq: scanner.expectedSeq,
          });
        }
        this.#release();
        continue;
      }
      if (step.kind === "end") {
        // Every flushed byte of the live segment is read; what is visible ends here.
        this.#visibleEnd = scanner.expectedSeq;
        continue;
      }
      throw new CorruptionError({
        message: step.kind === "bad" ? step.reason : "truncated frame",
        path: ref.path,
        offset: step.offset,
        seq: scanner.expectedSeq,
      });
    }
  }
}

const READ_OPTION_KEYS: readonly (keyof ReadOptions)[] = [
  "from",
  "fromTime",
  "to",
  "follow",
  "signal",
  "committed",
];

function checkReadOptions(given: ReadOptions | undefined): ReadOptions {
  const o = checkOptions("read options", given, READ_OPTION_KEYS);
  const seq = (what: string, v: number | undefined) =>
    v === undefined ? undefined : wholeNumber(`read: ${what}`, v, 0, Number.MAX_SAFE_INTEGER);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError({
      message: `read: signal must be an AbortSignal, got ${describeValue(o.signal)}`,
    });
  }
  if (o.from !== undefined && o.fromTime !== undefined) {
    throw new InvalidArgumentError({ message: "read: give from or fromTime, not both" });
  }
  const fromTime = o.fromTime === undefined
    ? undefined
    : wholeNumber("read: fromTime", o.fromTime, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    from: seq("from", o.from),
    fromTime,
    to: seq("to", o.to),
    follow: o.follow === undefined ? false : boolean("read: follow", o.follow),
    signal: o.signal,
    committed: o.committed === undefined ? false : boolean("read: committed", o.committed),
  };
}

async function openAt(src: ReadSource, seq: number, who: string | undefined): Promise<Cursor> {
  const segs = src.segments();
  let lo = 0;
  let hi = segs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (segs[mid].firstSeq <= seq) lo = mid;
    else hi = mid - 1;
  }
  let ref = segs[lo];
  if (!ref || seq < ref.firstSeq) throw await removed(src, seq, who);
  // A seq in a range the log skipped (repair set records aside) reads on from the next segment.
  const end = endSeqOf(ref);
  if (end !== null && seq >= end && lo + 1 < segs.length) ref = segs[lo + 1];
  const i = ref.index.floor(Math.max(seq, ref.firstSeq));
  const file = await src.platform.open(ref.path, "read").catch(async (err) => {
    // Deleted by retention (in another process, for a read-only store) since the list was read.
    if (!(err instanceof NotFoundError)) throw err;
    throw await removed(src, seq, who);
  });
  src.opened(file);
  // Each segment is read under the cap its header was written with, not the current option.
  const scanner = new FrameScanner(file, ref.codec, {
    start: i < 0 ? ref.dataStart : ref.index.offsetAt(i),
    limit: readableEnd(ref),
    seq: i < 0 ? ref.firstSeq : ref.index.seqAt(i),
    timestamp: i < 0 ? 0 : ref.index.timestampAt(i),
    maxPayload: ref.maxRecordBytes,
  });
  return { ref, file, scanner };
}

/**
 * Retention deleted the records from `seq` on while this reader was behind: say so, never skip
 * them silently, with the log's first seq as it is now (a read-only store looks again first).
 */
async function removed(
  src: ReadSource,
  seq: number,
  who: string | undefined,
): Promise<RecordsRemovedError> {
  await src.catchUp?.();
  const first = src.segments()[0]?.firstSeq ?? src.visibleEnd(false);
  const firstSeq = Math.max(first, seq);
  return new RecordsRemovedError({ path: src.path, position: seq, firstSeq, who });
}

async function waitForChange(src: ReadSource, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return false;
  // A waiting follower keeps the process alive, as a socket read would: Node otherwise exits
  // (code 13) when a pending promise is all that is left.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  let onAbort = () => {};
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([src.changed().then(() => true as const), aborted]);
  } finally {
    clearInterval(keepAlive);
    signal?.removeEventListener("abort", onAbort);
  }
}
