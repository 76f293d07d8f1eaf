// Retention on a real full disk: a 2 MiB tmpfs whose free space a filler file sets to the page.
// A log with `retention: { maxBytes }`, SyncPolicy.always() and 64 KiB segments of 1 KiB records:
//
// 1. Room below the cap: the disk fills, every refusal is a NoSpaceError, and a retention pass
//    frees nothing (the log is within its limit), so appends stay refused.
// 2. The filler shrinks so the room is a little above the cap. The cap now lets the log reach the
//    full disk between two rollovers (the active segment is preallocated at once), so the disk fills
//    once a segment; the log is then over its cap, and retention itself makes the room: by
//    `enforceRetention()` on one fill, by `roll()` (whose seal runs a retention pass) on the next.
//    The next append resolves each time, without a reopen.
// 3. The filler shrinks again: the cap alone keeps the log within the disk, no append is refused.
//
// Then the log is reopened: every resolved append from its first seq on is there, byte for byte,
// with contiguous seqs, and no refused one. Needs root (mount); skipped with a message otherwise.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { KhipuError, NoSpaceError, Store, SyncPolicy } from "../mod.ts";
import { recordingPlatform } from "../testing.ts";
import { assertOnlyResolved, run, unmount, within } from "./helpers.ts";
import { defaultPlatform } from "../src/platform/detect.ts";
import { currentRuntime } from "./fixtures/runtimes.ts";

/** Bound on one call (a hang fails the test instead of the runner). */
const CALL_MS = 10_000;
const KIB = 1024;
const RECORD = KIB;
const SEGMENT = 64 * KIB;
/** 4.5 segments: after a rollover's pass 4 sealed ones stay, and a 5th preallocated reaches 320 KiB. */
const MAX_BYTES = 288 * KIB;
/** Phase 1's room for the log: well below the cap. */
const ROOM_UNDER_CAP = 192 * KIB;
/** Phase 2's room: above the cap, below what 4 sealed segments and a preallocated one take. */
const ROOM_OVER_CAP = MAX_BYTES + 16 * KIB;
/** Disk fills in phase 2 relieved by `enforceRetention()`, and as many by `roll()`. */
const FILLS = 3;
const BURST = 4;
const MAX_ATTEMPTS = 8000; // a bound, not a target

/** A file grown a page at a time until the disk refuses one; `shrink(n)` frees `n` bytes of it. */
function fillDisk(path: string): { shrink(n: number): void; close(): void } {
  const fd = openSync(path, "w");
  const page = new Uint8Array(4096).fill(0xab);
  let size = 0;
  for (;;) {
    try {
      size += writeSync(fd, page, 0, page.length, size);
    } catch (err) {
      assert.equal((err as { code?: string }).code, "ENOSPC", `filler: ${String(err)}`);
      break;
    }
  }
  return {
    shrink(n) {
      assert.ok(size >= n, `the filler holds ${size} bytes, cannot free ${n}`);
      size -= n;
      ftruncateSync(fd, size);
    },
    close: () => closeSync(fd),
  };
}

