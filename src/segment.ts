/**
 * One segment file: a header, then frames, then (once sealed) a seal frame with its sparse index.
 *
 * Appends are encoded into a user-space buffer (default 256 KiB). `flush()` hands the buffer to the
 * OS (page cache) in one `writev`; `sync()` flushes, then fdatasyncs. A segment may exist in memory
 * before its file does (the log starts the next segment synchronously at rollover and creates its
 * file durably on the next flush), which keeps `append` synchronous and cheap.
 *
 * Failure rules: a failed write truncates the file back to the last whole frame, so a later flush can
 * never complete half a frame; a failed fdatasync poisons the segment (no retry: the kernel may have
 * dropped the dirty pages, and a retry that succeeds would lie).
 *
 * @example
 * ```ts
 * import { mkdirDurable } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { Segment } from "./segment.ts";
 * const sim = new SimPlatform();
 * await mkdirDurable(sim, "/log");
 * const seg = Segment.pending(sim, "/log", 0, { bufferBytes: 256 << 10, maxRecordBytes: 1 << 20 });
 * seg.append(0, Date.now(), new TextEncoder().encode("hello"));
 * await seg.sync(); // creates the file durably, writes, fdatasyncs
 * seg.close();
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * const bytes = afterCut.fileBytes("/log/00000000000000000000.seg");
 * if (bytes?.length !== 32 + 28 + 5) throw new Error(`${bytes?.length} bytes`); // header + frame
 * ```
 * @module
 */
