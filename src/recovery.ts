/**
 * Opening a log directory: find its segments, trust sealed ones through their header and seal,
 * scan only the newest one, repair a torn tail, and refuse (or, in repair mode, set aside) anything
 * that is damaged rather than torn. The rules are specified in FORMAT.md, "Recovery".
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { encodeFrame, FRAME_RECORD } from "./format/frame.ts";
 * import { encodeHeader } from "./format/header.ts";
 * import { recoverLog } from "./recovery.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/events");
 * const header = encodeHeader({ firstSeq: 0, maxRecordBytes: 16 << 20 });
 * const record = (seq: number) => encodeFrame(FRAME_RECORD, seq, 0, new Uint8Array(10));
 * const torn = record(1).subarray(0, 20); // a write cut short by a crash
 * const bytes = new Uint8Array([...header, ...record(0), ...torn]);
 * sim.setFileBytes("/events/00000000000000000000.seg", bytes);
 * const opts = { bufferBytes: 256 << 10, maxRecordBytes: 16 << 20, repair: false };
 * const r = await recoverLog(sim, "/events", opts);
 * r.active.close();
 * if (r.report.truncatedBytes !== 20 || r.active.nextSeq !== 1) throw new Error("not repaired");
 * ```
 * @module
 */
import { CorruptionError, FileTypeError, type KhipuError } from "./errors.ts";
import {
  createFileDurable,
  dirModeFor,
  mkdirDurable,
  parentDir,
  renameDurable,
} from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { decodeHeader, encodeHeader, HEADER_BYTES } from "./format/header.ts";
import { decodeFrame, FRAME_HEADER_BYTES, FRAME_SEAL } from "./format/frame.ts";
import {
  decodeSealPayload,
  INDEX_INTERVAL_BYTES,
  maxSealFrameBytes,
  MIN_SEAL_FRAME_BYTES,
  sealSizeFromTrailer,
} from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";
import {
  findNextValidFrame,
  FrameScanner,
  hasZeroSector,
  isZeroRange,
  readFully,
  SCAN_CHUNK_BYTES,
  SECTOR_BYTES,
} from "./format/scanner.ts";
import { parseSegmentFileName, Segment, segmentFileName, type SegmentOptions } from "./segment.ts";

/** A segment of a log as readers see it. Sealed ones are immutable; the live one has a `writer`. */
export interface SegmentRef {
  /** Sequence number of its first record. */
  firstSeq: number;
  /** Path of the file. */
  path: string;
  /** One past its last record once sealed (the seal's sequence number); `null` while writable. */
  endSeq: number | null;
  /** Sparse index (from the seal, or the writer's live one). */
  index: SparseIndex;
  /** File size in bytes (sealed segments). */
  bytes: number;
  /** Largest payload the segment's header allows. */
  maxRecordBytes: number;
  /** The writer while the segment is writable. */
  writer: Segment | null;
}

/** A damaged segment set aside by repair mode. */
export interface RepairAction {
  /** The damaged segment. */
  path: string;
  /** Where it was moved. */
  movedTo: string;
  /** Offset of the first damage (0 for segments moved only because an earlier one was damaged). */
  offset: number;
  /** What was wrong. */
  reason: string;
}

/** What opening a log found and did. Readable as `log.openReport`. */
export interface OpenReport {
  /** Segments in the log after recovery. */
  segments: number;
  /** Bytes cut from a torn tail of the newest segment (0 if none). */
  truncatedBytes: number;
  /** Where the torn tail began, if one was cut. */
  truncatedAt: { path: string; offset: number } | null;
  /** True if the torn tail was zero-filled space followed by frames a lost write never covered. */
  tornHole: boolean;
  /** A newest segment with a torn (short or zero-filled) header that was recreated. */
  recreatedSegment: string | null;
  /** Segments set aside by repair mode. */
  repaired: RepairAction[];
}

/** Recovery options. */
export interface RecoverOptions extends SegmentOptions {
  /** Move damaged segments aside (`.broken`) instead of failing with `CorruptionError`. */
  repair: boolean;
}

/** What {@linkcode recoverLog} hands the log. */
export interface Recovered {
  /** Every segment, oldest first; the last one is `active`'s. */
  segments: SegmentRef[];
  /** The writable newest segment, file open for appending, fdatasynced. */
  active: Segment;
  /** What was found and done. */
  report: OpenReport;
}

