/**
 * Follow latency (issue 14): how long after a writer's `append` resolves a follower yields the
 * record, for three followers of the same append stream, side by side:
 *
 * - **in-process**: `log.follow()` in the writer's process;
 * - **read-only**: a child process of the same runtime with `Store.open(dir, { readOnly: true })`
 *   following with `ro.log(name).follow()`;
 * - **read-only committed**: another such child with `follow({ committed: true })`.
 *
 * Each under `SyncPolicy.always()` and `SyncPolicy.osManaged()`, with 100 B appends **paced** (one
 * at a time, 2-5 ms apart) and in **bursts** (50 concurrent appends every 100 ms). Under
 * `osManaged()` nothing is fdatasynced before `sync()`/`close()`, so a committed follower would
 * wait for ever: that follower runs under `always()` only. Rows give p50, p99, max and the ratios
 * to the in-process follower; the target is p99 <= 50 ms.
 *
 * **Clock.** Every process stamps events with `performance.timeOrigin + performance.now()`: the
 * same wall clock on one machine, at sub-millisecond resolution, and no message is on the measured
 * path (an echo over stdout would add a pipe hop and the writer's event-loop delay, largest in
 * bursts, to every sample). The children send their stamps when a case ends. Before the cases,
 * 30 ping-pongs per child estimate its clock offset (child minus writer, at the fastest round trip,
 * good to half of it); rows carry it, and it is not subtracted: it checks the shared clock, which
 * on Linux is one `CLOCK_REALTIME`.
 *
 * **Idle CPU.** With the writer open and nothing appended, one child follows (waiting) while the
 * other sits idle with no store open, both for 5 s; each reports `process.cpuUsage()` over the
 * window. No busy polling means the follower costs about what the idle process costs: the
 * directory watch wakes it only on changes, and the fallback poll (every 500 ms) is a mark read
 * and a directory listing.
 *
 * Run alone (under a minute each): `npx tsx bench/follow.bench.ts`,
 * `npx deno run -A bench/follow.bench.ts`, `npx bun bench/follow.bench.ts` (`--smoke`: tiny).
 *
 * @example
 * ```ts
 * import { followSuite } from "./follow.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await followSuite(rec);
 * if (!rec.get("follow idle read-only follower cpu")) throw new Error("no idle row");
 * ```
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import * as readline from "node:readline";
import { fileURLToPath } from "node:url";
import {
  freshDir,
  isMain,
  payload,
  percentile,
  Recorder,
  removeDir,
  RUNTIME,
  runtimeVersion,
  SMOKE,
} from "./harness.ts";
import { type KhipuPolicy, type KhipuSyncPolicyClass, loadImpls } from "./impls.ts";

/** The slice of the current API this benchmark uses (v1 has no read-only stores). */
interface FollowLog {
  readonly nextSeq: number;
  append(data: Uint8Array): Promise<number>;
  follow(opts: { from?: number; signal?: AbortSignal; committed?: boolean }): AsyncIterable<{
    seq: number;
    data: Uint8Array;
  }>;
}
interface FollowStore {
  log(name: string): Promise<FollowLog>;
  close(): Promise<void>;
}
interface FollowModule {
  Store: {
    open(
      dir: string,
      opts?: { syncPolicy?: KhipuPolicy; readOnly?: boolean },
    ): Promise<FollowStore>;
  };
  SyncPolicy: KhipuSyncPolicyClass;
}

const LOG = "follow";
const RECORD_BYTES = 100;
/** Paced appends per case, and the pause after each (uniform in [min, max) ms). */
const PACED = SMOKE ? 20 : 500;
const PACE_MIN_MS = 2;
const PACE_MAX_MS = 5;
/** Bursts per case, appends in flight per burst, pause between bursts. */
const BURSTS = SMOKE ? 2 : 20;
const BURST_SIZE = 50;
const BURST_GAP_MS = 100;
/** Paced appends before the measured cases of a store (JIT, first watch, page cache). */
const WARMUP = SMOKE ? 5 : 50;
/** After every follower is iterating, before the first append: their watches are set up. */
const SETTLE_MS = 200;
const IDLE_MS = SMOKE ? 500 : 5_000;
const PINGS = 30;
/** A case whose followers have not seen every record this long after the last append fails. */
const CASE_TIMEOUT_MS = 20_000;
const TARGET_P99_MS = 50;

