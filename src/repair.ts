/**
 * Repair mode (`repair: true`) carries out the plan of `./repair_plan.ts`: a damaged segment is
 * copied aside as `<name>.broken` (never deleted), each run of intact records becomes a sealed
 * segment at its own seqs, the records the damage took become a declared gap, and a segment after
 * a hole gets a header that declares it. Every file is written whole under a temporary name
 * (`.repair`), made durable, and renamed into place, in an order that makes a crash at any point
 * safe: the damaged bytes are copied first, the pieces after the first exist before the damaged
 * file is replaced, and an interrupted repair is planned and done again at the next open, which
 * writes the same pieces (see RECOVERY.md, "Repair mode"). Version-1 segments, and a newest
 * segment with an unreadable header, keep the rule of earlier releases (`repairSegment`): the
 * intact prefix is kept and the log goes on past every seq the set-aside bytes could hold.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/s");
 * await sim.mkdir("/s/l");
 * sim.setFileBytes("/s/l/00000000000000000000.seg", new Uint8Array(200).fill(7)); // not a segment
 * const store = await Store.open("/s", { platform: sim, repair: true });
 * const log = await store.log("l");
 * const { repaired, skippedSeqs } = log.openReport;
 * await store.close();
 * if (repaired.length !== 1 || skippedSeqs === null) throw new Error("set aside, seqs skipped");
 * ```
 * @module
 */
