// Crash-point exploration: every workload in tests/crash_harness.ts is run against the
// power-loss simulator, crashed after every platform call that changed the disk, in every crash
// mode, and reopened; the six properties (durability, contiguity, appends after recovery, batch
// atomicity, timestamps) are checked in each state. CI explores at least 10,000 crash states per
// runtime and prints the numbers. Longer runs: `npm run crash`. A workload that needs an API the
// code does not have yet is skipped, and the reason printed.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RunResult, runWorkload, WORKLOADS } from "./crash_harness.ts";

const MIN_STATES = 10_000;

function runtime(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${process.versions.node}`;
}

describe("crash-point exploration", () => {
  it(`explores at least ${MIN_STATES} crash states with zero violations`, {
    timeout: 900_000,
  }, async () => {
    const started = Date.now();
    const results: RunResult[] = [];
    let states = 0;
    // Seeds change record sizes and contents (and so where frames straddle sectors and pages);
    // every workload gets the same seeds until the total reaches the floor.
    for (let seed = 1; states < MIN_STATES; seed++) {
      for (const w of WORKLOADS) {
        const r = await runWorkload(w, seed, { maxViolations: 5 });
        results.push(r);
        states += r.states;
      }
    }
    const sum = (f: (r: RunResult) => number) => results.reduce((n, r) => n + f(r), 0);
    const violations = results.flatMap((r) => r.violations);
    for (const w of WORKLOADS) {
      const rs = results.filter((r) => r.workload === w.name);
      const skipped = rs.find((r) => r.skipped)?.skipped;
      if (skipped) {
        console.log(`  crash ${w.name.padEnd(18)} ${w.opts.policy.padEnd(12)} SKIPPED: ${skipped}`);
        continue;
      }
      const note = rs.find((r) => r.note)?.note;
      if (note) console.log(`  crash ${w.name.padEnd(18)} note: ${note}`);
      console.log(
        `  crash ${w.name.padEnd(18)} ${w.opts.policy.padEnd(12)} seeds=${rs.length} ` +
          `crash points=${rs.reduce((n, r) => n + r.crashPoints, 0)} ` +
          `generated=${rs.reduce((n, r) => n + r.generated, 0)} ` +
          `states=${rs.reduce((n, r) => n + r.states, 0)} ` +
          `distinct=${rs.reduce((n, r) => n + r.distinct, 0)} ` +
          `recovery states=${rs.reduce((n, r) => n + r.recoveryStates, 0)}`,
      );
    }
    console.log(
      `crash-point exploration on ${runtime()}: states explored=${sum((r) => r.states)} ` +
        `(distinct image+promise pairs, of ${sum((r) => r.generated)} generated; ` +
        `distinct images=${sum((r) => r.distinct)}; plus ${sum((r) => r.recoveryStates)} ` +
        `crashes during recovery) across ${results.length} workload runs, ` +
        `violations=${violations.length}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const v of violations.slice(0, 10)) {
      console.log(`  VIOLATION ${v.message}\n    ${v.repro}`);
    }
    assert.equal(
      violations.length,
      0,
      violations.map((v) => `${v.message}\n${v.repro}`).join("\n"),
    );
    assert.ok(sum((r) => r.states) >= MIN_STATES);
  });
});
