/**
 * Opening a log directory: find its segments, trust sealed ones through their header and seal,
 * scan only the newest one, repair a torn tail, and refuse (or, in repair mode, set aside) anything
 * that is damaged rather than torn. The rules are specified in FORMAT.md, "Recovery".
 *
 * @example
 * ```ts
 * import { recoverLog } from "./recovery.ts";
 * import type { Platform } from "./platform/types.ts";
 * async function demo(p: Platform) {
 *   const r = await recoverLog(p, "/tmp/k/events", {
 *     bufferBytes: 256 << 10, maxRecordBytes: 16 << 20, repair: false,
 *   });
 *   console.log(r.report.truncatedBytes, r.active.nextSeq);
 * }
 * ```
 * @module
 */
import { CorruptionError, type KhipuError } from "./errors.ts";
import { createFileDurable, mkdirDurable, renameDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { decodeHeader, encodeHeader, HEADER_BYTES } from "./format/header.ts";
import { decodeFrame, FRAME_HEADER_BYTES, FRAME_SEAL } from "./format/frame.ts";
import { decodeSealPayload, type IndexEntry, sealSizeFromTrailer } from "./format/seal.ts";
import {
  findNextValidFrame,
  FrameScanner,
  hasZeroSector,
  isZeroRange,
  readFully,
  SECTOR_BYTES,
} from "./format/scanner.ts";
import {
  INDEX_INTERVAL_BYTES,
  parseSegmentFileName,
  Segment,
  segmentFileName,
  type SegmentOptions,
} from "./segment.ts";

/** A segment of a log as readers see it. Sealed ones are immutable; the live one has a `writer`. */
export interface SegmentRef {
  /** Sequence number of its first record. */
  firstSeq: number;
  /** Path of the file. */
  path: string;
  /** One past its last record once sealed (the seal's sequence number); `null` while writable. */
  endSeq: number | null;
  /** Sparse index (from the seal, or the writer's live one). */
  index: IndexEntry[];
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
 * import { recoverLog } from "./recovery.ts";
 * import type { Platform } from "./platform/types.ts";
 * const open = (p: Platform) =>
 *   recoverLog(p, "/tmp/k/log", { bufferBytes: 4096, maxRecordBytes: 1024, repair: true });
 * ```
 */
export async function recoverLog(
  platform: Platform,
  dir: string,
  opts: RecoverOptions,
): Promise<Recovered> {
  await mkdirDurable(platform, dir, undefined);
  const report: OpenReport = {
    segments: 0,
    truncatedBytes: 0,
    truncatedAt: null,
    tornHole: false,
    recreatedSegment: null,
    repaired: [],
  };
  const firstSeqs = (await platform.readdir(dir))
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
      await setAsideFrom(platform, firstSeqs.slice(i + 1).map(pathOf), report);
      await keepValidPrefix(
        platform,
        pathOf(firstSeqs[i]),
        firstSeqs[i],
        damage.damage,
        opts,
        report,
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

/** The first sector boundary after `offset`. */
function sectorEnd(offset: number): number {
  return (Math.floor(offset / SECTOR_BYTES) + 1) * SECTOR_BYTES;
}

/**
 * The reader's view of a segment still being written: its limits come from the live `writer`.
 *
 * @example
 * ```ts
 * import { liveRef } from "./recovery.ts";
 * import { Segment } from "./segment.ts";
 * import type { Platform } from "./platform/types.ts";
 * const refFor = (p: Platform) =>
 *   liveRef(Segment.pending(p, "/tmp/k/log", 0, { bufferBytes: 4096, maxRecordBytes: 1024 }));
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
    if (size < HEADER_BYTES + FRAME_HEADER_BYTES + 8) return bad("no seal", size);
    readFully(file, trailer, size - 4);
    const sealBytes = sealSizeFromTrailer(trailer);
    const sealAt = size - sealBytes;
    if (sealBytes < FRAME_HEADER_BYTES + 8 || sealAt < HEADER_BYTES) return bad("no seal", size);
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
    const index = decodeSealPayload(frame.subarray(d.payloadStart, d.payloadEnd), sealBytes);
    if (index === null) return bad("seal index malformed", sealAt);
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
          [],
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
    const index: IndexEntry[] = [];
    let step = scanner.next();
    let seal: { seq: number; end: number; index: IndexEntry[] } | null = null;
    for (; step.kind === "frame"; step = scanner.next()) {
      if (step.type === FRAME_SEAL) {
        const idx = decodeSealPayload(step.payload, step.frameBytes);
        if (idx === null) {
          step = { kind: "bad", offset: step.offset, reason: "seal index malformed" };
          break;
        }
        seal = { seq: step.seq, end: step.offset + step.frameBytes, index: idx };
        step = scanner.next();
        break;
      }
      const last = index[index.length - 1];
      if (!last || step.offset - last.offset >= INDEX_INTERVAL_BYTES) {
        index.push({ seq: step.seq, offset: step.offset });
      }
    }
    const validEnd = seal ? seal.end : step.offset;
    const nextSeq = seal ? seal.seq : scanner.expectedSeq;
    if (step.kind !== "end") {
      // Invalid bytes at validEnd. Torn if nothing valid follows, or if what stands between here
      // and the next valid frame bears the trace of a lost write (all zeros, or a zeroed sector):
      // write-back is per page and unordered, so an un-synced page can be lost below later ones.
      // The cost, documented in FORMAT.md: damage inside a record that itself holds a zeroed
      // sector is reported as a torn tail (openReport.tornHole) rather than as CorruptionError.
      // A lost page whose first part held synced frames leaves zeros only from validEnd to the
      // page's end, which can be shorter than a sector: zeros from validEnd up to the next
      // sector boundary count too (a frame header is never all zeros, so damage cannot look so).
      const next = seal ? -1 : findNextValidFrame(file, validEnd, size, nextSeq, max);
      const hole = next >= 0 &&
        (isZeroRange(file, validEnd, next) || hasZeroSector(file, validEnd, next) ||
          isZeroRange(file, validEnd, Math.min(next, sectorEnd(validEnd))));
      if (next >= 0 && !hole) {
        const reason = step.kind === "bad" ? step.reason : "truncated frame";
        const damage = new CorruptionError(`${reason}, followed by valid frames`, {
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
 * Repair mode: moves the damaged segment to `<name>.broken` and recreates it holding only the whole
 * frames before the damage (the header included), so everything before the damage stays readable.
 */
async function keepValidPrefix(
  platform: Platform,
  path: string,
  firstSeq: number,
  damage: KhipuError,
  opts: RecoverOptions,
  report: OpenReport,
): Promise<void> {
  const file = await platform.open(path, "read");
  let prefix: Uint8Array;
  try {
    const h = decodeHeader(readHead(file));
    if (!h.ok) {
      prefix = encodeHeader({ firstSeq, maxRecordBytes: opts.maxRecordBytes });
    } else {
      const scanner = new FrameScanner(
        file,
        HEADER_BYTES,
        file.size(),
        firstSeq,
        h.header.maxRecordBytes,
      );
      let step = scanner.next();
      while (step.kind === "frame" && step.type !== FRAME_SEAL) step = scanner.next();
      const end = step.offset;
      prefix = new Uint8Array(end);
      readFully(file, prefix, 0);
    }
  } finally {
    file.close();
  }
  // The repaired segment is built under a temporary name, the damaged one is copied aside, and
  // only then does the repaired one replace it (an atomic rename). At every instant the segment's
  // name holds the damaged original or the repaired prefix: a crash mid-repair never leaves the
  // records before the damage only in the `.broken` file (the next open would drop them).
  const tmp = `${path}.repair`;
  await platform.remove(tmp); // left by an interrupted repair
  (await createFileDurable(platform, tmp, prefix, opts.fileMode)).close();
  const movedTo = await copyAside(platform, path, opts.fileMode);
  report.repaired.push({
    path,
    movedTo,
    offset: damage.offset ?? 0,
    reason: damage.message,
  });
  await renameDurable(platform, tmp, path);
}

/** Copies `path` durably to the first free `<path>.broken[.n]`; returns that name. */
async function copyAside(platform: Platform, path: string, mode?: number): Promise<string> {
  let to = `${path}.broken`;
  for (let n = 1; await platform.stat(to); n++) to = `${path}.broken.${n}`;
  const file = await platform.open(path, "read");
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(file.size());
    readFully(file, bytes, 0);
  } finally {
    file.close();
  }
  (await createFileDurable(platform, to, bytes, mode)).close();
  return to;
}

function readHead(file: PlatformFile): Uint8Array {
  const head = new Uint8Array(HEADER_BYTES);
  readFully(file, head, 0);
  return head;
}

async function setAsideFrom(
  platform: Platform,
  paths: string[],
  report: OpenReport,
): Promise<void> {
  // Newest first, so a crash part-way never leaves a gap below a segment still in place.
  for (const path of [...paths].reverse()) {
    const movedTo = await setAside(platform, path);
    report.repaired.push({ path, movedTo, offset: 0, reason: "follows a damaged segment" });
  }
}

async function setAside(platform: Platform, path: string): Promise<string> {
  let to = `${path}.broken`;
  for (let n = 1; await platform.stat(to); n++) to = `${path}.broken.${n}`;
  await renameDurable(platform, path, to);
  return to;
}
