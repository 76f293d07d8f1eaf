/**
 * Runs every benchmark suite in one process of the current runtime and writes
 * `bench/results/<runtime>.json` (`bench/results/quick/<runtime>.json` with `--quick`).
 *
 * Order matters: the fsync-bound suites (raw limits, SQLite, interleaved target pairs, policies,
 * follow latency, appends during retention) run first, the space and read suites last, because
 * filling gigabytes leaves writeback behind that would slow later fsyncs.
 *
 * The khipu code measured is `../mod.ts` (or `KHIPU_BENCH_CURRENT`), and, when `KHIPU_BENCH_V1`
 * names a checkout of the v1 code, that too, side by side (`./impls.ts`). A suite that fails (say,
 * `format` or `hostile`, which import `src/` internals of the v1 format) is recorded as a skipped
 * row `suite <name>` and the run goes on.
 *
 * ```sh
 * npx tsx --expose-gc bench/main.ts [--quick|--smoke] [--suites=raw,sqlite,paired,policy,follow,relay,retention,format,verify,space,read,seek,hostile]
 * npx deno run -A --v8-flags=--expose-gc bench/main.ts
 * npx bun run bench/main.ts
 * ```
 * `npm run bench` runs it on all three runtimes and writes the report (`scripts/bench_all.ts`).
 *
 * @example
 * ```ts
 * import { runAll } from "./main.ts";
 * const result = await runAll(["raw"]);
 * console.log(result.rows.length);
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
import {
  benchRoot,
  isMain,
  QUICK,
  Recorder,
  type Row,
  RUNTIME,
  runtimeVersion,
  SMOKE,
} from "./harness.ts";
import { loadImpls } from "./impls.ts";

/** Suites in the order they run. */
export const SUITES: readonly string[] = [
  "raw",
  "sqlite",
  "paired",
  "policy",
  "follow",
  "relay",
  "retention",
  "format",
  "verify",
  "space",
  "read",
  "seek",
  "integrity",
  "hostile",
];

/** What one runtime's run writes to `bench/results/<runtime>.json`. */
export interface RunResult {
  /** `node`, `deno` or `bun`. */
  runtime: string;
  /** E.g. `bun 1.4.5`. */
  version: string;
  /** ISO date the run started. */
  date: string;
  /** True for a `--quick` run (smaller read/open data sets). */
  quick: boolean;
  /** True for a `--smoke` run (tiny everything: checks the rows run; figures mean nothing). */
  smoke?: boolean;
  /** The khipu implementations measured: `current`, and `v1` when side by side. */
  impls?: { key: string; label: string; dir: string; commit?: string }[];
  /** Seconds the run took. */
  seconds: number;
  /** The machine. */
  machine: {
    cpu: string;
    cpus: number;
    memoryBytes: number;
    os: string;
    benchDir: string;
  };
  /** The code measured: `git describe --always --dirty` of the checkout, if available. */
  commit?: string;
  /** 1-minute load average when the run started and ended (the machine may be shared). */
  loadAverage?: { start: number; end: number };
  /** Which SQLite driver ran (or why none). */
  sqliteDriver?: string;
  /** Every measured figure. */
  rows: Row[];
}

/**
 * Runs the given suites (all by default) and returns the results.
 *
 * @example
 * ```ts
 * import { runAll } from "./main.ts";
 * await runAll(["raw", "sqlite"]);
 * ```
 */
