/**
 * Builds the npm package into `npm/`: what dnt would do for us, done with the TypeScript compiler API
 * because dnt lives on JSR (unreachable here) and the build must run on Node without Deno.
 *
 * Output (ES modules only: one copy of every class, so `instanceof` holds however it is loaded):
 * - `npm/esm/**`: ES modules + `.d.ts` (`rewriteRelativeImportExtensions` turns `./x.ts` into
 *   `./x.js`, dynamic `import("./deno.ts")` included; declarations are rewritten the same way).
 *   CommonJS users `require()` the same files: Node >= 20.19 / 22.12 loads ES modules through
 *   `require` (require(esm)), which is why no module may use top-level `await` (checked below).
 * - `npm/package.json`: the exports map of the five entry points (`.` = `mod.ts`, `./testing`,
 *   `./platform`, `./cli`, `./integrity`, `./nats`, each with `types` and `default`, matching deno.json's
 *   `exports`; `typesVersions` for TypeScript's legacy node10 resolution), the `khipu` and
 *   `khipu-log` bins, engines, the NATS client as optional peerDependencies (only `./nats` imports
 *   it), repository metadata, files, no scripts or devDependencies.
 * - `npm/bin/khipu.js`: the bins' program (`#!/usr/bin/env node`), which runs `esm/cli.js`'s
 *   `main` on the process's arguments, so `npx khipu-log` and `bunx khipu-log` work.
 * - `README.md` rewritten for the package (see {@linkcode packageReadme}: no repository-only
 *   commands, links to files the tarball lacks made absolute), `LICENSE`, `CHANGELOG.md`, and
 *   `FORMAT.md` / `PLATFORMS.md` when present.
 *
 * Sources are the entry points and every module they reach (static or literal dynamic imports),
 * compiled with the repository's tsconfig (lib, types, strictness). The program is type-checked and
 * emits the declarations (`isolatedDeclarations`, JSR's "no slow types" rule, is on); the
 * JavaScript is transpiled file by file, which `verbatimModuleSyntax` makes exact (type-only imports
 * are marked).
 *
 * The build is reproducible: the output directory is recreated, files are written in sorted order, and
 * nothing depends on time, environment or the file system's directory order.
 *
 * It also refuses to produce a package that would break on Node or Bun: every relative import in the
 * output must resolve to an emitted file, no bare package may be imported but the NATS client's
 * (optional peer dependencies, {@linkcode PEER_DEPS}) and those only by modules the `./nats` entry
 * point alone reaches (the core has no dependencies), no module may call `require` or use
 * top-level `await` (either breaks `require()` of the package), and the modules loaded statically
 * from an entry point may neither import `bun:*` nor dereference the `Deno`/`Bun` globals (checking
 * that they exist is fine): the Deno and Bun adapters must be reached through a dynamic `import()`
 * behind such a check. No test, benchmark or fixture file may reach the package, and every relative
 * link in a shipped Markdown file must name a shipped file.
 *
 * Usage: `npx tsx scripts/build_npm.ts [--root <repo>] [--out <dir>] [--quiet] [--no-check]`.
 *
 * @example
 * ```ts
 * import { buildNpm } from "./build_npm.ts";
 * const { outDir, files } = buildNpm({ quiet: true });
 * console.log(outDir, files.length);
 * ```
 * @module
 */
import ts from "typescript";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Options of {@linkcode buildNpm}. */
export interface BuildOptions {
  /** Repository root (holds `mod.ts`, `src/`, `package.json`). Default: this script's parent. */
  root?: string;
  /** Output directory, deleted and recreated. Default: `<root>/npm`. */
  outDir?: string;
  /** No progress output. */
  quiet?: boolean;
  /**
   * Report type errors (default true). The output is the same either way (JS is transpiled per file,
   * declarations need no full check), so a caller that has just run `tsc --noEmit` may skip it.
   */
  typeCheck?: boolean;
}

/** What {@linkcode buildNpm} produced. */
export interface BuildResult {
  /** Absolute output directory. */
  outDir: string;
  /** Every file written, relative to `outDir`, `/`-separated, sorted. */
  files: string[];
  /** Package name and version written to `package.json`. */
  name: string;
  /** Package version. */
  version: string;
}

/** Names that mark tests or benchmarks, which must never reach the package. */
const EXCLUDED_FILE = /[._](?:test|bench|spec)\.(?:d\.)?[cm]?[jt]sx?$/;
const EXCLUDED_DIR = new Set(["test", "tests", "testdata", "bench", "__tests__", "fixtures"]);

