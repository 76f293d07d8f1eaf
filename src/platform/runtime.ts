/**
 * Which JavaScript runtime is running this code, told by its globals. The one place that decides
 * it: the platform pick (`./detect.ts`), the lock owner line (`./lock_owner.ts`), the name of the
 * `node:fs` platform (`./node.ts`), the benchmarks and the tests all ask {@linkcode detectRuntime}.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./runtime.ts";
 * const runtime = detectRuntime();
 * if (!["deno", "bun", "node"].includes(runtime)) throw new Error(runtime);
 * ```
 * @module
 */

/** A runtime khipu-log runs on. */
export type RuntimeName = "deno" | "bun" | "node";

/**
 * Detects the runtime without touching the `Deno` or `Bun` types (so `tsc` passes on Node).
 *
 * The order matters, because the runtimes imitate one another: Bun defines `process` and
 * `process.versions.node`, and Deno defines `process` too (for Node compatibility, as in npm
 * mode), so "has `process`" says nothing. Neither of them defines the other's global, though, so
 * `Deno` (a namespace object with a `version`) is checked first, then `Bun`, and only a runtime
 * with neither is Node.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./runtime.ts";
 * const runtime = detectRuntime();
 * if ("Deno" in globalThis && runtime !== "deno") throw new Error(`Deno taken for ${runtime}`);
 * if ("Bun" in globalThis && runtime !== "bun") throw new Error(`Bun taken for ${runtime}`);
 * if (!("Deno" in globalThis) && !("Bun" in globalThis) && runtime !== "node") {
 *   throw new Error(`Node taken for ${runtime}`);
 * }
 * ```
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: { version?: unknown }; Bun?: unknown };
  if (typeof g.Deno === "object" && g.Deno !== null && g.Deno.version !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}
