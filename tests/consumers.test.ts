/**
 * The three ways in, tested the way users take them: build the npm package (`scripts/build_npm.ts`),
 * `npm pack` it, install the tarball into a fresh project, then append, sync, close, reopen and read
 * back real records through
 * - Node 20 `import` (ESM build) and `require` (CommonJS build),
 * - Bun `import`,
 * - Deno, importing the source package by its JSR name `@khipu/log` through a workspace,
 * and type-check a strict TypeScript consumer (`.mts` and `.cts`) against the shipped `.d.ts`.
 *
 * Runs once, under Node (`tsx --test`): it drives every runtime as a child process, so running it
 * again under `deno test` and `bun test` would only triple the cost; there it is skipped with a
 * message. `KHIPU_SKIP_CONSUMERS=1` skips it everywhere (quick local loops).
 *
 * The consumer programs live in `tests/fixtures/consumer/` (`.mjs`/`.cjs`, so the repository's own
 * type check does not try to resolve `khipu-log`); the TypeScript and Deno consumers are written
 * here because a `.ts` fixture importing `khipu-log` would break the repository's `tsc` run.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = path.join(ROOT, "tests", "fixtures", "consumer");
const BIN = path.join(ROOT, "node_modules", ".bin");

const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
const SKIP: string | false = process.env.KHIPU_SKIP_CONSUMERS === "1"
  ? "KHIPU_SKIP_CONSUMERS=1"
  : runtime.Deno !== undefined || runtime.Bun !== undefined
  ? "consumer tests run once, under Node (npm run test:node); they drive Deno and Bun themselves"
  : false;
if (SKIP && (runtime.Deno !== undefined || runtime.Bun !== undefined)) {
  console.log(`tests/consumers.test.ts: skipped here: ${SKIP}`);
}

/** The part of `scripts/build_npm.ts` used here. */
interface BuildModule {
  buildNpm(options: { root: string; outDir: string; quiet: boolean }): { outDir: string };
}

/** One record as the consumers report it. */
interface Rec {
  seq: number;
  len: number;
  sha256: string;
}

/** What a consumer run prints. */
interface ConsumerResult {
  label: string;
  appended: number[];
  records: Rec[];
}

