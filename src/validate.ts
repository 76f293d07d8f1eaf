/**
 * Checks of what callers pass in, shared by every public method: each bad value becomes an
 * {@linkcode InvalidArgumentError} that names the argument and shows the value with its type
 * (`got "1048576" (a string)`), and an options object may hold only the keys its method knows, so
 * a typo such as `syncpolicy` fails instead of silently meaning the default.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { wholeNumber } from "./validate.ts";
 * try {
 *   wholeNumber("segmentBytes", "1048576", 4096, 2 ** 48);
 *   throw new Error("accepted a string");
 * } catch (e) {
 *   if (!(e instanceof InvalidArgumentError) || !e.message.includes('"1048576" (a string)')) {
 *     throw e;
 *   }
 * }
 * ```
 * @module
 */
import { InvalidArgumentError, RecordTooLargeError } from "./errors.ts";

const encoder = new TextEncoder();

/**
 * How a value reads in an error message: strings quoted, with the type when it may surprise.
 *
 * @example
 * ```ts
 * import { describeValue } from "./validate.ts";
 * if (describeValue("7") !== '"7" (a string)' || describeValue(null) !== "null") throw new Error();
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return `${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)} (a string)`;
    case "number":
      return String(value);
    case "bigint":
      return `${value}n (a bigint)`;
    case "boolean":
      return `${value} (a boolean)`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  }
}

/**
 * `value` if it is a whole number in `[min, max]`, else an `InvalidArgumentError` naming `what`.
 *
 * @example
 * ```ts
 * import { wholeNumber } from "./validate.ts";
 * if (wholeNumber("fileMode", 0o600, 0, 0o777) !== 0o600) throw new Error();
 * ```
 */
export function wholeNumber(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError({
      message: `${what} must be a whole number in [${min}, ${max}], got ${describeValue(value)}`,
    });
  }
  return value;
}

/**
 * `value` if it is a boolean, else an `InvalidArgumentError` naming `what`.
 *
 * @example
 * ```ts
 * import { boolean } from "./validate.ts";
 * if (boolean("repair", true) !== true) throw new Error();
 * ```
 */
export function boolean(what: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new InvalidArgumentError({
      message: `${what} must be true or false, got ${describeValue(value)}`,
    });
  }
  return value;
}

/**
 * The options object `value` of `what` (an empty one when `undefined`), checked to be a plain
 * object holding only `known` keys; an unknown key names the closest known one.
 *
 * @example
 * ```ts
 * import { options } from "./validate.ts";
 * // options as JavaScript or a config file may pass them, unchecked by the type system
 * const given: { syncPolicy?: number; repair?: boolean } = JSON.parse('{ "syncpolicy": 1 }');
 * try {
 *   options("Store.open options", given, ["syncPolicy", "repair"]);
 *   throw new Error("accepted a typo");
 * } catch (e) {
 *   if (!(e as Error).message.includes('did you mean "syncPolicy"')) throw e;
 * }
 * ```
 */
export function options<T extends object>(
  what: string,
  value: T | undefined,
  known: readonly (keyof T & string)[],
): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError({
      message: `${what} must be an object, got ${describeValue(value)}`,
    });
  }
  for (const key of Object.keys(value)) {
    if ((known as readonly string[]).includes(key)) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase());
    throw new InvalidArgumentError({
      message: `${what}: unknown option ${JSON.stringify(key)}` +
        (near ? ` (did you mean ${JSON.stringify(near)}?)` : ` (known: ${known.join(", ")})`),
    });
  }
  return value;
}

/**
 * A record's bytes: a `Uint8Array` as is, a string as UTF-8; anything else is an
 * `InvalidArgumentError`, and more than `maxRecordBytes` a `RecordTooLargeError` (nothing written).
 *
 * @example
 * ```ts
 * import { RecordTooLargeError } from "@khipu/log";
 * import { recordBytes } from "./validate.ts";
 * if (recordBytes("hé", 16, "/d/log").length !== 3) throw new Error("UTF-8");
 * try {
 *   recordBytes(new Uint8Array(17), 16, "/d/log");
 *   throw new Error("accepted 17 bytes");
 * } catch (e) {
 *   if (!(e instanceof RecordTooLargeError)) throw e;
 * }
 * ```
 */
export function recordBytes(data: unknown, maxRecordBytes: number, path: string): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError({
      message: `a record is a Uint8Array or a string, got ${describeValue(bytes)}`,
      path,
    });
  }
  if (bytes.length > maxRecordBytes) {
    throw new RecordTooLargeError({ size: bytes.length, limit: maxRecordBytes, path });
  }
  return bytes;
}
