/**
 * Retention never stalls appends (issue 15): single-append latency (`append` called → resolved,
 * one appender awaiting each) with and without a retention pass running, side by side.
 *
 * Each **window** starts from a fresh log of 100 B records in 4 KiB segments (about 30 records
 * each) holding a backlog of sealed segments, written beforehand under `osManaged()` and closed,
 * then reopened under the measured policy (`always()` or `osManaged()`):
 *
 * - **pass running**: the log is opened with `retention: { maxRecords: 64 }` and
 *   `log.enforceRetention()` starts one pass, which unlinks the backlog (tens of segments, each
 *   unlink made durable by a directory fsync before the next); appends run one after the other
 *   until the pass resolves, so every sample overlaps it. The appends roll over too, and each
 *   rollover queues a background pass, as it would in use.
 * - **no pass**: the same backlog, opened without retention; appends run for as long as the
 *   latest pass-running window of that policy lasted (the warm-up round's at first).
 *
 * Both windows have the same segments on disk and the same rollovers (every ~30 appends), so the
 * only difference is the pass. The four cases (two policies, with and without) run in rounds, the
 * order rotated each round as in `paired.bench.ts`, after one unrecorded warm-up round. Rows give
 * p50, p99 and max over every round's samples pooled, the p99 ratio with/without per round, and
 * what the passes removed. There is no bar: the report gives the ratio and the absolute figures.
 *
 * Run alone (about a minute): `npx tsx bench/retention.bench.ts`,
 * `npx deno run -A bench/retention.bench.ts`, `npx bun bench/retention.bench.ts` (`--smoke`: tiny).
 *
 * @example
 * ```ts
 * import { retentionSuite } from "./retention.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await retentionSuite(rec);
 * const row = rec.get("retention always() pass running 100B");
 * if (!row || !((row.extra?.removedSegmentsMin as number) > 0)) throw new Error("no pass ran");
 * ```
 * @module
 */
import {
  freshDir,
  isMain,
  median,
  payload,
  percentile,
  Recorder,
  removeDir,
  runtimeVersion,
  SMOKE,
} from "./harness.ts";
import { type KhipuPolicy, type KhipuSyncPolicyClass, loadImpls } from "./impls.ts";

/** The slice of the current API this benchmark uses (v1 has no retention). */
interface RetentionLog {
  readonly segmentCount: number;
  append(data: Uint8Array): Promise<number>;
  appendBatch(items: readonly Uint8Array[]): Promise<number[]>;
  enforceRetention(): Promise<{ removedSegments: number }>;
}
interface RetentionStore {
  log(name: string, opts?: { retention?: { maxRecords: number } }): Promise<RetentionLog>;
  close(): Promise<void>;
}
interface RetentionModule {
  Store: {
    open(
      dir: string,
      opts?: { syncPolicy?: KhipuPolicy; segmentBytes?: number },
    ): Promise<RetentionStore>;
  };
  SyncPolicy: KhipuSyncPolicyClass;
}

const LOG = "retention";
const RECORD_BYTES = 100;
/** The smallest segment the store accepts: a rollover every ~30 records of 100 B. */
const SEGMENT_BYTES = 4096;
/** Sealed segments on disk when a window starts: what a pass unlinks. */
const BACKLOG_SEGMENTS = SMOKE ? 8 : 60;
/** Keeps about the two newest segments, so the pass takes the whole backlog. */
const MAX_RECORDS = 64;
/** Measured rounds after the warm-up round. */
const ROUNDS = SMOKE ? 1 : 20;
const DATA = payload(RECORD_BYTES);
/** The backlog is written in batches smaller than a segment (a batch never spans two). */
const FILL_BATCH: Uint8Array[] = Array.from({ length: 10 }, () => DATA);

const POLICIES: readonly { label: string; make: (P: KhipuSyncPolicyClass) => KhipuPolicy }[] = [
  { label: "always()", make: (P) => P.always() },
  { label: "osManaged()", make: (P) => P.osManaged() },
];

/** What one window measured. */
interface Window {
  /** Append latencies, ms. */
  latencies: number[];
  /** Wall time of the window, ms. */
  ms: number;
  /** Segments the explicit pass removed (0 without one). */
  removed: number;
}

/** A fresh log with `BACKLOG_SEGMENTS` sealed segments, closed. */
async function writeBacklog(mod: RetentionModule, dir: string): Promise<void> {
  const store = await mod.Store.open(dir, {
    segmentBytes: SEGMENT_BYTES,
    syncPolicy: mod.SyncPolicy.osManaged(),
  });
  try {
    const log = await store.log(LOG);
    while (log.segmentCount <= BACKLOG_SEGMENTS) await log.appendBatch(FILL_BATCH);
  } finally {
    await store.close();
  }
}

/**
 * One window (module doc): with `pass`, appends while one retention pass runs; without, appends
 * for `noPassMs`.
 */
async function runWindow(
  mod: RetentionModule,
  policy: KhipuPolicy,
  pass: boolean,
  noPassMs: number,
): Promise<Window> {
  const dir = freshDir("retention");
  try {
    await writeBacklog(mod, dir);
    const store = await mod.Store.open(dir, { segmentBytes: SEGMENT_BYTES, syncPolicy: policy });
    try {
      const log = await store.log(LOG, pass ? { retention: { maxRecords: MAX_RECORDS } } : {});
      const latencies: number[] = [];
      let running = pass;
      const t0 = performance.now();
      const retained = pass
        ? log.enforceRetention().finally(() => (running = false))
        : Promise.resolve({ removedSegments: 0 });
      // A failed pass surfaces at the await below; until then it must not count as unhandled.
      retained.catch(() => {});
      do {
        const t = performance.now();
        await log.append(DATA);
        latencies.push(performance.now() - t);
      } while (pass ? running : performance.now() - t0 < noPassMs);
      const ms = performance.now() - t0;
      return { latencies, ms, removed: (await retained).removedSegments };
    } finally {
      await store.close();
    }
  } finally {
    removeDir(dir);
  }
}

