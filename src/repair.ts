/**
 * Repair mode (`repair: true`): a damaged segment is copied aside as `<name>.broken` (never
 * deleted), its intact prefix is kept and sealed, the segments after it are set aside too, and the
 * log goes on in a new segment whose first sequence number is past every seq the set-aside bytes
 * could hold, so that no seq is ever given to two records (the header of the new segment declares
 * the skipped range). The order of the steps makes a crash at any point safe: the damaged bytes
 * are copied first, the new segment exists before anything leaves the log, and an interrupted
 * repair is simply found and done again at the next open (see RECOVERY.md, "Repair mode").
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
import { createFileDurable, parentDir, renameDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { codecFor } from "./format/codec.ts";
import { decodeHeader, type SegmentHeader } from "./format/header.ts";
import { FRAME_RECORD, FRAME_SEAL, MIN_FRAME_BYTES } from "./format/frame.ts";
import { INDEX_INTERVAL_BYTES } from "./format/limits.ts";
import { FrameScanner, SCAN_CHUNK_BYTES } from "./format/scanner.ts";
import { encodeSealFrame } from "./format/seal.ts";
import { SparseIndex } from "./format/sparse_index.ts";
import { encodeSealFrame as encodeSealFrameV1 } from "./format/v1/seal.ts";
import { type LogIdCheck, type PrevEnd, readHeader, type RecoverOptions } from "./open_context.ts";
import { parseSegmentFileName, Segment } from "./segment.ts";
import type { SealedSegment } from "./segment_view.ts";

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
    await copyDurable(platform, file, size, movedTo, t.opts.fileMode);
    actions.push({ path: t.path, movedTo, offset: t.damage.offset ?? 0, reason: t.damage.message });
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
    actions.push({ path: p, movedTo: to, offset: 0, reason: "follows a damaged segment" });
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
    await copyDurable(platform, file, p.end, tmp, t.opts.fileMode, seal);
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

/** The first of `<path>.broken`, `<path>.broken.1`, ... that does not exist. */
async function freeAsideName(platform: Platform, path: string): Promise<string> {
  let to = `${path}.broken`;
  for (let n = 1; await platform.lstat(to); n++) to = `${path}.broken.${n}`;
  return to;
}

/**
 * Copies `[0, end)` of `from` (then `tail`, if given) into a new file `to`, durably (file,
 * fdatasync, directory), through a bounded buffer: never a whole segment in memory.
 */
async function copyDurable(
  platform: Platform,
  from: PlatformFile,
  end: number,
  to: string,
  mode: number | undefined,
  tail?: Uint8Array,
): Promise<void> {
  const chunk = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, end));
  const first = from.readAt(chunk, 0);
  const out = await createFileDurable(platform, to, chunk.subarray(0, first), mode);
  try {
    for (let at = first; at < end;) {
      const n = from.readAt(chunk.subarray(0, Math.min(chunk.length, end - at)), at);
      if (n === 0) break;
      out.write(chunk.subarray(0, n));
      at += n;
    }
    if (tail) out.write(tail);
    await out.datasync();
  } finally {
    out.close();
  }
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
