/**
 * What a `khipu` command is (its spec and what it runs) and the exit statuses every command
 * shares.
 *
 * @example
 * ```ts
 * import { type Command, EXIT } from "./command.ts";
 * const hello: Command = {
 *   spec: { name: "hello", args: "", summary: "say hello", description: "", options: {} },
 *   run: async (_args, io) => {
 *     await io.out.write("hello\n");
 *     return EXIT.ok;
 *   },
 * };
 * if (hello.spec.name !== "hello" || EXIT.usage !== 2) throw new Error();
 * ```
 * @module
 */
import type { CommandSpec, ParsedArgs } from "./args.ts";
import type { CliIo } from "./io.ts";

/** Exit statuses (documented in `khipu --help` and the README). */
export const EXIT: Readonly<{ ok: 0; damaged: 1; usage: 2; failed: 3 }> = {
  /** Done; for `verify`, the store is sound. */
  ok: 0,
  /** Damage: `verify` found problems, or a log is too damaged for the command to run. */
  damaged: 1,
  /** The command line is wrong (unknown option, missing argument, bad number or name). */
  usage: 2,
  /** Anything else: the store is locked by a writer, not found, an I/O error. */
  failed: 3,
};

/** One command: its spec (arguments, options, help) and what it does with a parsed line. */
export interface Command {
  /** Arguments, options and help. */
  readonly spec: CommandSpec;
  /** Runs it; resolves with the exit status. Errors thrown map to a status in `main.ts`. */
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}
