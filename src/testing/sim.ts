/**
 * An in-memory {@linkcode Platform} that simulates power loss, for crash-testing khipu-log and any
 * other code written against the platform interface.
 *
 * The simulator keeps, for every file and directory, two states: what is **durable** (on the
 * device) and what is only in the **page cache**. Every mutating call records an operation:
 *
 * - `write`, `writev`, `writeAt`, `writevAt` and `truncate` change only the cache;
 * - `datasync()` / `sync()` of a file make that file's data and size durable (the model has no other
 *   metadata, so both do the same thing);
 * - `syncDir(dir)` makes that directory's entries durable: creates, renames and unlinks in it.
 *   Syncing a file never makes its name durable (POSIX does not promise it, and ext4 without a
 *   journal commit, XFS and btrfs have all lost such names after a crash).
 *
 * {@linkcode SimPlatform.crash} returns a **new** simulated file system made of the durable state plus
 * an adversarial choice among the operations that were not yet made durable (see
 * {@linkcode CrashMode}). The choice is a pure function of the mode and a seed, so a failing crash
 * state is reproduced from one line: the workload, the call number, the mode and the seed.
 *
 * Every platform and file call is counted ({@linkcode SimPlatform.calls}) and reported to an
 * optional `onCall` hook after it took effect; {@linkcode SimPlatform.freeze} takes a cheap
 * snapshot of the crash-relevant state at that moment, so a harness can run a workload once and
 * then crash it "after call #k" for every k.
 *
 * @example Crash-testing your own code
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * await sim.syncDir("/");
 * const f = await sim.open("/d/a", "createExclusive");
 * f.write(new TextEncoder().encode("hello"));
 * await f.datasync(); // data durable, but the name "a" is not: /d was never synced
 * const after = sim.crash("none");
 * if ((await after.stat("/d/a")) !== null) throw new Error("the un-synced create survived");
 * ```
 *
 * @example Crashing after every call of a workload
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform, type SimSnapshot } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const snaps: SimSnapshot[] = [];
 * sim.onCall = (call) => {
 *   if (call.mutates) snaps.push(sim.freeze());
 * };
 * const store = await Store.open("/data", { platform: sim }); // the workload
 * await (await store.log("events")).append("paid");
 * await store.close();
 * for (const s of snaps) {
 *   const reopened = await Store.open("/data", { platform: s.crash("subset", 42) });
 *   const log = await reopened.log("events"); // recovery must succeed after any call
 *   if (log.nextSeq > 1) throw new Error(`${log.nextSeq} records from one append`);
 *   await reopened.close();
 * }
 * ```
 * @module
 */
import { ClosedError, FileTypeError, fromOsError, LockedError } from "../errors.ts";
import type {
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformStat,
  PlatformWatcher,
} from "../platform/types.ts";
import { checkPosition, concatChunks } from "../platform/write_all.ts";

/**
 * What survives a simulated power cut, on top of the durable state. Only operations that were
 * not made durable by a `datasync`/`sync` (file data) or `syncDir` (directory entries) are ever
 * dropped or damaged: the model never corrupts durable data.
 *
 * Writes at an offset (`writeAt`, `writevAt`) are the same write operations as appends, and a write
 * that lands inside the file's previous length (an overwrite) is modelled as the device does it: a
 * sector is written whole or not at all, and a lost or torn overwrite leaves the bytes that were
 * there before. Zeros (and a torn write's garbage) only ever appear in bytes that extend the file
 * past the length it had before that write: blocks newly allocated whose data never arrived. No
 * mode zeroes old data.
 *
 * - `none`: no un-synced operation survives.
 * - `all`: every operation survives (what a process crash, `kill -9`, looks like).
 * - `prefix`: a prefix of the un-synced operations survives, in order.
 * - `subset`: an arbitrary subset survives (reordering). File writes are split at 4 KiB page
 *   boundaries and each page keeps some prefix of its own writes, as page-cache write-back does,
 *   so a later page may reach the disk while an earlier one reads back as zeros (past the file's
 *   previous length) or as its previous bytes (an overwritten page).
 * - `torn`: everything survives except the last write to one file, which is torn at a sector
 *   boundary (512 B or 4 KiB); the rest of it is cut off, zero-filled or garbage past the file's
 *   previous length, and keeps its previous bytes inside it (whatever the tail).
 * - `zeros`: the file sizes grow as written but, from some write on, the new bytes are all 0x00
 *   (an extended size reached the journal, the data blocks did not). Only bytes past the file's
 *   length before the write are new: a lost overwrite keeps the previous bytes.
 * - `emptyCreate`: every directory operation survives, but a file whose data was never synced
 *   (a newly created one) exists with zero length; other files keep all their writes.
 * - `undoDirOps`: all file data survives, but every rename and unlink whose directory was not
 *   synced is undone.
 *
 * @example
 * ```ts
 * import { type CrashMode, SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const f = await sim.open("/x", "createExclusive");
 * f.write(new Uint8Array([1, 2])); // never synced
 * const survives = (mode: CrashMode) => sim.crash(mode, 1).fileBytes("/x") !== null;
 * if (survives("none") || !survives("all")) throw new Error("none drops it, all keeps it");
 * ```
 *
 * @example A lost overwrite keeps the old bytes, in every mode
 * ```ts
 * import { CRASH_MODES, SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * sim.setFileBytes("/seg", new Uint8Array([1, 2, 3, 4])); // durable
 * const f = await sim.open("/seg", "append");
 * f.writeAt(new Uint8Array([9, 9]), 1); // an overwrite in one sector, never synced
 * for (const mode of CRASH_MODES) {
 *   for (let seed = 0; seed < 10; seed++) {
 *     const bytes = sim.crash(mode, seed).fileBytes("/seg")?.join();
 *     if (bytes !== "1,2,3,4" && bytes !== "1,9,9,4") throw new Error(`${mode}: ${bytes}`);
 *   }
 * }
 * ```
 */
