// Minimal reproductions of bugs the crash-point exploration found, kept as tests.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store, SyncPolicy } from "../mod.ts";
import { CRASH_MODES, seededRandom, SimPlatform } from "../src/testing/sim.ts";
import { HEADER_BYTES } from "../src/format/header.ts";
import { parseSegmentFileName } from "../src/segment.ts";

const DIR = "/store";

async function readSeqs(store: Store, name: string): Promise<number[]> {
  const log = await store.log(name);
  const seqs: number[] = [];
  for await (const r of log.read({ from: log.firstSeq })) seqs.push(r.seq);
  return seqs;
}

describe("crash regressions", () => {
  // Found by: npm run crash -- --workload everyN-retention --seed 1 --call 45 --mode torn
  // A power cut while the header of a new segment was being written (after its create, before
  // its fdatasync) can leave the header torn with garbage, not only short or zero-filled. The
  // header was never synced and the segment holds no record, so open must recreate it, not fail
  // with CorruptionError.
  it("a newest segment holding only a garbage (torn, never synced) header is recreated", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096, platform: sim };
    let store = await Store.open(DIR, opts);
    const log = await store.log("a");
    while (log.segmentCount < 2) await log.append(new Uint8Array(700).fill(7));
    await store.close();
    const segs = sim.listFiles().filter((p) => p.endsWith(".seg"));
    const newest = segs[segs.length - 1];
    const firstOfNewest = parseSegmentFileName(newest.slice(newest.lastIndexOf("/") + 1))!;
    // The crash state: the new segment's name reached the disk (any journal commit can carry a
    // directory entry), its header write was torn into garbage, and no record follows it.
    const rnd = seededRandom(1);
    const junk = new Uint8Array(HEADER_BYTES).map(() => Math.floor(rnd() * 256));
    sim.setFileBytes(newest, junk);
    store = await Store.open(DIR, { ...opts, platform: sim.crash("none") });
    const seqs = await readSeqs(store, "a");
    assert.deepEqual(seqs, Array.from({ length: firstOfNewest }, (_, i) => i));
    const again = await store.log("a");
    assert.equal(again.openReport.recreatedSegment, newest);
    assert.equal(await again.append("next"), firstOfNewest);
    await store.close();
  });

  // Found by: npm run crash -- --workload always-big-records --seed 26 --call 58 --mode subset \
  //   --crash-seed 166182801
  // Page-cache write-back is per 4 KiB page and in no particular order: after a power cut, the
  // second page of an un-synced multi-page write can be on disk while the first reads back as
  // zeros. The damaged record's tail (non-zero) then sits between the zero hole and the next
  // valid frame, so "only zeros up to the next valid frame" does not hold, and open fails with
  // CorruptionError although nothing after the hole was ever synced (property 1 of the crash harness).
  it("a lost first page of an un-synced multi-page write is a torn tail, not corruption", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.osManaged(), platform: sim };
    const store = await Store.open(DIR, opts);
    const log = await store.log("a");
    const rnd = seededRandom(2);
    await log.append(new Uint8Array(6000).map(() => 1 + Math.floor(rnd() * 255)));
    await log.append(new Uint8Array(100).fill(9)); // resolved, never synced (osManaged)
    const crashed = sim.crash("all"); // what the page cache held
    const seg = crashed.listFiles().find((p) => p.endsWith(".seg"))!;
    const bytes = crashed.fileBytes(seg)!;
    bytes.fill(0, HEADER_BYTES, 4096); // page 0 after the (synced) header never reached the disk
    crashed.setFileBytes(seg, bytes);
    const reopened = await Store.open(DIR, { ...opts, platform: crashed });
    const again = await reopened.log("a");
    assert.equal(again.nextSeq, 0);
    assert.equal(again.openReport.truncatedAt?.offset, HEADER_BYTES);
    await reopened.close();
  });

  // The same lost page, when synced records fill that page up to its last sector: the hole
  // [synced end, page end) is shorter than a sector, and the damaged record's tail plus the next
  // record sit in the following (written-back) page. No aligned sector is all zeros.
  it("a lost page tail shorter than a sector below later frames is a torn tail", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.osManaged(), platform: sim };
    const store = await Store.open(DIR, opts);
    const log = await store.log("a");
    while (log.byteSize < 7750) await log.append(new Uint8Array(100).fill(3));
    assert.ok(log.byteSize < 8192 - 16, `synced end ${log.byteSize}`);
    await log.sync();
    const syncedEnd = log.byteSize;
    const kept = log.nextSeq;
    await log.append(new Uint8Array(600).fill(4)); // straddles the page boundary at 8192
    await log.append(new Uint8Array(100).fill(5)); // wholly in the next page
    const crashed = sim.crash("all");
    const seg = crashed.listFiles().find((p) => p.endsWith(".seg"))!;
    const bytes = crashed.fileBytes(seg)!;
    bytes.fill(0, syncedEnd, 8192); // the dirty tail of page 1 was lost, page 2 was written
    crashed.setFileBytes(seg, bytes);
    const reopened = await Store.open(DIR, { ...opts, platform: crashed });
    const again = await reopened.log("a");
    assert.equal(again.nextSeq, kept);
    assert.equal(again.openReport.truncatedAt?.offset, syncedEnd);
    await reopened.close();
  });

  // Found by: npm run crash -- --workload always-retention-race
  // truncateBefore can unlink the last sealed segment while the next segment's file is still being
  // created (its directory entry not yet durable). A power cut that keeps the unlink but not the
  // create leaves no segment at all, and the log restarts at sequence number 0.
  it("retention racing a rollover never lets sequence numbers go backwards", async () => {
    const sim = new SimPlatform();
    const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096, platform: sim };
    const store = await Store.open(DIR, opts);
    const log = await store.log("a");
    for (let i = 0; i < 3; i++) await log.append(new Uint8Array(1300).fill(i)); // fills segment 0
    let retention: Promise<void> | null = null;
    const snaps: ReturnType<SimPlatform["freeze"]>[] = [];
    sim.onCall = (c) => {
      // The rollover creates segment 3: ask to drop records 0-2 right then.
      if (c.op === "open" && c.mutates && c.path.endsWith("00000000000000000003.seg")) {
        retention = log.truncateBefore(3);
      }
      if (retention && c.mutates) snaps.push(sim.freeze());
    };
    await log.append(new Uint8Array(1300).fill(3));
    await retention;
    sim.onCall = undefined;
    await store.close();
    for (const [i, snap] of snaps.entries()) {
      for (const mode of CRASH_MODES) {
        for (let seed = 0; seed < (mode === "subset" ? 20 : 1); seed++) {
          const s = await Store.open(DIR, { ...opts, platform: snap.crash(mode, seed) });
          const l = await s.log("a");
          assert.ok(
            l.nextSeq >= 3,
            `call ${i}, ${mode} seed ${seed}: the log restarts at ${l.nextSeq}`,
          );
          await s.close();
        }
      }
    }
  });
});
