/**
 * Who holds a store lock, and whether they still live: the owner line a lock (or breaker) file
 * carries ({@linkcode LockOwner}), this process's own ({@linkcode identity}), and the liveness
 * check of another's ({@linkcode ownerStatus}) by pid, process start time and boot id, read from
 * procfs on Linux and by `kill(pid, 0)` elsewhere. The protocol that uses them is in `./lock.ts`.
 *
 * @example
 * ```ts
 * import { parseLockOwner } from "./lock_owner.ts";
 * const line = '{"pid":42,"start":"7","boot":"b","host":"h","runtime":"node","token":"t"}\n';
 * const o = parseLockOwner(line);
 * if (o?.pid !== 42 || o.runtime !== "node" || o.token !== "t") throw new Error(line);
 * ```
 * @module
 */
import * as os from "node:os";
import process from "node:process";
import type { Platform } from "./types.ts";
import { errorCode } from "./os_call.ts";
import { detectRuntime } from "./runtime.ts";

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

const dec = new TextDecoder();

/** Reads a small file (procfs files report size 0, so read until EOF); null if missing. */
export async function readSmall(p: Platform, path: string): Promise<string | null> {
  let f;
  try {
    f = await p.open(path, "read");
  } catch (err) {
    if (errorCode(err) === "NOT_FOUND") return null;
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
export function bootTimeMs(p: Platform): Promise<number | null> {
  bootPromise ??= readProc(p, "/proc/stat").then((text) => {
    const m = /^btime (\d+)$/m.exec(text ?? "");
    return m ? Number(m[1]) * 1000 : null;
  });
  return bootPromise;
}

/** This process's identity (all of its {@linkcode LockOwner} line but the token), computed once. */
export function identity(p: Platform): Promise<Omit<LockOwner, "token">> {
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
      runtime: detectRuntime(),
    };
  })();
  return identityPromise;
}

/**
 * Parses a lock file's text; null if it is not a complete owner line.
 *
 * @example
 * ```ts
 * import { parseLockOwner } from "./lock_owner.ts";
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

/** What {@linkcode ownerStatus} found: a live owner, a dead one, or one on another host. */
export type OwnerStatus = "alive" | "dead" | "foreign";

/** Whether `o` is a live process, a dead one, or on a host we cannot check. */
export async function ownerStatus(
  p: Platform,
  o: LockOwner,
  me: Omit<LockOwner, "token">,
): Promise<OwnerStatus> {
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
    return errorCode(err) === "ESRCH" ? "dead" : "alive";
  }
}

/** How a `LockedError` names the holder `o`. */
export function describeOwner(o: LockOwner, status: OwnerStatus): string {
  const where = status === "foreign"
    ? ` on host ${o.host} (cannot be checked from here; delete the lock file if that host is gone)`
    : "";
  return `${o.runtime} pid ${o.pid}${where}`;
}
