/**
 * The log as a transactional outbox: a writer appends orders to a local log, the relay ships each
 * one into a NATS JetStream stream exactly once, and a consumer reads them from the stream, on any
 * runtime: `npx tsx examples/relay.ts [nats-url] [dir]`, `deno run -A examples/relay.ts`,
 * `bun run examples/relay.ts` (the store goes in `dir`, default `<tmp>/khipu-relay-example`).
 *
 * It needs a nats-server with JetStream (`nats-server -js`; the default URL is 127.0.0.1:4222) and
 * the NATS client packages (`npm install @nats-io/transport-node @nats-io/jetstream
 * @nats-io/nats-core`). Run it twice: the second run relays only its own new orders, because the
 * relay's cursor lives in the log's directory and its resume point in the stream.
 */
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Store, SyncPolicy } from "../mod.ts";
import { relay } from "../nats.ts";

const url = process.argv[2] ?? "127.0.0.1:4222";
const dir = process.argv[3] ?? join(tmpdir(), "khipu-relay-example");
mkdirSync(dir, { recursive: true });

const connection = await connect({ servers: url });
const jsm = await jetstreamManager(connection);
await jsm.streams.info("ORDERS").catch(() =>
  jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] })
);

const from = (await jsm.streams.info("ORDERS")).state.last_seq + 1; // where this run's orders go

// The writer: a record is durable when its append resolves, whether or not NATS is up.
const store = await Store.open(dir, { syncPolicy: SyncPolicy.always() });
const orders = await store.log("orders");
const first = orders.nextSeq;
for (let i = 0; i < 3; i++) await orders.append(JSON.stringify({ order: first + i, total: 42 }));

// The relay: from its cursor ("jetstream"), each durable record once, in order.
const outbox = await relay(orders, { connection, stream: "ORDERS", subject: "orders.created" });

// A consumer on the stream, anywhere: an ordered consumer from this run's first order on.
const consumer = await jetstream(connection).consumers.get("ORDERS", { opt_start_seq: from });
const seen: string[] = [];
while (seen.length < 3) {
  const m = await consumer.next({ expires: 5000 });
  if (m === null) {
    throw new Error(`no message within 5 s (relay: ${String(outbox.stats.lastError)})`);
  }
  seen.push(`seq ${m.headers?.get("Khipu-Seq")}: ${m.string()}`);
}
await outbox.stop();
console.log(seen.join("\n"));
console.log(`relayed ${outbox.stats.published}, log lag ${outbox.stats.lag}`);
await store.close();
await connection.close();
