/**
 * The khipu-log implementations a run measures, loaded by path through the public API only
 * (`Store`, `SyncPolicy`, `log.append`/`appendBatch`/`read`, `store.close`):
 *
 * - `current`: this checkout's `mod.ts` (or the directory in `KHIPU_BENCH_CURRENT`);
 * - `v1`: the directory in `KHIPU_BENCH_V1`, a `git worktree` of the v1 code (commit c8ac77d)
 *   that `scripts/bench_all.ts` creates for the run and removes afterwards. Without it, no v1 rows.
 *
 * Every khipu benchmark builds its rows for each implementation, and the fsync-bound ones
 * interleave them round by round, so a "v1 → current" ratio compares two codes measured side by
 * side, never two runs. Row names of the v1 code carry the prefix `v1 `
 * (`v1 khipu always() x1 append 100B`); current rows keep the plain names.
 *
 * The types are structural and local: the benchmarks do not type-check against either source tree,
 * so a rewrite of `src/` cannot break them as long as the public API holds.
 *
 * @example
 * ```ts
 * import { loadImpls } from "./impls.ts";
 * const impls = await loadImpls();
 * console.log(impls.map((i) => i.label));
 * ```
 * @module
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

/** A record as `log.read()` yields it. */
export interface KhipuRecord {
  /** Sequence number. */
  seq: number;
  /** Payload. */
  data: Uint8Array;
}

/** The part of a `Log` the benchmarks use. */
export interface KhipuLog {
  /** Appends one record; resolves with its sequence number. */
  append(data: Uint8Array): Promise<number>;
  /** Appends records in order; resolves with their sequence numbers. */
  appendBatch(items: readonly Uint8Array[]): Promise<number[]>;
  /** Reads records from `from` on. */
  read(opts?: { from?: number }): AsyncIterable<KhipuRecord>;
}

/** The part of a `Store` the benchmarks use. */
export interface KhipuStore {
  /** Opens (or creates) a log. */
  log(name: string): Promise<KhipuLog>;
  /** Flushes, syncs and closes. */
  close(): Promise<void>;
}

/** An opaque policy object built by {@linkcode KhipuSyncPolicyClass}. */
export type KhipuPolicy = object;

/** `SyncPolicy`'s static builders. `everyN`'s options are new in v2 (v1 ignores them). */
export interface KhipuSyncPolicyClass {
  always(): KhipuPolicy;
  everyN(n?: number, opts?: { maxDelayMs?: number }): KhipuPolicy;
  interval(ms: number): KhipuPolicy;
  osManaged(): KhipuPolicy;
}

/** Options of `Store.open` the benchmarks pass. */
export interface KhipuStoreOptions {
  syncPolicy?: KhipuPolicy;
  segmentBytes?: number;
}

/** What a `mod.ts` exports, as far as the benchmarks care. */
export interface KhipuModule {
  Store: { open(dir: string, opts?: KhipuStoreOptions): Promise<KhipuStore> };
  SyncPolicy: KhipuSyncPolicyClass;
}

/** One implementation under test. */
export interface Impl {
  /** `current` or `v1`. */
  key: "current" | "v1";
  /** For reports: `current` or `v1 (c8ac77d)`. */
  label: string;
  /** Row-name prefix: `""` for current, `"v1 "` for v1. */
  prefix: string;
  /** The directory holding its `mod.ts`. */
  dir: string;
  /** `git describe --always --dirty` of that directory, if it is a git checkout. */
  commit?: string;
  /** The loaded module. */
  mod: KhipuModule;
}

/** The repository root (the parent of `bench/`). */
export const REPO_ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * `git describe --always --dirty` of `dir`, or undefined.
 *
 * @example
 * ```ts
 * import { gitDescribe, REPO_ROOT } from "./impls.ts";
 * console.log(gitDescribe(REPO_ROOT));
 * ```
 */
export function gitDescribe(dir: string): string | undefined {
  try {
    const r = spawnSync("git", ["describe", "--always", "--dirty"], { cwd: dir, encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

let loaded: Promise<Impl[]> | undefined;

async function load(): Promise<Impl[]> {
  const out: Impl[] = [];
  const curDir = path.resolve(process.env.KHIPU_BENCH_CURRENT ?? REPO_ROOT);
  const cur = (await import(pathToFileURL(path.join(curDir, "mod.ts")).href)) as KhipuModule;
  out.push({
    key: "current",
    label: "current",
    prefix: "",
    dir: curDir,
    commit: gitDescribe(curDir),
    mod: cur,
  });
  const v1Dir = process.env.KHIPU_BENCH_V1;
  if (v1Dir) {
    const dir = path.resolve(v1Dir);
    const mod = (await import(pathToFileURL(path.join(dir, "mod.ts")).href)) as KhipuModule;
    const commit = gitDescribe(dir);
    out.push({ key: "v1", label: `v1 (${commit ?? "?"})`, prefix: "v1 ", dir, commit, mod });
  }
  return out;
}

/**
 * Loads the implementations once per process (current first, then v1 if `KHIPU_BENCH_V1` is set).
 *
 * @example
 * ```ts
 * import { loadImpls } from "./impls.ts";
 * const [current] = await loadImpls();
 * console.log(current.dir);
 * ```
 */
export function loadImpls(): Promise<Impl[]> {
  loaded ??= load();
  return loaded;
}

/**
 * Whether `SyncPolicy.everyN(n, { maxDelayMs })` exists: `everyN(2, { maxDelayMs: 5 })` does not
 * throw. (v1 accepts and ignores the options object; its rows say so.)
 *
 * @example
 * ```ts
 * import { everyNDelaySupported, loadImpls } from "./impls.ts";
 * const [current] = await loadImpls();
 * console.log(everyNDelaySupported(current));
 * ```
 */
export function everyNDelaySupported(impl: Impl): true | string {
  try {
    impl.mod.SyncPolicy.everyN(2, { maxDelayMs: 5 });
    return true;
  } catch (e) {
    return `SyncPolicy.everyN(2, { maxDelayMs: 5 }) threw: ${(e as Error).message}`;
  }
}
