/**
 * The consumer positions of a log: `khipu cursors DIR LOG` lists every cursor with its position
 * and lag (read-only, no lock); `khipu cursor set DIR LOG NAME SEQ` moves cursor NAME to SEQ,
 * creating it if it does not exist (as the store's writer: refused while another process holds
 * the store, or while a consumer holds the cursor).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { cursorSet, cursors } from "./cursors.ts";
 * import { memoryIo } from "./io.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).appendBatch(["a", "b", "c"]);
 * await store.close();
 * const set = memoryIo();
 * const args = { positionals: [dir, "events", "billing", "2"], values: {}, json: false };
 * await cursorSet.run(args, set.io);
 * const list = memoryIo();
 * await cursors.run({ positionals: [dir, "events"], values: {}, json: true }, list.io);
 * const doc = JSON.parse(list.stdout());
 * if (doc.cursors[0].position !== 2 || doc.cursors[0].lag !== 1) throw new Error(list.stdout());
 * ```
 * @module
 */
import { wholeNumberArg } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { existingLog, openStore, withStore } from "./open.ts";
import { jsonDocument, table } from "./output.ts";

/** The `cursors` command. */
export const cursors: Command = {
  spec: {
    name: "cursors",
    args: "DIR LOG",
    summary: "list a log's cursors with their position and lag",
    description:
      "Opens the store read-only (no lock); cursors held by running consumers are listed too.",
    options: {},
  },
  async run({ positionals: [dir, name], json }, io) {
    return await withStore(await openStore(dir, "read"), async (store) => {
      const log = await existingLog(store, name);
      const list = await log.cursors();
      if (json) {
        await io.out.write(jsonDocument({ log: log.name, nextSeq: log.nextSeq, cursors: list }));
      } else {
        await io.out.write(
          list.length === 0 ? `no cursors on ${log.name}\n` : table(
            [{ title: "CURSOR" }, { title: "POSITION", right: true }, {
              title: "LAG",
              right: true,
            }],
            list.map((c) => [c.name, String(c.position), String(c.lag)]),
          ),
        );
      }
      return EXIT.ok;
    });
  },
};

/** The `cursor set` command. */
export const cursorSet: Command = {
  spec: {
    name: "cursor set",
    args: "DIR LOG NAME SEQ",
    summary: "move cursor NAME to SEQ, creating it if missing",
    description: [
      "SEQ may be anywhere from 0 to the log's next seq, back or forward. Opens the store as its",
      "writer: refused (exit 3) while another process holds the store or the cursor.",
    ].join("\n"),
    options: {},
  },
  async run({ positionals: [dir, name, cursorName, seqText], json }, io) {
    const seq = wholeNumberArg(seqText, "SEQ", "cursor set");
    return await withStore(await openStore(dir, "writer"), async (store) => {
      const log = await existingLog(store, name);
      const existed = (await log.cursors()).some((c) => c.name === cursorName);
      const cursor = await log.cursor(cursorName);
      const before = cursor.position;
      try {
        await cursor.reset(seq);
      } finally {
        await cursor.close();
      }
      // As `cursors` counts it (seqs in gaps are no lag).
      const lag = (await log.cursors()).find((c) => c.name === cursorName)!.lag;
      if (json) {
        await io.out.write(jsonDocument({
          log: log.name,
          cursor: cursorName,
          created: !existed,
          before: existed ? before : null,
          position: seq,
          lag,
        }));
      } else {
        await io.out.write(
          `cursor ${cursorName} of ${log.name}: ${
            existed ? `moved from ${before}` : "created"
          } to ${seq} (lag ${lag})\n`,
        );
      }
      return EXIT.ok;
    });
  },
};
