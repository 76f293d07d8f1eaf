/**
 * Opening a log directory: find its segments, trust sealed ones through their header and seal,
 * scan only the newest one, repair a torn tail, and refuse (or, in repair mode, set aside) anything
 * that is damaged rather than torn. The rules are in RECOVERY.md; the torn-or-damaged decision is
 * `./torn_tail.ts`, repair mode `./repair.ts`.
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
import { CorruptionError, FileTypeError } from "./errors.ts";
import { dirModeFor, mkdirDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { decodeHeader, encodeHeader, HEADER_BYTES } from "./format/header.ts";
import { decodeFrame, FRAME_SEAL } from "./format/frame.ts";
import {
  decodeSealPayload,
  INDEX_INTERVAL_BYTES,
  maxSealFrameBytes,
  MIN_SEAL_FRAME_BYTES,
  sealSizeFromTrailer,
} from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";
import { FrameScanner } from "./format/scanner.ts";
import { removeStaleRepairFiles, type RepairAction, repairSegment } from "./repair.ts";
import { parseSegmentFileName, Segment, segmentFileName, type SegmentOptions } from "./segment.ts";
import { liveView, type SealedSegment, type SegmentView } from "./segment_view.ts";
import { isZeroRange, judgeTail } from "./torn_tail.ts";

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
  segments: SegmentView[];
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
  if (existing?.isSymlink) {
    throw new FileTypeError({ path: dir, found: "a symbolic link", expected: "a log directory" });
  }
  if (existing && !existing.isDirectory) {
    throw new FileTypeError({ path: dir, found: "a file", expected: "a log directory" });
  }
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

  const segments: SegmentView[] = [];
  let activeFirst = 0;
  for (let i = 0; i < firstSeqs.length; i++) {
    const isLast = i === firstSeqs.length - 1;
    if (!isLast) {
      const sealed = await checkSealed(
        platform,
        pathOf(firstSeqs[i]),
        firstSeqs[i],
        firstSeqs[i + 1],
      );
      if (!(sealed instanceof CorruptionError)) {
        segments.push(sealed);
        continue;
      }
      // A damaged sealed segment: repaired, it becomes the newest, the later ones set aside.
      if (!opts.repair) throw sealed;
      const later = firstSeqs.slice(i + 1).map(pathOf);
      report.repaired.push(
        ...await repairSegment(platform, pathOf(firstSeqs[i]), firstSeqs[i], sealed, opts, later),
      );
    }
    const last = await recoverNewest(platform, pathOf(firstSeqs[i]), firstSeqs[i], opts, report);
    if (last.kind === "active") return finish(segments, last.active, report);
    segments.push(last.view);
    activeFirst = last.view.endSeq;
    break;
  }
  const active = Segment.pending(platform, dir, activeFirst, opts);
  await active.materialize();
  return finish(segments, active, report);
}

function finish(segments: SegmentView[], active: Segment, report: OpenReport): Recovered {
  segments.push(liveView(active));
  report.segments = segments.length;
  return { segments, active, report };
}

/**
 * Verifies a non-newest segment through its header and seal only (no scan): the seal's checksum,
 * its index, and that its sequence number is the next segment's first (no gap, no overlap).
 * Returns its view, or the damage found.
 */
async function checkSealed(
  platform: Platform,
  path: string,
  firstSeq: number,
  nextFirstSeq: number,
): Promise<SealedSegment | CorruptionError> {
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const h = decodeHeader(readHeader(file));
    const bad = (reason: string, offset: number, seq?: number) =>
      new CorruptionError({ message: `sealed segment: ${reason}`, path, offset, seq });
    if (!h.ok) return bad(h.reason, 0);
    if (h.header.firstSeq !== firstSeq) {
      return bad(`header says first seq ${h.header.firstSeq}, name says ${firstSeq}`, 0);
    }
    const trailer = new Uint8Array(4);
    if (size < HEADER_BYTES + MIN_SEAL_FRAME_BYTES) return bad("no seal", size);
    file.readAt(trailer, size - 4);
    const sealBytes = sealSizeFromTrailer(trailer);
    const sealAt = size - sealBytes;
    // Checked before anything is allocated: a seal indexes at most one entry per 64 KiB.
    if (sealBytes < MIN_SEAL_FRAME_BYTES || sealBytes > maxSealFrameBytes(size)) {
      return bad(`no seal (trailer says ${sealBytes} bytes)`, size);
    }
    if (sealAt < HEADER_BYTES) return bad("no seal", size);
    const frame = new Uint8Array(sealBytes);
    file.readAt(frame, sealAt);
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
      kind: "sealed",
      firstSeq,
      path,
      endSeq: nextFirstSeq,
      index,
      bytes: size,
      maxRecordBytes: h.header.maxRecordBytes,
    };
  } finally {
    file.close();
  }
}

type NewestResult =
  | { kind: "active"; active: Segment }
  | { kind: "sealed"; view: SealedSegment };

