// Crash-point exploration of repair mode: a store whose newest segment is damaged in the middle is
// opened with `repair: true`, which sets the segment aside and keeps the records before the damage.
// A power cut at any call of that repair (in any crash mode) must not lose those records: after
// the next open (again with repair) they are all there, byte for byte, followed only by records
// appended after the repair.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store, SyncPolicy } from "../mod.ts";
import { CRASH_MODES, SimPlatform, type SimSnapshot } from "../src/testing/sim.ts";

const DIR = "/s";
const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096 };
const rec = (i: number) => new Uint8Array(700).fill(i + 1);

describe("crash during repair", () => {
  it("records before the damage survive a crash at every call of the repair", async () => {
    const sim = new SimPlatform();
    let store = await Store.open(DIR, { ...opts, platform: sim });
    let log = await store.log("a");
    for (let i = 0; i < 9; i++) await log.append(rec(i)); // segments of 5 records: 0-4, 5-8
    assert.equal(log.segmentCount, 2);
    await store.close();
    // Damage record 7's payload in the newest segment: valid record 8 follows, so it is corruption.
    const newest = sim.listFiles().filter((p) => p.endsWith(".seg")).pop()!;
    const bytes = sim.fileBytes(newest)!;
    const at = bytes.lastIndexOf(8) - 300; // inside record 7 (filled with 8s)
    bytes[at] ^= 0xff;
    sim.setFileBytes(newest, bytes);
    const plain = await Store.open(DIR, { ...opts, platform: sim });
    await assert.rejects(plain.log("a"), { code: "CORRUPTION" });
    await plain.close();

    // Repair, freezing the disk after every call that changes it; then append two more records.
    const points: { call: number; snap: SimSnapshot; appended: number }[] = [];
    let appended = 0;
    sim.onCall = (c) => {
      if (c.mutates) points.push({ call: c.n, snap: sim.freeze(), appended });
    };
    store = await Store.open(DIR, { ...opts, platform: sim, repair: true });
    log = await store.log("a");
    assert.equal(log.nextSeq, 7);
    assert.ok(log.openReport.repaired.length > 0);
    for (let i = 0; i < 2; i++) {
      await log.append(rec(100 + i));
      appended++;
    }
    await store.close();
    sim.onCall = undefined;

    let states = 0;
    const failures: string[] = [];
    for (const p of points) {
      for (const mode of CRASH_MODES) {
        const fs = p.snap.crash(mode, p.call);
        states++;
        const where = `after call #${p.call}, ${mode} [${fs.lastCrash?.detail}]`;
        try {
          const s = await Store.open(DIR, { ...opts, platform: fs, repair: true });
          const l = await s.log("a");
          const got: Uint8Array[] = [];
          for await (const r of l.read({ from: 0 })) got.push(r.data);
          await s.close();
          const want = [0, 1, 2, 3, 4, 5, 6].map(rec);
          for (let i = 0; i < 7; i++) {
            if (!got[i] || got[i].join() !== want[i].join()) {
              failures.push(`${where}: record ${i} lost or changed (log has ${got.length})`);
              break;
            }
          }
          for (let i = 7; i < got.length; i++) {
            const k = i - 7;
            if (k >= 2 || got[i].join() !== rec(100 + k).join()) {
              failures.push(`${where}: record ${i} is not one appended after the repair`);
              break;
            }
          }
          if (got.length < 7 + p.appended) failures.push(`${where}: resolved append lost`);
        } catch (err) {
          failures.push(`${where}: ${(err as Error).message}`);
        }
      }
    }
    console.log(
      `crash during repair: crash points=${points.length}, states=${states}, ` +
        `violations=${failures.length}`,
    );
    assert.deepEqual(failures.slice(0, 5), []);
  });
});
