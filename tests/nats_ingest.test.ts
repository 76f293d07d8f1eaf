/**
 * The ingest against real nats-server processes (tests/nats_server.ts): each case reads the whole
 * log back and checks that every message of the stream is there exactly once, in stream order,
 * with its subject, headers and bytes. Faults: the ingest `kill -9`ed and restarted (a child
 * process), messages delivered and never stored (an ingest killed between its fetch and its
 * append), messages stored whose acks were lost, the server killed and restarted, the network cut.
 * Last, a log relayed into a stream and ingested back arrives whole.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { InvalidArgumentError, type Log, Store, SyncPolicy } from "../mod.ts";
import { decodeIngested, encodeIngested, ingest, type IngestedMessage, relay } from "../nats.ts";
import { currentRuntime, runtimeCommand } from "./fixtures/runtimes.ts";
import { natsHarness, reconnected, SKIP_NATS, sleep, waitFor } from "./nats_server.ts";

if (SKIP_NATS) console.log(`tests/nats_ingest.test.ts: skipped: ${SKIP_NATS}`);

/** Bun gives a test 5 s by default; these start servers and wait out outages. */
const SLOW = { timeout: 60_000 };
const h = natsHarness("nats-ingest");
const body = (n: number) => `message ${n}`;

/** A stream `name` on `<name>.>` and a durable pull consumer `copy` with a 1 s ack_wait. */
async function setUp(nc: NatsConnection, name: string, maxDeliver = -1): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name.toLowerCase()}.>`] });
  await jsm.consumers.add(name, {
    durable_name: "copy",
    ack_policy: AckPolicy.Explicit,
    ack_wait: 1_000_000_000,
    max_deliver: maxDeliver,
  });
}

/** Publishes messages `from..to-1` on `<stream>.in`, each with an `X-N` header. */
async function publishRange(nc: NatsConnection, stream: string, from: number, to: number) {
  const js = jetstream(nc);
  const acks = [];
  for (let n = from; n < to; n++) {
    const hd = headers();
    hd.set("X-N", String(n));
    acks.push(js.publish(`${stream.toLowerCase()}.in`, body(n), { headers: hd }));
  }
  await Promise.all(acks);
}

async function openLog(dir = h.tempDir()): Promise<{ store: Store; log: Log; dir: string }> {
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged() });
  return { store, log: await store.log("copy"), dir };
}

async function readLog(log: Log): Promise<IngestedMessage[]> {
  const out: IngestedMessage[] = [];
  for await (const r of log.read()) out.push(decodeIngested(r.data, r.seq));
  return out;
}

/** Asserts the log holds stream messages 1..count (published by publishRange) once, in order. */
async function assertIngested(log: Log, stream: string, count: number): Promise<void> {
  const msgs = await readLog(log);
  const seqs = msgs.map((m) => m.streamSeq);
  assert.deepEqual(
    { total: msgs.length, first: seqs[0], last: seqs[seqs.length - 1] },
    { total: count, first: 1, last: count },
  );
  const text = new TextDecoder();
  msgs.forEach((m, i) => {
    assert.equal(m.streamSeq, i + 1, `record ${i} holds stream seq ${m.streamSeq}`);
    assert.equal(m.stream, stream);
    assert.equal(m.subject, `${stream.toLowerCase()}.in`);
    assert.deepEqual(m.headers, [["X-N", String(i)]]);
    assert.equal(text.decode(m.data), body(i));
  });
}

async function consumerState(nc: NatsConnection, stream: string) {
  const info = await (await jetstreamManager(nc)).consumers.info(stream, "copy");
  return { pending: info.num_ack_pending, ackFloor: info.ack_floor.stream_seq };
}

describe("ingest from JetStream", { skip: SKIP_NATS }, () => {
  it("takes every message once, in stream order, and resumes after a stop", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await setUp(nc, "PLAIN");
    await publishRange(nc, "PLAIN", 0, 300);
    const { store, log } = await openLog();
    const first = await ingest(log, { connection: nc, stream: "PLAIN", consumer: "copy" });
    await waitFor("300 appended", () => first.stats.appended === 300);
    await first.stop();
    await publishRange(nc, "PLAIN", 300, 500);
    const second = await ingest(log, { connection: nc, stream: "PLAIN", consumer: "copy" });
    await waitFor("200 more", () => second.stats.appended === 200);
    await second.stop();
    assert.deepEqual(
      [second.stats.duplicates, second.stats.recoveries, second.stats.lastStreamSeq],
      [0, 0, 500],
    );
    await assertIngested(log, "PLAIN", 500);
    assert.deepEqual(await consumerState(nc, "PLAIN"), { pending: 0, ackFloor: 500 });
    await store.close();
  });

  it("waits for messages delivered but never stored, and keeps stream order", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await setUp(nc, "LOST");
    await publishRange(nc, "LOST", 0, 100);
    // An ingest that died after its fetch: 30 messages delivered, never appended nor acked.
    const c = await jetstream(nc).consumers.get("LOST", "copy");
    let fetched = 0;
    for await (const _ of await c.fetch({ max_messages: 30, expires: 2000 })) fetched++;
    assert.equal(fetched, 30);
    await publishRange(nc, "LOST", 100, 150);
    const { store, log } = await openLog();
    const run = await ingest(log, { connection: nc, stream: "LOST", consumer: "copy" });
    await waitFor("150 appended", () => run.stats.appended === 150);
    await run.stop();
    assert.equal(run.stats.recoveries, 1);
    await assertIngested(log, "LOST", 150);
    await store.close();
  });

  it(
    "acknowledges without appending again what the log holds but was never acknowledged",
    SLOW,
    async () => {
      const server = await h.server();
      const nc = await h.connect(server.port);
      await setUp(nc, "UNACKED");
      await publishRange(nc, "UNACKED", 0, 100);
      // An ingest that died after its fdatasync, before its acks: 40 stored, none acknowledged.
      const c = await jetstream(nc).consumers.get("UNACKED", "copy");
      const { store, log } = await openLog();
      for await (const m of await c.fetch({ max_messages: 40, expires: 2000 })) {
        await log.append(encodeIngested({
          stream: "UNACKED",
          streamSeq: m.seq,
          subject: m.subject,
          time: 0,
          headers: [["X-N", m.headers!.get("X-N")]],
          data: m.data,
        }));
      }
      await log.sync();
      const run = await ingest(log, { connection: nc, stream: "UNACKED", consumer: "copy" });
      await waitFor("60 appended", () => run.stats.appended === 60);
      await run.stop();
      assert.equal(run.stats.recoveries, 1);
      // The 40 come back as redeliveries (more may: what the recovery held past its ack_wait).
      assert.ok(run.stats.duplicates >= 40, `${run.stats.duplicates} duplicates`);
      await assertIngested(log, "UNACKED", 100);
      assert.deepEqual(await consumerState(nc, "UNACKED"), { pending: 0, ackFloor: 100 });
      await store.close();
    },
  );

  it("survives kill -9 of the ingest process, restarted twice", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await setUp(nc, "KILL");
    const total = 3000;
    const publishing = publishRange(nc, "KILL", 0, total);
    const dir = h.tempDir();
    await (await Store.open(dir)).close();
    const child = async (): Promise<ChildProcess> => {
      const argv = ["ingest", dir, "copy", String(server.port), "KILL", "copy"];
      const c = h.child(runtimeCommand(currentRuntime(), "tests/fixtures/nats_child.ts", argv));
      let out = "";
      c.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
      await waitFor("the ingest child", () => out.includes("ready"), 20_000);
      return c;
    };
    for (const atLeast of [300, 1500]) {
      const c = await child();
      await waitFor(`${atLeast} acknowledged`, async () => {
        return (await consumerState(nc, "KILL")).ackFloor >= atLeast;
      });
      c.kill("SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
    await publishing;
    const last = await child();
    await waitFor("all acknowledged", async () => {
      return (await consumerState(nc, "KILL")).ackFloor >= total;
    }, 30_000);
    last.kill("SIGTERM");
    await new Promise((r) => last.once("exit", r));
    const { store, log } = await openLog(dir);
    await assertIngested(log, "KILL", total);
    await store.close();
  });

  it(
    "survives nats-server kill -9 and restart, and the network cut, while messages arrive",
    SLOW,
    async () => {
      const server = await h.server();
      const proxy = await h.proxy(server.port);
      const admin = await h.connect(server.port);
      const nc = await h.connect(proxy.port);
      await setUp(admin, "FAULTS");
      const { store, log } = await openLog();
      const run = await ingest(log, {
        connection: nc,
        stream: "FAULTS",
        consumer: "copy",
        batch: 50,
        ackTimeoutMs: 1000,
      });
      let published = 0;
      const publish = async (n: number) => {
        await publishRange(admin, "FAULTS", published, published + n);
        published += n;
      };
      await publish(400);
      await waitFor("some appended", () => run.stats.appended > 100);
      await server.kill();
      await sleep(500);
      await server.start();
      await reconnected(admin);
      await publish(400);
      await waitFor("more appended", () => run.stats.appended > 500);
      proxy.cut();
      await publish(400); // the stream takes them while the ingest is cut off
      await sleep(700);
      proxy.restore();
      await waitFor("all appended", () => run.stats.lastStreamSeq === published, 30_000);
      await run.stop();
      await assertIngested(log, "FAULTS", published);
      await store.close();
    },
  );

  it("takes back a relayed log whole: relay, stream, ingest", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "ROUND", subjects: ["round.>"] });
    await jsm.consumers.add("ROUND", {
      durable_name: "back",
      ack_policy: AckPolicy.Explicit,
      filter_subject: "round.orders",
    });
    const a = await openLog(h.tempDir());
    const b = await openLog(h.tempDir());
    await a.log.appendBatch(Array.from({ length: 400 }, (_, i) => `order ${i}`));
    await a.log.sync();
    const out = await relay(a.log, { connection: nc, stream: "ROUND", subject: "round.orders" });
    const back = await ingest(b.log, { connection: nc, stream: "ROUND", consumer: "back" });
    await waitFor("the round trip", () => back.stats.appended === 400);
    await out.stop();
    await back.stop();
    const text = new TextDecoder();
    const got = (await readLog(b.log)).map((m) => {
      const seq = m.headers.find(([k]) => k === "Khipu-Seq")?.[1];
      return `${seq}=${text.decode(m.data)}`;
    });
    assert.deepEqual(got, Array.from({ length: 400 }, (_, i) => `${i}=order ${i}`));
    await a.store.close();
    await b.store.close();
  });

  it("refuses a consumer that could drop messages, and a log of another stream", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await setUp(nc, "LIMITED", 3);
    const { store, log } = await openLog();
    const limited = await ingest(log, { connection: nc, stream: "LIMITED", consumer: "copy" });
    await assert.rejects(limited.done, (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.match(e.message, /max_deliver 3/);
      return true;
    });
    await log.append(encodeIngested({
      stream: "OTHER",
      streamSeq: 1,
      subject: "other.in",
      time: 0,
      headers: [],
      data: new Uint8Array(0),
    }));
    await assert.rejects(
      ingest(log, { connection: nc, stream: "LIMITED", consumer: "copy" }),
      /holds messages of stream "OTHER"/,
    );
    await store.close();
  });
});
