/**
 * The store lock: one writer per store across processes **and runtimes**, with take-over of locks left
 * by dead processes. Every platform's `lock(path)` calls {@linkcode acquireLock}.
 *
 * Node and Bun have no `flock`, and a Deno `flock` would not exclude a Node process, so the lock is a
 * plain file protocol that every runtime can follow with `open(O_CREAT|O_EXCL)`, `read`, `unlink`:
 *
 * 1. **Take**: create `path` exclusively and write one JSON line naming the owner: pid, the process's
 *    start time (`/proc/<pid>/stat` field 22, Linux), the kernel boot id
 *    (`/proc/sys/kernel/random/boot_id`), host name, runtime, and a random token.
 * 2. **Held?** If `path` exists, read it. The owner is alive if it is on this host and boot, its pid
 *    exists, is not a zombie, and has the recorded start time (so a recycled pid does not count).
 *    Alive, or on another host (which cannot be checked) → {@linkcode LockedError}.
 * 3. **Take over** a dead owner's lock with token `t`: create the breaker `path.break-t` exclusively,
 *    re-read `path`, unlink it only if it still carries token `t`, remove the breaker, go to 1.
 *    The breaker is unique per stale generation and made with `O_EXCL`, so of two contenders only one
 *    unlinks, and nobody can unlink a newer lock: a breaker stale itself (its maker was killed in the
 *    microseconds it exists) is broken by the same rule one level down (`path.break-t.break-u`).
 * 4. A lock file that cannot be parsed (its maker died between `open` and `write`, or a power cut
 *    left it empty or zero-filled) is broken like a dead owner's, under the breaker
 *    `path.break-unreadable`. A live maker writes its whole line in one write microseconds after
 *    creating the file, so a zero-filled file, or one last modified more than `unreadableGraceMs`
 *    ago or before this boot, is dead at once; a fresh one counts as dead only once it has stayed
 *    unparsable for `unreadableGraceMs`.
 * 5. **Release**: unlink `path` if it still carries our token.
 *
 * Within one process a second `acquireLock` of the same path fails at once, without touching disk.
 * The lock file is not fsynced: after a power cut it is gone, or its boot id marks it stale, or it
 * is unparsable and older than the grace period (rule 4).
 * Limits (network file systems, containers, non-Linux pid reuse) are in PLATFORMS.md.
 * The owner line and the liveness check of rule 2 are in `./lock_owner.ts`.
 *
 * @example
 * ```ts
 * import { nodePlatform } from "@khipu/log/platform";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { acquireLock } from "./lock.ts";
 * const path = join(mkdtempSync(join(tmpdir(), "khipu-")), "LOCK");
 * const lock = await acquireLock(nodePlatform, path);
 * try {
 *   // ... write the store ...
 * } finally {
 *   await lock.release();
 * }
 * ```
 * @module
 */
import { resolve } from "node:path";
import { LockedError } from "../errors.ts";
import type { Platform, PlatformLock } from "./types.ts";
import { errorCode } from "./os_call.ts";
import {
  bootTimeMs,
  describeOwner,
  identity,
  type LockOwner,
  ownerStatus,
  parseLockOwner,
  readSmall,
} from "./lock_owner.ts";

export { type LockOwner, parseLockOwner, parseProcStat } from "./lock_owner.ts";

/** Tuning and test hooks for {@linkcode acquireLock}. */
export interface LockOptions {
  /**
   * How long a freshly modified unparsable lock file must stay unparsable before it counts as left
   * by a dead process. A live process writes its line microseconds after creating the file. An
   * unparsable file last modified longer ago than this is dead at once. Default 1000 ms.
   */
  unreadableGraceMs?: number;
  /** Permission bits of the lock file and its breakers (before the umask). Default `0o644`. */
  mode?: number;
}

/** Lock paths held by this process (resolved), so a second open in-process fails without I/O. */
const held = new Set<string>();

const enc = new TextEncoder();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Seen =
  | { kind: "missing" }
  | { kind: "unreadable"; text: string }
  | { kind: "owner"; owner: LockOwner };

