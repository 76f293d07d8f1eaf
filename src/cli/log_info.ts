/**
 * The figures `khipu ls` and `khipu stat` show for a log, taken from what the open log knows
 * (its segments, their seq ranges and seal timestamps): no record is read.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { summarize } from "./log_info.ts";
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * const log = await store.log("events");
 * await log.appendBatch(["a", "b", "c"]);
 * const s = summarize(log);
 * await store.close();
 * if (s.records !== 3 || s.nextSeq !== 3 || s.segments !== 1) throw new Error(JSON.stringify(s));
 * ```
 * @module
 */
import type { Log } from "../log.ts";
import { isoTime } from "./output.ts";

/** One log at a glance (the JSON form: times ISO 8601 or null when unknown). */
export interface LogSummary {
  /** Its name. */
  name: string;
  /** Its directory. */
  path: string;
  /** Its identity (32 hex digits). */
  id: string;
  /** The oldest seq it holds. */
  firstSeq: number;
  /** The seq the next append gets. */
  nextSeq: number;
  /** Records it holds: `nextSeq - firstSeq` less the seqs in gaps. */
  records: number;
  /** Bytes of its segment files. */
  bytes: number;
  /** Segment files. */
  segments: number;
  /** Seq ranges `[from, to)` no segment holds (declared lost by a repair). */
  gaps: { from: number; to: number }[];
  /** Timestamp of its oldest record, if known. */
  firstTime: string | null;
  /** Timestamp of its newest record, if known. */
  lastTime: string | null;
}

/**
 * What `log` holds, from its segment list.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { summarize } from "./log_info.ts";
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * const s = summarize(await store.log("empty"));
 * await store.close();
 * if (s.records !== 0 || s.firstTime !== null || s.gaps.length !== 0) throw new Error();
 * ```
 */
export function summarize(log: Log): LogSummary {
  const segments = log.segments();
  const first = segments.find((s) => s.firstTimestamp !== null)?.firstTimestamp ?? null;
  const last = [...segments].reverse().find((s) => s.lastTimestamp !== null)?.lastTimestamp ??
    null;
  return {
    name: log.name,
    path: log.path,
    id: log.id,
    firstSeq: log.firstSeq,
    nextSeq: log.nextSeq,
    records: segments.reduce((n, s) => n + (s.endSeq - s.firstSeq), 0),
    bytes: log.byteSize,
    segments: log.segmentCount,
    gaps: [...log.gaps],
    firstTime: isoTime(first),
    lastTime: isoTime(last),
  };
}
