/**
 * khipu-log beyond one machine: {@linkcode relay} ships a log into a NATS JetStream stream exactly
 * once (the log is the transactional outbox), {@linkcode ingest} takes a stream's durable consumer
 * into a log exactly once. This entry point is the only one that needs the NATS client packages
 * (`@nats-io/jetstream`, `@nats-io/nats-core`, and a transport such as `@nats-io/transport-node`);
 * the core (`@khipu/log`) stays dependency-free.
 *
 * @example The envelope an ingested message is kept in (runs without a server)
 * ```ts
 * import { decodeIngested, encodeIngested, messageId } from "@khipu/log/nats";
 * const record = encodeIngested({
 *   stream: "ORDERS",
 *   streamSeq: 3,
 *   subject: "orders.eu",
 *   time: Date.now(),
 *   headers: [["Nats-Msg-Id", messageId("0123456789abcdef0123456789abcdef", 2)]],
 *   data: new TextEncoder().encode("order #3"),
 * });
 * const m = decodeIngested(record);
 * if (m.streamSeq !== 3 || m.headers[0][1].split(":")[1] !== "2") throw new Error("envelope");
 * ```
 *
 * @example Writer, relay and a consumer on the stream (type-checked: it needs a nats-server)
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { relay } from "@khipu/log/nats";
 * import { jetstream, jetstreamManager } from "@nats-io/jetstream";
 * import { connect } from "@nats-io/transport-node";
 * async function outbox(dir: string) {
 *   const connection = await connect({ servers: "127.0.0.1:4222" });
 *   const jsm = await jetstreamManager(connection);
 *   await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
 *   const store = await Store.open(dir, { syncPolicy: SyncPolicy.always() });
 *   const orders = await store.log("orders");
 *   const r = await relay(orders, { connection, stream: "ORDERS", subject: "orders.eu" });
 *   await orders.append("order #1"); // durable, then relayed
 *   const c = await jetstream(connection).consumers.get("ORDERS"); // an ordered consumer
 *   const m = await c.next();
 *   console.log(m?.headers?.get("Khipu-Seq"), m?.string());
 *   await r.stop();
 *   await store.close();
 *   await connection.close();
 * }
 * if (typeof outbox !== "function") throw new Error();
 * ```
 * @module
 */
export { type Relay, relay, type RelayOptions } from "./src/nats/relay.ts";
export { type Ingest, ingest, type IngestOptions } from "./src/nats/ingest.ts";
export type { IngestStats, RelayStats } from "./src/nats/stats.ts";
export {
  decodeIngested,
  encodeIngested,
  type IngestedMessage,
  messageId,
  MSG_ID_HEADER,
  parseMessageId,
  SEQ_HEADER,
  TIMESTAMP_HEADER,
} from "./src/nats/message.ts";