export async function runAll(suites: readonly string[] = SUITES): Promise<RunResult> {
  const started = new Date();
  const loadStart = os.loadavg()[0];
  const t0 = performance.now();
  const rec = new Recorder();
  let sqliteDriver: string | undefined;
  const impls = await loadImpls();
  for (const i of impls) console.log(`khipu ${i.label}: ${i.dir} (${i.commit ?? "no git"})`);
  for (const suite of SUITES) {
    if (!suites.includes(suite)) continue;
    console.log(`\n=== ${suite} (${runtimeVersion()}) ===`);
    try {
      // Dynamic imports: a suite's dependencies load only if it runs.
      switch (suite) {
        case "raw":
          await (await import("./raw.bench.ts")).rawSuite(rec);
          break;
        case "sqlite": {
          const m = await import("./sqlite.bench.ts");
          await m.sqliteSuite(rec);
          sqliteDriver = await m.sqliteDriverName();
          break;
        }
        case "paired":
          await (await import("./paired.bench.ts")).pairedSuite(rec);
          break;
        case "policy":
          await (await import("./policies.bench.ts")).policySuite(rec);
          break;
        case "follow":
          await (await import("./follow.bench.ts")).followSuite(rec);
          break;
        case "relay":
          await (await import("./relay.bench.ts")).relaySuite(rec);
          break;
        case "retention":
          await (await import("./retention.bench.ts")).retentionSuite(rec);
          break;
        case "format":
          await (await import("./format.bench.ts")).formatSuite(rec);
          break;
        case "verify":
          await (await import("./verify.bench.ts")).verifySuite(rec);
          break;
        case "space":
          await (await import("./space.bench.ts")).spaceSuite(rec);
          break;
        case "read":
          await (await import("./reads.bench.ts")).readSuite(rec);
          break;
        case "integrity":
          await (await import("./integrity.bench.ts")).integritySuite(rec);
          break;
        case "seek":
          await (await import("./seek.bench.ts")).seekSuite(rec);
          break;
        case "hostile":
          await (await import("./hostile.bench.ts")).hostileSuite(rec);
          break;
      }
    } catch (e) {
      console.error(`suite ${suite} failed:`, e);
      rec.add({ suite, name: `suite ${suite}`, recordBytes: 0, skipped: String(e) });
    }
  }
  if (["paired", "space"].some((s) => suites.includes(s))) {
    // These used the driver too (already loaded: no install happens here).
    sqliteDriver ??= await (await import("./sqlite.bench.ts")).sqliteDriverName();
  }
  const cpus = os.cpus();
  return {
    runtime: RUNTIME,
    version: runtimeVersion(),
    date: started.toISOString(),
    quick: QUICK,
    smoke: SMOKE,
    impls: impls.map((i) => ({ key: i.key, label: i.label, dir: i.dir, commit: i.commit })),
    seconds: (performance.now() - t0) / 1000,
    machine: {
      cpu: cpus[0]?.model ?? "unknown",
      cpus: cpus.length,
      memoryBytes: os.totalmem(),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      benchDir: benchRoot(),
    },
    commit: gitCommit(),
    loadAverage: { start: loadStart, end: os.loadavg()[0] },
    sqliteDriver,
    rows: rec.rows,
  };
}

/** `git describe --always --dirty` of this checkout, or undefined outside git. */
function gitCommit(): string | undefined {
  try {
    const r = spawnSync("git", ["describe", "--always", "--dirty"], {
      cwd: path.dirname(fileURLToPath(import.meta.url)),
      encoding: "utf8",
    });
    return r.status === 0 ? r.stdout.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where results go: `bench/results` (or `bench/results/quick` for quick runs).
 *
 * @example
 * ```ts
 * import { resultsDir } from "./main.ts";
 * console.log(resultsDir(false));
 * ```
 */
export function resultsDir(quick: boolean): string {
  if (process.env.KHIPU_BENCH_RESULTS) return path.resolve(process.env.KHIPU_BENCH_RESULTS);
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, "results", ...(quick ? ["quick"] : []));
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: { quick: { type: "boolean" }, smoke: { type: "boolean" }, suites: { type: "string" } },
  });
  const arg = values.suites;
  const suites = arg ? arg.split(",") : SUITES;
  const unknown = suites.filter((s) => !SUITES.includes(s));
  if (unknown.length > 0) {
    throw new Error(`unknown suite ${unknown.join(",")}: ${SUITES.join(",")}`);
  }
  const result = await runAll(suites);
  const dir = resultsDir(QUICK);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${RUNTIME}.json`);
  if (arg && fs.existsSync(file)) {
    // A partial run updates its rows in the existing file and keeps the others.
    const old = JSON.parse(fs.readFileSync(file, "utf8")) as RunResult;
    const fresh = new Set(result.rows.map((r) => r.name));
    result.rows = [...old.rows.filter((r) => !fresh.has(r.name)), ...result.rows];
    result.sqliteDriver ??= old.sqliteDriver;
    // The run's date, duration and load stay those of the full run the other rows came from.
    result.date = old.date;
    result.seconds = old.seconds;
    result.loadAverage = old.loadAverage ?? result.loadAverage;
    if (old.commit && old.commit !== result.commit) {
      result.commit = `${old.commit} + ${result.commit ?? "unknown"}`;
    }
    // Same for the code measured: the kept rows were measured at the old commits.
    for (const i of result.impls ?? []) {
      const was = old.impls?.find((o) => o.key === i.key)?.commit;
      if (was && was !== i.commit) i.commit = `${was} + ${i.commit ?? "unknown"}`;
    }
  }
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nwrote ${file} (${result.seconds.toFixed(0)} s)`);
}