/** The one clock every process of the benchmark stamps with (see the module doc). */
function clock(): number {
  return performance.timeOrigin + performance.now();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Messages from the writer to a child. */
type ToChild =
  | { type: "ping" }
  | { type: "follow"; dir: string; from: number; count: number; committed: boolean }
  | { type: "idle"; dir: string; ms: number; follow: boolean };

/** Messages from a child to the writer, one JSON object a line on its stdout. */
type FromChild =
  | { type: "pong"; t: number }
  | { type: "ready" }
  | { type: "done"; at: number[] }
  | { type: "idle"; userUs: number; systemUs: number; wallMs: number };

/** The argv that runs this file again, as a child, on the runtime running this process. */
function childCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  // tsx (and --expose-gc from bench/main.ts) live in execArgv; Deno needs its `run -A`.
  if (RUNTIME === "deno") return [process.execPath, "run", "-A", self, "--child"];
  return [process.execPath, ...process.execArgv, self, "--child"];
}

/** A follower process, driven over stdin/stdout. */
class Child {
  readonly #proc: ChildProcess;
  readonly #inbox: FromChild[] = [];
  #wake: (() => void) | null = null;
  #exit: Error | null = null;

  constructor() {
    const [cmd, ...args] = childCommand();
    this.#proc = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
    const lines = readline.createInterface({ input: this.#proc.stdout! });
    lines.on("line", (line) => {
      this.#inbox.push(JSON.parse(line) as FromChild);
      this.#wake?.();
    });
    this.#proc.on("exit", (code, signal) => {
      this.#exit = new Error(`follower process exited (${code ?? signal})`);
      this.#wake?.();
    });
  }

  send(msg: ToChild): void {
    this.#proc.stdin!.write(JSON.stringify(msg) + "\n");
  }

