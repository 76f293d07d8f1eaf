/**
 * Crash-point exploration for khipu-log, shared by `tests/crash.test.ts` (the CI run) and
 * `scripts/crash.ts` (long runs and single-state reproductions).
 *
 * A workload runs once against a {@linkcode SimPlatform}. After every platform call that changed
 * the simulated disk, the harness freezes the state together with what the workload had been
 * promised so far (appends resolved, syncs resolved, retention requested). Each frozen state is
 * then crashed in every {@linkcode CrashMode}, the store is reopened on the result, and the six
 * properties below are checked:
 *
 * 1. `Store.open` and `store.log(name)` succeed;
 * 2. every record whose append resolved under `always()`, or that a resolved `sync()`/`close()`
 *    covered, is present with identical bytes; under `everyN(n)` at most n-1 resolved records are
 *    missing; in the `all` mode (a process crash) no resolved record is missing under any policy;
 * 3. the records present are a contiguous run `[first, end)` of what was appended, byte for byte,
 *    and `end` never below a record that had to survive (sequence numbers are never reused).
 *    Retention (`truncateBefore`, `enforceRetention()`, and the passes a log with `retention`
 *    limits runs at rollovers and on its timer) is what may raise `first`: at most to the oldest
 *    segment file left in the running store's directory at the crash, never beyond the highest
 *    `truncateBefore` point asked for (on a log without limits) nor past the newest `maxRecords`
 *    records (on a log with that limit alone); and at least to where a resolved
 *    `truncateBefore`/`enforceRetention()` had left it (its deletions are durable);
 * 4. the reopened log accepts new appends, and after `sync()` they survive a second crash;
 * 5. batches are atomic: of every `appendBatch` the workload issued, the records present are all
 *    of it or none of it (only retention may remove a batch's first records). Each batch member
 *    says which batch it belongs to: its payload starts with {@linkcode BATCH_TAG_BYTES} bytes,
 *    `"khipuBAT"`, then the batch id, the record's index in the batch and the batch's size (u32
 *    little-endian each; see {@linkcode batchTag}), so the check reads identities from the bytes
 *    recovered, not from their positions;
 * 6. timestamps never go backwards: each record's timestamp is at least the one before it, across
 *    the workload's reopens and the appends after recovery too, and none is before the run began.
 * 7. a log with integrity on has a Merkle tree that matches the records present (`verify`
 *    recomputes every leaf and checks every stored node), on reopen and after the second crash.
 *
 * A non-mutating call (a read, a stat) leaves the disk as the previous call left it, so crashing
 * after it would repeat the previous state: those calls are counted but not re-explored.
 *
 * @example
 * ```ts
 * import { runWorkload, WORKLOADS } from "./crash_harness.ts";
 * const r = await runWorkload(WORKLOADS[0], 1, {});
 * console.log(r.states, r.violations.length);
 * ```
 * @module
 */
import { crc32 } from "node:zlib";
import { type LogOpenOptions, Store, SyncPolicy } from "../mod.ts";
import type { Log } from "../src/log.ts";
import { parseSegmentFileName } from "../src/segment.ts";
import {
  CRASH_MODES,
  type CrashMode,
  seededRandom,
  type SimCall,
  SimPlatform,
  type SimSnapshot,
} from "../src/testing/sim.ts";

/** The modes whose outcome depends on the seed (the others are one state per crash point). */
const SEEDED_MODES: ReadonlySet<CrashMode> = new Set(["prefix", "subset", "torn", "zeros"]);

/** Where the simulated store lives. */
export const DIR = "/khipu/store";

/** The first bytes of every batch member's payload; then batch id, index and size (u32 LE). */
const BATCH_MAGIC = new TextEncoder().encode("khipuBAT");
/** Length of the identity that starts every batch member's payload. */
export const BATCH_TAG_BYTES: number = BATCH_MAGIC.length + 12;

/** Which batch a record belongs to, read from its payload. */
export interface BatchTag {
  /** The batch, numbered from 1 in the order the workload issued batches (all logs together). */
  id: number;
  /** The record's place in its batch, from 0. */
  index: number;
  /** How many records the batch has. */
  size: number;
}

/** `body` prefixed with the identity of record `index` of batch `id` of `size` records. */
function withBatchTag(tag: BatchTag, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(BATCH_TAG_BYTES + body.length);
  out.set(BATCH_MAGIC);
  const v = new DataView(out.buffer);
  v.setUint32(BATCH_MAGIC.length, tag.id, true);
  v.setUint32(BATCH_MAGIC.length + 4, tag.index, true);
  v.setUint32(BATCH_MAGIC.length + 8, tag.size, true);
  out.set(body, BATCH_TAG_BYTES);
  return out;
}

/**
 * The batch identity a payload starts with, or null for a record appended on its own (its random
 * bytes start with the 8-byte magic with probability 2^-64, and the seeded generator would repeat
 * such a collision on every run, so it could not come and go).
 *
 * @example
 * ```ts
 * import { batchTag } from "./crash_harness.ts";
 * if (batchTag(new Uint8Array(3)) !== null) throw new Error("a single append has no tag");
 * ```
 */
export function batchTag(data: Uint8Array): BatchTag | null {
  if (data.length < BATCH_TAG_BYTES) return null;
  for (let i = 0; i < BATCH_MAGIC.length; i++) if (data[i] !== BATCH_MAGIC[i]) return null;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    id: v.getUint32(BATCH_MAGIC.length, true),
    index: v.getUint32(BATCH_MAGIC.length + 4, true),
    size: v.getUint32(BATCH_MAGIC.length + 8, true),
  };
}

/** One `appendBatch` the workload issued. */
interface BatchModel {
  id: number;
  /** The sequence number its first record was given (the model's index). */
  first: number;
  size: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What the workload was promised for one log, at one instant. */
interface LogPromise {
  /** Appends called so far (records 0..attempted-1 may exist). */
  attempted: number;
  /** How many entries of the model's `resolved` list existed. */
  resolvedLen: number;
  /** Records below this were covered by a resolved sync() or close(). */
  syncCovered: number;
  /** The highest `truncateBefore` point called so far (0 if none). */
  truncCalled: number;
  /**
   * The first seq of the oldest segment file in the running store's directory: retention had
   * deleted the records below it (0 before the log has a file).
   */
  liveFirst: number;
  /** The log's `firstSeq` after the last resolved `truncateBefore`/`enforceRetention()`. */
  removed: number;
  /** How many entries of the model's `batches` list existed (batches issued so far). */
  batches: number;
}

/** Everything the workload did to one log. */
class LogModel {
  readonly data: Uint8Array[] = [];
  /** Sequence numbers of resolved appends, in resolution order. */
  readonly resolved: number[] = [];
  /** Every `appendBatch` issued on this log, in call order. */
  readonly batches: BatchModel[] = [];
  syncCovered = 0;
  truncCalled = 0;
  removed = 0;

