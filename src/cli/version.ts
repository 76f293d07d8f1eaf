/**
 * The package version `khipu --version` prints (a test checks it against package.json and
 * deno.json: the CLI cannot read them at run time from every way it is installed).
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * if (!/^\d+\.\d+\.\d+/.test(VERSION)) throw new Error(VERSION);
 * ```
 * @module
 */

/** The package version. */
export const VERSION = "0.1.0";
