/**
 * A wrapping {@linkcode Platform} that injects I/O errors on chosen calls, for testing error paths:
 * EIO or ENOSPC on a write (`write`, `writev`, `writeAt`, `writevAt`; optionally after part of the
 * bytes reached the file), EIO on fdatasync, a failing directory fsync, rename or unlink. Injected
 * errors are the same typed errors the real platforms raise: each is built by `fromOsError` from an
 * error object carrying the OS `code`, so ENOSPC is a `NoSpaceError`, EIO an `IoError` with
 * `osCode: "EIO"`, and so on.
 *
 * Wrap any platform; wrapping the simulator ({@linkcode SimPlatform} in `./sim.ts`) lets a test
 * inject a fault and then crash the file system to check what survived.
 *
 * @example Failing the second fdatasync of any segment with EIO
 * ```ts
 * import { PoisonedError, Store, SyncPolicy } from "@khipu/log";
 * import { FaultyPlatform, SimPlatform } from "@khipu/log/testing";
 * const p = new FaultyPlatform(new SimPlatform());
 * p.inject({ op: "datasync", path: ".seg", after: 1 });
 * const store = await Store.open("/data", { platform: p, syncPolicy: SyncPolicy.always() });
 * // The first fdatasync made the new segment durable; the append's is the second.
 * const err = await (await store.log("events")).append("paid").catch((e) => e);
 * await store.close();
 * if (!(err instanceof PoisonedError) || p.injected[0]?.code !== "EIO") throw new Error(`${err}`);
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
  PlatformWatcher,
} from "../platform/types.ts";

/**
 * The calls a fault can be injected into, named as the methods are: the four writes are `write`,
 * `writev` (appends), `writeAt` and `writevAt` (positional), so a rule for every write names all
 * four.
 *
 * @example
 * ```ts
 * import { IoError } from "@khipu/log";
 * import { type FaultOp, FaultyPlatform, SimPlatform } from "@khipu/log/testing";
 * const writes: FaultOp[] = ["write", "writev"];
 * const p = new FaultyPlatform(new SimPlatform(), [{ op: writes, times: Infinity }]);
 * const f = await p.open("/x", "createExclusive");
 * try {
 *   f.writev([new Uint8Array(1)]);
 *   throw new Error("expected EIO");
 * } catch (e) {
 *   if (!(e instanceof IoError) || e.osCode !== "EIO") throw e;
 * }
 * ```
 */
export type FaultOp = Exclude<PlatformOp | FileOp, "size" | "close" | "watch">;

/**
 * When and how to fail. A rule matches a call by operation and path; the first `after` matching
 * calls pass, the next `times` fail, later ones pass again.
 *
 * @example ENOSPC after 10 bytes of the third write to any file
 * ```ts
 * import { NoSpaceError } from "@khipu/log";
 * import { type FaultRule, FaultyPlatform, SimPlatform } from "@khipu/log/testing";
 * const rule: FaultRule = { op: ["write", "writev"], code: "ENOSPC", after: 2, partial: 10 };
 * const sim = new SimPlatform();
 * const f = await new FaultyPlatform(sim, [rule]).open("/x", "createExclusive");
 * f.write(new Uint8Array(4));
 * f.write(new Uint8Array(4));
 * try {
 *   f.write(new Uint8Array(100));
 *   throw new Error("expected ENOSPC");
 * } catch (e) {
 *   if (!(e instanceof NoSpaceError)) throw e;
 * }
 * if (sim.fileBytes("/x")?.length !== 18) throw new Error("not 4 + 4 + 10 bytes");
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
  /**
   * Writes only (`write`, `writev`, `writeAt`, `writevAt`): this many leading bytes reach the file
   * (at the position the call was given, for the positional ones) before the error (default 0).
   */
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
 * import { FaultyPlatform, type InjectedFault, SimPlatform } from "@khipu/log/testing";
 * const p = new FaultyPlatform(new SimPlatform(), [{ op: "mkdir", code: "EACCES" }]);
 * const err = await p.mkdir("/d").catch((e) => e);
 * const f: InjectedFault | undefined = p.injected[0];
 * if (f?.op !== "mkdir" || f.path !== "/d" || f.code !== "EACCES" || f.error !== err) {
 *   throw new Error(`${err}`);
 * }
 * if (f.error.code !== "PERMISSION_DENIED") throw new Error(f.error.code);
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
 * import { IoError } from "@khipu/log";
 * import { FaultyPlatform, SimPlatform } from "@khipu/log/testing";
 * const p = new FaultyPlatform(new SimPlatform(), [{ op: "syncDir", times: Infinity }]);
 * if (!(await p.mkdir("/d"))) throw new Error("mkdir should pass through");
 * const err = await p.syncDir("/").catch((e) => e);
 * if (!(err instanceof IoError) || err.osCode !== "EIO") throw new Error(`expected EIO: ${err}`);
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
   * import { FaultyPlatform, SimPlatform } from "@khipu/log/testing";
   * const sim = new SimPlatform();
   * sim.setFileBytes("/a", new Uint8Array(1));
   * const p = new FaultyPlatform(sim).inject({ op: "rename" }).inject({ op: "unlink" });
   * const renamed = await p.rename("/a", "/b").then(() => true, () => false);
   * const unlinked = await p.unlink("/a").then(() => true, () => false);
   * if (renamed || unlinked || p.injected.length !== 2) throw new Error("both should fail");
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
   * import { FaultyPlatform, SimPlatform } from "@khipu/log/testing";
   * const p = new FaultyPlatform(new SimPlatform(), [{ op: "mkdir" }]);
   * p.clear();
   * if (!(await p.mkdir("/d")) || p.injected.length !== 0) throw new Error("the rule still fired");
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

  /** See {@linkcode Platform.watch}: passed through (a watch has no error to inject). */
  watch(dir: string, onChange: () => void): PlatformWatcher {
    return this.inner.watch(dir, onChange);
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

  /**
   * Writes `partial` leading bytes of a failing write (all of them if `performed`), at `position`
   * or at the end of the file, then throws.
   */
  private failWrite(rule: FaultRule, op: FaultOp, data: Uint8Array, position?: number): never {
    const n = rule.performed ? data.length : Math.max(0, Math.min(rule.partial ?? 0, data.length));
    if (n > 0 || rule.performed) {
      const part = n === data.length ? data : data.subarray(0, n);
      if (position === undefined) this.inner.write(part);
      else this.inner.writeAt(part, position);
    }
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

  writeAt(data: Uint8Array, position: number): void {
    const rule = this.fire("writeAt");
    if (!rule) return this.inner.writeAt(data, position);
    this.failWrite(rule, "writeAt", data, position);
  }

  writevAt(chunks: readonly Uint8Array[], position: number): void {
    const rule = this.fire("writevAt");
    if (!rule) return this.inner.writevAt(chunks, position);
    this.failWrite(rule, "writevAt", concatChunks(chunks), position);
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
