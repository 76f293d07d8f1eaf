/**
 * What repair mode does to a log, decided from its files before anything is written: for each
 * version-2 segment, oldest first, its intact runs (`./salvage.ts`) and whether it needs
 * rewriting, and for each break in the chain between segments, the gap to declare. `./repair.ts`
 * carries the steps out; `planRepair` only lists them (`khipu repair --dry-run`). The plan is made
 * again from the files at every repair, so a repair a crash interrupted is finished by the next:
 * the pieces it already wrote are recognized by their names and written again, byte for byte.
 *
 * Version-1 segments, and a newest segment whose header is unreadable, are left to the rules of
 * `./recovery.ts` (the repair of earlier releases): the plan stops there.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { planRepair } from "./repair_plan.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim, segmentBytes: 4096 });
 * const log = await store.log("l");
 * for (let i = 0; i < 60; i++) await log.append(new Uint8Array(200).fill(i));
 * await store.close();
 * const first = "/s/l/00000000000000000000.seg";
 * const bytes = sim.fileBytes(first)!;
 * bytes[400] ^= 1; // inside a record of the first, sealed, segment
 * sim.setFileBytes(first, bytes);
 * const [action] = await planRepair(sim, "/s/l");
 * if (action.kind !== "salvaged" || action.lost.length !== 1) throw new Error(action.kind);
 * if (sim.fileBytes(first)![400] !== bytes[400]) throw new Error("a plan writes nothing");
 * ```
 * @module
 */
import { CorruptionError } from "./errors.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { chainExpectation, checkSealed, readSeal } from "./check_sealed.ts";
import { decodeHeader, logIdHex, seedOf, type SegmentHeader } from "./format/header.ts";
import { rescueHeader } from "./header_rescue.ts";
import { checkMark, readFileMark } from "./format/mark.ts";
import { MIN_FRAME_BYTES } from "./format/frame.ts";
import { LogIdCheck, readHeader } from "./open_context.ts";
import { readStoredIndex } from "./recover_active.ts";
import { type Anchor, type Run, type Salvage, salvageSegment, type SegmentEnd } from "./salvage.ts";
import { segmentFileName, segmentSeqs } from "./segment.ts";

/** A range of sequence numbers, `[from, to)`. */
export interface SeqRange {
  /** The first. */
  from: number;
  /** One past the last. */
  to: number;
}

/**
 * One thing repair did (or, from `planRepair`, would do) to a segment:
 * - **salvaged**: the segment was damaged; its bytes were copied aside to `movedTo`, its intact
 *   records (`kept`) stay in the log at their seqs, rewritten as sealed segments, and the records
 *   the damage took (`lost`) are a declared gap.
 * - **set-aside**: the file is not a segment of this log (unreadable header, another log's id):
 *   renamed to `movedTo`.
 * - **gap-declared**: the segment is intact, but records before it are missing (a deleted
 *   segment, or one a repair cut short): its header now says where the segment before it ends.
 */
export interface RepairAction {
  /** What was done. */
  kind: "salvaged" | "set-aside" | "gap-declared";
  /** The segment acted on. */
  path: string;
  /** Where its original bytes are now (`<name>.broken`, `.broken.1`, ...); null if nothing moved. */
  movedTo: string | null;
  /** The first damaged byte (0 for a file set aside whole, 48 for a rewritten header field). */
  offset: number;
  /** What was wrong, in one sentence. */
  reason: string;
  /** The seqs of the segment that stay readable. */
  kept: SeqRange[];
  /** The seqs that became a gap: their records are only in `movedTo`, or gone. */
  lost: SeqRange[];
}

/** A run of intact records, written as a sealed segment of its own. */
export interface Piece {
  /** The run, in the damaged file. */
  run: Run;
  /** Its segment's path (named by its first seq). */
  path: string;
  /** Where the segment before it ends: its header's prevEndSeq. */
  prevEndSeq: number;
}

