/**
 * A log seen from a read-only store: the segments another process (any runtime) writes, followed
 * without a lock and **without writing anything**. Sealed segments are trusted through their header
 * and seal, as at open (`./check_sealed.ts`); the newest is scanned, from its durable mark, up to its
 * last complete batch, and no further: whatever follows (a batch still being written, a torn tail
 * the writer will cut, preallocated zeros) is "not there yet", never damage, since only the writer
 * may decide that. What is *committed* (covered by the writer's fdatasyncs) is what the newest mark
 * slot says; the writer writes one after each fdatasync.
 *
 * It learns of changes from a directory watch (`Platform.watch`: inotify) while someone waits for
 * them, with a slow poll behind it for file systems that report nothing; on each it re-reads the
 * mark, scans the new bytes and lists the directory (new segments at rollover, old ones deleted by
 * retention).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { LogTail } from "./log_tail.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim });
 * const log = await store.log("l");
 * await log.appendBatch(["a", "b"]);
 * const tail = await LogTail.open(sim, "/s/l");
 * const before = tail.nextSeq;
 * await log.append("c");
 * await tail.refresh();
 * tail.close();
 * await store.close();
 * if (before !== 2 || tail.nextSeq !== 3) throw new Error(`${before} ${tail.nextSeq}`);
 * ```
 * @module
 */
import { CorruptionError, FileTypeError, NotFoundError } from "./errors.ts";
import type { Platform, PlatformFile, PlatformWatcher } from "./platform/types.ts";
import { ChangeSignal } from "./change_signal.ts";
import { checkSealed } from "./check_sealed.ts";
import { codecFor, endsBatch, FRAME_SEAL, type FrameCodec } from "./format/codec.ts";
import { decodeHeader, seedOf, type SegmentHeader } from "./format/header.ts";
import { INDEX_INTERVAL_BYTES } from "./format/limits.ts";
import { type Mark, readFileMark } from "./format/mark.ts";
import { FrameScanner } from "./format/scanner.ts";
import { SparseIndex } from "./format/sparse_index.ts";
import { LogIdCheck, readHeader } from "./open_context.ts";
import { readStoredIndex } from "./recover_active.ts";
import { segmentFileName, segmentSeqs } from "./segment.ts";
import type { GrowingSegment, LiveSegment, SealedSegment, SegmentView } from "./segment_view.ts";
// The poll never keeps a process alive: a waiting follower does that itself.
import { backgroundInterval, backgroundTimeout, type BackgroundTimer } from "./unref_timer.ts";

/** How often a waiting follower checks for changes that no watch event reported. */
export const TAIL_POLL_MS = 500;

/** The first re-check of records written but not yet committed (see `LogTail.#checkSoon`). */
const SOON_FIRST_MS = 2;

/** A watch nobody has waited on for this long is closed (on Deno it keeps the process alive). */
const WATCH_LINGER_MS = 2_000;

/**
 * Bytes a tail scan reads at a time: a follower's new bytes are usually a few frames, and each
 * refresh reads this much past them (preallocated zeros), so it is small.
 */
const TAIL_CHUNK_BYTES = 16 * 1024;

/**
 * The newest segment of a log another process writes, scanned up to its last complete batch.
 * It is the `writer` of the segment's live view, as this process's `Segment` is for a writer.
 */
class TailSegment implements GrowingSegment {
  readonly path: string;
  readonly firstSeq: number;
  readonly header: SegmentHeader;
  readonly codec: FrameCodec;
  readonly index: SparseIndex;
  readonly materialized = true;
  flushedBytes: number;
  flushedSeq: number;
  sealed = false;
  /** One past the last record the writer's newest mark slot says is durable. */
  committedSeq: number;
  firstTimestamp: number | null = null;
  lastTimestamp: number;
  #file: PlatformFile;
  #seed: number;
  #scanner: FrameScanner;
  #prevTimestamp: number;