/**
 * Opens (creating durably if missing) the log directory `dir` and recovers it.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { recoverLog } from "./recovery.ts";
 * const sim = new SimPlatform();
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, repair: true };
 * (await recoverLog(sim, "/store/log", opts)).active.close();
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * if (!(await afterCut.stat("/store/log"))?.isDirectory) throw new Error("the directory was lost");
 * ```
 */
export async function recoverLog(
  platform: Platform,
  dir: string,
  opts: RecoverOptions,
): Promise<Recovered> {
  const existing = await platform.lstat(dir);
  if (existing?.isSymlink) throw new FileTypeError(dir, "a symbolic link", "a log directory");
  if (existing && !existing.isDirectory) throw new FileTypeError(dir, "a file", "a log directory");
  if (!existing) await mkdirDurable(platform, dir, dirModeFor(opts.fileMode ?? 0o644));
  const report: OpenReport = {
    segments: 0,
    truncatedBytes: 0,
    truncatedAt: null,
    tornHole: false,
    recreatedSegment: null,
    repaired: [],
  };
  const names = await platform.readdir(dir);
  await removeStaleRepairFiles(platform, dir, names);
  const firstSeqs = names
    .map(parseSegmentFileName)
    .filter((n): n is number => n !== null)
    .sort((a, b) => a - b);
  const pathOf = (seq: number) => `${dir}/${segmentFileName(seq)}`;

  const segments: SegmentRef[] = [];
  let activeFirst = 0;
  for (let i = 0; i < firstSeqs.length; i++) {
    const isLast = i === firstSeqs.length - 1;
    if (!isLast) {
      const damage = await checkSealed(
        platform,
        pathOf(firstSeqs[i]),
        firstSeqs[i],
        firstSeqs[i + 1],
      );
      if (!("damage" in damage)) {
        segments.push(damage);
        continue;
      }
      if (!opts.repair) throw damage.damage;
      await keepValidPrefix(
        platform,
        pathOf(firstSeqs[i]),
        firstSeqs[i],
        damage.damage,
        opts,
        report,
        firstSeqs.slice(i + 1).map(pathOf),
      );
    }
    const last = await recoverNewest(platform, pathOf(firstSeqs[i]), firstSeqs[i], opts, report);
    if (last.kind === "active") return finish(segments, last.active, report);
    segments.push(last.ref);
    activeFirst = last.nextFirstSeq;
    break;
  }
  const active = Segment.pending(platform, dir, activeFirst, opts);
  await active.materialize();
  return finish(segments, active, report);
}

/**
 * The torn-tail rule's test for a lost write: could the invalid bytes `[from, to)`, with a valid
 * frame at `to`, be pages the device never received below later pages that it did? Write-back is
 * per page and unordered, so an un-synced page can read back as zeros under later ones. Only zeros
 * a lost page can leave count: a 512-byte-aligned sector of zeros; zeros from `from` to the next
 * page boundary (a lost page whose first part held synced frames: any length, the crash simulator
 * produces 20-byte ones); or zeros from `from` to the next sector boundary covering at least a
 * whole frame header (the same, torn at a sector). A shorter zero run ending inside a page is
 * damage (a zeroed checksum byte, say), and so is anything else. The cost, in FORMAT.md: damage
 * inside synced records that looks exactly like one of these is cut as a torn hole.
 */
function lostWrite(file: PlatformFile, from: number, to: number): boolean {
  const sector = nextBoundary(from, SECTOR_BYTES);
  const page = nextBoundary(from, PAGE_BYTES);
  if (page <= to && isZeroRange(file, from, page)) return true;
  if (sector <= to && sector - from >= FRAME_HEADER_BYTES && isZeroRange(file, from, sector)) {
    return true;
  }
  return hasZeroSector(file, from, to);
}

/** The unit of page-cache write-back: a lost write is lost a whole page at a time. */
const PAGE_BYTES = 4096;

/** The first multiple of `unit` after `offset`. */
function nextBoundary(offset: number, unit: number): number {
  return (Math.floor(offset / unit) + 1) * unit;
}

/**
 * The reader's view of a segment still being written: its limits come from the live `writer`.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { liveRef } from "./recovery.ts";
 * import { Segment } from "./segment.ts";
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024 };
 * const writer = Segment.pending(new SimPlatform(), "/log", 0, opts);
 * const ref = liveRef(writer);
 * if (ref.writer !== writer || ref.endSeq !== null) throw new Error("not the live segment");
 * ```
 */