/** Specifier extensions rewritten in declarations (TypeScript leaves `.ts` there: TS#61037). */
const TS_EXT: ReadonlyArray<[string, string]> = [[".ts", ".js"], [".mts", ".mjs"], [
  ".cts",
  ".cjs",
], [".tsx", ".js"]];

/**
 * The entry points: export subpath -> source file. deno.json's `exports` must list the same (JSR
 * and npm users see one API); each becomes `esm/<stem>.js` + `esm/<stem>.d.ts`.
 */
const ENTRIES: ReadonlyArray<readonly [subpath: string, source: string]> = [
  [".", "mod.ts"],
  ["./testing", "testing.ts"],
  ["./platform", "platform.ts"],
  ["./cli", "cli.ts"],
  ["./integrity", "integrity.ts"],
  ["./nats", "nats.ts"],
];

/**
 * Packages only the `./nats` entry point imports: optional peer dependencies of the package (at
 * the devDependencies' version, caret range), so the core entry points stay dependency-free.
 */
const NATS_ENTRY = "nats.ts";
const PEER_DEPS = ["@nats-io/jetstream", "@nats-io/nats-core"];

/** The package a bare specifier names (`@scope/name/sub` -> `@scope/name`). */
function packageOf(spec: string): string {
  return spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/");
}

/** The program the package's bins run (see {@linkcode BIN_NAMES}). */
const BIN_FILE = "bin/khipu.js";

/** The package's commands: `khipu`, and its own name, which `bunx khipu-log` looks for. */
const BIN_NAMES = ["khipu", "khipu-log"];

/** {@linkcode BIN_FILE}'s text: it calls `esm/cli.js`'s `main` (which runs itself only as a program). */
const BIN_SOURCE = [
  "#!/usr/bin/env node",
  'import process from "node:process";',
  'import { main } from "../esm/cli.js";',
  "main(process.argv.slice(2)).then((code) => (process.exitCode = code));",
  "",
].join("\n");

/** Files copied into the package root; the first three are required. */
const DOCS = ["README.md", "LICENSE", "CHANGELOG.md", "FORMAT.md", "PLATFORMS.md"];
const REQUIRED_DOCS = new Set(["README.md", "LICENSE", "CHANGELOG.md"]);

/** The branch absolute links to repository files point at. */
const BRANCH = "main";

/** Keys the published manifest must carry (npm shows them; `repository` also makes the links). */
const REQUIRED_META = ["description", "keywords", "homepage", "bugs", "repository", "license"];

/** Package README sections that only make sense in a clone of the repository (by heading). */
const REPO_ONLY_SECTIONS = new Set(["Building the npm package from this repository"]);

/** Where the program "writes" declarations; the build keeps them in memory, nothing lands here. */
const VIRTUAL_OUT = ".build_npm_out";

/** Globals that only exist on one runtime and must not be dereferenced on module load. */
const RUNTIME_GLOBALS = new Set(["Deno", "Bun"]);

/**
 * Builds the npm package. Throws (after printing TypeScript's diagnostics) if the sources do not
 * type-check or the output fails the runtime-isolation checks described in the module docs.
 *
 * @example
 * ```ts
 * import { buildNpm } from "./build_npm.ts";
 * buildNpm({ root: "/work/main", outDir: "/tmp/khipu-npm", quiet: true });
 * ```
 */
