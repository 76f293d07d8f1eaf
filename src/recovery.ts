/**
 * Opening a log directory: find its segments, trust sealed ones through their header and seal,
 * check the chain between them and that they belong to one log, and recover the newest one: from
 * its durable mark (format v2) or by the version 1 torn-tail rule. Damage is refused (or, in repair
 * mode, set aside). The rules are in RECOVERY.md; the v1 torn-or-damaged decision is
 * `./torn_tail.ts`, the v2 newest segment `./recover_active.ts`, repair mode `./repair.ts`.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { recoverLog } from "./recovery.ts";
 * const sim = new SimPlatform();
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 1 << 20, repair: false };
 * const r = await recoverLog(sim, "/events", opts);
 * r.active.append(0, Date.now(), new Uint8Array(10), true);
 * await r.active.sync();
 * r.active.close();
 * const again = await recoverLog(sim.crash("subset", 7), "/events", opts);
 * again.active.close();
 * if (again.active.nextSeq !== 1 || again.report.truncatedBytes !== 0) throw new Error("lost it");
 * ```
 * @module
 */
import { CorruptionError, FileTypeError } from "./errors.ts";
import { dirModeFor, mkdirDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { codecFor } from "./format/codec.ts";
import { decodeHeader, HEADER_BYTES, newLogId, type SegmentHeader } from "./format/header.ts";
import { decodeSealPayload, maxSealFrameBytes, peekSeal } from "./format/seal.ts";
import { FRAME_SEAL } from "./format/frame.ts";
import { readU32 } from "./format/bytes.ts";
import {
  decodeSealPayload as decodeSealPayloadV1,
  maxSealFrameBytes as maxSealFrameBytesV1,
  MIN_SEAL_FRAME_BYTES as MIN_SEAL_FRAME_BYTES_V1,
} from "./format/v1/seal.ts";
import { removeStaleRepairFiles, type RepairAction, repairSegment } from "./repair.ts";
import { recoverActive } from "./recover_active.ts";
import {
  type LogIdentity,
  logIdentity,
  parseSegmentFileName,
  Segment,
  segmentFileName,
  type SegmentOptions,
} from "./segment.ts";
import { liveView, type SealedSegment, type SegmentView } from "./segment_view.ts";

/** What opening a log found and did. Readable as `log.openReport`. */
export interface OpenReport {
  /** Segments in the log after recovery. */
  segments: number;
  /** Bytes cut from a torn tail of the newest segment (0 if none). */
  truncatedBytes: number;
  /** Where the torn tail began, if one was cut. */
  truncatedAt: { path: string; offset: number } | null;
  /** True if a v1 torn tail was zero-filled space followed by frames a lost write never covered. */
  tornHole: boolean;
  /** A newest segment with a torn (short or zero-filled) header that was recreated. */
  recreatedSegment: string | null;
  /** Segments set aside by repair mode. */
  repaired: RepairAction[];
  /** Sequence numbers repair made the log skip (`[from, to)`), so that none is ever reused. */
  skippedSeqs: { from: number; to: number } | null;
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
  /** The writable newest segment, file open for writing, fdatasynced. */
  active: Segment;
  /** What was found and done. */
  report: OpenReport;
}

/**
 * The one log id every v2 segment of a log must carry: the first one met sets it, and a segment
 * with another is damage (a file copied in from another log).
 */
export class LogIdCheck {
  #identity: LogIdentity | null = null;

  /** The identity found so far, or a new random one for a log that has none yet. */
  identity(): LogIdentity {
    return this.#identity ??= logIdentity(newLogId());
  }

  /** Damage if `header` (v2) names another log than the segments before it. */
  check(header: SegmentHeader, path: string): CorruptionError | null {
    if (header.logId === null) return null;
    if (this.#identity === null) {
      this.#identity = logIdentity(header.logId);
      return null;
    }
    const mine = this.#identity.id;
    if (header.logId.every((b, i) => b === mine[i])) return null;
    return new CorruptionError({
      message: "segment belongs to another log (its log id differs from the other segments')",
      path,
      offset: 32,
    });
  }
}

/** Where the previous segment ended: what a segment after it starts from. */
export interface PrevEnd {
  /** One past its last record. */
  endSeq: number;
  /** Its last record's timestamp. */
  lastTimestamp: number;
}

/**
 * Opens (creating durably if missing) the log directory `dir` and recovers it.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { recoverLog } from "./recovery.ts";
 * const sim = new SimPlatform();
 * const opts = { bufferBytes: 4096, maxRecordBytes: 1024, segmentBytes: 4096, repair: true };
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
    skippedSeqs: null,
  };
  const names = await platform.readdir(dir);
  await removeStaleRepairFiles(platform, dir, names);
  const firstSeqs = names
    .map(parseSegmentFileName)
    .filter((n): n is number => n !== null)
    .sort((a, b) => a - b);
  const pathOf = (seq: number) => `${dir}/${segmentFileName(seq)}`;
  const ids = new LogIdCheck();

  const segments: SegmentView[] = [];
  let prev: PrevEnd | null = null;
  /**
   * Repair mode: the damaged segment's intact prefix is kept (sealed), `later` segments are set
   * aside, and a new segment starts past every seq the set-aside bytes could hold.
   */
  const repairAndFinish = async (
    path: string,
    firstSeq: number,
    damage: CorruptionError,
    later: string[],
  ): Promise<Recovered> => {
    const fixed = await repairSegment(platform, { path, firstSeq, damage, later, prev, ids, opts });
    report.repaired.push(...fixed.actions);
    report.skippedSeqs = fixed.skipped;
    if (fixed.sealed) segments.push(fixed.sealed);
    return finish(segments, fixed.active, report);
  };
  for (let i = 0; i < firstSeqs.length; i++) {
    if (i < firstSeqs.length - 1) {
      const sealed = await checkSealed(platform, pathOf(firstSeqs[i]), firstSeqs[i], {
        path: pathOf(firstSeqs[i + 1]),
        firstSeq: firstSeqs[i + 1],
      }, ids);
      if (!(sealed instanceof CorruptionError)) {
        segments.push(sealed);
        prev = sealed;
        continue;
      }
      if (!opts.repair) throw sealed;
      // Its intact prefix ends the log, the later segments are set aside.
      const later = firstSeqs.slice(i + 1).map(pathOf);
      return await repairAndFinish(pathOf(firstSeqs[i]), firstSeqs[i], sealed, later);
    }
    const ctx = { opts, report, ids, prev };
    const last = await recoverActive(platform, pathOf(firstSeqs[i]), firstSeqs[i], ctx);
    if (last.kind === "damage") {
      if (!opts.repair || last.final) throw last.damage;
      return await repairAndFinish(pathOf(firstSeqs[i]), firstSeqs[i], last.damage, []);
    }
    if (last.kind === "active") return finish(segments, last.active, report);
    segments.push(last.view);
    prev = last.view;
  }
  const endSeq = prev?.endSeq ?? 0;
  const active = Segment.pending(platform, dir, {
    firstSeq: endSeq,
    prevEndSeq: endSeq,
    baseTimestamp: Math.max(Date.now(), prev?.lastTimestamp ?? 0),
    log: ids.identity(),
  }, opts);
  await active.materialize();
  return finish(segments, active, report);
}

