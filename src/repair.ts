/**
 * Repair mode (`repair: true`): a damaged segment keeps its whole frames before the damage under its
 * own name, its original bytes go to `<name>.broken[.n]`, and the segments after a damaged sealed
 * one are set aside. Every step is durable before the next, in an order where a crash at any point
 * loses nothing (RECOVERY.md, "Repair mode"):
 *
 * 1. the damaged original is copied to `.broken` (from here on its bytes survive whatever follows);
 * 2. the later segments are renamed to `.broken`, newest first (never a gap below one still there);
 * 3. the kept prefix is written as `<name>.repair`;
 * 4. which is renamed over the original (atomic: the name holds the original or the prefix).
 *
 * A crash before 4 leaves the original in place (damaged, or newest with its damage already saved),
 * and the next open decides again; a leftover `.repair` is removed by the next open.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const store = await Store.open("/s", { platform: sim });
 * await (await store.log("l")).appendBatch(["a", "b", "c"]);
 * await store.close();
 * const path = "/s/l/00000000000000000000.seg";
 * const bytes = sim.fileBytes(path)!;
 * bytes[32 + 28 + 1 + 8] ^= 1; // one bit of record 1's header: valid frames follow
 * sim.setFileBytes(path, bytes);
 * const repaired = await Store.open("/s", { platform: sim, repair: true });
 * const log = await repaired.log("l");
 * if (log.nextSeq !== 1 || log.openReport.repaired[0].movedTo !== `${path}.broken`) throw new Error();
 * await repaired.close();
 * ```
 * @module
 */
import type { KhipuError } from "./errors.ts";
import { createFileDurable, parentDir, renameDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { decodeHeader, encodeHeader, HEADER_BYTES } from "./format/header.ts";
import { FRAME_SEAL } from "./format/frame.ts";
import { FrameScanner, SCAN_CHUNK_BYTES } from "./format/scanner.ts";
import { parseSegmentFileName } from "./segment.ts";

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

/** Suffix of the temporary file a repair builds before renaming it over the damaged segment. */
const REPAIR_SUFFIX = ".repair";

/**
 * Repairs the segment at `path` (first sequence number `firstSeq`) for `damage`, setting `later`
 * segments aside too, in the crash-safe order of this module's documentation. `maxRecordBytes` caps
 * a fresh header when the old one is unreadable. Returns what it moved.
 *
 * @example
 * ```ts
 * import { repairSegment } from "./repair.ts";
 * import { CorruptionError } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * sim.setFileBytes("/l/00000000000000000000.seg", new Uint8Array(40).fill(9)); // no header at all
 * const damage = new CorruptionError({ message: "segment header: bad magic", path: "/l/00000000000000000000.seg", offset: 0 });
 * const moved = await repairSegment(sim, "/l/00000000000000000000.seg", 0, damage, { maxRecordBytes: 1024 });
 * if (moved.length !== 1 || sim.fileBytes("/l/00000000000000000000.seg")?.length !== 32) throw new Error();
 * ```
 */
export async function repairSegment(
  platform: Platform,
  path: string,
  firstSeq: number,
  damage: KhipuError,
  opts: { maxRecordBytes: number; fileMode?: number },
  later: readonly string[] = [],
): Promise<RepairAction[]> {
  const moved: RepairAction[] = [];
  const tmp = `${path}${REPAIR_SUFFIX}`;
  const file = await platform.open(path, "read");
  try {
    const size = file.size();
    const prefixEnd = validPrefixEnd(file, size, firstSeq);
    const movedTo = await freeAsideName(platform, path);
    await copyDurable(platform, file, size, movedTo, opts.fileMode);
    moved.push({ path, movedTo, offset: damage.offset ?? 0, reason: damage.message });
    for (const p of [...later].reverse()) {
      const to = await freeAsideName(platform, p);
      await renameDurable(platform, p, to);
      moved.push({ path: p, movedTo: to, offset: 0, reason: "follows a damaged segment" });
    }
    await platform.remove(tmp);
    if (prefixEnd > 0) await copyDurable(platform, file, prefixEnd, tmp, opts.fileMode);
    else {
      const header = encodeHeader({ firstSeq, maxRecordBytes: opts.maxRecordBytes });
      (await createFileDurable(platform, tmp, header, opts.fileMode)).close();
    }
  } finally {
    file.close();
  }
  await renameDurable(platform, tmp, path);
  return moved;
}

/** End of the header and the whole record frames before the damage; 0 if the header is bad. */
function validPrefixEnd(file: PlatformFile, size: number, firstSeq: number): number {
  const head = new Uint8Array(HEADER_BYTES);
  file.readAt(head, 0);
  const h = decodeHeader(head);
  if (!h.ok) return 0;
  const scanner = new FrameScanner(file, HEADER_BYTES, size, firstSeq, h.header.maxRecordBytes);
  let step = scanner.next();
  while (step.kind === "frame" && step.type !== FRAME_SEAL) step = scanner.next();
  return step.offset;
}

/** The first of `<path>.broken`, `<path>.broken.1`, ... that does not exist. */
async function freeAsideName(platform: Platform, path: string): Promise<string> {
  let to = `${path}.broken`;
  for (let n = 1; await platform.lstat(to); n++) to = `${path}.broken.${n}`;
  return to;
}

/**
 * Copies bytes `[0, end)` of `from` to the new file `to`, a chunk at a time (memory stays bounded
 * whatever the file's size), and makes it durable. A crash part-way leaves a partial copy under a
 * name recovery ignores, never a change to `from`.
 */
async function copyDurable(
  platform: Platform,
  from: PlatformFile,
  end: number,
  to: string,
  mode: number | undefined,
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
    await out.datasync();
  } finally {
    out.close();
  }
}

/**
 * Removes `<segment>.repair` files left by a repair a crash interrupted: never the only copy of
 * anything (the segment's own name holds the original or the finished repair), so always safe.
 *
 * @example
 * ```ts
 * import { removeStaleRepairFiles } from "./repair.ts";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * sim.setFileBytes("/l/00000000000000000000.seg.repair", new Uint8Array(32));
 * await removeStaleRepairFiles(sim, "/l", await sim.readdir("/l"));
 * if ((await sim.readdir("/l")).length !== 0) throw new Error("left behind");
 * ```
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
