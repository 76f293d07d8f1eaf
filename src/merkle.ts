/**
 * The RFC 6962 / RFC 9162 section 2.1 Merkle tree: leaf and node hashes, tree heads, inclusion and
 * consistency proofs (generated from any {@linkcode NodeSource}) and their verification. Pure: no
 * files, so a third party uses it without a store (entry point `./integrity`).
 *
 * @module
 */
import * as nodeCrypto from "node:crypto";
import { InvalidArgumentError } from "./errors.ts";
import { writeU32, writeU64 } from "./format/bytes.ts";

/** The bytes of a SHA-256 hash. */
export const HASH_BYTES = 32;

/** A record as the tree sees it: what `log.read()` yields carries these fields. */
export interface LeafRecord {
  /** Its sequence number. */
  seq: number;
  /** Its timestamp (ms since the Unix epoch). */
  timestamp: number;
  /** Its payload. */
  data: Uint8Array;
}

/** An audit path: the record at leaf `index` is in the tree of `treeSize` leaves (RFC 9162 2.1.3). */
export interface InclusionProof {
  /** The leaf's index (a record's seq, when the log has no gaps). */
  index: number;
  /** The size of the tree the proof is for. */
  treeSize: number;
  /** Sibling hashes, from the leaf up. */
  path: Uint8Array[];
}

/** The tree of `oldSize` leaves is a prefix of the tree of `newSize` (RFC 9162 2.1.4). */
export interface ConsistencyProof {
  /** The earlier tree's size. */
  oldSize: number;
  /** The later tree's size. */
  newSize: number;
  /** The proof's hashes, in RFC order. */
  path: Uint8Array[];
}

/**
 * Where proofs read hashes from: `node(level, index)` is the root of the complete subtree over
 * leaves `[index * 2^level, (index + 1) * 2^level)`.
 */
export interface NodeSource {
  /** The hash of one complete subtree. */
  node(level: number, index: number): Uint8Array;
}

/** `crypto.hash` (Node >= 20.12, Bun, Deno): one native call instead of a Hash object's three. */
const oneShot = (nodeCrypto as {
  hash?: (algorithm: string, data: Uint8Array, encoding: "buffer") => Uint8Array;
}).hash;

/** SHA-256 of one buffer: a tree hashes small inputs, where the native call is the cost. */
function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(
    oneShot
      ? oneShot("sha256", bytes, "buffer")
      : nodeCrypto.createHash("sha256").update(bytes).digest(),
  );
}

/**
 * The canonical leaf input of a record (FORMAT.md, "Merkle tree"): u64 seq, u64 timestamp, u32
 * length, all little-endian, then the payload.
 *
 * @example
 * ```ts
 * import { canonicalRecord } from "./merkle.ts";
 * const b = canonicalRecord({ seq: 1, timestamp: 2, data: new Uint8Array([9]) });
 * if (b.join() !== "1,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,1,0,0,0,9") throw new Error(b.join());
 * ```
 */
export function canonicalRecord(rec: LeafRecord): Uint8Array {
  return encodeRecord(rec, 0);
}

/** The canonical record `at` bytes into a new buffer (the bytes before it are zero). */
function encodeRecord(rec: LeafRecord, at: number, into?: Uint8Array): Uint8Array {
  const n = at + 20 + rec.data.length;
  const out = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n);
  out.fill(0, 0, at);
  writeU64(out, at, rec.seq); // not BigInt: it costs a microsecond per record
  writeU64(out, at + 8, rec.timestamp);
  writeU32(out, at + 16, rec.data.length);
  out.set(rec.data, at + 20);
  return out;
}

/**
 * Reused input buffers: hashing is synchronous and the tree hashes one small input after another,
 * so one allocation per hash is most of what it costs besides the hash.
 */
const leafScratch = new Uint8Array(4096);
const nodeScratch = new Uint8Array(1 + 2 * HASH_BYTES);

/**
 * RFC 9162 leaf hash of raw leaf input: SHA-256(0x00 || input).
 *
 * @example
 * ```ts
 * import { hashLeaf, toHex } from "./merkle.ts";
 * const h = toHex(hashLeaf(new Uint8Array(0))); // the RFC 6962 reference tree's first leaf
 * if (h !== "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d") throw new Error(h);
 * ```
 */
export function hashLeaf(input: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + input.length); // 0x00 ||
  b.set(input, 1);
  return sha256(b);
}

/**
 * RFC 9162 interior node hash: SHA-256(0x01 || left || right).
 *
 * @example
 * ```ts
 * import { hashChildren, hashLeaf, toHex } from "./merkle.ts";
 * const root = hashChildren(hashLeaf(new Uint8Array(0)), hashLeaf(new Uint8Array([0])));
 * if (!toHex(root).startsWith("fac54203")) throw new Error(toHex(root));
 * ```
 */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeScratch[0] = 1;
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_BYTES);
  return sha256(nodeScratch);
}

