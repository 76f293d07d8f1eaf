// seqAtTime (src/time_seek.ts) against a brute-force linear scan: for every distinct timestamp of a
// log, one below and one above it, and times before and after everything, the seek must give the
// first seq whose timestamp is >= the time (or the visible end). Logs are written through a Store
// on a SimPlatform with Date.now replaced by a controlled clock (long runs of equal timestamps that
// straddle index entries and segment boundaries), then reopened with recoverLog as the log does,
// which yields the segment views the function takes.
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Store, type StoreOptions, SyncPolicy } from "../mod.ts";
import { recordingPlatform, seededRandom, SimPlatform } from "../testing.ts";
import type { Platform } from "../src/platform/types.ts";
import { recoverLog } from "../src/recovery.ts";
import { readableEnd, type SegmentView } from "../src/segment_view.ts";
import { seqAtTime } from "../src/time_seek.ts";
import { cat, HEADER, segName, specFrame, specHeader, specSeal } from "./spec_codec.ts";

const T = 1_800_000_000_000;
const realNow = Date.now;
let clock = T;
afterEach(() => {
  Date.now = realNow;
});
/** Makes the writer stamp `t` (it takes the larger of the clock and the last timestamp). */
function setClock(t: number): void {
  clock = t;
  Date.now = () => clock;
}

interface Stamp {
  seq: number;
  timestamp: number;
}

/** What a linear scan finds: the first visible record at or after `time`, else `endSeq`. */
function linear(records: readonly Stamp[], time: number, endSeq: number): number {
  const r = records.find((r) => r.seq < endSeq && r.timestamp >= time);
  return r ? r.seq : endSeq;
}

/** Every distinct timestamp, one ms either side, and times before and after everything. */
function probeTimes(records: readonly Stamp[]): number[] {
  const ts = new Set<number>([0, -Infinity, Infinity, T - 1e6, realNow() + 1e9]);
  for (const r of records) {
    [r.timestamp - 1, r.timestamp, r.timestamp + 1].forEach((t) => ts.add(t));
  }
  return [...ts].sort((a, b) => a - b);
}

/** Asserts seqAtTime equals the linear scan for every probe time. */
async function checkAll(
  platform: Platform,
  views: readonly SegmentView[],
  records: readonly Stamp[],
  endSeq: number,
): Promise<void> {
  for (const time of probeTimes(records)) {
    const want = linear(records, time, endSeq);
    assert.equal(await seqAtTime(platform, views, time, endSeq), want, `time ${time - T} (T+)`);
  }
}

const LOG_DIR = "/s/ev";

async function readStamps(opts: StoreOptions): Promise<Stamp[]> {
  const store = await Store.open("/s", opts);
  try {
    const out: Stamp[] = [];
    for await (const r of (await store.log("ev")).read()) {
      out.push({ seq: r.seq, timestamp: r.timestamp });
    }
    return out;
  } finally {
    await store.close();
  }
}

/**
 * Appends batches (one timestamp each) and single records: the clock advances by 0 most of the
 * time, so runs of equal timestamps span many records, index entries and segments.
 */
async function writeLog(sim: SimPlatform, opts: StoreOptions, records: number, seed: number) {
  const rnd = seededRandom(seed);
  const store = await Store.open("/s", { ...opts, platform: sim });
  const log = await store.log("ev");
  let t = T;
  setClock(t);
  while (log.nextSeq < records) {
    const r = rnd();
    t += r < 0.6 ? 0 : r < 0.9 ? 1 : r < 0.97 ? 7 : 5000;
    setClock(t);
    const n = rnd() < 0.3 ? 1 : 1 + Math.floor(rnd() * 40);
    const size = () => 50 + Math.floor(rnd() * 700);
    if (n === 1) await log.append(new Uint8Array(size()));
    else await log.appendBatch(Array.from({ length: n }, () => new Uint8Array(size())));
  }
  return { store, log };
}

/** The log's segment views as the log holds them after an open; the caller closes `active`. */
async function recover(platform: Platform, segmentBytes: number) {
  if (!(await platform.stat("/s"))) await platform.mkdir("/s");
  const opts = { bufferBytes: 4096, maxRecordBytes: 1 << 20, segmentBytes, repair: false };
  return recoverLog(platform, LOG_DIR, opts);
}

