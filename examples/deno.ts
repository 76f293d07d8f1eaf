/**
 * khipu-log on Deno: `deno run -A examples/deno.ts [records]` (or `npx deno run -A ...` here).
 *
 * Appends under the default policy (`everyN(64)`: an fdatasync every 64 appends, the rest in the page
 * cache), then `sync()`s so everything is on disk, and reads it back from the middle. Outside this
 * repository: `deno add jsr:@khipu/log` and import from `"@khipu/log"` instead of `"../mod.ts"`.
 */
import { Store, SyncPolicy } from "../mod.ts";

const count = Number(Deno.args[0] ?? 1_000);
const dir = await Deno.makeTempDir({ prefix: "khipu-example-deno-" });
try {
  const store = await Store.open(dir, { syncPolicy: SyncPolicy.everyN(64) });
  const log = await store.log("events");
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await log.append(`event ${i}`);
  await log.sync(); // everything appended so far is durable now
  const ms = performance.now() - t0;
  console.log(`appended ${count} records in ${ms.toFixed(1)} ms, synced every 64 and at the end`);

  const from = Math.floor(count / 2);
  let n = 0;
  for await (const rec of log.read({ from })) {
    if (n === 0) console.log(`first record from ${from}:`, new TextDecoder().decode(rec.data));
    n++;
  }
  console.log(`read ${n} records from seq ${from}`);
  await store.close();
  if (n !== log.nextSeq - from) throw new Error(`expected ${log.nextSeq - from}, read ${n}`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
