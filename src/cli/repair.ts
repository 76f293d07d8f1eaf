/**
 * `khipu repair DIR LOG [--dry-run]`: repairs a damaged log as `Store.open(dir, { repair: true })`
 * does (the damaged bytes go aside as `.broken` copies, every intact record stays readable at its
 * seq, what is lost becomes a declared gap) and prints every action taken, field by field, then
 * what the log holds. `--dry-run` prints the same actions without changing anything. Both take the
 * store's lock, so they are refused (exit 3) while a writer runs, and what a dry run says is what
 * a repair would do.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { memoryIo } from "./io.ts";
 * import { repair } from "./repair.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).append("intact");
 * await store.close();
 * const { io, stdout } = memoryIo();
 * const code = await repair.run({ positionals: [dir, "events"], values: {}, json: true }, io);
 * const doc = JSON.parse(stdout());
 * if (code !== 0 || doc.actions.length !== 0 || doc.after.records !== 1) throw new Error(stdout());
 * ```
 * @module
 */
import { planRepair, type RepairAction } from "../repair_plan.ts";
import { type Command, EXIT } from "./command.ts";
import { type LogSummary, summarize } from "./log_info.ts";
import { existingLog, openStore, requireLog, withStore } from "./open.ts";
import { fields, formatRanges, jsonDocument, plural } from "./output.ts";

/** The `repair` command. */
export const repair: Command = {
  spec: {
    name: "repair",
    args: "DIR LOG",
    summary: "repair a damaged log, keeping every intact record",
    description: [
      "Damaged bytes are copied aside as .broken files; intact records before and after the",
      "damage stay at their seqs; the seqs of damaged records become a declared gap (never",
      "reused). Opens the store as its writer: refused (exit 3) while another process holds it.",
    ].join("\n"),
    options: {
      "dry-run": { type: "boolean", help: "print what repair would do; change nothing" },
    },
  },
  async run({ positionals: [dir, name], values, json }, io) {
    const dryRun = values["dry-run"] === true;
    return await withStore(await openStore(dir, dryRun ? "writer" : "repair"), async (store) => {
      let actions: RepairAction[];
      let after: LogSummary | null = null;
      if (dryRun) {
        actions = await planRepair(store.options.platform, await requireLog(store, name));
      } else {
        const log = await existingLog(store, name);
        actions = log.openReport.repaired;
        after = summarize(log);
      }
      if (json) {
        await io.out.write(jsonDocument({ log: name, dryRun, actions, after }));
        return EXIT.ok;
      }
      const head = actions.length === 0
        ? `${name}: nothing to repair`
        : `${name}: ${dryRun ? "repair would take" : "repair took"} ${
          plural(actions.length, "action")
        }${dryRun ? " (nothing changed)" : ""}`;
      const parts = [`${head}\n`, ...actions.map(describe)];
      if (after !== null) {
        const { records, segments, firstSeq, nextSeq, gaps } = after;
        parts.push(
          `${name} now: ${records} records in ${plural(segments, "segment")}, ` +
            `seqs [${firstSeq}, ${nextSeq}), gaps ${formatRanges(gaps)}\n`,
        );
      }
      await io.out.write(parts.join(""));
      return EXIT.ok;
    });
  },
};

/** One action, every field of it: `kind path`, then the others, one a line. */
function describe(action: RepairAction): string {
  const { kind, path, ...rest } = action;
  const lines = fields(Object.entries(rest).map(([key, value]) => [key, show(value)]));
  return `${kind} ${path}\n${lines.trimEnd().split("\n").map((l) => `  ${l}\n`).join("")}`;
}

function show(value: unknown): string {
  if (value === null) return "-";
  if (Array.isArray(value) && value.every(isRange)) return formatRanges(value);
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function isRange(v: unknown): v is { from: number; to: number } {
  const r = v as { from?: unknown; to?: unknown } | null;
  return typeof r?.from === "number" && typeof r.to === "number";
}
