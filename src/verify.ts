/**
 * `verify`: reads every segment of a log, checks every frame, seal, index entry and mark and the
 * chain between segments, and reports what it found (`log.verify()`, `store.verify()`). It walks
 * the log *directory* itself, so it works on a log that cannot open (a deleted middle segment, a
 * damaged seal: `store.log(name)` refuses those), and it never writes, never takes a lock, and works
 * on a read-only store while another process writes the log. The checks of one segment are
 * `./verify_segment.ts`.
 *
 * What is not a problem: the newest segment ends at its last complete batch, and what follows it
 * (a batch being written, preallocated zeros, or the torn tail a writer's crash left, which
 * recovery cuts) is not damage; nor is a newest segment whose header is not written yet; nor a
 * segment retention deletes while it runs (it is left out). Declared gaps (seqs repair set aside,
 * see FORMAT.md "Files") are listed in `gaps`. After a frame that does not decode, the frames of
 * that segment cannot be placed by seq: verify reports it once and goes on from the next index
 * entry (or the newest segment's mark) past it whose frame decodes; the records between are not
 * counted. Memory is the scanner's 256 KiB buffer (grown only for a larger record), whatever the
 * segment sizes.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/data", { platform: sim, segmentBytes: 4096 });
 * const log = await store.log("events");
 * for (let i = 0; i < 10; i++) await log.append(new Uint8Array(1000));
 * await store.close();
 * const path = "/data/events/00000000000000000000.seg";
 * const bytes = sim.fileBytes(path)!;
 * bytes[1000] ^= 1; // a flipped bit in a sealed segment's record
 * sim.setFileBytes(path, bytes);
 * const reader = await Store.open("/data", { platform: sim, readOnly: true });
 * const { ok, logs } = await reader.verify();
 * await reader.close();
 * const [problem] = logs[0].problems;
 * if (ok || problem.path !== path || problem.seq !== 0) throw new Error(JSON.stringify(logs));
 * ```
 * @module
 */
import { setImmediate } from "node:timers";
import { FileTypeError, InvalidArgumentError, NotFoundError } from "./errors.ts";
import type { Platform } from "./platform/types.ts";
import type { Gap } from "./gaps.ts";
import { validateLogName } from "./log_name.ts";
import { LogIdCheck } from "./open_context.ts";
import { segmentFileName, segmentSeqs } from "./segment.ts";
import { describeValue, options as checkOptions } from "./validate.ts";
import {
  type SegmentVerdict,
  verifyNewestSegment,
  type VerifyProblem,
  verifySealedSegment,
} from "./verify_segment.ts";

export type { Gap, VerifyProblem };

/** Options of `log.verify()` and `store.verify()`. */
export interface VerifyOptions {
  /** Aborting it rejects the verify with `signal.reason` (checked every 256 KiB read). */
  signal?: AbortSignal;
  /** Called every 256 KiB read and at the end of each segment, with figures that only grow. */
  onProgress?: (p: VerifyProgress) => void;
}

/** How far a verify of one log has got. */
export interface VerifyProgress {
  /** The log's name. */
  log: string;
  /** Bytes of its segment files done; `bytesTotal` once every segment is. */
  bytesDone: number;
  /** Bytes of its segment files when the verify started. */
  bytesTotal: number;
  /** Segments done. */
  segmentsDone: number;
  /** Segments when the verify started. */
  segmentsTotal: number;
  /** Records found so far. */
  records: number;
}

/** What verifying one log found. */
export interface VerifyReport {
  /** The log's name. */
  log: string;
  /** True if no problem was found. */
  ok: boolean;
  /** Records found (a record in damaged bytes is not one). */
  records: number;
  /** Segment files verified. */
  segments: number;
  /** Their bytes, as their sizes were when the verify started (preallocated zeros included). */
  bytes: number;
  /** How long the verify took. */
  durationMs: number;
  /** The first segment's first seq (0 for a log with no segment). */
  firstSeq: number;
  /** One past the last record of the newest segment (`firstSeq` if it holds none). */
  nextSeq: number;
  /** Seq ranges between segments that repair set aside, declared on disk: no problem. */
  gaps: Gap[];
  /** The damage found, oldest segment first (in file order within one). */
  problems: VerifyProblem[];
}