  capture(liveFirst: number): LogPromise {
    return {
      attempted: this.data.length,
      resolvedLen: this.resolved.length,
      syncCovered: this.syncCovered,
      truncCalled: this.truncCalled,
      liveFirst,
      removed: this.removed,
      batches: this.batches.length,
    };
  }
}

/** The API a workload drives; it keeps the model in step with the store. */
export class Ctx {
  readonly rnd: () => number;
  readonly models: Map<string, LogModel> = new Map();
  store!: Store;
  readonly errors: string[] = [];
  /** A workload's own hook, called after each platform call (to start work at a precise point). */
  onCall: ((call: SimCall) => void) | undefined;
  /** Promises a hook started; awaited by the workload before it ends. */
  readonly background: Promise<unknown>[] = [];
  private logs: Map<string, Log> = new Map();
  readonly sim: SimPlatform;
  readonly opts: StoreOpts;
  /** `Date.now()` when the run began: no record's timestamp may be older (property 6). */
  readonly started: number = Date.now();
  private nextBatchId = 1;

  constructor(sim: SimPlatform, opts: StoreOpts, seed: number) {
    this.sim = sim;
    this.opts = opts;
    this.rnd = seededRandom(seed ^ 0x5eed);
  }

  async open(): Promise<void> {
    this.store = await Store.open(DIR, { ...this.opts.open(), platform: this.sim });
    this.logs.clear();
  }

  async log(name: string): Promise<Log> {
    let l = this.logs.get(name);
    if (!l) {
      l = await this.store.log(name, this.opts.logOptions);
      this.logs.set(name, l);
      if (!this.models.has(name)) this.models.set(name, new LogModel());
    }
    return l;
  }

  /** Random payload of 0..max bytes (a zero-length record now and then). */
  payload(max: number): Uint8Array {
    const n = this.rnd() < 0.05 ? 0 : 1 + Math.floor(this.rnd() * max);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.rnd() * 256);
    return out;
  }

  /** Random payload of `min..max` bytes. */
  sized(min: number, max: number): Uint8Array {
    const out = new Uint8Array(min + Math.floor(this.rnd() * (max - min + 1)));
    for (let i = 0; i < out.length; i++) out[i] = Math.floor(this.rnd() * 256);
    return out;
  }

  /** `count` random payloads of `min..max` bytes each (a batch's bodies). */
  many(count: number, min: number, max: number): Uint8Array[] {
    return Array.from({ length: count }, () => this.sized(min, max));
  }

  private track(name: string, p: Promise<number>, idx: number): Promise<number> {
    const m = this.models.get(name)!;
    return p.then((seq) => {
      if (seq !== idx) this.errors.push(`${name}: append #${idx} resolved with seq ${seq}`);
      m.resolved.push(idx);
      return seq;
    });
  }

  async append(name: string, data: Uint8Array): Promise<number> {
    const log = await this.log(name);
    const m = this.models.get(name)!;
    const idx = m.data.length;
    m.data.push(data);
    return await this.track(name, log.append(data), idx);
  }

  /**
   * Appends `bodies` as one batch; each record's payload is its body prefixed with its batch
   * identity ({@linkcode BATCH_TAG_BYTES} bytes: magic, batch id, index, batch size).
   */
  async appendBatch(name: string, bodies: Uint8Array[]): Promise<number[]> {
    const log = await this.log(name);
    const m = this.models.get(name)!;
    const first = m.data.length;
    const batch: BatchModel = { id: this.nextBatchId++, first, size: bodies.length };
    const items = bodies.map((b, index) =>
      withBatchTag({ id: batch.id, index, size: batch.size }, b)
    );
    m.data.push(...items);
    m.batches.push(batch);
    const seqs = await log.appendBatch(items);
    seqs.forEach((s, i) => {
      if (s !== first + i) this.errors.push(`${name}: batch #${first + i} resolved with seq ${s}`);
      m.resolved.push(first + i);
    });
    return seqs;
  }

  async sync(name: string): Promise<void> {
    const log = await this.log(name);
    const m = this.models.get(name)!;
    const covered = m.data.length;
    await log.sync();
    m.syncCovered = Math.max(m.syncCovered, covered);
  }

  async truncateBefore(name: string, seq: number): Promise<void> {
    const log = await this.log(name);
    const m = this.models.get(name)!;
    m.truncCalled = Math.max(m.truncCalled, seq);
    // Read in the same turn as it resolves: the next retention pass (chained after it) has not
    // dropped a segment from the list yet, so this is what the call made durable.
    await log.truncateBefore(seq).then(() => (m.removed = Math.max(m.removed, log.firstSeq)));
  }

  /** `log.enforceRetention()`: what it reports removed stays removed after any crash. */
  async enforceRetention(name: string): Promise<void> {
    const log = await this.log(name);
    const m = this.models.get(name)!;
    const r = await log.enforceRetention();
    m.removed = Math.max(m.removed, r.firstSeq);
  }

  /** `log.roll()`: once it resolves the seal is on disk, and so is every record before it. */
  async roll(name: string): Promise<void> {
    const log = await this.log(name);
    const m = this.models.get(name)!;
    const covered = m.data.length;
    await log.roll();
    m.syncCovered = Math.max(m.syncCovered, covered);
  }

  async close(): Promise<void> {
    const covered = [...this.models].map(([n, m]) => [n, m.data.length] as const);
    await this.store.close();
    for (const [n, c] of covered) {
      const m = this.models.get(n)!;
      m.syncCovered = Math.max(m.syncCovered, c);
    }
  }

  async reopen(): Promise<void> {
    await this.close();
    await this.open();
  }