export type CrashMode =
  | "none"
  | "all"
  | "prefix"
  | "subset"
  | "torn"
  | "zeros"
  | "emptyCreate"
  | "undoDirOps";

/**
 * Every {@linkcode CrashMode}, in a stable order, for harnesses that try them all.
 *
 * @example
 * ```ts
 * import { CRASH_MODES, SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * sim.setFileBytes("/x", new Uint8Array([7])); // durable: no mode may lose it
 * for (const mode of CRASH_MODES) {
 *   const bytes = sim.crash(mode, 1).fileBytes("/x");
 *   if (bytes?.join() !== "7") throw new Error(`${mode} lost durable data`);
 * }
 * if (CRASH_MODES.length !== 8) throw new Error(CRASH_MODES.join(" "));
 * ```
 */
export const CRASH_MODES: readonly CrashMode[] = Object.freeze([
  "none",
  "all",
  "prefix",
  "subset",
  "torn",
  "zeros",
  "emptyCreate",
  "undoDirOps",
] as CrashMode[]);

/**
 * Fine control over a crash; every field defaults to a choice drawn from the seed.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * const f = await sim.open("/x", "createExclusive");
 * f.write(new Uint8Array(1024).fill(1)); // two 512-byte sectors, not synced
 * const fs = sim.crash("torn", 7, { sector: 512, tail: "cut" });
 * const length = fs.fileBytes("/x")?.length;
 * if (length !== 0 && length !== 512) throw new Error(`torn at ${length}`);
 * ```
 */
export interface CrashOptions {
  /** `prefix`: how many un-synced operations survive (clamped to the count). */
  keep?: number;
  /** `torn`: the sector size at which the last write tears. */
  sector?: 512 | 4096;
  /**
   * `torn`: what follows the tear past the file's previous length: nothing (size cut), zeros, or
   * garbage up to the full size. Inside the previous length the previous bytes stay.
   */
  tail?: "cut" | "zeros" | "garbage";
  /** `subset`: the page size at which write-back happens (default 4096). */
  pageSize?: number;
}

/**
 * What {@linkcode SimPlatform.crash} chose, for the reproduction line of a failing test.
 *
 * @example
 * ```ts
 * import { type CrashInfo, SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d"); // one operation not yet durable
 * const info: CrashInfo | undefined = sim.crash("prefix", 3).lastCrash;
 * const line = `${info?.mode} seed=${info?.seed} pending=${info?.pending} ${info?.detail}`;
 * if (line !== "prefix seed=3 pending=1 keep=1/1") throw new Error(line);
 * ```
 */
export interface CrashInfo {
  /** The mode asked for. */
  mode: CrashMode;
  /** The seed asked for. */
  seed: number;
  /** How many operations were pending (not durable) at the crash. */
  pending: number;
  /** A short description of the choices made, e.g. `keep=3/7`. */
  detail: string;
}

/**
 * One counted call, as passed to {@linkcode SimPlatform.onCall}.
 *
 * @example
 * ```ts
 * import { type SimCall, SimPlatform } from "@khipu/log/testing";
 * const calls: SimCall[] = [];
 * const sim = new SimPlatform({ onCall: (c) => calls.push(c) });
 * await sim.mkdir("/d");
 * await sim.stat("/d");
 * const seen = calls.map((c) => `${c.n} ${c.op} ${c.path} ${c.mutates}`).join(", ");
 * if (seen !== "1 mkdir /d true, 2 stat /d false") throw new Error(seen);
 * ```
 */
export interface SimCall {
  /** 1-based number of this call on this simulator. */
  n: number;
  /** The method: `open`, `write`, `datasync`, `syncDir`, `rename`, `readAt`, ... */
  op: string;
  /** The path concerned (`to` for a rename). */
  path: string;
  /** True if the call changed the cache or the durable state (a crash right after it can differ). */
  mutates: boolean;
}

/**
 * Options of {@linkcode SimPlatform}.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * const syncs: number[] = [];
 * const sim = new SimPlatform({
 *   name: "disk-a",
 *   onCall: (c) => {
 *     if (c.op === "datasync") syncs.push(c.n);
 *   },
 * });
 * const f = await sim.open("/x", "createExclusive"); // call 1
 * await f.datasync(); // call 2
 * if (sim.name !== "disk-a" || syncs.join() !== "2") throw new Error(`${sim.name} ${syncs}`);
 * ```
 */
export interface SimOptions {
  /** The platform name reported by {@linkcode SimPlatform.name} (default `"sim"`). */
  name?: string;
  /** Called after every call took effect; see {@linkcode SimPlatform.onCall}. */
  onCall?: (call: SimCall) => void;
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness.

/**
 * A small deterministic PRNG (mulberry32): the same seed gives the same sequence on every runtime.
 * Returns floats in [0, 1).
 *
 * @example
 * ```ts
 * import { seededRandom } from "@khipu/log/testing";
 * const a = seededRandom(42);
 * const b = seededRandom(42);
 * const rolls = [a(), a(), a()].map((x) => Math.floor(x * 6) + 1); // reproducible die rolls
 * const again = [b(), b(), b()].map((x) => Math.floor(x * 6) + 1);
 * if (rolls.join() !== again.join() || rolls.some((n) => n < 1 || n > 6)) {
 *   throw new Error(`${rolls} ${again}`);
 * }
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randInt(rnd: () => number, n: number): number {
  return Math.floor(rnd() * n);
}

// ---------------------------------------------------------------------------------------------
// Byte buffers with amortised appends. Invariant: bytes past `len` are zero, so extending a file
// never exposes stale bytes from before a truncate.

class Buf {
  bytes: Uint8Array;
  len: number;
  /** Set when a snapshot references this buffer: the owner must copy before mutating. */
  shared = false;

