/**
 * A read-only tail of a live log, like `tail -f`: it opens the store beside its writer (another
 * process, any runtime; no lock, nothing written) and prints records as the writer appends them.
 *
 *   npx tsx examples/tail.ts DIR LOG        # follow an existing store until Ctrl-C
 *   npx tsx examples/tail.ts                # demo: a writer in a child process, tailed here
 *
 * (`deno run -A examples/tail.ts ...` and `bun run examples/tail.ts ...` work the same.)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Store, SyncPolicy } from "../mod.ts";

const text = new TextDecoder();

/** Prints the last `last` records of `name` and everything appended after, until `signal`. */
async function tail(dir: string, name: string, signal: AbortSignal, last = 5): Promise<number> {
  await using store = await Store.open(dir, { readOnly: true });
  const log = await store.log(name);
  let n = 0;
  for await (const r of log.follow({ from: Math.max(0, log.nextSeq - last), signal })) {
    console.log(`${r.seq}\t${new Date(r.timestamp).toISOString()}\t${text.decode(r.data)}`);
    n++;
  }
  return n;
}

const [dirArg, nameArg] = process.argv.slice(2);
if (dirArg === "--write") {
  // The demo's writer: a separate process appending a record every 20 ms.
  await using store = await Store.open(nameArg, { syncPolicy: SyncPolicy.always() });
  const log = await store.log("events");
  for (let i = 0; i < 50; i++) {
    await log.append(`event ${i} from pid ${process.pid}`);
    await new Promise((r) => setTimeout(r, 20));
  }
} else if (dirArg !== undefined) {
  const stop = new AbortController();
  process.on("SIGINT", () => stop.abort());
  await tail(dirArg, nameArg ?? "events", stop.signal);
} else {
  const dir = mkdtempSync(join(tmpdir(), "khipu-tail-"));
  try {
    const init = await Store.open(dir);
    await init.log("events"); // the log exists before the tail opens it
    await init.close();
    const self = fileURLToPath(import.meta.url);
    const args = "Deno" in globalThis ? ["run", "-A", self] : [...process.execArgv, self];
    const writer = spawn(process.execPath, [...args, "--write", dir], { stdio: "inherit" });
    const stop = new AbortController();
    writer.on("exit", () => setTimeout(() => stop.abort(), 200));
    const n = await tail(dir, "events", stop.signal);
    console.log(`tailed ${n} records written by another process`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
