/**
 * A log's Merkle tree on disk (FORMAT.md, "Merkle tree"): `tree.nodes` holds every complete
 * subtree's hash in the order they complete (post-order), so the file only ever grows at its end
 * and node (level, index) sits at a computable offset; `tree.head` names a size whose nodes were
 * fdatasynced. The nodes are a cache of the records: the commit path never fdatasyncs them, the
 * head is written at seal and close, and opening keeps the nodes up to the head and rehashes only
 * the records after it.
 *
 * @module
 */
import { CorruptionError } from "./errors.ts";
import { crc32 } from "./format/checksum.ts";
import { readU32, readU64, writeU32, writeU64 } from "./format/bytes.ts";
import { createFileDurable, renameDurable } from "./platform/durable.ts";
import type { Platform, PlatformFile } from "./platform/types.ts";
import { HASH_BYTES, hashChildren, type NodeSource, rootOf, sameHash } from "./merkle.ts";

/** The node file's name in a log directory. */
export const TREE_NODES_FILE = "tree.nodes";
/** The head file's name in a log directory. */
export const TREE_HEAD_FILE = "tree.head";
const HEAD_MAGIC = new TextEncoder().encode("KHIPUMT1");
const HEAD_BYTES = 8 + 8 + HASH_BYTES + 4;
/**
 * Nodes are written in runs of this many (128 KiB): one write per flush of the records would cost
 * a second syscall per group commit, and nothing needs them on disk before the head (they are
 * rebuilt from the records after it).
 */
const WRITE_HASHES = 4096;

function popcount(n: number): number {
  let c = 0;
  for (; n > 0; n = Math.floor(n / 2)) c += n % 2;
  return c;
}

/**
 * Complete nodes of a tree of `size` leaves: 2 * size - popcount(size).
 *
 * @example
 * ```ts
 * import { nodeCount } from "./merkle_tree.ts";
 * if (nodeCount(4) !== 7 || nodeCount(5) !== 8) throw new Error("count");
 * ```
 */
export function nodeCount(size: number): number {
  return 2 * size - popcount(size);
}

/**
 * Position (in hashes) of node (level, index) in `tree.nodes`: the nodes completed before leaf
 * `(index + 1) * 2^level - 1` was appended, then the `level` nodes that leaf completed below it.
 *
 * @example
 * ```ts
 * import { nodePosition } from "./merkle_tree.ts";
 * // leaf0 leaf1 node(1,0) leaf2 leaf3 node(1,1) node(2,0)
 * if (nodePosition(1, 1) !== 5 || nodePosition(2, 0) !== 6) throw new Error("position");
 * ```
 */
export function nodePosition(level: number, index: number): number {
  return nodeCount((index + 1) * 2 ** level - 1) + level;
}

/** Encodes the head: magic, u64 size, root, CRC-32 of what precedes. */
function encodeHead(size: number, root: Uint8Array): Uint8Array {
  const b = new Uint8Array(HEAD_BYTES);
  b.set(HEAD_MAGIC, 0);
  writeU64(b, 8, size);
  b.set(root, 16);
  writeU32(b, 16 + HASH_BYTES, crc32(b.subarray(0, 16 + HASH_BYTES)));
  return b;
}

function decodeHead(b: Uint8Array): { size: number; root: Uint8Array } | null {
  if (b.length !== HEAD_BYTES || !HEAD_MAGIC.every((x, i) => b[i] === x)) return null;
  if (readU32(b, 16 + HASH_BYTES) !== crc32(b.subarray(0, 16 + HASH_BYTES))) return null;
  return { size: readU64(b, 8), root: b.slice(16, 16 + HASH_BYTES) };
}

/**
 * A log's tree: appends leaf hashes in memory at once, writes them to `tree.nodes` when the
 * records' frames are written (`flush`), and makes a size durable with `persist`.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "../testing.ts";
 * import { MerkleTree } from "./merkle_tree.ts";
 * import { hashLeaf, toHex } from "./merkle.ts";
 * const sim = new SimPlatform();
 * await sim.mkdir("/l");
 * const t = await MerkleTree.create(sim, "/l", 0o644);
 * for (const b of [0, 1, 2]) t.append(hashLeaf(new Uint8Array([b])));
 * const root = toHex(t.root(3));
 * await t.persist(3);
 * t.close();
 * const again = await MerkleTree.open(sim, "/l");
 * const ok = again.size === 3 && toHex(again.root(3)) === root;
 * again.close();
 * if (!ok) throw new Error("reopened");
 * ```
 */
export class MerkleTree implements NodeSource {
  #platform: Platform;
  #dir: string;
  #file: PlatformFile;
  #size: number;
  /** Hashes in the file (nodes before `#pending`). */
  #written: number;
  #pending: Uint8Array[] = [];
  /** frontier[k]: the last complete node of level k, while it still waits for its sibling. */
  #frontier: Uint8Array[] = [];
  /** Leaves appended whose nodes `settle` has not computed yet. */
  #queued: Uint8Array[] = [];
  /** A reader's copy beside the writer: it never writes, its new nodes stay in memory. */
  #readOnly: boolean;

  private constructor(
    platform: Platform,
    dir: string,
    file: PlatformFile,
    size: number,
    readOnly: boolean,
  ) {
    this.#platform = platform;
    this.#readOnly = readOnly;
    this.#dir = dir;
    this.#file = file;
    this.#size = size;
    this.#written = nodeCount(size);
    this.#loadFrontier();
  }

