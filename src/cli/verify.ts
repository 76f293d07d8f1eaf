/**
 * `khipu verify DIR [LOG]`: reads every segment of every log (or of LOG) and checks every frame,
 * seal, index entry and the chain between segments (`store.verify`), with progress on stderr.
 * Exits 0 when everything is sound, 1 when a problem was found; each problem names the file,
 * offset, seq and reason. Read-only (no lock): it runs beside a writer, whose records still being
 * written are "not there yet", not damage. Works on logs too damaged to open.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { memoryIo } from "./io.ts";
 * import { verify } from "./verify.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).appendBatch(["a", "b"]);
 * await store.close();
 * const { io, stdout } = memoryIo();
 * const code = await verify.run({ positionals: [dir], values: {}, json: false }, io);
 * if (code !== 0 || !stdout().startsWith("events: ok: 2 records")) throw new Error(stdout());
 * ```
 * @module
 */
import type { VerifyReport } from "../verify.ts";
import { type Command, EXIT } from "./command.ts";
import { openStore, requireLog, withStore } from "./open.ts";
import {
  formatBytes,
  formatDuration,
  formatRanges,
  jsonDocument,
  plural,
  rangeSize,
} from "./output.ts";
import { ProgressView } from "./progress.ts";

/** The `verify` command. */
export const verify: Command = {
  spec: {
    name: "verify",
    args: "DIR [LOG]",
    summary: "check every frame, seal and index; exit 1 on damage",
    description: [
      "Reads every segment of every log (or of LOG alone) and reports each problem with its",
      "file, offset, seq and reason. Opens the store read-only (no lock): records a running",
      "writer has not finished writing are not there yet, not damage. Progress goes to stderr:",
      "a bar on a terminal, one line per segment otherwise.",
    ].join("\n"),
    options: {},
  },
  async run({ positionals: [dir, name], json }, io) {
    return await withStore(await openStore(dir, "read"), async (store) => {
      if (name !== undefined) await requireLog(store, name);
      const view = new ProgressView(io.err);
      let report;
      try {
        report = await store.verify({
          onProgress: (p) => view.update(p),
          ...(name === undefined ? {} : { logs: [name] }),
        });
      } finally {
        await view.finish();
      }
      if (json) {
        await io.out.write(jsonDocument({ store: store.path, ...report }));
      } else {
        const lines = report.logs.flatMap(describe);
        const bytes = report.logs.reduce((n, l) => n + l.bytes, 0);
        const damaged = report.logs.filter((l) => !l.ok).map((l) => l.log);
        const rate = report.durationMs > 0
          ? `, ${formatBytes(bytes / report.durationMs * 1000)}/s`
          : "";
        lines.push(
          report.logs.length === 0
            ? `no logs in ${store.path}`
            : `verified ${plural(report.logs.length, "log")}, ${formatBytes(bytes)} in ${
              formatDuration(report.durationMs)
            }${rate}: ${damaged.length === 0 ? "all ok" : `damaged: ${damaged.join(", ")}`}`,
        );
        await io.out.write(lines.join("\n") + "\n");
      }
      return report.ok ? EXIT.ok : EXIT.damaged;
    });
  },
};

/** A log's lines: the verdict with its figures, then one line per problem. */
function describe(r: VerifyReport): string[] {
  const gaps = r.gaps.length === 0
    ? ""
    : `, gaps ${formatRanges(r.gaps)} (${plural(rangeSize(r.gaps), "seq")} lost)`;
  const verdict = r.ok ? "ok" : `DAMAGED (${plural(r.problems.length, "problem")})`;
  return [
    `${r.log}: ${verdict}: ${r.records} records in ${plural(r.segments, "segment")}, ${
      formatBytes(r.bytes)
    }, seqs [${r.firstSeq}, ${r.nextSeq})${gaps}, ${formatDuration(r.durationMs)}`,
    ...r.problems.map((p) =>
      `  ${p.path} offset ${p.offset}${p.seq === null ? "" : ` seq ${p.seq}`}: ${p.reason}`
    ),
  ];
}