/** A step of a repair. */
export type RepairStep =
  | {
    kind: "salvage";
    action: RepairAction;
    /** The damaged segment, and its header. */
    path: string;
    header: SegmentHeader;
    /** Where its copy goes, and whether an identical copy is already there. */
    aside: { to: string; exists: boolean };
    /** The intact runs, oldest first. */
    pieces: Piece[];
    /**
     * A newest segment whose last records were lost (or whose end is unknown: its mark was
     * damaged): the log goes on in a new segment at this seq, past every seq a lost record had
     * (or its bytes could hold), so that none is reused.
     */
    beyond: { firstSeq: number; prevEndSeq: number; lastTimestamp: number } | null;
  }
  | { kind: "declare-gap"; action: RepairAction; path: string; prevEndSeq: number }
  | { kind: "set-aside"; action: RepairAction; path: string; to: string };

/**
 * What repair mode would do to the log in directory `dir`, in order; nothing is written.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * import { planRepair } from "./repair_plan.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * if ((await planRepair(sim, "/l")).length !== 0) throw new Error("an empty log needs nothing");
 * ```
 */
export async function planRepair(platform: Platform, dir: string): Promise<RepairAction[]> {
  return (await planSteps(platform, dir)).map((s) => s.action);
}

/** Where the segment before the one being examined ends. */
interface Prev {
  endSeq: number;
  lastTimestamp: number;
}

/**
 * The steps of a repair of the log in `dir` (see the module doc). Throws `CorruptionError` for
 * what repair cannot decide: two segments that hold the same seqs.
 */
export async function planSteps(platform: Platform, dir: string): Promise<RepairStep[]> {
  const names = segmentSeqs(await platform.readdir(dir));
  const pathOf = (seq: number) => `${dir}/${segmentFileName(seq)}`;
  const ids = new LogIdCheck();
  // The log's id is the one most of its headers carry: a damaged header is rebuilt with it.
  const major = await mostCommonHeader(platform, names.map(pathOf));
  if (major) ids.check(major, dir);
  const steps: RepairStep[] = [];
  const pieceNames = new Set<number>();
  let prev: Prev | null = null;
  for (let i = 0; i < names.length; i++) {
    const seq = names[i];
    if (pieceNames.has(seq)) continue;
    const path = pathOf(seq);
    const later = () => names.slice(i + 1).filter((n) => !pieceNames.has(n));
    const file = await platform.open(path, "read");
    try {
      const size = file.size();
      const h = decodeHeader(readHeader(file));
      let header: SegmentHeader | null = null;
      let headerProblem: { offset: number; reason: string } | null = null;
      let unusable = "";
      if (h.ok && h.header.firstSeq === seq) {
        const foreign = ids.check(h.header, path);
        if (foreign) unusable = foreign.message;
        else header = h.header;
      } else {
        unusable = h.ok
          ? `segment header says first seq ${h.header.firstSeq}, the file name ${seq}`
          : `segment header: ${h.reason}`;
        const log = ids.known;
        header = log ? rescueHeader(file, seq, log.id, prev) : null;
        if (header) headerProblem = { offset: 0, reason: unusable };
      }
      if (header === null) {
        const next = later()[0];
        // A newest segment with a bad header is recovery's (a torn header is no damage).
        if (next === undefined) return steps;
        const to = await freeAsideName(platform, path);
        steps.push({
          kind: "set-aside",
          path,
          to,
          action: {
            kind: "set-aside",
            path,
            movedTo: to,
            offset: 0,
            reason: unusable,
            kept: [],
            lost: [{ from: prev?.endSeq ?? seq, to: next }],
          },
        });
        continue;
      }
      if (header.version === 1) {
        const next = later()[0];
        if (next === undefined) return steps;
        const sealed = await checkSealed(platform, path, seq, {
          path: pathOf(next),
          firstSeq: next,
        }, ids);
        // A damaged v1 segment is repaired by recovery's v1 rules.
        if (sealed instanceof CorruptionError) return steps;
        prev = sealed;
        continue;
      }
      if (prev && prev.endSeq > seq) {
        throw new CorruptionError({
          message: `seqs [${seq}, ${prev.endSeq}) are in two segments; repair cannot tell which ` +
            "one belongs to the log: move one aside by hand",
          path,
          offset: 0,
          seq,
        });
      }
      let isLast = later().length === 0;
      let found = examine(file, size, header, path, isLast);
      for (const r of found.salvage.runs) if (r.firstSeq !== seq) pieceNames.add(r.firstSeq);
      const rest = later();
      if (!isLast && rest.length === 0) {
        // Only the pieces of an interrupted repair of this segment follow it: it is the newest.
        isLast = true;
        found = examine(file, size, header, path, isLast);
      }
      // A rebuilt header with no frame that decodes under it: the file is not known to be ours.
      if (headerProblem && found.salvage.runs.length === 0 && isLast) return steps;
      const problem = headerProblem ?? found.problem ??
        (found.sealed || isLast ? null : found.sealProblem);
      if (problem === null) {
        if (prev && header.prevEndSeq !== prev.endSeq) {
          steps.push(declareGap(path, prev.endSeq, header, found.salvage));
        }
        if (isLast) return steps;
        const last = found.salvage.runs.at(-1);
        prev = found.sealed ?? {
          endSeq: last?.endSeq ?? header.firstSeq,
          lastTimestamp: last?.lastTimestamp ?? header.baseTimestamp,
        };
        continue;
      }
      const step = await salvageStep(platform, {
        path,
        file,
        size,
        header,
        found,
        problem,
        prev,
        // Where the records of this segment ended, as the next segment's header says.
        nextSays: isLast ? null : await chainExpectation(platform, {
          path: pathOf(rest[0]),
          firstSeq: rest[0],
        }),
        isLast,
        pathOf,
      });
      steps.push(step);
      if (isLast) return steps;
      const last = step.pieces.at(-1)?.run;
      prev = last
        ? { endSeq: last.endSeq, lastTimestamp: last.lastTimestamp }
        : (prev ?? { endSeq: header.prevEndSeq, lastTimestamp: header.baseTimestamp });
    } finally {
      file.close();
    }
  }
  return steps;
}

