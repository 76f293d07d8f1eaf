/**
 * The `khipu` command line's argument parsing: each command describes its arguments and options
 * once ({@linkcode CommandSpec}); {@linkcode parseCommand} checks a command line against it with
 * `node:util` `parseArgs` in strict mode (an unknown flag, a missing value, a missing or extra
 * argument is a {@linkcode UsageError}), and {@linkcode helpText} renders the same spec as the
 * command's `--help`. Values such as seqs and times are checked here too, so a command runs only
 * with arguments that make sense.
 *
 * @example
 * ```ts
 * import { parseCommand, UsageError } from "./args.ts";
 * const spec = {
 *   name: "dump",
 *   args: "DIR LOG",
 *   summary: "print records",
 *   description: "",
 *   options: { from: { type: "string", value: "N", help: "first seq" } },
 * } as const;
 * const p = parseCommand(spec, ["/data", "events", "--from", "7", "--json"]);
 * if (p.positionals.join() !== "/data,events" || p.values.from !== "7" || !p.json) {
 *   throw new Error(JSON.stringify(p));
 * }
 * const bad = (() => {
 *   try {
 *     parseCommand(spec, ["/data"]);
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * if (!(bad instanceof UsageError) || !bad.message.endsWith("see khipu dump --help")) throw bad;
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { InvalidArgumentError } from "../errors.ts";

/** One option of a command (`--json` and `--help` are every command's and not listed). */
export interface OptionSpec {
  /** A flag, or an option that takes a value. */
  readonly type: "boolean" | "string";
  /** One-letter alias (`-n`). */
  readonly short?: string;
  /** What the value is called in the help (`N`, `ISO`). */
  readonly value?: string;
  /** One line of help. */
  readonly help: string;
}

/** What a command takes and says about itself. */
export interface CommandSpec {
  /** The words that name it: `ls`, `cursor set`. */
  readonly name: string;
  /** Its arguments, optional ones in brackets: `DIR [LOG]`. */
  readonly args: string;
  /** One line for `khipu --help`. */
  readonly summary: string;
  /** What it does, for its own `--help` (may be empty). */
  readonly description: string;
  /** Its options, by long name. */
  readonly options: Readonly<Record<string, OptionSpec>>;
}

/** A command line checked against its spec. */
export interface ParsedArgs {
  /** The arguments, in order (as many as the spec takes; optional ones may be missing). */
  positionals: string[];
  /** The options given, by long name. */
  values: Record<string, string | boolean | undefined>;
  /** `--json` was given. */
  json: boolean;
}

/**
 * A command line that does not fit its command: exit status 2. The message ends by pointing at
 * the command's help.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "../errors.ts";
 * import { UsageError } from "./args.ts";
 * const e = new UsageError("--from must be a whole number", "dump");
 * const want = "--from must be a whole number; see khipu dump --help";
 * if (!(e instanceof InvalidArgumentError) || e.message !== want) {
 *   throw new Error(e.message);
 * }
 * ```
 */
export class UsageError extends InvalidArgumentError {
  /** Creates the error from what is wrong and the command (null: the command itself is wrong). */
  constructor(problem: string, command: string | null) {
    super({ message: `${problem}; see khipu ${command === null ? "" : `${command} `}--help` });
  }
}

/** Options every command takes. */
const COMMON: Readonly<Record<string, OptionSpec>> = {
  json: { type: "boolean", help: "print one JSON document (ndjson for dump and tail)" },
  help: { type: "boolean", short: "h", help: "print this help" },
};

/**
 * True if `args` (after the command name) ask for help: `--help` or `-h` before any `--`.
 *
 * @example
 * ```ts
 * import { wantsHelp } from "./args.ts";
 * if (!wantsHelp(["/data", "-h"]) || wantsHelp(["--", "--help"])) throw new Error();
 * ```
 */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

/**
 * Checks `args` (what follows the command's name) against `spec`. Throws {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { parseCommand } from "./args.ts";
 * const spec = {
 *   name: "tail",
 *   args: "DIR LOG",
 *   summary: "",
 *   description: "",
 *   options: {
 *     lines: { type: "string", short: "n", value: "N", help: "how many" },
 *     follow: { type: "boolean", short: "f", help: "keep going" },
 *   },
 * } as const;
 * const p = parseCommand(spec, ["-n", "3", "-f", "/data", "events"]);
 * if (p.values.lines !== "3" || p.values.follow !== true || p.json) throw new Error();
 * ```
 */