async function inspect(p: Platform, path: string): Promise<Seen> {
  const text = await readSmall(p, path);
  if (text === null) return { kind: "missing" };
  const owner = parseLockOwner(text);
  return owner ? { kind: "owner", owner } : { kind: "unreadable", text };
}

/** Creates `path` exclusively with our owner line; false if it exists. */
async function tryCreate(
  p: Platform,
  path: string,
  owner: LockOwner,
  mode: number,
): Promise<boolean> {
  let f;
  try {
    f = await p.open(path, "createExclusive", mode);
  } catch (err) {
    if (errorCode(err) === "ALREADY_EXISTS") return false;
    throw err;
  }
  try {
    f.write(enc.encode(JSON.stringify(owner) + "\n"));
  } catch (err) {
    f.close();
    await p.unlink(path).catch(() => {});
    throw err;
  } finally {
    f.close();
  }
  return true;
}

const MAX_BREAKER_DEPTH = 4;
const MAX_ROUNDS = 16;

/**
 * Removes `target` if it still is the dead generation `token` (or still unparsable when `token` is
 * null), holding the exclusive breaker `target.break-<token>` meanwhile. Returns normally whether or
 * not it unlinked (the caller re-reads); throws LockedError if a live process is breaking it already.
 */
async function breakStale(
  p: Platform,
  lockPath: string,
  target: string,
  token: string | null,
  me: LockOwner,
  opts: Required<LockOptions>,
  depth: number,
): Promise<void> {
  if (depth >= MAX_BREAKER_DEPTH) {
    throw new LockedError({
      path: lockPath,
      holder: `stale breaker files (${target}); remove them by hand`,
    });
  }
  const breaker = `${target}.break-${token ?? "unreadable"}`;
  let got = false;
  for (let round = 0; round < MAX_ROUNDS && !got; round++) {
    if (await tryCreate(p, breaker, me, opts.mode)) {
      got = true;
      break;
    }
    const seen = await inspect(p, breaker);
    if (seen.kind === "missing") continue;
    if (seen.kind === "unreadable") {
      await breakStale(p, lockPath, breaker, null, me, opts, depth + 1);
      continue;
    }
    const st = await ownerStatus(p, seen.owner, me);
    if (st !== "dead") {
      throw new LockedError({
        path: lockPath,
        holder: `${describeOwner(seen.owner, st)} (taking over a stale lock)`,
      });
    }
    await breakStale(p, lockPath, breaker, seen.owner.token, me, opts, depth + 1);
  }
  if (!got) {
    throw new LockedError({ path: lockPath, holder: "contenders (breaker kept changing hands)" });
  }
  try {
    if (token !== null) {
      const again = await inspect(p, target);
      if (again.kind === "owner" && again.owner.token === token) await unlinkQuiet(p, target);
      return;
    }
    const first = await inspect(p, target);
    if (first.kind !== "unreadable") return;
    if (await deadAtOnce(p, target, first.text, opts)) {
      await unlinkQuiet(p, target);
      return;
    }
    // A fresh one may be a live maker's that has not written its line yet: wait and watch.
    const deadline = Date.now() + opts.unreadableGraceMs;
    while (Date.now() < deadline) {
      await sleep(Math.min(50, opts.unreadableGraceMs));
      const now = await inspect(p, target);
      if (now.kind !== "unreadable" || now.text !== first.text) return;
    }
    await unlinkQuiet(p, target);
  } finally {
    await unlinkQuiet(p, breaker);
  }
}

/**
 * Whether the unparsable lock file `path` (read as `text`) cannot be one a live process created and
 * is about to write: a live maker writes its whole line in one write microseconds after creating
 * the file, so zeros are a power cut's (the size reached the disk, the data did not), and a file
 * last modified before the grace period or before this boot is no live maker's either. A file whose
 * mtime is unknown (NaN) is taken for a fresh one.
 */
