/**
 * The relay against real nats-server processes (tests/nats_server.ts): every fault case reads the
 * whole stream back and checks that every record is there exactly once, in order, with its bytes
 * and headers. Faults: the relay `kill -9`ed and restarted (a child process), the server stopped
 * and killed and restarted on the same store, the network cut and black-holed (a TCP proxy), an
 * outage longer than the stream's duplicate window; appends go on throughout.
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { InvalidArgumentError, LockedError, type Log, Store, SyncPolicy } from "../mod.ts";
import { relay } from "../nats.ts";
import { currentRuntime, runtimeCommand } from "./fixtures/runtimes.ts";
import {
  assertExactlyOnce,
  natsHarness,
  type NatsServer,
  readSubject,
  SKIP_NATS,
  sleep,
  waitFor,
} from "./nats_server.ts";

if (SKIP_NATS) console.log(`tests/nats_relay.test.ts: skipped: ${SKIP_NATS}`);

/** Bun gives a test 5 s by default; these start servers and wait out outages. */
const SLOW = { timeout: 60_000 };
const h = natsHarness("nats-relay");
const payload = (seq: number) => `order ${seq} `.padEnd(100, "x");

/** A fresh stream capturing `subjects`, with the given duplicate window. */
async function addStream(nc: NatsConnection, name: string, duplicateWindowMs = 120_000) {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name,
    subjects: [`${name.toLowerCase()}.>`],
    duplicate_window: duplicateWindowMs * 1_000_000,
  });
}

/** A store under a fresh directory, records made durable at once. */
async function openLog(name = "orders"): Promise<{ store: Store; log: Log; dir: string }> {
  const dir = h.tempDir();
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.always() });
  return { store, log: await store.log(name), dir };
}

/** Appends records `from..to-1` (payload(seq)), one batch of `step` at a time. */
async function appendRange(log: Log, from: number, to: number, step = 50): Promise<void> {
  for (let s = from; s < to; s += step) {
    const n = Math.min(step, to - s);
    await log.appendBatch(Array.from({ length: n }, (_, i) => payload(s + i)));
  }
}

/** Waits until the stream holds `count` messages on `subject`. */
async function waitForStream(nc: NatsConnection, stream: string, subject: string, count: number) {
  const jsm = await jetstreamManager(nc);
  await waitFor(`${count} messages on ${subject}`, async () => {
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    return (info.state.subjects?.[subject] ?? 0) >= count;
  }, 30_000);
}

