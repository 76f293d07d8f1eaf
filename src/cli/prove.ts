/**
 * `khipu prove DIR LOG SEQ --size N`: the inclusion proof of record SEQ in the tree of N records
 * (a checkpoint's size), with the record; `khipu prove DIR LOG --from M --size N`: the proof that
 * the tree of M records is a prefix of the one of N. Prints the proof document that
 * `khipu verify-proof` checks (the same JSON with or without `--json`). Read-only.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { memoryIo } from "./io.ts";
 * import { prove } from "./prove.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("audit", { integrity: "merkle" })).appendBatch(["a", "b", "c"]);
 * await store.close();
 * const { io, stdout } = memoryIo();
 * const code = await prove.run({ positionals: [dir, "audit", "1"], values: { size: "3" }, json: false }, io);
 * const doc = JSON.parse(stdout());
 * if (code !== 0 || doc.type !== "inclusion" || doc.path.length !== 2) throw new Error(stdout());
 * ```
 * @module
 */
import { NotFoundError } from "../errors.ts";
import { UsageError, wholeNumberArg } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { consistencyDocument, inclusionDocument } from "./keys.ts";
import { existingLog, openStore, withStore } from "./open.ts";
import { jsonDocument } from "./output.ts";

/** The `prove` command. */
export const prove: Command = {
  spec: {
    name: "prove",
    args: "DIR LOG [SEQ]",
    summary: "an inclusion (SEQ) or consistency (--from) proof, for verify-proof",
    description: [
      "With SEQ: the RFC 9162 audit path of record SEQ in the tree of --size records, and the",
      "record. With --from M: the RFC 9162 consistency proof from the tree of M records to the",
      "one of --size. Prints one JSON document. Opens the store read-only (no lock).",
    ].join("\n"),
    options: {
      size: { type: "string", value: "N", help: "the tree size (a checkpoint's size)" },
      from: { type: "string", value: "M", help: "prove the tree of M records is a prefix" },
    },
  },
  async run({ positionals: [dir, name, seqText], values }, io) {
    if (typeof values.size !== "string") throw new UsageError("--size N is required", "prove");
    const size = wholeNumberArg(values.size, "--size", "prove");
    const from = typeof values.from === "string"
      ? wholeNumberArg(values.from, "--from", "prove")
      : null;
    if ((from === null) === (seqText === undefined)) {
      throw new UsageError("give SEQ (inclusion) or --from M (consistency), not both", "prove");
    }
    return await withStore(await openStore(dir, "read"), async (store) => {
      const log = await existingLog(store, name);
      if (from !== null) {
        await io.out.write(
          jsonDocument(consistencyDocument(log.name, await log.proveConsistency(from, size))),
        );
        return EXIT.ok;
      }
      const seq = wholeNumberArg(seqText, "SEQ", "prove");
      const proof = await log.proveInclusion(seq, size);
      for await (const rec of log.read({ from: seq })) {
        if (rec.seq !== seq) break;
        await io.out.write(jsonDocument(inclusionDocument(log.name, rec, proof)));
        return EXIT.ok;
      }
      throw new NotFoundError({
        op: `read record ${seq} (a gap: repair set it aside)`,
        path: log.path,
      });
    });
  },
};