/**
 * The leaf hash of a record, as the log's tree holds it: `hashLeaf(canonicalRecord(rec))`.
 *
 * @example
 * ```ts
 * import { canonicalRecord, hashLeaf, leafHashOf, toHex } from "./merkle.ts";
 * const rec = { seq: 0, timestamp: 5, data: new TextEncoder().encode("hi") };
 * if (toHex(leafHashOf(rec)) !== toHex(hashLeaf(canonicalRecord(rec)))) throw new Error("leaf");
 * ```
 */
export function leafHashOf(rec: LeafRecord): Uint8Array {
  // 0x00 || canonicalRecord, built in one buffer: one native hash call.
  return sha256(encodeRecord(rec, 1, leafScratch));
}

/**
 * The leaf hash of a seq that holds no record (repair set it aside): `hashLeaf(u64 seq LE)`. Its
 * 8-byte input is shorter than any record's 20-byte canonical form, so the two never collide.
 *
 * @example
 * ```ts
 * import { gapLeafHash, hashLeaf, toHex } from "./merkle.ts";
 * if (toHex(gapLeafHash(1)) !== toHex(hashLeaf(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])))) {
 *   throw new Error("gap leaf");
 * }
 * ```
 */
export function gapLeafHash(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq), true);
  return hashLeaf(b);
}

/**
 * Lowercase hex of some bytes.
 *
 * @example
 * ```ts
 * import { toHex } from "./merkle.ts";
 * if (toHex(new Uint8Array([0, 255])) !== "00ff") throw new Error("hex");
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The largest power of two below `n` (n >= 2): RFC 9162's split point k. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && split(n + 1) === n;
}

/** MTH(D[start:end]) read from `src`: O(log n) nodes, since every left part of a split is whole. */
function rangeHash(src: NodeSource, start: number, end: number): Uint8Array {
  const n = end - start;
  if (isPowerOfTwo(n) && start % n === 0) return src.node(Math.log2(n), start / n);
  const k = split(n);
  return hashChildren(rangeHash(src, start, start + k), rangeHash(src, start + k, end));
}

/**
 * A {@linkcode NodeSource} over leaf hashes in memory, computing each node from its leaves:
 * for a verifier that holds the whole list, and for tests.
 *
 * @example
 * ```ts
 * import { hashChildren, hashLeaf, leafSource, toHex } from "./merkle.ts";
 * const leaves = [1, 2].map((b) => hashLeaf(new Uint8Array([b])));
 * const n = leafSource(leaves).node(1, 0);
 * if (toHex(n) !== toHex(hashChildren(leaves[0], leaves[1]))) throw new Error("node");
 * ```
 */
export function leafSource(leaves: readonly Uint8Array[]): NodeSource {
  const node = (level: number, index: number): Uint8Array =>
    level === 0
      ? leaves[index]
      : hashChildren(node(level - 1, 2 * index), node(level - 1, 2 * index + 1));
  return { node };
}

function checkSize(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError({ message: `${what} must be a whole number, got ${n}` });
  }
}

/**
 * The tree head (root hash) of the first `size` leaves of `src`; SHA-256 of nothing for 0.
 *
 * @example
 * ```ts
 * import { hashLeaf, leafSource, rootOf, toHex } from "./merkle.ts";
 * const src = leafSource([hashLeaf(new Uint8Array(0)), hashLeaf(new Uint8Array([0]))]);
 * if (!toHex(rootOf(src, 1)).startsWith("6e340b9c")) throw new Error("root");
 * if (!toHex(rootOf(src, 2)).startsWith("fac54203")) throw new Error("root");
 * ```
 */
export function rootOf(src: NodeSource, size: number): Uint8Array {
  checkSize("tree size", size);
  return size === 0 ? sha256(new Uint8Array(0)) : rangeHash(src, 0, size);
}

/**
 * The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 2.1.3.1 PATH).
 *
 * @example
 * ```ts
 * import { hashLeaf, inclusionProof, leafSource, rootOf, verifyInclusion } from "./merkle.ts";
 * const leaves = [1, 2, 3].map((b) => hashLeaf(new Uint8Array([b])));
 * const src = leafSource(leaves);
 * const proof = inclusionProof(src, 2, 3);
 * if (!verifyInclusion(leaves[2], proof, rootOf(src, 3))) throw new Error("inclusion");
 * ```
 */
