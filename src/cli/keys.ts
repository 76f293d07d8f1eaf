/**
 * Keys and proof documents of the tamper-evidence commands (`checkpoint`, `prove`,
 * `verify-proof`): a key is a note key string (`PRIVATE+KEY+name+hash+...` to sign,
 * `name+hash+...` to verify) or a PEM file; a proof travels as one JSON document.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { verifierKey } from "../checkpoint.ts";
 * import { readPublicKey } from "./keys.ts";
 * const { publicKey } = generateKeyPairSync("ed25519");
 * const file = join(mkdtempSync(join(tmpdir(), "khipu-")), "audit.vkey");
 * writeFileSync(file, verifierKey("audit", publicKey) + "\n");
 * const key = await readPublicKey(file);
 * if (key.asymmetricKeyType !== "ed25519") throw new Error("key");
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { type Ed25519Key, parseSignerKey, parseVerifierKey } from "../checkpoint.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { ConsistencyProof, InclusionProof, LeafRecord } from "../merkle.ts";

async function keyText(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch (err) {
    throw new InvalidArgumentError({
      message: `cannot read key file ${file}: ${(err as Error).message}`,
      path: file,
    });
  }
}

/**
 * The signing key in `file` and the signer name a note key carries (null for PEM).
 *
 * @example
 * ```ts
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { readPrivateKey } from "./keys.ts";
 * const file = join(mkdtempSync(join(tmpdir(), "khipu-")), "skey");
 * writeFileSync(file, "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz\n");
 * const { key, name } = await readPrivateKey(file);
 * if (name !== "PeterNeumann" || key.type !== "private") throw new Error(String(name));
 * ```
 */
export async function readPrivateKey(
  file: string,
): Promise<{ key: Ed25519Key; name: string | null }> {
  const text = await keyText(file);
  if (text.startsWith("PRIVATE+KEY+")) {
    const { name, privateKey } = parseSignerKey(text);
    return { key: privateKey, name };
  }
  return { key: createPrivateKey(text), name: null };
}

/**
 * The verifying key in `file`: a note verifier key or a PEM public key.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { readPublicKey } from "./keys.ts";
 * const file = join(mkdtempSync(join(tmpdir(), "khipu-")), "pub.pem");
 * writeFileSync(file, generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }));
 * if ((await readPublicKey(file)).type !== "public") throw new Error("pem");
 * ```
 */
export async function readPublicKey(file: string): Promise<Ed25519Key> {
  const text = await keyText(file);
  return text.startsWith("-----") ? createPublicKey(text) : parseVerifierKey(text).publicKey;
}

/** `khipu prove`'s output for one record: the proof with the record it is for. */
export interface InclusionDocument {
  /** What it proves. */
  type: "inclusion";
  /** The log's name. */
  log: string;
  /** The tree size it is for (a checkpoint's). */
  treeSize: number;
  /** The record: its leaf is rebuilt from these (data in base64). */
  record: { seq: number; timestamp: number; data: string };
  /** The audit path, base64 hashes from the leaf up. */
  path: string[];
}

/** `khipu prove --from`'s output. */
export interface ConsistencyDocument {
  /** What it proves. */
  type: "consistency";
  /** The log's name. */
  log: string;
  /** The older tree's size. */
  oldSize: number;
  /** The newer tree's size. */
  newSize: number;
  /** The proof, base64 hashes in RFC order. */
  path: string[];
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));

/**
 * The document of an inclusion proof of `rec`.
 *
 * @example
 * ```ts
 * import { inclusionDocument, parseProofDocument } from "./keys.ts";
 * const rec = { seq: 0, timestamp: 1, data: new Uint8Array([7]) };
 * const doc = inclusionDocument("audit", rec, { index: 0, treeSize: 1, path: [] });
 * const back = parseProofDocument(JSON.stringify(doc), "p.json");
 * if (back.type !== "inclusion" || back.record.data[0] !== 7) throw new Error("round trip");
 * ```
 */
export function inclusionDocument(
  log: string,
  rec: LeafRecord,
  proof: InclusionProof,
): InclusionDocument {
  const record = { seq: rec.seq, timestamp: rec.timestamp, data: b64(rec.data) };
  return { type: "inclusion", log, treeSize: proof.treeSize, record, path: proof.path.map(b64) };
}

/**
 * The document of a consistency proof.
 *
 * @example
 * ```ts
 * import { consistencyDocument } from "./keys.ts";
 * const doc = consistencyDocument("audit", { oldSize: 1, newSize: 2, path: [new Uint8Array(32)] });
 * if (doc.path[0] !== "A".repeat(43) + "=") throw new Error(doc.path[0]);
 * ```
 */
export function consistencyDocument(log: string, proof: ConsistencyProof): ConsistencyDocument {
  const { oldSize, newSize } = proof;
  return { type: "consistency", log, oldSize, newSize, path: proof.path.map(b64) };
}

/** A proof document read back, checked for shape. */
export type ProofDocument =
  | { type: "inclusion"; record: LeafRecord; proof: InclusionProof }
  | { type: "consistency"; proof: ConsistencyProof };

/**
 * Parses what `khipu prove` wrote; `InvalidArgumentError` if it is not a proof document.
 *
 * @example
 * ```ts
 * import { parseProofDocument } from "./keys.ts";
 * const doc = parseProofDocument('{"type":"consistency","oldSize":1,"newSize":1,"path":[]}', "p");
 * let refused = false;
 * try { parseProofDocument("{}", "p"); } catch { refused = true; }
 * if (doc.type !== "consistency" || !refused) throw new Error("parse");
 * ```
 */
export function parseProofDocument(text: string, file: string): ProofDocument {
  const bad = (why: string) =>
    new InvalidArgumentError({ message: `${file} is not a khipu proof: ${why}`, path: file });
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad("not JSON");
  }
  const whole = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const hashes = (v: unknown): Uint8Array[] => {
    if (!Array.isArray(v) || !v.every((h) => typeof h === "string")) throw bad("path");
    return v.map(unb64);
  };
  if (doc?.type === "inclusion") {
    const r = doc.record as Record<string, unknown> | undefined;
    if (!r || !whole(r.seq) || !whole(r.timestamp) || typeof r.data !== "string") {
      throw bad("record");
    }
    if (!whole(doc.treeSize)) throw bad("treeSize");
    const record = { seq: r.seq as number, timestamp: r.timestamp as number, data: unb64(r.data) };
    return {
      type: "inclusion",
      record,
      proof: { index: record.seq, treeSize: doc.treeSize as number, path: hashes(doc.path) },
    };
  }
  if (doc?.type === "consistency") {
    if (!whole(doc.oldSize) || !whole(doc.newSize)) throw bad("sizes");
    const { oldSize, newSize } = doc as { oldSize: number; newSize: number };
    return { type: "consistency", proof: { oldSize, newSize, path: hashes(doc.path) } };
  }
  throw bad('type must be "inclusion" or "consistency"');
}
