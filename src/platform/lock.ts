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
import * as os from "node:os";
import { resolve } from "node:path";
import process from "node:process";
import { KhipuError, LockedError } from "../errors.ts";
import type { Platform, PlatformLock } from "./types.ts";

/** What a lock (or breaker) file says about its owner. */
export interface LockOwner {
  /** Process id. */
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux), or null where unknown. */
  start: string | null;
  /** Kernel boot id (Linux), or null where unknown. */
  boot: string | null;
  /** Host name. */
  host: string;
  /** `deno`, `node`, `bun`... */
  runtime: string;
  /** Random token naming this lock generation. */
  token: string;
}

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
const dec = new TextDecoder();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errCode(err: unknown): string | undefined {
  if (err instanceof KhipuError) return err.code;
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/** Reads a small file (procfs files report size 0, so read until EOF); null if missing. */
async function readSmall(p: Platform, path: string): Promise<string | null> {
  let f;
  try {
    f = await p.open(path, "read");
  } catch (err) {
    if (errCode(err) === "NOT_FOUND") return null;
    throw err;
  }
  try {
    const chunks: Uint8Array[] = [];
    let pos = 0;
    while (true) {
      const buf = new Uint8Array(4096);
      const n = f.readAt(buf, pos);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      pos += n;
      if (pos > 1 << 20) break; // a lock file is one short line; don't slurp garbage
    }
    const all = new Uint8Array(pos);
    let o = 0;
    for (const c of chunks) {
      all.set(c, o);
      o += c.length;
    }
    return dec.decode(all);
  } finally {
    f.close();
  }
}

/** Best-effort read of a procfs file; null off Linux or without permission. */
async function readProc(p: Platform, path: string): Promise<string | null> {
  if (process.platform !== "linux") return null;
  try {
    return await readSmall(p, path);
  } catch {
    return null;
  }
}

/** Parses `/proc/<pid>/stat`: state and start time (field 22), robust to `)` in the comm field. */
export function parseProcStat(text: string): { state: string; start: string } | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const fields = text.slice(close + 2).trim().split(" ");
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  if (fields.length < 20) return null;
  return { state: fields[0], start: fields[19] };
}

function runtimeName(): string {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}

function hostName(): string {
  try {
    return os.hostname();
  } catch {
    return ""; // Deno without --allow-sys; filled from procfs below where possible
  }
}

let identityPromise: Promise<Omit<LockOwner, "token">> | undefined;
let bootPromise: Promise<number | null> | undefined;

/** When this system booted (`btime` in `/proc/stat`), in ms since the epoch; null off Linux. */
function bootTimeMs(p: Platform): Promise<number | null> {
  bootPromise ??= readProc(p, "/proc/stat").then((text) => {
    const m = /^btime (\d+)$/m.exec(text ?? "");
    return m ? Number(m[1]) * 1000 : null;
  });
  return bootPromise;
}

/** This process's identity, computed once. */
function identity(p: Platform): Promise<Omit<LockOwner, "token">> {
  identityPromise ??= (async () => {
    const pid = process.pid;
    const stat = await readProc(p, `/proc/${pid}/stat`);
    const boot = (await readProc(p, "/proc/sys/kernel/random/boot_id"))?.trim() || null;
    let host = hostName();
    if (!host) host = (await readProc(p, "/proc/sys/kernel/hostname"))?.trim() ?? "";
    return {
      pid,
      start: stat ? parseProcStat(stat)?.start ?? null : null,
      boot,
      host: host || "unknown",
      runtime: runtimeName(),
    };
  })();
  return identityPromise;
}

type Seen =
  | { kind: "missing" }
  | { kind: "unreadable"; text: string }
  | { kind: "owner"; owner: LockOwner };

/**
 * Parses a lock file's text; null if it is not a complete owner line.
 *
 * @example
 * ```ts
 * import { parseLockOwner } from "./lock.ts";
 * if (parseLockOwner("") !== null) throw new Error("an empty lock file has an owner");
 * ```
 */
export function parseLockOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid !== "number" || typeof o.token !== "string" || !o.token) return null;
    return {
      pid: o.pid,
      start: typeof o.start === "string" ? o.start : null,
      boot: typeof o.boot === "string" ? o.boot : null,
      host: typeof o.host === "string" ? o.host : "",
      runtime: typeof o.runtime === "string" ? o.runtime : "?",
      token: o.token,
    };
  } catch {
    return null;
  }
}

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
    if (errCode(err) === "ALREADY_EXISTS") return false;
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

type Status = "alive" | "dead" | "foreign";

/** Whether `o` is a live process, a dead one, or on a host we cannot check. */
async function ownerStatus(
  p: Platform,
  o: LockOwner,
  me: Omit<LockOwner, "token">,
): Promise<Status> {
  if (o.boot && me.boot && o.boot !== me.boot) {
    // Another boot of this host (the owner died with the previous boot), or another host.
    return o.host === me.host ? "dead" : "foreign";
  }
  if (o.host !== me.host) return "foreign";
  if (o.pid === me.pid) return o.start === me.start ? "alive" : "dead";
  if (me.start !== null) {
    // Linux: procfs tells existence, zombie state and start time (pid reuse) without permissions.
    const text = await readProc(p, `/proc/${o.pid}/stat`);
    if (text === null) return "dead";
    const st = parseProcStat(text);
    if (!st) return "alive"; // cannot tell: be safe
    if (st.state === "Z" || st.state === "X") return "dead";
    if (o.start !== null && st.start !== o.start) return "dead";
    return "alive";
  }
  try {
    process.kill(o.pid, 0);
    return "alive";
  } catch (err) {
    // ESRCH: no such process. EPERM: exists but not ours. Anything else (e.g. Deno without
    // --allow-run): cannot tell, so assume alive rather than steal a live writer's lock.
    return errCode(err) === "ESRCH" ? "dead" : "alive";
  }
}

function describeOwner(o: LockOwner, status: Status): string {
  const where = status === "foreign"
    ? ` on host ${o.host} (cannot be checked from here; delete the lock file if that host is gone)`
    : "";
  return `${o.runtime} pid ${o.pid}${where}`;
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
    throw new LockedError(lockPath, `stale breaker files (${target}); remove them by hand`);
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
      throw new LockedError(
        lockPath,
        `${describeOwner(seen.owner, st)} (taking over a stale lock)`,
      );
    }
    await breakStale(p, lockPath, breaker, seen.owner.token, me, opts, depth + 1);
  }
  if (!got) throw new LockedError(lockPath, "contenders (breaker kept changing hands)");
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
    if (errCode(err) !== "NOT_FOUND") throw err;
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
  if (held.has(key)) throw new LockedError(path, "this process (the store is already open)");
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
      if (st !== "dead") throw new LockedError(path, describeOwner(seen.owner, st));
      await breakStale(platform, path, path, seen.owner.token, me, opts, 0);
    }
    throw new LockedError(path, "contenders (the lock kept changing hands)");
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