export function liveRef(writer: Segment): SegmentRef {
  return {
    firstSeq: writer.firstSeq,
    path: writer.path,
    endSeq: null,
    index: writer.index,
    bytes: 0,
    maxRecordBytes: writer.maxRecordBytes,
    writer,
  };
}

function finish(segments: SegmentRef[], active: Segment, report: OpenReport): Recovered {
  segments.push(liveRef(active));
  report.segments = segments.length;
  return { segments, active, report };
}

type SealedCheck = SegmentRef | { damage: CorruptionError };

/**
 * Verifies a non-newest segment through its header and seal only (no scan): the seal's checksum,
 * its index, and that its sequence number is the next segment's first (no gap, no overlap).
 */
async function checkSealed(
  platform: Platform,
  path: string,
  firstSeq: number,
  nextFirstSeq: number,
): Promise<SealedCheck> {
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const head = new Uint8Array(HEADER_BYTES);
    readFully(file, head, 0);
    const h = decodeHeader(head);
    const bad = (reason: string, offset: number, seq?: number) => ({
      damage: new CorruptionError(`sealed segment: ${reason}`, { path, offset, seq }),
    });
    if (!h.ok) return bad(h.reason, 0);
    if (h.header.firstSeq !== firstSeq) {
      return bad(`header says first seq ${h.header.firstSeq}, name says ${firstSeq}`, 0);
    }
    const trailer = new Uint8Array(4);
    if (size < HEADER_BYTES + MIN_SEAL_FRAME_BYTES) return bad("no seal", size);
    readFully(file, trailer, size - 4);
    const sealBytes = sealSizeFromTrailer(trailer);
    const sealAt = size - sealBytes;
    // Checked before anything is allocated: a seal indexes at most one entry per 64 KiB.
    if (sealBytes < MIN_SEAL_FRAME_BYTES || sealBytes > maxSealFrameBytes(size)) {
      return bad(`no seal (trailer says ${sealBytes} bytes)`, size);
    }
    if (sealAt < HEADER_BYTES) return bad("no seal", size);
    const frame = new Uint8Array(sealBytes);
    readFully(file, frame, sealAt);
    const d = decodeFrame(frame, 0, sealBytes, nextFirstSeq, h.header.maxRecordBytes);
    if (d.status !== "ok" || d.type !== FRAME_SEAL) {
      const why = d.status === "bad" ? d.reason : "not a seal";
      return bad(
        `seal invalid (${why}); the next segment starts at ${nextFirstSeq}`,
        sealAt,
        nextFirstSeq,
      );
    }
    const index = decodeSealPayload(frame.subarray(d.payloadStart, d.payloadEnd), sealBytes, {
      firstSeq,
      endSeq: nextFirstSeq,
      sealAt,
    });
    if (typeof index === "string") return bad(index, sealAt);
    return {
      firstSeq,
      path,
      endSeq: nextFirstSeq,
      index,
      bytes: size,
      maxRecordBytes: h.header.maxRecordBytes,
      writer: null,
    };
  } finally {
    file.close();
  }
}

type NewestResult =
  | { kind: "active"; active: Segment }
  | { kind: "sealed"; ref: SegmentRef; nextFirstSeq: number };

