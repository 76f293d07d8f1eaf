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
import type { Platform } from "./platform/types.ts";
import { checkSealed } from "./check_sealed.ts";
import {
  emptyReport,
  LogIdCheck,
  type OpenReport,
  type PrevEnd,
  type RecoverOptions,
} from "./open_context.ts";
import { removeStaleRepairFiles, repairLog, repairSegment } from "./repair.ts";
import { recoverActive } from "./recover_active.ts";
import { Segment, segmentFileName, segmentSeqs } from "./segment.ts";
import { liveView, type SegmentView } from "./segment_view.ts";

export type { OpenReport, RecoverOptions };

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
  const report = emptyReport();
  if (opts.repair) {
    const repaired = await repairLog(platform, dir, opts);
    report.repaired.push(...repaired.actions);
    report.skippedSeqs = repaired.skipped;
  }
  const names = await platform.readdir(dir);
  await removeStaleRepairFiles(platform, dir, names);
  const firstSeqs = segmentSeqs(names);
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
