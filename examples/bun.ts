/**
 * khipu-log on Bun, as-is: `bun run examples/bun.ts [records]` (or `npx bun run ...` in this repo).
 *
 * Appends records under `SyncPolicy.always()` from many concurrent callers, the way a server would:
 * group commit turns them into a handful of fdatasyncs, and every resolved append is on disk. Then
 * reopens the store and reads everything back. Uses Bun's own APIs (`Bun.argv`, `Bun.nanoseconds`),
 * typed by `bun-types`; outside this repository import from `"khipu-log"` instead of `"../mod.ts"`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Store, SyncPolicy } from "../mod.ts";

const count = Number(Bun.argv[2] ?? 2_000);
const dir = mkdtempSync(join(tmpdir(), "khipu-example-bun-"));
try {
  {
    await using store = await Store.open(dir, { syncPolicy: SyncPolicy.always() });
    const log = await store.log("events");
    const t0 = Bun.nanoseconds();
    // 2,000 appends in flight at once: each resolves only after an fdatasync that covers it.
    const seqs = await Promise.all(
      Array.from({ length: count }, (_, i) => log.append(JSON.stringify({ i, bun: Bun.version }))),
    );
    const ms = (Bun.nanoseconds() - t0) / 1e6;
    console.log(
      `appended ${seqs.length} durable records in ${ms.toFixed(1)} ms ` +
        `(${Math.round((seqs.length / ms) * 1000)}/s with group commit)`,
    );
  } // `await using` closed the store here

  await using store = await Store.open(dir);
  const log = await store.log("events");
  let n = 0;
  let last = "";
  for await (const rec of log.read({ from: 0 })) {
    n++;
    last = new TextDecoder().decode(rec.data);
  }
  console.log(`reopened: ${n} records, seq ${log.firstSeq}..${log.nextSeq - 1}, last ${last}`);
  if (n !== count) throw new Error(`expected ${count} records, read ${n}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