import { ClosedError, PoisonedError } from "./errors.ts";
import { createFileDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { encodeHeader, HEADER_BYTES } from "./format/header.ts";
import { encodeFrameInto, FRAME_HEADER_BYTES, FRAME_RECORD } from "./format/frame.ts";
import { encodeSealFrame, INDEX_INTERVAL_BYTES } from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";

/** Sizes a segment works with. */
export interface SegmentOptions {
  /** User-space buffer size in bytes. */
  bufferBytes: number;
  /** Largest record payload; written into the header for recovery. */
  maxRecordBytes: number;
  /** Permission bits of the file when created. */
  fileMode?: number;
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

/** What recovery found in a segment file it hands to the writer. */
export interface RecoveredSegment {
  /** The file system. */
  platform: Platform;
  /** The file, open for appending. */
  file: PlatformFile;
  /** Sequence number of its first record. */
  firstSeq: number;
  /** Sizes; `maxRecordBytes` is the cap in the file's header. */
  options: SegmentOptions;
  /** Bytes of the header and the whole frames in the file. */
  flushedBytes: number;
  /** One past its last record. */
  nextSeq: number;
  /** Its sparse index so far. */
  index: SparseIndex;
}

/** Everything a segment starts from. */
interface SegmentState extends Omit<RecoveredSegment, "file"> {
  path: string;
  file: PlatformFile | null;
}

interface Chunk {
  bytes: Uint8Array;
  used: number;
  firstSeq: number;
}

/**
 * A segment being written. See the module doc for the buffering and failure rules.
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
  /** Bytes of whole frames in the file (header included): the readable length. */
  flushedBytes: number;
  /** One past the last record in the file. */
  flushedSeq: number;
  /** One past the last record appended (buffered or flushed). */
  nextSeq: number;
  /** Sparse index of frames in the file: an entry at the first flush 64 KiB past the last one. */
  readonly index: SparseIndex;
  #platform: Platform;
  #opts: SegmentOptions;
  #file: PlatformFile | null;
  #chunks: Chunk[] = [];
  #bufferedBytes = 0;
  #poison: PoisonedError | null = null;
  #closed = false;
  #sealed = false;
  #sealBytes = 0;

  private constructor(init: SegmentState) {
    this.#platform = init.platform;
    this.path = init.path;
    this.firstSeq = init.firstSeq;
    this.#opts = init.options;
    this.#file = init.file;
    this.flushedBytes = init.flushedBytes;
    this.flushedSeq = init.nextSeq;
    this.nextSeq = init.nextSeq;
    this.index = init.index;
  }

  /** A new segment whose file is created (durably) by its first flush. */
  static pending(platform: Platform, dir: string, firstSeq: number, opts: SegmentOptions): Segment {
    return new Segment({
      platform,
      path: `${dir}/${segmentFileName(firstSeq)}`,
      firstSeq,
      options: opts,
      file: null,
      flushedBytes: HEADER_BYTES,
      nextSeq: firstSeq,
      index: new SparseIndex(),
    });
  }

  /** Adopts a recovered file open for appending, holding whole frames up to `flushedBytes`. */
  static recovered(init: RecoveredSegment): Segment {
    return new Segment({ ...init, path: init.file.path });
  }

  /** Largest payload this segment's header allows; larger records need a new segment. */
  get maxRecordBytes(): number {
    return this.#opts.maxRecordBytes;
  }

  /** Bytes appended but not yet flushed. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Size the file will have once the buffer is flushed. */
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

  /** Bytes of the file: its whole frames, and the seal once written. */
  get fileBytes(): number {
    return this.flushedBytes + this.#sealBytes;
  }

  /** Encodes a record into the buffer. `seq` must be {@linkcode Segment.nextSeq}. */
  append(seq: number, timestamp: number, payload: Uint8Array): void {
    this.#assertUsable();
    const need = FRAME_HEADER_BYTES + payload.length;
    let chunk = this.#chunks[this.#chunks.length - 1];
    if (chunk && chunk.used === 0) chunk.firstSeq = seq;
    if (!chunk || chunk.bytes.length - chunk.used < need) {
      chunk = {
        bytes: new Uint8Array(Math.max(this.#opts.bufferBytes, need)),
        used: 0,
        firstSeq: seq,
      };
      this.#chunks.push(chunk);
    }
    chunk.used = encodeFrameInto(chunk.bytes, chunk.used, FRAME_RECORD, seq, timestamp, payload);
    this.#bufferedBytes += need;
    this.nextSeq = seq + 1;
  }

  /**
   * Moves the buffer to the OS with one `writev`. The file must exist (see
   * {@linkcode Segment.materialize}). On failure the file is cut back to its last whole frame, the
   * buffer is kept (the caller decides what to drop) and the error is rethrown.
   */
  flush(): void {
    this.#assertUsable();
    if (this.#bufferedBytes === 0) return;
    const file = this.#requireFile();
    const full = this.#chunks.filter((c) => c.used > 0);
    const views = full.map((c) => c.bytes.subarray(0, c.used));
    try {
      if (views.length === 1) file.write(views[0]);
      else file.writev(views);
    } catch (err) {
      this.#cutBack(file);
      throw err;
    }
    let offset = this.flushedBytes;
    for (const c of full) {
      const last = this.index.lastOffset;
      if (last < 0 || offset - last >= INDEX_INTERVAL_BYTES) this.index.push(c.firstSeq, offset);
      offset += c.used;
    }
    this.flushedBytes = offset;
    this.flushedSeq = this.nextSeq;
    this.#resetBuffer();
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
    return this.flushedSeq;
  }

  /** Creates the file durably (file + header + fdatasync + directory fsync), if not yet done. */
  async materialize(): Promise<void> {
    this.#assertUsable();
    if (this.#file) return;
    const header = encodeHeader({
      firstSeq: this.firstSeq,
      maxRecordBytes: this.#opts.maxRecordBytes,
    });
    this.#file = await createFileDurable(this.#platform, this.path, header, this.#opts.fileMode);
  }

  /** Flushes, then fdatasyncs. A failed fdatasync poisons the segment. */
  async sync(): Promise<void> {
    await this.materialize();
    this.flush();
    await this.datasync();
  }

  /** fdatasync of what is already flushed. A failure poisons the segment and throws. */
  async datasync(): Promise<void> {
    this.#assertUsable();
    const file = this.#requireFile();
    try {
      await file.datasync();
    } catch (err) {
      this.#poison = new PoisonedError({ path: this.path, cause: err });
      throw err;
    }
  }

  /**
   * Flushes, writes the seal (sparse index) and fdatasyncs: after this the segment is immutable and
   * a later open trusts it without scanning.
   */
  async seal(timestamp: number): Promise<void> {
    await this.materialize();
    this.flush();
    const file = this.#requireFile();
    const seal = encodeSealFrame(this.flushedSeq, timestamp, this.index);
    try {
      file.write(seal);
    } catch (err) {
      this.#cutBack(file);
      throw err;
    }
    this.#sealed = true;
    this.#sealBytes = seal.length;
    await this.datasync();
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
