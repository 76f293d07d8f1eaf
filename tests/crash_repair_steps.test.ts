// Crash-point exploration of repair mode for a damaged SEALED segment. Repair sets the damaged
// segment and every later one aside; a power cut (or kill -9) between any two of its steps must
// never lose bytes: at every instant the damaged segment's original bytes, and each later
// segment's, exist byte for byte under their own name or a `.broken` / `.broken.N` name, and the
// next repair-mode open succeeds, keeps every record before the damage, and leaves no
// `*.seg.repair` file behind. The properties are checked on the crashed disk and again after that
// next open (whose own recovery must not cut the damaged bytes away as a torn tail either).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Store, SyncPolicy } from "../mod.ts";
import { CRASH_MODES, type CrashMode, SimPlatform, type SimSnapshot } from "../src/testing/sim.ts";

const DIR = "/s";
const LOG = "a";
const LOG_DIR = `${DIR}/${LOG}`;
const opts = { syncPolicy: SyncPolicy.always(), segmentBytes: 4096 };
/** 700-byte records: 5 to a 4096-byte segment. */
const rec = (i: number) => new Uint8Array(700).fill((i % 250) + 1);
const segName = (firstSeq: number) => `${String(firstSeq).padStart(20, "0")}.seg`;
/** Modes whose outcome depends on the seed get several seeds; the others are one state each. */
const SEEDS: Partial<Record<CrashMode, number[]>> = {
  prefix: [1, 2, 3],
  subset: [1, 2, 3],
  torn: [1, 2, 3],
  zeros: [1, 2, 3],
};

function same(a: Uint8Array | null, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The segments (by file name) whose original bytes are nowhere on `fs`: not under their own name,
 * nor under `<name>.broken` or `<name>.broken.N`.
 */
function missing(fs: SimPlatform, originals: Map<string, Uint8Array>): string[] {
  const files = fs.listFiles().filter((p) => p.startsWith(`${LOG_DIR}/`));
  const out: string[] = [];
  for (const [name, bytes] of originals) {
    const re = new RegExp(`^${name.replace(".", "\\.")}(\\.broken(\\.\\d+)?)?$`);
    const found = files.some((p) =>
      re.test(p.slice(LOG_DIR.length + 1)) && same(fs.fileBytes(p), bytes)
    );
    if (!found) out.push(name);
  }
  return out;
}

describe("crash during repair of a damaged sealed segment", () => {
  it("no crash at any step loses the damaged segment's bytes or a later segment's", async () => {
    // Segments 0-4, 5-9, 10-14 (sealed) and 15-16 (active).
    const sim = new SimPlatform();
    let store = await Store.open(DIR, { ...opts, platform: sim });
    let log = await store.log(LOG);
    for (let i = 0; i < 17; i++) await log.append(rec(i));
    assert.equal(log.segmentCount, 4);
    await store.close();

    // Damage one byte inside the seal of the second segment (its first index entry).
    const damaged = `${LOG_DIR}/${segName(5)}`;
    const bytes = sim.fileBytes(damaged)!;
    const sealBytes = new DataView(bytes.buffer).getUint32(bytes.length - 4, true);
    const sealAt = bytes.length - sealBytes;
    assert.equal(bytes[sealAt + 4], 2, "a seal frame");
    bytes[sealAt + 28 + 4] ^= 0x01;
    sim.setFileBytes(damaged, bytes);
    const plain = await Store.open(DIR, { ...opts, platform: sim });
    await assert.rejects(plain.log(LOG), { code: "CORRUPTION" });
    await plain.close();

    const originals = new Map<string, Uint8Array>();
    for (const first of [5, 10, 15]) {
      originals.set(segName(first), sim.fileBytes(`${LOG_DIR}/${segName(first)}`)!);
    }
    const kept = Array.from({ length: 10 }, (_, i) => rec(i)); // records 0..9 precede the damage

    // The repair-mode open, frozen before its first call and after every call that changes the
    // disk (that is: before every mutating call, and at its end).
    const points: { call: number; snap: SimSnapshot }[] = [{ call: 0, snap: sim.freeze() }];
    sim.onCall = (c) => {
      if (c.mutates) points.push({ call: c.n, snap: sim.freeze() });
    };
    store = await Store.open(DIR, { ...opts, platform: sim, repair: true });
    log = await store.log(LOG);
    assert.equal(log.nextSeq, 10);
    assert.ok(log.openReport.repaired.length >= 3, JSON.stringify(log.openReport.repaired));
    await store.close();
    sim.onCall = undefined;
    assert.deepEqual(missing(sim, originals), [], "after the repair itself");

    let states = 0;
    const failures: string[] = [];
    for (const p of points) {
      for (const mode of CRASH_MODES) {
        for (const seed of SEEDS[mode] ?? [0]) {
          const fs = p.snap.crash(mode, seed);
          states++;
          const where =
            `crash after call #${p.call}, ${mode} seed ${seed} [${fs.lastCrash?.detail}]`;
          const lost = missing(fs, originals);
          if (lost.length) {
            failures.push(`${where}: bytes of ${lost.join(", ")} lost at the crash`);
            continue;
          }
          try {
            const s = await Store.open(DIR, { ...opts, platform: fs, repair: true });
            const got: Uint8Array[] = [];
            try {
              const l = await s.log(LOG);
              for await (const r of l.read({ from: 0 })) got.push(r.data.slice());
            } finally {
              await s.close();
            }
            const bad = kept.findIndex((want, i) => !got[i] || !same(got[i], want));
            if (bad >= 0) {
              failures.push(`${where}: record ${bad} lost or changed (log has ${got.length})`);
            }
          } catch (err) {
            failures.push(`${where}: the next repair-mode open failed: ${(err as Error).message}`);
            continue;
          }
          const after = missing(fs, originals);
          if (after.length) {
            failures.push(`${where}: bytes of ${after.join(", ")} lost by the next open`);
          }
          const leftovers = fs.listFiles().filter((f) =>
            f.startsWith(LOG_DIR) && f.endsWith(".seg.repair")
          );
          if (leftovers.length) {
            failures.push(`${where}: ${leftovers.join(", ")} left after the next open`);
          }
        }
      }
    }
    console.log(
      `crash during repair of a sealed segment: crash points=${points.length}, ` +
        `crash states checked=${states}, violations=${failures.length}`,
    );
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} violations`);
  });
});