  capture(): Map<string, LogPromise> {
    // Read from the running store's disk, not from `log.firstSeq`: a crash point right after an
    // unlink comes before the log forgets the segment.
    const liveFirst = new Map<string, number>();
    for (const path of this.sim.listFiles()) {
      const at = path.lastIndexOf("/");
      const name = path.slice(DIR.length + 1, at);
      const first = parseSegmentFileName(path.slice(at + 1));
      if (first === null || path.slice(0, DIR.length + 1) !== `${DIR}/`) continue;
      liveFirst.set(name, Math.min(liveFirst.get(name) ?? first, first));
    }
    const out = new Map<string, LogPromise>();
    for (const [n, m] of this.models) out.set(n, m.capture(liveFirst.get(n) ?? 0));
    return out;
  }
}

/** Store options of a workload (a function: a policy object is per store). */
export interface StoreOpts {
  policy: string;
  /** `n` of everyN (1 for always), for the loss bound; 0 when no bound applies. */
  lossBound: number;
  /**
   * Options of the workload's own logs (`store.log(name, logOptions)`): retention limits and
   * `segmentMaxAgeMs`. The checks reopen without them, so that what they read is what the crash
   * left (a retention pass after the reopen would be a new workload, not the crash's outcome).
   */
  logOptions?: LogOpenOptions;
  open(): {
    syncPolicy: SyncPolicy;
    segmentBytes: number;
    bufferBytes?: number;
    maxRecordBytes?: number;
  };
}

/** A deterministic workload. */
export interface Workload {
  name: string;
  opts: StoreOpts;
  run(ctx: Ctx): Promise<void>;
  /** Why this workload cannot run on this code (it is then skipped, with the reason), or null. */
  unavailable?(): string | null;
  /** Something worth printing about how it runs on this code (once per process), or null. */
  note?(): Promise<string | null>;
}

const always = (segmentBytes: number, bufferBytes?: number): StoreOpts => ({
  policy: "always()",
  lossBound: 1,
  open: () => ({ syncPolicy: SyncPolicy.always(), segmentBytes, bufferBytes }),
});
const everyN = (n: number, segmentBytes: number, bufferBytes?: number): StoreOpts => ({
  policy: `everyN(${n})`,
  lossBound: n,
  open: () => ({ syncPolicy: SyncPolicy.everyN(n), segmentBytes, bufferBytes }),
});
/**
 * `SyncPolicy.everyN(n, { maxDelayMs })`, called without the type checker knowing the option
 * (the code under test may predate it): throws whatever `everyN` throws.
 */
function everyNWithDelay(n: number, maxDelayMs: number): SyncPolicy {
  const make = SyncPolicy as unknown as {
    everyN(n: number, o: { maxDelayMs: number }): SyncPolicy;
  };
  return make.everyN(n, { maxDelayMs });
}
const everyNDelay = (
  n: number,
  maxDelayMs: number,
  segmentBytes: number,
  bufferBytes?: number,
): StoreOpts => ({
  policy: `everyN(${n}, ${maxDelayMs}ms)`,
  lossBound: n,
  open: () => ({ syncPolicy: everyNWithDelay(n, maxDelayMs), segmentBytes, bufferBytes }),
});
/** Null if `everyN(n, { maxDelayMs })` can be built, else why the workload is skipped. */
function everyNDelayUnavailable(): string | null {
  try {
    everyNWithDelay(2, 5);
    return null;
  } catch (err) {
    return `SyncPolicy.everyN(2, { maxDelayMs: 5 }) threw ${describeErr(err)}; ` +
      `skipped until everyN's maxDelayMs lands`;
  }
}
/**
 * Whether the time trigger acts: one append under `everyN(4, { maxDelayMs: 5 })`, then 50 ms of
 * quiet, must see an fdatasync. Older code accepts the option and ignores it (the workload then
 * still checks everyN(4)'s loss bound, but not the timer's fdatasyncs).
 */
async function everyNDelayNote(): Promise<string | null> {
  const sim = new SimPlatform();
  const store = await Store.open("/probe", {
    platform: sim,
    syncPolicy: everyNWithDelay(4, 5),
    segmentBytes: 4096,
  });
  try {
    const log = await store.log("p");
    let syncs = 0;
    sim.onCall = (c) => {
      if (c.op === "datasync" || c.op === "sync") syncs++;
    };
    await log.append(new Uint8Array(1));
    await sleep(50);
    sim.onCall = undefined;
    return syncs > 0 ? null : "maxDelayMs accepted but no fdatasync came 50 ms after an append: " +
      "this code ignores it (only the count trigger is exercised)";
  } finally {
    await store.close();
  }
}
/** `opts` for a workload whose logs open with `logOptions` (`label` goes in the policy column). */
const withLogOptions = (opts: StoreOpts, label: string, logOptions: LogOpenOptions): StoreOpts => ({
  ...opts,
  policy: `${opts.policy} ${label}`,
  logOptions,
});
const osManaged = (segmentBytes: number, bufferBytes?: number): StoreOpts => ({
  policy: "osManaged()",
  lossBound: 0,
  open: () => ({ syncPolicy: SyncPolicy.osManaged(), segmentBytes, bufferBytes }),
});

/**
 * The CI workloads. Each is small (a few hundred platform calls) but crosses every code path
 * that changes the disk: segment creation and rollover, `roll()`, torn-tail repair on reopen,
 * retention (`truncateBefore`, and limits enforced at rollovers, by `enforceRetention()` and on
 * the timer), batches, concurrent appends (group commit), several logs, close and reopen.
 */
