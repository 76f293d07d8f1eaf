/**
 * The `khipu` command line: look inside a khipu-log store, check it and repair it.
 *
 * ```sh
 * khipu ls DIR                     # logs: records, segments, bytes, first/last time
 * khipu stat DIR LOG               # segments (seq/time ranges) and cursors (position, lag)
 * khipu verify DIR [LOG]           # every frame, seal, index and chain; exit 1 on damage
 * khipu dump DIR LOG [--from N] [--to N] [--from-time ISO] [--format ndjson|text|hex]
 * khipu tail DIR LOG [-n N] [-f]   # -f follows a log another process is writing
 * khipu cursors DIR LOG            # cursor positions and lag
 * khipu cursor set DIR LOG NAME SEQ
 * khipu repair DIR LOG [--dry-run]
 * khipu checkpoint DIR LOG --key FILE [--origin O]    # a signed tree head (integrity on)
 * khipu prove DIR LOG SEQ --size N | --from M --size N # inclusion / consistency proof (JSON)
 * khipu verify-proof PROOF --checkpoint FILE --key FILE [--old-checkpoint FILE]
 * ```
 *
 * Run it with `deno run -A jsr:@khipu/log/cli`, `npx khipu-log` / `bunx khipu-log` (the npm
 * package's `khipu` and `khipu-log` bins), or from a clone with `deno run -A cli.ts`, `bun cli.ts`
 * or `node cli.ts` (Node >= 22.18; `npx tsx cli.ts` before). Every command takes `--json` and
 * `--help`. Exit status: 0 ok, 1 damage, 2 usage, 3 any other failure (locked, not found, I/O).
 *
 * @example
 * ```ts
 * import { main } from "@khipu/log/cli";
 * import { Store } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * const store = await Store.open(dir);
 * await (await store.log("events")).appendBatch(["a", "b"]);
 * await store.close();
 * const sound = await main(["verify", dir]); // prints "events: ok: 2 records in 1 segment, ..."
 * const usage = await main(["verify"]); // prints "khipu: INVALID_ARGUMENT: missing DIR; ..."
 * if (sound !== 0 || usage !== 2) throw new Error(`${sound} ${usage}`);
 * ```
 * @module
 */
import { realpathSync } from "node:fs";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { processIo } from "./src/cli/io.ts";
import { runCli } from "./src/cli/main.ts";

/**
 * Runs the `khipu` command line `args` (what follows the program name) on this process's stdout
 * and stderr; resolves with the exit status (0 ok, 1 damage, 2 usage, 3 other failure). Never
 * throws: errors are printed as one line on stderr.
 *
 * @example
 * ```ts
 * import { main } from "@khipu/log/cli";
 * if ((await main(["--version"])) !== 0) throw new Error("--version failed");
 * ```
 */
export function main(args: string[]): Promise<number> {
  return runCli(args, processIo());
}

/** True when this module is the program: `import.meta.main` where the runtime has it. */
function isProgram(): boolean {
  const flagged = (import.meta as { main?: boolean }).main;
  if (flagged !== undefined) return flagged;
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(realpathSync(script)).href === import.meta.url;
}

if (isProgram()) main(process.argv.slice(2)).then((code) => (process.exitCode = code));