  constructor(bytes: Uint8Array = new Uint8Array(0), len = bytes.length) {
    this.bytes = bytes;
    this.len = len;
  }

  clone(): Buf {
    return new Buf(this.bytes.slice(0, this.len), this.len);
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.len);
  }

  private ensure(n: number): void {
    if (n <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(n, this.bytes.length * 2, 64));
    next.set(this.bytes.subarray(0, this.len));
    this.bytes = next;
  }

  writeAt(off: number, data: Uint8Array): void {
    const end = off + data.length;
    this.ensure(end);
    this.bytes.set(data, off);
    if (end > this.len) this.len = end;
  }

  resize(n: number): void {
    if (n < this.len) this.bytes.fill(0, n, this.len);
    else this.ensure(n);
    this.len = n;
  }
}

// ---------------------------------------------------------------------------------------------
// The file-system model.

/**
 * `mtimeMs` is the wall clock at a file's create, write or truncate, or a directory's creation;
 * metadata the model keeps only in the cache (a crashed copy stamps all its nodes at the crash).
 */
interface FileNode {
  kind: "file";
  ino: number;
  cache: Buf;
  durable: Buf;
  mtimeMs: number;
}

interface DirNode {
  kind: "dir";
  ino: number;
  cache: Map<string, number>;
  durable: Map<string, number>;
  mtimeMs: number;
}

type Node = FileNode | DirNode;

/** An operation not yet durable. Objects are immutable once recorded (snapshots share them). */
type Op =
  | { readonly t: "write"; readonly ino: number; readonly off: number; readonly data: Uint8Array }
  | { readonly t: "trunc"; readonly ino: number; readonly len: number }
  | { readonly t: "link"; readonly dir: number; readonly name: string; readonly ino: number }
  | { readonly t: "unlink"; readonly dir: number; readonly name: string; readonly ino: number }
  | {
    readonly t: "rename";
    readonly fromDir: number;
    readonly fromName: string;
    readonly toDir: number;
    readonly toName: string;
    readonly ino: number;
  };

function isDataOp(op: Op): op is Extract<Op, { t: "write" | "trunc" }> {
  return op.t === "write" || op.t === "trunc";
}

type EntryOp = Extract<Op, { t: "link" | "unlink" | "rename" }>;

function touchesDir(op: Op, dir: number): op is EntryOp {
  switch (op.t) {
    case "link":
    case "unlink":
      return op.dir === dir;
    case "rename":
      return op.fromDir === dir || op.toDir === dir;
    default:
      return false;
  }
}

/**
 * Applies a directory-entry operation to the directories `dirOf` finds (the durable ones at a
 * `syncDir`, a crash image's when replaying). A rename is one journal transaction: both sides move
 * together, whichever directory was synced.
 */
function applyEntryOp(op: EntryOp, dirOf: (ino: number) => Map<string, number> | undefined): void {
  switch (op.t) {
    case "link":
      dirOf(op.dir)?.set(op.name, op.ino);
      return;
    case "unlink": {
      const d = dirOf(op.dir);
      if (d?.get(op.name) === op.ino) d.delete(op.name);
      return;
    }
    case "rename": {
      const from = dirOf(op.fromDir);
      if (from?.get(op.fromName) === op.ino) from.delete(op.fromName);
      dirOf(op.toDir)?.set(op.toName, op.ino);
      return;
    }
  }
}

const ROOT = 1;

/** A new empty file, modified now. */
function newFile(ino: number): FileNode {
  return { kind: "file", ino, cache: new Buf(), durable: new Buf(), mtimeMs: Date.now() };
}

/** A new empty directory, made now. */
function newDir(ino: number): DirNode {
  return { kind: "dir", ino, cache: new Map(), durable: new Map(), mtimeMs: Date.now() };
}

/** Factories that reach the classes' private state; assigned in their static blocks. */
let makeSnapshot: (
  files: ReadonlyMap<number, Buf>,
  dirs: ReadonlyMap<number, ReadonlyMap<string, number>>,
  pending: readonly Op[],
  nextIno: number,
  name: string,
) => SimSnapshot;
let fromImage: (image: Image, nextIno: number, name: string) => SimPlatform;

/** A durable image: directory maps and file contents by inode, copied on first write. */
class Image {
  private ownedFiles = new Set<number>();
  private ownedDirs = new Set<number>();
  readonly files: Map<number, Buf>;
  readonly dirs: Map<number, Map<string, number>>;
  constructor(files: Map<number, Buf>, dirs: Map<number, Map<string, number>>) {
    this.files = files;
    this.dirs = dirs;
  }

  file(ino: number): Buf {
    let b = this.files.get(ino);
    if (!b) {
      b = new Buf();
      this.files.set(ino, b);
      this.ownedFiles.add(ino);
    } else if (!this.ownedFiles.has(ino)) {
      b = b.clone();
      this.files.set(ino, b);
      this.ownedFiles.add(ino);
    }
    return b;
  }

  dir(ino: number): Map<string, number> | undefined {
    const d = this.dirs.get(ino);
    if (!d) return undefined;
    if (this.ownedDirs.has(ino)) return d;
    const copy = new Map(d);
    this.dirs.set(ino, copy);
    this.ownedDirs.add(ino);
    return copy;
  }

  apply(op: Op): void {
    switch (op.t) {
      case "write":
        this.file(op.ino).writeAt(op.off, op.data);
        return;
      case "trunc":
        this.file(op.ino).resize(op.len);
        return;
      default:
        applyEntryOp(op, (ino) => this.dir(ino));
    }
  }
}