/** What verifying a store found: one report per log. */
export interface StoreVerifyReport {
  /** True if no log has a problem. */
  ok: boolean;
  /** How long it took. */
  durationMs: number;
  /** One report per log, in name order (or in the order asked for). */
  logs: VerifyReport[];
}

/** A segment file as listed when the verify starts. */
interface Listed {
  path: string;
  firstSeq: number;
  bytes: number;
}

/**
 * Checks `opts` for `log.verify()` / `store.verify()` (`InvalidArgumentError`); `extra` names the
 * keys the caller takes besides `signal` and `onProgress`.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { checkVerifyOptions } from "./verify.ts";
 * const bad = (() => {
 *   try {
 *     checkVerifyOptions({ onProgres: () => {} } as never);
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * if (!(bad instanceof InvalidArgumentError)) throw new Error("accepted a typo");
 * ```
 */
export function checkVerifyOptions<T extends VerifyOptions>(
  opts: T | undefined,
  extra: readonly (keyof T & string)[] = [],
): Partial<T> {
  const o = checkOptions<T>("verify options", opts, ["signal", "onProgress", ...extra]);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError({
      message: `verify: signal must be an AbortSignal, got ${describeValue(o.signal)}`,
    });
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== "function") {
    throw new InvalidArgumentError({
      message: `verify: onProgress must be a function, got ${describeValue(o.onProgress)}`,
    });
  }
  return o;
}

/**
 * Throws unless `dir` is a log directory: `NotFoundError` if missing, `FileTypeError` if it is a
 * file or a symbolic link.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { checkLogDir } from "./verify.ts";
 * const missing = await checkLogDir(new SimPlatform(), "/nowhere").catch((e) => e);
 * if (!(missing instanceof NotFoundError)) throw new Error("found nothing?");
 * ```
 */
export async function checkLogDir(platform: Platform, dir: string): Promise<void> {
  const st = await platform.lstat(dir);
  if (!st) throw new NotFoundError({ op: "verify", path: dir });
  if (st.isSymlink || !st.isDirectory) {
    throw new FileTypeError({
      path: dir,
      found: st.isSymlink ? "a symbolic link" : "a file",
      expected: "a log directory",
    });
  }
}

/**
 * Verifies the log in directory `dir` (called `name` in the report), reading no record at or past
 * `bound` in its newest segment (an open log's end as it sees it). Rejects only for a directory that
 * is not there (`NotFoundError`) or not one (`FileTypeError`), an I/O error, or an abort.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { verifyLogDir } from "./verify.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim, segmentBytes: 4096 });
 * const log = await store.log("l");
 * for (let i = 0; i < 10; i++) await log.append(new Uint8Array(1000)); // 3 to a 4 KiB segment
 * await store.close();
 * const seen: number[] = [];
 * const r = await verifyLogDir(sim, "/s/l", "l", { onProgress: (p) => seen.push(p.bytesDone) });
 * if (!r.ok || r.records !== 10 || r.segments !== 4 || seen.at(-1) !== r.bytes) {
 *   throw new Error(JSON.stringify(r));
 * }
 * ```
 */
