/**
 * Relay throughput (issue 17): records/s from a local log into a JetStream stream through
 * `relay()` (maxInFlight 256), against a bare publish-and-await-ack loop with the same client, the
 * same connection and the same window of 256 unacknowledged publishes, in the same run.
 *
 * One nats-server (Debian's 2.9, file storage, its own store directory and port: the helper in
 * `tests/nats_server.ts`) serves every case. Per record size (100 B and 1 KiB) the cases run in
 * rounds, their order rotated each round, the stream purged between cases:
 *
 * - **bare**: `js.publish(subject, data)` with up to 256 acks outstanding, a new publish as each
 *   ack frees a slot: the loop a user writes by hand;
 * - **bare + relay headers**: the same loop with what the relay sends on top: `Nats-Msg-Id`,
 *   `Khipu-Seq`, `Khipu-Timestamp` and the expectations (the previous message id; for the first,
 *   the stream and the subject's last sequence), so the server's deduplication and checks are paid
 *   as in the relay;
 * - **relay**: `relay(log, { maxInFlight: 256 })` over a log of N committed records (written and
 *   fdatasynced before the clock starts), timed until the last ack; the cursor commits after each
 *   ack are part of it.
 *
 * Rows give the median records/s over the rounds, each round's figure, and the relay's ratio to
 * both loops (target: >= 0.8x the bare loop). Run alone: `npx tsx bench/relay.bench.ts`,
 * `npx deno run -A bench/relay.bench.ts`, `npx bun bench/relay.bench.ts` (`--smoke`: tiny). Needs
 * nats-server on PATH (`apt-get install nats-server`); without it the rows are skipped.
 *
 * @example
 * ```ts
 * import { relaySuite } from "./relay.bench.ts";
 * import { Recorder } from "./harness.ts";
 * const rec = new Recorder();
 * await relaySuite(rec);
 * const row = rec.get("relay relay() 100B");
 * if (!row || !(row.skipped || (row.recordsPerSec ?? 0) > 0)) throw new Error("no relay row");
 * ```
 * @module
 */
import { jetstream, type JetStreamClient, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { Store, SyncPolicy } from "../mod.ts";
import { relay } from "../nats.ts";
import { connectTo, freePort, NATS_SERVER, NatsServer, sleep } from "../tests/nats_server.ts";
import {
  freshDir,
  isMain,
  median,
  payload,
  QUICK,
  RECORD_SIZES,
  Recorder,
  removeDir,
  runtimeVersion,
  SMOKE,
} from "./harness.ts";

/** Records per case and round. */
const RECORDS = SMOKE ? 1000 : QUICK ? 10_000 : 30_000;
/** Rounds per record size (the first is a warm-up, not recorded). */
const ROUNDS = SMOKE ? 2 : 4;
/** Unacknowledged publishes at most, for the loops and the relay alike. */
const WINDOW = 256;
const STREAM = "BENCH";

type Case = "bare" | "bare + relay headers" | "relay()";
const CASES: readonly Case[] = ["bare", "bare + relay headers", "relay()"];

/** Publishes `n` records with at most WINDOW unacknowledged; `opts(i)` gives each one's options. */
async function publishLoop(
  js: JetStreamClient,
  subject: string,
  data: Uint8Array,
  n: number,
  opts: (i: number) => Parameters<JetStreamClient["publish"]>[2],
): Promise<number> {
  let inFlight = 0;
  let wake: (() => void) | null = null;
  let failure: unknown = null;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    while (inFlight >= WINDOW) await new Promise<void>((r) => (wake = r));
    if (failure) throw failure;
    inFlight++;
    js.publish(subject, data, opts(i)).then(
      () => {
        inFlight--;
        wake?.();
      },
      (err) => {
        failure = err;
        inFlight--;
        wake?.();
      },
    );
  }
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  if (failure) throw failure;
  return n / ((performance.now() - t0) / 1000);
}