import type { CorruptionError } from "./errors.ts";
import {
  freeAsideName,
  type Piece,
  planSteps,
  type RepairAction,
  type RepairStep,
} from "./repair_plan.ts";
import { createFileDurable, parentDir, renameDurable, unlinkDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { writeU32, writeU64 } from "./format/bytes.ts";
import { crc32, crc32U64 } from "./format/checksum.ts";
import { codecFor } from "./format/codec.ts";
import {
  decodeHeader,
  encodeHeader,
  INDEX_AREA_START,
  type SegmentHeader,
} from "./format/header.ts";
import { FRAME_RECORD, FRAME_RECORD_MORE, FRAME_SEAL, MIN_FRAME_BYTES } from "./format/frame.ts";
import { INDEX_INTERVAL_BYTES } from "./format/limits.ts";
import { FrameScanner, SCAN_CHUNK_BYTES } from "./format/scanner.ts";
import { encodeSealFrame } from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";
import { encodeSealFrame as encodeSealFrameV1 } from "./format/v1/seal.ts";
import { type LogIdCheck, type PrevEnd, readHeader, type RecoverOptions } from "./open_context.ts";
import { logIdentity, parseSegmentFileName, Segment } from "./segment.ts";
import type { SealedSegment } from "./segment_view.ts";

/** What to repair. */
export interface RepairTarget {
  /** The damaged segment. */
  path: string;
  /** Its first sequence number (from its name). */
  firstSeq: number;
  /** What was found wrong. */
  damage: CorruptionError;
  /** Segments after it, which leave the log with it. */
  later: readonly string[];
  /** Where the segment before it ended (null if it is the first). */
  prev: PrevEnd | null;
  /** The log's identity. */
  ids: LogIdCheck;
  /** The log's options. */
  opts: RecoverOptions;
}

/** What a repair did and left. */
export interface RepairResult {
  /** The files set aside. */
  actions: RepairAction[];
  /** The seqs the log now skips. */
  skipped: { from: number; to: number };
  /** The damaged segment's intact prefix, now sealed (null if it held no intact record). */
  sealed: SealedSegment | null;
  /** The new, empty segment the log goes on in. */
  active: Segment;
}

/** Suffix of the temporary file a repair builds before renaming it over the damaged segment. */
const REPAIR_SUFFIX = ".repair";

/** Repairs the damaged segment `t.path` (see the module doc). */
export async function repairSegment(platform: Platform, t: RepairTarget): Promise<RepairResult> {
  const dir = parentDir(t.path);
  const file = await platform.open(t.path, "read");
  let prefix: Prefix | null;
  let beyond: number;
  const actions: RepairAction[] = [];
  try {
    const size = file.size();
    prefix = intactPrefix(file, size, t.firstSeq);
    // No record in the set-aside bytes can have a seq past this: every frame takes >= 7 bytes.
    beyond = t.firstSeq + Math.ceil(size / MIN_FRAME_BYTES) + 1;
    for (const p of t.later) {
      const seq = parseSegmentFileName(p.slice(dir.length + 1)) ?? 0;
      const s = await platform.stat(p);
      beyond = Math.max(beyond, seq + Math.ceil((s?.size ?? 0) / MIN_FRAME_BYTES) + 1);
    }
    const movedTo = await freeAsideName(platform, t.path);
    await writeFileDurable(platform, movedTo, [{ file, from: 0, to: size }], t.opts.fileMode);
    const endSeq = prefix ? prefix.nextSeq : (t.prev?.endSeq ?? t.firstSeq);
    actions.push({
      kind: "salvaged",
      path: t.path,
      movedTo,
      offset: t.damage.offset ?? 0,
      reason: t.damage.message,
      kept: prefix ? [{ from: t.firstSeq, to: endSeq }] : [],
      lost: [{ from: endSeq, to: beyond }],
    });
  } finally {
    file.close();
  }
  const endSeq = prefix ? prefix.nextSeq : (t.prev?.endSeq ?? t.firstSeq);
  const active = Segment.pending(platform, dir, {
    firstSeq: beyond,
    prevEndSeq: endSeq,
    baseTimestamp: Math.max(Date.now(), prefix?.lastTimestamp ?? 0, t.prev?.lastTimestamp ?? 0),
    log: t.ids.identity(),
  }, t.opts);
  // The new segment exists before anything leaves the log: a crash from here on leaves the damaged
  // segment below it, found and repaired again, never a log that could reuse a seq.
  await active.materialize();
  for (const p of [...t.later].reverse()) {
    const to = await freeAsideName(platform, p);
    await renameDurable(platform, p, to);
    const seq = parseSegmentFileName(p.slice(dir.length + 1)) ?? 0;
    actions.push({
      kind: "set-aside",
      path: p,
      movedTo: to,
      offset: 0,
      reason: "follows a damaged segment",
      kept: [],
      lost: [{ from: seq, to: beyond }],
    });
  }
  const sealed = prefix ? await sealPrefix(platform, t.path, prefix, t) : null;
  if (!prefix) {
    await platform.unlink(t.path);
    await platform.syncDir(dir);
  }
  return { actions, skipped: { from: endSeq, to: beyond }, sealed, active };
}

/** The whole, complete batches at the start of a damaged segment. */
interface Prefix {
  header: SegmentHeader;
  end: number;
  nextSeq: number;
  firstTimestamp: number;
  lastTimestamp: number;
  index: SparseIndex;
}

/** The segment's records before the damage (null if its header is bad or it holds none). */
function intactPrefix(file: PlatformFile, size: number, firstSeq: number): Prefix | null {
  const h = decodeHeader(readHeader(file));
  if (!h.ok || h.header.firstSeq !== firstSeq) return null;
  const header = h.header;
  const scanner = new FrameScanner(file, codecFor(header), {
    start: header.dataStart,
    limit: size,
    seq: firstSeq,
    timestamp: header.baseTimestamp,
    maxPayload: header.maxRecordBytes,
  });
  const index = new SparseIndex();
  let prevTimestamp = header.baseTimestamp;
  let firstTimestamp = -1;
  let kept: Prefix | null = null;
  for (let step = scanner.next(); step.kind === "frame"; step = scanner.next()) {
    if (step.type === FRAME_SEAL) break;
    if (index.length === 0 || step.offset - index.lastOffset >= INDEX_INTERVAL_BYTES) {
      index.push(step.seq, step.offset, header.version === 2 ? prevTimestamp : 0);
    }
    if (firstTimestamp < 0) firstTimestamp = step.timestamp;
    prevTimestamp = step.timestamp;
    if (step.type === FRAME_RECORD || header.version === 1) {
      kept = {
        header,
        end: step.offset + step.frameBytes,
        nextSeq: step.seq + 1,
        firstTimestamp,
        lastTimestamp: step.timestamp,
        index,
      };
    }
  }
  if (kept) {
    let n = index.length;
    while (n > 1 && index.offsetAt(n - 1) >= kept.end) n--;
    index.truncate(n);
  }
  return kept;
}

/** Replaces the damaged segment by its intact prefix and a seal, through a `.repair` file. */
async function sealPrefix(
  platform: Platform,
  path: string,
  p: Prefix,
  t: RepairTarget,
): Promise<SealedSegment> {
  const h = p.header;
  const sealTime = Math.max(p.lastTimestamp, Date.now());
  const seal = h.version === 1 ? encodeSealFrameV1(p.nextSeq, sealTime, p.index) : encodeSealFrame({
    idCrc: t.ids.identity().idCrc,
    endSeq: p.nextSeq,
    firstTimestamp: p.firstTimestamp,
    lastTimestamp: p.lastTimestamp,
    sealTimestamp: sealTime,
    index: p.index,
  });
  const tmp = `${path}${REPAIR_SUFFIX}`;
  await platform.remove(tmp);
  const file = await platform.open(path, "read");
  try {
    await writeFileDurable(platform, tmp, [{ file, from: 0, to: p.end }, seal], t.opts.fileMode);
  } finally {
    file.close();
  }
  await renameDurable(platform, tmp, path);
  return {
    kind: "sealed",
    firstSeq: h.firstSeq,
    path,
    endSeq: p.nextSeq,
    index: p.index,
    bytes: p.end + seal.length,
    maxRecordBytes: h.maxRecordBytes,
    codec: codecFor(h),
    dataStart: h.dataStart,
    firstTimestamp: h.version === 1 ? 0 : p.firstTimestamp,
    lastTimestamp: h.version === 1 ? sealTime : p.lastTimestamp,
  };
}

/** Bytes `[from, to)` of an open file. */
interface FileRange {
  file: PlatformFile;
  from: number;
  to: number;
}

/**
 * Writes a new file `to` from `parts` (bytes, or ranges of open files, copied a 256 KiB chunk at
 * a time: never a whole segment in memory) and makes it durable (file, fdatasync, directory).
 */
async function writeFileDurable(
  platform: Platform,
  to: string,
  parts: readonly (Uint8Array | FileRange)[],
  mode: number | undefined,
): Promise<void> {
  const out = await createFileDurable(platform, to, new Uint8Array(0), mode);
  try {
    let chunk: Uint8Array | null = null;
    for (const part of parts) {
      if (part instanceof Uint8Array) {
        out.write(part);
        continue;
      }
      chunk ??= new Uint8Array(SCAN_CHUNK_BYTES);
      for (let at = part.from; at < part.to;) {
        const n = part.file.readAt(chunk.subarray(0, Math.min(chunk.length, part.to - at)), at);
        if (n === 0) break;
        out.write(chunk.subarray(0, n));
        at += n;
      }
    }
    await out.datasync();
  } finally {
    out.close();
  }
}

/**
 * Repairs the log in `dir` as `./repair_plan.ts` plans it, step by step, and returns what was
 * done and the seqs skipped past a newest segment whose end was unknown. Each step is durable
 * before the next begins.
 */
export async function repairLog(
  platform: Platform,
  dir: string,
  opts: RecoverOptions,
): Promise<{ actions: RepairAction[]; skipped: { from: number; to: number } | null }> {
  await removeStaleRepairFiles(platform, dir, await platform.readdir(dir));
  const steps = await planSteps(platform, dir);
  let skipped: { from: number; to: number } | null = null;
  for (const step of steps) {
    await carryOut(platform, dir, step, opts);
    if (step.kind === "salvage" && step.beyond) {
      skipped = { from: step.beyond.prevEndSeq, to: step.beyond.firstSeq };
    }
  }
  return { actions: steps.map((s) => s.action), skipped };
}

async function carryOut(
  platform: Platform,
  dir: string,
  step: RepairStep,
  opts: RecoverOptions,
): Promise<void> {
  if (step.kind === "set-aside") return await renameDurable(platform, step.path, step.to);
  const file = await platform.open(step.path, "read");
  try {
    if (step.kind === "declare-gap") {
      const header = readHeader(file).slice();
      writeU64(header, PREV_END_SEQ_AT, step.prevEndSeq);
      writeU32(header, EXTENSION_CRC_AT, crc32(header.subarray(32, EXTENSION_CRC_AT)));
      return await replaceDurable(platform, step.path, [header, {
        file,
        from: header.length,
        to: file.size(),
      }], opts.fileMode);
    }
    if (!step.aside.exists) {
      await writeFileDurable(
        platform,
        step.aside.to,
        [{ file, from: 0, to: file.size() }],
        opts.fileMode,
      );
    }
    if (step.beyond) {
      // Before anything leaves the log: from here on no open can give out a seq the damaged
      // bytes might hold.
      const b = step.beyond;
      const active = Segment.pending(platform, dir, {
        firstSeq: b.firstSeq,
        prevEndSeq: b.prevEndSeq,
        baseTimestamp: Math.max(Date.now(), b.lastTimestamp),
        log: logIdentity(step.header.logId!),
      }, opts);
      await active.materialize();
      active.close();
    }
    // The damaged file is replaced (or removed) last, once every other piece is in place.
    const own = step.pieces.find((p) => p.path === step.path);
    for (const p of step.pieces) {
      if (p !== own) await writePiece(platform, file, step.header, p, opts);
    }
    if (own) await writePiece(platform, file, step.header, own, opts);
    else await unlinkDurable(platform, step.path);
  } finally {
    file.close();
  }
}

/** Offset of a v2 header's prevEndSeq. */
const PREV_END_SEQ_AT = 48;
/** Offset of a v2 header's extension CRC (over bytes 32..75). */
const EXTENSION_CRC_AT = 76;

/**
 * Writes a run of intact records as a sealed v2 segment of its own: a new header (no index area;
 * the base timestamp is the one before the run's first record, so its frames are copied as they
 * are), the frames, and a seal with the run's index. A run the damage ended inside a batch ends
 * with a "more follows" frame, which a seal may not follow: that frame is rewritten as the end
 * of its batch (its CRC computed again; its data is unchanged).
 */
async function writePiece(
  platform: Platform,
  from: PlatformFile,
  header: SegmentHeader,
  piece: Piece,
  opts: RecoverOptions,
): Promise<void> {
  const r = piece.run;
  const id = logIdentity(header.logId!);
  const head = new Uint8Array(INDEX_AREA_START);
  head.set(encodeHeader({
    firstSeq: r.firstSeq,
    maxRecordBytes: header.maxRecordBytes,
    logId: id.id,
    prevEndSeq: piece.prevEndSeq,
    baseTimestamp: r.prevTimestamp,
    indexCapacity: 0,
  }));
  const last = new Uint8Array(r.end - r.lastOffset);
  from.readAt(last, r.lastOffset);
  if (r.lastType === FRAME_RECORD_MORE) {
    last[4] = FRAME_RECORD;
    writeU32(last, 0, crc32(last.subarray(4), crc32U64(r.endSeq - 1, id.idCrc)));
  }
  const index = new SparseIndex(r.index.length + 1);
  index.push(r.firstSeq, INDEX_AREA_START, r.prevTimestamp);
  for (const e of r.index) {
    index.push(e.seq, e.offset - r.start + INDEX_AREA_START, e.prevTimestamp);
  }
  const seal = encodeSealFrame({
    idCrc: id.idCrc,
    endSeq: r.endSeq,
    firstTimestamp: r.firstTimestamp,
    lastTimestamp: r.lastTimestamp,
    sealTimestamp: Math.max(Date.now(), r.lastTimestamp),
    index,
  });
  await replaceDurable(platform, piece.path, [
    head,
    { file: from, from: r.start, to: r.lastOffset },
    last,
    seal,
  ], opts.fileMode);
}

/** Writes `path` anew through `<path>.repair`, durably, then renames it into place, durably. */
async function replaceDurable(
  platform: Platform,
  path: string,
  parts: readonly (Uint8Array | FileRange)[],
  mode: number | undefined,
): Promise<void> {
  const tmp = `${path}${REPAIR_SUFFIX}`;
  await platform.remove(tmp);
  await writeFileDurable(platform, tmp, parts, mode);
  await renameDurable(platform, tmp, path);
}

/**
 * Removes `*.seg.repair` files an interrupted repair left behind (its damaged original is still
 * in place, so the repair simply runs again).
 */
export async function removeStaleRepairFiles(
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
