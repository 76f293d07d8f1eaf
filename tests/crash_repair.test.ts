// Crash-point exploration of repair mode: a store whose newest segment is damaged in the middle is
// opened with `repair: true`, which sets the segment aside and keeps the records before the damage.
// A power cut at any call of that repair (in any crash mode) must not lose those records: after
// the next open (again with repair) they are all there, byte for byte, followed only by records
// appended after the repair.
//
// The second test checks that no sequence number is ever given to two different records: every
// record any read yielded in the log's life (before the damage, after the repair, and after a
// crash during the repair and the next open) is remembered by its seq, and one seq must never come
// back with other bytes. The log may skip the seqs it set aside; it must not reuse them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store, SyncPolicy } from "../mod.ts";
import type { Log } from "../src/log.ts";
import { CRASH_MODES, SimPlatform, type SimSnapshot } from "../src/testing/sim.ts";

const DIR = "/s";
const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096 };
const rec = (i: number) => new Uint8Array(700).fill(i + 1);

/** Every record reads have yielded so far: seq -> its bytes, as text, and where it was seen. */
type Seen = Map<number, { bytes: string; where: string }>;
const describeBytes = (d: Uint8Array) => `${d.length} bytes [${d.slice(0, 2).join(",")}..]`;

/** Reads all of `log` into `seen`; returns each seq that came back with other bytes. */
async function readInto(log: Log, seen: Seen, where: string): Promise<string[]> {
  const reused: string[] = [];
  for await (const r of log.read({ from: log.firstSeq })) {
    const bytes = r.data.join(",");
    const was = seen.get(r.seq);
    if (!was) seen.set(r.seq, { bytes, where });
    else if (was.bytes !== bytes) {
      reused.push(
        `seq ${r.seq} read as ${describeBytes(new Uint8Array(was.bytes.split(",").map(Number)))} ` +
          `${was.where}, then as ${describeBytes(r.data)} ${where}`,
      );
    }
  }
  return reused;
}

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

  it("no seq is given to two different records: not after the repair, nor after a crash in it", async () => {
    const sim = new SimPlatform();
    const seen: Seen = new Map();
    const failures: string[] = [];
    let store = await Store.open(DIR, { ...opts, platform: sim });
    let log = await store.log("a");
    for (let i = 0; i < 9; i++) await log.append(rec(i)); // segments of 5 records: 0-4, 5-8
    failures.push(...await readInto(log, seen, "before the damage"));
    await store.close();
    // The same damage as above: record 7 of the newest segment, with record 8 valid after it.
    const newest = sim.listFiles().filter((p) => p.endsWith(".seg")).pop()!;
    const bytes = sim.fileBytes(newest)!;
    bytes[bytes.lastIndexOf(8) - 300] ^= 0xff;
    sim.setFileBytes(newest, bytes);

    // The repair, then reads and appends; the disk is frozen after every call that changes it,
    // with what reads had yielded by then.
    const points: { call: number; snap: SimSnapshot; seen: Seen }[] = [];
    sim.onCall = (c) => {
      if (c.mutates) points.push({ call: c.n, snap: sim.freeze(), seen: new Map(seen) });
    };
    store = await Store.open(DIR, { ...opts, platform: sim, repair: true });
    log = await store.log("a");
    assert.ok(log.openReport.repaired.length > 0);
    failures.push(...await readInto(log, seen, "after the repair"));
    for (let i = 0; i < 2; i++) await log.append(rec(100 + i));
    failures.push(...await readInto(log, seen, "after appending to the repaired log"));
    await store.close();
    sim.onCall = undefined;

    let states = 0;
    for (const p of points) {
      for (const mode of CRASH_MODES) {
        const fs = p.snap.crash(mode, p.call);
        states++;
        const where = `after a crash after call #${p.call}, ${mode} [${fs.lastCrash?.detail}]`;
        const known: Seen = new Map(p.seen);
        try {
          const s = await Store.open(DIR, { ...opts, platform: fs, repair: true });
          try {
            const l = await s.log("a");
            const reused = await readInto(l, known, where);
            // And the next append after that open must not take a seq seen before either.
            await l.append(rec(200));
            reused.push(...await readInto(l, known, `${where}, then an append`));
            failures.push(...reused);
          } finally {
            await s.close();
          }
        } catch (err) {
          failures.push(`${where}: ${(err as Error).message}`);
        }
      }
    }
    console.log(
      `crash during repair, seqs never reused: crash points=${points.length}, states=${states}, ` +
        `violations=${failures.length}`,
    );
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} violations`);
  });
});