/** Of the segments' v2 headers that decode, one carrying the log id most of them carry. */
async function mostCommonHeader(
  platform: Platform,
  paths: readonly string[],
): Promise<SegmentHeader | null> {
  const count = new Map<string, { n: number; header: SegmentHeader }>();
  for (const path of paths) {
    const file = await platform.open(path, "read");
    try {
      const h = decodeHeader(readHeader(file));
      if (!h.ok || h.header.logId === null) continue;
      const key = logIdHex(h.header.logId);
      const c = count.get(key) ?? { n: 0, header: h.header };
      c.n++;
      count.set(key, c);
    } finally {
      file.close();
    }
  }
  let best: { n: number; header: SegmentHeader } | null = null;
  for (const c of count.values()) if (!best || c.n > best.n) best = c;
  return best?.header ?? null;
}

/** What a v2 segment's bytes hold. */
interface Examined {
  salvage: Salvage;
  /** Its seal's view, if the seal is valid. */
  sealed: { endSeq: number; lastTimestamp: number } | null;
  /** Why it has no valid seal (damage, unless it is the newest segment). */
  sealProblem: { offset: number; reason: string };
  /** The first damage found (frames, or an unusable mark), or null. */
  problem: { offset: number; reason: string } | null;
  /** The mark could not be used: what was durable is unknown. */
  markLost: boolean;
  /** The seq the mark says the data ended at, when the file was cut below it. */
  markEnd: number | null;
}

/**
 * Reads a v2 segment through its seal (or, without one, its mark) and salvages its frames. All of
 * a segment that is not the newest was durable; in the newest, what follows the mark may be a torn
 * tail (and, with no usable mark, what was durable is unknown, so every whole frame is kept).
 */