  constructor(file: PlatformFile, header: SegmentHeader, mark: Mark, index: SparseIndex) {
    this.path = file.path;
    this.#file = file;
    this.header = header;
    this.firstSeq = header.firstSeq;
    this.codec = codecFor(header);
    this.#seed = header.logId ? seedOf(header.logId, header.firstSeq) : 0;
    this.index = index;
    this.flushedBytes = mark.durableEnd;
    this.flushedSeq = mark.nextSeq;
    this.committedSeq = mark.nextSeq;
    this.lastTimestamp = mark.lastTimestamp;
    this.#prevTimestamp = mark.lastTimestamp;
    this.#scanner = new FrameScanner(file, this.codec, {
      start: mark.durableEnd,
      limit: file.size(),
      seq: mark.nextSeq,
      timestamp: mark.lastTimestamp,
      maxPayload: header.maxRecordBytes,
    }, TAIL_CHUNK_BYTES);
  }

  get diskBytes(): number {
    return this.#file.size();
  }

  /** The file, for the first record's timestamp (a reader opens its own). */
  get file(): PlatformFile {
    return this.#file;
  }

  /**
   * Scans what the writer added since the last call: complete batches move `flushedSeq`, a seal
   * at a batch boundary seals the segment, anything else waits for the next call. Returns true if
   * anything moved.
   */
  advance(): boolean {
    const before = this.flushedSeq;
    const committedBefore = this.committedSeq;
    if (this.sealed) return false;
    const s = this.#scanner;
    s.reread(this.#file.size());
    for (let step = s.next(); step.kind === "frame"; step = s.next()) {
      if (step.type === FRAME_SEAL) {
        if (step.offset === this.flushedBytes) {
          this.sealed = true;
          this.flushedBytes = step.offset + step.frameBytes;
        }
        break;
      }
      if (step.offset - this.index.lastOffset >= INDEX_INTERVAL_BYTES) {
        this.index.push(step.seq, step.offset, this.#prevTimestamp);
      }
      this.#prevTimestamp = step.timestamp;
      this.firstTimestamp ??= step.seq === this.firstSeq ? step.timestamp : null;
      if (endsBatch(step.type)) {
        this.flushedBytes = s.offset;
        this.flushedSeq = step.seq + 1;
        this.lastTimestamp = step.timestamp;
      }
    }
    this.#readCommitted();
    return this.flushedSeq !== before || this.sealed || this.committedSeq !== committedBefore;
  }

  /** The newest valid mark slot (v2); a slot being written fails its CRC and the other counts. */
  #readCommitted(): void {
    if (this.sealed) {
      this.committedSeq = this.flushedSeq;
      return;
    }
    if (this.header.version === 1) {
      // Version 1 has no marks; no v1 writer exists any more, so what is there is all there is.
      this.committedSeq = this.flushedSeq;
      return;
    }
    const m = readFileMark(this.#file, this.#seed);
    if (m && m.nextSeq > this.committedSeq) {
      this.committedSeq = Math.min(m.nextSeq, this.flushedSeq);
    }
  }

  /** Its sealed view, once `sealed`. */
  sealedView(): SealedSegment {
    return {
      kind: "sealed",
      firstSeq: this.firstSeq,
      path: this.path,
      endSeq: this.flushedSeq,
      index: this.index,
      bytes: this.flushedBytes,
      maxRecordBytes: this.header.maxRecordBytes,
      codec: this.codec,
      dataStart: this.header.dataStart,
      firstTimestamp: this.firstTimestamp ?? this.header.baseTimestamp,
      lastTimestamp: this.lastTimestamp,
    };
  }

  /** Its live view. */
  liveView(): LiveSegment {
    return {
      kind: "live",
      firstSeq: this.firstSeq,
      path: this.path,
      index: this.index,
      maxRecordBytes: this.header.maxRecordBytes,
      codec: this.codec,
      dataStart: this.header.dataStart,
      writer: this,
    };
  }

  close(): void {
    this.#file.close();
  }
}

/**
 * Opens the newest segment file for following, or returns null if its header is not readable yet
 * (the writer is creating it: a short or zero-filled header is "not there yet").
 */
async function openTailSegment(
  platform: Platform,
  path: string,
  firstSeq: number,
  ids: LogIdCheck,
): Promise<TailSegment | null> {
  const file = await platform.open(path, "read");
  try {
    const h = decodeHeader(readHeader(file));
    if (!h.ok || h.header.firstSeq !== firstSeq) {
      if (!h.ok && h.foreignVersion !== undefined) {
        throw new CorruptionError({ message: `segment header: ${h.reason}`, path, offset: 0 });
      }
      file.close();
      return null;
    }
    const header = h.header;
    const foreign = ids.check(header, path);
    if (foreign) throw foreign;
    let mark: Mark = {
      generation: 0,
      durableEnd: header.dataStart,
      nextSeq: firstSeq,
      lastTimestamp: header.version === 1 ? 0 : header.baseTimestamp,
      storedEntries: 0,
    };
    let index = new SparseIndex();
    index.push(firstSeq, header.dataStart, mark.lastTimestamp);
    if (header.version === 2) {
      const seed = seedOf(header.logId!, firstSeq);
      const found = readFileMark(file, seed);
      if (found) {
        const stored = readStoredIndex(file, header, found, seed);
        // Entries being rewritten fail their checks: start from the header then, and scan.
        if (typeof stored !== "string") {
          mark = found;
          index = stored;
        }
      }
    }
    const seg = new TailSegment(file, header, mark, index);
    if (mark.nextSeq > firstSeq) seg.firstTimestamp = firstRecordTimestamp(seg);
    return seg;
  } catch (err) {
    file.close();
    throw err;
  }
}

/** The first record's timestamp, for a tail that starts past it (from a mark). */
function firstRecordTimestamp(seg: TailSegment): number | null {
  const step = new FrameScanner(seg.file, seg.codec, {
    start: seg.header.dataStart,
    limit: seg.flushedBytes,
    seq: seg.firstSeq,
    timestamp: seg.header.version === 1 ? 0 : seg.header.baseTimestamp,
    maxPayload: seg.header.maxRecordBytes,
  }, 4096).next();
  return step.kind === "frame" ? step.timestamp : null;
}

/**
 * A read-only view of the log in directory `dir`: its segments (shared with readers, changed in
 * place like a writer's), how far they go, what is committed, and a signal at each change.
 *
 * @example
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { LogTail } from "./log_tail.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim, syncPolicy: SyncPolicy.osManaged() });
 * const log = await store.log("l");
 * await log.append("written, not yet fdatasynced");
 * const tail = await LogTail.open(sim, "/s/l");
 * const seen = [tail.nextSeq, tail.committedEnd];
 * await log.sync(); // the writer's mark slot now says record 0 is durable
 * await tail.refresh();
 * tail.close();
 * await store.close();
 * if (seen.join() !== "1,0" || tail.committedEnd !== 1) throw new Error(`${seen} ${tail.committedEnd}`);
 * ```
 */
export class LogTail {
  /** Every segment, oldest first; the last is live unless the writer sealed it. */
  readonly segments: SegmentView[] = [];
  readonly #platform: Platform;
  readonly #dir: string;
  readonly #ids: LogIdCheck;
  #live: TailSegment | null = null;
  #changed = new ChangeSignal();
  #refreshing: Promise<void> | null = null;
  #again = false;
  #watch: PlatformWatcher | null = null;
  #poll: BackgroundTimer | null = null;
  #lastWait = 0;
  #soon: BackgroundTimer | null = null;
  #soonMs = SOON_FIRST_MS;
  #closed = false;
  #failure: unknown = null;

  private constructor(platform: Platform, dir: string, ids: LogIdCheck) {
    this.#platform = platform;
    this.#dir = dir;
    this.#ids = ids;
  }

  /**
   * Opens the log in `dir` for reading: `NotFoundError` if there is none, `CorruptionError` for
   * damage in a sealed segment (the writer would refuse it too). Writes nothing.
   */
  static async open(platform: Platform, dir: string): Promise<LogTail> {
    const st = await platform.lstat(dir);
    if (!st) throw new NotFoundError({ op: "open log (read-only)", path: dir });
    if (st.isSymlink || !st.isDirectory) {
      throw new FileTypeError({
        path: dir,
        found: st.isSymlink ? "a symbolic link" : "a file",
        expected: "a log directory",
      });
    }
    const tail = new LogTail(platform, dir, new LogIdCheck());
    await tail.refresh();
    return tail;
  }

  /** The log's 16-byte id (all zeros for a log with no v2 segment yet). */
  get logId(): Uint8Array {
    return this.#ids.known?.id ?? new Uint8Array(16);
  }

  /** One past the last record in the log as far as it is written whole. */
  get nextSeq(): number {
    if (this.#live) return this.#live.flushedSeq;
    const last = this.segments[this.segments.length - 1];
    return last?.kind === "sealed" ? last.endSeq : 0;
  }

  /** One past the last record the writer has fdatasynced (as its newest mark slot says). */
  get committedEnd(): number {
    return this.#live ? this.#live.committedSeq : this.nextSeq;
  }

  /** Resolves at the next change; watches the directory meanwhile. */
  changed(): Promise<void> {
    this.#lastWait = Date.now();
    this.#startWatching();
    const next = this.#changed.next();
    // What changed between the last refresh and the watch's start reported nothing: look now.
    this.refresh().catch(() => {});
    return next;
  }

  /** The failure of the last refresh (a reader reports it), or null. */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * Reads what changed: new batches, a seal, new and deleted segments. Calls made while one runs
   * share the next run.
   */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    const run = (async () => {
      try {
        do {
          this.#again = false;
          if (this.#closed) return;
          if (await this.#update()) this.#changed.notify();
        } while (this.#again);
        this.#failure = null;
        this.#checkSoon();
      } catch (err) {
        this.#failure = err;
        this.#changed.notify();
        throw err;
      } finally {
        this.#refreshing = null;
      }
    })();
    this.#refreshing = run;
    return run;
  }

  /**
   * While a follower waits and records are written but not yet committed, looks again after a few
   * ms (doubling up to the poll interval): the writer's mark slot follows its data by one
   * fdatasync, and a watch may fold the two writes into one event (Bun drops a second change to a
   * file within ~2 ms), which would leave a committed follower waiting for the poll.
   */
  #checkSoon(): void {
    if (this.#closed || this.#soon || !this.#changed.waiting) return;
    if (this.committedEnd >= this.nextSeq) {
      this.#soonMs = SOON_FIRST_MS;
      return;
    }
    this.#soon = backgroundTimeout(() => {
      this.#soon = null;
      this.refresh().catch(() => {});
    }, this.#soonMs);
    this.#soonMs = Math.min(this.#soonMs * 2, TAIL_POLL_MS);
  }

  /** Stops watching and closes the files. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#stopWatching();
    this.#soon?.clear();
    // The live segment stays known: nextSeq and committedEnd keep saying what was last seen.
    this.#live?.close();
    this.#changed.notify();
  }

  async #update(): Promise<boolean> {
    let moved = false;
    const live = this.#live;
    if (live) {
      moved = live.advance();
      if (live.sealed) this.#sealLive(live);
      // Between rollovers the directory changes only by retention: list it once in a while.
      else if (!moved) return this.#listDirectory();
      else return true;
    }
    return (await this.#listDirectory()) || moved;
  }

  #sealLive(live: TailSegment): void {
    const i = this.segments.findIndex((s) => s.kind === "live" && s.writer === live);
    if (i >= 0) this.segments[i] = live.sealedView();
    live.close();
    this.#live = null;
  }

  /** Drops segments retention deleted and adds the ones created since. True if any changed. */
  async #listDirectory(): Promise<boolean> {
    let names: string[];
    try {
      names = await this.#platform.readdir(this.#dir);
    } catch (err) {
      // The log was deleted under this store: nothing more will come.
      if (err instanceof NotFoundError) return false;
      throw err;
    }
    const seqs = segmentSeqs(names);
    const present = new Set(seqs);
    let changed = false;
    while (this.segments.length > 1 && !present.has(this.segments[0].firstSeq)) {
      this.segments.shift();
      changed = true;
    }
    const known = this.segments[this.segments.length - 1]?.firstSeq ?? -1;
    const newer = seqs.filter((s) => s > known);
    if (this.#live || newer.length === 0) return changed;
    return (await this.#addSegments(newer)) || changed;
  }

  /** Adds segments past the known ones: sealed ones checked by their seal, the newest followed. */
  async #addSegments(seqs: number[]): Promise<boolean> {
    const pathOf = (seq: number) => `${this.#dir}/${segmentFileName(seq)}`;
    let added = false;
    for (let i = 0; i < seqs.length; i++) {
      const path = pathOf(seqs[i]);
      if (i < seqs.length - 1) {
        const next = { path: pathOf(seqs[i + 1]), firstSeq: seqs[i + 1] };
        const sealed = await checkSealed(this.#platform, path, seqs[i], next, this.#ids)
          .catch(retryLater);
        if (sealed === null) return added;
        if (sealed instanceof CorruptionError) {
          // The newest but one may be sealed but its successor's header not written yet: follow it.
          if (i < seqs.length - 2) throw sealed;
        } else {
          this.segments.push(sealed);
          added = true;
          continue;
        }
      }
      const seg = await openTailSegment(this.#platform, path, seqs[i], this.#ids).catch(retryLater);
      if (seg === null) return added; // header not written yet: the writer is creating it
      seg.advance();
      added = true;
      if (seg.sealed) {
        this.segments.push(seg.sealedView());
        seg.close();
        continue;
      }
      this.#live = seg;
      this.segments.push(seg.liveView());
      return added;
    }
    return added;
  }

  #startWatching(): void {
    if (this.#closed || this.#poll) return;
    this.#watch = this.#platform.watch(this.#dir, () => {
      this.refresh().catch(() => {});
    });
    this.#poll = backgroundInterval(() => {
      if (Date.now() - this.#lastWait > WATCH_LINGER_MS && !this.#changed.waiting) {
        this.#stopWatching();
        return;
      }
      this.refresh().catch(() => {});
    }, TAIL_POLL_MS);
  }

  #stopWatching(): void {
    this.#watch?.close();
    this.#watch = null;
    this.#poll?.clear();
    this.#poll = null;
  }
}

/** A file that vanished (retention) or is not readable yet: try again at the next change. */
function retryLater(err: unknown): null {
  if (err instanceof NotFoundError) return null;
  throw err;
}
