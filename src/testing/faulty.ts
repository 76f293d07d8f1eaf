/**
 * A wrapping {@linkcode Platform} that injects I/O errors on chosen calls, for testing error paths:
 * EIO or ENOSPC on a write (optionally after part of the bytes reached the file), EIO on fdatasync,
 * a failing directory fsync, rename or unlink. Injected errors are the same typed errors the real
 * platforms raise: each is built by `fromOsError` from an error object carrying the OS `code`, so
 * ENOSPC is a `NoSpaceError`, EIO an `IoError` with `osCode: "EIO"`, and so on.
 *
 * Wrap any platform; wrapping the simulator ({@linkcode SimPlatform} in `./sim.ts`) lets a test
 * inject a fault and then crash the file system to check what survived.
 *
 * @example Failing the second fdatasync of any segment with EIO
 * ```ts
 * import { FaultyPlatform } from "./faulty.ts";
 * import { SimPlatform } from "./sim.ts";
 * const sim = new SimPlatform();
 * const p = new FaultyPlatform(sim).inject({ op: "datasync", path: ".seg", after: 1 });
 * // use `p` as the store's platform; then inspect p.injected
 * console.log(p.injected.length);
 * ```
 * @module
 */
import { fromOsError, type KhipuError } from "../errors.ts";
import { concatChunks } from "../platform/write_all.ts";
import type {
  FileOp,
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformOp,
  PlatformStat,
} from "../platform/types.ts";

/**
 * The calls a fault can be injected into.
 *
 * @example
 * ```ts
 * import type { FaultOp } from "./faulty.ts";
 * const ops: FaultOp[] = ["write", "writev"];
 * console.log(ops);
 * ```
 */
export type FaultOp = Exclude<PlatformOp | FileOp, "size" | "close">;

/**
 * When and how to fail. A rule matches a call by operation and path; the first `after` matching
 * calls pass, the next `times` fail, later ones pass again.
 *
 * @example ENOSPC after 10 bytes of the third write to any file
 * ```ts
 * import type { FaultRule } from "./faulty.ts";
 * const rule: FaultRule = { op: ["write", "writev"], code: "ENOSPC", after: 2, partial: 10 };
 * console.log(rule);
 * ```
 */
export interface FaultRule {
  /** The operation(s) to fail. */
  op: FaultOp | readonly FaultOp[];
  /** The OS error code raised (default `"EIO"`). */
  code?: string;
  /**
   * Which paths: a substring of the path, a RegExp, or a predicate (default: every path).
   * For `rename` the destination path is tested, then the source.
   */
  path?: string | RegExp | ((path: string) => boolean);
  /** Matching calls that pass before the first failure (default 0). */
  after?: number;
  /** How many matching calls fail (default 1; `Infinity` for all later ones). */
  times?: number;
  /** `write`/`writev` only: this many leading bytes reach the file before the error (default 0). */
  partial?: number;
  /**
   * Perform the real call before raising the error (default false: the call has no effect).
   * Models "it happened, but the OS reported a failure", e.g. a rename reported as EIO.
   */
  performed?: boolean;
}

/**
 * One injected failure, as recorded in {@linkcode FaultyPlatform.injected}.
 *
 * @example
 * ```ts
 * import type { InjectedFault } from "./faulty.ts";
 * const f: InjectedFault = { op: "datasync", path: "/d/0.seg", code: "EIO", error: new Error() as never };
 * console.log(f.op);
 * ```
 */
export interface InjectedFault {
  /** The failed operation. */
  op: FaultOp;
  /** The path concerned. */
  path: string;
  /** The OS code raised. */
  code: string;
  /** The typed error thrown to the caller. */
  error: KhipuError;
}

interface ArmedRule {
  rule: FaultRule;
  seen: number;
  failed: number;
}

function matchesPath(rule: FaultRule, path: string): boolean {
  const p = rule.path;
  if (p === undefined) return true;
  if (typeof p === "string") return path.includes(p);
  if (p instanceof RegExp) return p.test(path);
  return p(path);
}

