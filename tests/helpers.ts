// Helpers shared by the test files (not itself a test file).
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { defaultPlatform } from "../src/platform/detect.ts";
import type { Platform, PlatformFile } from "../src/platform/types.ts";
import { concatChunks } from "../src/platform/write_all.ts";

/** The bytes of `parts`, one after another. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatChunks(parts);
}

/** A file that forwards every call to `f`, except those in `overrides`. */
export function wrapFile(f: PlatformFile, overrides: Partial<PlatformFile>): PlatformFile {
  return {
    path: f.path,
    write: (d) => f.write(d),
    writev: (c) => f.writev(c),
    writeAt: (d, p) => f.writeAt(d, p),
    writevAt: (c, p) => f.writevAt(c, p),
    readAt: (b, p) => f.readAt(b, p),
    size: () => f.size(),
    truncate: (n) => f.truncate(n),
    datasync: () => f.datasync(),
    sync: () => f.sync(),
    close: () => f.close(),
    ...overrides,
  };
}

/**
 * Registers hooks that give the file's tests this runtime's real platform and fresh temp
 * directories (named `khipu-<prefix>-*`), all removed after the file's tests.
 */
export function realDisk(prefix: string): { platform(): Platform; tempDir(): string } {
  let disk: Platform | undefined;
  const roots: string[] = [];
  before(async () => {
    disk = await defaultPlatform();
  });
  after(() => {
    for (const d of roots) rmSync(d, { recursive: true, force: true });
  });
  return {
    platform() {
      if (!disk) throw new Error("realDisk: used before the before() hook ran");
      return disk;
    },
    tempDir() {
      const d = mkdtempSync(join(tmpdir(), `khipu-${prefix}-`));
      roots.push(d);
      return d;
    },
  };
}

/** `p`, or a rejection naming `what` if it has not settled after `ms`: a hang fails, not stalls. */
export async function within<T>(p: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The child environment: no loaders inherited from tsx, no colours, no update checks. */
export function childEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  delete env.NODE_OPTIONS;
  delete env.FORCE_COLOR;
  return env;
}

/** Runs a command, its output captured (it throws with it on failure). */
export function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
}

/** Unmounts `dir`, lazily if it is still busy; nothing if it is not mounted. */
export function unmount(dir: string): void {
  try {
    run("umount", [dir]);
  } catch {
    try {
      run("umount", ["-l", dir]);
    } catch {
      // not mounted (any more)
    }
  }
}

/** True if `a` and `b` hold the same bytes. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Asserts that `log` holds exactly the `resolved` appends (seq -> bytes) from `firstSeq` on,
 * contiguous, byte for byte, and none of the `rejected` payloads.
 */
export async function assertOnlyResolved(
  log: { read(o: { from: number }): AsyncIterable<{ seq: number; data: Uint8Array }> },
  resolved: ReadonlyMap<number, Uint8Array>,
  rejected: readonly Uint8Array[],
  firstSeq = 0,
): Promise<void> {
  const seqs = [...resolved.keys()].sort((a, b) => a - b);
  assert.deepEqual(seqs, seqs.map((_, i) => i), "resolved appends have contiguous seqs");
  let n = firstSeq;
  for await (const r of log.read({ from: 0 })) {
    assert.equal(r.seq, n, "contiguous from the first seq");
    const want = resolved.get(r.seq);
    assert.ok(want && same(r.data, want), `record ${r.seq} is not the resolved append`);
    assert.ok(!rejected.some((d) => same(d, r.data)), `record ${r.seq} was refused`);
    n++;
  }
  assert.equal(n, resolved.size, "every resolved append from the first seq is there");
}
