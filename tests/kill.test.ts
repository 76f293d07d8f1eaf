// Real process crashes: a child process on this test's runtime appends under always()
// (then osManaged()), single records and batches, and prints every resolved sequence number; the
// parent kills it with SIGKILL at a random moment, reopens the store, and checks that every printed
// record is present and intact, that every record in the log is a whole, byte-exact record some
// run wrote, that every batch is there whole (appendBatch is atomic), and that sequence numbers are
// contiguous. The same store is reused across kills, so each kill also tests recovery of the
// previous one. SIGKILL keeps the page cache: under every policy a process crash must lose nothing
// that resolved.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Store, SyncPolicy } from "../mod.ts";
import { currentRuntime, ROOT, runtimeCommand } from "./fixtures/runtimes.ts";
import { killPayload, type KillRecord, parseKillPayload } from "./fixtures/kill_payload.ts";
import { seededRandom } from "../src/testing/sim.ts";

/** Kills per policy; raise it for a long run: `KHIPU_KILLS=500 npx tsx --test tests/kill.test.ts`. */
const KILLS = Number(process.env.KHIPU_KILLS ?? 20);
const rt = currentRuntime();

/** A spawned child with its stdout split into lines as they arrive. */
function startChild(dir: string, policy: string, runId: string) {
  const [cmd, ...args] = runtimeCommand(rt, "tests/fixtures/kill_child.ts", [dir, policy, runId]);
  const child: ChildProcess = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let partial = "";
  let stderr = "";
  let onLine: (() => void) | null = null;
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!; // an incomplete last line (the child died mid-write) is ignored
    lines.push(...parts);
    onLine?.();
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    onLine = () => {
      if (lines.includes("ready")) resolve();
    };
    child.on("close", () => reject(new Error(`child exited before ready: ${stderr}`)));
  });
  return { child, lines, ready, exited, stderr: () => stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`kill -9 (${rt})`, () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "khipu-kill-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const policy of ["always", "osManaged"] as const) {
    it(`${KILLS} kills under ${policy}(): every printed record survives intact`, {
      timeout: 600_000,
    }, async () => {
      const storeDir = join(dir, policy);
      const seed = Date.now() >>> 0; // kill delays; printed with any failure
      const rnd = seededRandom(seed);
      const promised = new Map<number, { runId: string; n: number }>();
      let kills = 0;
      let resolvedChecked = 0;
      let records = 0;
      let batches = 0;
      for (let k = 0; k < KILLS; k++) {
        const runId = `${policy}${k}`;
        const c = startChild(storeDir, policy, runId);
        await c.ready;
        // Kill at a random moment: right away (inside the first appends) or up to 200 ms in.
        const delay = rnd() < 0.2 ? 0 : Math.floor(rnd() * 200);
        await sleep(delay);
        c.child.kill("SIGKILL");
        await c.exited;
        kills++;
        assert.equal(c.child.signalCode, "SIGKILL", `child exited on its own: ${c.stderr()}`);
        for (const line of c.lines) {
          if (line === "ready") continue;
          const [seq, n] = line.split(" ").map(Number);
          promised.set(seq, { runId, n });
        }
        // Reopen in this process (the lock of the dead child must be taken over) and check.
        const store = await Store.open(storeDir, { syncPolicy: SyncPolicy.osManaged() });
        try {
          const log = await store.log("k");
          assert.equal(log.firstSeq, 0);
          const seen = new Set<number>();
          const found: KillRecord[] = [];
          let expectSeq = 0;
          for await (const rec of log.read({ from: 0 })) {
            assert.equal(rec.seq, expectSeq++, "sequence numbers must be contiguous");
            const who = parseKillPayload(rec.data);
            assert.ok(who, `record ${rec.seq} is not a record any run wrote`);
            assert.deepEqual(
              rec.data,
              killPayload(who.runId, who.n, who.batch),
              `record ${rec.seq} (${who.runId}#${who.n}) has damaged bytes`,
            );
            const want = promised.get(rec.seq);
            if (want) {
              assert.deepEqual(
                { runId: who.runId, n: who.n },
                want,
                `record ${rec.seq} is not the one that resolved`,
              );
            }
            seen.add(rec.seq);
            found.push(who);
          }
          // A batch is whole: record k of a batch of `size` has its k predecessors in the batch
          // just before it, and the rest of the batch just after.
          batches = 0;
          found.forEach((who, seq) => {
            if (!who.batch) return;
            const { k: place, size } = who.batch;
            if (place === 0) batches++;
            for (let j = 0; j < size; j++) {
              const other = found[seq - place + j];
              assert.deepEqual(
                other,
                { runId: who.runId, n: who.n - place + j, batch: { k: j, size } },
                `kill ${k} (${policy}, seed ${seed}): batch of record ${seq} is not whole`,
              );
            }
          });
          assert.equal(log.nextSeq, expectSeq);
          for (const seq of promised.keys()) {
            assert.ok(
              seen.has(seq),
              `kill ${k} (${policy}, delay ${delay} ms, seed ${seed}): resolved record ${seq} missing`,
            );
          }
          resolvedChecked = promised.size;
          records = expectSeq;
        } finally {
          await store.close();
        }
      }
      console.log(
        `kill -9 on ${rt}, ${policy}(): kills=${kills}, resolved records checked=${resolvedChecked}, ` +
          `records in log=${records}, batches in log=${batches} (all whole), missing=0`,
      );
    });
  }
});
