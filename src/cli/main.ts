/**
 * The `khipu` command: picks the command named by the first argument(s), checks the rest against
 * its spec, runs it and turns whatever it throws into one line on stderr (`khipu: CODE: message`,
 * no stack trace) and an exit status: 0 ok, 1 damage, 2 usage, 3 any other failure. A reader of
 * the output that went away (EPIPE) is a normal end (0).
 *
 * @example
 * ```ts
 * import { memoryIo } from "./io.ts";
 * import { runCli } from "./main.ts";
 * const { io, stdout, stderr } = memoryIo();
 * const help = await runCli(["--help"], io);
 * const bad = await runCli(["ls", "--frobnicate", "/data"], io);
 * if (help !== 0 || !stdout().includes("khipu verify DIR [LOG]")) throw new Error(stdout());
 * if (bad !== 2 || !stderr().includes("unknown option --frobnicate")) throw new Error(stderr());
 * ```
 * @module
 */
import { helpText, parseCommand, UsageError, wantsHelp } from "./args.ts";
import { type Command, EXIT } from "./command.ts";
import { checkpoint } from "./checkpoint.ts";
import { cursors, cursorSet } from "./cursors.ts";
import { dump } from "./dump.ts";
import { errorLine, exitStatus } from "./failure.ts";
import { type CliIo, OutputClosed } from "./io.ts";
import { ls } from "./ls.ts";
import { prove } from "./prove.ts";
import { repair } from "./repair.ts";
import { stat } from "./stat.ts";
import { tail } from "./tail.ts";
import { verify } from "./verify.ts";
import { verifyProof } from "./verify_proof.ts";
import { VERSION } from "./version.ts";

/** Every command, in the order `khipu --help` lists them. */
const COMMANDS: readonly Command[] = [
  ls,
  stat,
  verify,
  dump,
  tail,
  cursors,
  cursorSet,
  repair,
  checkpoint,
  prove,
  verifyProof,
];

const EXIT_CODES = [
  "Exit status:",
  "  0  done (verify: no problem found)",
  "  1  damage: verify found problems, or a log is too damaged for the command to run",
  "  2  usage: an unknown option, a missing or extra argument, a bad number, name or time",
  "  3  failure: the store is locked by a writer, not found, unreadable (I/O), ...",
].join("\n");

/** `khipu --help`. */
function overview(): string {
  const rows = COMMANDS.map((c) => [`${c.spec.name} ${c.spec.args}`, c.spec.summary]);
  const width = Math.max(...rows.map(([u]) => u.length));
  return [
    `khipu ${VERSION}: look inside a khipu-log store, check it, repair it.`,
    "",
    "Usage: khipu COMMAND ARGS [options]",
    "",
    "Commands:",
    ...rows.map(([usage, summary]) => `  khipu ${usage.padEnd(width)}  ${summary}`),
    "",
    "Every command takes --json (one JSON document on stdout; ndjson for dump and tail) and",
    "--help. Errors are one line on stderr: khipu: CODE: message. Commands that only read open",
    "the store read-only and never take its lock, so they run beside a writer in another",
    "process; repair and cursor set open it as its writer and are refused while one runs.",
    "",
    EXIT_CODES,
    "",
  ].join("\n");
}

/** The command `args` name, and the arguments after its name. */
function find(args: readonly string[]): { command: Command; rest: string[] } {
  const [first, second] = args;
  const one = COMMANDS.find((c) => c.spec.name === first);
  if (one) return { command: one, rest: args.slice(1) };
  const groups = COMMANDS.filter((c) => c.spec.name.startsWith(`${first} `));
  if (groups.length === 0) throw new UsageError(`unknown command ${JSON.stringify(first)}`, null);
  const two = groups.find((c) => c.spec.name === `${first} ${second}`);
  if (two) return { command: two, rest: args.slice(2) };
  // `khipu cursor --help`: the help of its only subcommand.
  if (groups.length === 1 && second !== undefined && wantsHelp([second])) {
    return { command: groups[0], rest: args.slice(1) };
  }
  const subs = groups.map((c) => c.spec.name.slice(first.length + 1)).join(", ");
  throw new UsageError(
    second === undefined
      ? `khipu ${first} needs a subcommand: ${subs}`
      : `unknown command "${first} ${second}" (${first} takes ${subs})`,
    null,
  );
}

/**
 * Runs the `khipu` command line `args` (without the program name) with output on `io`; resolves
 * with the exit status. Never throws.
 *
 * @example
 * ```ts
 * import { memoryIo } from "./io.ts";
 * import { runCli } from "./main.ts";
 * const { io, stderr } = memoryIo();
 * const code = await runCli(["stat", "/no/such/store", "events"], io);
 * if (code !== 3 || !stderr().startsWith("khipu: NOT_FOUND: ")) throw new Error(stderr());
 * ```
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  try {
    if (args.length === 0) throw new UsageError("no command given", null);
    if (args[0] === "--help" || args[0] === "-h") {
      await io.out.write(overview());
      return EXIT.ok;
    }
    if (args[0] === "--version" || args[0] === "-V") {
      await io.out.write(`${VERSION}\n`);
      return EXIT.ok;
    }
    const { command, rest } = find(args);
    if (wantsHelp(rest)) {
      await io.out.write(helpText(command.spec, EXIT_CODES));
      return EXIT.ok;
    }
    return await command.run(parseCommand(command.spec, rest), io);
  } catch (err) {
    if (err instanceof OutputClosed) return EXIT.ok;
    await io.err.write(errorLine(err)).catch(() => {});
    return exitStatus(err);
  }
}
