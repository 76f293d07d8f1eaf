/**
 * A log's tamper evidence: opening its Merkle tree (opt-in from the log's creation), catching it
 * up with the records after its durable head, and the log's checkpoint, proof and verify steps.
 * Leaf `i` of the tree is the record with seq `i`; a seq no record holds (repair set it aside)
 * has a gap leaf (FORMAT.md, "Merkle tree"), so the tree always has `nextSeq` leaves.
 *
 * @module
 */
import {
  CorruptionError,
  InvalidArgumentError,
  NotFoundError,
  RecordsRemovedError,
} from "./errors.ts";
import {
  type ConsistencyProof,
  consistencyProof,
  gapLeafHash,
  HASH_BYTES,
  hashChildren,
  type InclusionProof,
  inclusionProof,
  leafHashOf,
  type LeafRecord,
  sameHash,
} from "./merkle.ts";
import { MerkleTree, nodePosition } from "./merkle_tree.ts";
import { type Ed25519Key, signCheckpoint, type SignedCheckpoint } from "./checkpoint.ts";
import type { Platform } from "./platform/types.ts";
import type { VerifyProblem } from "./verify_segment.ts";

/** `integrity` of `store.log(name, options)`: `"merkle"` for a tree, `"none"` for none. */
export type Integrity = "merkle" | "none";

/** Options of `log.checkpoint()`. */
export interface CheckpointOptions {
  /** The origin line: a name for the log that is unique to its operator, e.g. `example.com/audit`. */
  origin: string;
  /** The Ed25519 private key that signs it. */
  sign: Ed25519Key;
  /** The signer's name in the signature line (default: the origin). */
  name?: string;
}

/**
 * Opens the tree of log directory `dir` as `integrity` asks (undefined: whatever the log has).
 * `"merkle"` creates the tree of a log that never held a record; asking for a tree a log does not
 * have, or for none when it has one, is an `InvalidArgumentError`.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { openTree } from "./log_integrity.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const none = await openTree(sim, "/l", undefined, 0, 0o644);
 * const tree = await openTree(sim, "/l", "merkle", 0, 0o644);
 * let refused = false;
 * await openTree(sim, "/l", "none", 0, 0o644).catch(() => (refused = true));
 * tree?.close();
 * if (none !== null || tree?.size !== 0 || !refused) throw new Error("openTree");
 * ```
 */
export async function openTree(
  platform: Platform,
  dir: string,
  integrity: Integrity | undefined,
  nextSeq: number,
  fileMode: number,
): Promise<MerkleTree | null> {
  const tree = await existingTree(platform, dir, false);
  if (tree && integrity === "none") {
    tree.close();
    throw new InvalidArgumentError({
      message: 'this log has a Merkle tree: open it with integrity "merkle" or without the option',
      path: dir,
    });
  }
  if (tree || integrity !== "merkle") return tree;
  if (nextSeq > 0) {
    throw new InvalidArgumentError({
      message: `integrity "merkle" is chosen when a log is created; this one already holds ` +
        `records up to seq ${nextSeq} without a tree`,
      path: dir,
    });
  }
  return await MerkleTree.create(platform, dir, fileMode);
}

/**
 * Opens the tree of log directory `dir` for a reader beside the writer (a read-only store), or
 * null if the log has none.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { openTree, openTreeReadOnly } from "./log_integrity.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const none = await openTreeReadOnly(sim, "/l");
 * (await openTree(sim, "/l", "merkle", 0, 0o644))?.close();
 * const tree = await openTreeReadOnly(sim, "/l");
 * tree?.close();
 * if (none !== null || tree?.size !== 0) throw new Error("openTreeReadOnly");
 * ```
 */
export function openTreeReadOnly(platform: Platform, dir: string): Promise<MerkleTree | null> {
  return existingTree(platform, dir, true);
}