/**
 * The crash-relevant state of a {@linkcode SimPlatform} at one moment: its durable contents and the
 * operations not yet durable. Cheap to take (buffers are shared copy-on-write); crash it as often
 * as you like, with different modes and seeds.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/d");
 * const snap = sim.freeze(); // taken before /d was made durable
 * await sim.syncDir("/");
 * if ((await snap.crash("none").stat("/d")) !== null) throw new Error("the snapshot changed");
 * if ((await snap.crash("all").stat("/d")) === null) throw new Error("all lost /d");
 * if ((await sim.crash("none").stat("/d")) === null) throw new Error("syncDir did not keep /d");
 * ```
 */
export class SimSnapshot {
  private files: ReadonlyMap<number, Buf> = new Map();
  private dirs: ReadonlyMap<number, ReadonlyMap<string, number>> = new Map();
  private pending: readonly Op[] = [];
  private nextIno = ROOT + 1;
  private name = "sim";

  private constructor() {}

  static {
    makeSnapshot = (files, dirs, pending, nextIno, name) => {
      const s = new SimSnapshot();
      s.files = files;
      s.dirs = dirs;
      s.pending = pending;
      s.nextIno = nextIno;
      s.name = name;
      return s;
    };
  }

  /** How many operations were not durable when the snapshot was taken. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /**
   * A new simulated file system after a power cut at this moment; see {@linkcode CrashMode}.
   * Deterministic: the same snapshot, mode, seed and options give the same file system.
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const f = await sim.open("/x", "createExclusive");
   * f.write(new Uint8Array(8192).fill(1));
   * const snap = sim.freeze();
   * const a = snap.crash("torn", 99);
   * const b = snap.crash("torn", 99);
   * if (String(a.fileBytes("/x")) !== String(b.fileBytes("/x"))) throw new Error("differs");
   * if (a.lastCrash?.detail !== b.lastCrash?.detail) throw new Error(a.lastCrash?.detail);
   * ```
   */
  crash(mode: CrashMode = "none", seed = 0, opts: CrashOptions = {}): SimPlatform {
    const rnd = seededRandom(seed);
    const image = new Image(
      new Map(this.files),
      new Map([...this.dirs].map(([k, v]) => [k, v as Map<string, number>])),
    );
    const P = this.pending;
    let detail = "";
    const applyAll = (ops: Iterable<Op>) => {
      for (const op of ops) image.apply(op);
    };
    switch (mode) {
      case "none":
        break;
      case "all":
        applyAll(P);
        break;
      case "prefix": {
        const keep = Math.max(0, Math.min(P.length, opts.keep ?? randInt(rnd, P.length + 1)));
        applyAll(P.slice(0, keep));
        detail = `keep=${keep}/${P.length}`;
        break;
      }
      case "subset":
        detail = crashSubset(image, P, rnd, opts.pageSize ?? 4096);
        break;
      case "torn":
        detail = crashTorn(image, P, rnd, opts);
        break;
      case "zeros": {
        const writes = P.filter((op) => op.t === "write").length;
        const from = randInt(rnd, Math.max(writes, 1));
        let w = 0;
        for (const op of P) {
          if (op.t === "write" && w++ >= from) {
            // The size reached the disk, the data did not: only bytes past the end are new (zeros);
            // an overwrite inside the file is simply lost, so the previous bytes stay.
            const f = image.file(op.ino);
            const end = op.off + op.data.length;
            if (end > f.len) f.resize(end);
          } else image.apply(op);
        }
        detail = `zerosFromWrite=${from}/${writes}`;
        break;
      }
      case "emptyCreate": {
        // Delayed allocation: names and sizes of new files reach the journal before their data.
        const empty = new Set<number>();
        for (const op of P) {
          if (op.t === "write" && (this.files.get(op.ino)?.len ?? 0) === 0) empty.add(op.ino);
        }
        for (const op of P) if (!(isDataOp(op) && empty.has(op.ino))) image.apply(op);
        detail = `emptied=${empty.size}`;
        break;
      }
      case "undoDirOps": {
        let undone = 0;
        for (const op of P) {
          if (op.t === "rename" || op.t === "unlink") undone++;
          else image.apply(op);
        }
        detail = `undone=${undone}`;
        break;
      }
      default:
        throw new TypeError(`unknown crash mode ${String(mode)}`);
    }
    const fs = fromImage(image, this.nextIno, this.name);
    fs.lastCrash = { mode, seed, pending: P.length, detail };
    return fs;
  }
}

function crashSubset(image: Image, P: readonly Op[], rnd: () => number, page: number): string {
  const p = rnd();
  // Split writes into page pieces; each (inode, page) keeps a prefix of its own pieces in time
  // order, because write-back writes a page as it is at some moment.
  const counts = new Map<string, number>();
  const pieces: Array<Array<{ key: string; idx: number; off: number; data: Uint8Array }>> = [];
  for (const op of P) {
    const list: Array<{ key: string; idx: number; off: number; data: Uint8Array }> = [];
    if (op.t === "write") {
      let pos = op.off;
      const end = op.off + op.data.length;
      while (pos < end) {
        const pageNo = Math.floor(pos / page);
        const stop = Math.min(end, (pageNo + 1) * page);
        const key = `${op.ino}:${pageNo}`;
        const idx = counts.get(key) ?? 0;
        counts.set(key, idx + 1);
        list.push({ key, idx, off: pos, data: op.data.subarray(pos - op.off, stop - op.off) });
        pos = stop;
      }
    }
    pieces.push(list);
  }
  const cutoff = new Map<string, number>();
  for (const [key, n] of counts) cutoff.set(key, randInt(rnd, n + 1));
  let kept = 0;
  let total = 0;
  P.forEach((op, i) => {
    if (op.t === "write") {
      for (const pc of pieces[i]) {
        total++;
        if (pc.idx < cutoff.get(pc.key)!) {
          kept++;
          image.file(op.ino).writeAt(pc.off, pc.data);
        }
      }
    } else {
      total++;
      if (rnd() < p) {
        kept++;
        image.apply(op);
      }
    }
  });
  return `kept=${kept}/${total} p=${p.toFixed(2)}`;
}