export function buildNpm(options: BuildOptions = {}): BuildResult {
  const root = path.resolve(
    options.root ?? path.join(path.dirname(fileURLToPath(import.meta.url)), ".."),
  );
  const outDir = path.resolve(options.outDir ?? path.join(root, "npm"));
  const log = options.quiet ? () => {} : (msg: string) => console.log(msg);
  if (outDir === root || root.startsWith(outDir + path.sep)) {
    throw new Error(`refusing to build into ${outDir}: it contains the sources`);
  }

  const pkg = readJson(path.join(root, "package.json"));
  const denoJson = readJson(path.join(root, "deno.json"));
  const name = String(pkg.name);
  const version = String(pkg.version);
  if (denoJson.version !== version) {
    throw new Error(`version mismatch: package.json ${version}, deno.json ${denoJson.version}`);
  }
  for (const f of REQUIRED_DOCS) {
    if (!fs.existsSync(path.join(root, f))) throw new Error(`build_npm: ${f} is missing`);
  }
  const missingMeta = REQUIRED_META.filter((k) => pkg[k] === undefined);
  if (missingMeta.length > 0) {
    throw new Error(`build_npm: package.json lacks ${missingMeta.join(", ")}`);
  }
  const denoExports = JSON.stringify(denoJson.exports);
  const wanted = JSON.stringify(Object.fromEntries(ENTRIES.map(([sub, src]) => [sub, `./${src}`])));
  if (denoExports !== wanted) {
    throw new Error(
      `build_npm: deno.json exports ${denoExports} differ from the npm entries ${wanted}`,
    );
  }

  const entries = ENTRIES.map(([, src]) => path.join(root, src));
  for (const e of entries) if (!fs.existsSync(e)) throw new Error(`${e} is missing`);
  const base = baseOptions(root);

  // ---- declarations and type check: one program ------------------------------------------------
  // Declarations come from the checker-backed emitter: `ts.transpileDeclaration` (5.9.3) emits a
  // class's `[Symbol.asyncDispose]()` twice (as a property and a method), which consumers' tsc
  // rejects as a duplicate identifier.
  const program = ts.createProgram({
    rootNames: entries,
    options: { ...base, outDir: path.join(root, VIRTUAL_OUT), rootDir: root },
  });
  // The package is what the entry points reach: test helpers elsewhere stay out.
  const sources = program.getSourceFiles()
    .map((sf) => sf.fileName)
    .filter((f) => !f.endsWith(".d.ts") && !f.split(/[\\/]/).includes("node_modules"))
    .sort();
  for (const f of sources) {
    const rel = path.relative(root, f);
    if (rel.startsWith("..") || path.isAbsolute(rel)) throw new Error(`${f} is outside ${root}`);
  }
  log(
    `build_npm: ${sources.length} source files reachable from ${
      ENTRIES.map((e) => e[1]).join(", ")
    }`,
  );
  const emitted = new Map<string, string>(); // path relative to outDir -> text
  const declarations = new Map<string, string>(); // stem ("src/x") -> .d.ts text
  const dtsEmit = program.emit(
    undefined,
    (fileName, text) => {
      const rel = path.relative(path.join(root, VIRTUAL_OUT), fileName).split(path.sep).join("/");
      if (!rel.endsWith(".d.ts") || rel.startsWith("..")) throw new Error(`unexpected ${fileName}`);
      // Declarations keep `./x.ts` specifiers (TS#61037); consumers' tools expect `./x.js`.
      declarations.set(rel.slice(0, -".d.ts".length), rewriteDeclarationSpecifiers(rel, text));
    },
    undefined,
    /* emitOnlyDtsFiles */ true,
  );
  const diagnostics = [
    ...(options.typeCheck === false ? [] : ts.getPreEmitDiagnostics(program)),
    ...dtsEmit.diagnostics,
  ];
  if (diagnostics.length > 0 || dtsEmit.emitSkipped) {
    console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost(root)));
    throw new Error(`build_npm: TypeScript reported ${diagnostics.length} problem(s)`);
  }

  // ---- JavaScript: every file on its own (verbatimModuleSyntax makes that exact) -----------------
  const esm: ts.CompilerOptions = {
    target: base.target,
    useDefineForClassFields: base.useDefineForClassFields,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    newLine: ts.NewLineKind.LineFeed,
    removeComments: false,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    verbatimModuleSyntax: true,
  };
  const problems: ts.Diagnostic[] = [];
  for (const fileName of sources) {
    const rel = path.relative(root, fileName).split(path.sep).join("/");
    const stem = rel.replace(/\.[cm]?tsx?$/, "");
    const text = fs.readFileSync(fileName, "utf8");
    const dts = declarations.get(stem);
    if (dts === undefined) throw new Error(`build_npm: no declarations emitted for ${rel}`);
    const out = ts.transpileModule(text, {
      fileName,
      reportDiagnostics: true,
      compilerOptions: esm,
    });
    problems.push(...(out.diagnostics ?? []));
    emitted.set(`esm/${stem}.js`, forNpm(out.outputText, name));
    emitted.set(`esm/${stem}.d.ts`, forNpm(dts, name));
  }
  if (problems.length > 0) {
    console.error(ts.formatDiagnosticsWithColorAndContext(problems, formatHost(root)));
    throw new Error(`build_npm: transpilation reported ${problems.length} problem(s)`);
  }

  emitted.set(BIN_FILE, BIN_SOURCE);
  checkOutput(emitted);

  // ---- package.json and docs ---------------------------------------------------------------
  const docs = DOCS.filter((f) => fs.existsSync(path.join(root, f)));
  const manifest = npmManifest(pkg, docs);
  const repo = repositoryUrls(manifest.repository);
  const shipped = new Set([...emitted.keys(), ...docs, "package.json"]);
  const docProblems: string[] = [];
  for (const f of docs) {
    let text = fs.readFileSync(path.join(root, f), "utf8");
    if (f.endsWith(".md")) {
      if (f === "README.md") text = packageReadme(text, root, shipped, repo);
      text = absoluteLinks(text, f, root, shipped, repo);
      docProblems.push(...checkDoc(text, f, shipped, f === "README.md"));
    }
    emitted.set(f, text);
  }
  if (docProblems.length > 0) {
    throw new Error(`build_npm: the package's docs would break:\n  ${docProblems.join("\n  ")}`);
  }
  emitted.set("package.json", json(manifest));

  // ---- write, deterministically -------------------------------------------------------------
  fs.rmSync(outDir, { recursive: true, force: true });
  const files = [...emitted.keys()].sort();
  for (const rel of files) {
    const dest = path.join(outDir, ...rel.split("/"));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, emitted.get(rel)!);
  }
  log(`build_npm: wrote ${files.length} files to ${outDir} (${name}@${version})`);
  return { outDir, files, name, version };
}