/** The child environment: no loaders inherited from tsx, no colours, no update checks. */
function childEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  delete env.NODE_OPTIONS;
  delete env.FORCE_COLOR;
  return env;
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, {
    cwd,
    env: childEnv(),
    encoding: "utf8",
    timeout: 120_000,
    shell: process.platform === "win32",
  });
  if (r.error) throw r.error;
  assert.equal(
    r.status,
    0,
    `${cmd} ${
      args.join(" ")
    } (in ${cwd}) exited ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
  );
  return r.stdout;
}

/** Runs a consumer and parses the JSON line it prints last. */
function consume(cmd: string, args: string[], cwd: string): ConsumerResult {
  const out = run(cmd, args, cwd).trim().split("\n");
  return JSON.parse(out[out.length - 1]) as ConsumerResult;
}

describe("package consumers (npm tarball on Node and Bun, JSR name on Deno, .d.ts)", {
  skip: SKIP,
}, () => {
  let tmp = "";
  let app = ""; // the fresh npm project with the tarball installed
  let deno = ""; // the Deno workspace app
  let packed: string[] = [];
  let manifest: Record<string, unknown> = {};
  const node = process.execPath;
  const bun = path.join(BIN, "bun");
  const denoBin = path.join(BIN, "deno");

  const storeDir = (name: string) => path.join(tmp, "stores", name);
  const nodeEsm = (dir: string, label: string) =>
    consume(node, [path.join(app, "esm.mjs"), dir, label], app);
  const nodeCjs = (dir: string, label: string) =>
    consume(node, [path.join(app, "cjs.cjs"), dir, label], app);
  const bunEsm = (dir: string, label: string) =>
    consume(bun, [path.join(app, "esm.mjs"), dir, label], app);
  const denoRun = (dir: string, label: string) =>
    consume(denoBin, ["run", "-A", "--no-lock", "main.ts", dir, label], deno);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "khipu-consumers-"));
    fs.mkdirSync(path.join(tmp, "stores"));

    // 1. Build into a temp dir (never clobbers the developer's npm/), then pack it.
    // A computed specifier keeps `deno test` from type-checking the build (and TypeScript's
    // 10k-line typings) while it only skips this file.
    const buildScript = "../scripts/build_npm.ts";
    const { buildNpm } = (await import(buildScript)) as BuildModule;
    const { outDir } = buildNpm({ root: ROOT, outDir: path.join(tmp, "npm"), quiet: true });
    manifest = JSON.parse(fs.readFileSync(path.join(outDir, "package.json"), "utf8"));
    const pack = JSON.parse(
      run("npm", ["pack", outDir, "--pack-destination", tmp, "--json", "--loglevel=error"], tmp),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packed = pack[0].files.map((f) => f.path).sort();
    const tarball = path.join(tmp, pack[0].filename);

    // 2. A fresh project installs the tarball; no registry is needed (the package has no deps).
    app = path.join(tmp, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, "package.json"),
      JSON.stringify({ name: "khipu-consumer", private: true, version: "0.0.0" }),
    );
    run("npm", [
      "install",
      tarball,
      "--offline",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      "--no-package-lock",
      "--loglevel=error",
      "--cache",
      path.join(tmp, "npm-cache"),
    ], app);
    for (const f of ["common.mjs", "esm.mjs", "cjs.cjs"]) {
      fs.copyFileSync(path.join(FIXTURES, f), path.join(app, f));
    }

    // 3. A Deno workspace: the package's publishable files as one member, the consumer as another;
    //    the consumer imports "@khipu/log", resolved by the member's deno.json name and exports.
    const ws = path.join(tmp, "deno-ws");
    const member = path.join(ws, "khipu-log");
    deno = path.join(ws, "app");
    fs.mkdirSync(member, { recursive: true });
    fs.mkdirSync(deno);
    const denoJson = JSON.parse(fs.readFileSync(path.join(ROOT, "deno.json"), "utf8"));
    delete denoJson.nodeModulesDir; // a workspace-root-only setting
    fs.writeFileSync(path.join(member, "deno.json"), JSON.stringify(denoJson, null, 2));
    fs.copyFileSync(path.join(ROOT, "mod.ts"), path.join(member, "mod.ts"));
    fs.cpSync(path.join(ROOT, "src"), path.join(member, "src"), { recursive: true });
    fs.writeFileSync(
      path.join(ws, "deno.json"),
      JSON.stringify({ workspace: ["./khipu-log", "./app"] }),
    );
    fs.writeFileSync(path.join(deno, "deno.json"), "{}\n");
    fs.copyFileSync(path.join(FIXTURES, "common.mjs"), path.join(deno, "common.mjs"));
    fs.writeFileSync(
      path.join(deno, "main.ts"),
      [
        `import * as api from "@khipu/log";`,
        `import { main } from "./common.mjs";`,
        `await main(api);`,
        ``,
      ].join("\n"),
    );
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("packs ESM, CommonJS and types, with no tests, benchmarks or devDependencies", () => {
    for (const f of ["LICENSE", "package.json", "esm/mod.js", "esm/mod.d.ts", "cjs/mod.js"]) {
      assert.ok(packed.includes(f), `${f} is in the tarball`);
    }
    assert.ok(packed.includes("cjs/mod.d.ts") && packed.includes("cjs/package.json"));
    const stray = packed.filter((f) =>
      /(^|\/)(tests?|bench|scripts|examples|fixtures|node_modules)\//.test(f) ||
      /[._](test|bench)\.|\.ts$/.test(f.replace(/\.d\.ts$/, ".d"))
    );
    assert.deepEqual(stray, [], "only built code and docs are packed");
    assert.equal(manifest.name, "khipu-log");
    assert.equal(manifest.devDependencies, undefined);
    assert.equal(manifest.dependencies, undefined);
    assert.equal(manifest.sideEffects, false);
    assert.deepEqual(manifest.engines, { node: ">=20.15" });
  });

  it("Node imports it (ESM) and reads back what it wrote after reopening", () => {
    const r = nodeEsm(storeDir("node-esm"), "node-esm");
    assert.equal(r.appended.length, 5);
    assert.equal(r.records.length, 5);
  });

  it("Node requires it (CommonJS) without loading the Deno adapter", () => {
    const r = nodeCjs(storeDir("node-cjs"), "node-cjs");
    assert.equal(r.records.length, 5);
  });

  it("Bun imports it", () => {
    const r = bunEsm(storeDir("bun"), "bun");
    assert.equal(r.records.length, 5);
  });

  it("Deno imports it as @khipu/log through a workspace", () => {
    const r = denoRun(storeDir("deno"), "deno");
    assert.equal(r.records.length, 5);
  });

  it("one store written in turn by Node ESM, Bun, Deno and Node CJS keeps every record", () => {
    const dir = storeDir("shared");
    let prev: Rec[] = [];
    for (const step of [nodeEsm, bunEsm, denoRun, nodeCjs]) {
      const r = step(dir, `shared-${step.name}`);
      assert.equal(r.records.length, prev.length + 5, `after ${step.name}`);
      assert.deepEqual(r.records.slice(0, prev.length), prev, `${step.name} kept earlier records`);
      prev = r.records;
    }
  });

  it("the examples run as-is: bun run, deno run, tsx", () => {
    const ex = (name: string) => path.join(ROOT, "examples", name);
    const bunOut = run(bun, ["run", ex("bun.ts"), "200"], ROOT);
    assert.match(bunOut, /reopened: 200 records/);
    const denoOut = run(denoBin, ["run", "-A", ex("deno.ts"), "200"], ROOT);
    assert.match(denoOut, /read 100 records from seq 100/);
    const tsx = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");
    const nodeOut = run(node, [tsx, ex("node.ts"), "300"], ROOT);
    assert.match(nodeOut, /audit log: 3 records/);
  });

  it("a strict TypeScript consumer type-checks against the shipped .d.ts (import and require)", () => {
    const body = (kind: string) =>
      `import { Store, SyncPolicy } from "khipu-log";

export async function demo${kind}(dir: string): Promise<number> {
  const store: Store = await Store.open(dir, { syncPolicy: SyncPolicy.everyN(64) });
  const log = await store.log("events");
  const seq: number = await log.append("hello");
  const more: number = await log.append(new Uint8Array([1, 2, 3]));
  const seqs: number[] = await log.appendBatch([new Uint8Array([4]), new Uint8Array([5])]);
  let total = 0;
  for await (const rec of log.read({ from: 0 })) {
    const s: number = rec.seq;
    const t: number = rec.timestamp;
    const d: Uint8Array = rec.data;
    total += s + t + d.length;
  }
  await log.sync();
  const first: number = log.firstSeq;
  const next: number = log.nextSeq;
  await store.sync();
  await store.close();
  await using disposable = await Store.open(dir);
  await disposable.sync();
  const policies: SyncPolicy[] = [
    SyncPolicy.always(),
    SyncPolicy.everyN(),
    SyncPolicy.interval(10),
    SyncPolicy.osManaged(),
  ];
  // @ts-expect-error: records are bytes or strings (proves the types are not \`any\`)
  await log.append(42);
  return seq + more + seqs.length + total + first + next + policies.length;
}
`;
    const tsDir = path.join(app, "typed");
    fs.mkdirSync(tsDir, { recursive: true });
    fs.writeFileSync(path.join(tsDir, "esm.mts"), body("Esm"));
    fs.writeFileSync(path.join(tsDir, "cjs.cts"), body("Cjs"));
    fs.writeFileSync(
      path.join(tsDir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          // No @types/node: the shipped declarations need only the standard lib (`AbortSignal`
          // comes from DOM here; @types/node, Deno and bun-types declare it too). The package's
          // .d.ts files are checked (skipLibCheck off); the standard lib is not.
          lib: ["ES2022", "ESNext.Disposable", "DOM"],
          types: [],
          noEmit: true,
          skipLibCheck: false,
          skipDefaultLibCheck: true,
        },
        files: ["esm.mts", "cjs.cts"],
      }),
    );
    const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const listed = run(node, [tsc, "-p", tsDir, "--listFiles"], tsDir);
    // Each flavour resolved its own declarations through the exports map.
    assert.match(listed, /node_modules[\\/]khipu-log[\\/]esm[\\/]mod\.d\.ts/);
    assert.match(listed, /node_modules[\\/]khipu-log[\\/]cjs[\\/]mod\.d\.ts/);
  });
});