function examine(
  file: PlatformFile,
  size: number,
  header: SegmentHeader,
  path: string,
  newest: boolean,
): Examined {
  const seal = readSeal(file, size, header, path);
  let end: SegmentEnd;
  const anchors: Anchor[] = [];
  let problem: { offset: number; reason: string } | null = null;
  let markLost = false;
  let markEnd: number | null = null;
  if (!(seal instanceof CorruptionError)) {
    const v = seal.view;
    end = { kind: "seal", at: seal.sealAt, seq: v.endSeq, lastTimestamp: v.lastTimestamp };
    for (let i = 1; i < v.index.length; i++) {
      anchors.push({
        offset: v.index.offsetAt(i),
        seq: v.index.seqAt(i),
        prevTimestamp: v.index.timestampAt(i),
      });
    }
  } else {
    const seed = seedOf(header.logId!, header.firstSeq);
    const mark = readFileMark(file, seed);
    const bad = mark && checkMark(mark, { ...header, fileSize: size });
    // A mark that fits but for the file's size: the file was cut below it, and the mark still says
    // how many records there were.
    const cut = mark !== null && bad !== null &&
      checkMark(mark, { ...header, fileSize: mark.durableEnd }) === null;
    let markAnchor: Anchor | null = null;
    if (mark && bad) {
      // Only the newest segment is read through its mark; a sealed one that lost its seal (cut
      // short, say) is named by that.
      if (newest) problem = { offset: cut ? size : 80, reason: bad };
      markLost = !cut;
      if (cut) markEnd = mark.nextSeq;
    }
    if (mark && (!bad || cut)) {
      if (!bad) {
        markAnchor = {
          offset: mark.durableEnd,
          seq: mark.nextSeq,
          prevTimestamp: mark.lastTimestamp,
        };
      }
      const index = readStoredIndex(file, header, mark, seed);
      if (typeof index === "string") {
        problem = { offset: 160, reason: index };
      } else {
        for (let i = 1; i < index.length; i++) {
          anchors.push({
            offset: index.offsetAt(i),
            seq: index.seqAt(i),
            prevTimestamp: index.timestampAt(i),
          });
        }
      }
    }
    const trusted = !newest || markLost || cut ? size : (markAnchor?.offset ?? header.dataStart);
    end = { kind: "open", limit: size, mark: markAnchor, trusted };
  }
  const salvage = salvageSegment(file, header, end, anchors);
  const d = salvage.damage[0];
  if (d && (!problem || d.offset < problem.offset)) {
    problem = { offset: d.offset, reason: d.reason };
  }
  return {
    salvage,
    sealed: seal instanceof CorruptionError
      ? null
      : { endSeq: seal.view.endSeq, lastTimestamp: seal.view.lastTimestamp },
    sealProblem: seal instanceof CorruptionError
      ? { offset: seal.offset ?? size, reason: seal.message }
      : { offset: 0, reason: "" },
    problem,
    markLost,
    markEnd,
  };
}

/** The gap a missing segment left before the intact segment `path`, declared in its header. */
function declareGap(
  path: string,
  prevEndSeq: number,
  header: SegmentHeader,
  salvage: Salvage,
): RepairStep {
  const last = salvage.runs.at(-1);
  const kept = last ? [{ from: header.firstSeq, to: last.endSeq }] : [];
  const lost = prevEndSeq < header.prevEndSeq ? [{ from: prevEndSeq, to: header.prevEndSeq }] : [];
  return {
    kind: "declare-gap",
    path,
    prevEndSeq,
    action: {
      kind: "gap-declared",
      path,
      movedTo: null,
      offset: 48,
      reason: lost.length > 0
        ? `seqs [${lost[0].from}, ${
          lost[0].to
        }) are in no segment (a segment was deleted, moved away or cut short)`
        : `the header says the segment before it ended at ${header.prevEndSeq}, it ends at ${prevEndSeq}`,
      kept,
      lost,
    },
  };
}

/** What a salvage step is planned from. */
interface SalvageInput {
  path: string;
  file: PlatformFile;
  size: number;
  header: SegmentHeader;
  found: Examined;
  problem: { offset: number; reason: string };
  prev: Prev | null;
  nextSays: number | null;
  isLast: boolean;
  pathOf: (seq: number) => string;
}