async function existingTree(
  platform: Platform,
  dir: string,
  readOnly: boolean,
): Promise<MerkleTree | null> {
  try {
    return await MerkleTree.open(platform, dir, readOnly);
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

/**
 * Appends the leaves of the records after the tree's durable head (`records` starts at
 * `tree.size`), and gap leaves for the seqs below `nextSeq` that no record holds (a reader beside
 * the writer passes `null`: the seqs after the last record it sees are not known yet).
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { MerkleTree } from "./merkle_tree.ts";
 * import { catchUp } from "./log_integrity.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const tree = await MerkleTree.create(sim, "/l", 0o644);
 * async function* records() { yield { seq: 1, timestamp: 0, data: new Uint8Array([1]) }; }
 * await catchUp(tree, records(), 3); // seqs 0 and 2 are gaps
 * tree.close();
 * if (tree.size !== 3) throw new Error(`size ${tree.size}`);
 * ```
 */
export async function catchUp(
  tree: MerkleTree,
  records: AsyncIterable<LeafRecord>,
  nextSeq: number | null,
): Promise<void> {
  if (nextSeq !== null && tree.size > nextSeq) {
    throw new CorruptionError({
      message: `the tree holds ${tree.size} leaves but the log ends at seq ${nextSeq}: ` +
        "records it covered are gone",
      path: tree.path,
    });
  }
  for await (const rec of records) {
    while (tree.size < rec.seq) tree.append(gapLeafHash(tree.size));
    tree.append(leafHashOf(rec));
  }
  while (nextSeq !== null && tree.size < nextSeq) tree.append(gapLeafHash(tree.size));
}

function checkTreeSize(tree: MerkleTree, size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > tree.size) {
    throw new InvalidArgumentError({
      message: `${what} must be a whole number up to the tree's size ${tree.size}, got ${size}`,
      path: tree.path,
    });
  }
}

/**
 * The signed checkpoint of the tree's first `size` leaves.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { SimPlatform } from "../testing.ts";
 * import { MerkleTree } from "./merkle_tree.ts";
 * import { checkpointOf } from "./log_integrity.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const tree = await MerkleTree.create(sim, "/l", 0o644);
 * const { privateKey } = generateKeyPairSync("ed25519");
 * const cp = checkpointOf(tree, 0, { origin: "o", sign: privateKey });
 * tree.close();
 * if (!cp.text.startsWith("o\n0\n47DEQpj8")) throw new Error(cp.text); // SHA-256 of nothing
 * ```
 */
export function checkpointOf(
  tree: MerkleTree,
  size: number,
  opts: CheckpointOptions,
): SignedCheckpoint {
  checkTreeSize(tree, size, "checkpoint size");
  if (typeof opts.origin !== "string") {
    throw new InvalidArgumentError({ message: "checkpoint: origin must be a string" });
  }
  const key = opts.sign as Partial<Ed25519Key> | undefined;
  if (typeof key !== "object" || key === null || key.type !== "private") {
    throw new InvalidArgumentError({
      message: "checkpoint: sign must be an Ed25519 private KeyObject (node:crypto)",
    });
  }
  return signCheckpoint({ origin: opts.origin, size, root: tree.root(size) }, opts.sign, opts.name);
}

/**
 * The audit path of seq `seq` in the tree of `size` leaves; `RecordsRemovedError` if retention
 * removed that record (`firstSeq` is the log's first seq now): nobody can check it any more.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { MerkleTree } from "./merkle_tree.ts";
 * import { inclusionOf } from "./log_integrity.ts";
 * import { hashLeaf, verifyInclusion } from "./merkle.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const tree = await MerkleTree.create(sim, "/l", 0o644);
 * const leaves = [1, 2, 3].map((b) => hashLeaf(new Uint8Array([b])));
 * for (const l of leaves) tree.append(l);
 * const ok = verifyInclusion(leaves[1], inclusionOf(tree, 1, 3, 0), tree.root(3));
 * tree.close();
 * if (!ok) throw new Error("inclusion");
 * ```
 */
export function inclusionOf(
  tree: MerkleTree,
  seq: number,
  size: number,
  firstSeq: number,
): InclusionProof {
  checkTreeSize(tree, size, "tree size");
  if (Number.isSafeInteger(seq) && seq >= 0 && seq < firstSeq) {
    throw new RecordsRemovedError({ path: tree.path, position: seq, firstSeq, who: "proof" });
  }
  return inclusionProof(tree, seq, size);
}

/**
 * The consistency proof between two sizes of the tree.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { MerkleTree } from "./merkle_tree.ts";
 * import { consistencyOf } from "./log_integrity.ts";
 * import { hashLeaf, verifyConsistency } from "./merkle.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const tree = await MerkleTree.create(sim, "/l", 0o644);
 * for (const b of [1, 2, 3]) tree.append(hashLeaf(new Uint8Array([b])));
 * const ok = verifyConsistency(tree.root(2), tree.root(3), consistencyOf(tree, 2, 3));
 * tree.close();
 * if (!ok) throw new Error("consistency");
 * ```
 */
export function consistencyOf(
  tree: MerkleTree,
  oldSize: number,
  newSize: number,
): ConsistencyProof {
  checkTreeSize(tree, newSize, "new size");
  return consistencyProof(tree, oldSize, newSize);
}

/**
 * Recomputes the tree from `records` (every record present, in seq order): the first record
 * whose leaf differs from the stored one, and the first stored interior node that is not the
 * hash of its children, as verify problems.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { MerkleTree } from "./merkle_tree.ts";
 * import { verifyTreeAgainst } from "./log_integrity.ts";
 * import { leafHashOf } from "./merkle.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const tree = await MerkleTree.create(sim, "/l", 0o644);
 * const recs = [0, 1].map((seq) => ({ seq, timestamp: 0, data: new Uint8Array([seq]) }));
 * for (const r of recs) tree.append(leafHashOf(r));
 * async function* edited() { yield recs[0]; yield { ...recs[1], data: new Uint8Array([7]) }; }
 * const problems = await verifyTreeAgainst(tree, edited());
 * tree.close();
 * if (problems.length !== 1 || problems[0].seq !== 1) throw new Error(JSON.stringify(problems));
 * ```
 */
export async function verifyTreeAgainst(
  tree: MerkleTree,
  records: AsyncIterable<LeafRecord>,
): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  const leaf = await firstBadLeaf(tree, records);
  if (leaf) problems.push(leaf);
  const node = firstBadNode(tree);
  if (node) problems.push(node);
  return problems;
}