describe("relay into JetStream", { skip: SKIP_NATS }, () => {
  it("publishes every committed record once, with its id, seq and timestamp", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await addStream(nc, "BASIC");
    const { store, log } = await openLog();
    await appendRange(log, 0, 300);
    const r = await relay(log, { connection: nc, stream: "BASIC", subject: "basic.orders" });
    await waitFor("the relay to catch up", () => r.stats.lag === 0 && r.stats.inFlight === 0);
    await appendRange(log, 300, 500); // while it follows
    await waitFor("the relay to catch up again", () => r.stats.lag === 0);
    await r.stop();
    assert.equal(r.stats.published, 500);
    assert.equal(r.stats.resyncs, 1, "no failure, no resume point but the first");
    const msgs = await readSubject(nc, "BASIC", "basic.orders");
    assertExactlyOnce(msgs, log.id, 500, payload);
    const times: number[] = [];
    for await (const rec of log.read()) times.push(rec.timestamp);
    assert.deepEqual(msgs.map((m) => Number(m.headers["Khipu-Timestamp"])), times);

    // A relay started again finds the cursor at the end: nothing is sent twice.
    const again = await relay(log, { connection: nc, stream: "BASIC", subject: "basic.orders" });
    await appendRange(log, 500, 510);
    await waitFor("the new records", () => again.stats.lag === 0 && again.stats.published === 10);
    await again.stop();
    assert.deepEqual([again.stats.duplicates, again.stats.skipped], [0, 0]);
    assertExactlyOnce(await readSubject(nc, "BASIC", "basic.orders"), log.id, 510, payload);
    await store.close();
  });

  it("relays only records that are durable locally", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await addStream(nc, "DURABLE");
    const dir = h.tempDir();
    const store = await Store.open(dir, { syncPolicy: SyncPolicy.osManaged() });
    const log = await store.log("orders");
    await appendRange(log, 0, 100);
    const r = await relay(log, { connection: nc, stream: "DURABLE", subject: "durable.orders" });
    await sleep(300);
    assert.equal(r.stats.published, 0, "nothing fdatasynced yet, nothing relayed");
    await log.sync();
    await waitFor("the synced records", () => r.stats.published === 100);
    await r.stop();
    assertExactlyOnce(await readSubject(nc, "DURABLE", "durable.orders"), log.id, 100, payload);
    await store.close();
  });

  it("keeps at most maxInFlight publishes unacknowledged, and pipelines them", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await addStream(nc, "WINDOW");
    const { store, log } = await openLog();
    await appendRange(log, 0, 3000, 500);
    const r = await relay(log, {
      connection: nc,
      stream: "WINDOW",
      subject: "window.orders",
      maxInFlight: 16,
    });
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, r.stats.inFlight)), 0);
    await waitFor("the relay to catch up", () => r.stats.lag === 0);
    clearInterval(sampler);
    await r.stop();
    assert.ok(most <= 16 && most > 1, `at most 16 in flight, more than one: ${most}`);
    assertExactlyOnce(await readSubject(nc, "WINDOW", "window.orders"), log.id, 3000, payload);
    await store.close();
  });

  it("survives kill -9 of the relay process, restarted twice", SLOW, async () => {
    const server = await h.server();
    const nc = await h.connect(server.port);
    await addStream(nc, "KILL");
    const { store, log, dir } = await openLog();
    const total = 3000;
    const child = async (): Promise<ChildProcess> => {
      const argv = ["relay", dir, "orders", String(server.port), "KILL", "kill.orders"];
      const c = h.child(runtimeCommand(currentRuntime(), "tests/fixtures/nats_child.ts", argv));
      let out = "";
      c.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
      await waitFor("the relay child", () => out.includes("ready"), 20_000);
      return c;
    };
    const writing = appendRange(log, 0, total, 10);
    const jsm = await jetstreamManager(nc);
    const count = async () => (await jsm.streams.info("KILL")).state.messages;
    for (const atLeast of [200, 1200]) {
      const c = await child();
      await waitFor(`${atLeast} messages relayed`, async () => (await count()) >= atLeast);
      c.kill("SIGKILL");
      await new Promise((r) => c.once("exit", r));
    }
    await writing;
    const last = await child();
    await waitForStream(nc, "KILL", "kill.orders", total);
    last.kill("SIGTERM");
    await new Promise((r) => last.once("exit", r));
    assertExactlyOnce(await readSubject(nc, "KILL", "kill.orders"), log.id, total, payload);
    const [cursor] = await log.cursors();
    assert.deepEqual(cursor, { name: "jetstream", position: total, lag: 0 });
    await store.close();
  });

  /** An outage: how it starts, how long it lasts, how it ends. */
  interface Outage {
    begin(): void | Promise<void>;
    ms: number;
    end(): void | Promise<void>;
  }

  /**
   * Relays while a writer appends, through two rounds of `outage`, then checks the whole stream.
   * `via` is the port the relay connects to.
   */
  async function throughFaults(
    name: string,
    server: NatsServer,
    via: number,
    outage: Outage,
  ): Promise<void> {
    const admin = await h.connect(server.port);
    const nc = via === server.port ? admin : await h.connect(via);
    const subject = `${name.toLowerCase()}.orders`;
    await addStream(admin, name);
    const { store, log } = await openLog();
    const r = await relay(log, { connection: nc, stream: name, subject, ackTimeoutMs: 1000 });
    let next = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await appendRange(log, next, next + 20, 20);
        next += 20;
        await sleep(10);
      }
    })();
    for (let round = 1; round <= 2; round++) {
      await waitFor("records relayed", () => r.stats.published > round * 300);
      await outage.begin();
      const appended = next;
      await sleep(outage.ms);
      assert.ok(next > appended, "appends go on during the outage");
      assert.ok(r.stats.lag > 0, "the relay falls behind during the outage");
      await outage.end();
    }
    writing = false;
    await writer;
    await waitFor("the relay to catch up", () => r.stats.lag === 0 && r.stats.inFlight === 0);
    await r.stop();
    assert.ok(
      r.stats.resyncs >= 3,
      `resumed from the stream after each outage: ${r.stats.resyncs}`,
    );
    assertExactlyOnce(await readSubject(admin, name, subject), log.id, next, payload);
    await store.close();
  }

  for (const how of ["stop", "kill"] as const) {
    it(`survives nats-server ${how} and restart, appends going on meanwhile`, SLOW, async () => {
      const server = await h.server();
      await throughFaults(`DOWN${how.toUpperCase()}`, server, server.port, {
        begin: () => how === "stop" ? server.stop() : server.kill(),
        ms: 700,
        end: () => server.start(), // same port, same store directory
      });
    });
  }

  it("survives network loss: connections reset and refused for a while", SLOW, async () => {
    const server = await h.server();
    const proxy = await h.proxy(server.port);
    await throughFaults("NETCUT", server, proxy.port, {
      begin: () => proxy.cut(),
      ms: 700,
      end: () => proxy.restore(),
    });
  });

  it(
    "survives network loss: every byte dropped until the client gives up on its pings",
    SLOW,
    async () => {
      const server = await h.server();
      const proxy = await h.proxy(server.port);
      await throughFaults("NETHOLE", server, proxy.port, {
        begin: () => proxy.blackhole(),
        ms: 1300, // longer than the client's ping timeout (2 x 400 ms)
        end: () => proxy.restore(),
      });
    },
  );

  it(
    "finds its resume point in the stream after an outage longer than the duplicate window",
    SLOW,
    async () => {
      const server = await h.server();
      const nc = await h.connect(server.port);
      await addStream(nc, "WINDOWED", 500);
      const subject = "windowed.orders";
      const { store, log } = await openLog();
      await appendRange(log, 0, 200);
      const first = await relay(log, { connection: nc, stream: "WINDOWED", subject });
      await waitFor("the relay to catch up", () => first.stats.lag === 0);
      await first.stop();
      // As if the relay had died after the stream stored records 50.. but before its cursor moved.
      const cur = await log.cursor("jetstream");
      await cur.reset(50);
      await cur.close();
      await sleep(1200); // the server forgets the message ids (it purges them every window)
      const probe = await jetstream(nc).publish("windowed.probe", "x", { msgID: `${log.id}:60` });
      assert.equal(probe.duplicate, false, "the window is short: deduplication alone would fail");

      await appendRange(log, 200, 250);
      const second = await relay(log, { connection: nc, stream: "WINDOWED", subject });
      await waitFor("the relay to catch up", () => second.stats.lag === 0);
      await second.stop();
      assert.deepEqual(
        [second.stats.skipped, second.stats.published, second.stats.duplicates],
        [150, 50, 0],
      );
      assertExactlyOnce(await readSubject(nc, "WINDOWED", subject), log.id, 250, payload);
      await store.close();
    },
  );

  it(
    "runs examples/relay.ts: writer, relay and a consumer on the stream, twice",
    SLOW,
    async () => {
      const server = await h.server();
      const dir = h.tempDir();
      const runs: string[] = [];
      for (let i = 0; i < 2; i++) {
        const argv = runtimeCommand(currentRuntime(), "examples/relay.ts", [
          `127.0.0.1:${server.port}`,
          dir,
        ]);
        const c = h.child(argv);
        let out = "";
        c.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
        const code = await new Promise((r) => c.once("exit", r));
        assert.equal(code, 0, out);
        runs.push(out);
      }
      const orders = (from: number) =>
        [0, 1, 2].map((i) => `seq ${from + i}: {"order":${from + i},"total":42}`).join("\n");
      assert.deepEqual(runs, [
        `${orders(0)}\nrelayed 3, log lag 0\n`,
        `${orders(3)}\nrelayed 3, log lag 0\n`,
      ]);
    },
  );

  it(
    "refuses a subject holding another log's messages, and a second relay on its cursor",
    SLOW,
    async () => {
      const server = await h.server();
      const nc = await h.connect(server.port);
      await addStream(nc, "SHARED");
      await jetstream(nc).publish("shared.orders", "not a record", { msgID: "someone-else:1" });
      const { store, log } = await openLog();
      await appendRange(log, 0, 10);
      const r = await relay(log, { connection: nc, stream: "SHARED", subject: "shared.orders" });
      await assert.rejects(r.done, (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /a relay needs a subject of its own/);
        return true;
      });
      const held = await relay(log, { connection: nc, stream: "SHARED", subject: "shared.mine" });
      await assert.rejects(
        relay(log, { connection: nc, stream: "SHARED", subject: "shared.mine" }),
        LockedError,
      );
      await held.stop();
      await store.close();
    },
  );
});
