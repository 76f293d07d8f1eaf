/**
 * Durable directory-entry operations, written once on top of any {@linkcode Platform}.
 *
 * fsync of a file makes its bytes durable but not its name: the name lives in the parent directory,
 * so creating, renaming or removing a file is only durable once the directory itself is fsynced
 * (Unix; `syncDir` is a no-op on Windows). These helpers always do both. The core creates every file
 * through {@linkcode createFileDurable} and nothing else.
 *
 * @example
 * ```ts
 * import { createFileDurable, type Platform } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * async function newSegment(p: Platform, path: string, header: Uint8Array) {
 *   return await createFileDurable(p, path, header); // file + data + parent directory all synced
 * }
 * const sim = new SimPlatform();
 * (await newSegment(sim, "/0.seg", new Uint8Array(32))).close();
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * if (afterCut.fileBytes("/0.seg")?.length !== 32) throw new Error("lost in a power cut");
 * ```
 * @module
 */
import type { Platform, PlatformFile } from "./types.ts";

/** The parent directory of `path` (`.` for a bare name). Accepts `/` and, on Windows, `\`. */
export function parentDir(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (i < 0) return ".";
  if (i === 0) return path.slice(0, 1);
  return path.slice(0, i);
}

/**
 * The permission bits for the store's directories that go with `fileMode`, its files' bits: each
 * read bit brings the execute (search) bit of the same class, since a directory that can be read but
 * not searched does not let its files be opened. Like `fileMode`, the result is before the umask.
 *
 * @example
 * ```ts
 * import { dirModeFor } from "@khipu/log/platform";
 * if (dirModeFor(0o644) !== 0o755 || dirModeFor(0o600) !== 0o700) throw new Error("dirModeFor");
 * ```
 */
export function dirModeFor(fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2);
}

/**
 * Creates `path` (it must not exist), writes `initial`, fdatasyncs the file and fsyncs its parent
 * directory. Returns the file open for appending. If any step fails the file is closed and removed
 * (best effort) and the error is rethrown, so no half-made file is left for the caller to adopt.
 *
 * @example
 * ```ts
 * import { createFileDurable } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const f = await createFileDurable(sim, "/00000000000000000000.seg", new Uint8Array(32));
 * f.write(new Uint8Array(8)); // open for appending; these 8 bytes are not synced
 * f.close();
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * const bytes = afterCut.fileBytes("/00000000000000000000.seg");
 * if (bytes?.length !== 32) throw new Error(`${bytes?.length} bytes`);
 * ```
 */
export async function createFileDurable(
  platform: Platform,
  path: string,
  initial: Uint8Array,
  mode?: number,
): Promise<PlatformFile> {
  const file = await platform.open(path, "createExclusive", mode);
  try {
    if (initial.length > 0) file.write(initial);
    await file.datasync();
    await platform.syncDir(parentDir(path));
    return file;
  } catch (err) {
    file.close();
    await platform.unlink(path).catch(() => {});
    throw err;
  }
}

/**
 * Creates directory `path` and every missing ancestor, fsyncing each parent that gained an entry
 * (and the new directory itself), so the whole chain survives a power cut.
 * Returns true if anything was created.
 *
 * @example
 * ```ts
 * import { mkdirDurable } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * if (!(await mkdirDurable(sim, "/khipu/store/events"))) throw new Error("nothing created");
 * if (await mkdirDurable(sim, "/khipu/store/events")) throw new Error("created twice");
 * const afterCut = sim.crash("none"); // a power cut: nothing that was not synced survives
 * if (!(await afterCut.stat("/khipu/store/events"))?.isDirectory) throw new Error("lost");
 * ```
 */
export async function mkdirDurable(
  platform: Platform,
  path: string,
  mode?: number,
): Promise<boolean> {
  const existing = await platform.stat(path);
  if (existing) return false;
  const parent = parentDir(path);
  if (parent !== path) await mkdirDurable(platform, parent, mode);
  const created = await platform.mkdir(path, mode);
  if (created) {
    await platform.syncDir(path);
    await platform.syncDir(parent);
  }
  return created;
}

/**
 * Renames `from` to `to` (replacing `to`) and fsyncs the destination directory, and the source
 * directory too when it differs, so the rename is durable.
 *
 * @example
 * ```ts
 * import { renameDurable } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * sim.setFileBytes("/a.seg", new Uint8Array(32)); // a durable file
 * await renameDurable(sim, "/a.seg", "/a.seg.broken");
 * const afterCut = sim.crash("undoDirOps"); // a power cut that undoes every unsynced rename
 * if (afterCut.fileBytes("/a.seg.broken")?.length !== 32) throw new Error("the rename was lost");
 * ```
 */
export async function renameDurable(platform: Platform, from: string, to: string): Promise<void> {
  await platform.rename(from, to);
  const toDir = parentDir(to);
  const fromDir = parentDir(from);
  await platform.syncDir(toDir);
  if (fromDir !== toDir) await platform.syncDir(fromDir);
}

/**
 * Removes a file and fsyncs its parent directory, so the removal is durable. `afterUnlink`, if
 * given, runs between the two steps.
 *
 * @example
 * ```ts
 * import { unlinkDurable } from "@khipu/log/platform";
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * sim.setFileBytes("/0.seg", new Uint8Array(32)); // a durable file
 * await unlinkDurable(sim, "/0.seg");
 * const afterCut = sim.crash("undoDirOps"); // a power cut that undoes every unsynced unlink
 * if (afterCut.fileBytes("/0.seg") !== null) throw new Error("the file came back");
 * ```
 */
export async function unlinkDurable(
  platform: Platform,
  path: string,
  afterUnlink?: () => void,
): Promise<void> {
  await platform.unlink(path);
  // The name is gone (not yet durably): callers that index files forget it now, because the
  // directory fsync below can still fail.
  afterUnlink?.();
  await platform.syncDir(parentDir(path));
}