/**
 * The fault-injecting wrapper. Every call is passed to the wrapped platform unless a rule fires.
 *
 * @example
 * ```ts
 * import { FaultyPlatform } from "./faulty.ts";
 * import { SimPlatform } from "./sim.ts";
 * const p = new FaultyPlatform(new SimPlatform(), [{ op: "syncDir", times: Infinity }]);
 * await p.mkdir("/d");
 * await p.syncDir("/").catch((e) => console.log(e.code)); // "IO"
 * ```
 */
export class FaultyPlatform implements Platform {
  /** `faulty(<inner name>)`. */
  readonly name: string;
  /** Every fault injected so far, in order. */
  readonly injected: InjectedFault[] = [];
  private rules: ArmedRule[] = [];
  /** The wrapped platform. */
  readonly inner: Platform;

  /** Wraps `inner`, with optional initial rules. */
  constructor(inner: Platform, rules: readonly FaultRule[] = []) {
    this.inner = inner;
    this.name = `faulty(${inner.name})`;
    for (const r of rules) this.inject(r);
  }

  /**
   * Arms one more rule. Returns `this` for chaining.
   *
   * @example
   * ```ts
   * import { FaultyPlatform } from "./faulty.ts";
   * import { SimPlatform } from "./sim.ts";
   * const p = new FaultyPlatform(new SimPlatform()).inject({ op: "rename" }).inject({ op: "unlink" });
   * void p;
   * ```
   */
  inject(rule: FaultRule): this {
    this.rules.push({ rule, seen: 0, failed: 0 });
    return this;
  }

  /**
   * Disarms every rule (the record of injected faults is kept).
   *
   * @example
   * ```ts
   * import { FaultyPlatform } from "./faulty.ts";
   * import { SimPlatform } from "./sim.ts";
   * new FaultyPlatform(new SimPlatform(), [{ op: "write" }]).clear();
   * ```
   */
  clear(): void {
    this.rules = [];
  }

  /**
   * The rule that fires on this call, if any. Counts the call against every matching rule, so
   * `after` counts matching calls whether or not an earlier rule fired.
   */
  private fire(op: FaultOp, paths: readonly string[]): FaultRule | undefined {
    let hit: FaultRule | undefined;
    for (const armed of this.rules) {
      const ops = armed.rule.op;
      const opMatch = typeof ops === "string" ? ops === op : ops.includes(op);
      if (!opMatch || !paths.some((p) => matchesPath(armed.rule, p))) continue;
      armed.seen++;
      const after = armed.rule.after ?? 0;
      const times = armed.rule.times ?? 1;
      if (!hit && armed.seen > after && armed.failed < times) {
        armed.failed++;
        hit = armed.rule;
      }
    }
    return hit;
  }

  /** Builds, records and returns the typed error for a fired rule. */
  private error(rule: FaultRule, op: FaultOp, path: string): KhipuError {
    const code = rule.code ?? "EIO";
    const raw = Object.assign(new Error(`${code}: injected fault on ${op} ${path}`), { code });
    const error = fromOsError(raw, op, path);
    this.injected.push({ op, path, code, error });
    return error;
  }

  /** Runs an async platform call through the rules. */
  private async call<T>(
    op: FaultOp,
    paths: readonly string[],
    run: () => Promise<T>,
  ): Promise<T> {
    const rule = this.fire(op, paths);
    if (!rule) return await run();
    if (rule.performed) await run();
    throw this.error(rule, op, paths[0]);
  }

  /** See {@linkcode Platform.open}; the returned file injects faults too. */
  async open(path: string, how: OpenMode, mode?: number): Promise<PlatformFile> {
    const file = await this.call("open", [path], () => this.inner.open(path, how, mode));
    return new FaultyFile(
      file,
      (op) => this.fire(op, [file.path]),
      (r, op) => this.error(r, op, file.path),
    );
  }