/** The salvage of a damaged segment: its pieces, the copy aside, what is lost. */
async function salvageStep(
  platform: Platform,
  s: SalvageInput,
): Promise<RepairStep & { kind: "salvage" }> {
  const { header, found } = s;
  const runs = found.salvage.runs;
  const startEnd = s.prev ? s.prev.endSeq : header.prevEndSeq;
  const pieces: Piece[] = runs.map((run, k) => ({
    run,
    path: s.pathOf(run.firstSeq),
    prevEndSeq: k === 0 ? startEnd : runs[k - 1].endSeq,
  }));
  const lost: SeqRange[] = [];
  for (const d of found.salvage.damage) {
    if (d.toSeq !== null) lost.push({ from: d.fromSeq, to: d.toSeq });
  }
  const lastEnd = runs.at(-1)?.endSeq ?? startEnd;
  const lastTimestamp = runs.at(-1)?.lastTimestamp ?? s.prev?.lastTimestamp ?? header.baseTimestamp;
  // The seqs this segment's records had up to: its seal's, or the next segment's header's.
  const end = found.sealed?.endSeq ?? s.nextSays ?? found.markEnd;
  let beyond: { firstSeq: number; prevEndSeq: number; lastTimestamp: number } | null = null;
  if (end !== null && end > lastEnd) lost.push({ from: lastEnd, to: end });
  if (s.isLast) {
    // The log goes on after the newest segment: never at a seq a lost record had. If what was
    // durable (and acknowledged) is unknown, past every seq its bytes could hold.
    if (found.markLost) {
      lost.push({ from: lastEnd, to: header.firstSeq + Math.ceil(s.size / MIN_FRAME_BYTES) + 1 });
    }
    const past = Math.max(lastEnd, ...lost.map((r) => r.to));
    if (past > lastEnd) beyond = { firstSeq: past, prevEndSeq: lastEnd, lastTimestamp };
  }
  const aside = await asideFor(platform, s.path, s.file, s.size);
  return {
    kind: "salvage",
    path: s.path,
    header,
    aside,
    pieces,
    beyond,
    action: {
      kind: "salvaged",
      path: s.path,
      movedTo: aside.to,
      offset: s.problem.offset,
      reason: s.problem.reason,
      kept: runs.map((r) => ({ from: r.firstSeq, to: r.endSeq })),
      lost: mergeRanges(lost),
    },
  };
}

/** Sorted ranges with touching ones joined. */
function mergeRanges(ranges: SeqRange[]): SeqRange[] {
  const out: SeqRange[] = [];
  for (const r of [...ranges].sort((a, b) => a.from - b.from)) {
    if (r.to <= r.from) continue;
    const last = out.at(-1);
    if (last && r.from <= last.to) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

/**
 * Where a damaged segment's copy goes: an existing `.broken*` copy with the same bytes (left by a
 * repair a crash interrupted), else the first free `.broken*` name.
 */
async function asideFor(
  platform: Platform,
  path: string,
  file: PlatformFile,
  size: number,
): Promise<{ to: string; exists: boolean }> {
  for (let n = 0;; n++) {
    const to = n === 0 ? `${path}.broken` : `${path}.broken.${n}`;
    const st = await platform.lstat(to);
    if (!st) return { to, exists: false };
    if (st.size === size && await sameBytes(platform, to, file, size)) return { to, exists: true };
  }
}

/** The first of `<path>.broken`, `<path>.broken.1`, ... that does not exist. */
export async function freeAsideName(platform: Platform, path: string): Promise<string> {
  let to = `${path}.broken`;
  for (let n = 1; await platform.lstat(to); n++) to = `${path}.broken.${n}`;
  return to;
}

/** True if file `path` holds the `size` bytes of `file`, compared a chunk at a time. */
async function sameBytes(
  platform: Platform,
  path: string,
  file: PlatformFile,
  size: number,
): Promise<boolean> {
  const other = await platform.open(path, "read");
  try {
    const a = new Uint8Array(Math.min(size, 1 << 18));
    const b = new Uint8Array(a.length);
    for (let at = 0; at < size; at += a.length) {
      const n = file.readAt(a, at);
      if (other.readAt(b, at) !== n) return false;
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
    }
    return true;
  } finally {
    other.close();
  }
}
