// Fault injection: EIO and ENOSPC on write (also after part of the bytes went out), on the seal
// and on the next segment's header at rollover, on the zero-fill ahead of the data and on a stored
// index entry, EIO on fdatasync, failure of the directory fsync, of rename and of unlink. Each must
// reach the caller as a clear typed error naming the file, lose no record that had resolved, leave
// no partial frame in the file, and let the store reopen cleanly, both after a process crash (the
// page cache survives: crash mode `all`) and after a power cut (only synced data survives: mode
// `none`). The writer writes data, slots, index entries and zeros with writeAt/writevAt, so every
// rule for "a write" names all four write calls.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KhipuError, Store, SyncPolicy } from "../mod.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { type FaultOp, type FaultRule, FaultyPlatform } from "../src/testing/faulty.ts";
import { fromOsError } from "../src/errors.ts";
import type { Platform } from "../src/platform/types.ts";
import { segmentFileName } from "../src/segment.ts";
import { wrapFile } from "./helpers.ts";

const DIR = "/s";
const WRITES: FaultOp[] = ["write", "writev", "writeAt", "writevAt"];
let injected = 0;
let scenarios = 0;
let checkedRecords = 0;

interface Setup {
  sim: SimPlatform;
  faulty: FaultyPlatform;
  store: Store;
  log: Awaited<ReturnType<Store["log"]>>;
  /** Payloads of appends that resolved, by sequence number. */
  resolved: Map<number, Uint8Array>;
  /** Records below this are covered by a resolved fdatasync (always(), sync(), close()). */
  synced: number;
}

const payload = (seq: number, n = 700) => new Uint8Array(n).fill((seq * 37 + 1) & 0xff);

async function setup(
  policy: SyncPolicy,
  extra: { repair?: boolean; segmentBytes?: number; wrap?: (p: Platform) => Platform } = {},
): Promise<Setup> {
  const sim = new SimPlatform();
  const faulty = new FaultyPlatform(sim);
  const store = await Store.open(DIR, {
    syncPolicy: policy,
    platform: extra.wrap ? extra.wrap(faulty) : faulty,
    segmentBytes: extra.segmentBytes ?? 4096,
    bufferBytes: 1024,
    repair: extra.repair,
  });
  const log = await store.log("f");
  return { sim, faulty, store, log, resolved: new Map(), synced: 0 };
}

async function appendOk(s: Setup, n = 1, size = 700): Promise<void> {
  for (let i = 0; i < n; i++) {
    const seq = s.log.nextSeq;
    const data = payload(seq, size);
    assert.equal(await s.log.append(data), seq);
    s.resolved.set(seq, data);
  }
}

function arm(s: Setup, rule: FaultRule): void {
  s.faulty.inject(rule);
}

/**
 * A platform whose file writes at an offset fail once with ENOSPC, when armed, on the first call
 * `hit` picks (after `partial` of its bytes reached the file): FaultyPlatform picks calls by path
 * and count, this picks them by what they write where.
 */