  /** See {@linkcode Platform.syncDir}. */
  syncDir(path: string): Promise<void> {
    return this.call("syncDir", [path], () => this.inner.syncDir(path));
  }

  /** See {@linkcode Platform.rename}. */
  rename(from: string, to: string): Promise<void> {
    return this.call("rename", [to, from], () => this.inner.rename(from, to));
  }

  /** See {@linkcode Platform.unlink}. */
  unlink(path: string): Promise<void> {
    return this.call("unlink", [path], () => this.inner.unlink(path));
  }

  /** See {@linkcode Platform.mkdir}. */
  mkdir(path: string, mode?: number): Promise<boolean> {
    return this.call("mkdir", [path], () => this.inner.mkdir(path, mode));
  }

  /** See {@linkcode Platform.readdir}. */
  readdir(path: string): Promise<string[]> {
    return this.call("readdir", [path], () => this.inner.readdir(path));
  }

  /** See {@linkcode Platform.remove}. */
  remove(path: string): Promise<void> {
    return this.call("remove", [path], () => this.inner.remove(path));
  }

  /** See {@linkcode Platform.stat}. */
  stat(path: string): Promise<PlatformStat | null> {
    return this.call("stat", [path], () => this.inner.stat(path));
  }

  /** See {@linkcode Platform.lstat}. */
  lstat(path: string): Promise<PlatformStat | null> {
    return this.call("lstat", [path], () => this.inner.lstat(path));
  }

  /** See {@linkcode Platform.lock}. */
  lock(path: string, mode?: number): Promise<PlatformLock> {
    return this.call("lock", [path], () => this.inner.lock(path, mode));
  }
}

class FaultyFile implements PlatformFile {
  private readonly inner: PlatformFile;
  private readonly fire: (op: FaultOp) => FaultRule | undefined;
  private readonly error: (rule: FaultRule, op: FaultOp) => KhipuError;

  constructor(
    inner: PlatformFile,
    fire: (op: FaultOp) => FaultRule | undefined,
    error: (rule: FaultRule, op: FaultOp) => KhipuError,
  ) {
    this.inner = inner;
    this.fire = fire;
    this.error = error;
  }

  get path(): string {
    return this.inner.path;
  }

  /** Runs a sync file call through the rules. */
  private syncCall<T>(op: FaultOp, run: () => T): T {
    const rule = this.fire(op);
    if (!rule) return run();
    if (rule.performed) run();
    throw this.error(rule, op);
  }

  /** Writes `partial` leading bytes of a failing write, then throws. */
  private failWrite(rule: FaultRule, op: FaultOp, data: Uint8Array): never {
    const n = Math.max(0, Math.min(rule.partial ?? 0, data.length));
    if (rule.performed) this.inner.write(data);
    else if (n > 0) this.inner.write(data.subarray(0, n));
    throw this.error(rule, op);
  }

  write(data: Uint8Array): void {
    const rule = this.fire("write");
    if (!rule) return this.inner.write(data);
    this.failWrite(rule, "write", data);
  }

  writev(chunks: readonly Uint8Array[]): void {
    const rule = this.fire("writev");
    if (!rule) return this.inner.writev(chunks);
    this.failWrite(rule, "writev", concatChunks(chunks));
  }

  readAt(buf: Uint8Array, position: number): number {
    return this.syncCall("readAt", () => this.inner.readAt(buf, position));
  }

  size(): number {
    return this.inner.size();
  }

  truncate(length: number): void {
    this.syncCall("truncate", () => this.inner.truncate(length));
  }

  async datasync(): Promise<void> {
    const rule = this.fire("datasync");
    if (!rule) return await this.inner.datasync();
    if (rule.performed) await this.inner.datasync();
    throw this.error(rule, "datasync");
  }

  async sync(): Promise<void> {
    const rule = this.fire("sync");
    if (!rule) return await this.inner.sync();
    if (rule.performed) await this.inner.sync();
    throw this.error(rule, "sync");
  }

  close(): void {
    this.inner.close();
  }
}