export function parseCommand(spec: CommandSpec, args: readonly string[]): ParsedArgs {
  const options = { ...spec.options, ...COMMON };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      options: Object.fromEntries(
        Object.entries(options).map(([name, o]) => [
          name,
          o.short === undefined ? { type: o.type } : { type: o.type, short: o.short },
        ]),
      ),
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError(parseProblem(err), spec.name);
  }
  const names = spec.args.split(/\s+/).filter((a) => a !== "");
  const required = names.filter((a) => !a.startsWith("[")).length;
  const got = parsed.positionals;
  if (got.length < required) {
    throw new UsageError(`missing ${names.slice(got.length, required).join(" ")}`, spec.name);
  }
  if (got.length > names.length) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(got[names.length])} (takes ${spec.args})`,
      spec.name,
    );
  }
  const { json, help: _help, ...values } = parsed.values as Record<string, string | boolean>;
  return { positionals: got, values, json: json === true };
}

/** What went wrong in `parseArgs`, in one sentence: its messages differ a little by runtime. */
function parseProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const option = /'(-[^' <]*)/.exec(message)?.[1];
  const code = (err as { code?: unknown } | null)?.code;
  if (option !== undefined) {
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || /unknown option/i.test(message)) {
      return `unknown option ${option}`;
    }
    if (/does not take an argument/i.test(message)) return `${option} takes no value`;
    if (/argument missing|requires a value|ambiguous/i.test(message)) {
      return `${option} needs a value`;
    }
  }
  return message.split(/\.\s/)[0];
}

/**
 * The whole number `text` (a seq or a count) given for `what`, or a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { wholeNumberArg } from "./args.ts";
 * if (wholeNumberArg("42", "--from", "dump") !== 42) throw new Error();
 * try {
 *   wholeNumberArg("4.5", "--from", "dump");
 *   throw new Error("accepted 4.5");
 * } catch (e) {
 *   if (!(e as Error).message.startsWith('--from must be a whole number, got "4.5"')) throw e;
 * }
 * ```
 */
export function wholeNumberArg(text: string, what: string, command: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(text)}`, command);
  }
  return n;
}

/**
 * The time `text` (ISO 8601: `2026-05-01`, `2026-05-01T12:00:00Z`) given for `what`, as ms since
 * the Unix epoch, or a {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * import { timeArg } from "./args.ts";
 * if (timeArg("1970-01-01T00:00:01Z", "--from-time", "dump") !== 1000) throw new Error();
 * ```
 */
export function timeArg(text: string, what: string, command: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms) || ms < 0) {
    throw new UsageError(
      `${what} must be an ISO 8601 time such as 2026-05-01T12:00:00Z, got ${JSON.stringify(text)}`,
      command,
    );
  }
  return ms;
}

/**
 * The `--help` text of a command: usage line, description, options (the common ones last) and
 * the exit codes.
 *
 * @example
 * ```ts
 * import { helpText } from "./args.ts";
 * const text = helpText({
 *   name: "ls",
 *   args: "DIR",
 *   summary: "list the logs",
 *   description: "Lists the logs.",
 *   options: {},
 * }, "Exit codes: 0 ok");
 * if (!text.startsWith("Usage: khipu ls DIR [options]\n") || !text.includes("--json")) {
 *   throw new Error(text);
 * }
 * ```
 */
export function helpText(spec: CommandSpec, exitCodes: string): string {
  const rows = Object.entries({ ...spec.options, ...COMMON }).map(([name, o]) => {
    const flag = `${o.short === undefined ? "    " : `-${o.short}, `}--${name}${
      o.value === undefined ? "" : ` ${o.value}`
    }`;
    return [flag, o.help];
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const lines = [
    `Usage: khipu ${spec.name} ${spec.args} [options]`,
    "",
    spec.summary.charAt(0).toUpperCase() + spec.summary.slice(1) + ".",
    ...(spec.description === "" ? [] : ["", spec.description]),
    "",
    "Options:",
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    "",
    exitCodes,
  ];
  return lines.join("\n") + "\n";
}
