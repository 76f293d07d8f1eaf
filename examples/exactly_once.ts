/**
 * A consumer that processes each record exactly once across restarts, on any runtime:
 * `npx tsx examples/exactly_once.ts`, `deno run -A examples/exactly_once.ts`,
 * `bun run examples/exactly_once.ts`.
 *
 * The pattern: the handler's effect and its position are **one record**. The consumer turns each
 * order into an invoice and appends it to its own `invoices` log with the order's seq inside, under
 * `SyncPolicy.always()`; after a restart, the last invoice says which order was handled last, so
 * nothing is handled twice even if the process died between the invoice and the cursor commit.
 * The cursor still matters: it is the consumer's position that `log.cursors()` shows with its lag
 * (and that retention keeps records for), committed after the effect (at least once by itself).
 *
 * The writer of `orders` is another process in real life; here it is the same one, and a "crash" is
 * a consumer stopped between its effect and its commit.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Log, Store, SyncPolicy } from "../mod.ts";

const text = new TextDecoder();

/** The last order seq the invoices log says was handled, or -1. */
async function lastHandled(invoices: Log): Promise<number> {
  let last = -1;
  for await (const r of invoices.read({ from: Math.max(0, invoices.nextSeq - 1) })) {
    last = JSON.parse(text.decode(r.data)).order;
  }
  return last;
}

/** Handles every committed order not handled yet; stops early after `crashAfter` records. */
async function consume(dataDir: string, outDir: string, crashAfter = Infinity): Promise<number> {
  const orders = await Store.open(dataDir, { readOnly: true }); // beside the writer, no lock
  const out = await Store.open(outDir, { syncPolicy: SyncPolicy.always() });
  let handled = 0;
  try {
    const log = await orders.log("orders");
    const invoices = await out.log("invoices");
    const cursor = await log.cursor("invoicing");
    const done = await lastHandled(invoices);
    // The effect is ahead of the cursor after a crash between the two: move the cursor up to it.
    if (cursor.position <= done) await cursor.reset(done + 1);
    for await (const r of cursor.read()) { // committed records only, from the cursor's position
      const order = JSON.parse(text.decode(r.data));
      await invoices.append(JSON.stringify({ order: r.seq, amount: order.amount * 1.2 }));
      if (++handled === crashAfter) return handled; // "crash": effect written, commit lost
      await cursor.commit(r.seq);
    }
    return handled;
  } finally {
    await orders.close();
    await out.close();
  }
}

const dataDir = mkdtempSync(join(tmpdir(), "khipu-orders-"));
const outDir = mkdtempSync(join(tmpdir(), "khipu-invoices-"));
try {
  const writer = await Store.open(dataDir, { syncPolicy: SyncPolicy.always() });
  const orders = await writer.log("orders");
  for (let i = 0; i < 10; i++) await orders.append(JSON.stringify({ id: i, amount: 10 * i }));

  const first = await consume(dataDir, outDir, 4); // dies after its 4th effect, before the commit
  const second = await consume(dataDir, outDir); // resumes: nothing handled twice
  console.log(`first run handled ${first}, the restart ${second}`);

  const out = await Store.open(outDir, { readOnly: true });
  const seen: number[] = [];
  for await (const r of (await out.log("invoices")).read()) {
    seen.push(JSON.parse(text.decode(r.data)).order);
  }
  await out.close();
  console.log(`invoices for orders ${seen.join(",")}`);
  console.log(`cursors: ${JSON.stringify(await orders.cursors())}`);
  await writer.close();
  if (seen.join() !== "0,1,2,3,4,5,6,7,8,9") throw new Error("not exactly once");
  console.log("exactly once: every order invoiced once");
} finally {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
}