/** Largest byte range one seek should scan: an index interval, or a segment's last one. */
function maxInterval(views: readonly SegmentView[]): number {
  let max = 0;
  for (const v of views) {
    for (let i = 0; i < v.index.length; i++) {
      const end = i + 1 < v.index.length ? v.index.offsetAt(i + 1) : readableEnd(v);
      max = Math.max(max, end - v.index.offsetAt(i));
    }
  }
  return max;
}

describe("seqAtTime", () => {
  it("an empty log, and no segments at all, give the end", async () => {
    const sim = new SimPlatform();
    const r = await recover(sim, 65536);
    try {
      for (const time of [-Infinity, 0, T, realNow(), Infinity]) {
        assert.equal(await seqAtTime(sim, r.segments, time, 0), 0);
        assert.equal(await seqAtTime(sim, [], time, 7), 7);
      }
    } finally {
      r.active.close();
    }
  });

  for (const segmentBytes of [4096, 65536, 300_000]) {
    it(`equals a linear scan: ${segmentBytes}-byte segments, equal timestamps across index entries and segments`, async () => {
      const sim = new SimPlatform();
      const opts: StoreOptions = {
        platform: sim,
        segmentBytes,
        bufferBytes: 4096,
        syncPolicy: SyncPolicy.osManaged(),
      };
      const { store } = await writeLog(sim, opts, segmentBytes === 4096 ? 600 : 5000, segmentBytes);
      await store.close();
      const records = await readStamps(opts);
      const r = await recover(sim, segmentBytes);
      try {
        const views = r.segments;
        const end = r.active.flushedSeq;
        assert.equal(end, records.length);
        assert.ok(views.length >= 5, `${views.length} segments`);
        const at = new Map(records.map((x) => [x.seq, x.timestamp]));
        // The cases the test is for must be in the log, or it proves nothing.
        const straddlesSegment = views.some((v, k) =>
          k > 0 && at.get(v.firstSeq) === at.get(v.firstSeq - 1)
        );
        assert.ok(straddlesSegment, "a run of equal timestamps crosses a segment boundary");
        if (segmentBytes > 65536) {
          const straddlesEntry = views.some((v) => {
            for (let i = 1; i < v.index.length; i++) {
              if (at.get(v.index.seqAt(i)) === v.index.timestampAt(i)) return true;
            }
            return false;
          });
          assert.ok(straddlesEntry, "a run of equal timestamps crosses an index entry");
        }
        await checkAll(sim, views, records, end);
        // A reader that may see less (say, only committed records) gets its own end.
        for (const cut of [1, Math.floor(end / 3), end - 1]) {
          await checkAll(sim, views, records, cut);
        }
      } finally {
        r.active.close();
      }
    });
  }

  it("reads one index interval of one segment per seek", async () => {
    const sim = new SimPlatform();
    const opts: StoreOptions = {
      platform: sim,
      segmentBytes: 300_000,
      bufferBytes: 4096,
      syncPolicy: SyncPolicy.osManaged(),
    };
    const { store } = await writeLog(sim, opts, 3000, 11);
    await store.close();
    const records = await readStamps(opts);
    const rec = recordingPlatform(sim);
    const r = await recover(sim, 300_000);
    try {
      const bound = maxInterval(r.segments);
      assert.ok(bound < 100_000, `index intervals of ${bound} bytes`);
      const total = r.segments.reduce((n, v) => n + readableEnd(v), 0);
      for (const time of probeTimes(records)) {
        rec.clear();
        await seqAtTime(rec, r.segments, time, r.active.flushedSeq);
        const opened = rec.calls.filter((c) => c.op === "open").length;
        const bytes = rec.calls.reduce((n, c) => n + (c.op === "readAt" ? c.bytes ?? 0 : 0), 0);
        assert.ok(opened <= 1, `time T+${time - T}: ${opened} files opened`);
        assert.ok(bytes <= bound, `time T+${time - T}: ${bytes} bytes read of ${total}`);
      }
    } finally {
      r.active.close();
    }
  });

  it("the live segment: only flushed records up to endSeq count, and its index grows", async () => {
    const sim = new SimPlatform();
    const r = await recover(sim, 1 << 20);
    try {
      const live = r.segments[0];
      const records: Stamp[] = [];
      const rnd = seededRandom(5);
      let t = r.active.lastTimestamp;
      for (let seq = 0; seq < 2000; seq++) {
        if (rnd() < 0.2) t += 1 + Math.floor(rnd() * 3);
        r.active.append(seq, t, new Uint8Array(200), true);
        records.push({ seq, timestamp: t });
        if (seq % 20 === 19) r.active.flush();
        if (seq % 500 === 499) {
          await checkAll(sim, r.segments, records, r.active.flushedSeq);
        }
      }
      assert.ok(live.index.length > 3, `${live.index.length} index entries`);
      // Appended but not flushed: not there for a seek.
      r.active.append(2000, t + 10, new Uint8Array(200), true);
      assert.equal(await seqAtTime(sim, r.segments, t + 10, r.active.flushedSeq), 2000);
      assert.equal(r.active.flushedSeq, 2000);
    } finally {
      r.active.close();
    }
  });

  it("a range of seqs skipped by repair: the seek goes on in the segment after the gap", async () => {
    const sim = new SimPlatform();
    const opts: StoreOptions = {
      platform: sim,
      segmentBytes: 65536,
      bufferBytes: 4096,
      syncPolicy: SyncPolicy.osManaged(),
    };
    const { store } = await writeLog(sim, opts, 2000, 3);
    await store.close();
    // Delete a middle segment: repair declares its seqs a gap in the next segment's header.
    const segs = sim.listFiles().filter((p) => p.startsWith(LOG_DIR) && p.endsWith(".seg")).sort();
    assert.ok(segs.length >= 6, `${segs.length} segments`);
    await sim.unlink(segs[2]);
    const repaired = await Store.open("/s", { ...opts, repair: true });
    const log = await repaired.log("ev");
    const [skipped] = log.gaps;
    assert.ok(skipped && skipped.to > skipped.from, JSON.stringify(log.gaps));
    // Appends stamped with a clock behind the log's last record (they take its timestamp), then
    // later ones.
    const last = clock;
    setClock(0);
    await log.appendBatch(Array.from({ length: 30 }, () => new Uint8Array(100)));
    setClock(last + 5000);
    await log.appendBatch(Array.from({ length: 30 }, () => new Uint8Array(100)));
    await repaired.close();
    const records = await readStamps(opts);
    const gapAt = records.findIndex((x) => x.seq >= skipped.to);
    assert.equal(records[gapAt - 1].seq, skipped.from - 1, "the record before the gap is there");
    const r = await recover(sim, 65536);
    try {
      assert.ok(r.segments.some((v) => v.firstSeq === skipped.to), "a segment starts at the gap");
      await checkAll(sim, r.segments, records, r.active.flushedSeq);
    } finally {
      r.active.close();
    }
  });

  it("after retention: a time before everything gives the log's first seq", async () => {
    const sim = new SimPlatform();
    const opts: StoreOptions = {
      platform: sim,
      segmentBytes: 4096,
      bufferBytes: 4096,
      syncPolicy: SyncPolicy.osManaged(),
    };
    const { store, log } = await writeLog(sim, opts, 500, 9);
    await log.truncateBefore(250);
    const first = log.firstSeq;
    assert.ok(first > 0);
    await store.close();
    const records = await readStamps(opts);
    assert.equal(records[0].seq, first);
    const r = await recover(sim, 4096);
    try {
      assert.equal(await seqAtTime(sim, r.segments, 0, r.active.flushedSeq), first);
      await checkAll(sim, r.segments, records, r.active.flushedSeq);
    } finally {
      r.active.close();
    }
  });
});

