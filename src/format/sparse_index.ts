/**
 * A segment's sparse index in memory: pairs (sequence number, byte offset of the frame that starts
 * there), ascending, held in two `Float64Array`s (16 bytes an entry, the size they have in the seal)
 * rather than as one object per entry, which cost about six times the seal's size on V8.
 *
 * @example
 * ```ts
 * import { SparseIndex } from "./sparse_index.ts";
 * const idx = new SparseIndex();
 * idx.push(0, 32);
 * idx.push(900, 70_000);
 * if (idx.floor(950) !== 1 || idx.offsetAt(1) !== 70_000) throw new Error(`${idx.floor(950)}`);
 * ```
 * @module
 */

/**
 * An append-only list of index entries, ascending in both sequence number and offset.
 *
 * @example
 * ```ts
 * import { SparseIndex } from "./sparse_index.ts";
 * const idx = new SparseIndex();
 * idx.push(10, 32);
 * if (idx.length !== 1 || idx.seqAt(0) !== 10 || idx.lastOffset !== 32) throw new Error("push");
 * ```
 */
export class SparseIndex {
  #seqs: Float64Array;
  #offsets: Float64Array;
  #n = 0;

  /** An empty index with room for `capacity` entries before it grows. */
  constructor(capacity: number = 4) {
    this.#seqs = new Float64Array(Math.max(1, capacity));
    this.#offsets = new Float64Array(Math.max(1, capacity));
  }

  /** Number of entries. */
  get length(): number {
    return this.#n;
  }

  /** Offset of the last entry, or -1 when empty. */
  get lastOffset(): number {
    return this.#n === 0 ? -1 : this.#offsets[this.#n - 1];
  }

  /** Sequence number of entry `i`. */
  seqAt(i: number): number {
    return this.#seqs[i];
  }

  /** Byte offset of entry `i`. */
  offsetAt(i: number): number {
    return this.#offsets[i];
  }

  /** Appends an entry; the caller keeps the order ascending. */
  push(seq: number, offset: number): void {
    if (this.#n === this.#seqs.length) {
      const seqs = new Float64Array(this.#n * 2);
      const offsets = new Float64Array(this.#n * 2);
      seqs.set(this.#seqs);
      offsets.set(this.#offsets);
      this.#seqs = seqs;
      this.#offsets = offsets;
    }
    this.#seqs[this.#n] = seq;
    this.#offsets[this.#n] = offset;
    this.#n++;
  }

  /** Index of the last entry whose sequence number is at most `seq`, or -1 if there is none. */
  floor(seq: number): number {
    let lo = 0;
    let hi = this.#n - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#seqs[mid] <= seq) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
