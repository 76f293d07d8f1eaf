/**
 * How the runtime adapters make an OS call: run it, and turn what it throws into the
 * `KhipuError` that `fromOsError` names after the operation and path (`open: ...`,
 * `fdatasync: ...`). {@linkcode osCall} is for synchronous calls, {@linkcode osCallAsync} for
 * asynchronous ones; an error that already is a `KhipuError` passes through unchanged.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "@khipu/log";
 * import { readFileSync } from "node:fs";
 * import { osCall } from "./os_call.ts";
 * try {
 *   osCall("read", "/no/such/file", () => readFileSync("/no/such/file"));
 *   throw new Error("read a missing file");
 * } catch (e) {
 *   if (!(e instanceof NotFoundError)) throw e;
 *   if (e.message !== "read: no such file or directory (/no/such/file)") throw e;
 * }
 * ```
 * @module
 */
import { fromOsError } from "../errors.ts";

/**
 * The `code` of an error (an OS error's `ENOENT`, a `KhipuError`'s `NOT_FOUND`), or
 * undefined when it has none (or is not an object).
 *
 * @example
 * ```ts
 * import { errorCode } from "./os_call.ts";
 * if (errorCode(Object.assign(new Error(), { code: "ENOENT" })) !== "ENOENT") throw new Error();
 * if (errorCode(null) !== undefined) throw new Error("null has a code");
 * ```
 */
export function errorCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/**
 * Runs the synchronous OS call `call`, throwing its failure as `fromOsError(err, op, path)`.
 *
 * @example
 * ```ts
 * import { IoError } from "@khipu/log";
 * import { osCall } from "./os_call.ts";
 * if (osCall("fstat", "/x", () => 42) !== 42) throw new Error("lost the result");
 * try {
 *   osCall("fstat", "/x", () => {
 *     throw Object.assign(new Error("bad fd"), { code: "EBADF" });
 *   });
 * } catch (e) {
 *   if (!(e instanceof IoError) || e.message !== "fstat: I/O error EBADF (/x)") throw e;
 * }
 * ```
 */
export function osCall<T>(op: string, path: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw fromOsError(err, op, path);
  }
}

/**
 * A failure an asynchronous OS call may end in that is not an error: when `when(err)` holds,
 * {@linkcode osCallAsync} returns `value` instead of throwing (e.g. a `stat` of nothing is null).
 */
export interface Expected<U> {
  /** Whether the raw OS error `err` is the expected one. */
  when(err: unknown): boolean | Promise<boolean>;
  /** What the call returns then. */
  value: U;
}

/**
 * Runs the asynchronous OS call `call`, rejecting with `fromOsError(err, op, path)` when it fails
 * (or throws before returning its promise), unless the failure is the `expected` one.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "@khipu/log";
 * import { promises as fs } from "node:fs";
 * import { osCallAsync } from "./os_call.ts";
 * const missing = (err: unknown) => (err as { code?: string }).code === "ENOENT";
 * const st = await osCallAsync("stat", "/no/such", () => fs.stat("/no/such"), {
 *   when: missing,
 *   value: null,
 * });
 * if (st !== null) throw new Error("stat of nothing");
 * try {
 *   await osCallAsync("unlink", "/no/such", () => fs.unlink("/no/such"));
 *   throw new Error("unlinked nothing");
 * } catch (e) {
 *   if (!(e instanceof NotFoundError) || !e.message.startsWith("unlink: ")) throw e;
 * }
 * ```
 */
export async function osCallAsync<T, U = never>(
  op: string,
  path: string,
  call: () => Promise<T>,
  expected?: Expected<U>,
): Promise<T | U> {
  try {
    return await call();
  } catch (err) {
    if (expected && (await expected.when(err))) return expected.value;
    throw fromOsError(err, op, path);
  }
}