export const WORKLOADS: readonly Workload[] = [
  {
    name: "always-rollover",
    opts: always(4096),
    async run(c) {
      await c.open();
      for (let i = 0; i < 30; i++) await c.append("a", c.payload(700));
      await c.appendBatch("a", [c.payload(300), c.payload(10), c.payload(900)]);
      await c.close();
    },
  },
  {
    name: "always-concurrent",
    opts: always(4096, 512),
    async run(c) {
      await c.open();
      await c.log("x");
      await c.log("y");
      for (let round = 0; round < 4; round++) {
        const ps: Promise<unknown>[] = [];
        for (let i = 0; i < 6; i++) ps.push(c.append(i % 3 ? "x" : "y", c.payload(400)));
        ps.push(c.appendBatch("x", [c.payload(200), c.payload(200)]));
        await Promise.all(ps);
      }
      await c.close();
    },
  },
  {
    name: "everyN-retention",
    opts: everyN(4, 4096),
    async run(c) {
      await c.open();
      for (let i = 0; i < 40; i++) {
        await c.append("r", c.payload(500));
        if (i === 20) await c.truncateBefore("r", 12);
        if (i === 30) await c.sync("r");
      }
      await c.truncateBefore("r", 33);
      for (let i = 0; i < 3; i++) await c.append("r", c.payload(100));
      await c.close();
    },
  },
  {
    name: "osManaged-reopen",
    opts: osManaged(4096, 1024),
    async run(c) {
      await c.open();
      for (let i = 0; i < 12; i++) await c.append("o", c.payload(600));
      await c.sync("o");
      for (let i = 0; i < 5; i++) await c.append("o", c.payload(600));
      await c.reopen();
      for (let i = 0; i < 8; i++) await c.append("o", c.payload(800));
      await c.appendBatch("o", [c.payload(100), c.payload(3000)]);
      await c.store.sync();
      await c.append("o", c.payload(50));
      await c.close();
    },
  },
  {
    name: "everyN-batches",
    opts: everyN(3, 4096, 256),
    async run(c) {
      await c.open();
      for (let i = 0; i < 8; i++) {
        const n = 1 + Math.floor(c.rnd() * 4);
        const items = Array.from({ length: n }, () => c.payload(350));
        if (i % 3 === 2) await c.append("b", c.payload(350));
        else await c.appendBatch("b", items);
      }
      await c.reopen();
      await c.append("b", c.payload(100));
      await c.truncateBefore("b", 5);
      await c.close();
    },
  },
  {
    name: "everyN-concurrent",
    opts: everyN(8, 4096, 1024),
    async run(c) {
      await c.open();
      for (let round = 0; round < 3; round++) {
        const ps: Promise<unknown>[] = [];
        for (let i = 0; i < 10; i++) ps.push(c.append(i % 4 ? "p" : "q", c.payload(450)));
        if (round === 2) ps.push(c.truncateBefore("p", 9));
        await Promise.all(ps);
      }
      await c.store.sync();
      await c.append("q", c.payload(100));
      await c.close();
    },
  },
  {
    name: "always-big-records",
    opts: always(16384, 2048),
    async run(c) {
      await c.open();
      // Records spanning several 512 B sectors and 4 KiB pages, and larger than the buffer.
      for (let i = 0; i < 8; i++) await c.append("big", c.payload(9000));
      await c.appendBatch("big", [c.payload(5000), c.payload(5000)]);
      await c.close();
    },
  },
  {
    name: "always-page-straddle",
    opts: always(65536, 1024),
    async run(c) {
      await c.open();
      // Small synced records move the synced end through every sector of a page; each batch is one
      // un-synced write of a frame that straddles pages followed by a small frame.
      for (let i = 0; i < 40; i++) {
        if (i % 4 === 3) await c.appendBatch("s", [c.payload(900), c.payload(40)]);
        else await c.append("s", c.payload(300));
      }
      await c.close();
    },
  },
  {
    name: "always-retention-race",
    opts: always(4096),
    async run(c) {
      await c.open();
      await c.log("t");
      const m = c.models.get("t")!;
      // Ask to drop everything appended so far at the moment a rollover starts creating the next
      // segment: retention then races the new segment's creation.
      c.onCall = (call) => {
        if (call.op === "open" && call.mutates && call.path.endsWith(".seg") && m.data.length > 0) {
          c.background.push(c.truncateBefore("t", m.data.length).catch(() => {}));
        }
      };
      for (let i = 0; i < 14; i++) await c.append("t", c.payload(1300));
      c.onCall = undefined;
      await Promise.all(c.background);
      await c.close();
    },
  },
  {
    name: "always-batch-pages",
    opts: always(32768, 4096),
    async run(c) {
      await c.open();
      for (let i = 0; i < 2; i++) await c.append("a", c.payload(200));
      // A batch whose middle record is larger than a page and than the buffer.
      await c.appendBatch("a", [c.sized(10, 60), c.sized(4200, 6000), c.sized(10, 60)]);
      // Batches issued concurrently with single appends (group commit).
      await Promise.all([
        c.append("a", c.payload(300)),
        c.appendBatch("a", c.many(12, 80, 280)),
        c.append("a", c.payload(300)),
        c.appendBatch("a", [c.sized(4100, 4600)]),
        c.append("a", c.payload(300)),
        c.appendBatch("a", c.many(5, 80, 280)),
      ]);
      // 100 records of 100-300 bytes (about 23 KiB), last, so that only the states after it hold
      // a large log: one writev of 4 KiB buffer chunks over several pages, and a rollover in the
      // middle of the batch (the segment is 32 KiB), so a second write.
      await c.appendBatch("a", c.many(100, 100 - BATCH_TAG_BYTES, 300 - BATCH_TAG_BYTES));
      await c.close();
    },
  },
  {
    name: "everyN-batch-rollover",
    opts: everyN(4, 8192, 2048),
    async run(c) {
      await c.open();
      for (let i = 0; i < 3; i++) await c.append("r", c.payload(300));
      await c.appendBatch("r", [c.sized(10, 60), c.sized(4200, 6000), c.sized(10, 60)]);
      // Under everyN(4) a batch of up to 3 records may resolve before an fdatasync; concurrent
      // single appends share the allowance.
      await Promise.all([
        c.append("r", c.payload(200)),
        c.appendBatch("r", c.many(3, 20, 200)),
        c.append("r", c.payload(200)),
        c.appendBatch("r", c.many(9, 80, 280)),
        c.append("r", c.payload(200)),
      ]);
      await c.reopen();
      await c.appendBatch("r", c.many(2, 20, 200));
      await c.append("r", c.payload(200));
      // 100 records of 100-300 bytes across three or four 8 KiB segments: several writes, seals
      // and segment creations inside one batch.
      await c.appendBatch("r", c.many(100, 100 - BATCH_TAG_BYTES, 300 - BATCH_TAG_BYTES));
      await c.close();
    },
  },
  {
    name: "always-maxRecords",
    opts: withLogOptions(always(4096), "maxRecords", { retention: { maxRecords: 10 } }),
    async run(c) {
      await c.open();
      // About 8 records to a segment: every rollover's pass deletes what is past the newest 10.
      for (let i = 0; i < 30; i++) {
        await c.append("m", c.payload(900));
        if (i % 9 === 8) await c.enforceRetention("m");
        if (i === 14) await c.appendBatch("m", c.many(4, 20, 400));
        if (i === 20) await c.roll("m");
      }
      // A pass called with appends and a roll in flight cuts where nextSeq is when it runs.
      await Promise.all([
        c.append("m", c.payload(900)),
        c.enforceRetention("m"),
        c.appendBatch("m", c.many(3, 20, 400)),
        c.roll("m"),
        c.append("m", c.payload(900)),
      ]);
      await c.reopen();
      for (let i = 0; i < 6; i++) await c.append("m", c.payload(900));
      await c.enforceRetention("m");
      await c.close();
    },
  },
  {
    name: "everyN-merkle",
    // A Merkle tree beside the records: its nodes are written unsynced, its head at each seal.
    opts: withLogOptions(everyN(3, 4096, 1024), "merkle", { integrity: "merkle" }),
    async run(c) {
      await c.open();
      for (let round = 0; round < 4; round++) {
        const ps: Promise<unknown>[] = [];
        for (let i = 0; i < 4; i++) ps.push(c.append("t", c.payload(700)));
        ps.push(c.appendBatch("t", c.many(3, 20, 300)));
        await Promise.all(ps);
        if (round === 1) await c.roll("t");
      }
      await c.truncateBefore("t", 8);
      await c.reopen();
      for (let i = 0; i < 5; i++) await c.append("t", c.payload(600));
      await c.close();
    },
  },
  {
    name: "everyN-maxBytes",
    // Active segments are preallocated to 4 KiB: 10,000 bytes keep the active one and one sealed.
    opts: withLogOptions(everyN(3, 4096, 1024), "maxBytes", { retention: { maxBytes: 10_000 } }),
    async run(c) {
      await c.open();
      for (let round = 0; round < 5; round++) {
        const ps: Promise<unknown>[] = [];
        for (let i = 0; i < 5; i++) ps.push(c.append("z", c.payload(900)));
        ps.push(c.appendBatch("z", c.many(2, 20, 500)));
        if (round % 2 === 1) ps.push(c.enforceRetention("z"));
        await Promise.all(ps);
        if (round === 1) await c.sync("z");
      }
      await c.truncateBefore("z", 30);
      await c.reopen();
      for (let i = 0; i < 8; i++) await c.append("z", c.payload(900));
      await c.enforceRetention("z");
      await c.append("z", c.payload(100));
      await c.close();
    },
  },
  {
    name: "always-timer-age",
    // The timer looks every 50 ms (its floor): it rolls an active segment whose first record is
    // 25 ms old, and a later pass deletes a sealed segment whose last record is 40 ms old. Where
    // its calls fall depends on timing, so a reproduction's `--call` may need a few tries.
    opts: withLogOptions(always(4096), "age (timer)", {
      retention: { maxAgeMs: 40 },
      segmentMaxAgeMs: 25,
    }),
    async run(c) {
      await c.open();
      // Quiet gaps: the timer rolls and deletes with no append in flight.
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 3; i++) await c.append("t", c.payload(500));
        await sleep(60);
      }
      // Appends while the timer acts: its rolls and deletions fall between and among them.
      for (let i = 0; i < 12; i++) {
        await c.append("t", c.payload(500));
        if (i % 4 === 3) await c.appendBatch("t", c.many(2, 20, 300));
        await sleep(8);
      }
      await Promise.all([c.roll("t"), c.append("t", c.payload(500))]);
      // Two or more passes: every sealed segment is old, and goes.
      await sleep(120);
      await c.reopen();
      await c.append("t", c.payload(500));
      await sleep(60);
      await c.close();
    },
  },
  {
    name: "everyN-roll",
    opts: everyN(3, 8192, 1024),
    async run(c) {
      await c.open();
      for (let i = 0; i < 5; i++) await c.append("r", c.payload(400));
      await c.roll("r");
      await c.roll("r"); // the active segment is empty: nothing to seal
      await c.appendBatch("r", c.many(4, 20, 300));
      // Rolls called among appends and batches in one turn: each seals what was appended before
      // it, and what follows goes to the next segment.
      await Promise.all([
        c.append("r", c.payload(300)),
        c.roll("r"),
        c.appendBatch("r", c.many(3, 20, 300)),
        c.append("r", c.payload(300)),
        c.roll("r"),
        c.appendBatch("r", c.many(2, 20, 300)),
      ]);
      await c.append("r", c.payload(300)); // not synced: everyN(3) may lose it
      await c.reopen();
      await c.roll("r"); // a recovered active segment
      await c.appendBatch("r", c.many(3, 20, 300));
      await c.truncateBefore("r", 10);
      await c.roll("r");
      await c.close();
    },
  },
  {
    name: "everyN-maxDelay",
    opts: everyNDelay(4, 5, 4096, 1024),
    unavailable: everyNDelayUnavailable,
    note: everyNDelayNote,
    async run(c) {
      // The timer's fdatasyncs are made to fall in quiet gaps (sleeps of several maxDelayMs, with
      // at most 3 records appended before each), so the call sequence does not depend on timing.
      await c.open();
      for (let round = 0; round < 3; round++) {
        const ps: Promise<unknown>[] = [];
        for (let i = 0; i <= round; i++) ps.push(c.append("d", c.payload(500)));
        await Promise.all(ps);
        await sleep(15);
      }
      await c.appendBatch("d", c.many(3, 20, 400));
      await sleep(15);
      // The count trigger: more than n-1 records at once.
      await Promise.all([
        c.append("d", c.payload(300)),
        c.appendBatch("d", c.many(12, 80, 280)),
        c.append("d", c.payload(300)),
      ]);
      await c.appendBatch("d", [c.sized(10, 60), c.sized(4200, 5000)]);
      await c.reopen();
      await c.append("d", c.payload(300));
      await c.appendBatch("d", c.many(2, 20, 300));
      await sleep(15);
      await c.append("d", c.payload(300));
      await c.close();
    },
  },
];

