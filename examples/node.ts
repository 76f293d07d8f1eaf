/**
 * khipu-log on Node 20: `npx tsx examples/node.ts [records]` (Node runs the built package as plain
 * JavaScript: outside this repository, `npm install khipu-log` and import from `"khipu-log"`).
 *
 * Two logs in one store under `SyncPolicy.interval(50)`: a timer fdatasyncs whatever is dirty every
 * 50 ms, appends resolve as soon as the record is in the page cache. `appendBatch` writes a batch as
 * one write. Then retention: `truncateBefore` drops whole old segments.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { argv } from "node:process";
import { Store, SyncPolicy } from "../mod.ts";

const count = Number(argv[2] ?? 5_000);
const dir = mkdtempSync(join(tmpdir(), "khipu-example-node-"));
try {
  const store = await Store.open(dir, {
    syncPolicy: SyncPolicy.interval(50),
    segmentBytes: 64 * 1024, // small segments, so retention has something to drop
  });
  const orders = await store.log("orders");
  const audit = await store.log("audit");
  const t0 = performance.now();
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({ length: Math.min(100, count - i) }, (_, j) => `order ${i + j}`);
    const seqs = await orders.appendBatch(batch);
    await audit.append(`orders ${seqs[0]}..${seqs[seqs.length - 1]} written`);
  }
  await store.sync(); // both logs durable
  console.log(`${count} orders in ${(performance.now() - t0).toFixed(1)} ms`);

  await orders.truncateBefore(Math.floor(count / 2));
  console.log(`after retention the orders log starts at seq ${orders.firstSeq}`);
  let n = 0;
  for await (const _rec of audit.read({ from: 0 })) n++;
  console.log(`audit log: ${n} records`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
