// Fault injection: EIO and ENOSPC on write (also after part of the bytes went out), EIO
// on fdatasync, failure of the directory fsync, of rename and of unlink. Each must reach the caller
// as a clear typed error naming the file, lose no record that had resolved, leave no partial frame
// in the file, and let the store reopen cleanly, both after a process crash (the page cache
// survives: crash mode `all`) and after a power cut (only synced data survives: mode `none`).
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { KhipuError, Store, SyncPolicy } from "../mod.ts";
import { SimPlatform } from "../src/testing/sim.ts";
import { type FaultRule, FaultyPlatform } from "../src/testing/faulty.ts";

const DIR = "/s";
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
  extra: { repair?: boolean; segmentBytes?: number } = {},
): Promise<Setup> {
  const sim = new SimPlatform();
  const faulty = new FaultyPlatform(sim);
  const store = await Store.open(DIR, {
    syncPolicy: policy,
    platform: faulty,
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
        arm(s, { op: ["write", "writev"], path: ".seg", code, partial });
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

  it("ENOSPC writing the seal at rollover fails that append, typed; the next one rolls over", async () => {
    const s = await setup(SyncPolicy.always());
    await appendOk(s, 5); // 5 x 700 B: the next append rolls over
    s.synced = 5;
    arm(s, { op: ["write", "writev"], code: "ENOSPC", partial: 9 });
    await rejectsTyped(s.log.append(payload(5)), ["NO_SPACE"]);
    assert.equal(s.log.nextSeq, 5, "the failed append's seq is given again");
    await appendOk(s, 1);
    assert.equal(s.log.segmentCount, 2, "the retried rollover sealed the old segment");
    s.synced = 6;
    await s.store.close();
    await verifyReopen(s, "all");
    await verifyReopen(s, "none");
    done(s);
  });

  it("ENOSPC on a write carrying many buffered frames (everyN) fails them all, keeps the rest", async () => {
    const s = await setup(SyncPolicy.everyN(4));
    await appendOk(s, 2, 100);
    await s.log.sync();
    s.synced = 2;
    arm(s, { op: ["write", "writev"], code: "ENOSPC", partial: 150 });
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
    const s = await setup(SyncPolicy.always(), { segmentBytes: 1 << 20 });
    await appendOk(s, 4);
    await s.store.close();
    // Damage a byte of record 1 in the (scanned) newest segment: corruption, valid frames follow.
    const seg = s.sim.listFiles().filter((p) => p.endsWith(".seg"))[0];
    const bytes = s.sim.fileBytes(seg)!;
    bytes[1000] ^= 0xff;
    s.sim.setFileBytes(seg, bytes);
    const before = new Map(s.sim.listFiles().map((p) => [p, s.sim.fileBytes(p)!]));
    const faulty = new FaultyPlatform(s.sim, [{ op: "rename", times: Infinity }]);
    const opts = { platform: faulty, repair: true, segmentBytes: 1 << 20 };
    const store = await Store.open(DIR, opts);
    await rejectsTyped(store.log("f"), ["IO"]);
    await store.close();
    for (const [p, b] of before) {
      if (p.endsWith(".seg")) assert.deepEqual(s.sim.fileBytes(p), b, `${p} changed`);
    }
    faulty.clear();
    const again = await Store.open(DIR, opts);
    const log = await again.log("f");
    assert.ok(log.openReport.repaired.length > 0);
    assert.ok(s.sim.listFiles().some((p) => p.includes(".broken")));
    await again.close();
    injected += faulty.injected.length;
    done(s);
  });
});
