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
import { detectRuntime } from "./runtime.ts";

export { detectRuntime, type RuntimeName } from "./runtime.ts";

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
