/**
 * Retention: deleting whole sealed segments from the front of a log, durably and in an order that a
 * crash at any point cannot turn into a gap or a restart of sequence numbers (RECOVERY.md,
 * "Writing: what recovery relies on").
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const store = await Store.open("/s", { platform: new SimPlatform(), segmentBytes: 4096 });
 * const log = await store.log("l");
 * for (let i = 0; i < 12; i++) await log.append(new Uint8Array(1000)); // 3 records a segment
 * await log.truncateBefore(6); // deletes the segments holding only records 0-5
 * await store.close();
 * if (log.firstSeq !== 6) throw new Error(`firstSeq ${log.firstSeq}`);
 * ```
 * @module
 */
import { unlinkDurable } from "./platform/durable.ts";
import type { Platform } from "./platform/types.ts";
import type { SegmentView } from "./segment_view.ts";

/** What retention needs of the log's writer. */
export interface RetainedLog {
  /** Every segment, oldest first (retention removes from the front). */
  readonly segments: SegmentView[];
  /** Settles once no rollover is under way (the next segment's file then exists, or failed). */
  readonly pumpDone: Promise<void>;
}

/**
 * Deletes, oldest first, every sealed segment whose records all lie below `seq`; the active segment
 * is never deleted. Each deletion is durable (directory fsync) before the next. Returns how many
 * went.
 *
 * @example `log.truncateBefore(seq)` runs it after the retention calls before it
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim, segmentBytes: 4096 });
 * const log = await store.log("l");
 * for (let i = 0; i < 12; i++) await log.append(new Uint8Array(1000));
 * await log.truncateBefore(12); // every sealed segment; the active one stays
 * const afterCut = sim.crash("undoDirOps", 1); // unlinks whose directory was not synced undone
 * if ((await afterCut.readdir("/s/l")).length !== log.segmentCount) throw new Error("not durable");
 * await store.close();
 * ```
 */
export async function deleteSegmentsBefore(
  platform: Platform,
  seq: number,
  log: RetainedLog,
): Promise<number> {
  let deleted = 0;
  while (log.segments.length > 1) {
    const oldest = log.segments[0];
    if (oldest.kind !== "sealed" || oldest.endSeq > seq) break;
    // Never delete a segment before a later one is durably on disk: a power cut could otherwise
    // leave no segment at all, and the log would restart at sequence number 0.
    const next = log.segments[1];
    if (next.kind === "live" && !next.writer.materialized) {
      await log.pumpDone;
      const now = log.segments[1];
      if (!next.writer.materialized && now.kind === "live" && now.writer === next.writer) break;
      continue;
    }
    // Dropped from the list once unlinked, before the directory fsync (which can fail), so readers
    // never look for a file that no longer exists.
    await unlinkDurable(platform, oldest.path, () => log.segments.shift());
    deleted++;
  }
  return deleted;
}
