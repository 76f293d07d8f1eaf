/**
 * `khipu verify-proof PROOF --checkpoint FILE --key FILE [--old-checkpoint FILE]`: checks, with
 * no store, a proof document from `khipu prove` against a signed checkpoint: its signature by the
 * key, then the inclusion of the record (or, with the older checkpoint, the consistency of the
 * two trees). Exit 0 if it holds, 1 if not.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { generateKeyPairSync } from "node:crypto";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { verifierKey } from "../checkpoint.ts";
 * import { memoryIo } from "./io.ts";
 * import { prove } from "./prove.ts";
 * import { verifyProof } from "./verify_proof.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const { privateKey, publicKey } = generateKeyPairSync("ed25519");
 * const store = await Store.open(dir);
 * const log = await store.log("audit", { integrity: "merkle" });
 * await log.appendBatch(["a", "b", "c"]);
 * const cp = await log.checkpoint({ origin: "o", sign: privateKey });
 * await store.close();
 * const p = memoryIo();
 * await prove.run({ positionals: [dir, "audit", "2"], values: { size: "3" }, json: false }, p.io);
 * writeFileSync(join(dir, "proof.json"), p.stdout());
 * writeFileSync(join(dir, "cp.txt"), cp.text);
 * writeFileSync(join(dir, "o.vkey"), verifierKey("o", publicKey));
 * const { io, stdout } = memoryIo();
 * const values = { checkpoint: join(dir, "cp.txt"), key: join(dir, "o.vkey") };
 * const code = await verifyProof.run({ positionals: [join(dir, "proof.json")], values, json: false }, io);
 * if (code !== 0 || !stdout().startsWith("ok:")) throw new Error(stdout());
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import { type Checkpoint, verifyCheckpoint } from "../checkpoint.ts";
import { InvalidArgumentError } from "../errors.ts";
import { leafHashOf, verifyConsistency, verifyInclusion } from "../merkle.ts";
import { UsageError } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { parseProofDocument, readPublicKey } from "./keys.ts";
import { jsonDocument } from "./output.ts";

async function text(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new InvalidArgumentError({
      message: `cannot read ${file}: ${(err as Error).message}`,
      path: file,
    });
  }
}

/** The `verify-proof` command. */
export const verifyProof: Command = {
  spec: {
    name: "verify-proof",
    args: "PROOF",
    summary: "check a proof from prove against a signed checkpoint; exit 1 if it fails",
    description: [
      "Needs no store. Checks the checkpoint's signature with --key (a note verifier key",
      "name+hash+key, or a PEM public key), then the proof against its root: an inclusion",
      "proof for the record it carries, or a consistency proof from --old-checkpoint (signed by",
      "the same key) to --checkpoint.",
    ].join("\n"),
    options: {
      checkpoint: { type: "string", value: "FILE", help: "the signed checkpoint" },
      key: { type: "string", value: "FILE", help: "the log's public key (note key or PEM)" },
      "old-checkpoint": { type: "string", value: "FILE", help: "for a consistency proof" },
    },
  },
  async run({ positionals: [proofFile], values, json }, io) {
    if (typeof values.checkpoint !== "string" || typeof values.key !== "string") {
      throw new UsageError("--checkpoint FILE and --key FILE are required", "verify-proof");
    }
    const doc = parseProofDocument(await text(proofFile), proofFile);
    const key = await readPublicKey(values.key);
    const signed = async (file: string): Promise<Checkpoint | null> =>
      verifyCheckpoint(await text(file), key);
    const cp = await signed(values.checkpoint);
    let verdict: string | null = null; // why it fails
    if (cp === null) verdict = `${values.checkpoint} is not signed by that key`;
    else if (doc.type === "inclusion") {
      if (doc.proof.treeSize !== cp.size) {
        verdict = `the proof is for size ${doc.proof.treeSize}, the checkpoint's is ${cp.size}`;
      } else if (!verifyInclusion(leafHashOf(doc.record), doc.proof, cp.root)) {
        verdict = `record ${doc.record.seq} is not in the checkpoint's tree`;
      }
    } else {
      const oldFile = values["old-checkpoint"];
      if (typeof oldFile !== "string") {
        throw new UsageError("a consistency proof needs --old-checkpoint FILE", "verify-proof");
      }
      const old = await signed(oldFile);
      if (old === null) verdict = `${oldFile} is not signed by that key`;
      else if (old.size !== doc.proof.oldSize || cp.size !== doc.proof.newSize) {
        verdict =
          `the proof is from ${doc.proof.oldSize} to ${doc.proof.newSize}, the checkpoints are ${old.size} and ${cp.size}`;
      } else if (!verifyConsistency(old.root, cp.root, doc.proof)) {
        verdict =
          `the tree of ${old.size} is not a prefix of the tree of ${cp.size}: history was rewritten`;
      }
    }
    const what = doc.type === "inclusion"
      ? `record ${doc.record.seq} in the tree of ${doc.proof.treeSize}`
      : `the tree of ${doc.proof.oldSize} is a prefix of the tree of ${doc.proof.newSize}`;
    if (json) {
      await io.out.write(jsonDocument({ ok: verdict === null, type: doc.type, reason: verdict }));
    } else await io.out.write(verdict === null ? `ok: ${what}\n` : `FAILED: ${verdict}\n`);
    return verdict === null ? EXIT.ok : EXIT.damaged;
  },
};