async function firstBadLeaf(
  tree: MerkleTree,
  records: AsyncIterable<LeafRecord>,
): Promise<VerifyProblem | null> {
  // Seqs without a record are not checked: retention removed them, or repair set them aside (the
  // tree then holds their records' leaves if it had them, else gap leaves; both are history).
  for await (const rec of records) {
    if (rec.seq >= tree.size) break;
    if (!sameHash(tree.node(0, rec.seq), leafHashOf(rec))) {
      return leafProblem(tree, rec.seq, "the record's leaf hash does not match the tree");
    }
  }
  return null;
}

function leafProblem(tree: MerkleTree, seq: number, reason: string): VerifyProblem {
  return { path: tree.path, offset: nodePosition(0, seq) * HASH_BYTES, seq, reason };
}

/** The first stored interior node (in file order) that is not the hash of its two children. */
function firstBadNode(tree: MerkleTree): VerifyProblem | null {
  for (let level = 1; 2 ** level <= tree.size; level++) {
    for (let i = 0; (i + 1) * 2 ** level <= tree.size; i++) {
      const want = hashChildren(tree.node(level - 1, 2 * i), tree.node(level - 1, 2 * i + 1));
      if (!sameHash(tree.node(level, i), want)) {
        return {
          path: tree.path,
          offset: nodePosition(level, i) * HASH_BYTES,
          seq: i * 2 ** level,
          reason: `the tree's node at level ${level} is not the hash of its children`,
        };
      }
    }
  }
  return null;
}