function crashTorn(image: Image, P: readonly Op[], rnd: () => number, opts: CrashOptions): string {
  const lastWrite = new Map<number, number>(); // ino -> index of its last pending write
  P.forEach((op, i) => {
    if (op.t === "write") lastWrite.set(op.ino, i);
  });
  const choices = [...lastWrite.values()].sort((a, b) => a - b);
  const sector = opts.sector ?? (rnd() < 0.5 ? 512 : 4096);
  const tail = opts.tail ?? (["cut", "zeros", "garbage"] as const)[randInt(rnd, 3)];
  if (choices.length === 0) {
    for (const op of P) image.apply(op);
    return "no pending write";
  }
  const victim = choices[randInt(rnd, choices.length)];
  let detail = "";
  P.forEach((op, i) => {
    if (i !== victim || op.t !== "write") return image.apply(op);
    const end = op.off + op.data.length;
    // Candidate tear points: the write's start (a one-sector write either lands or not) and
    // every sector boundary strictly inside it.
    const cuts = [op.off];
    for (let b = (Math.floor(op.off / sector) + 1) * sector; b < end; b += sector) cuts.push(b);
    const at = cuts[randInt(rnd, cuts.length)];
    const f = image.file(op.ino);
    // Sectors past the tear never arrived: inside the previous length they keep their bytes; past
    // it (blocks the write allocated) the tail decides.
    const fresh = Math.max(at, f.len);
    f.writeAt(op.off, op.data.subarray(0, at - op.off));
    if (tail === "zeros" && end > f.len) f.resize(end);
    if (tail === "garbage" && end > fresh) {
      const junk = new Uint8Array(end - fresh);
      for (let j = 0; j < junk.length; j++) junk[j] = randInt(rnd, 256);
      f.writeAt(fresh, junk);
    }
    detail = `ino=${op.ino} write=[${op.off},${end}) sector=${sector} at=${at} tail=${tail}`;
  });
  return detail;
}

// ---------------------------------------------------------------------------------------------
// The platform.

function osError(code: string, op: string, path: string): Error {
  return fromOsError(Object.assign(new Error(`${code}: ${op} ${path}`), { code }), op, path);
}

