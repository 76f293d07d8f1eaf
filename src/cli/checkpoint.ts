/**
 * `khipu checkpoint DIR LOG --key FILE [--origin ORIGIN]`: signs a C2SP checkpoint of a log with
 * integrity on, over the records committed now (read-only: runs beside the writer), and prints
 * its text (`--json`: origin, size, base64 root and text).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { generateKeyPairSync } from "node:crypto";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { checkpoint } from "./checkpoint.ts";
 * import { memoryIo } from "./io.ts";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("audit", { integrity: "merkle" })).appendBatch(["a", "b"]);
 * await store.close();
 * const key = join(dir, "audit.pem");
 * writeFileSync(key, generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
 * const { io, stdout } = memoryIo();
 * const args = { positionals: [dir, "audit"], values: { key, origin: "example.com/audit" }, json: false };
 * const code = await checkpoint.run(args, io);
 * if (code !== 0 || !stdout().startsWith("example.com/audit\n2\n")) throw new Error(stdout());
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { UsageError } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { readPrivateKey } from "./keys.ts";
import { existingLog, openStore, withStore } from "./open.ts";
import { jsonDocument } from "./output.ts";

/** The `checkpoint` command. */
export const checkpoint: Command = {
  spec: {
    name: "checkpoint",
    args: "DIR LOG",
    summary: "sign a checkpoint (tree head) of a log with integrity on",
    description: [
      "Prints a C2SP tlog-checkpoint with an Ed25519 signed-note signature over the records",
      "committed now. --key is a note signer key (PRIVATE+KEY+name+hash+key) or a PKCS#8 PEM",
      "file. Opens the store read-only (no lock). Publish the text: later proofs are checked",
      "against it.",
    ].join("\n"),
    options: {
      key: { type: "string", value: "FILE", help: "the signing key (note key or PEM)" },
      origin: {
        type: "string",
        value: "ORIGIN",
        help: "the origin line (default: a note key's name)",
      },
    },
  },
  async run({ positionals: [dir, name], values, json }, io) {
    if (typeof values.key !== "string") {
      throw new UsageError("--key FILE is required", "checkpoint");
    }
    const { key, name: signer } = await readPrivateKey(values.key);
    const origin = typeof values.origin === "string" ? values.origin : signer;
    if (origin === null) {
      throw new UsageError("--origin is required with a PEM key", "checkpoint");
    }
    return await withStore(await openStore(dir, "read"), async (store) => {
      const log = await existingLog(store, name);
      const cp = await log.checkpoint({ origin, sign: key, ...(signer ? { name: signer } : {}) });
      if (json) {
        const root = Buffer.from(cp.root).toString("base64");
        await io.out.write(jsonDocument({ origin: cp.origin, size: cp.size, root, text: cp.text }));
      } else {
        await io.out.write(cp.text);
      }
      return EXIT.ok;
    });
  },
};