describe("seqAtTime on version 1 segments", () => {
  const FIXTURES = fileURLToPath(new URL("./fixtures/v1/", import.meta.url));

  for (const name of ["basic", "retained", "multi", "empty-newest", "torn"]) {
    it(`the v1 fixture "${name}": every log equals a linear scan`, async () => {
      const expected = JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8")) as {
        logs: Record<string, { records: Stamp[] }>;
      };
      const sim = new SimPlatform();
      const store = join(FIXTURES, name, "store");
      await sim.mkdir("/v1");
      for (const [logName, { records }] of Object.entries(expected.logs)) {
        await sim.mkdir(`/v1/${logName}`);
        for (const f of readdirSync(join(store, logName))) {
          sim.setFileBytes(
            `/v1/${logName}/${f}`,
            new Uint8Array(readFileSync(join(store, logName, f))),
          );
        }
        const opts = {
          bufferBytes: 4096,
          maxRecordBytes: 1 << 20,
          segmentBytes: 4096,
          repair: false,
        };
        const r = await recoverLog(sim, `/v1/${logName}`, opts);
        try {
          assert.equal(r.active.flushedSeq, records.at(-1) ? records.at(-1)!.seq + 1 : 0);
          assert.ok(r.segments.some((v) => v.codec.version === 1) || records.length === 0);
          await checkAll(sim, r.segments, records, r.active.flushedSeq);
        } finally {
          r.active.close();
        }
      }
    });
  }

  /**
   * A v1 segment file of `records` (~1 KiB each): its index lists the first frame and each frame at
   * least 64 KiB after the previous entry, as v1 wrote it; sealed at `sealTime` if given.
   */
  function v1File(firstSeq: number, stamps: number[], sealTime: number | null): Uint8Array {
    const parts = [specHeader(firstSeq, 16 << 20)];
    const index: [number, number][] = [];
    let offset = HEADER;
    stamps.forEach((ts, i) => {
      if (index.length === 0 || offset - index[index.length - 1][1] >= 65536) {
        index.push([firstSeq + i, offset]);
      }
      const frame = specFrame(1, firstSeq + i, ts, new Uint8Array(900 + (i % 7) * 30));
      parts.push(frame);
      offset += frame.length;
    });
    if (sealTime !== null) parts.push(specSeal(firstSeq + stamps.length, sealTime, index));
    return cat(...parts);
  }

  it("v1 segments with many index entries (no timestamps in them), sealed and sealed at open", async () => {
    const rnd = seededRandom(21);
    let t = T;
    const stamps = Array.from(
      { length: 700 },
      () => (t += rnd() < 0.8 ? 0 : 1 + (rnd() < 0.5 ? 0 : 9)),
    );
    const sim = new SimPlatform();
    await sim.mkdir("/s");
    await sim.mkdir(LOG_DIR);
    const split = 330;
    // The second segment starts after the first's sealing time.
    for (let i = split; i < stamps.length; i++) stamps[i] += 1000;
    // Sealed 500 ms after its last record: a time in between finds the next segment's first record.
    sim.setFileBytes(
      `${LOG_DIR}/${segName(0)}`,
      v1File(0, stamps.slice(0, split), stamps[split - 1] + 500),
    );
    sim.setFileBytes(`${LOG_DIR}/${segName(split)}`, v1File(split, stamps.slice(split), null));
    setClock(stamps[stamps.length - 1] + 1000); // when recovery seals the newest v1 segment
    const r = await recover(sim, 1 << 20);
    try {
      const [a, b, live] = r.segments;
      assert.deepEqual([a.codec.version, b.codec.version, live.kind], [1, 1, "live"]);
      assert.ok(a.index.length >= 4 && b.index.length >= 4, `${a.index.length}, ${b.index.length}`);
      assert.equal(a.index.timestampAt(1), 0, "v1 index entries carry no timestamp");
      const records: Stamp[] = stamps.map((timestamp, seq) => ({ seq, timestamp }));
      // Then v2 records in the live segment, no older than its start.
      let ts = r.active.lastTimestamp;
      for (let seq = stamps.length; seq < stamps.length + 50; seq++) {
        ts += seq % 3 === 0 ? 1 : 0;
        r.active.append(seq, ts, new Uint8Array(40), true);
        records.push({ seq, timestamp: ts });
      }
      r.active.flush();
      await checkAll(sim, r.segments, records, r.active.flushedSeq);
      const between = stamps[split - 1] + 250;
      assert.equal(await seqAtTime(sim, r.segments, between, r.active.flushedSeq), split);
    } finally {
      r.active.close();
    }
  });

  it("a damaged v1 frame where the search looks is a CorruptionError, not a wrong answer", async () => {
    let t = T;
    const stamps = Array.from({ length: 300 }, () => t++);
    const sim = new SimPlatform();
    await sim.mkdir("/s");
    await sim.mkdir(LOG_DIR);
    const file = v1File(0, stamps, t + 10);
    file[HEADER + 30] ^= 1; // inside the first record's payload
    sim.setFileBytes(`${LOG_DIR}/${segName(0)}`, file);
    sim.setFileBytes(`${LOG_DIR}/${segName(300)}`, v1File(300, [t + 20], null));
    const r = await recover(sim, 1 << 20); // a sealed segment is trusted without a scan
    try {
      await assert.rejects(seqAtTime(sim, r.segments, T, r.active.flushedSeq), {
        code: "CORRUPTION",
        offset: HEADER,
        seq: 0,
      });
    } finally {
      r.active.close();
    }
  });
});
