// Running the `khipu` command as a child process of the runtime running the test file, as
// tests/cli.test.ts and tests/cli_pty.test.ts do.
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { currentRuntime, ROOT } from "./fixtures/runtimes.ts";
import { childEnv } from "./helpers.ts";

/** The command line that runs cli.ts on this runtime (Node 20/22 under tsx, Node 24 natively). */
export function cliCommand(): string[] {
  const cli = join(ROOT, "cli.ts");
  switch (currentRuntime()) {
    case "deno":
      return [process.execPath, "run", "-A", cli];
    case "bun":
      return [process.execPath, cli];
    case "node": {
      const strips = (process.features as { typescript?: unknown }).typescript;
      return strips ? [process.execPath, cli] : [process.execPath, "--import", "tsx", cli];
    }
  }
}

/** What a child printed and how it ended. */
export interface Finished {
  /** Its exit status (null if a signal ended it). */
  code: number | null;
  /** All it wrote to stdout. */
  stdout: string;
  /** All it wrote to stderr. */
  stderr: string;
}

/** Runs `argv` in the repository to its end, its output captured; killed after 30 s (a hang fails). */
export function runToEnd(argv: readonly string[]): Promise<Finished> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd, args, { cwd: ROOT, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    })
  );
}