/**
 * Recovers the newest segment; in repair mode, damage is set aside once and the segment scanned
 * again (a repaired segment holds only whole frames, so the second scan finds none).
 */
async function recoverNewest(
  platform: Platform,
  path: string,
  firstSeq: number,
  opts: RecoverOptions,
  report: OpenReport,
): Promise<NewestResult> {
  for (let repaired = false;; repaired = true) {
    const r = await scanNewest(platform, path, firstSeq, opts, report);
    if (r.kind !== "damage") return r;
    if (!opts.repair || r.final || repaired) throw r.damage;
    report.repaired.push(...await repairSegment(platform, path, firstSeq, r.damage, opts));
  }
}

type ScanResult =
  | NewestResult
  /** `final`: never repaired (a well-formed header of another format version). */
  | { kind: "damage"; damage: CorruptionError; final: boolean };

/** Scans the newest segment: keeps whole frames, cuts a torn tail, reports damage. */
async function scanNewest(
  platform: Platform,
  path: string,
  firstSeq: number,
  opts: RecoverOptions,
  report: OpenReport,
): Promise<ScanResult> {
  const file = await platform.open(path, "append");
  let keep = false;
  try {
    const size = file.size();
    const h = decodeHeader(readHeader(file));
    if (!h.ok || h.header.firstSeq !== firstSeq) {
      // A header that never reached the disk: a short file, zeros (size grew, data lost), or a
      // header torn into garbage with nothing after it. The header is synced before any frame is
      // written, so a bad header followed by nothing but zeros holds no record.
      // A well-formed header of another format version is never "torn": refuse, don't downgrade.
      const foreign = !h.ok && h.foreignVersion !== undefined;
      if (!foreign && (size < HEADER_BYTES || isZeroRange(file, HEADER_BYTES, size))) {
        await rewriteHeader(file, firstSeq, opts.maxRecordBytes);
        report.recreatedSegment = path;
        keep = true;
        return { kind: "active", active: adopt(platform, file, firstSeq, opts, HEADER_BYTES) };
      }
      const reason = h.ok ? "header first seq does not match the file name" : h.reason;
      const damage = new CorruptionError({ message: `segment header: ${reason}`, path, offset: 0 });
      return { kind: "damage", damage, final: foreign };
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
      // Anything after a seal is a torn tail: the next segment was never created.
      const verdict = seal
        ? { kind: "torn" as const }
        : judgeTail(file, validEnd, size, nextSeq, max);
      if (verdict.kind === "damage") {
        const reason = step.kind === "bad" ? step.reason : "truncated frame";
        const damage = new CorruptionError({
          message: `${reason}, followed by ${verdict.followedBy}`,
          path,
          offset: validEnd,
          seq: nextSeq,
        });
        return { kind: "damage", damage, final: false };
      }
      file.truncate(validEnd);
      report.truncatedBytes = size - validEnd;
      report.truncatedAt = { path, offset: validEnd };
      report.tornHole = verdict.kind === "hole";
    }
    await file.datasync();
    if (seal) {
      const view: SealedSegment = {
        kind: "sealed",
        firstSeq,
        path,
        endSeq: seal.seq,
        index: seal.index,
        bytes: validEnd,
        maxRecordBytes: max,
      };
      return { kind: "sealed", view };
    }
    let cap = max;
    if (nextSeq === firstSeq && max < opts.maxRecordBytes) {
      // An empty segment whose header caps records below the current maxRecordBytes gets the new
      // cap (a non-empty one is rolled over by the log when a record needs it).
      await rewriteHeader(file, firstSeq, opts.maxRecordBytes);
      cap = opts.maxRecordBytes;
    }
    keep = true;
    // The segment keeps the cap its header was written with, whatever the current option says.
    const active = adopt(platform, file, firstSeq, { ...opts, maxRecordBytes: cap }, validEnd, {
      nextSeq,
      index,
    });
    return { kind: "active", active };
  } finally {
    if (!keep) file.close();
  }
}

/**
 * Rewrites the header of an empty newest segment in place, durably. Never unlink + create: the
 * name carries `firstSeq`, and if this is the only segment left (after retention), a crash in
 * between would restart the log at 0; interrupted here, a short or zeroed header is recreated under
 * the same name at the next open.
 */
async function rewriteHeader(file: PlatformFile, firstSeq: number, maxRecordBytes: number) {
  file.truncate(0);
  file.write(encodeHeader({ firstSeq, maxRecordBytes }));
  await file.datasync();
}

/** The recovered newest file as the writable segment. */
function adopt(
  platform: Platform,
  file: PlatformFile,
  firstSeq: number,
  options: SegmentOptions,
  flushedBytes: number,
  scanned: { nextSeq: number; index: SparseIndex } = {
    nextSeq: firstSeq,
    index: new SparseIndex(),
  },
): Segment {
  return Segment.recovered({ platform, file, firstSeq, options, flushedBytes, ...scanned });
}

function readHeader(file: PlatformFile): Uint8Array {
  const head = new Uint8Array(HEADER_BYTES);
  file.readAt(head, 0);
  return head;
}