export function inclusionProof(src: NodeSource, index: number, size: number): InclusionProof {
  checkSize("tree size", size);
  checkSize("leaf index", index);
  if (index >= size) {
    throw new InvalidArgumentError({ message: `leaf ${index} is not in a tree of ${size}` });
  }
  let start = 0;
  let end = size;
  const reversed: Uint8Array[] = [];
  while (end - start > 1) {
    const k = split(end - start);
    if (index - start < k) {
      reversed.push(rangeHash(src, start + k, end));
      end = start + k;
    } else {
      reversed.push(rangeHash(src, start, start + k));
      start += k;
    }
  }
  return { index, treeSize: size, path: reversed.reverse() };
}

/**
 * The proof that the tree of `oldSize` leaves is a prefix of the tree of `newSize` (RFC 9162
 * 2.1.4.1 PROOF); empty when the sizes are equal.
 *
 * @example
 * ```ts
 * import { consistencyProof, hashLeaf, leafSource, rootOf, verifyConsistency } from "./merkle.ts";
 * const leaves = [1, 2, 3].map((b) => hashLeaf(new Uint8Array([b])));
 * const src = leafSource(leaves);
 * const proof = consistencyProof(src, 1, 3);
 * if (!verifyConsistency(rootOf(src, 1), rootOf(src, 3), proof)) throw new Error("consistency");
 * ```
 */
export function consistencyProof(
  src: NodeSource,
  oldSize: number,
  newSize: number,
): ConsistencyProof {
  checkSize("old size", oldSize);
  checkSize("new size", newSize);
  if (oldSize < 1 || oldSize > newSize) {
    throw new InvalidArgumentError({
      message: `no consistency proof from size ${oldSize} to ${newSize}: need 1 <= old <= new`,
    });
  }
  const reversed: Uint8Array[] = [];
  let m = oldSize;
  let start = 0;
  let end = newSize;
  let whole = true; // SUBPROOF's b: the old tree is this subtree itself
  while (m !== end - start) {
    const k = split(end - start);
    if (m <= k) {
      reversed.push(rangeHash(src, start + k, end));
      end = start + k;
    } else {
      reversed.push(rangeHash(src, start, start + k));
      start += k;
      m -= k;
      whole = false;
    }
  }
  if (!whole) reversed.push(rangeHash(src, start, end));
  return { oldSize, newSize, path: reversed.reverse() };
}

/**
 * True if two hashes are the same bytes.
 *
 * @example
 * ```ts
 * import { sameHash } from "./merkle.ts";
 * if (!sameHash(new Uint8Array([1]), new Uint8Array([1])) || sameHash(new Uint8Array([1]), new Uint8Array([2]))) {
 *   throw new Error("sameHash");
 * }
 * ```
 */
export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const half = (n: number): number => Math.floor(n / 2);
const odd = (n: number): boolean => n % 2 === 1;

/** RFC 9162: "right-shift both fn and sn equally until either LSB(fn) is set or fn is 0". */
function shiftToOdd(fn: number, sn: number): [number, number] {
  while (!odd(fn) && fn !== 0) [fn, sn] = [half(fn), half(sn)];
  return [fn, sn];
}

/**
 * Checks an audit path (RFC 9162 2.1.3.2): true if `leafHash` at `proof.index` is in the tree of
 * `proof.treeSize` leaves whose root is `root`.
 *
 * @example
 * ```ts
 * import { hashLeaf, verifyInclusion } from "./merkle.ts";
 * const leaf = hashLeaf(new Uint8Array([7]));
 * const ok = verifyInclusion(leaf, { index: 0, treeSize: 1, path: [] }, leaf);
 * if (!ok) throw new Error("a one-leaf tree's root is its leaf");
 * ```
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  proof: InclusionProof,
  root: Uint8Array,
): boolean {
  if (!(proof.index >= 0 && proof.index < proof.treeSize)) return false;
  let fn = proof.index;
  let sn = proof.treeSize - 1;
  let r = leafHash;
  for (const p of proof.path) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = hashChildren(p, r);
      [fn, sn] = shiftToOdd(fn, sn);
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(r, root);
}

/**
 * Checks a consistency proof (RFC 9162 2.1.4.2): true if the tree with root `oldRoot` of
 * `proof.oldSize` leaves is a prefix of the tree with root `newRoot` of `proof.newSize`.
 *
 * @example
 * ```ts
 * import { hashLeaf, verifyConsistency } from "./merkle.ts";
 * const root = hashLeaf(new Uint8Array([7]));
 * if (!verifyConsistency(root, root, { oldSize: 1, newSize: 1, path: [] })) throw new Error("eq");
 * ```
 */
export function verifyConsistency(
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: ConsistencyProof,
): boolean {
  const { oldSize, newSize } = proof;
  if (!(oldSize >= 1 && oldSize <= newSize)) return false;
  if (oldSize === newSize) return proof.path.length === 0 && sameHash(oldRoot, newRoot);
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof.path] : proof.path;
  if (path.length === 0) return false;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      [fn, sn] = shiftToOdd(fn, sn);
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(fr, oldRoot) && sameHash(sr, newRoot);
}