/** One frozen crash point. */
interface Point {
  call: number;
  op: string;
  path: string;
  snap: SimSnapshot;
  promised: Map<string, LogPromise>;
}

/** A violated property, with the line that reproduces it. */
export interface Violation {
  repro: string;
  message: string;
}

/** What one workload run explored. */
export interface RunResult {
  workload: string;
  seed: number;
  /** Platform calls the workload made. */
  calls: number;
  /** Calls that changed the disk (each one a crash point). */
  crashPoints: number;
  /** Crash states generated (crash points x modes x seeds), duplicates included. */
  generated: number;
  /** Distinct crash states (file-system image + what had been promised) reopened and checked. */
  states: number;
  /** Distinct file-system images among them. */
  distinct: number;
  /** Extra states: a second crash at each call of the recovery of a crash state. */
  recoveryStates: number;
  violations: Violation[];
  /** Set when the workload could not run on this code (then nothing was explored). */
  skipped?: string;
  /** The workload's note on how it ran on this code, if any. */
  note?: string;
}

/** Knobs of {@linkcode runWorkload}. */
export interface RunOptions {
  /** Modes to crash in (default: all). */
  modes?: readonly CrashMode[];
  /** Crash seeds per point for the modes that draw random choices (default 2; others get 1). */
  seedsPerMode?: number;
  /** Only this crash point (for reproductions). */
  onlyCall?: number;
  /** Only this crash seed (for reproductions). */
  onlyCrashSeed?: number;
  /** Stop after this many violations (default 20). */
  maxViolations?: number;
  /** Also crash after every call of each recovery and check again (default true). */
  recoveryCrashes?: boolean;
  /**
   * Check property 5, batch atomicity (default true). Off, a torn batch passes as long as it
   * leaves a contiguous prefix (as properties 2-3 allow): to check the other properties on code
   * whose batches are not atomic.
   */
  batchAtomicity?: boolean;
  /** Print every check. */
  verbose?: (line: string) => void;
}

