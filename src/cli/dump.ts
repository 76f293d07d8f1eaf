/**
 * `khipu dump DIR LOG [--from N] [--to N] [--from-time ISO] [--format ndjson|text|hex]`: prints
 * the log's records, from the first (or N, or the first at or after a time) up to the end the log
 * had when the command started (or N, exclusive). Read-only (no lock). `--json` is
 * `--format ndjson`. Output to a reader that goes away (`| head`) ends the command quietly.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { dump } from "./dump.ts";
 * import { memoryIo } from "./io.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).appendBatch(["a", "b", "c"]);
 * await store.close();
 * const { io, stdout } = memoryIo();
 * await dump.run({ positionals: [dir, "events"], values: { from: "1", to: "2" }, json: true }, io);
 * const lines = stdout().trim().split("\n").map((l) => JSON.parse(l));
 * if (lines.length !== 1 || lines[0].seq !== 1 || lines[0].data !== "b") throw new Error(stdout());
 * ```
 * @module
 */
import { timeArg, UsageError, wholeNumberArg } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { existingLog, openStore, withStore } from "./open.ts";
import { printRecords, RECORD_FORMATS, type RecordFormat } from "./records.ts";

/** The `dump` command. */
export const dump: Command = {
  spec: {
    name: "dump",
    args: "DIR LOG",
    summary: "print records: all, a seq range, or from a time",
    description: [
      "Formats: text (default) is one line per record, `seq timestamp data`, the data as UTF-8",
      "with control characters escaped, or base64:... when it is not UTF-8; ndjson is one JSON",
      'object per record, {"seq", "timestamp", "data"}, with "encoding": "base64" when the data',
      "is not UTF-8; hex is a hexdump per record. Opens the store read-only (no lock).",
    ].join("\n"),
    options: {
      from: { type: "string", value: "N", help: "first seq (default: the log's first)" },
      to: { type: "string", value: "N", help: "stop before this seq (default: the end)" },
      "from-time": {
        type: "string",
        value: "ISO",
        help: "start at the first record at or after this time (not with --from)",
      },
      format: { type: "string", value: "FORMAT", help: "ndjson, text or hex (default text)" },
    },
  },
  async run({ positionals: [dir, name], values, json }, io) {
    const format = recordFormat(values.format, json);
    const seq = (key: "from" | "to") =>
      typeof values[key] === "string" ? wholeNumberArg(values[key], `--${key}`, "dump") : undefined;
    const from = seq("from");
    const to = seq("to");
    const fromTime = typeof values["from-time"] === "string"
      ? timeArg(values["from-time"], "--from-time", "dump")
      : undefined;
    if (from !== undefined && fromTime !== undefined) {
      throw new UsageError("--from and --from-time exclude each other", "dump");
    }
    if (from !== undefined && to !== undefined && to < from) {
      throw new UsageError(`--to ${to} is below --from ${from}`, "dump");
    }
    return await withStore(await openStore(dir, "read"), async (store) => {
      const log = await existingLog(store, name);
      const end = Math.min(to ?? log.nextSeq, log.nextSeq);
      const start = fromTime === undefined ? { from: from ?? 0 } : { fromTime };
      await printRecords(log.read({ ...start, to: end }), format, io.out);
      return EXIT.ok;
    });
  },
};

/** The format `--format` and `--json` ask for. */
function recordFormat(given: string | boolean | undefined, json: boolean): RecordFormat {
  if (given === undefined) return json ? "ndjson" : "text";
  const format = RECORD_FORMATS.find((f) => f === given);
  if (format === undefined) {
    throw new UsageError(
      `--format must be one of ${RECORD_FORMATS.join(", ")}, got ${JSON.stringify(given)}`,
      "dump",
    );
  }
  if (json && format !== "ndjson") {
    throw new UsageError(`--json prints ndjson; it does not go with --format ${format}`, "dump");
  }
  return format;
}
