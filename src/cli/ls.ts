/**
 * `khipu ls DIR`: the store's logs with their records, segments, bytes and first/last record
 * time. Read-only (no lock). A log that cannot be opened is listed with its error, and the
 * command then exits 1 (damage) or 3.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { memoryIo } from "./io.ts";
 * import { ls } from "./ls.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).appendBatch(["a", "b"]);
 * await store.close();
 * const { io, stdout } = memoryIo();
 * const code = await ls.run({ positionals: [dir], values: {}, json: true }, io);
 * const doc = JSON.parse(stdout());
 * if (code !== 0 || doc.logs[0].name !== "events" || doc.logs[0].records !== 2) throw new Error();
 * ```
 * @module
 */
import { CorruptionError } from "../errors.ts";
import { type Command, EXIT } from "./command.ts";
import { errorJson, errorLine } from "./failure.ts";
import { type LogSummary, summarize } from "./log_info.ts";
import { openStore, withStore } from "./open.ts";
import { formatBytes, jsonDocument, table } from "./output.ts";

type Listed = (LogSummary & { error: null }) | {
  name: string;
  error: ReturnType<typeof errorJson>;
};

/** The `ls` command. */
export const ls: Command = {
  spec: {
    name: "ls",
    args: "DIR",
    summary: "list the logs: records, segments, bytes, first and last time",
    description: "Opens the store read-only (no lock; a writer may be running).",
    options: {},
  },
  async run({ positionals: [dir], json }, io) {
    return await withStore(await openStore(dir, "read"), async (store) => {
      const listed: Listed[] = [];
      const failures: unknown[] = [];
      for (const name of await store.logs()) {
        try {
          listed.push({ ...summarize(await store.log(name)), error: null });
        } catch (err) {
          failures.push(err);
          listed.push({ name, error: errorJson(err) });
        }
      }
      if (json) {
        await io.out.write(jsonDocument({ store: store.path, logs: listed }));
      } else {
        const rows = listed.map((l) =>
          l.error === null
            ? [
              l.name,
              String(l.records),
              String(l.segments),
              formatBytes(l.bytes),
              l.firstTime ?? "-",
              l.lastTime ?? "-",
            ]
            : [l.name, "-", "-", "-", "-", "-"]
        );
        await io.out.write(
          listed.length === 0 ? `no logs in ${store.path}\n` : table([
            { title: "LOG" },
            { title: "RECORDS", right: true },
            { title: "SEGMENTS", right: true },
            { title: "BYTES", right: true },
            { title: "FIRST" },
            { title: "LAST" },
          ], rows),
        );
      }
      for (const err of failures) await io.err.write(errorLine(err));
      if (failures.length === 0) return EXIT.ok;
      return failures.some((e) => e instanceof CorruptionError) ? EXIT.damaged : EXIT.failed;
    });
  },
};