/**
 * The doc examples import the JSR name (`"@khipu/log"`, `"@khipu/log/testing"`, ...); on npm the
 * same entry points are `name` and its subpaths, so the shipped JSDoc says that.
 */
function forNpm(code: string, name: string): string {
  return code.replaceAll('"@khipu/log', `"${name}`);
}

// ------------------------------------------------------------------------------------------------

/** The repository's tsconfig options (lib, types, strictness), set up for emitting. */
function baseOptions(root: string): ts.CompilerOptions {
  const configPath = path.join(root, "tsconfig.json");
  const read = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, "\n"));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath);
  return {
    ...parsed.options,
    noEmit: false,
    emitDeclarationOnly: false,
    declaration: true,
    isolatedDeclarations: true,
    isolatedModules: true,
    declarationMap: false,
    sourceMap: false,
    inlineSourceMap: false,
    incremental: false,
    composite: false,
    tsBuildInfoFile: undefined,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    newLine: ts.NewLineKind.LineFeed,
    removeComments: false,
  };
}

/** Rewrites relative `.ts` module specifiers in a declaration file's imports/exports/import types. */
function rewriteDeclarationSpecifiers(fileName: string, text: string): string {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const edits: Array<{ start: number; end: number; value: string }> = [];
  const visit = (node: ts.Node): void => {
    let lit: ts.Node | undefined;
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) lit = node.moduleSpecifier;
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      lit = node.argument.literal;
    }
    if (lit && ts.isStringLiteral(lit)) {
      const next = rewriteSpecifier(lit.text);
      if (next !== lit.text) {
        edits.push({ start: lit.getStart(sf) + 1, end: lit.getEnd() - 1, value: next });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.value + out.slice(e.end);
  }
  return out;
}

function rewriteSpecifier(spec: string): string {
  if (!spec.startsWith("./") && !spec.startsWith("../")) return spec;
  if (spec.endsWith(".d.ts")) return spec;
  for (const [from, to] of TS_EXT) {
    if (spec.endsWith(from)) return spec.slice(0, -from.length) + to;
  }
  return spec;
}

interface ModuleRefs {
  /** Specifiers loaded when the module loads (static import/export, top-level require). */
  static: string[];
  /** Specifiers loaded later (dynamic import, require inside a function). */
  dynamic: string[];
  /** Uses of Deno/Bun globals beyond an existence check, as "file:line: code". */
  globalUses: string[];
  /** `require(...)` calls (an ES module has no `require`), as "file:line: code". */
  requires: string[];
  /** Top-level `await` (`require()` of the package would throw ERR_REQUIRE_ASYNC_MODULE). */
  topLevelAwait: string[];
}

/** Names under which a module can reach the global object. */
const GLOBAL_OBJECTS = new Set(["globalThis", "self", "window", "global"]);

