/**
 * Picks the {@linkcode Platform} for the running runtime: Deno's own file API under Deno, `node:fs`
 * under Node and Bun (named `"bun"` there). The Deno adapter is loaded with a dynamic import, so Node
 * and Bun never evaluate a module that touches the `Deno` global. Callers can always pass their own
 * platform instead (the Store's `platform` option).
 *
 * @example
 * ```ts
 * import { defaultPlatform } from "@khipu/log/platform";
 * const p = await defaultPlatform();
 * if (!["deno", "node", "bun"].includes(p.name)) throw new Error(p.name);
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
 * const runtime = detectRuntime(); // "deno", "bun" or "node"
 * if (runtime !== ("Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node")) {
 *   throw new Error(runtime);
 * }
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
 * import { defaultPlatform } from "@khipu/log/platform";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const p = await defaultPlatform();
 * if (p !== await defaultPlatform()) throw new Error("created twice");
 * const dir = join(mkdtempSync(join(tmpdir(), "khipu-")), "data");
 * if (!(await p.mkdir(dir))) throw new Error(`mkdir ${dir}`);
 * ```
 */
export function defaultPlatform(): Promise<Platform> {
  cached ??= (async () => {
    if (detectRuntime() === "deno") return (await import("./deno.ts")).denoPlatform;
    return (await import("./node.ts")).nodePlatform;
  })();
  return cached;
}
