/**
 * How the `khipu` command reports an error: one line, `khipu: CODE: message` (the error's stable
 * code, never a stack trace), its JSON form, and the exit status it means: a usage error or an
 * argument the store refuses (an invalid log name, a seq past the end) is 2, damage
 * (`CorruptionError`) is 1, anything else (locked, not found, I/O) is 3.
 *
 * @example
 * ```ts
 * import { CorruptionError, LockedError } from "@khipu/log";
 * import { errorLine, exitStatus } from "./failure.ts";
 * const locked = new LockedError({ path: "/data/LOCK", holder: "pid 42" });
 * const line = errorLine(locked);
 * if (line !== "khipu: LOCKED: store is locked by pid 42 (/data/LOCK)\n") throw new Error(line);
 * if (exitStatus(locked) !== 3 || exitStatus(new CorruptionError({ message: "bad" })) !== 1) {
 *   throw new Error();
 * }
 * ```
 * @module
 */
import { CorruptionError, InvalidArgumentError, KhipuError } from "../errors.ts";
import { EXIT } from "./command.ts";

/** An error's code: a KhipuError's, an OS error's (`EACCES`), else `ERROR`. */
function codeOf(err: unknown): string {
  if (err instanceof KhipuError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "ERROR";
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, " ");
}

/**
 * The line printed on stderr for `err`, newline included.
 *
 * @example
 * ```ts
 * import { errorLine } from "./failure.ts";
 * if (errorLine(new Error("two\nlines")) !== "khipu: ERROR: two lines\n") throw new Error();
 * ```
 */
export function errorLine(err: unknown): string {
  return `khipu: ${codeOf(err)}: ${messageOf(err)}\n`;
}

/**
 * `err` for a JSON document: its code and message, and where it happened when known.
 *
 * @example
 * ```ts
 * import { CorruptionError } from "@khipu/log";
 * import { errorJson } from "./failure.ts";
 * const j = errorJson(new CorruptionError({ message: "bad frame", path: "/d/0.seg", offset: 96 }));
 * if (j.code !== "CORRUPTION" || j.offset !== 96 || j.seq !== null) throw new Error();
 * ```
 */
export function errorJson(err: unknown): {
  code: string;
  message: string;
  path: string | null;
  offset: number | null;
  seq: number | null;
} {
  const k = err instanceof KhipuError ? err : null;
  return {
    code: codeOf(err),
    message: messageOf(err),
    path: k?.path ?? null,
    offset: k?.offset ?? null,
    seq: k?.seq ?? null,
  };
}

/**
 * The exit status `err` means.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { exitStatus } from "./failure.ts";
 * if (exitStatus(new InvalidArgumentError({ message: "bad name" })) !== 2) throw new Error();
 * ```
 */
export function exitStatus(err: unknown): number {
  if (err instanceof CorruptionError) return EXIT.damaged;
  if (err instanceof InvalidArgumentError) return EXIT.usage;
  return EXIT.failed;
}