class TargetedFault {
  armed = false;
  fired: { path: string; position: number; bytes: number }[] = [];
  readonly hit: (data: Uint8Array, position: number, path: string) => boolean;
  readonly partial: number;
  constructor(hit: TargetedFault["hit"], partial = 0) {
    this.hit = hit;
    this.partial = partial;
  }
  wrap(inner: Platform): Platform {
    return new Proxy(inner, {
      get: (target, key) => {
        if (key === "open") {
          return async (...args: Parameters<Platform["open"]>) => {
            const f = await target.open(...args);
            return wrapFile(f, {
              writeAt: (data, position) => {
                if (this.armed && this.hit(data, position, f.path)) {
                  this.armed = false;
                  this.fired.push({ path: f.path, position, bytes: data.length });
                  if (this.partial > 0) f.writeAt(data.subarray(0, this.partial), position);
                  const cause = Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
                  throw fromOsError(cause, "write", f.path);
                }
                f.writeAt(data, position);
              },
            });
          };
        }
        const v = Reflect.get(target, key, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }
}

/** The error is a typed KhipuError with one of `codes`, naming a path under the store. */
function assertTyped(err: unknown, codes: string[]): KhipuError {
  assert.ok(err instanceof KhipuError, `not a KhipuError: ${String(err)}`);
  assert.ok(codes.includes(err.code), `code ${err.code}, expected one of ${codes.join("/")}`);
  const cause = (err as { cause?: unknown }).cause;
  const path = err.path ?? (cause instanceof KhipuError ? cause.path : undefined);
  assert.ok(path?.startsWith(DIR), `error names no file: ${err.message}`);
  return err;
}

async function rejectsTyped(p: Promise<unknown>, codes: string[]): Promise<KhipuError> {
  try {
    await p;
  } catch (err) {
    return assertTyped(err, codes);
  }
  assert.fail("expected a rejection");
}

/**
 * Crashes the simulator in `mode`, reopens, and checks: open succeeds, no partial frame had to be
 * cut (`all` mode: the failure left only whole frames), records are contiguous, every resolved
 * record that must survive is there with identical bytes.
 */
async function verifyReopen(s: Setup, mode: "all" | "none", firstAtMost = 0): Promise<void> {
  const fs = s.sim.crash(mode, 1);
  const store = await Store.open(DIR, { syncPolicy: SyncPolicy.always(), platform: fs });
  try {
    const log = await store.log("f");
    if (mode === "all") {
      assert.equal(log.openReport.truncatedBytes, 0, "a partial frame was left in the file");
    }
    assert.ok(log.firstSeq <= firstAtMost, `first seq ${log.firstSeq} > ${firstAtMost}`);
    let expect = log.firstSeq;
    for await (const r of log.read({ from: log.firstSeq })) {
      assert.equal(r.seq, expect++);
      const want = s.resolved.get(r.seq);
      if (want) assert.deepEqual(r.data, want, `record ${r.seq} changed`);
      checkedRecords++;
    }
    const mustHave = mode === "all" ? Math.max(...s.resolved.keys(), -1) + 1 : s.synced;
    assert.ok(expect >= mustHave, `${mode}: log ends at ${expect}, must reach ${mustHave}`);
    // and it takes new appends
    assert.equal(await log.append("after"), expect);
  } finally {
    await store.close();
  }
}

function done(s: Setup): void {
  injected += s.faulty.injected.length;
  scenarios++;
}

describe("fault injection", () => {
  after(() => {
    console.log(
      `fault injection: scenarios=${scenarios}, faults injected=${injected}, ` +
        `records checked after reopen=${checkedRecords}, resolved records lost=0`,
    );
  });

  for (const code of ["EIO", "ENOSPC"]) {
    for (const partial of [0, 7, 1500]) {
      it(`${code} on write (${partial} bytes written first): typed error, no partial frame`, async () => {
        const s = await setup(SyncPolicy.always(), { segmentBytes: 1 << 20 });
        await appendOk(s, 3);
        s.synced = 3;
        arm(s, { op: WRITES, path: ".seg", code, partial });
        const err = await rejectsTyped(s.log.append(payload(3, 2000)), [
          code === "EIO" ? "IO" : "NO_SPACE",
        ]);
        assert.match(err.message, /\.seg/);
        // The failure left whole frames only: a process crash now needs no repair.
        await verifyReopen(s, "all");
        await verifyReopen(s, "none");
        // The fault has passed: the log goes on, without a hole in the sequence numbers.
        await appendOk(s, 2);
        s.synced = s.log.nextSeq;
        await s.store.close();
        await verifyReopen(s, "none");
        done(s);
      });
    }
  }

  for (
    const [what, rule] of [
      ["the seal", { op: WRITES, path: segmentFileName(0), partial: 9 }],
      ["the next segment's header", { op: WRITES, path: segmentFileName(5), partial: 9 }],
    ] as const
  ) {
    it(`ENOSPC writing ${what} at rollover fails that append, typed; the next one rolls over`, async () => {
      const s = await setup(SyncPolicy.always());
      await appendOk(s, 5); // 5 x 708 B after the 160 bytes before the data: the next one rolls over
      s.synced = 5;
      assert.equal(s.log.segmentCount, 1);
      arm(s, { ...rule, code: "ENOSPC" });
      await rejectsTyped(s.log.append(payload(5)), ["NO_SPACE"]);
      assert.equal(s.faulty.injected.length, 1);
      assert.match(s.faulty.injected[0].path, new RegExp(rule.path));
      assert.equal(s.log.nextSeq, 5, "the failed append's seq is given again");
      await appendOk(s, 1);
      assert.equal(s.log.segmentCount, 2, "the retried rollover sealed the old segment");
      s.synced = 6;
      await s.store.close();
      await verifyReopen(s, "all");
      await verifyReopen(s, "none");
      done(s);
    });
  }

  it("ENOSPC on a write carrying many buffered frames (everyN) fails them all, keeps the rest", async () => {
    const s = await setup(SyncPolicy.everyN(4));
    await appendOk(s, 2, 100);
    await s.log.sync();
    s.synced = 2;
    arm(s, { op: WRITES, code: "ENOSPC", partial: 150 });
    const ps = [0, 1, 2].map((i) => s.log.append(payload(10 + i, 100)));
    const results = await Promise.allSettled(ps);
    assert.ok(results.every((r) => r.status === "rejected"), "every buffered append must fail");
    for (const r of results) assertTyped((r as PromiseRejectedResult).reason, ["NO_SPACE"]);
    await verifyReopen(s, "all");
    await appendOk(s, 1, 100);
    assert.equal(s.log.nextSeq, 3);
    await s.store.close();
    s.synced = 3;
    await verifyReopen(s, "none");
    done(s);
  });

  // 4 MiB segments: 64 stored index entries, frames from 160 + 32 * 64.
  const BIG_SEGMENT = 4 << 20;
  const DATA_START = 160 + 32 * 64;

  it("ENOSPC on a stored index-entry write rejects only the records of that flush; the log goes on", async () => {
    const entry = new TargetedFault((d, pos, path) =>
      path.endsWith(".seg") && d.length === 32 && pos >= 160 && pos < DATA_START
    );
    const s = await setup(SyncPolicy.always(), {
      segmentBytes: BIG_SEGMENT,
      wrap: (p) => entry.wrap(p),
    });
    await appendOk(s, 6, 30_000); // one flush each: entries at ~64 KiB steps (two by now)
    s.synced = s.log.nextSeq;
    entry.armed = true;
    let failedAt = -1;
    for (let i = 0; i < 10 && failedAt < 0; i++) {
      const seq = s.log.nextSeq;
      await s.log.append(payload(seq, 30_000)).then(
        () => {
          s.resolved.set(seq, payload(seq, 30_000));
          s.synced = seq + 1;
        },
        (err) => {
          assertTyped(err, ["NO_SPACE"]);
          failedAt = seq;
        },
      );
    }
    assert.equal(
      entry.fired.length,
      1,
      "an index entry was written (and failed) within 10 flushes",
    );
    assert.ok(failedAt >= 0, "the append whose flush wrote it rejected");
    assert.equal(s.log.nextSeq, failedAt, "its seq is given again");
    // Process crash now: the entry's records were cut back with it; nothing to repair.
    await verifyReopen(s, "all");
    await appendOk(s, 6, 30_000); // the log goes on, and stores its next entries
    s.synced = s.log.nextSeq;
    await s.store.close();
    await verifyReopen(s, "all");
    await verifyReopen(s, "none");
    done(s);
  });

  it("ENOSPC on the zero-fill ahead of the data keeps that flush's records (the zeros are only a speed-up); the log goes on", async () => {
    // The zeros written past the data once it passes the allocated end (1 MiB steps); half land.
    const zeros = new TargetedFault(
      (d, pos, path) => path.endsWith(".seg") && pos > DATA_START && d.every((b) => b === 0),
      4096,
    );
    const s = await setup(SyncPolicy.always(), {
      segmentBytes: BIG_SEGMENT,
      wrap: (p) => zeros.wrap(p),
    });
    await appendOk(s, 2, 100_000);
    s.synced = 2;
    zeros.armed = true;
    // Appends up to and past the first 1 MiB boundary: one of their flushes writes zeros.
    for (let i = 0; i < 10; i++) await appendOk(s, 1, 100_000);
    s.synced = s.log.nextSeq;
    assert.equal(zeros.fired.length, 1, "the flush that passed 1 MiB wrote zeros (and failed)");
    assert.ok(zeros.fired[0].position > 1 << 20);
    await verifyReopen(s, "all");
    await verifyReopen(s, "none");
    await appendOk(s, 12, 100_000); // past 2 MiB: the next zero-fill works
    s.synced = s.log.nextSeq;
    await s.store.close();
    const seg = s.sim.listFiles().find((p) => p.endsWith(".seg"))!;
    assert.equal(s.sim.crash("none").fileBytes(seg)!.length, 3 << 20, "preallocated again");
    await verifyReopen(s, "all");
    await verifyReopen(s, "none");
    done(s);
  });

  it("EIO on fdatasync poisons the log: typed errors, reads still work, reopen is clean", async () => {
    const s = await setup(SyncPolicy.always());
    await appendOk(s, 3);
    s.synced = 3;
    arm(s, { op: "datasync", path: ".seg" });
    await rejectsTyped(s.log.append(payload(3)), ["IO", "POISONED"]);
    await rejectsTyped(s.log.append(payload(4)), ["POISONED"]); // no retry, ever
    const seqs: number[] = [];
    for await (const r of s.log.read({ from: 0 })) seqs.push(r.seq);
    assert.deepEqual(seqs.slice(0, 3), [0, 1, 2]);
    await s.store.close().catch(() => {}); // the final fdatasync may report the poison
    await verifyReopen(s, "all");
    await verifyReopen(s, "none");
    assert.equal(s.faulty.injected.length, 1, "the failed fdatasync must not be retried");
    done(s);
  });

  it("EIO on fdatasync under everyN: resolved-but-unsynced records survive a process crash", async () => {
    const s = await setup(SyncPolicy.everyN(8));
    await appendOk(s, 3, 100); // resolved, in the page cache, not synced
    arm(s, { op: "datasync" });
    await rejectsTyped(s.log.sync(), ["IO", "POISONED"]);
    await rejectsTyped(s.log.append(payload(9)), ["POISONED"]);
    await s.store.close().catch(() => {});
    await verifyReopen(s, "all"); // all 3 resolved records: a process crash keeps the cache
    await verifyReopen(s, "none");
    done(s);
  });

  it("a failed directory fsync while creating a segment (rollover): typed error, no loss", async () => {
    const s = await setup(SyncPolicy.always());
    await appendOk(s, 2);
    s.synced = 2;
    arm(s, { op: "syncDir", path: `${DIR}/f`, times: Infinity });
    // Keep appending until the rollover needs the new segment's directory entry synced.
    let err: unknown = null;
    for (let i = 0; i < 10 && !err; i++) {
      const seq = s.log.nextSeq;
      await s.log.append(payload(seq)).then(
        () => {
          s.resolved.set(seq, payload(seq));
          s.synced = seq + 1;
        },
        (e) => (err = e),
      );
    }
    assertTyped(err, ["IO", "POISONED"]);
    await rejectsTyped(s.log.append(payload(99)), ["IO", "POISONED"]);
    s.faulty.clear();
    await s.store.close().catch(() => {});
    await verifyReopen(s, "all");
    await verifyReopen(s, "none");
    done(s);
  });

  it("a failed directory fsync in Store.open and store.log is a typed error; a retry works", async () => {
    const sim = new SimPlatform();
    const faulty = new FaultyPlatform(sim, [{ op: "syncDir", times: 1 }]);
    await rejectsTyped(Store.open(DIR, { platform: faulty }), ["IO"]);
    const store = await Store.open(DIR, { platform: faulty });
    faulty.inject({ op: "syncDir" });
    await rejectsTyped(store.log("f"), ["IO"]);
    const log = await store.log("f"); // a failed open is not cached
    assert.equal(await log.append("x"), 0);
    await store.close();
    injected += faulty.injected.length;
    scenarios++;
  });

  it("unlink failing in truncateBefore: typed error, everything still readable, retry works", async () => {
    const s = await setup(SyncPolicy.always());
    await appendOk(s, 20); // ~4 segments of 5 records
    s.synced = 20;
    assert.ok(s.log.segmentCount >= 3);
    arm(s, { op: "unlink", path: ".seg" });
    await rejectsTyped(s.log.truncateBefore(15), ["IO"]);
    const first = s.log.firstSeq;
    let n = 0;
    for await (const r of s.log.read({ from: first })) {
      assert.deepEqual(r.data, s.resolved.get(r.seq));
      n++;
    }
    assert.equal(first + n, 20);
    await verifyReopen(s, "all", 15);
    await s.log.truncateBefore(15);
    assert.ok(s.log.firstSeq > 0 && s.log.firstSeq <= 15);
    await s.store.close();
    await verifyReopen(s, "none", 15);
    done(s);
  });

  it("a failed directory fsync after an unlink in truncateBefore: still readable from firstSeq", async () => {
    const s = await setup(SyncPolicy.always());
    await appendOk(s, 20);
    s.synced = 20;
    arm(s, { op: "syncDir", path: `${DIR}/f` });
    await rejectsTyped(s.log.truncateBefore(15), ["IO"]);
    let expect = s.log.firstSeq;
    for await (const r of s.log.read({ from: s.log.firstSeq })) {
      assert.equal(r.seq, expect++);
      assert.deepEqual(r.data, s.resolved.get(r.seq));
    }
    assert.equal(expect, 20);
    await verifyReopen(s, "all", 15);
    await verifyReopen(s, "none", 15);
    await s.store.close();
    done(s);
  });

  it("rename failing while repair mode sets a damaged segment aside: typed error, nothing lost", async () => {
    const s = await setup(SyncPolicy.always());
    await appendOk(s, 7); // records 0..4 in a sealed segment, 5 and 6 in the active one
    await s.store.close();
    assert.equal(s.sim.listFiles().filter((p) => p.endsWith(".seg")).length, 2);
    // Damage a byte of the sealed segment's seal (an index entry in it): open checks sealed
    // segments through their seal, so this is damage; repair rewrites the seal, keeping every record.
    const seg = s.sim.listFiles().filter((p) => p.endsWith(".seg")).sort()[0];
    const bytes = s.sim.fileBytes(seg)!;
    bytes[bytes.length - 8] ^= 0xff;
    s.sim.setFileBytes(seg, bytes);
    const before = new Map(s.sim.listFiles().map((p) => [p, s.sim.fileBytes(p)!]));
    const faulty = new FaultyPlatform(s.sim, [{ op: "rename", times: Infinity }]);
    const opts = { platform: faulty, repair: true, segmentBytes: 4096 };
    await assert.rejects(
      Store.open(DIR, { ...opts, repair: false }).then(async (st) => {
        try {
          await st.log("f");
        } finally {
          await st.close();
        }
      }),
      (e: unknown) => e instanceof KhipuError && e.code === "CORRUPTION",
    );
    const store = await Store.open(DIR, opts);
    await rejectsTyped(store.log("f"), ["IO"]);
    await store.close();
    assert.ok(faulty.injected.length > 0 && faulty.injected.every((f) => f.op === "rename"));
    for (const [p, b] of before) {
      if (p.endsWith(".seg")) assert.deepEqual(s.sim.fileBytes(p), b, `${p} changed`);
    }
    injected += faulty.injected.length;
    faulty.clear();
    const again = await Store.open(DIR, opts);
    const log = await again.log("f");
    assert.ok(log.openReport.repaired.length > 0);
    assert.ok(s.sim.listFiles().some((p) => p.includes(".broken")));
    const seqs: number[] = [];
    for await (const r of log.read()) {
      assert.deepEqual(r.data, s.resolved.get(r.seq));
      seqs.push(r.seq);
    }
    assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6], "every record is kept, the later segment too");
    assert.equal(log.nextSeq, 7);
    assert.equal(
      s.sim.listFiles().filter((p) => p.includes(".broken")).length,
      1,
      "the failed attempt's copy is the retry's",
    );
    await again.close();
    done(s);
  });
});