/** Scans the newest segment: keeps whole frames, cuts a torn tail, refuses damage. */
async function recoverNewest(
  platform: Platform,
  path: string,
  firstSeq: number,
  opts: RecoverOptions,
  report: OpenReport,
): Promise<NewestResult> {
  const file = await platform.open(path, "append");
  let keep = false;
  try {
    const size = file.size();
    const head = new Uint8Array(HEADER_BYTES);
    readFully(file, head, 0);
    const h = decodeHeader(head);
    if (!h.ok || h.header.firstSeq !== firstSeq) {
      // A header that never reached the disk: a short file, zeros (size grew, data lost), or a
      // header torn into garbage with nothing after it. createFileDurable syncs the header before
      // any frame is written, so a bad header followed by nothing but zeros holds no record.
      // A well-formed header of another format version is never "torn": refuse, don't downgrade.
      const foreign = !h.ok && h.foreignVersion !== undefined;
      if (!foreign && (size < HEADER_BYTES || isZeroRange(file, HEADER_BYTES, size))) {
        // Rewritten in place, never unlinked: the name carries firstSeq, and if it is the only
        // segment left (after retention) a crash between unlink and create would restart at 0.
        file.truncate(0);
        file.write(encodeHeader({ firstSeq, maxRecordBytes: opts.maxRecordBytes }));
        await file.datasync();
        report.recreatedSegment = path;
        keep = true;
        const active = Segment.recovered(
          platform,
          file,
          firstSeq,
          opts,
          HEADER_BYTES,
          firstSeq,
          new SparseIndex(),
        );
        return { kind: "active", active };
      }
      const reason = h.ok ? "header first seq does not match the file name" : h.reason;
      const damage = new CorruptionError(`segment header: ${reason}`, { path, offset: 0 });
      if (!opts.repair || foreign) throw damage;
      file.close();
      await keepValidPrefix(platform, path, firstSeq, damage, opts, report);
      return await recoverNewest(platform, path, firstSeq, opts, report);
    }
    const max = h.header.maxRecordBytes;
    const scanner = new FrameScanner(file, HEADER_BYTES, size, firstSeq, max);
    const index = new SparseIndex();
    let step = scanner.next();
    let seal: { seq: number; end: number; index: SparseIndex } | null = null;
    for (; step.kind === "frame"; step = scanner.next()) {
      if (step.type === FRAME_SEAL) {
        const idx = decodeSealPayload(step.payload, step.frameBytes, {
          firstSeq,
          endSeq: step.seq,
          sealAt: step.offset,
        });
        if (typeof idx === "string") {
          step = { kind: "bad", offset: step.offset, reason: idx };
          break;
        }
        seal = { seq: step.seq, end: step.offset + step.frameBytes, index: idx };
        step = scanner.next();
        break;
      }
      const last = index.lastOffset;
      if (last < 0 || step.offset - last >= INDEX_INTERVAL_BYTES) index.push(step.seq, step.offset);
    }
    const validEnd = seal ? seal.end : step.offset;
    const nextSeq = seal ? seal.seq : scanner.expectedSeq;
    if (step.kind !== "end") {
      // Invalid bytes at validEnd. Torn if nothing valid follows, or if what stands between here
      // and the next valid frame bears the trace of a lost write (see lostWrite).
      const next = seal ? -1 : findNextValidFrame(file, validEnd, size, nextSeq, max);
      const hole = next >= 0 && lostWrite(file, validEnd, next);
      if (next !== -1 && !hole) {
        const reason = step.kind === "bad" ? step.reason : "truncated frame";
        const after = next >= 0 ? "valid frames" : "more frame-like bytes than can be checked";
        const damage = new CorruptionError(`${reason}, followed by ${after}`, {
          path,
          offset: validEnd,
          seq: nextSeq,
        });
        if (!opts.repair) throw damage;
        file.close();
        await keepValidPrefix(platform, path, firstSeq, damage, opts, report);
        return await recoverNewest(platform, path, firstSeq, opts, report);
      }
      file.truncate(validEnd);
      report.truncatedBytes = size - validEnd;
      report.truncatedAt = { path, offset: validEnd };
      report.tornHole = hole;
    }
    await file.datasync();
    if (seal) {
      return {
        kind: "sealed",
        nextFirstSeq: seal.seq,
        ref: {
          firstSeq,
          path,
          endSeq: seal.seq,
          index: seal.index,
          bytes: validEnd,
          maxRecordBytes: max,
          writer: null,
        },
      };
    }
    let cap = max;
    if (nextSeq === firstSeq && max < opts.maxRecordBytes) {
      // An empty segment whose header caps records below the current maxRecordBytes: rewrite its
      // header under the new cap (a non-empty one is rolled over by the log when a record needs
      // it). In place, not unlinked, so the name keeps firstSeq if a crash interrupts this: a
      // short or zero header is recreated under the same name at the next open.
      file.truncate(0);
      file.write(encodeHeader({ firstSeq, maxRecordBytes: opts.maxRecordBytes }));
      await file.datasync();
      cap = opts.maxRecordBytes;
    }
    keep = true;
    // The segment keeps the cap its header was written with, whatever the current option says.
    const active = Segment.recovered(
      platform,
      file,
      firstSeq,
      { ...opts, maxRecordBytes: cap },
      validEnd,
      nextSeq,
      index,
    );
    return { kind: "active", active };
  } finally {
    if (!keep) file.close();
  }
}