function mix(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

function fingerprint(fs: SimPlatform): string {
  return fs.listFiles().map((p) => {
    const b = fs.fileBytes(p)!;
    return `${p}:${b.length}:${crc32(b)}`;
  }).join("|");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Runs `w` once with `seed`, then crashes, reopens and checks every crash point.
 *
 * @example
 * ```ts
 * import { runWorkload, WORKLOADS } from "./crash_harness.ts";
 * const r = await runWorkload(WORKLOADS[0], 7, { modes: ["torn"] });
 * console.log(r);
 * ```
 */
export async function runWorkload(
  w: Workload,
  seed: number,
  o: RunOptions = {},
): Promise<RunResult> {
  const modes = o.modes ?? CRASH_MODES;
  const seeds = o.seedsPerMode ?? 2;
  const maxViolations = o.maxViolations ?? 20;
  const why = w.unavailable?.() ?? null;
  if (why !== null) {
    return {
      workload: w.name,
      seed,
      calls: 0,
      crashPoints: 0,
      generated: 0,
      states: 0,
      distinct: 0,
      recoveryStates: 0,
      violations: [],
      skipped: why,
    };
  }
  const note = await noteOf(w);
  const sim = new SimPlatform();
  const ctx = new Ctx(sim, w.opts, seed);
  const points: Point[] = [];
  sim.onCall = (call) => {
    if (call.mutates && (o.onlyCall === undefined || call.n === o.onlyCall)) {
      points.push({
        call: call.n,
        op: call.op,
        path: call.path,
        snap: sim.freeze(),
        promised: ctx.capture(),
      });
    }
    ctx.onCall?.(call);
  };
  const result: RunResult = {
    workload: w.name,
    seed,
    calls: 0,
    crashPoints: 0,
    generated: 0,
    states: 0,
    distinct: 0,
    recoveryStates: 0,
    violations: [],
    ...(note === null ? {} : { note }),
  };
  const checks: Checks = { batchAtomicity: o.batchAtomicity ?? true };
  try {
    await w.run(ctx);
  } catch (err) {
    result.violations.push({
      repro: `npm run crash -- --workload ${w.name} --seed ${seed}`,
      message: `the workload itself failed: ${String((err as Error)?.stack ?? err)}`,
    });
  }
  sim.onCall = undefined;
  for (const e of ctx.errors) {
    result.violations.push({
      repro: `npm run crash -- --workload ${w.name} --seed ${seed}`,
      message: e,
    });
  }
  result.calls = sim.calls;
  result.crashPoints = points.length;
  const images = new Set<string>();
  const checked = new Set<string>();
  for (const pt of points) {
    const promised = JSON.stringify([...pt.promised]);
    for (const mode of modes) {
      const n = o.onlyCrashSeed !== undefined || !SEEDED_MODES.has(mode) ? 1 : seeds;
      for (let k = 0; k < n; k++) {
        const crashSeed = o.onlyCrashSeed ?? mix(seed, pt.call, CRASH_MODES.indexOf(mode), k);
        const fs = pt.snap.crash(mode, crashSeed);
        result.generated++;
        // The same image with the same promises is the same check: run it once.
        const image = fingerprint(fs);
        images.add(image);
        const key = `${image}#${promised}`;
        if (checked.has(key)) continue;
        checked.add(key);
        result.states++;
        const repro = `npm run crash -- --workload ${w.name} --seed ${seed} --call ${pt.call} ` +
          `--mode ${mode} --crash-seed ${crashSeed}`;
        const { msg, nested } = await checkState(
          fs,
          w,
          ctx,
          pt,
          mode,
          crashSeed,
          o.recoveryCrashes ?? true,
          checks,
        );
        result.recoveryStates += nested;
        o.verbose?.(
          `call ${pt.call} ${pt.op} ${pt.path} mode=${mode} ${fs.lastCrash?.detail}: ${
            msg ?? "ok"
          }`,
        );
        if (msg) {
          result.violations.push({
            repro,
            message:
              `after call #${pt.call} (${pt.op} ${pt.path}), ${mode} [${fs.lastCrash?.detail}]: ${msg}`,
          });
          if (result.violations.length >= maxViolations) {
            result.distinct = images.size;
            return result;
          }
        }
      }
    }
  }
  result.distinct = images.size;
  return result;
}

/** Each workload's note, computed once per process. */
const notes = new Map<string, Promise<string | null>>();
function noteOf(w: Workload): Promise<string | null> {
  if (!w.note) return Promise.resolve(null);
  let n = notes.get(w.name);
  if (!n) {
    n = w.note().catch((err) => `its probe failed: ${describeErr(err)}`);
    notes.set(w.name, n);
  }
  return n;
}

/** Which optional properties a run checks. */
interface Checks {
  batchAtomicity: boolean;
}

/**
 * Property 7, for a log with integrity on: its Merkle tree has one leaf per seq and matches the
 * records present (`verify` recomputes every leaf and checks every stored node).
 */
async function checkTree(log: Log, when: string): Promise<string | null> {
  if ((log as { integrity?: string }).integrity !== "merkle") return null;
  const r = await log.verify();
  if (r.ok) return null;
  const p = r.problems[0];
  return `property 7: ${log.name}'s tree ${when}: ${p.path} seq ${p.seq}: ${p.reason}`;
}

/** One record read back. */
interface FoundRecord {
  seq: number;
  timestamp: number;
  data: Uint8Array;
}

/** What a reopened log holds. */
interface Found {
  first: number;
  end: number;
  records: FoundRecord[];
}

async function readAll(log: Log): Promise<Found> {
  const first = log.firstSeq;
  const end = log.nextSeq;
  const records: FoundRecord[] = [];
  for await (const r of log.read({ from: first })) {
    records.push({ seq: r.seq, timestamp: r.timestamp, data: r.data.slice() });
  }
  return { first, end, records };
}

/** Opens the store on a crashed file system and checks properties 1-3 for every log. */
async function recoverAndCheck(
  fs: SimPlatform,
  w: Workload,
  ctx: Ctx,
  pt: Point,
  mode: CrashMode,
  checks: Checks,
): Promise<{ store: Store; found: Map<string, Found> } | string> {
  let store: Store;
  try {
    store = await Store.open(DIR, { ...w.opts.open(), platform: fs });
  } catch (err) {
    // Store.open creates the directory if the crash lost it, so any failure is a violation.
    return `property 1: Store.open failed: ${describeErr(err)}`;
  }
  const found = new Map<string, Found>();
  try {
    for (const [name, promised] of pt.promised) {
      let log: Log;
      try {
        log = await store.log(name);
      } catch (err) {
        return `property 1: store.log(${name}) failed: ${describeErr(err)}`;
      }
      const f = await readAll(log);
      const bad = checkLog(name, f, ctx, promised, w.opts, mode, checks) ??
        await checkTree(log, "on reopen");
      if (bad) return bad;
      found.set(name, f);
    }
  } catch (err) {
    return `unexpected error while checking: ${describeErr(err)}`;
  } finally {
    if (found.size !== pt.promised.size) await store.close().catch(() => {});
  }
  return { store, found };
}

/**
 * Checks one crashed state: properties 1-3 on reopen, property 4 (appends after recovery survive a
 * second crash) and, if asked, properties 1-3 again after a crash at each call of the recovery.
 * Returns the first violation (or null) and how many crash-during-recovery states were checked.
 */
async function checkState(
  fs: SimPlatform,
  w: Workload,
  ctx: Ctx,
  pt: Point,
  mode: CrashMode,
  crashSeed: number,
  recoveryCrashes: boolean,
  checks: Checks,
): Promise<{ msg: string | null; nested: number }> {
  const during: SimSnapshot[] = [];
  if (recoveryCrashes) {
    fs.onCall = (c) => {
      if (c.mutates) during.push(fs.freeze());
    };
  }
  const r = await recoverAndCheck(fs, w, ctx, pt, mode, checks);
  fs.onCall = undefined;
  if (typeof r === "string") return { msg: r, nested: 0 };
  const { store, found } = r;
  try {
    // Property 4: the recovered store takes new appends, which survive a second crash.
    const extra = new Map<string, Uint8Array[]>();
    for (const name of pt.promised.keys()) {
      const log = await store.log(name);
      const add = [new Uint8Array([0xa5, name.length]), new Uint8Array(300).fill(0x5a)];
      extra.set(name, add);
      for (let i = 0; i < add.length; i++) {
        const seq = await log.append(add[i]);
        const want = found.get(name)!.end + i;
        if (seq !== want) {
          return {
            msg: `property 4: append after recovery got seq ${seq}, expected ${want}`,
            nested: 0,
          };
        }
      }
      await log.sync();
    }
    const fs2 = fs.crash(mode, mix(crashSeed, 2));
    let store2: Store;
    try {
      store2 = await Store.open(DIR, { ...w.opts.open(), platform: fs2 });
    } catch (err) {
      return {
        msg: `property 4: reopen after the second crash failed: ${describeErr(err)}`,
        nested: 0,
      };
    }
    try {
      for (const [name, f] of found) {
        const log = await store2.log(name);
        const g = await readAll(log);
        const want = [...f.records.map((r) => r.data), ...extra.get(name)!];
        if (g.first !== f.first || g.end !== f.end + extra.get(name)!.length) {
          const msg = `property 4: ${name} after the second crash holds [${g.first}, ${g.end}), ` +
            `expected [${f.first}, ${f.end + extra.get(name)!.length})`;
          return { msg, nested: 0 };
        }
        for (let i = 0; i < want.length; i++) {
          if (!g.records[i] || !equalBytes(g.records[i].data, want[i])) {
            const msg = `property 4: ${name} record ${f.first + i} differs after the second crash`;
            return { msg, nested: 0 };
          }
        }
        // Property 6 again, now across the reopen of the recovery and the appends after it.
        const ts = checkTimestamps(name, g.records, ctx.started, "after the second crash") ??
          await checkTree(log, "after the second crash");
        if (ts) return { msg: ts, nested: 0 };
      }
    } finally {
      await store2.close().catch(() => {});
    }
  } catch (err) {
    return { msg: `unexpected error while checking: ${describeErr(err)}`, nested: 0 };
  } finally {
    await store.close().catch(() => {});
  }
  // A crash in the middle of recovery (while it truncates a torn tail, recreates a segment...):
  // the next open must still satisfy properties 1-3.
  for (let i = 0; i < during.length; i++) {
    const fs3 = during[i].crash(mode, mix(crashSeed, 3, i));
    const r3 = await recoverAndCheck(fs3, w, ctx, pt, mode, checks);
    if (typeof r3 === "string") {
      const msg = `a crash after recovery call ${i + 1}/${during.length} ` +
        `[${fs3.lastCrash?.detail}], then: ${r3}`;
      return { msg, nested: i + 1 };
    }
    await r3.store.close().catch(() => {});
  }
  return { msg: null, nested: during.length };
}

function checkLog(
  name: string,
  f: Found,
  ctx: Ctx,
  p: LogPromise,
  opts: StoreOpts,
  mode: CrashMode,
  checks: Checks,
): string | null {
  const m = ctx.models.get(name)!;
  const { first, end, records } = f;
  // Property 3: a contiguous run, byte-identical to what was appended, no phantoms.
  if (records.length !== end - first) {
    return `property 3: ${name} claims [${first}, ${end}) but read ${records.length} records`;
  }
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r.seq !== first + i) return `property 3: ${name} seq ${r.seq} at position ${first + i}`;
    if (r.seq >= p.attempted) {
      return `property 3: ${name} phantom record ${r.seq} (only ${p.attempted} appended)`;
    }
    if (!equalBytes(r.data, m.data[r.seq])) {
      return `property 3: ${name} record ${r.seq} has different bytes (${r.data.length} vs ${
        m.data[r.seq].length
      })`;
    }
  }
  const ceiling = firstCeiling(opts, p);
  if (first > ceiling) {
    return `property 3: ${name} starts at ${first}, but retention may have removed only the ` +
      `records below ${ceiling} (truncateBefore asked up to ${p.truncCalled}, the running ` +
      `store's oldest segment started at ${p.liveFirst}, ${p.attempted} appended)`;
  }
  // Property 2: what had to survive.
  const resolved = m.resolved.slice(0, p.resolvedLen);
  const missing = resolved.filter((s) => s >= end).length;
  let required = p.syncCovered;
  if (opts.lossBound === 1 || mode === "all") {
    for (const s of resolved) required = Math.max(required, s + 1);
  }
  if (end < required) {
    if (first === end && required <= ceiling) {
      return `property 3: ${name} restarts at seq ${end}, below ${required} records that existed ` +
        `(retention may delete them, but sequence numbers must never be reused)`;
    }
    return `property 2: ${name} ends at ${end} but records below ${required} had to survive ` +
      `(${opts.policy}, syncCovered=${p.syncCovered}, resolved missing=${missing})`;
  }
  if (first < p.removed) {
    return first === end
      ? `property 3: ${name} restarts at seq ${end}, below ${p.removed}, where a resolved ` +
        `truncateBefore/enforceRetention() had left it (sequence numbers must never be reused)`
      : `property 3: ${name} starts at ${first}: records a resolved ` +
        `truncateBefore/enforceRetention() had deleted (all below ${p.removed}) came back`;
  }
  if (opts.lossBound > 1) {
    const unsyncedMissing = resolved.filter((s) => s >= end && s >= p.syncCovered).length;
    if (unsyncedMissing > opts.lossBound - 1) {
      return `property 2: ${name} lost ${unsyncedMissing} resolved records under ${opts.policy}`;
    }
  }
  if (checks.batchAtomicity) {
    const bad = checkBatches(name, f, m, p);
    if (bad) return bad;
  }
  return checkTimestamps(name, records, ctx.started, "after recovery");
}