/** Latency figures of pooled samples, ms. */
interface Figures {
  n: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

function figures(latencies: readonly number[]): Figures {
  return {
    n: latencies.length,
    mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: Math.max(...latencies),
  };
}

/** One case: a policy, with or without a pass, and its windows so far. */
interface Case {
  policy: (typeof POLICIES)[number];
  pass: boolean;
  windows: Window[];
}

/** The row of a case: `retention always() pass running 100B`. */
function rowName(c: Case): string {
  return `retention ${c.policy.label} ${c.pass ? "pass running" : "no pass"} ${RECORD_BYTES}B`;
}

/** Records a row per case, the pass-running one with its ratios to the no-pass one. */
function record(rec: Recorder, cases: readonly Case[]): void {
  for (const c of cases) {
    const fig = figures(c.windows.flatMap((w) => w.latencies));
    const seconds = c.windows.reduce((a, w) => a + w.ms, 0) / 1000;
    const extra: Record<string, number | string | boolean> = {
      policy: c.policy.label,
      passRunning: c.pass,
      maxNs: fig.max * 1e6,
      windows: c.windows.length,
      windowMsMedian: median(c.windows.map((w) => w.ms)),
      segmentBytes: SEGMENT_BYTES,
      backlogSegments: BACKLOG_SEGMENTS,
    };
    let ratioText = "";
    if (c.pass) {
      const removed = c.windows.map((w) => w.removed);
      const base = cases.find((o) => o.policy === c.policy && !o.pass)!;
      const without = figures(base.windows.flatMap((w) => w.latencies));
      // Round i of each case ran in the same round (the warm-up is not among the windows).
      const perRound = c.windows.map((w, i) =>
        figures(w.latencies).p99 / figures(base.windows[i].latencies).p99
      );
      Object.assign(extra, {
        maxRecords: MAX_RECORDS,
        removedSegmentsMin: Math.min(...removed),
        removedSegmentsMean: removed.reduce((a, b) => a + b, 0) / removed.length,
        p50ToNoPass: fig.p50 / without.p50,
        p99ToNoPass: fig.p99 / without.p99,
        maxToNoPass: fig.max / without.max,
        roundP99RatioMedian: median(perRound),
        roundP99RatioMin: Math.min(...perRound),
        roundP99RatioMax: Math.max(...perRound),
      });
      ratioText = `  p99 x${(fig.p99 / without.p99).toFixed(2)} no pass (rounds ${
        perRound.map((r) => r.toFixed(2)).join(", ")
      }); passes removed ${Math.min(...removed)}-${Math.max(...removed)} segments`;
    }
    rec.add({
      suite: "retention",
      name: rowName(c),
      recordBytes: RECORD_BYTES,
      recordsPerSec: fig.n / seconds,
      avgNs: fig.mean * 1e6,
      p50Ns: fig.p50 * 1e6,
      p99Ns: fig.p99 * 1e6,
      samples: fig.n,
      extra,
    });
    const ms = (x: number) => x.toFixed(2).padStart(7);
    console.log(
      `${rowName(c).padEnd(42)} n ${String(fig.n).padStart(6)}  p50 ${ms(fig.p50)}  p99 ${
        ms(fig.p99)
      }  max ${ms(fig.max)} ms${ratioText}`,
    );
  }
}

/**
 * Runs the rounds of the module doc into `rec`: a row per policy, with and without a pass (suite
 * `retention`, latencies in `p50Ns`/`p99Ns`, `extra.maxNs`, the ratios in the pass row's `extra`).
 *
 * @example
 * ```ts
 * import { retentionSuite } from "./retention.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await retentionSuite(rec);
 * const row = rec.get("retention osManaged() no pass 100B");
 * if (!row || !(row.p99Ns! >= row.p50Ns!)) throw new Error("no osManaged() row");
 * ```
 */
export async function retentionSuite(rec: Recorder): Promise<void> {
  const [impl] = await loadImpls();
  const mod = impl.mod as unknown as RetentionModule;
  const cases: Case[] = POLICIES.flatMap((policy) =>
    [true, false].map((pass) => ({ policy, pass, windows: [] }))
  );
  /** Per policy, how long its latest pass-running window lasted: the no-pass windows' length. */
  const passMs = new Map<string, number>();
  for (let round = -1; round < ROUNDS; round++) {
    // The warm-up round (-1) runs the pass-running cases first, so a no-pass window has a length.
    const order = round < 0
      ? [...cases].sort((a, b) => Number(b.pass) - Number(a.pass))
      : cases.map((_, i) => cases[(i + round) % cases.length]);
    for (const c of order) {
      const w = await runWindow(
        mod,
        c.policy.make(mod.SyncPolicy),
        c.pass,
        passMs.get(c.policy.label) ?? 0,
      );
      if (c.pass) passMs.set(c.policy.label, w.ms);
      if (round >= 0) c.windows.push(w);
    }
  }
  console.log(
    `\n${BACKLOG_SEGMENTS} sealed segments of ${SEGMENT_BYTES} B per window, ${ROUNDS} rounds`,
  );
  record(rec, cases);
}

if (isMain(import.meta.url)) {
  console.log(`append latency with and without a retention pass (${runtimeVersion()})`);
  const t0 = performance.now();
  await retentionSuite(new Recorder());
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
