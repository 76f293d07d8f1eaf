/**
 * Long crash-point exploration, and single-state reproduction.
 *
 *   npm run crash -- --states 1000000          # explore until 1,000,000 distinct crash states
 *   npm run crash -- --workload everyN-retention --seed 1 --call 45 --mode torn --crash-seed 297578491
 *                                               # re-run the one state a failure printed
 *
 * Runs on any runtime: `npx tsx scripts/crash.ts ...`, `deno run -A scripts/crash.ts ...`,
 * `bun scripts/crash.ts ...`. Options:
 *   --states N          distinct crash states to explore (default 100000)
 *   --workload NAME     only this workload (default: all, round-robin); --list shows them
 *   --seed S            first workload seed (default 1); with --call: the exact seed
 *   --seeds-per-mode K  crash seeds per crash point for the random modes (default 2)
 *   --mode M            only this crash mode
 *   --call C            only the crash point after platform call #C
 *   --crash-seed X      only this crash seed
 *   --no-recovery-crashes   skip the second crash inside each recovery
 *   --no-batch-atomicity    do not check property 5 (batch atomicity), e.g. to check the others
 *                           on code whose batches are not atomic yet
 *   --verbose           print every state checked
 * Exits 1 if any property is violated, printing a reproduction line for each.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { type RunResult, runWorkload, WORKLOADS } from "../tests/crash_harness.ts";
import { CRASH_MODES, type CrashMode } from "../src/testing/sim.ts";

const { values: args } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    states: { type: "string" },
    workload: { type: "string" },
    seed: { type: "string" },
    "seeds-per-mode": { type: "string" },
    mode: { type: "string" },
    call: { type: "string" },
    "crash-seed": { type: "string" },
    "no-recovery-crashes": { type: "boolean" },
    "no-batch-atomicity": { type: "boolean" },
    verbose: { type: "boolean" },
    list: { type: "boolean" },
  },
});

/** The whole number given for `--name`, or `fallback`; anything else ends the run with an error. */
function num(name: keyof typeof args, fallback: number): number {
  const text = args[name];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (typeof text !== "string" || !Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} needs a whole number >= 0, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

if (args.list) {
  for (const w of WORKLOADS) {
    const why = w.unavailable?.();
    console.log(`${w.name}  ${w.opts.policy}${why ? `  (skipped: ${why})` : ""}`);
  }
  process.exit(0);
}
const target = num("states", 100_000);
const only = args.workload;
const named = only ? WORKLOADS.filter((w) => w.name === only) : WORKLOADS;
if (named.length === 0) throw new Error(`no workload ${only}; try --list`);
// A workload needing an API this code lacks is skipped, saying why.
const workloads = named.filter((w) => {
  const why = w.unavailable?.();
  if (why) console.log(`workload ${w.name} skipped: ${why}`);
  return !why;
});
if (workloads.length === 0) {
  console.log("no workload can run on this code");
  process.exit(only ? 1 : 0);
}
const mode = args.mode as CrashMode | undefined;
if (mode && !CRASH_MODES.includes(mode)) throw new Error(`no crash mode ${mode}`);
const single = args.call !== undefined;
const opts = {
  modes: mode ? [mode] : undefined,
  seedsPerMode: num("seeds-per-mode", 2),
  onlyCall: single ? num("call", 0) : undefined,
  onlyCrashSeed: args["crash-seed"] !== undefined ? num("crash-seed", 0) : undefined,
  recoveryCrashes: !args["no-recovery-crashes"],
  batchAtomicity: !args["no-batch-atomicity"],
  maxViolations: 50,
  verbose: args.verbose || single ? (line: string) => console.log(`  ${line}`) : undefined,
};

const started = Date.now();
const totals = { runs: 0, generated: 0, states: 0, images: 0, recovery: 0, violations: 0 };
let lastReport = started;
const noted = new Set<string>();
const add = (r: RunResult) => {
  if (r.note && !noted.has(r.workload)) {
    noted.add(r.workload);
    console.log(`workload ${r.workload}: ${r.note}`);
  }
  totals.runs++;
  totals.generated += r.generated;
  totals.states += r.states;
  totals.images += r.distinct;
  totals.recovery += r.recoveryStates;
  totals.violations += r.violations.length;
  for (const v of r.violations) console.log(`VIOLATION ${v.message}\n  ${v.repro}`);
};
const summary = () =>
  `states explored=${totals.states} (of ${totals.generated} generated, ${totals.images} distinct ` +
  `images, +${totals.recovery} crashes during recovery) in ${totals.runs} workload runs, ` +
  `violations=${totals.violations}, ${((Date.now() - started) / 1000).toFixed(0)} s`;

if (single) {
  add(await runWorkload(workloads[0], num("seed", 1), opts));
} else {
  for (let seed = num("seed", 1); totals.states < target; seed++) {
    for (const w of workloads) {
      add(await runWorkload(w, seed, opts));
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        console.log(`seed ${seed}: ${summary()}`);
      }
      if (totals.states >= target) break;
    }
  }
}
console.log(summary());
process.exit(totals.violations > 0 ? 1 : 0);
