/**
 * `npm run bench`: runs `bench/main.ts` on Deno, Bun and Node one after the other (never in
 * parallel: they share the disk), then writes `bench/RESULTS.md` and `bench/results/durable.svg`
 * from `bench/results/<runtime>.json`.
 *
 * ```sh
 * npm run bench                              # everything, default sizes (~10 min)
 * npm run bench -- --quick                   # 128 MiB read/open data sets, into bench/results/quick/
 * npm run bench -- --runtimes=node,bun       # a subset of runtimes
 * npm run bench -- --suites=raw,policy       # a subset of suites (rows merge into the JSON)
 * npm run bench -- --report-only             # only re-render the report from the JSON files
 * ```
 * Shell-free: the runtimes are spawned directly from `node_modules/.bin`.
 *
 * @example
 * ```ts
 * // npx tsx scripts/bench_all.ts --quick --runtimes=node
 * ```
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
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
    "report-only": { type: "boolean" },
    runtimes: { type: "string" },
    suites: { type: "string" },
  },
});
const quick = args.quick || process.env.KHIPU_BENCH_QUICK === "1";
const reportOnly = args["report-only"];
const runtimes = (args.runtimes ?? "deno,bun,node").split(",");
const suites = args.suites;
const resultsDir = path.join(root, "bench", "results", ...(quick ? ["quick"] : []));

/** The command that runs `bench/main.ts` on each runtime (gc exposed so mitata can collect). */
const COMMANDS: Record<string, string[]> = {
  deno: [bin("deno"), "run", "-A", "--v8-flags=--expose-gc", "bench/main.ts"],
  bun: [bin("bun"), "run", "bench/main.ts"],
  node: [bin("tsx"), "--expose-gc", "bench/main.ts"],
};

if (!reportOnly) {
  if (runtimes.includes("node") && (!suites || /sqlite|paired/.test(suites))) {
    // Installs better-sqlite3 (a ~80 s compile) before the timed runs, not during them.
    const { ensureBetterSqlite } = await import("../bench/sqlite.bench.ts");
    const err = ensureBetterSqlite();
    if (err) console.error(`SQLite on Node will be n/a: ${err}`);
  }
  const t0 = performance.now();
  for (const rt of runtimes) {
    const cmd = COMMANDS[rt];
    if (!cmd) throw new Error(`unknown runtime ${rt} (deno, bun, node)`);
    const extra = [...(quick ? ["--quick"] : []), ...(suites ? [`--suites=${suites}`] : [])];
    console.log(`\n##### ${rt}: ${[...cmd, ...extra].join(" ")}`);
    const r = spawnSync(cmd[0], [...cmd.slice(1), ...extra], {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, ...(quick ? { KHIPU_BENCH_QUICK: "1" } : {}) },
    });
    if (r.status !== 0) {
      console.error(`${rt} benchmark failed (status ${r.status}${r.error ? `, ${r.error}` : ""})`);
      process.exitCode = 1;
    }
  }
  console.log(`\nall runtimes: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

const results: RunResult[] = [];
for (const rt of ["deno", "bun", "node"]) {
  const file = path.join(resultsDir, `${rt}.json`);
  if (fs.existsSync(file)) results.push(JSON.parse(fs.readFileSync(file, "utf8")) as RunResult);
}
const mdFile = quick ? path.join(resultsDir, "RESULTS.md") : path.join(root, "bench", "RESULTS.md");
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