/**
 * The highest first seq a log may have after a crash at this point (property 3): what the running
 * store had deleted, and no more than `truncateBefore` asked and a `maxRecords` limit allows (age
 * and size cuts depend on the clock and the files: for them only the disk tells).
 */
function firstCeiling(opts: StoreOpts, p: LogPromise): number {
  const r = opts.logOptions?.retention ?? {};
  const byLimits = r.maxAgeMs !== undefined || r.maxBytes !== undefined
    ? Infinity
    : p.attempted - (r.maxRecords ?? p.attempted);
  return Math.min(p.liveFirst, Math.max(p.truncCalled, byLimits));
}

/**
 * Property 5: of every batch issued before the crash, the records present are all of it or none
 * of it. Members are recognised by the identity in their payload. Retention deletes whole
 * segments below a point, so a batch larger than a segment may lose its first records that way;
 * then its first record present must be the log's first, and the rest of the batch must follow.
 */
function checkBatches(name: string, f: Found, m: LogModel, p: LogPromise): string | null {
  const issued = new Map<number, BatchModel>();
  for (const b of m.batches.slice(0, p.batches)) issued.set(b.id, b);
  const present = new Map<number, { tag: BatchTag; at: number }[]>();
  f.records.forEach((r, at) => {
    const tag = batchTag(r.data);
    if (!tag) return;
    const b = issued.get(tag.id);
    if (!b) return; // not a batch of this log issued by then: property 3 reports it as a phantom
    let list = present.get(tag.id);
    if (!list) present.set(tag.id, list = []);
    list.push({ tag, at });
  });
  const resolved = new Set(m.resolved.slice(0, p.resolvedLen));
  for (const [id, list] of present) {
    const b = issued.get(id)!;
    const acked = resolved.has(b.first + b.size - 1) ? "acknowledged" : "not acknowledged";
    const where = `${name} batch ${id} (${b.size} records, seqs ${b.first}..${
      b.first + b.size - 1
    }, ${acked})`;
    const j = list[0].tag.index;
    for (let k = 0; k < list.length; k++) {
      const { tag, at } = list[k];
      if (tag.size !== b.size || tag.index !== j + k || at !== list[0].at + k) {
        return `property 5: ${where}: record ${f.records[at].seq} claims index ${tag.index} of ` +
          `${tag.size}; the batch's records are not in one run, in order`;
      }
    }
    if (j > 0 && !(list[0].at === 0 && f.first > 0)) {
      return `property 5: ${where} is torn: its first ${j} records are missing but ` +
        `${list.length} are present (seqs ${f.records[list[0].at].seq}..), and retention did ` +
        `not remove them: a power cut must leave all of a batch or none of it`;
    }
    if (j + list.length !== b.size) {
      return `property 5: ${where} is torn: ${list.length} of its ${b.size - j} records ` +
        `present (indices ${j}..${j + list.length - 1}); a power cut must leave all of a batch ` +
        `or none of it`;
    }
  }
  return null;
}

/**
 * Property 6: timestamps never go backwards along the log, and none predates the run (a record's
 * timestamp is when it was appended).
 */
function checkTimestamps(
  name: string,
  records: readonly FoundRecord[],
  started: number,
  when: string,
): string | null {
  const latest = Date.now() + 60_000;
  for (let i = 0; i < records.length; i++) {
    const { seq, timestamp } = records[i];
    if (!(timestamp >= started && timestamp <= latest)) {
      return `property 6: ${name} record ${seq} has timestamp ${timestamp}, outside the run ` +
        `(${started}..${latest}) ${when}`;
    }
    if (i > 0 && timestamp < records[i - 1].timestamp) {
      return `property 6: ${name} timestamps go backwards ${when}: record ${seq} has ` +
        `${timestamp}, record ${records[i - 1].seq} before it ${records[i - 1].timestamp}`;
    }
  }
  return null;
}

function describeErr(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  return `${e?.name ?? "Error"}${e?.code ? `[${e.code}]` : ""}: ${e?.message ?? String(err)}`;
}