/** Polls `done` every 5 ms, for at most `ms`. */
async function until(done: () => boolean, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    assert.ok(Date.now() < end, `${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("retention on a full disk (a real 2 MiB tmpfs)", () => {
  it(
    "a log over its maxBytes on a full disk frees its old segments and appends go on, unreopened",
    { timeout: 300_000 },
    async (t) => {
      const name = "tests/retention_disk_full.test.ts";
      if (process.platform !== "linux" || process.getuid?.() !== 0) {
        const why = "needs root on Linux to mount a tmpfs";
        console.log(`${name}: skipped: ${why}`);
        t.skip(why);
        return;
      }
      const mnt = mkdtempSync(join(tmpdir(), `khipu-retention-full-${currentRuntime()}-`));
      try {
        run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
      } catch (err) {
        rmSync(mnt, { recursive: true, force: true });
        const why = `mount -t tmpfs failed: ${(err as Error).message.split("\n")[0]}`;
        console.log(`${name}: skipped: ${why}`);
        t.skip(why);
        return;
      }
      let store: Store | null = null;
      let filler: ReturnType<typeof fillDisk> | null = null;
      try {
        // Recorded: where each refusal came from, and how many segment files retention unlinked.
        const platform = recordingPlatform(await defaultPlatform(), {
          ignore: ["readAt", "size", "stat", "lstat", "readdir", "datasync", "syncDir", "close"],
        });
        const opts = {
          platform,
          syncPolicy: SyncPolicy.always(),
          segmentBytes: SEGMENT,
          retention: { maxBytes: MAX_BYTES },
        };
        const dir = join(mnt, "store");
        store = await Store.open(dir, opts);
        const log = await store.log("r");
        filler = fillDisk(join(mnt, "filler"));
        filler.shrink(ROOM_UNDER_CAP);

        const resolved = new Map<number, Uint8Array>();
        const rejected: Uint8Array[] = [];
        const errors: unknown[] = [];
        const where = new Map<string, number>();
        let unlinked = 0;
        let attempts = 0;
        const payload = (k: number) => {
          const p = new Uint8Array(RECORD);
          new DataView(p.buffer).setUint32(0, k, true);
          p.fill((k % 251) + 1, 4);
          return p;
        };
        /** Counts the unlinks recorded since the last call, and names the last failed call. */
        /** An unlink had started and not returned at the last drain: a retention pass was freeing. */
        let freeing = false;
        const drain = (): string => {
          unlinked += platform.count("unlink");
          freeing = platform.calls.some((c) => c.op === "unlink" && c.outcome === "pending");
          const c = [...platform.calls].reverse().find((c) => c.outcome === "error");
          platform.clear();
          if (!c) return "no failed call";
          const file = c.path.slice(c.path.lastIndexOf("/") + 1);
          return `${c.op} ${file.endsWith(".seg") ? "*.seg" : file}`;
        };
        /** `n` appends at once; how many resolved. */
        const burst = async (n: number): Promise<number> => {
          assert.ok(attempts + n <= MAX_ATTEMPTS, `the disk did not fill in ${MAX_ATTEMPTS}`);
          const data = Array.from({ length: n }, () => payload(attempts++));
          const settled = await within(
            Promise.allSettled(data.map((d) => log.append(d))),
            `appends #${attempts - n}..${attempts - 1}`,
            CALL_MS,
          );
          let ok = 0;
          for (const [i, s] of settled.entries()) {
            if (s.status === "fulfilled") {
              resolved.set(s.value, data[i]);
              ok++;
            } else {
              rejected.push(data[i]);
              errors.push(s.reason);
            }
          }
          const w = drain();
          if (ok < n) where.set(w, (where.get(w) ?? 0) + n - ok);
          return ok;
        };
        /** Appends one at a time until the disk refuses one, then once more. */
        const fillUp = async () => {
          while (await burst(1)) { /* until full */ }
          assert.equal(await burst(1), 0, "the append after a refusal on a full disk");
        };

        // 1. Under the cap: retention has nothing to free, the disk stays full.
        await fillUp();
        const refusedUnder = errors.length;
        const under = await within(log.enforceRetention(), "enforceRetention()", CALL_MS);
        assert.equal(under.removedSegments, 0, `${log.byteSize} B is within ${MAX_BYTES}`);
        assert.equal(await burst(1), 0, "still refused: retention freed nothing within the cap");

        // 2. Room above the cap: the log reaches the full disk over its cap, and retention frees it.
        filler.shrink(ROOM_OVER_CAP - ROOM_UNDER_CAP);
        const refusedBefore = errors.length;
        /** Segments unlinked while each way of relief ran. */
        const freed = { enforce: 0, roll: 0, raced: 0 };
        /** Fills relieved each way. */
        const fills = { enforce: 0, roll: 0, raced: 0 };
        while (fills.enforce < FILLS || fills.roll < FILLS) {
          if (await burst(BURST) === BURST) continue;
          const bytes = log.byteSize;
          const before = unlinked;
          const first = log.firstSeq;
          let how: keyof typeof fills;
          if (bytes <= MAX_BYTES || freeing) {
            // The disk refused the next segment's file before the pass the rollover's seal started
            // had unlinked the oldest segment: that pass makes the room.
            how = "raced";
            await until(() => log.byteSize <= MAX_BYTES, `the pass at ${bytes} B`, CALL_MS);
          } else if (fills.enforce <= fills.roll) {
            how = "enforce";
            const r = await within(log.enforceRetention(), "enforceRetention()", CALL_MS);
            assert.ok(r.removedSegments >= 1, `full at ${bytes} B: ${JSON.stringify(r)}`);
          } else {
            // The seal fits in the active segment's last page; the next segment's file may not (the
            // roll then rejects with NoSpaceError), but the seal is on disk, and it started a pass.
            how = "roll";
            const rolled = await within(log.roll(), "roll()", CALL_MS).then(() => null, (e) => e);
            assert.ok(rolled === null || rolled instanceof NoSpaceError, String(rolled));
            await until(() => log.firstSeq > first, `full at ${bytes} B: roll()`, CALL_MS);
          }
          drain();
          fills[how]++;
          freed[how] += unlinked - before;
          assert.ok(log.byteSize <= MAX_BYTES, `${how}: ${log.byteSize} B after retention`);
          assert.equal(await burst(1), 1, `${how}: the append after retention made room`);
        }
        const refusedOver = errors.length - refusedBefore;

        // 3. The filler shrinks: the cap alone keeps the log within the disk.
        filler.shrink(256 * KIB);
        const refusedAfter = errors.length;
        for (let i = 0; i < (4 * SEGMENT) / RECORD; i += BURST) await burst(BURST);
        assert.equal(errors.length, refusedAfter, `refused with room: ${String(errors.at(-1))}`);

        for (const [i, err] of errors.entries()) {
          assert.ok(
            err instanceof KhipuError,
            `rejection ${i} is not a KhipuError: ${String(err)}`,
          );
          assert.equal(err.code, "NO_SPACE", `rejection ${i}: ${err.code}: ${err.message}`);
          assert.ok(err instanceof NoSpaceError);
        }
        const firstSeq = log.firstSeq;
        const segments = log.segmentCount;
        await within(store.close(), "store.close()", CALL_MS);
        store = null;
        drain();
        console.log(
          `retention on a full disk (${currentRuntime()}): ${attempts} appends, ${resolved.size} ` +
            `resolved, ${errors.length} refused (all NoSpaceError: ${refusedUnder} within the ` +
            `cap, ${refusedOver} over it); disk fills over the cap relieved by ` +
            `enforceRetention() ${fills.enforce} (${freed.enforce} segments freed), by roll() ` +
            `${fills.roll} (${freed.roll}), by the rollover's own pass ${fills.raced}; ` +
            `${unlinked} segment files unlinked in all; ${segments} segments left from seq ` +
            `${firstSeq}; failed calls: ` +
            [...where].map(([w, n]) => `${n} x ${w}`).join("; "),
        );

        // Reopen: the resolved appends from the first seq on, contiguous, byte for byte.
        store = await Store.open(dir, opts);
        const again = await store.log("r");
        assert.equal(again.firstSeq, firstSeq, "first seq after reopen");
        await assertOnlyResolved(again, resolved, rejected, firstSeq);
        await within(store.close(), "store.close() after reopen", CALL_MS);
        store = null;
      } finally {
        if (store) {
          await within(store.close(), "store.close() in cleanup", CALL_MS).catch(() => {});
        }
        filler?.close();
        unmount(mnt);
        try {
          rmSync(mnt, { recursive: true, force: true });
        } catch {
          // still mounted (busy even for a lazy unmount): leave the directory
        }
      }
    },
  );
});