/** Collects module references and runtime-global uses from an emitted JS file. */
function scanJs(fileName: string, text: string): ModuleRefs {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const refs: ModuleRefs = {
    static: [],
    dynamic: [],
    globalUses: [],
    requires: [],
    topLevelAwait: [],
  };
  const where = (n: ts.Node) => {
    const { line } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
    const code = (n.parent ?? n).getText(sf).replace(/\s+/g, " ").slice(0, 80);
    return `${fileName}:${line + 1}: ${code}`;
  };
  const use = (n: ts.Node) => refs.globalUses.push(where(n));
  const visit = (node: ts.Node, inFunction: boolean): void => {
    if (
      !inFunction &&
      (ts.isAwaitExpression(node) || (ts.isForOfStatement(node) && node.awaitModifier) ||
        (ts.isVariableDeclarationList(node) &&
          (node.flags & ts.NodeFlags.AwaitUsing) === ts.NodeFlags.AwaitUsing))
    ) {
      refs.topLevelAwait.push(where(node));
    }
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      refs.static.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node)) {
      const arg = node.arguments[0];
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
      if (isRequire) refs.requires.push(where(node));
      if ((isImport || isRequire) && arg) {
        if (ts.isStringLiteralLike(arg)) {
          (isImport || inFunction ? refs.dynamic : refs.static).push(arg.text);
        } else {
          refs.dynamic.push("<computed>");
        }
      }
    } else if (ts.isIdentifier(node) && RUNTIME_GLOBALS.has(node.text)) {
      const p = node.parent;
      if (ts.isPropertyAccessExpression(p) && p.name === node) {
        // `globalThis.Deno`; `foo.Deno` on some other object is not the global.
        if (isGlobalObject(p.expression) && !isExistenceCheck(p)) use(p);
      } else if (isBareReference(node) && !isExistenceCheck(node)) {
        use(node);
      }
    } else if (
      ts.isElementAccessExpression(node) && isGlobalObject(node.expression) &&
      ts.isStringLiteralLike(node.argumentExpression) &&
      RUNTIME_GLOBALS.has(node.argumentExpression.text) && !isExistenceCheck(node)
    ) {
      use(node);
    }
    const fn = inFunction || ts.isFunctionLike(node);
    ts.forEachChild(node, (c) => visit(c, fn));
  };
  visit(sf, false);
  return refs;
}

function isGlobalObject(e: ts.Expression): boolean {
  return ts.isIdentifier(e) && GLOBAL_OBJECTS.has(e.text);
}

/** An identifier in an expression position, not a property/member/parameter name. */
function isBareReference(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p)) return p.expression === id;
  if (
    ts.isPropertyAssignment(p) || ts.isMethodDeclaration(p) || ts.isPropertyDeclaration(p) ||
    ts.isGetAccessor(p) || ts.isSetAccessor(p) || ts.isBindingElement(p) ||
    ts.isVariableDeclaration(p) || ts.isParameter(p) || ts.isFunctionDeclaration(p) ||
    ts.isClassDeclaration(p) || ts.isImportSpecifier(p) || ts.isExportSpecifier(p) ||
    ts.isLabeledStatement(p)
  ) {
    return (p as { initializer?: ts.Node }).initializer === id;
  }
  return true;
}

/**
 * True if the value of `expr` (a mention of `Deno`/`Bun`) is only tested, never kept or
 * dereferenced: `typeof X`, `X === undefined`, `!X`, `if (X)`, `X ? a : b`, `X?.y`, and `&&`/`||`
 * chains of those. `const D = globalThis.Deno` or `globalThis.Deno.open()` is a real use.
 */
function isExistenceCheck(expr: ts.Node): boolean {
  let e: ts.Node = expr;
  while (ts.isParenthesizedExpression(e.parent)) e = e.parent;
  const p = e.parent;
  if (ts.isTypeOfExpression(p)) return true;
  if (ts.isPrefixUnaryExpression(p)) return p.operator === ts.SyntaxKind.ExclamationToken;
  if (ts.isBinaryExpression(p)) {
    const op = p.operatorToken.kind;
    if (
      op === ts.SyntaxKind.EqualsEqualsEqualsToken ||
      op === ts.SyntaxKind.ExclamationEqualsEqualsToken ||
      op === ts.SyntaxKind.EqualsEqualsToken || op === ts.SyntaxKind.ExclamationEqualsToken
    ) return true;
    if (
      op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken
    ) return isExistenceCheck(p);
    return false;
  }
  if (
    (ts.isIfStatement(p) || ts.isWhileStatement(p) || ts.isDoStatement(p)) && p.expression === e
  ) return true;
  if (ts.isConditionalExpression(p)) return p.condition === e;
  if ((ts.isPropertyAccessExpression(p) || ts.isElementAccessExpression(p)) && p.expression === e) {
    return p.questionDotToken !== undefined;
  }
  if ((ts.isCallExpression(p)) && ts.isIdentifier(p.expression)) {
    return p.expression.text === "Boolean";
  }
  return false;
}

