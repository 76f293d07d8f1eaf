/**
 * `khipu stat DIR LOG`: one log in detail: its seqs, records, bytes and gaps, each segment (seq
 * range, records, bytes, sealed or not, first/last record time) and each cursor (position, lag).
 * Read-only (no lock).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { memoryIo } from "./io.ts";
 * import { stat } from "./stat.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * const log = await store.log("events");
 * await log.appendBatch(["a", "b"]);
 * await log.sync();
 * await (await log.cursor("billing")).commit(0);
 * await store.close();
 * const { io, stdout } = memoryIo();
 * await stat.run({ positionals: [dir, "events"], values: {}, json: true }, io);
 * const doc = JSON.parse(stdout());
 * if (doc.segments[0].records !== 2 || doc.cursors[0].lag !== 1) throw new Error(stdout());
 * ```
 * @module
 */
import { type Command, EXIT } from "./command.ts";
import { summarize } from "./log_info.ts";
import { existingLog, openStore, withStore } from "./open.ts";
import { fields, formatBytes, formatRanges, isoTime, jsonDocument, table } from "./output.ts";

/** The `stat` command. */
export const stat: Command = {
  spec: {
    name: "stat",
    args: "DIR LOG",
    summary: "show a log's segments (seqs, times, bytes) and cursors (lag)",
    description: "Opens the store read-only (no lock; a writer may be running).",
    options: {},
  },
  async run({ positionals: [dir, name], json }, io) {
    return await withStore(await openStore(dir, "read"), async (store) => {
      const log = await existingLog(store, name);
      const summary = summarize(log);
      const segments = log.segments().map((s) => ({
        path: s.path,
        firstSeq: s.firstSeq,
        endSeq: s.endSeq,
        records: s.endSeq - s.firstSeq,
        bytes: s.bytes,
        sealed: s.sealed,
        firstTime: isoTime(s.firstTimestamp),
        lastTime: isoTime(s.lastTimestamp),
      }));
      const cursors = await log.cursors();
      if (json) {
        await io.out.write(jsonDocument({ log: summary, segments, cursors }));
        return EXIT.ok;
      }
      const head = fields([
        ["log", summary.name],
        ["path", summary.path],
        ["id", summary.id],
        ["seqs", `[${summary.firstSeq}, ${summary.nextSeq})`],
        ["records", String(summary.records)],
        ["bytes", `${formatBytes(summary.bytes)} (${summary.bytes})`],
        ["gaps", formatRanges(summary.gaps)],
        ["first", summary.firstTime ?? "-"],
        ["last", summary.lastTime ?? "-"],
      ]);
      const segmentTable = table(
        [
          { title: "SEGMENT" },
          { title: "FIRST SEQ", right: true },
          { title: "END SEQ", right: true },
          { title: "RECORDS", right: true },
          { title: "BYTES", right: true },
          { title: "SEALED" },
          { title: "FIRST" },
          { title: "LAST" },
        ],
        segments.map((s) => [
          s.path.slice(s.path.lastIndexOf("/") + 1),
          String(s.firstSeq),
          String(s.endSeq),
          String(s.records),
          formatBytes(s.bytes),
          s.sealed ? "yes" : "no",
          s.firstTime ?? "-",
          s.lastTime ?? "-",
        ]),
      );
      const cursorTable = cursors.length === 0 ? "no cursors\n" : table(
        [{ title: "CURSOR" }, { title: "POSITION", right: true }, { title: "LAG", right: true }],
        cursors.map((c) => [c.name, String(c.position), String(c.lag)]),
      );
      await io.out.write(`${head}\n${segmentTable}\n${cursorTable}`);
      return EXIT.ok;
    });
  },
};
