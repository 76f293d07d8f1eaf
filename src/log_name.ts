/**
 * Log names: what a log may be called, so that a name is always one directory inside the store
 * (never a path outside it, never the lock file, never a Windows device).
 *
 * @example
 * ```ts
 * import { isLogName } from "./log_name.ts";
 * if (!isLogName("orders-2026.v1") || isLogName("../etc") || isLogName("LOCK")) throw new Error();
 * ```
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";

/** Name of the lock file in a store directory. */
export const LOCK_FILE = "LOCK";

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i;

/**
 * Checks a log name: 1-100 characters from `A-Z a-z 0-9 _ . -`, not starting with `.` or `-`, not
 * `LOCK` or `LOCK.*`, and not a name Windows reserves (`CON`, `NUL`, `COM1`...). Throws `InvalidArgumentError`.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { validateLogName } from "./log_name.ts";
 * validateLogName("orders-2026.v1"); // ok
 * try {
 *   validateLogName("../etc");
 *   throw new Error("accepted ../etc");
 * } catch (e) {
 *   if (!(e instanceof InvalidArgumentError)) throw e;
 * }
 * ```
 */
export function validateLogName(name: string): void {
  if (!isPortableName(name) || isLockName(name)) {
    throw new InvalidArgumentError({
      message: `invalid log name ${JSON.stringify(name)}: use 1-100 of A-Z a-z 0-9 _ . - ` +
        `(not starting with '.' or '-', not ending with '.', not LOCK or LOCK.*, not a Windows device name)`,
    });
  }
}

/**
 * Checks a cursor name: 1-100 characters from `A-Z a-z 0-9 _ . -`, not starting with `.` or `-`,
 * not ending with `.`, not a Windows device name. Unlike a log name it may be `LOCK`: a cursor's
 * files all carry a suffix (`<name>.cursor`, `<name>.lock`). Throws `InvalidArgumentError`.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { validateCursorName } from "./log_name.ts";
 * validateCursorName("billing.v2"); // ok
 * try {
 *   validateCursorName("a/b");
 *   throw new Error("accepted a/b");
 * } catch (e) {
 *   if (!(e instanceof InvalidArgumentError)) throw e;
 * }
 * ```
 */
export function validateCursorName(name: string): void {
  if (!isPortableName(name)) {
    throw new InvalidArgumentError({
      message: `invalid cursor name ${JSON.stringify(name)}: use 1-100 of A-Z a-z 0-9 _ . - ` +
        `(not starting with '.' or '-', not ending with '.', not a Windows device name)`,
    });
  }
}

/**
 * True if `name` is a valid log name (see {@linkcode validateLogName}).
 *
 * @example
 * ```ts
 * import { isLogName } from "./log_name.ts";
 * if (isLogName(".deleted-x")) throw new Error("names never start with a dot");
 * ```
 */
export function isLogName(name: string): boolean {
  try {
    validateLogName(name);
    return true;
  } catch {
    return false;
  }
}

/** A name that is one plain file or directory name on every platform. */
function isPortableName(name: string): boolean {
  return typeof name === "string" && NAME_RE.test(name) && !WINDOWS_RESERVED.test(name) &&
    !name.endsWith(".");
}

/** The lock file and the lock protocol's helper files (`LOCK.*`) share the store directory. */
function isLockName(name: string): boolean {
  const upper = name.toUpperCase();
  return upper === LOCK_FILE || upper.startsWith(`${LOCK_FILE}.`);
}