/** The output checks described in the module docs; throws listing every problem. */
function checkOutput(emitted: Map<string, string>): void {
  const problems: string[] = [];
  const scans = new Map<string, ModuleRefs>();
  for (const [file, text] of emitted) {
    if (!file.endsWith(".js")) continue;
    const refs = scanJs(file, text);
    // `const require = createRequire(import.meta.url)` would be fine; a bare require() is not.
    if (/\b(?:const|let|var|function)\s+require\b/.test(text)) refs.requires = [];
    scans.set(file, refs);
  }
  const resolve = (from: string, spec: string) =>
    path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const [file, refs] of scans) {
    for (const spec of [...refs.static, ...refs.dynamic]) {
      if (spec === "<computed>") {
        problems.push(`${file}: computed import()/require(), which the build cannot follow`);
      } else if (spec.startsWith("./") || spec.startsWith("../")) {
        if (!emitted.has(resolve(file, spec))) {
          problems.push(`${file}: imports ${spec}, which is not in the package`);
        }
      } else if (
        !spec.startsWith("node:") && !spec.startsWith("bun:") &&
        !PEER_DEPS.includes(packageOf(spec))
      ) {
        problems.push(`${file}: imports ${spec}; the package has no dependencies`);
      }
    }
    for (const r of refs.requires) problems.push(`${r}  <- require() in an ES module`);
    for (const a of refs.topLevelAwait) {
      problems.push(`${a}  <- top-level await: require() of the package would throw`);
    }
  }
  // Everything reachable from an entry point through static imports loads on every runtime.
  for (const [, source] of ENTRIES) {
    const entry = `esm/${source.replace(/\.ts$/, ".js")}`;
    const core = source !== NATS_ENTRY;
    if (!scans.has(entry)) {
      problems.push(`${entry} was not emitted`);
      continue;
    }
    const seen = new Set<string>();
    const queue = [entry];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const refs = scans.get(file);
      if (!refs) continue;
      for (const spec of [...refs.static, ...refs.dynamic]) {
        if (core && PEER_DEPS.includes(packageOf(spec))) {
          problems.push(`${file}: imports ${spec}, and ${entry} reaches it: the core has no deps`);
        }
      }
      for (const spec of refs.static) {
        if (spec.startsWith("bun:")) {
          problems.push(`${file}: statically imports ${spec}; load it with import() under Bun`);
        }
        if (spec.startsWith(".")) queue.push(resolve(file, spec));
      }
      for (const use of refs.globalUses) {
        problems.push(
          `${use}  <- Deno/Bun global used by a module ${entry} loads on every runtime`,
        );
      }
    }
  }
  for (const file of emitted.keys()) {
    const parts = file.split("/");
    if (parts.some((p) => EXCLUDED_DIR.has(p)) || EXCLUDED_FILE.test(file)) {
      problems.push(`${file}: test or benchmark code in the package`);
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `build_npm: the output is unsafe:\n  ${[...new Set(problems)].sort().join("\n  ")}`,
    );
  }
}

/** The published package.json: runtime metadata only, keys in a fixed order. */
function npmManifest(pkg: Record<string, unknown>, docs: string[]): Record<string, unknown> {
  const exports: Record<string, unknown> = {};
  for (const [subpath, source] of ENTRIES) {
    const stem = `./esm/${source.replace(/\.ts$/, "")}`;
    exports[subpath] = { types: `${stem}.d.ts`, default: `${stem}.js` };
  }
  exports["./package.json"] = "./package.json";
  // TypeScript's legacy `moduleResolution: "node"` (node10) ignores `exports`; this maps its
  // `khipu-log/testing` lookups to the same declarations (every other resolver reads `exports`).
  const typesVersions = {
    "*": Object.fromEntries(
      ENTRIES.filter(([sub]) => sub !== ".").map((
        [sub, source],
      ) => [sub.slice(2), [`./esm/${source.replace(/\.ts$/, ".d.ts")}`]]),
    ),
  };
  const m: Record<string, unknown> = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    keywords: pkg.keywords,
    homepage: pkg.homepage,
    bugs: pkg.bugs,
    repository: pkg.repository,
    author: pkg.author,
    license: pkg.license,
    type: "module",
    // For tools that predate `exports`; Node, Bun, bundlers and TypeScript read `exports`.
    main: "./esm/mod.js",
    types: "./esm/mod.d.ts",
    typesVersions,
    exports,
    bin: Object.fromEntries(BIN_NAMES.map((n) => [n, BIN_FILE])),
    files: ["bin/", "esm/", ...docs].sort(),
    engines: pkg.engines ?? { node: ">=20.19" },
    peerDependencies: Object.fromEntries(PEER_DEPS.map((d) => [d, `^${devVersion(pkg, d)}`])),
    peerDependenciesMeta: Object.fromEntries(PEER_DEPS.map((d) => [d, { optional: true }])),
    sideEffects: false,
  };
  for (const k of Object.keys(m)) if (m[k] === undefined) delete m[k];
  return m;
}

