// Test helpers for the NATS relay and ingest (not itself a test file): real nats-server processes
// on free loopback ports, each with its own store directory; a TCP proxy that can cut or black-hole
// the network; child processes; and reading a whole stream back. Everything started here is bounded
// in time and killed in `after()`, even when a test fails.
import { after } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { childEnv } from "./helpers.ts";
import { ROOT } from "./fixtures/runtimes.ts";

/** The nats-server executable on PATH, or null (`.ci/run` installs Debian's). */
export const NATS_SERVER: string | null = (process.env.PATH ?? "").split(delimiter)
  .concat(["/usr/sbin", "/usr/bin"])
  .map((d) => join(d, "nats-server"))
  .find((p) => existsSync(p)) ?? null;

/** Why the NATS tests cannot run here, or false; in CI (which installs it) they never skip. */
export const SKIP_NATS: string | false = NATS_SERVER === null && process.env.CI !== "true"
  ? "nats-server is not installed (apt-get install nats-server)"
  : false;

/** A loopback port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Waits for `cond` (polled every 10 ms) or fails after `ms` with `what`. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 15_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A nats-server with JetStream, on its own port and store directory. */
export class NatsServer {
  /** Its client port on 127.0.0.1. */
  readonly port: number;
  /** Its JetStream store directory (kept across restarts). */
  readonly storeDir: string;
  #proc: ChildProcess | null = null;
  #log = "";

  constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#proc !== null;
  }

  /** Starts it (again: same port, same store) and waits until it accepts clients. */
  async start(): Promise<void> {
    assert.equal(this.#proc, null, "nats-server already running");
    if (NATS_SERVER === null) throw new Error("nats-server is not installed (.ci/run installs it)");
    const args = ["-js", "-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir];
    const proc = spawn(NATS_SERVER, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.#proc = proc;
    this.#log = "";
    proc.stderr!.on("data", (b: Uint8Array) => (this.#log += new TextDecoder().decode(b)));
    proc.on("exit", () => {
      if (this.#proc === proc) this.#proc = null;
    });
    await waitFor(
      `nats-server on port ${this.port} to be ready:\n${this.#log}`,
      () => {
        if (this.#proc !== proc) throw new Error(`nats-server exited:\n${this.#log}`);
        return this.#log.includes("Server is ready");
      },
      10_000,
    );
  }

  /** Stops it with SIGTERM (a clean shutdown) and waits for the exit. */
  stop(): Promise<void> {
    return this.#end("SIGTERM");
  }

  /** Kills it with SIGKILL and waits for the exit. */
  kill(): Promise<void> {
    return this.#end("SIGKILL");
  }

  #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const proc = this.#proc;
    if (proc === null) return Promise.resolve();
    return new Promise((resolve) => {
      proc.once("exit", () => resolve());
      proc.kill(signal);
      // A server that ignores SIGTERM for 5 s is killed.
      setTimeout(() => proc.kill("SIGKILL"), 5000).unref();
    });
  }
}

/**
 * A TCP proxy in front of a server's port: `cut()` resets every connection and refuses new ones,
 * `blackhole()` keeps connections open but drops every byte both ways (the client only notices
 * through its pings), `restore()` ends either and lets new connections through.
 */
export class TcpProxy {
  /** The port clients connect to. */
  readonly port: number;
  #server: Server;
  #pairs = new Set<[Socket, Socket]>();
  #mode: "open" | "cut" | "blackhole" = "open";

  private constructor(port: number, server: Server) {
    this.port = port;
    this.#server = server;
  }

  /** Listens on a free port, forwarding to `target` on 127.0.0.1. */
  static async start(target: number): Promise<TcpProxy> {
    const port = await freePort();
    const server = createServer();
    const proxy = new TcpProxy(port, server);
    server.on("connection", (c) => proxy.#accept(c, target));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return proxy;
  }

  #accept(client: Socket, target: number): void {
    if (this.#mode !== "open") {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.on("data", (b) => {
      if (this.#mode === "open") upstream.write(b);
    });
    upstream.on("data", (b) => {
      if (this.#mode === "open") client.write(b);
    });
    upstream.connect(target, "127.0.0.1");
  }

  /** Resets every connection and refuses new ones until `restore()`. */
  cut(): void {
    this.#mode = "cut";
    for (const [a, b] of this.#pairs) a.destroy(), b.destroy();
  }

  /** Drops every byte both ways, connections left open, until `restore()`. */
  blackhole(): void {
    this.#mode = "blackhole";
  }

  /** Lets traffic through again; connections that lost bytes are closed (their framing broke). */
  restore(): void {
    const broken = this.#mode === "blackhole";
    this.#mode = "open";
    if (broken) { for (const [a, b] of this.#pairs) a.destroy(), b.destroy(); }
  }

  /** Closes every connection and the listener. */
  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** A connection that notices a dead server quickly and reconnects forever. */
export function connectTo(port: number): Promise<NatsConnection> {
  return connect({
    servers: `127.0.0.1:${port}`,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    pingInterval: 400,
    maxPingOut: 2,
    timeout: 2000,
  });
}

/**
 * Waits until `nc` is connected again: what a client publishes while it reconnects is dropped when
 * it dials (nats.js resets its outbound buffer), so a test's own publishes wait for this.
 */
export async function reconnected(nc: NatsConnection): Promise<void> {
  await waitFor("the connection to be back", () =>
    Promise.race([
      nc.flush().then(() => true, () => false),
      sleep(1000).then(() => false),
    ]));
}

/**
 * Registers an `after()` that kills every server, proxy, connection and child started through the
 * returned helpers and removes their directories.
 */
export function natsHarness(prefix: string): {
  tempDir(): string;
  server(): Promise<NatsServer>;
  proxy(target: number): Promise<TcpProxy>;
  connect(port: number): Promise<NatsConnection>;
  child(argv: string[]): ChildProcess;
} {
  const dirs: string[] = [];
  const servers: NatsServer[] = [];
  const proxies: TcpProxy[] = [];
  const conns: NatsConnection[] = [];
  const children: ChildProcess[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), `khipu-${prefix}-`));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await Promise.allSettled(conns.map((c) => c.isClosed() ? undefined : c.close()));
    await Promise.allSettled(proxies.map((p) => p.close()));
    await Promise.allSettled(servers.map((s) => s.kill()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return {
    tempDir,
    async server() {
      const s = new NatsServer(await freePort(), tempDir());
      servers.push(s);
      await s.start();
      return s;
    },
    async proxy(target) {
      const p = await TcpProxy.start(target);
      proxies.push(p);
      return p;
    },
    async connect(port) {
      const c = await connectTo(port);
      conns.push(c);
      return c;
    },
    child(argv) {
      const [cmd, ...args] = argv;
      const c = spawn(cmd, args, { cwd: ROOT, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
      children.push(c);
      return c;
    },
  };
}

/** One message of a stream as the tests check it. */
export interface StreamMessage {
  streamSeq: number;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

/** Every message on `subject` in `stream`, in stream order (through a consumer of its own). */
export async function readSubject(
  nc: NatsConnection,
  stream: string,
  subject: string,
): Promise<StreamMessage[]> {
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const name = `check${++readers}`;
  const info = await jsm.consumers.add(stream, {
    durable_name: name,
    filter_subject: subject,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
  });
  const consumer = await jetstream(nc).consumers.get(stream, name);
  const out: StreamMessage[] = [];
  while (out.length < info.num_pending) {
    const max = Math.min(1000, info.num_pending - out.length); // a fetch ends when it has them
    const batch = await consumer.fetch({ max_messages: max, expires: 5000 });
    for await (const m of batch) {
      const headers: Record<string, string> = {};
      for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
      out.push({ streamSeq: m.seq, subject: m.subject, headers, data: m.data });
    }
  }
  await jsm.consumers.delete(stream, name);
  return out;
}
let readers = 0;

/**
 * Asserts that `messages` carry the log seqs `0..count-1` exactly once, in order, each with its
 * record's bytes (`payload(seq)`) and the relay's headers.
 */
export function assertExactlyOnce(
  messages: readonly StreamMessage[],
  logId: string,
  count: number,
  payload: (seq: number) => string,
): void {
  const seqs = messages.map((m) => Number(m.headers["Khipu-Seq"]));
  const dupes = seqs.filter((s, i) => seqs.indexOf(s) !== i);
  const missing = Array.from({ length: count }, (_, i) => i).filter((s) => !seqs.includes(s));
  assert.deepEqual(
    { dupes: dupes.slice(0, 10), missing: missing.slice(0, 10), total: messages.length },
    { dupes: [], missing: [], total: count },
    "every record exactly once",
  );
  const text = new TextDecoder();
  messages.forEach((m, i) => {
    assert.equal(seqs[i], i, `stream order: message ${i} carries seq ${seqs[i]}`);
    assert.equal(m.headers["Nats-Msg-Id"], `${logId}:${i}`);
    assert.equal(text.decode(m.data), payload(i));
  });
}