export async function verifyLogDir(
  platform: Platform,
  dir: string,
  name: string,
  opts: VerifyOptions = {},
  bound: number = Infinity,
): Promise<VerifyReport> {
  const t0 = performance.now();
  const { signal, onProgress } = opts;
  signal?.throwIfAborted();
  await checkLogDir(platform, dir);
  const problems: VerifyProblem[] = [];
  const listed = await listSegments(platform, dir, problems);
  const bytesTotal = listed.reduce((n, s) => n + s.bytes, 0);
  const ids = new LogIdCheck();
  const gaps: Gap[] = [];
  let bytesDone = 0;
  let segmentsDone = 0;
  let records = 0;
  let segments = 0;
  let bytes = 0;
  let firstSeq: number | null = null;
  let nextSeq = 0;
  const progress = (offset: number, found: number) =>
    onProgress?.({
      log: name,
      bytesDone: bytesDone + offset,
      bytesTotal,
      segmentsDone,
      segmentsTotal: listed.length,
      records: records + found,
    });
  for (let i = 0; i < listed.length; i++) {
    const seg = listed[i];
    const pause = async (offset: number, found: number) => {
      signal?.throwIfAborted();
      progress(Math.min(offset, seg.bytes), found);
      await otherWork();
    };
    let v: SegmentVerdict | null = null;
    try {
      v = i + 1 < listed.length
        ? await verifySealedSegment(platform, seg.path, seg.firstSeq, listed[i + 1], ids, pause)
        : await verifyNewestSegment(platform, seg.path, seg.firstSeq, ids, pause, bound);
    } catch (err) {
      // Retention deleted it (oldest first, so it is at the front) since the listing.
      if (!(err instanceof NotFoundError)) throw err;
    }
    bytesDone += seg.bytes;
    segmentsDone++;
    if (v) {
      const h = v.header;
      if (segments > 0 && h?.version === 2 && h.prevEndSeq < h.firstSeq) {
        gaps.push({ from: h.prevEndSeq, to: h.firstSeq });
      }
      firstSeq ??= seg.firstSeq;
      nextSeq = v.endSeq;
      segments++;
      bytes += seg.bytes;
      records += v.records;
      problems.push(...v.problems);
    }
    signal?.throwIfAborted();
    progress(0, 0);
    await otherWork();
  }
  // File order: a name that is no file, and a chain break told at the file after the hole, too.
  problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    log: name,
    ok: problems.length === 0,
    records,
    segments,
    bytes,
    durationMs: performance.now() - t0,
    firstSeq: firstSeq ?? nextSeq,
    nextSeq,
    gaps,
    problems,
  };
}

/**
 * Lets other work run (a writer in this process, timers, I/O callbacks): verify calls it every
 * chunk and segment, so a long verify never holds the event loop, whatever the platform.
 */
function otherWork(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The segment files of `dir`, by first seq, with their sizes; a name of a segment that is not a
 * regular file (a directory, a symbolic link) is a problem, added to `problems`.
 */
async function listSegments(
  platform: Platform,
  dir: string,
  problems: VerifyProblem[],
): Promise<Listed[]> {
  const listed: Listed[] = [];
  for (const firstSeq of segmentSeqs(await platform.readdir(dir))) {
    const path = `${dir}/${segmentFileName(firstSeq)}`;
    const st = await platform.lstat(path);
    if (!st) continue; // retention deleted it since the readdir
    if (st.isFile && !st.isSymlink) listed.push({ path, firstSeq, bytes: st.size });
    else {
      const what = st.isSymlink ? "a symbolic link" : "a directory or special file";
      problems.push({ path, offset: 0, seq: null, reason: `segment is ${what}, not a file` });
    }
  }
  return listed;
}

/**
 * Verifies the logs `names` of the store in `root`, one after the other. Every name is checked
 * (a log name whose directory exists) before any log is read.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { verifyLogs } from "./verify.ts";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim });
 * await (await store.log("a")).append("x");
 * await (await store.log("b")).appendBatch(["y", "z"]);
 * await store.close();
 * const r = await verifyLogs(sim, "/s", ["b", "a"]);
 * if (!r.ok || r.logs.map((l) => `${l.log}:${l.records}`).join() !== "b:2,a:1") {
 *   throw new Error(JSON.stringify(r));
 * }
 * ```
 */
export async function verifyLogs(
  platform: Platform,
  root: string,
  names: readonly string[],
  opts: VerifyOptions = {},
): Promise<StoreVerifyReport> {
  const t0 = performance.now();
  for (const name of names) {
    validateLogName(name);
    await checkLogDir(platform, `${root}/${name}`);
  }
  const logs: VerifyReport[] = [];
  for (const name of names) logs.push(await verifyLogDir(platform, `${root}/${name}`, name, opts));
  return { ok: logs.every((l) => l.ok), durationMs: performance.now() - t0, logs };
}