function finish(segments: SegmentView[], active: Segment, report: OpenReport): Recovered {
  segments.push(liveView(active));
  report.segments = segments.length;
  return { segments, active, report };
}

/** Reads the first bytes of a segment file: enough for a header of either version. */
export function readHeader(file: PlatformFile): Uint8Array {
  const head = new Uint8Array(HEADER_BYTES);
  const n = file.readAt(head, 0);
  return head.subarray(0, n);
}

/** Where a sealed segment's successor says the chain must continue. */
async function chainExpectation(
  platform: Platform,
  next: { path: string; firstSeq: number },
): Promise<number | null> {
  const file = await platform.open(next.path, "read");
  try {
    const h = decodeHeader(readHeader(file));
    if (!h.ok || h.header.firstSeq !== next.firstSeq) return null;
    return h.header.prevEndSeq;
  } finally {
    file.close();
  }
}

/**
 * Verifies a non-newest segment through its header and seal only (no scan): the seal's checksum
 * and index, its log id, and the chain: its end must be where the next segment's header says the
 * previous one ended (a deleted or foreign segment in between breaks it). Returns its view, or
 * the damage found.
 */
export async function checkSealed(
  platform: Platform,
  path: string,
  firstSeq: number,
  next: { path: string; firstSeq: number },
  ids: LogIdCheck,
): Promise<SealedSegment | CorruptionError> {
  const expectedEnd = await chainExpectation(platform, next);
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const h = decodeHeader(readHeader(file));
    const bad = (reason: string, offset: number, seq?: number) =>
      new CorruptionError({ message: `sealed segment: ${reason}`, path, offset, seq });
    if (!h.ok) return bad(h.reason, 0);
    const header = h.header;
    if (header.firstSeq !== firstSeq) {
      return bad(`header says first seq ${header.firstSeq}, name says ${firstSeq}`, 0);
    }
    const foreign = ids.check(header, path);
    if (foreign) return foreign;
    if (header.version === 1) {
      // A v1 seal's CRC covers its seq: the successor's chain value, or (unreadable) its name.
      return checkSealV1(file, size, header, path, expectedEnd ?? next.firstSeq, bad);
    }
    const trailer = new Uint8Array(4);
    if (size < header.dataStart + 4) return bad("no seal", size);
    file.readAt(trailer, size - 4);
    const sealBytes = readU32(trailer, 0);
    const sealAt = size - sealBytes;
    // Checked before anything is allocated: a seal indexes at most one entry per 64 KiB.
    if (sealBytes < 7 || sealBytes > maxSealFrameBytes(size, header.dataStart)) {
      return bad(`no seal (trailer says ${sealBytes} bytes)`, size);
    }
    if (sealAt < header.dataStart) return bad("no seal", size);
    const frame = new Uint8Array(sealBytes);
    file.readAt(frame, sealAt);
    const claim = peekSeal(frame);
    if (!claim) return bad("seal invalid (not a seal frame)", sealAt);
    const d = codecFor(header).decode(
      frame,
      0,
      sealBytes,
      claim.endSeq,
      claim.lastTimestamp,
      header.maxRecordBytes,
    );
    if (d.status !== "ok" || d.type !== FRAME_SEAL || d.frameBytes !== sealBytes) {
      const why = d.status === "bad" ? d.reason : "not a whole seal";
      return bad(`seal invalid (${why})`, sealAt);
    }
    const seal = decodeSealPayload(frame.subarray(d.payloadStart, d.payloadEnd), sealBytes, {
      firstSeq,
      endSeq: claim.endSeq,
      sealAt,
      dataStart: header.dataStart,
      baseTimestamp: header.baseTimestamp,
    });
    if (typeof seal === "string") return bad(seal, sealAt);
    if (claim.endSeq > next.firstSeq || (expectedEnd !== null && claim.endSeq !== expectedEnd)) {
      return bad(
        `ends at seq ${claim.endSeq}, but the next segment says the one before it ended at ${
          expectedEnd ?? next.firstSeq
        }: segments are missing or out of place`,
        sealAt,
        claim.endSeq,
      );
    }
    return {
      kind: "sealed",
      firstSeq,
      path,
      endSeq: claim.endSeq,
      index: seal.index,
      bytes: size,
      maxRecordBytes: header.maxRecordBytes,
      codec: codecFor(header),
      dataStart: header.dataStart,
      firstTimestamp: seal.firstTimestamp,
      lastTimestamp: seal.lastTimestamp,
    };
  } finally {
    file.close();
  }
}

