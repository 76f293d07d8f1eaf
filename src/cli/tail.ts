/**
 * `khipu tail DIR LOG [-n N] [-f]`: the log's last N records (10 by default), and with `-f` every
 * record appended after them, by a writer in another process too, until SIGINT or SIGTERM (then
 * it exits 0). Read-only (no lock). Records print as `khipu dump` prints them (text, or ndjson
 * with `--json`).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { memoryIo } from "./io.ts";
 * import { tail } from "./tail.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).appendBatch(["a", "b", "c"]);
 * await store.close();
 * const { io, stdout } = memoryIo();
 * await tail.run({ positionals: [dir, "events"], values: { lines: "2" }, json: false }, io);
 * const seqs = stdout().trim().split("\n").map((l) => l.split(" ")[0]);
 * if (seqs.join() !== "1,2") throw new Error(stdout());
 * ```
 * @module
 */
import type { Log } from "../log.ts";
import { wholeNumberArg } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { existingLog, openStore, withStore } from "./open.ts";
import { printRecords } from "./records.ts";

/** The `tail` command. */
export const tail: Command = {
  spec: {
    name: "tail",
    args: "DIR LOG",
    summary: "print the last records; -f follows new ones",
    description: [
      "Opens the store read-only (no lock), so it follows a log another process is writing.",
      "With -f it runs until SIGINT or SIGTERM, then exits 0.",
    ].join("\n"),
    options: {
      lines: { type: "string", short: "n", value: "N", help: "how many records (default 10)" },
      follow: { type: "boolean", short: "f", help: "keep printing records as they are appended" },
    },
  },
  async run({ positionals: [dir, name], values, json }, io) {
    const n = typeof values.lines === "string" ? wholeNumberArg(values.lines, "-n", "tail") : 10;
    const format = json ? "ndjson" : "text";
    return await withStore(await openStore(dir, "read"), async (store) => {
      const log = await existingLog(store, name);
      const from = startOfLast(log, n);
      if (values.follow !== true) {
        await printRecords(log.read({ from, to: log.nextSeq }), format, io.out);
        return EXIT.ok;
      }
      const { signal, release } = io.stopSignal();
      try {
        await printRecords(log.follow({ from, signal }), format, io.out, true);
      } finally {
        release();
      }
      return EXIT.ok;
    });
  },
};

/** The seq `n` records before the end, counting only seqs a segment holds (gaps hold none). */
function startOfLast(log: Log, n: number): number {
  let start = log.nextSeq;
  let left = n;
  for (const s of [...log.segments()].reverse()) {
    if (left === 0) break;
    const take = Math.min(left, s.endSeq - s.firstSeq);
    start = s.endSeq - take;
    left -= take;
  }
  return start;
}
