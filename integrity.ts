/**
 * Checking a khipu-log's tamper evidence without a store: RFC 9162 inclusion and consistency
 * proofs, C2SP signed checkpoints, and the leaf hash of a record (FORMAT.md, "Merkle tree"). An
 * auditor needs only this module (or any RFC 6962 verifier) plus the log operator's public key.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import {
 *   leafHashOf,
 *   verifyCheckpoint,
 *   verifyConsistency,
 *   verifyInclusion,
 * } from "@khipu/log/integrity";
 * import { generateKeyPairSync } from "node:crypto";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")));
 * const audit = await store.log("audit", { integrity: "merkle" });
 * const { privateKey, publicKey } = generateKeyPairSync("ed25519");
 * await audit.append("user 7 signed in");
 * const first = await audit.checkpoint({ origin: "example.com/audit", sign: privateKey });
 * await audit.appendBatch(["user 7 read file 12", "user 7 signed out"]);
 * const cp = await audit.checkpoint({ origin: "example.com/audit", sign: privateKey });
 * const proof = await audit.proveInclusion(0, cp.size);
 * const cons = await audit.proveConsistency(first.size, cp.size);
 * let record;
 * for await (const r of audit.read({ from: 0 })) { record = r; break; }
 * await store.close();
 *
 * // the auditor's side: the checkpoint texts, the proofs and the record
 * const head = verifyCheckpoint(cp.text, publicKey);
 * const old = verifyCheckpoint(first.text, publicKey);
 * if (!head || !old) throw new Error("bad signature");
 * if (!verifyInclusion(leafHashOf(record!), proof, head.root)) throw new Error("not in the log");
 * if (!verifyConsistency(old.root, head.root, cons)) throw new Error("history was rewritten");
 * ```
 * @module
 */
export {
  canonicalRecord,
  type ConsistencyProof,
  gapLeafHash,
  hashChildren,
  hashLeaf,
  type InclusionProof,
  leafHashOf,
  type LeafRecord,
  leafSource,
  type NodeSource,
  rootOf,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from "./src/merkle.ts";
export {
  type Checkpoint,
  type Ed25519Key,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  type SignedCheckpoint,
  signNote,
  verifierKey,
  verifyCheckpoint,
} from "./src/checkpoint.ts";
