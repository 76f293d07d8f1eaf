/**
 * Picks the {@linkcode Platform} for the running runtime: Deno's own file API under Deno, `node:fs`
 * under Node and Bun (named `"bun"` there). The Deno adapter is loaded with a dynamic import, so Node
 * and Bun never evaluate a module that touches the `Deno` global. Callers can always pass their own
 * platform instead (the Store's `platform` option).
 *
 * @example
 * ```ts
 * import { defaultPlatform } from "./detect.ts";
 * const p = await defaultPlatform();
 * console.log(p.name); // "deno", "node" or "bun"
 * ```
 * @module
 */
import type { Platform } from "./types.ts";

/** Which runtime this is, by its globals. */
export type RuntimeName = "deno" | "bun" | "node";

/**
 * Detects the runtime. Bun is checked before Node because Bun also defines `process.versions.node`.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./detect.ts";
 * console.log(detectRuntime());
 * ```
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: { version?: unknown }; Bun?: unknown };
  if (typeof g.Deno === "object" && g.Deno !== null && g.Deno.version !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}

let cached: Promise<Platform> | undefined;

/**
 * The platform for this runtime (created once, then shared).
 *
 * @example
 * ```ts
 * import { defaultPlatform } from "./detect.ts";
 * const p = await defaultPlatform();
 * await p.mkdir("/tmp/khipu-detect-example");
 * ```
 */
export function defaultPlatform(): Promise<Platform> {
  cached ??= (async () => {
    if (detectRuntime() === "deno") return (await import("./deno.ts")).denoPlatform;
    return (await import("./node.ts")).nodePlatform;
  })();
  return cached;
}