/** Splits a path into components, resolving `.`/`..`; relative paths are relative to `/`. */
function components(path: string): string[] {
  const out: string[] = [];
  for (const part of path.replaceAll("\\", "/").split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out;
}

/**
 * The simulated file system. Implements {@linkcode Platform} exactly; see the module documentation
 * for the durability model.
 *
 * @example
 * ```ts
 * import { SimPlatform } from "@khipu/log/testing";
 * const sim = new SimPlatform();
 * await sim.mkdir("/data");
 * await sim.syncDir("/");
 * const f = await sim.open("/data/x", "createExclusive");
 * f.write(new Uint8Array([1, 2, 3]));
 * await f.datasync();
 * await sim.syncDir("/data");
 * const after = sim.crash("none", 1);
 * if (after.fileBytes("/data/x")?.join() !== "1,2,3") throw new Error("lost synced data");
 * ```
 */
export class SimPlatform implements Platform {
  /** The platform name (default `"sim"`). */
  readonly name: string;
  /**
   * Called synchronously after every platform or file call took effect. A throw from the hook
   * propagates out of the call (a way to stop a workload at call #k).
   */
  onCall: ((call: SimCall) => void) | undefined;
  /** Set on a file system returned by {@linkcode SimPlatform.crash}: what the crash chose. */
  lastCrash: CrashInfo | undefined = undefined;

  private nodes = new Map<number, Node>();
  private pending: Op[] = [];
  private nextIno = ROOT + 1;
  private callCount = 0;
  private locks = new Set<string>();
  private watchers = new Set<() => void>();
  private watchScheduled = false;
  private openFiles = 0;

  /** An empty file system holding only `/`. */
  constructor(opts: SimOptions = {}) {
    this.name = opts.name ?? "sim";
    this.onCall = opts.onCall;
    this.nodes.set(ROOT, newDir(ROOT));
  }

  static {
    // Builds a file system whose cache and durable state are both `image`.
    fromImage = (image, nextIno, name) => {
      const fs = new SimPlatform({ name });
      fs.nextIno = nextIno;
      const mtimeMs = Date.now();
      const visit = (ino: number) => {
        const d = image.dirs.get(ino);
        if (d) {
          fs.nodes.set(ino, { kind: "dir", ino, cache: new Map(d), durable: new Map(d), mtimeMs });
          for (const child of d.values()) if (!fs.nodes.has(child)) visit(child);
          return;
        }
        const b = image.files.get(ino) ?? new Buf();
        const durable = b.clone();
        fs.nodes.set(ino, { kind: "file", ino, cache: durable.clone(), durable, mtimeMs });
      };
      visit(ROOT);
      return fs;
    };
  }

  /** How many platform and file calls were made so far. */
  get calls(): number {
    return this.callCount;
  }

  /** How many operations are not durable yet (would be at risk in a crash now). */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** File handles currently open (for leak tests). */
  get openFileCount(): number {
    return this.openFiles;
  }

  /** Counts a call that took effect and tells the hook. */
  private count(op: string, path: string, mutates: boolean): void {
    const n = ++this.callCount;
    this.onCall?.({ n, op, path, mutates });
  }

  /**
   * A cheap snapshot of the durable state and the pending operations, to crash later.
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * await sim.mkdir("/d");
   * const snap = sim.freeze();
   * await sim.syncDir("/"); // makes the mkdir durable; the snapshot keeps it pending
   * if (snap.pendingCount !== 1 || sim.pendingCount !== 0) throw new Error(`${snap.pendingCount}`);
   * ```
   */
  freeze(): SimSnapshot {
    const files = new Map<number, Buf>();
    const dirs = new Map<number, Map<string, number>>();
    for (const n of this.nodes.values()) {
      if (n.kind === "file") {
        n.durable.shared = true;
        files.set(n.ino, n.durable);
      } else dirs.set(n.ino, new Map(n.durable));
    }
    return makeSnapshot(files, dirs, this.pending.slice(), this.nextIno, this.name);
  }

  /**
   * A new file system after a power cut now: `freeze().crash(mode, seed, opts)`. This simulator
   * is left untouched (keep using it, or crash it again with another seed).
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * await sim.mkdir("/d");
   * const after = sim.crash("subset", 1234);
   * if (after.lastCrash?.mode !== "subset" || after.lastCrash.pending !== 1) {
   *   throw new Error("no crash info");
   * }
   * if (sim.pendingCount !== 1 || !(await sim.stat("/d"))) throw new Error("sim was changed");
   * ```
   */
  crash(mode: CrashMode = "none", seed = 0, opts: CrashOptions = {}): SimPlatform {
    return this.freeze().crash(mode, seed, opts);
  }

  // -- helpers (not counted) -------------------------------------------------------------------

  /** The node at `path` in the current (cache) tree. */
  private lookup(path: string): Node | undefined {
    let node: Node | undefined = this.nodes.get(ROOT);
    for (const c of components(path)) {
      if (!node || node.kind !== "dir") return undefined;
      const ino = node.cache.get(c);
      node = ino === undefined ? undefined : this.nodes.get(ino);
    }
    return node;
  }

  /** The parent directory node and the last component; throws NotFound if the parent is missing. */
  private parentOf(path: string, op: string): { dir: DirNode; name: string } {
    const parts = components(path);
    const name = parts.pop();
    if (name === undefined) throw osError("EBUSY", op, path);
    const dir = this.lookup("/" + parts.join("/"));
    if (!dir) throw osError("ENOENT", op, path);
    if (dir.kind !== "dir") throw osError("ENOTDIR", op, path);
    return { dir, name };
  }

  /** Remembers an operation that is in the cache but not durable, and tells the watchers. */
  private record(op: Op): void {
    this.pending.push(op);
    if (this.watchers.size === 0 || this.watchScheduled) return;
    this.watchScheduled = true;
    queueMicrotask(() => {
      this.watchScheduled = false;
      for (const w of [...this.watchers]) w();
    });
  }

  /** The file's durable buffer, copied first if a snapshot shares it. */
  private durableFile(node: FileNode): Buf {
    if (node.durable.shared) node.durable = node.durable.clone();
    return node.durable;
  }

  /** Applies the pending data operations of one file to its durable state (fdatasync). */
  private syncFile(ino: number): void {
    const node = this.nodes.get(ino);
    const rest: Op[] = [];
    for (const op of this.pending) {
      if (isDataOp(op) && op.ino === ino && node?.kind === "file") {
        const d = this.durableFile(node);
        if (op.t === "write") d.writeAt(op.off, op.data);
        else d.resize(op.len);
      } else rest.push(op);
    }
    this.pending = rest;
  }

  /** The durable directory map of `ino`, created if the node is gone (unlinked directories). */
  private durableDir(ino: number): Map<string, number> | undefined {
    const n = this.nodes.get(ino);
    return n?.kind === "dir" ? n.durable : undefined;
  }

  /**
   * The current (page-cache) contents of a file, or `null` if there is no file at `path`.
   * A test helper; not a counted platform call.
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * const f = await sim.open("/x", "createExclusive");
   * f.write(new Uint8Array([1, 2])); // in the page cache only
   * if (sim.fileBytes("/x")?.join() !== "1,2") throw new Error("not the cached bytes");
   * if (sim.fileBytes("/nope") !== null) throw new Error("no such file");
   * ```
   */
  fileBytes(path: string): Uint8Array | null {
    const n = this.lookup(path);
    return n?.kind === "file" ? n.cache.view().slice() : null;
  }

  /**
   * Replaces a file's contents, durably and outside the crash model (creating it, and making its
   * name durable, if needed). A test helper for planting corruption; not a counted call.
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * sim.setFileBytes("/x", new Uint8Array([0xff]));
   * if (sim.crash("none").fileBytes("/x")?.join() !== "255") throw new Error("not durable");
   * ```
   */
  setFileBytes(path: string, bytes: Uint8Array): void {
    let n = this.lookup(path);
    if (!n) {
      const { dir, name } = this.parentOf(path, "setFileBytes");
      const ino = this.nextIno++;
      n = newFile(ino);
      this.nodes.set(ino, n);
      dir.cache.set(name, ino);
      dir.durable.set(name, ino);
    }
    if (n.kind !== "file") throw osError("EISDIR", "setFileBytes", path);
    this.syncFile(n.ino);
    n.cache = new Buf(bytes.slice());
    n.durable = new Buf(bytes.slice());
    n.mtimeMs = Date.now();
  }

  /**
   * Every file path (sorted) in the current directory tree. A test helper; not a counted call.
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * await sim.mkdir("/d");
   * sim.setFileBytes("/d/b", new Uint8Array(1));
   * sim.setFileBytes("/a", new Uint8Array(1));
   * const files = sim.listFiles().join(" ");
   * if (files !== "/a /d/b") throw new Error(files);
   * ```
   */
  listFiles(): string[] {
    const out: string[] = [];
    const walk = (ino: number, prefix: string) => {
      const n = this.nodes.get(ino);
      if (!n) return;
      if (n.kind === "file") return void out.push(prefix);
      for (const [name, child] of n.cache) walk(child, `${prefix}/${name}`);
    };
    walk(ROOT, "");
    return out.sort();
  }

  // -- Platform --------------------------------------------------------------------------------

  /**
   * See {@linkcode Platform.open}. `mode` is accepted and ignored (no permissions are modelled);
   * the only file that is not regular is a directory, refused with `FileTypeError`.
   */
  open(path: string, how: OpenMode, _mode?: number): Promise<PlatformFile> {
    try {
      let node = this.lookup(path);
      if (how === "createExclusive") {
        const { dir, name } = this.parentOf(path, "open");
        if (node) throw osError("EEXIST", "open", path);
        const ino = this.nextIno++;
        node = newFile(ino);
        this.nodes.set(ino, node);
        dir.cache.set(name, ino);
        this.record({ t: "link", dir: dir.ino, name, ino });
      } else if (!node) {
        throw osError("ENOENT", "open", path);
      }
      if (node.kind !== "file") throw new FileTypeError({ path, found: "a directory" });
      this.count("open", path, how === "createExclusive");
      this.openFiles++;
      return Promise.resolve(new SimFile(this.host, node, path, how !== "read"));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** See {@linkcode Platform.syncDir}: makes the directory's pending entry operations durable. */
  syncDir(path: string): Promise<void> {
    return this.run(() => {
      const node = this.lookup(path);
      if (!node) throw osError("ENOENT", "syncDir", path);
      if (node.kind !== "dir") throw osError("ENOTDIR", "syncDir", path);
      const rest: Op[] = [];
      for (const op of this.pending) {
        if (touchesDir(op, node.ino)) applyEntryOp(op, (ino) => this.durableDir(ino));
        else rest.push(op);
      }
      this.pending = rest;
      this.count("syncDir", path, true);
    });
  }

  /** See {@linkcode Platform.rename}. */
  rename(from: string, to: string): Promise<void> {
    return this.run(() => {
      const node = this.lookup(from);
      if (!node) throw osError("ENOENT", "rename", from);
      const src = this.parentOf(from, "rename");
      const dst = this.parentOf(to, "rename");
      const existing = this.lookup(to);
      if (existing && existing.kind !== node.kind) {
        throw osError(existing.kind === "dir" ? "EISDIR" : "ENOTDIR", "rename", to);
      }
      if (existing?.kind === "dir" && existing.cache.size > 0) {
        throw osError("ENOTEMPTY", "rename", to);
      }
      if (existing === node) return this.count("rename", to, false);
      src.dir.cache.delete(src.name);
      dst.dir.cache.set(dst.name, node.ino);
      this.record({
        t: "rename",
        fromDir: src.dir.ino,
        fromName: src.name,
        toDir: dst.dir.ino,
        toName: dst.name,
        ino: node.ino,
      });
      this.count("rename", to, true);
    });
  }

  /** See {@linkcode Platform.unlink}. */
  unlink(path: string): Promise<void> {
    return this.run(() => {
      const node = this.lookup(path);
      if (!node) throw osError("ENOENT", "unlink", path);
      if (node.kind === "dir") throw osError("EISDIR", "unlink", path);
      const { dir, name } = this.parentOf(path, "unlink");
      dir.cache.delete(name);
      this.record({ t: "unlink", dir: dir.ino, name, ino: node.ino });
      this.count("unlink", path, true);
    });
  }

  /** See {@linkcode Platform.mkdir}. */
  mkdir(path: string, _mode?: number): Promise<boolean> {
    return this.run(() => {
      const existing = this.lookup(path);
      if (existing) {
        if (existing.kind !== "dir") throw osError("EEXIST", "mkdir", path);
        this.count("mkdir", path, false);
        return false;
      }
      const { dir, name } = this.parentOf(path, "mkdir");
      const ino = this.nextIno++;
      this.nodes.set(ino, newDir(ino));
      dir.cache.set(name, ino);
      this.record({ t: "link", dir: dir.ino, name, ino });
      this.count("mkdir", path, true);
      return true;
    });
  }

  /** See {@linkcode Platform.readdir}. */
  readdir(path: string): Promise<string[]> {
    return this.run(() => {
      const node = this.lookup(path);
      if (!node) throw osError("ENOENT", "readdir", path);
      if (node.kind !== "dir") throw osError("ENOTDIR", "readdir", path);
      this.count("readdir", path, false);
      return [...node.cache.keys()];
    });
  }

  /** See {@linkcode Platform.remove}: unlinks a file, or a directory tree bottom-up. */
  remove(path: string): Promise<void> {
    return this.run(() => {
      const node = this.lookup(path);
      if (node) {
        const { dir, name } = this.parentOf(path, "remove");
        const drop = (parent: DirNode, entry: string, n: Node) => {
          if (n.kind === "dir") {
            for (const [child, ino] of [...n.cache]) drop(n, child, this.nodes.get(ino)!);
          }
          parent.cache.delete(entry);
          this.record({ t: "unlink", dir: parent.ino, name: entry, ino: n.ino });
        };
        drop(dir, name, node);
      }
      this.count("remove", path, node !== undefined);
    });
  }

  /** See {@linkcode Platform.stat}. */
  stat(path: string): Promise<PlatformStat | null> {
    return this.statAs("stat", path);
  }

  /** See {@linkcode Platform.lstat}: the same as `stat`, as the model has no symbolic links. */
  lstat(path: string): Promise<PlatformStat | null> {
    return this.statAs("lstat", path);
  }

  /** `stat` and `lstat`, counted as the call `op`. */
  private statAs(op: "stat" | "lstat", path: string): Promise<PlatformStat | null> {
    return this.run(() => {
      const node = this.lookup(path);
      this.count(op, path, false);
      if (!node) return null;
      const isFile = node.kind === "file";
      return {
        size: isFile ? node.cache.len : 0,
        isFile,
        isDirectory: !isFile,
        isSymlink: false,
        mtimeMs: node.mtimeMs,
      };
    });
  }

  /**
   * See {@linkcode Platform.watch}. The simulator calls every watcher, once per turn, after any
   * change anywhere in it (a watcher must tolerate calls with nothing new for it).
   *
   * @example
   * ```ts
   * import { SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * await sim.mkdir("/d");
   * let calls = 0;
   * const w = sim.watch("/d", () => calls++);
   * const f = await sim.open("/d/x", "createExclusive");
   * f.write(new Uint8Array([1]));
   * await Promise.resolve();
   * const seen = calls; // the create and the write: called once per turn with changes
   * w.close();
   * f.write(new Uint8Array([2]));
   * await Promise.resolve();
   * f.close();
   * if (seen < 1 || calls !== seen) throw new Error(`${seen} then ${calls} calls`);
   * ```
   */
  watch(_dir: string, onChange: () => void): PlatformWatcher {
    const w = () => onChange();
    this.watchers.add(w);
    return { close: () => this.watchers.delete(w) };
  }

  /**
   * See {@linkcode Platform.lock}: exclusive per simulator instance (a crashed copy starts with no
   * locks, as a dead process holds none). Creates the lock file if missing, like a real platform;
   * `mode` is accepted and ignored, as in `open`.
   */
  lock(path: string, _mode?: number): Promise<PlatformLock> {
    return this.run(() => {
      const key = components(path).join("/");
      if (this.locks.has(key)) {
        throw new LockedError({ path, holder: "another holder in this simulated file system" });
      }
      let created = false;
      if (!this.lookup(path)) {
        const { dir, name } = this.parentOf(path, "lock");
        const ino = this.nextIno++;
        this.nodes.set(ino, newFile(ino));
        dir.cache.set(name, ino);
        this.record({ t: "link", dir: dir.ino, name, ino });
        created = true;
      }
      this.locks.add(key);
      this.count("lock", path, created);
      let held = true;
      return {
        path,
        release: () => {
          if (held) {
            held = false;
            this.locks.delete(key);
          }
          return Promise.resolve();
        },
      };
    });
  }

  /** Runs a synchronous model step as an async platform call (errors become rejections). */
  private run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** What a {@linkcode SimFile} may do to its file system. */
  private host: FileHost = {
    count: (op, path, mutates) => this.count(op, path, mutates),
    write: (node, data, at) => {
      const off = at ?? node.cache.len;
      const copy = data.slice();
      node.cache.writeAt(off, copy);
      node.mtimeMs = Date.now();
      this.record({ t: "write", ino: node.ino, off, data: copy });
    },
    truncate: (node, len) => {
      node.cache.resize(len);
      node.mtimeMs = Date.now();
      this.record({ t: "trunc", ino: node.ino, len });
    },
    sync: (node) => this.syncFile(node.ino),
    closed: () => void this.openFiles--,
  };
}

interface FileHost {
  count(op: string, path: string, mutates: boolean): void;
  /** Records a write of `data` at `at`, or at the end of the file. */
  write(node: FileNode, data: Uint8Array, at?: number): void;
  truncate(node: FileNode, len: number): void;
  sync(node: FileNode): void;
  closed(): void;
}

class SimFile implements PlatformFile {
  private closed = false;
  private readonly fs: FileHost;
  private readonly node: FileNode;
  readonly path: string;
  private readonly writable: boolean;
  constructor(fs: FileHost, node: FileNode, path: string, writable: boolean) {
    this.fs = fs;
    this.node = node;
    this.path = path;
    this.writable = writable;
  }

  private check(op: string, write = false): void {
    if (this.closed) throw new ClosedError({ what: "file", path: this.path });
    if (write && !this.writable) throw osError("EBADF", op, this.path);
  }

  write(data: Uint8Array): void {
    this.check("write", true);
    if (data.length > 0) this.fs.write(this.node, data);
    this.fs.count("write", this.path, data.length > 0);
  }

  writev(chunks: readonly Uint8Array[]): void {
    this.check("writev", true);
    this.#writeChunks("writev", chunks);
  }

  writeAt(data: Uint8Array, position: number): void {
    this.#positioned("writeAt", position);
    if (data.length > 0) this.fs.write(this.node, data, position);
    this.fs.count("writeAt", this.path, data.length > 0);
  }

  writevAt(chunks: readonly Uint8Array[], position: number): void {
    this.#positioned("writevAt", position);
    this.#writeChunks("writevAt", chunks, position);
  }

  /** The checks of a positional write, in the real adapters' order: closed, position, writable. */
  #positioned(op: string, position: number): void {
    this.check(op);
    checkPosition(position, op, this.path);
    this.check(op, true);
  }

  /** Records the chunks as one write operation (at `at`, or at the end), and counts the call. */
  #writeChunks(op: string, chunks: readonly Uint8Array[], at?: number): void {
    let total = 0;
    for (const c of chunks) total += c.length;
    // One writev is one write operation: it can tear, but not reorder within itself.
    if (total > 0) this.fs.write(this.node, concatChunks(chunks), at);
    this.fs.count(op, this.path, total > 0);
  }

  readAt(buf: Uint8Array, position: number): number {
    this.check("readAt");
    const src = this.node.cache;
    const n = Math.max(0, Math.min(buf.length, src.len - position));
    if (n > 0) buf.set(src.bytes.subarray(position, position + n));
    this.fs.count("readAt", this.path, false);
    return n;
  }

  size(): number {
    this.check("size");
    this.fs.count("size", this.path, false);
    return this.node.cache.len;
  }

  truncate(length: number): void {
    this.check("truncate", true);
    this.fs.truncate(this.node, length);
    this.fs.count("truncate", this.path, true);
  }

  datasync(): Promise<void> {
    return this.#flush("datasync");
  }

  sync(): Promise<void> {
    return this.#flush("sync");
  }

  /** Both make the file's data and size durable: the model keeps no other metadata. */
  #flush(op: "datasync" | "sync"): Promise<void> {
    try {
      this.check(op);
      this.fs.sync(this.node);
      this.fs.count(op, this.path, true);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fs.closed();
    this.fs.count("close", this.path, false);
  }
}
