// A real full disk: a 2 MiB tmpfs, filled by appends of 1 KiB records under SyncPolicy.always()
// with 64 KiB segments. Every append the full disk refuses must reject with NoSpaceError (never
// PoisonedError, never an untyped error), wherever the disk fills: inside a segment, while a
// rollover writes a seal, or while it creates the next segment file. Space is then freed a page
// at a time (small filler files), so the disk fills again at other offsets, across rollovers;
// last, a 256 KiB filler is deleted and 20 more appends must succeed. After reopening, every
// resolved append is there, byte for byte, with contiguous sequence numbers, and no rejected one.
//
// Needs root (mount). Skipped, with a message, when not root or when the mount fails. Each run
// mounts its own fresh directory and unmounts it at the end (lazily if it is still busy).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { KhipuError, NoSpaceError, Store, SyncPolicy } from "../mod.ts";
import { recordingPlatform } from "../testing.ts";
import { assertOnlyResolved, run, unmount, within } from "./helpers.ts";
import { defaultPlatform } from "../src/platform/detect.ts";
import { currentRuntime } from "./fixtures/runtimes.ts";

/** Bound on one append (a hang fails the test instead of the runner). */
const APPEND_MS = 10_000;
const RECORD = 1024;
const SMALL_FILLERS = 24; // 4 KiB each: 96 KiB, more than one 64 KiB segment
const MAX_ATTEMPTS = 6000; // 2 MiB of 1 KiB records is ~2,000; a bound, not a target

describe("disk full (a real 2 MiB tmpfs)", () => {
  it(
    "every refused append is a NoSpaceError, the log recovers once space is freed, nothing is lost",
    {
      timeout: 300_000,
    },
    async (t) => {
      if (process.platform !== "linux" || process.getuid?.() !== 0) {
        const why = "needs root on Linux to mount a tmpfs";
        console.log(`tests/disk_full.test.ts: skipped: ${why}`);
        t.skip(why);
        return;
      }
      const mnt = mkdtempSync(join(tmpdir(), `khipu-diskfull-${currentRuntime()}-`));
      try {
        run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
      } catch (err) {
        rmSync(mnt, { recursive: true, force: true });
        const why = `mount -t tmpfs failed: ${(err as Error).message.split("\n")[0]}`;
        console.log(`tests/disk_full.test.ts: skipped: ${why}`);
        t.skip(why);
        return;
      }
      let store: Store | null = null;
      try {
        const big = join(mnt, "filler-256k");
        writeFileSync(big, new Uint8Array(256 * 1024).fill(0xab));
        const small: string[] = [];
        for (let i = 0; i < SMALL_FILLERS; i++) {
          const f = join(mnt, `filler-4k-${i}`);
          writeFileSync(f, new Uint8Array(4096).fill(0xcd));
          small.push(f);
        }

        // Recorded, to tell where each refusal came from (a record write, a seal, a new segment).
        const platform = recordingPlatform(await defaultPlatform(), {
          ignore: ["readAt", "size", "stat", "readdir"],
        });
        const opts = { platform, syncPolicy: SyncPolicy.always(), segmentBytes: 64 * 1024 };
        const dir = join(mnt, "store");
        store = await Store.open(dir, opts);
        const log = await store.log("d");

        const resolved = new Map<number, Uint8Array>();
        const rejected: Uint8Array[] = [];
        const errors: unknown[] = [];
        /** Segment count when each rejection happened, and the failed call behind it. */
        const fullAt: number[] = [];
        const where = new Map<string, number>();
        const failedCall = () => {
          const c = [...platform.calls].reverse().find((c) => c.outcome === "error");
          platform.clear();
          if (!c) return "no failed call";
          const file = c.path.slice(c.path.lastIndexOf("/") + 1);
          return `${c.op}${c.how ? `(${c.how})` : ""} ${file}${
            c.bytes !== undefined ? ` ${c.bytes} B` : ""
          }`;
        };
        let attempts = 0;
        const payload = (k: number) => {
          const p = new Uint8Array(RECORD);
          new DataView(p.buffer).setUint32(0, k, true);
          p.fill((k % 251) + 1, 4);
          return p;
        };
        /** One append; true if it resolved. */
        const attempt = async (): Promise<boolean> => {
          assert.ok(attempts < MAX_ATTEMPTS, `the disk never filled in ${MAX_ATTEMPTS} appends`);
          const data = payload(attempts++);
          platform.clear();
          try {
            const seq = await within(log.append(data), `append #${attempts}`, APPEND_MS);
            resolved.set(seq, data);
            return true;
          } catch (err) {
            rejected.push(data);
            errors.push(err);
            fullAt.push(log.segmentCount);
            const w = failedCall();
            where.set(w, (where.get(w) ?? 0) + 1);
            return false;
          }
        };
        /** Appends until the disk refuses one, then twice more (those must be refused cleanly too). */
        const fillUp = async () => {
          while (await attempt()) { /* until full */ }
          await attempt();
          await attempt();
        };

        await fillUp();
        for (const f of small) {
          unlinkSync(f); // one page freed: the disk fills again a few records later
          await fillUp();
        }
        for (const [i, err] of errors.entries()) {
          assert.ok(
            err instanceof KhipuError,
            `rejection ${i} is not a KhipuError: ${String(err)}`,
          );
          assert.equal(
            err.code,
            "NO_SPACE",
            `rejection ${i} (of ${errors.length}, ${
              fullAt[i]
            } segments): ${err.code}: ${err.message}`,
          );
          assert.ok(err instanceof NoSpaceError);
        }
        assert.ok(errors.length >= SMALL_FILLERS + 1, `${errors.length} rejections`);
        // 96 KiB freed a page at a time is more than a 64 KiB segment: the disk filled in more than
        // one segment, so at least one rollover happened on a full disk.
        assert.ok(
          new Set(fullAt).size >= 2,
          `refusals only at segment counts ${[...new Set(fullAt)]}`,
        );

        unlinkSync(big); // 256 KiB free: 20 more appends fit
        for (let i = 0; i < 20; i++) {
          assert.ok(await attempt(), `append ${i} after freeing 256 KiB: ${String(errors.at(-1))}`);
        }
        const segments = log.segmentCount;
        await within(store.close(), "store.close()", APPEND_MS);
        store = null;

        console.log(
          `disk full (${currentRuntime()}): ${attempts} appends, ${resolved.size} resolved, ` +
            `${errors.length} refused (all NoSpaceError), ${segments} segments; ` +
            `segment counts at the refusals: ${[...new Set(fullAt)].join(",")}; failed calls: ` +
            [...where].map(([w, n]) => `${n} x ${w}`).join("; "),
        );

        // Reopen: exactly the resolved appends, contiguous, byte for byte.
        store = await Store.open(dir, opts);
        await assertOnlyResolved(await store.log("d"), resolved, rejected);
        await within(store.close(), "store.close() after reopen", APPEND_MS);
        store = null;
      } finally {
        if (store) {
          await within(store.close(), "store.close() in cleanup", APPEND_MS).catch(() => {});
        }
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