/**
 * Repair mode: keeps the whole frames before the damage (the header included) under the segment's
 * name and the damaged original as `<name>.broken[.n]`; `later` segments (after a damaged sealed
 * one) are moved aside too.
 *
 * Every step is durable before the next, in an order where a crash at any point loses nothing:
 * 1. the damaged original is copied to `.broken` (from here on its bytes survive whatever follows);
 * 2. the later segments are renamed to `.broken`, newest first (never a gap below one still there);
 * 3. the kept prefix is written as `<name>.repair`;
 * 4. which is renamed over the original (atomic: the name holds the original or the prefix).
 * A crash before 4 leaves the original in place (damaged, or newest with its damage already saved),
 * and the next open decides again; a leftover `.repair` is removed by the next open.
 */
async function keepValidPrefix(
  platform: Platform,
  path: string,
  firstSeq: number,
  damage: KhipuError,
  opts: RecoverOptions,
  report: OpenReport,
  later: readonly string[] = [],
): Promise<void> {
  const tmp = `${path}${REPAIR_SUFFIX}`;
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const h = decodeHeader(readHead(file));
    let prefixEnd = 0;
    if (h.ok) {
      const scanner = new FrameScanner(file, HEADER_BYTES, size, firstSeq, h.header.maxRecordBytes);
      let step = scanner.next();
      while (step.kind === "frame" && step.type !== FRAME_SEAL) step = scanner.next();
      prefixEnd = step.offset;
    }
    const movedTo = await freeAsideName(platform, path);
    await copyDurable(platform, file, size, movedTo, opts.fileMode);
    report.repaired.push({ path, movedTo, offset: damage.offset ?? 0, reason: damage.message });
    for (const p of [...later].reverse()) {
      const to = await freeAsideName(platform, p);
      await renameDurable(platform, p, to);
      report.repaired.push({
        path: p,
        movedTo: to,
        offset: 0,
        reason: "follows a damaged segment",
      });
    }
    await platform.remove(tmp);
    if (prefixEnd > 0) await copyDurable(platform, file, prefixEnd, tmp, opts.fileMode);
    else {
      const header = encodeHeader({ firstSeq, maxRecordBytes: opts.maxRecordBytes });
      (await createFileDurable(platform, tmp, header, opts.fileMode)).close();
    }
  } finally {
    file.close();
  }
  await renameDurable(platform, tmp, path);
}

/** Suffix of the temporary file a repair builds before renaming it over the damaged segment. */
const REPAIR_SUFFIX = ".repair";

/** The first of `<path>.broken`, `<path>.broken.1`, ... that does not exist. */
async function freeAsideName(platform: Platform, path: string): Promise<string> {
  let to = `${path}.broken`;
  for (let n = 1; await platform.lstat(to); n++) to = `${path}.broken.${n}`;
  return to;
}

/**
 * Copies bytes `[0, end)` of `from` to the new file `to`, a chunk at a time (memory stays bounded
 * whatever the file's size), and makes it durable. A crash part-way leaves a partial copy under a
 * name recovery ignores, never a change to `from`.
 */
async function copyDurable(
  platform: Platform,
  from: PlatformFile,
  end: number,
  to: string,
  mode: number | undefined,
): Promise<void> {
  const chunk = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, end));
  const first = readFully(from, chunk, 0);
  const out = await createFileDurable(platform, to, chunk.subarray(0, first), mode);
  try {
    for (let at = first; at < end;) {
      const n = readFully(from, chunk.subarray(0, Math.min(chunk.length, end - at)), at);
      if (n === 0) break;
      out.write(chunk.subarray(0, n));
      at += n;
    }
    await out.datasync();
  } finally {
    out.close();
  }
}

function readHead(file: PlatformFile): Uint8Array {
  const head = new Uint8Array(HEADER_BYTES);
  readFully(file, head, 0);
  return head;
}

/**
 * Removes `<segment>.repair` files left by a repair a crash interrupted: never the only copy of
 * anything (the segment's own name holds the original or the finished repair), so always safe.
 */
async function removeStaleRepairFiles(
  platform: Platform,
  dir: string,
  names: readonly string[],
): Promise<void> {
  const stale = names.filter((n) =>
    n.endsWith(REPAIR_SUFFIX) && parseSegmentFileName(n.slice(0, -REPAIR_SUFFIX.length)) !== null
  );
  for (const name of stale) await platform.unlink(`${dir}/${name}`);
  if (stale.length > 0) await platform.syncDir(parentDir(`${dir}/${stale[0]}`));
}