/** The relay over a log of `n` committed records, timed from start to the last ack. */
async function relayRun(
  nc: NatsConnection,
  subject: string,
  data: Uint8Array,
  n: number,
): Promise<number> {
  const dir = freshDir("relay");
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged() });
  try {
    const log = await store.log("outbox");
    for (let i = 0; i < n; i += 1000) {
      await log.appendBatch(Array.from({ length: Math.min(1000, n - i) }, () => data));
    }
    await log.sync();
    const t0 = performance.now();
    const r = await relay(log, { connection: nc, stream: STREAM, subject, maxInFlight: WINDOW });
    while (r.stats.published < n) await sleep(1);
    const rate = n / ((performance.now() - t0) / 1000);
    await r.stop();
    if (r.stats.duplicates !== 0 || r.stats.resyncs !== 1) {
      throw new Error(`relay bench: a clean run resumed: ${JSON.stringify(r.stats)}`);
    }
    return rate;
  } finally {
    await store.close();
    removeDir(dir);
  }
}

/**
 * Runs the suite: one nats-server, then per record size the three cases in rotated rounds.
 *
 * @example
 * ```ts
 * import { relaySuite } from "./relay.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await relaySuite(new Recorder());
 * ```
 */
export async function relaySuite(rec: Recorder): Promise<void> {
  if (NATS_SERVER === null) {
    for (const size of RECORD_SIZES) {
      for (const c of CASES) {
        rec.add({
          suite: "relay",
          name: `relay ${c} ${label(size)}`,
          recordBytes: size,
          skipped: "nats-server is not installed",
        });
      }
    }
    return;
  }
  const storeDir = freshDir("nats");
  const server = new NatsServer(await freePort(), storeDir);
  await server.start();
  const nc = await connectTo(server.port);
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: ["bench.>"] });
    const js = jetstream(nc);
    let run = 0;
    for (const size of RECORD_SIZES) {
      const data = payload(size);
      const rates = new Map<Case, number[]>(CASES.map((c) => [c, []]));
      for (let round = 0; round < ROUNDS; round++) {
        const order = CASES.map((_, i) => CASES[(i + round) % CASES.length]);
        for (const c of order) {
          const subject = `bench.r${++run}`;
          const rate = c === "relay()"
            ? await relayRun(nc, subject, data, RECORDS)
            : await publishLoop(js, subject, data, RECORDS, (i) => {
              if (c === "bare") return undefined;
              const h = headers();
              h.set("Khipu-Seq", String(i));
              h.set("Khipu-Timestamp", String(Date.now()));
              const id = `bench${run}:${i}`;
              const expect = i === 0
                ? { streamName: STREAM, lastSubjectSequence: 0 }
                : { lastMsgID: `bench${run}:${i - 1}` };
              return { msgID: id, headers: h, expect };
            });
          if (round > 0) rates.get(c)!.push(rate);
          await jsm.streams.purge(STREAM);
        }
      }
      const mid = (c: Case) => median(rates.get(c)!);
      for (const c of CASES) {
        const extra: Record<string, number> = { records: RECORDS, window: WINDOW };
        if (c === "relay()") {
          extra.ratioToBare = mid("relay()") / mid("bare");
          extra.ratioToBareWithHeaders = mid("relay()") / mid("bare + relay headers");
        }
        rec.add({
          suite: "relay",
          name: `relay ${c} ${label(size)}`,
          recordBytes: size,
          recordsPerSec: mid(c),
          mbPerSec: (mid(c) * size) / 1e6,
          rounds: rates.get(c)!.map(Math.round),
          samples: rates.get(c)!.length,
          extra,
        });
      }
      const ratio = rec.get(`relay relay() ${label(size)}`)?.extra?.ratioToBare as number;
      console.log(`relay ${label(size)}: relay() / bare = ${ratio.toFixed(2)}`);
    }
  } finally {
    await nc.close();
    await server.kill();
    removeDir(storeDir);
  }
}

function label(size: number): string {
  return size >= 1024 ? `${size / 1024}KiB` : `${size}B`;
}

if (isMain(import.meta.url)) {
  console.log(`relay throughput (${runtimeVersion()})`);
  const rec = new Recorder();
  await relaySuite(rec);
  rec.printTable();
}