  /** Creates an empty tree in a new log's directory (the node file made durable). */
  static async create(platform: Platform, dir: string, mode: number): Promise<MerkleTree> {
    const file = await createFileDurable(
      platform,
      `${dir}/${TREE_NODES_FILE}`,
      new Uint8Array(),
      mode,
    );
    return new MerkleTree(platform, dir, file, 0, false);
  }

  /**
   * Opens the tree of `dir`, keeping the nodes up to its head's size (checked against the head's
   * root) and dropping what lies past them: a crash may have left any of it half written.
   * `readOnly` (a reader beside the writer) leaves the file as it is and never writes.
   */
  static async open(platform: Platform, dir: string, readOnly = false): Promise<MerkleTree> {
    const file = await platform.open(`${dir}/${TREE_NODES_FILE}`, readOnly ? "read" : "append");
    try {
      let head: { size: number; root: Uint8Array } | null = null;
      try {
        const h = await platform.open(`${dir}/${TREE_HEAD_FILE}`, "read");
        const b = new Uint8Array(Math.min(h.size(), HEAD_BYTES + 1));
        h.readAt(b, 0);
        h.close();
        head = decodeHead(b);
      } catch {
        // No head yet: nothing was made durable, so every node is rebuilt from the records.
      }
      const size = head && nodeCount(head.size) * HASH_BYTES <= file.size() ? head.size : 0;
      if (!readOnly) file.truncate(nodeCount(size) * HASH_BYTES);
      const tree = new MerkleTree(platform, dir, file, size, readOnly);
      if (head && size === head.size && !sameHash(tree.root(size), head.root)) {
        throw new CorruptionError({
          message: `the tree's nodes do not hash to its head's root at size ${size}`,
          path: `${dir}/${TREE_NODES_FILE}`,
        });
      }
      return tree;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Leaves in the tree. */
  get size(): number {
    return this.#size + this.#queued.length;
  }

  /** The node file's path. */
  get path(): string {
    return `${this.#dir}/${TREE_NODES_FILE}`;
  }

  /**
   * Adds a leaf hash. The nodes it completes are computed by `settle` (which every read does
   * first): the writer settles after it has started the fdatasync, so that hashing runs while the
   * disk works.
   */
  append(leaf: Uint8Array): void {
    this.#queued.push(leaf);
  }

  /** Computes the nodes the queued leaves complete. */
  settle(): void {
    for (const leaf of this.#queued) {
      let h = leaf;
      this.#pending.push(h);
      let k = 0;
      for (let n = this.#size; n % 2 === 1; n = Math.floor(n / 2)) {
        h = hashChildren(this.#frontier[k], h);
        this.#pending.push(h);
        k++;
      }
      this.#frontier[k] = h;
      this.#size++;
    }
    this.#queued = [];
  }

  /** Forgets the leaves from `size` on (their records never reached the log). */
  truncate(size: number): void {
    this.settle();
    if (size >= this.#size) return;
    const keep = nodeCount(size);
    if (keep < this.#written) {
      this.#file.truncate(keep * HASH_BYTES);
      this.#written = keep;
      this.#pending = [];
    } else {
      this.#pending.length = keep - this.#written;
    }
    this.#size = size;
    this.#loadFrontier();
  }

  /**
   * Writes the pending nodes at the file's end (no fdatasync) once there are `WRITE_HASHES` of
   * them, or all of them with `all`; on failure they stay pending.
   */
  flush(all = false): void {
    this.settle();
    if (this.#readOnly || this.#pending.length < (all ? 1 : WRITE_HASHES)) return;
    const chunk = new Uint8Array(this.#pending.length * HASH_BYTES);
    this.#pending.forEach((h, i) => chunk.set(h, i * HASH_BYTES));
    this.#file.writeAt(chunk, this.#written * HASH_BYTES);
    this.#written += this.#pending.length;
    this.#pending = [];
  }

  /** Makes the nodes of the first `size` leaves durable and names `size` in the head. */
  async persist(size: number): Promise<void> {
    this.flush(true);
    await this.#file.datasync();
    const tmp = `${this.#dir}/${TREE_HEAD_FILE}.tmp`;
    await this.#platform.unlink(tmp).catch(() => {});
    const f = await createFileDurable(this.#platform, tmp, encodeHead(size, this.root(size)));
    f.close();
    await renameDurable(this.#platform, tmp, `${this.#dir}/${TREE_HEAD_FILE}`);
  }

  /** The root of the first `size` leaves. */
  root(size: number): Uint8Array {
    return rootOf(this, size);
  }

  /** The hash of node (level, index): from memory if not yet written, else one read. */
  node(level: number, index: number): Uint8Array {
    this.settle();
    const pos = nodePosition(level, index);
    if (pos >= this.#written) return this.#pending[pos - this.#written];
    const b = new Uint8Array(HASH_BYTES);
    if (this.#file.readAt(b, pos * HASH_BYTES) !== HASH_BYTES) {
      throw new CorruptionError({
        message: `the tree's node file ends before node ${pos}`,
        path: this.path,
        offset: pos * HASH_BYTES,
      });
    }
    return b;
  }

  /** Releases the node file. */
  close(): void {
    this.#file.close();
  }

  /** The right edge: for each set bit k of the size, the last complete node of level k. */
  #loadFrontier(): void {
    this.#frontier = [];
    let k = 0;
    for (let n = this.#size; n > 0; n = Math.floor(n / 2), k++) {
      if (n % 2 === 1) this.#frontier[k] = this.node(k, n - 1);
    }
  }
}