  /** The next message, which must be of `type`. */
  async next<T extends FromChild["type"]>(
    type: T,
    timeoutMs = CASE_TIMEOUT_MS,
  ): Promise<Extract<FromChild, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (this.#inbox.length === 0) {
      if (this.#exit) throw this.#exit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`follower process: no "${type}" within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    const msg = this.#inbox.shift()!;
    if (msg.type !== type) throw new Error(`follower process sent "${msg.type}", not "${type}"`);
    return msg as Extract<FromChild, { type: T }>;
  }

  /** Child clock minus this one, in ms, from the fastest of `PINGS` round trips, and its bound. */
  async clockOffset(): Promise<{ offsetMs: number; boundMs: number }> {
    let best = { offsetMs: NaN, boundMs: Infinity };
    for (let i = 0; i < PINGS; i++) {
      const t0 = clock();
      this.send({ type: "ping" });
      const { t } = await this.next("pong");
      const t1 = clock();
      if ((t1 - t0) / 2 < best.boundMs) {
        best = { offsetMs: t - (t0 + t1) / 2, boundMs: (t1 - t0) / 2 };
      }
    }
    return best;
  }

  /** Ends the child (closing stdin ends it) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.#exit) return;
    const exited = new Promise<void>((resolve) => this.#proc.once("exit", () => resolve()));
    this.#proc.stdin!.end();
    await exited;
  }
}

/**
 * Yield times of the `count` records from `from` on, each checked; `started` runs once the
 * iteration has begun (the follower is reading or waiting).
 */
async function stampYields(
  records: AsyncIterable<{ seq: number; data: Uint8Array }>,
  from: number,
  count: number,
  started: () => void = () => {},
): Promise<number[]> {
  const it = records[Symbol.asyncIterator]();
  const at = new Array<number>(count);
  const first = it.next();
  started();
  let n = 0;
  for (let step = await first; !step.done; step = await it.next()) {
    at[n] = clock();
    const { seq, data } = step.value;
    if (seq !== from + n || data.length !== RECORD_BYTES) {
      throw new Error(`follower: record ${from + n} came as seq ${seq}, ${data.length} B`);
    }
    if (++n === count) break;
  }
  await it.return?.();
  if (n < count) throw new Error(`follower: the log ended after ${n} of ${count} records`);
  return at;
}

type Send = (msg: FromChild) => void;

/** A child's `follow`: a read-only store follows one case, then sends the yield times. */
async function followInChild(
  mod: FollowModule,
  msg: Extract<ToChild, { type: "follow" }>,
  send: Send,
): Promise<void> {
  const ro = await openReadOnly(mod, msg.dir);
  try {
    const log = await ro.log(LOG);
    const records = log.follow({ from: msg.from, committed: msg.committed });
    const at = await stampYields(records, msg.from, msg.count, () => send({ type: "ready" }));
    send({ type: "done", at });
  } finally {
    await ro.close();
  }
}

/** A child's `idle`: its CPU over `ms`, with a read-only follower waiting or with no store open. */
async function idleInChild(
  mod: FollowModule,
  msg: Extract<ToChild, { type: "idle" }>,
  send: Send,
): Promise<void> {
  const stop = new AbortController();
  const ro = msg.follow ? await openReadOnly(mod, msg.dir) : undefined;
  try {
    let following: Promise<void> | undefined;
    if (ro) {
      const log = await ro.log(LOG);
      following = (async () => {
        for await (const r of log.follow({ from: log.nextSeq, signal: stop.signal })) {
          throw new Error(`idle follower got record ${r.seq}: nothing was appended`);
        }
      })();
      await sleep(SETTLE_MS);
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(msg.ms);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    stop.abort();
    await following;
    send({ type: "idle", userUs: cpu.user, systemUs: cpu.system, wallMs });
  } finally {
    await ro?.close();
  }
}

/** The follower side: runs in a child process, one request a line on stdin, until it closes. */
async function childMain(): Promise<void> {
  const [impl] = await loadImpls();
  const mod = impl.mod as unknown as FollowModule;
  const send: Send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const msg = JSON.parse(line) as ToChild;
    if (msg.type === "ping") send({ type: "pong", t: clock() });
    else if (msg.type === "follow") await followInChild(mod, msg, send);
    else await idleInChild(mod, msg, send);
  }
}

function openReadOnly(mod: FollowModule, dir: string): Promise<FollowStore> {
  return mod.Store.open(dir, { readOnly: true });
}

/** One follower's view of a case. */
interface Follower {
  label: string;
  /** Yield times by record, index 0 = the case's first seq. */
  at: number[];
}

/** Latency figures of one follower in one case, in ms (negative: yielded before the resolve). */
interface Figures {
  p50: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
  n: number;
  /** Records yielded before their append resolved. */
  early: number;
}

/** Figures of `at[i] - since[i]`. */
function figures(since: readonly number[], at: readonly number[]): Figures {
  const lat = at.map((t, i) => t - since[i]);
  return {
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    min: Math.min(...lat),
    max: Math.max(...lat),
    mean: lat.reduce((a, b) => a + b, 0) / lat.length,
    n: lat.length,
    early: lat.filter((x) => x < 0).length,
  };
}

/** `x / base`, or undefined where a ratio of latencies says nothing (either is not positive). */
function ratio(x: number, base: number): number | undefined {
  return x > 0 && base > 0 ? x / base : undefined;
}

/** When each append of a case was called and when it resolved, index 0 = the case's first seq. */
interface Appends {
  calledAt: number[];
  resolvedAt: number[];
}

/** Appends `count` records from seq `from` on in some pattern, stamping each into `appends`. */
type Pattern = (log: FollowLog, from: number, count: number, appends: Appends) => Promise<void>;

const record = payload(RECORD_BYTES);

async function appendOne(log: FollowLog, from: number, appends: Appends): Promise<void> {
  const called = clock();
  const seq = await log.append(record);
  appends.resolvedAt[seq - from] = clock();
  appends.calledAt[seq - from] = called;
}

const paced: Pattern = async (log, from, count, appends) => {
  let x = 0x2545f491;
  for (let i = 0; i < count; i++) {
    await appendOne(log, from, appends);
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    await sleep(PACE_MIN_MS + (x % 1000) / 1000 * (PACE_MAX_MS - PACE_MIN_MS));
  }
};

const bursts: Pattern = async (log, from, count, appends) => {
  for (let sent = 0; sent < count; sent += BURST_SIZE) {
    const n = Math.min(BURST_SIZE, count - sent);
    await Promise.all(Array.from({ length: n }, () => appendOne(log, from, appends)));
    await sleep(BURST_GAP_MS);
  }
};

/**
 * Runs one case: the in-process follower and every child follow from the log's next seq while
 * `pattern` appends `count` records. Returns the resolve times and each follower's yield times.
 */
async function runCase(
  log: FollowLog,
  dir: string,
  children: readonly { child: Child; label: string; committed: boolean }[],
  count: number,
  pattern: Pattern,
): Promise<{ appends: Appends; followers: Follower[] }> {
  const from = log.nextSeq;
  const local = stampYields(log.follow({ from }), from, count);
  // Its failure surfaces at the await below; until then it must not count as unhandled.
  local.catch(() => {});
  for (const c of children) {
    c.child.send({ type: "follow", dir, from, count, committed: c.committed });
  }
  for (const c of children) await c.child.next("ready");
  await sleep(SETTLE_MS);
  const appends: Appends = { calledAt: new Array(count), resolvedAt: new Array(count) };
  await pattern(log, from, count, appends);
  const followers: Follower[] = [{ label: "in-process", at: await local }];
  for (const c of children) followers.push({ label: c.label, at: (await c.child.next("done")).at });
  return { appends, followers };
}

/** The sync policies measured, and whether a committed follower can see anything under each. */
const POLICIES: readonly {
  label: string;
  make: (P: KhipuSyncPolicyClass) => KhipuPolicy;
  syncs: boolean;
}[] = [
  { label: "always()", make: (P) => P.always(), syncs: true },
  { label: "osManaged()", make: (P) => P.osManaged(), syncs: false },
];

const PATTERNS: readonly { label: string; run: Pattern; count: number }[] = [
  { label: `paced ${PACE_MIN_MS}-${PACE_MAX_MS}ms`, run: paced, count: PACED },
  { label: `bursts of ${BURST_SIZE}`, run: bursts, count: BURSTS * BURST_SIZE },
];

/** One printed line of a case: a label, then p50, p99, min and max in ms. */
function line(label: string, fig: Figures): string {
  const ms = (x: number) => x.toFixed(2).padStart(7);
  return `  ${label.padEnd(20)} p50 ${ms(fig.p50)}  p99 ${ms(fig.p99)}  min ${ms(fig.min)}  max ${
    ms(fig.max)
  } ms`;
}

/** Adds a row per follower of a case (the first is the in-process one) and prints them. */
function reportCase(
  rec: Recorder,
  name: string,
  appends: Appends,
  followers: readonly Follower[],
  clockExtra: Record<string, number>,
): void {
  const base = figures(appends.resolvedAt, followers[0].at);
  const append = figures(appends.calledAt, appends.resolvedAt);
  console.log(line("append call→resolve", append));
  for (const f of followers) {
    const fig = f === followers[0] ? base : figures(appends.resolvedAt, f.at);
    const r50 = ratio(fig.p50, base.p50), r99 = ratio(fig.p99, base.p99);
    const met = fig.p99 <= TARGET_P99_MS;
    rec.add({
      suite: "follow",
      name: `${name} ${f.label}`,
      recordBytes: RECORD_BYTES,
      avgNs: fig.mean * 1e6,
      p50Ns: fig.p50 * 1e6,
      p99Ns: fig.p99 * 1e6,
      samples: fig.n,
      extra: {
        minNs: fig.min * 1e6,
        maxNs: fig.max * 1e6,
        yieldedBeforeResolve: fig.early,
        targetP99Met: met,
        ...(r50 === undefined ? {} : { p50ToInProcess: r50 }),
        ...(r99 === undefined ? {} : { p99ToInProcess: r99 }),
        ...(f === followers[0]
          ? { appendP50Ns: append.p50 * 1e6, appendP99Ns: append.p99 * 1e6 }
          : clockExtra),
      },
    });
    const x = (r: number | undefined) => r === undefined ? "-" : `x${r.toFixed(1)}`;
    console.log(
      line(f.label, fig) + `  early ${fig.early}/${fig.n}` +
        (f === followers[0] ? "" : `  vs in-process ${x(r50)}/${x(r99)}`) +
        `  p99 <= ${TARGET_P99_MS} ms: ${met ? "yes" : "NO"}`,
    );
  }
}

/**
 * CPU over `IDLE_MS` with the writer open and nothing appended: `follower` follows (waiting),
 * `idle` has no store open, for comparison.
 */
async function measureIdle(
  rec: Recorder,
  dir: string,
  follower: Child,
  idle: Child,
): Promise<void> {
  follower.send({ type: "idle", dir, ms: IDLE_MS, follow: true });
  idle.send({ type: "idle", dir, ms: IDLE_MS, follow: false });
  const busy = await follower.next("idle", IDLE_MS + CASE_TIMEOUT_MS);
  const calm = await idle.next("idle", IDLE_MS + CASE_TIMEOUT_MS);
  const us = (m: { userUs: number; systemUs: number }) => m.userUs + m.systemUs;
  const percent = us(busy) / 10 / busy.wallMs;
  rec.add({
    suite: "follow",
    name: "follow idle read-only follower cpu",
    recordBytes: 0,
    samples: 1,
    extra: {
      windowMs: busy.wallMs,
      cpuUs: us(busy),
      userUs: busy.userUs,
      systemUs: busy.systemUs,
      cpuPercent: percent,
      idleProcessCpuUs: us(calm),
    },
  });
  console.log(
    `\nidle ${(busy.wallMs / 1000).toFixed(1)} s, writer open, nothing appended: read-only ` +
      `follower ${(us(busy) / 1000).toFixed(1)} ms CPU (${percent.toFixed(3)} %), ` +
      `an idle process without a store ${(us(calm) / 1000).toFixed(1)} ms CPU`,
  );
}

/**
 * Runs the follow latency and idle CPU benchmark of the module doc into `rec` (rows of suite
 * `follow`, latencies in `p50Ns`/`p99Ns`).
 *
 * @example
 * ```ts
 * import { followSuite } from "./follow.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await followSuite(rec);
 * const row = rec.get("follow always() paced 2-5ms read-only");
 * if (!row || !(row.p99Ns! >= row.p50Ns!)) throw new Error("no read-only row");
 * ```
 */
export async function followSuite(rec: Recorder): Promise<void> {
  const [impl] = await loadImpls();
  const mod = impl.mod as unknown as FollowModule;
  const plain = new Child();
  const committed = new Child();
  const dirs: string[] = [];
  try {
    const offsets = [await plain.clockOffset(), await committed.clockOffset()];
    for (const [i, o] of offsets.entries()) {
      console.log(
        `follower process ${i + 1}: clock offset ${o.offsetMs.toFixed(3)} ms ± ${
          o.boundMs.toFixed(3)
        } ms`,
      );
    }
    const clockExtra = {
      clockOffsetMs: Math.max(...offsets.map((o) => Math.abs(o.offsetMs))),
      clockBoundMs: Math.max(...offsets.map((o) => o.boundMs)),
    };
    for (const [p, policy] of POLICIES.entries()) {
      const dir = freshDir(`follow-${policy.label}`);
      dirs.push(dir);
      const store = await mod.Store.open(dir, { syncPolicy: policy.make(mod.SyncPolicy) });
      try {
        const log = await store.log(LOG);
        const children = [
          { child: plain, label: "read-only", committed: false },
          ...(policy.syncs
            ? [{ child: committed, label: "read-only committed", committed: true }]
            : []),
        ];
        await runCase(log, dir, children, WARMUP, paced);
        for (const pattern of PATTERNS) {
          const { appends, followers } = await runCase(
            log,
            dir,
            children,
            pattern.count,
            pattern.run,
          );
          console.log(
            `\n${policy.label} ${pattern.label} (${pattern.count} appends of ${RECORD_BYTES} B)`,
          );
          reportCase(
            rec,
            `follow ${policy.label} ${pattern.label}`,
            appends,
            followers,
            clockExtra,
          );
        }
        if (p === POLICIES.length - 1) await measureIdle(rec, dir, plain, committed);
      } finally {
        await store.close();
      }
    }
  } finally {
    await Promise.all([plain.close(), committed.close()]);
    for (const d of dirs) removeDir(d);
  }
}

if (process.argv.includes("--child")) {
  await childMain();
} else if (isMain(import.meta.url)) {
  console.log(`follow latency (${runtimeVersion()})`);
  const t0 = performance.now();
  await followSuite(new Recorder());
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