/** The exact version of devDependency `name` (a peer dependency's range starts there). */
function devVersion(pkg: Record<string, unknown>, name: string): string {
  const v = (pkg.devDependencies as Record<string, string> | undefined)?.[name];
  if (v === undefined || !/^\d+\.\d+\.\d+$/.test(v)) {
    throw new Error(`build_npm: package.json must pin devDependency ${name} (got ${v})`);
  }
  return v;
}

/** Base URLs for links to repository files, from `repository` (a GitHub URL). */
interface RepoUrls {
  /** `https://github.com/<owner>/<name>/blob/<branch>/`: pages. */
  blob: string;
  /** `https://raw.githubusercontent.com/<owner>/<name>/<branch>/`: images. */
  raw: string;
}

function repositoryUrls(repository: unknown): RepoUrls {
  const url = typeof repository === "string"
    ? repository
    : String((repository as { url?: unknown } | undefined)?.url ?? "");
  const m = /github\.com[/:]([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/.exec(url);
  if (!m) throw new Error(`build_npm: repository ${url} is not a GitHub URL; links need one`);
  return {
    blob: `https://github.com/${m[1]}/${m[2]}/blob/${BRANCH}/`,
    raw: `https://raw.githubusercontent.com/${m[1]}/${m[2]}/${BRANCH}/`,
  };
}

/** A line that opens or closes a fenced code block (``` or ~~~). */
function isFence(line: string): boolean {
  return /^\s*(```|~~~)/.test(line);
}

/** An npm script of this repository (`npm test`, `npm start`, `npm run x`) in a command or text. */
const REPO_SCRIPT = /\bnpm (?:test|start|run [\w:.-]+)\b/;

/**
 * The package README from the repository's: drops the sections that only work in a clone
 * ({@linkcode REPO_ONLY_SECTIONS}) and the shell lines that run the repository's npm scripts; in
 * prose, names the repository's scripts instead of quoting their commands ("`npm run bench`
 * measures" becomes "The repository's `bench` script measures"), turns inline-code paths of
 * repository files the tarball lacks into links, and drops parenthesised commands that run such
 * files (`(`deno run -A examples/deno.ts`)`). {@linkcode checkDoc} then rejects whatever is left.
 */
function packageReadme(
  text: string,
  root: string,
  shipped: ReadonlySet<string>,
  repo: RepoUrls,
): string {
  const lines = text.split("\n");
  const out: string[] = [];
  let skipLevel = 0; // > 0: inside a dropped section of that heading level
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (isFence(line)) {
      // A whole fenced block: keep it unless every command line in it is repository-only.
      let j = i + 1;
      while (j < lines.length && !isFence(lines[j])) j++;
      const body = lines.slice(i + 1, j);
      if (skipLevel === 0) {
        const kept = body.filter((l) => !REPO_SCRIPT.test(l.replace(/\s#.*$/, "")));
        if (kept.some((l) => l.trim() !== "")) out.push(line, ...kept, lines[j] ?? "```");
        else if (out.length > 0 && out[out.length - 1].trim() === "") out.pop();
        else if (lines[j + 1]?.trim() === "") j++; // no blank line pair around the gap
      }
      i = j;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const level = heading[1].length;
      if (skipLevel > 0 && level <= skipLevel) skipLevel = 0;
      if (skipLevel === 0 && REPO_ONLY_SECTIONS.has(heading[2])) {
        skipLevel = level;
        continue;
      }
    }
    if (skipLevel === 0) out.push(line);
  }
  let result = out.join("\n").replace(/\n{3,}/g, "\n\n");

  // Prose: the repository's scripts by name, not as commands to run here.
  result = result.replace(
    /(^|[.!?]\s+|\n\n)?`npm (test|start|run ([\w:.-]+))(?: [^`]*)?`/g,
    (_m, lead: string | undefined, cmd: string, script: string | undefined) => {
      const what = script !== undefined
        ? `repository's \`${script}\` script`
        : cmd === "test"
        ? "repository's test suite"
        : "repository's demo";
      return lead !== undefined ? `${lead}The ${what}` : `the ${what}`;
    },
  );
  // Inline code naming a repository file the tarball lacks: a link, or (a command) dropped.
  const repoPath = (p: string) =>
    !shipped.has(p) && /^[\w.-]+\/[\w./-]+$/.test(p) && fs.existsSync(path.join(root, p));
  result = result.replace(/\s*\(`([^`]+)`\)/g, (m, code: string) => {
    const words = code.split(/\s+/);
    return words.length > 1 && words.some(repoPath) ? "" : m;
  });
  result = result.replace(
    /(?<!\[)`([^`\s]+)`/g,
    (m, code: string) => (repoPath(code) ? `[\`${code}\`](${repo.blob}${code})` : m),
  );
  return result;
}