async function deadAtOnce(
  p: Platform,
  path: string,
  text: string,
  opts: Required<LockOptions>,
): Promise<boolean> {
  if (/^\0+$/.test(text)) return true;
  const st = await p.lstat(path);
  if (!st) return false; // gone: the caller's next read sees what replaced it
  const boot = await bootTimeMs(p);
  return Date.now() - st.mtimeMs > opts.unreadableGraceMs || (boot !== null && st.mtimeMs < boot);
}

async function unlinkQuiet(p: Platform, path: string): Promise<void> {
  try {
    await p.unlink(path);
  } catch (err) {
    if (errorCode(err) !== "NOT_FOUND") throw err;
  }
}

/** Removes breaker files of dead processes left next to `path` (crash between steps 3 and 1). */
async function removeDeadBreakers(p: Platform, path: string, me: LockOwner): Promise<void> {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const base = path.slice(slash + 1);
  let names: string[];
  try {
    names = await p.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(`${base}.break-`)) continue;
    const full = `${dir}/${name}`;
    try {
      const seen = await inspect(p, full);
      if (seen.kind === "owner" && (await ownerStatus(p, seen.owner, me)) === "dead") {
        await unlinkQuiet(p, full);
      }
    } catch {
      // litter only; never fail an acquired lock over it
    }
  }
}

/**
 * Takes the store lock at `path` through `platform`'s primitives, following the protocol in this
 * module's documentation. Throws {@linkcode LockedError} naming the holder if a live process (this one
 * included) holds it; takes over a lock whose holder is dead.
 *
 * @example
 * ```ts
 * import { LockedError } from "@khipu/log";
 * import { nodePlatform } from "@khipu/log/platform";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { acquireLock } from "./lock.ts";
 * const path = join(mkdtempSync(join(tmpdir(), "khipu-")), "LOCK");
 * const a = await acquireLock(nodePlatform, path);
 * try {
 *   await acquireLock(nodePlatform, path);
 *   throw new Error("took a lock this process holds");
 * } catch (e) {
 *   if (!(e instanceof LockedError)) throw e;
 * } finally {
 *   await a.release();
 * }
 * ```
 */
export async function acquireLock(
  platform: Platform,
  path: string,
  options: LockOptions = {},
): Promise<PlatformLock> {
  const key = resolve(path);
  if (held.has(key)) {
    throw new LockedError({ path, holder: "this process (it holds this lock already)" });
  }
  held.add(key); // synchronously, so a concurrent acquire in this process fails too
  const opts: Required<LockOptions> = {
    unreadableGraceMs: options.unreadableGraceMs ?? 1000,
    mode: options.mode ?? 0o644,
  };
  try {
    const me: LockOwner = { ...(await identity(platform)), token: crypto.randomUUID() };
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (await tryCreate(platform, path, me, opts.mode)) {
        await removeDeadBreakers(platform, path, me);
        return makeHandle(platform, path, key, me.token);
      }
      const seen = await inspect(platform, path);
      if (seen.kind === "missing") continue; // released meanwhile: race for it again
      if (seen.kind === "unreadable") {
        await breakStale(platform, path, path, null, me, opts, 0);
        continue;
      }
      const st = await ownerStatus(platform, seen.owner, me);
      if (st !== "dead") throw new LockedError({ path, holder: describeOwner(seen.owner, st) });
      await breakStale(platform, path, path, seen.owner.token, me, opts, 0);
    }
    throw new LockedError({ path, holder: "contenders (the lock kept changing hands)" });
  } catch (err) {
    held.delete(key);
    throw err;
  }
}

function makeHandle(p: Platform, path: string, key: string, token: string): PlatformLock {
  let released: Promise<void> | undefined;
  return {
    path,
    release(): Promise<void> {
      released ??= (async () => {
        try {
          const seen = await inspect(p, path);
          // Only our own generation: if it was (wrongly) taken over, the file is someone else's.
          if (seen.kind === "owner" && seen.owner.token === token) await unlinkQuiet(p, path);
        } finally {
          held.delete(key);
        }
      })();
      return released;
    },
  };
}
