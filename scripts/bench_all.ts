/**
 * `npm run bench`: runs `bench/main.ts` on Deno, Bun and Node 24 one after the other (never in
 * parallel: they share the disk), then writes `bench/RESULTS.md` and `bench/results/durable.svg`
 * from `bench/results/<runtime>.json`.
 *
 * **v1 side by side**: before the runs it creates a temporary `git worktree` of the v1 code
 * (`git worktree add --detach <tmp>/v1 c8ac77d`, with `node_modules` symlinked into it) and passes
 * its path as `KHIPU_BENCH_V1`; every khipu row then runs against both this checkout's `mod.ts` and
 * `<tmp>/v1/mod.ts` (imported by path), interleaved round by round in the ratio benchmarks, and
 * the report shows v1 → current per row. The worktree is removed at the end (also on failure).
 *
 * ```sh
 * npm run bench                              # everything, default sizes (~15 min)
 * npm run bench -- --quick                   # 128 MiB read data sets, into bench/results/quick/
 * npm run bench -- --smoke                   # every row, tiny and short: checks that they run
 * npm run bench -- --runtimes=node,bun       # a subset of runtimes
 * npm run bench -- --suites=raw,policy       # a subset of suites (rows merge into the JSON)
 * npm run bench -- --v1=<commit> | --no-v1   # another v1 commit, or no v1 rows
 * npm run bench -- --report-only             # only re-render the report from the JSON files
 * ```
 * A smoke run writes its JSON and report to `$TMPDIR/khipu-bench-smoke/`, never into the
 * repository. Shell-free: the runtimes are spawned directly from `node_modules`.
 *
 * @example
 * ```ts
 * // npx tsx scripts/bench_all.ts --quick --runtimes=node
 * ```
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { RunResult } from "../bench/main.ts";
import { renderMarkdown, renderSvg } from "../bench/report.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name: string) => path.join(root, "node_modules", ".bin", name);
const { values: args } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    quick: { type: "boolean" },
    smoke: { type: "boolean" },
    v1: { type: "string" },
    "no-v1": { type: "boolean" },
    "report-only": { type: "boolean" },
    runtimes: { type: "string" },
    suites: { type: "string" },
  },
});
const smoke = args.smoke || process.env.KHIPU_BENCH_SMOKE === "1";
const quick = !smoke && (args.quick || process.env.KHIPU_BENCH_QUICK === "1");
const reportOnly = args["report-only"];
const runtimes = (args.runtimes ?? "deno,bun,node").split(",");
const suites = args.suites;
/** The v1 code measured side by side (the last commit of the v1 format). */
const V1_COMMIT = args.v1 ?? "c8ac77d";
const resultsDir = smoke
  ? path.join(os.tmpdir(), "khipu-bench-smoke")
  : path.join(root, "bench", "results", ...(quick ? ["quick"] : []));

/** The command that runs `bench/main.ts` on each runtime (gc exposed so mitata can collect). */
const COMMANDS: Record<string, string[]> = {
  deno: [bin("deno"), "run", "-A", "--v8-flags=--expose-gc", "bench/main.ts"],
  bun: [bin("bun"), "run", "bench/main.ts"],
  // Node 24 (the active LTS) runs the .ts files itself (type stripping); no tsx in the way.
  node: [path.join(root, "node_modules", "node24", "bin", "node"), "--expose-gc", "bench/main.ts"],
};

function git(...argv: string[]): string {
  const r = spawnSync("git", argv, { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${argv.join(" ")} failed: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/** A temporary worktree of `commit` with this checkout's node_modules symlinked in. */
function createWorktree(commit: string): { dir: string; remove: () => void } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "khipu-bench-v1-"));
  const dir = path.join(base, "v1");
  git("worktree", "add", "--detach", dir, commit);
  fs.symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir");
  let removed = false;
  return {
    dir,
    remove: () => {
      if (removed) return;
      removed = true;
      // Unlink the symlink first, so nothing below can ever walk into the real node_modules.
      fs.rmSync(path.join(dir, "node_modules"), { force: true });
      const r = spawnSync("git", ["worktree", "remove", "--force", dir], { cwd: root });
      if (r.status !== 0) console.error(`git worktree remove ${dir} failed; removing by hand`);
      fs.rmSync(base, { recursive: true, force: true });
      spawnSync("git", ["worktree", "prune"], { cwd: root });
    },
  };
}

if (!reportOnly) {
  let worktree: { dir: string; remove: () => void } | undefined;
  if (!args["no-v1"]) {
    // A run killed hard earlier may have left a worktree entry whose directory is gone.
    spawnSync("git", ["worktree", "prune"], { cwd: root });
    worktree = createWorktree(V1_COMMIT);
    console.log(`v1 code (${git("rev-parse", "--short", V1_COMMIT)}) in ${worktree.dir}`);
    process.on("exit", () => worktree?.remove());
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.on(sig, () => {
        worktree?.remove();
        process.exit(130);
      });
    }
  }
  try {
    const t0 = performance.now();
    for (const rt of runtimes) {
      const cmd = COMMANDS[rt];
      if (!cmd) throw new Error(`unknown runtime ${rt} (deno, bun, node)`);
      const extra = [
        ...(smoke ? ["--smoke"] : quick ? ["--quick"] : []),
        ...(suites ? [`--suites=${suites}`] : []),
      ];
      console.log(`\n##### ${rt}: ${[...cmd, ...extra].join(" ")}`);
      const r = spawnSync(cmd[0], [...cmd.slice(1), ...extra], {
        cwd: root,
        stdio: "inherit",
        env: {
          ...process.env,
          ...(smoke ? { KHIPU_BENCH_SMOKE: "1", KHIPU_BENCH_RESULTS: resultsDir } : {}),
          ...(quick ? { KHIPU_BENCH_QUICK: "1" } : {}),
          ...(worktree ? { KHIPU_BENCH_V1: worktree.dir } : {}),
        },
      });
      if (r.status !== 0) {
        console.error(
          `${rt} benchmark failed (status ${r.status}${r.signal ? `, ${r.signal}` : ""}${
            r.error ? `, ${r.error}` : ""
          })`,
        );
        process.exitCode = 1;
        // Ctrl-C reaches the child too; stop here instead of starting the next runtime.
        if (r.signal === "SIGINT" || r.signal === "SIGTERM") break;
      }
    }
    console.log(`\nall runtimes: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    worktree?.remove();
  }
}

const results: RunResult[] = [];
for (const rt of ["deno", "bun", "node"]) {
  const file = path.join(resultsDir, `${rt}.json`);
  if (fs.existsSync(file)) results.push(JSON.parse(fs.readFileSync(file, "utf8")) as RunResult);
}
const mdFile = quick || smoke
  ? path.join(resultsDir, "RESULTS.md")
  : path.join(root, "bench", "RESULTS.md");
const svgFile = path.join(resultsDir, "durable.svg");
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(svgFile, renderSvg(results));
fs.writeFileSync(
  mdFile,
  renderMarkdown(results, path.relative(path.dirname(mdFile), svgFile).split(path.sep).join("/")),
);
// The report is checked by `deno fmt --check` like any other Markdown file in the repository.
spawnSync(bin("deno"), ["fmt", "--quiet", mdFile], { cwd: root, stdio: "inherit" });
console.log(`wrote ${path.relative(root, mdFile)} and ${path.relative(root, svgFile)}`);
