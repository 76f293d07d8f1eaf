/**
 * The file-system contract khipu-log is written against, and its runtime adapters: for people who
 * write a {@linkcode Platform} of their own (a wrapper that meters I/O, a file system the runtimes
 * do not reach) or pick an adapter explicitly. Every call the core makes goes through one; the
 * durable helpers make each created, renamed or removed entry durable with a directory fsync.
 *
 * @example Wrapping the detected platform to count fdatasyncs
 * ```ts
 * import { Store } from "@khipu/log";
 * import { defaultPlatform, type Platform, type PlatformFile } from "@khipu/log/platform";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const inner = await defaultPlatform();
 * let syncs = 0;
 * const counting: Platform = {
 *   ...inner,
 *   name: `counting(${inner.name})`,
 *   lock: (path, mode) => inner.lock(path, mode),
 *   async open(path, how, mode): Promise<PlatformFile> {
 *     const f = await inner.open(path, how, mode);
 *     return {
 *       path: f.path, write: (d) => f.write(d), writev: (c) => f.writev(c),
 *       writeAt: (d, p) => f.writeAt(d, p), writevAt: (c, p) => f.writevAt(c, p),
 *       readAt: (b, p) => f.readAt(b, p), size: () => f.size(), truncate: (n) => f.truncate(n),
 *       datasync: () => (syncs++, f.datasync()), sync: () => f.sync(), close: () => f.close(),
 *     };
 *   },
 * };
 * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")), { platform: counting });
 * await (await store.log("events")).append("x");
 * await store.close();
 * if (syncs < 1) throw new Error("close() fdatasyncs");
 * ```
 * @module
 */
export type {
  FileOp,
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformOp,
  PlatformStat,
  PlatformWatcher,
} from "./src/platform/types.ts";
export { defaultPlatform } from "./src/platform/detect.ts";
export { createNodePlatform, nodePlatform } from "./src/platform/node.ts";
export {
  createFileDurable,
  dirModeFor,
  mkdirDurable,
  renameDurable,
  unlinkDurable,
} from "./src/platform/durable.ts";
