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
 * import { createFileDurable } from "./durable.ts";
 * import type { Platform } from "./types.ts";
 * async function newSegment(p: Platform, path: string, header: Uint8Array) {
 *   return await createFileDurable(p, path, header); // file + data + parent directory all synced
 * }
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
 * import { dirModeFor } from "./durable.ts";
 * console.log(dirModeFor(0o644).toString(8), dirModeFor(0o600).toString(8)); // "755" "700"
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
 * import { createFileDurable } from "./durable.ts";
 * import type { Platform } from "./types.ts";
 * async function demo(p: Platform) {
 *   const f = await createFileDurable(p, "/tmp/k/00000000000000000000.seg", new Uint8Array(32));
 *   f.close();
 * }
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
 * import { mkdirDurable } from "./durable.ts";
 * import type { Platform } from "./types.ts";
 * async function demo(p: Platform) { await mkdirDurable(p, "/tmp/khipu/store/events"); }
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
 * import { renameDurable } from "./durable.ts";
 * import type { Platform } from "./types.ts";
 * async function demo(p: Platform) { await renameDurable(p, "/d/a.seg", "/d/a.seg.broken"); }
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
 * import { unlinkDurable } from "./durable.ts";
 * import type { Platform } from "./types.ts";
 * async function demo(p: Platform) { await unlinkDurable(p, "/d/00000000000000000000.seg"); }
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