/** The version 1 seal check: trailer, frame, index, and a seq equal to the chain's. */
function checkSealV1(
  file: PlatformFile,
  size: number,
  header: SegmentHeader,
  path: string,
  endSeq: number,
  bad: (reason: string, offset: number, seq?: number) => CorruptionError,
): SealedSegment | CorruptionError {
  const trailer = new Uint8Array(4);
  if (size < header.dataStart + MIN_SEAL_FRAME_BYTES_V1) return bad("no seal", size);
  file.readAt(trailer, size - 4);
  const sealBytes = readU32(trailer, 0);
  const sealAt = size - sealBytes;
  if (sealBytes < MIN_SEAL_FRAME_BYTES_V1 || sealBytes > maxSealFrameBytesV1(size)) {
    return bad(`no seal (trailer says ${sealBytes} bytes)`, size);
  }
  if (sealAt < header.dataStart) return bad("no seal", size);
  const frame = new Uint8Array(sealBytes);
  file.readAt(frame, sealAt);
  const codec = codecFor(header);
  const d = codec.decode(frame, 0, sealBytes, endSeq, 0, header.maxRecordBytes);
  if (d.status !== "ok" || d.type !== FRAME_SEAL) {
    const why = d.status === "bad" ? d.reason : "not a seal";
    return bad(`seal invalid (${why}); the next segment starts at ${endSeq}`, sealAt, endSeq);
  }
  const index = decodeSealPayloadV1(frame.subarray(d.payloadStart, d.payloadEnd), sealBytes, {
    firstSeq: header.firstSeq,
    endSeq,
    sealAt,
  });
  if (typeof index === "string") return bad(index, sealAt);
  return {
    kind: "sealed",
    firstSeq: header.firstSeq,
    path,
    endSeq,
    index,
    bytes: size,
    maxRecordBytes: header.maxRecordBytes,
    codec,
    dataStart: header.dataStart,
    firstTimestamp: 0,
    lastTimestamp: d.timestamp,
  };
}

/** What the newest segment recovers to: the writable one, or a sealed one (crash at rollover). */
export type NewestResult =
  | { kind: "active"; active: Segment }
  | { kind: "sealed"; view: SealedSegment };

/** What recovering the newest segment needs from the log. */
export interface NewestContext {
  /** The options. */
  opts: RecoverOptions;
  /** Filled in with what was found and done. */
  report: OpenReport;
  /** The log id check. */
  ids: LogIdCheck;
  /** Where the segment before it ended (null if it is the first). */
  prev: PrevEnd | null;
}