/** Relative links `[x](y)`, `![x](y)`, `<img src="y">`, `<a href="y">`: target, offset, image? */
function* relativeLinks(text: string): Generator<{ target: string; image: boolean }> {
  const md = /(!?)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
  const html = /<(img|a)\b[^>]*?\s(?:src|href)="([^"]+)"/gi;
  for (const m of text.matchAll(md)) {
    if (isRelative(m[2])) yield { target: m[2], image: m[1] === "!" };
  }
  for (const m of text.matchAll(html)) {
    if (isRelative(m[2])) yield { target: m[2], image: m[1].toLowerCase() === "img" };
  }
}

function isRelative(target: string): boolean {
  return !/^(?:[a-z][a-z0-9+.-]*:|#|\/\/)/i.test(target);
}

/** The repository-relative file a relative link in `doc` names (anchor and query dropped). */
function linkFile(doc: string, target: string): string {
  const file = target.replace(/[?#].*$/, "");
  return path.posix.normalize(path.posix.join(path.posix.dirname(doc), decodeURI(file)));
}

/**
 * Rewrites relative links to files the package does not ship into absolute repository URLs
 * (images to raw.githubusercontent.com, so they render on npmjs.com and in editors).
 */
function absoluteLinks(
  text: string,
  doc: string,
  root: string,
  shipped: ReadonlySet<string>,
  repo: RepoUrls,
): string {
  const rewrite = (target: string, image: boolean) => {
    if (!isRelative(target)) return target;
    const file = linkFile(doc, target);
    if (shipped.has(file) || !fs.existsSync(path.join(root, file))) return target; // checkDoc says
    return (image ? repo.raw : repo.blob) + file +
      target.slice(target.replace(/[?#].*$/, "").length);
  };
  return text
    .replace(
      /(!?)(\[[^\]]*\]\(\s*<?)([^)\s>]+)/g,
      (_m, bang: string, open: string, target: string) =>
        bang + open + rewrite(target, bang === "!"),
    )
    .replace(
      /(<(img|a)\b[^>]*?\s(?:src|href)=")([^"]+)/gi,
      (_m, open: string, tag: string, target: string) =>
        open + rewrite(target, tag.toLowerCase() === "img"),
    );
}

/** A shipped Markdown file's problems: relative links the tarball cannot satisfy, repo commands. */
function checkDoc(
  text: string,
  doc: string,
  shipped: ReadonlySet<string>,
  readme: boolean,
): string[] {
  const problems: string[] = [];
  for (const { target } of relativeLinks(text)) {
    const file = linkFile(doc, target);
    if (!shipped.has(file)) problems.push(`${doc}: links to ${target}, which the package lacks`);
  }
  if (readme) {
    text.split("\n").forEach((line, i) => {
      if (REPO_SCRIPT.test(line)) {
        problems.push(`${doc}:${i + 1}: a repository-only command is left: ${line.trim()}`);
      }
    });
  }
  return problems;
}

function readJson(p: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(p, "utf8")) as Record<string, unknown>;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

function formatHost(root: string): ts.FormatDiagnosticsHost {
  return {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
  };
}

function parseArgs(argv: string[]): BuildOptions {
  const opts: BuildOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--root") opts.root = argv[++i];
    else if (a === "--out") opts.outDir = argv[++i];
    else if (a === "--quiet") opts.quiet = true;
    else if (a === "--no-check") opts.typeCheck = false;
    else {throw new Error(
        `unknown argument ${a}; usage: build_npm.ts [--root dir] [--out dir] [--quiet] [--no-check]`,
      );}
  }
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    buildNpm(parseArgs(process.argv.slice(2)));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
}
