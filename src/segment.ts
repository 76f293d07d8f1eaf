/**
 * One segment file being written, in format v2: a header, the two mark slots, the stored index
 * entries, then frames; once sealed, a seal frame ends the file.
 *
 * Appends are encoded into a user-space buffer (default 256 KiB). `flush()` hands the buffer to the
 * OS (page cache) in one positional write; `sync()` flushes, then fdatasyncs. A segment may exist
 * in memory before its file does (the log starts the next segment synchronously at rollover and
 * creates its file durably on the next flush), which keeps `append` synchronous and cheap.
 *
 * Preallocation: each flush that passes the allocated end writes zeros from the new end of the
 * data up to 1 MiB further (never past `segmentBytes`), so the writes and fdatasyncs that follow
 * overwrite allocated blocks instead of growing the file. The durable mark: after each fdatasync
 * the segment writes a mark slot saying what it covered (durable with the next fdatasync, or the
 * close's), which recovery starts from and read-only stores read as "committed" (RECOVERY.md).
 *
 * Failure rules: a failed write truncates the file back to the last whole frame, so a later flush can
 * never complete half a frame; a failed fdatasync poisons the segment (no retry: the kernel may have
 * dropped the dirty pages, and a retry that succeeds would lie).
 *
 * @example
 * ```ts
 * import { mkdirDurable } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { newLogId } from "./format/header.ts";
 * import { logIdentity, Segment } from "./segment.ts";
 * const sim = new SimPlatform();
 * await mkdirDurable(sim, "/log");
 * const start = { firstSeq: 0, prevEndSeq: 0, baseTimestamp: 1_000, log: logIdentity(newLogId()) };
 * const opts = { bufferBytes: 256 << 10, maxRecordBytes: 1 << 20, segmentBytes: 1 << 20 };
 * const seg = Segment.pending(sim, "/log", start, opts);
 * seg.append(0, 1_000, new TextEncoder().encode("hello"), true);
 * await seg.sync(); // creates the file durably, writes, fdatasyncs
 * seg.close();
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * const bytes = afterCut.fileBytes("/log/00000000000000000000.seg");
 * if (bytes?.length !== 1 << 20) throw new Error(`${bytes?.length} bytes`); // preallocated
 * ```
 * @module
 */
import { ClosedError, PoisonedError } from "./errors.ts";
import { createFileDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { crc32 } from "./format/checksum.ts";
import {
  dataStartFor,
  encodeHeader,
  HEADER_BYTES,
  MAX_INDEX_CAPACITY,
  seedOf,
} from "./format/header.ts";
import { encodeFrameInto, FRAME_RECORD, FRAME_RECORD_MORE, frameBytes } from "./format/frame.ts";
import { INDEX_INTERVAL_BYTES } from "./format/limits.ts";
import { encodeEntry, encodeSlot, entryOffset, slotOffset } from "./format/mark.ts";
import { encodeSealFrame } from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";

/** How far ahead of the data a segment's file is zero-filled. */
export const PREALLOCATE_BYTES: number = 1 << 20;

/**
 * At close, a last mark slot (and its fdatasync) is written only if the data after the newest
 * slot is at least this long: the next open scans at most this much that a mark could have spared.
 */
export const MARK_ON_CLOSE_BYTES: number = 1 << 20;

/** Sizes a segment works with. */
export interface SegmentOptions {
  /** User-space buffer size in bytes. */
  bufferBytes: number;
  /** Largest record payload; written into the header for recovery. */
  maxRecordBytes: number;
  /** The rollover size: how far the file is preallocated, and the room for index entries. */
  segmentBytes: number;
  /** Permission bits of the file when created. */
  fileMode?: number;
}

/** A log's identity as its segments use it. */
export interface LogIdentity {
  /** The 16-byte log id. */
  id: Uint8Array;
  /** CRC-32 of the id: every frame's checksum starts from it. */
  idCrc: number;
}

/**
 * The identity of the log with id `id`.
 *
 * @example
 * ```ts
 * import { logIdentity } from "./segment.ts";
 * if (logIdentity(new Uint8Array(16).fill(1)).id.length !== 16) throw new Error("id");
 * ```
 */
export function logIdentity(id: Uint8Array): LogIdentity {
  return { id, idCrc: crc32(id) };
}

/** Where a new segment starts in its log. */
export interface SegmentStart {
  /** Sequence number of its first record. */
  firstSeq: number;
  /** One past the previous segment's last record (below `firstSeq` if seqs were skipped). */
  prevEndSeq: number;
  /** No record in it is older: the log's last timestamp so far. */
  baseTimestamp: number;
  /** The log it belongs to. */
  log: LogIdentity;
}

/** File name of the segment whose first record is `firstSeq`: 20 zero-padded digits + `.seg`. */
export function segmentFileName(firstSeq: number): string {
  return `${String(firstSeq).padStart(20, "0")}.seg`;
}

/** Parses a segment file name; `null` if `name` is not one. */
export function parseSegmentFileName(name: string): number | null {
  if (!/^\d{20}\.seg$/.test(name)) return null;
  const n = Number(name.slice(0, 20));
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * The first seqs of the segment files among directory entries `names`, ascending: the log's
 * segments in order (every other name is ignored).
 *
 * @example
 * ```ts
 * import { segmentSeqs } from "./segment.ts";
 * const names = ["00000000000000000042.seg", "x.seg", "00000000000000000007.seg", "cursors"];
 * if (segmentSeqs(names).join() !== "7,42") throw new Error(segmentSeqs(names).join());
 * ```
 */
export function segmentSeqs(names: readonly string[]): number[] {
  return names.map(parseSegmentFileName).filter((n): n is number => n !== null).sort((a, b) =>
    a - b
  );
}

/** Stored index entries a new segment reserves room for: one per 64 KiB it may hold. */
export function indexCapacityFor(segmentBytes: number): number {
  return Math.min(MAX_INDEX_CAPACITY, Math.floor(segmentBytes / INDEX_INTERVAL_BYTES));
}

/** What recovery found in a v2 segment file it hands to the writer. */
export interface RecoveredSegment {
  /** The file system. */
  platform: Platform;
  /** The file, open for writing. */
  file: PlatformFile;
  /** Its header's fields. */
  start: SegmentStart;
  /** Its stored index capacity (from the header). */
  indexCapacity: number;
  /** Sizes; `maxRecordBytes` is the cap in the file's header. */
  options: SegmentOptions;
  /** End of the last complete batch: where the next frame goes. */
  flushedBytes: number;
  /** One past its last record. */
  nextSeq: number;
  /** Timestamp of its first record (null if it holds none). */
  firstTimestamp: number | null;
  /** Timestamp of its last record (the base timestamp if none). */
  lastTimestamp: number;
  /** Its sparse index up to `flushedBytes` (entry 0 included). */
  index: SparseIndex;
  /** Index entries already durable in the file (entry 0, implied, counts). */
  persistedEntries: number;
  /** The newest mark slot in the file: its generation (0 if none) and durable end. */
  mark: { generation: number; end: number };
}

/** What an fdatasync made durable: what the next mark slot may claim. */
interface DurableState {
  end: number;
  nextSeq: number;
  lastTimestamp: number;
  storedEntries: number;
}

interface Chunk {
  bytes: Uint8Array;
  used: number;
  firstSeq: number;
  prevTimestamp: number;
}

let zeros: Uint8Array | null = null;

/**
 * A segment being written. See the module doc for the buffering, preallocation and failure rules.
 *
 * @example
 * ```ts
 * import { Segment, segmentFileName } from "./segment.ts";
 * if (segmentFileName(42) !== "00000000000000000042.seg") throw new Error(segmentFileName(42));
 * ```
 */
export class Segment {
  /** Path of the segment file. */
  readonly path: string;
  /** Sequence number of its first record. */
  readonly firstSeq: number;
  /** Where it starts in its log (header fields). */
  readonly start: SegmentStart;
  /** Offset of its first frame. */
  readonly dataStart: number;
  /** Bytes of whole frames in the file (from byte 0): the readable length. */
  flushedBytes: number;
  /** One past the last record in the file. */
  flushedSeq: number;
  /** One past the last record appended (buffered or flushed). */
  nextSeq: number;
  /** Timestamp of the last record appended (the base timestamp if none). */
  lastTimestamp: number;
  /** Timestamp of the last record in the file. */
  flushedTimestamp: number;
  /** Timestamp of its first record, once it has one. */
  firstTimestamp: number | null;
  /** Sparse index of frames in the file: entry 0 at `dataStart`, then one per flush 64 KiB on. */
  readonly index: SparseIndex;
  #platform: Platform;
  #opts: SegmentOptions;
  #indexCapacity: number;
  #seed: number;
  #file: PlatformFile | null;
  #chunks: Chunk[] = [];
  #bufferedBytes = 0;
  #poison: PoisonedError | null = null;
  #closed = false;
  #sealed = false;
  #sealBytes = 0;
  /** The file's size: what the writer wrote to it, preallocated zeros included. */
  #fileSize: number;
  #persisted: number;
  #mark: { generation: number; end: number };
  /** The durable end claimed by the newest slot an fdatasync covered. */
  #markSynced: number;
  #durable: DurableState;

  private constructor(
    init: Omit<RecoveredSegment, "file"> & {
      path: string;
      file: PlatformFile | null;
      fileSize: number;
    },
  ) {
    this.#platform = init.platform;
    this.path = init.path;
    this.start = init.start;
    this.firstSeq = init.start.firstSeq;
    this.#opts = init.options;
    this.#indexCapacity = init.indexCapacity;
    this.dataStart = dataStartFor(init.indexCapacity);
    this.#seed = seedOf(init.start.log.id, init.start.firstSeq);
    this.#file = init.file;
    this.flushedBytes = init.flushedBytes;
    this.flushedSeq = init.nextSeq;
    this.nextSeq = init.nextSeq;
    this.lastTimestamp = init.lastTimestamp;
    this.flushedTimestamp = init.lastTimestamp;
    this.firstTimestamp = init.firstTimestamp;
    this.index = init.index;
    this.#fileSize = init.fileSize;
    this.#persisted = init.persistedEntries;
    this.#mark = init.mark;
    this.#markSynced = init.mark.end;
    // Recovery fdatasynced what it kept; a new segment's data starts empty and synced.
    this.#durable = {
      end: init.flushedBytes,
      nextSeq: init.nextSeq,
      lastTimestamp: init.lastTimestamp,
      storedEntries: init.persistedEntries - 1,
    };
  }

  /** A new segment whose file is created (durably) by its first flush. */
  static pending(
    platform: Platform,
    dir: string,
    start: SegmentStart,
    opts: SegmentOptions,
  ): Segment {
    const indexCapacity = indexCapacityFor(opts.segmentBytes);
    const dataStart = dataStartFor(indexCapacity);
    const index = new SparseIndex();
    index.push(start.firstSeq, dataStart, start.baseTimestamp);
    return new Segment({
      platform,
      path: `${dir}/${segmentFileName(start.firstSeq)}`,
      start,
      indexCapacity,
      options: opts,
      file: null,
      flushedBytes: dataStart,
      nextSeq: start.firstSeq,
      firstTimestamp: null,
      lastTimestamp: start.baseTimestamp,
      index,
      persistedEntries: 1,
      mark: { generation: 0, end: dataStart },
      fileSize: HEADER_BYTES,
    });
  }

  /**
   * Rewrites `file` (open for writing) in place, durably, as an empty segment starting at
   * `start`, and adopts it. Never unlink + create: the name carries `firstSeq`, and if this is the
   * only segment left (after retention), a crash in between would restart the log at 0;
   * interrupted here, a short or zeroed header is recreated under the same name at the next open.
   */
  static async rewriteEmpty(
    platform: Platform,
    file: PlatformFile,
    start: SegmentStart,
    opts: SegmentOptions,
  ): Promise<Segment> {
    const empty = Segment.pending(platform, "", start, opts);
    file.truncate(0);
    file.writeAt(empty.#header(), 0);
    await file.datasync();
    return Segment.recovered({
      platform,
      file,
      start,
      indexCapacity: empty.#indexCapacity,
      options: opts,
      flushedBytes: empty.dataStart,
      nextSeq: start.firstSeq,
      firstTimestamp: null,
      lastTimestamp: start.baseTimestamp,
      index: empty.index,
      persistedEntries: 1,
      mark: { generation: 0, end: empty.dataStart },
    });
  }

  /** Adopts a recovered file open for writing, holding whole batches up to `flushedBytes`. */
  static recovered(init: RecoveredSegment): Segment {
    return new Segment({ ...init, path: init.file.path, fileSize: init.file.size() });
  }

  /** Largest payload this segment's header allows; larger records need a new segment. */
  get maxRecordBytes(): number {
    return this.#opts.maxRecordBytes;
  }

  /** Bytes appended but not yet flushed. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Size the records will have once the buffer is flushed (from byte 0 of the file). */
  get projectedBytes(): number {
    return this.flushedBytes + this.#bufferedBytes;
  }

  /** Records appended to this segment (buffered or flushed). */
  get recordCount(): number {
    return this.nextSeq - this.firstSeq;
  }

  /** True once the file exists. */
  get materialized(): boolean {
    return this.#file !== null;
  }

  /** True once an fdatasync failed, or a failed write could not be cut back: never write again. */
  get poisoned(): boolean {
    return this.#poison !== null;
  }

  /** True once the seal is written. */
  get sealed(): boolean {
    return this.#sealed;
  }

  /** Size of the file on disk: its frames, then the seal or the preallocated zeros. */
  get diskBytes(): number {
    return this.#file ? this.#fileSize : 0;
  }

  /** Bytes of the file's frames, and the seal once written (not the preallocated zeros). */
  get fileBytes(): number {
    return this.flushedBytes + this.#sealBytes;
  }

  /**
   * Encodes a record into the buffer. `seq` must be {@linkcode Segment.nextSeq}, `timestamp` at
   * least {@linkcode Segment.lastTimestamp}; `batchEnd` is false for every record of a batch but
   * its last, so that recovery keeps a batch whole or not at all.
   */
  append(seq: number, timestamp: number, payload: Uint8Array, batchEnd: boolean): void {
    this.#assertUsable();
    const delta = timestamp - this.lastTimestamp;
    const need = frameBytes(payload.length, delta);
    let chunk = this.#chunks[this.#chunks.length - 1];
    if (chunk && chunk.used === 0) {
      chunk.firstSeq = seq;
      chunk.prevTimestamp = this.lastTimestamp;
    }
    if (!chunk || chunk.bytes.length - chunk.used < need) {
      chunk = {
        bytes: new Uint8Array(Math.max(this.#opts.bufferBytes, need)),
        used: 0,
        firstSeq: seq,
        prevTimestamp: this.lastTimestamp,
      };
      this.#chunks.push(chunk);
    }
    const type = batchEnd ? FRAME_RECORD : FRAME_RECORD_MORE;
    const idCrc = this.start.log.idCrc;
    chunk.used = encodeFrameInto(chunk.bytes, chunk.used, type, idCrc, seq, delta, payload);
    this.#bufferedBytes += need;
    this.nextSeq = seq + 1;
    this.lastTimestamp = timestamp;
    this.firstTimestamp ??= timestamp;
  }

  /**
   * Moves the buffer to the OS with one positional write, zero-fills ahead of it when it passes
   * the allocated end, and stores new index entries. The file must exist (see
   * {@linkcode Segment.materialize}). On failure the file is cut back to its last whole frame, the
   * buffer is kept (the caller decides what to drop) and the error is rethrown.
   */
  flush(): void {
    this.#assertUsable();
    if (this.#bufferedBytes === 0) return;
    const file = this.#requireFile();
    const full = this.#chunks.filter((c) => c.used > 0);
    const entries: Chunk[] = [];
    let offset = this.flushedBytes;
    let last = this.index.lastOffset;
    for (const c of full) {
      if (offset - last >= INDEX_INTERVAL_BYTES) {
        entries.push(c);
        last = offset;
      }
      offset += c.used;
    }
    const end = offset;
    const indexed = this.index.length;
    try {
      const views = full.map((c) => c.bytes.subarray(0, c.used));
      if (views.length === 1) file.writeAt(views[0], this.flushedBytes);
      else file.writevAt(views, this.flushedBytes);
      this.#preallocate(file, end);
      let at = this.flushedBytes;
      for (const c of full) {
        if (entries.includes(c)) this.index.push(c.firstSeq, at, c.prevTimestamp);
        at += c.used;
      }
      this.#persistEntries(file);
    } catch (err) {
      // Entries of the records cut back go too (the file's copies lie past any mark's count).
      this.index.truncate(indexed);
      this.#persisted = Math.min(this.#persisted, indexed);
      this.#cutBack(file);
      throw err;
    }
    this.flushedBytes = end;
    this.flushedSeq = this.nextSeq;
    this.flushedTimestamp = this.lastTimestamp;
    this.#resetBuffer();
  }

  /**
   * Zeros from the end of the data to the next 1 MiB boundary past it (at most `segmentBytes`),
   * once the data passes the allocated end. A failure is ignored: the records were written.
   */
  #preallocate(file: PlatformFile, end: number): void {
    if (end <= this.#fileSize) return;
    this.#fileSize = end;
    const target = Math.min(
      Math.max(end, this.#opts.segmentBytes),
      (Math.floor(end / PREALLOCATE_BYTES) + 1) * PREALLOCATE_BYTES,
    );
    if (target <= end) return;
    zeros ??= new Uint8Array(PREALLOCATE_BYTES);
    try {
      file.writeAt(zeros.subarray(0, target - end), end);
      this.#fileSize = target;
    } catch {
      // Only a speed-up: a full disk may refuse the zeros yet take the records. Zeros that did
      // land past the data are preallocated space like any other.
      this.#fileSize = file.size();
    }
  }

  /** Writes the index entries not yet in the file (those past its room stay in memory only). */
  #persistEntries(file: PlatformFile): void {
    const room = this.#indexCapacity + 1;
    for (; this.#persisted < Math.min(this.index.length, room); this.#persisted++) {
      const i = this.#persisted;
      const entry = {
        seq: this.index.seqAt(i),
        offset: this.index.offsetAt(i),
        prevTimestamp: this.index.timestampAt(i),
      };
      file.writeAt(encodeEntry(entry, this.#seed), entryOffset(i));
    }
    if (this.#persisted < this.index.length) this.#persisted = this.index.length;
  }

  /** Empties the buffer, keeping one standard-size chunk: allocating 256 KiB per flush is slow. */
  #resetBuffer(): void {
    const first = this.#chunks[0];
    if (first && first.bytes.length === this.#opts.bufferBytes) {
      first.used = 0;
      this.#chunks = [first];
    } else {
      this.#chunks = [];
    }
    this.#bufferedBytes = 0;
  }

  /** Drops every buffered record (after a failed flush); returns the first dropped seq. */
  discardBuffer(): number {
    this.#resetBuffer();
    this.nextSeq = this.flushedSeq;
    this.lastTimestamp = this.flushedTimestamp;
    if (this.nextSeq === this.firstSeq) this.firstTimestamp = null;
    return this.flushedSeq;
  }

  /** Creates the file durably (file + header + fdatasync + directory fsync), if not yet done. */
  async materialize(): Promise<void> {
    this.#assertUsable();
    if (this.#file) return;
    const header = this.#header();
    this.#file = await createFileDurable(this.#platform, this.path, header, this.#opts.fileMode);
  }

  /** The segment's header bytes. */
  #header(): Uint8Array {
    return encodeHeader({
      firstSeq: this.firstSeq,
      maxRecordBytes: this.#opts.maxRecordBytes,
      logId: this.start.log.id,
      prevEndSeq: this.start.prevEndSeq,
      baseTimestamp: this.start.baseTimestamp,
      indexCapacity: this.#indexCapacity,
    });
  }

  /** Flushes, then fdatasyncs. A failed fdatasync poisons the segment. */
  async sync(): Promise<void> {
    await this.materialize();
    this.flush();
    await this.datasync();
  }

  /**
   * fdatasync of what is already flushed, then the mark slot saying what it covered. The slot is
   * written at once (not just before the next fdatasync, which makes it durable either way) so
   * that readers in other processes learn without delay what is durable: a read-only store's
   * committed reads end at the newest slot. A failure poisons the segment and throws.
   */
  async datasync(): Promise<void> {
    this.#assertUsable();
    const file = this.#requireFile();
    const covered: DurableState = {
      end: this.flushedBytes,
      nextSeq: this.flushedSeq,
      lastTimestamp: this.flushedTimestamp,
      storedEntries: Math.min(this.#persisted, this.#indexCapacity + 1) - 1,
    };
    const markInFile = this.#mark.end;
    await this.#fdatasync(file);
    this.#markSynced = markInFile;
    this.#durable = covered;
    try {
      this.#writeMark(file);
    } catch {
      // The records are durable, so this fdatasync succeeded for its waiters; the failed slot
      // write has poisoned the segment, and the next write or fdatasync reports it.
    }
  }

  /**
   * fdatasyncs the newest mark slot (written after the last fdatasync, not yet durable itself), so
   * that the next open, even after a power cut, starts at the end instead of scanning the data
   * since the newest durable slot. Done only when that data is at least
   * {@linkcode MARK_ON_CLOSE_BYTES} long (else the scan costs less than the fdatasync).
   */
  async markClean(): Promise<void> {
    if (this.#closed || this.#poison || !this.#file || this.#sealed) return;
    // A short unmarked tail costs the next open less than this fdatasync costs every close.
    if (this.#mark.end - this.#markSynced < MARK_ON_CLOSE_BYTES) return;
    await this.#fdatasync(this.#file);
    this.#markSynced = this.#mark.end;
  }

  #writeMark(file: PlatformFile): void {
    const d = this.#durable;
    if (d.end <= this.#mark.end) return;
    const generation = this.#mark.generation + 1;
    const slot = encodeSlot({
      generation,
      durableEnd: d.end,
      nextSeq: d.nextSeq,
      lastTimestamp: d.lastTimestamp,
      storedEntries: d.storedEntries,
    }, this.#seed);
    try {
      file.writeAt(slot, slotOffset(generation));
    } catch (err) {
      // A slot half written must never be followed by frames a later slot would vouch for.
      this.#poison = new PoisonedError({ path: this.path, cause: err });
      throw err;
    }
    this.#mark = { generation, end: d.end };
  }

  async #fdatasync(file: PlatformFile): Promise<void> {
    try {
      await file.datasync();
    } catch (err) {
      this.#poison = new PoisonedError({ path: this.path, cause: err });
      throw err;
    }
  }

  /**
   * Flushes, writes the seal (sparse index, first and last timestamps), cuts the preallocated
   * zeros off and fdatasyncs: after this the segment is immutable and a later open trusts it
   * without scanning. `timestamp` is the sealing time (at least the last record's).
   */
  async seal(timestamp: number): Promise<void> {
    await this.materialize();
    this.flush();
    const file = this.#requireFile();
    const seal = encodeSealFrame({
      idCrc: this.start.log.idCrc,
      endSeq: this.flushedSeq,
      firstTimestamp: this.firstTimestamp ?? this.start.baseTimestamp,
      lastTimestamp: this.flushedTimestamp,
      sealTimestamp: Math.max(timestamp, this.flushedTimestamp),
      index: this.index,
    });
    try {
      file.writeAt(seal, this.flushedBytes);
      file.truncate(this.flushedBytes + seal.length);
      this.#fileSize = this.flushedBytes + seal.length;
    } catch (err) {
      this.#cutBack(file);
      throw err;
    }
    this.#sealed = true;
    this.#sealBytes = seal.length;
    await this.#fdatasync(file);
  }

  /** Closes the file. Buffered bytes that were not flushed are dropped; call `sync` first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file?.close();
  }

  #cutBack(file: PlatformFile): void {
    try {
      file.truncate(this.flushedBytes);
      this.#fileSize = this.flushedBytes;
    } catch (truncErr) {
      // The file may now end in a partial frame that a later flush would complete: unusable.
      this.#poison = new PoisonedError({ path: this.path, cause: truncErr });
    }
  }

  #requireFile(): PlatformFile {
    if (!this.#file) {
      throw new ClosedError({ what: "segment file (not created yet)", path: this.path });
    }
    return this.#file;
  }

  #assertUsable(): void {
    if (this.#closed) throw new ClosedError({ what: "segment", path: this.path });
    if (this.#poison) throw this.#poison;
  }
}
