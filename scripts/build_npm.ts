/**
 * Builds the npm package into `npm/`: what dnt would do for us, done with the TypeScript compiler API
 * because dnt lives on JSR (unreachable here) and the build must run on Node without Deno.
 *
 * Output:
 * - `npm/esm/**`: ES modules + `.d.ts` (`rewriteRelativeImportExtensions` turns `./x.ts` into
 *   `./x.js`, dynamic `import("./deno.ts")` included; declarations are rewritten the same way).
 * - `npm/cjs/**`: CommonJS, its own `.d.ts` copies and a `{"type":"commonjs"}` package.json, so a
 *   `require` consumer gets types that describe a CommonJS module ("masquerading as ESM" otherwise).
 * - `npm/package.json` (exports map, engines, files, no devDependencies), README.md, LICENSE, and
 *   FORMAT.md / PLATFORMS.md when present.
 *
 * Sources are `mod.ts` and every module it reaches (static or literal dynamic imports), compiled
 * with the repository's tsconfig (lib, types, strictness). The program is type-checked and emits
 * the declarations (`isolatedDeclarations`, JSR's "no slow types" rule, is on); the JavaScript is
 * transpiled file by file, which `verbatimModuleSyntax` makes exact (type-only imports are marked).
 *
 * The build is reproducible: the output directory is recreated, files are written in sorted order, and
 * nothing depends on time, environment or the file system's directory order.
 *
 * It also refuses to produce a package that would break on Node or Bun: every relative import in the
 * output must resolve to an emitted file, no bare package may be imported (the package has no
 * dependencies), and the modules loaded statically from `mod.js` may neither import `bun:*` nor
 * dereference the `Deno`/`Bun` globals (checking that they exist is fine): the Deno and Bun adapters
 * must be reached through a dynamic `import()` behind such a check.
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

/** Files copied into the package root when present; LICENSE is required. */
const DOCS = ["README.md", "LICENSE", "FORMAT.md", "PLATFORMS.md"];

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
  if (!fs.existsSync(path.join(root, "LICENSE"))) throw new Error("LICENSE is missing");

  const entry = path.join(root, "mod.ts");
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing`);
  const base = baseOptions(root);

  // ---- declarations and type check: one program ------------------------------------------------
  // Declarations come from the checker-backed emitter: `ts.transpileDeclaration` (5.9.3) emits a
  // class's `[Symbol.asyncDispose]()` twice (as a property and a method), which consumers' tsc
  // rejects as a duplicate identifier.
  const program = ts.createProgram({
    rootNames: [entry],
    options: { ...base, outDir: path.join(root, VIRTUAL_OUT), rootDir: root },
  });
  // The package is what mod.ts reaches: test platforms and helpers elsewhere in src/ stay out.
  const sources = program.getSourceFiles()
    .map((sf) => sf.fileName)
    .filter((f) => !f.endsWith(".d.ts") && !f.split(/[\\/]/).includes("node_modules"))
    .sort();
  for (const f of sources) {
    const rel = path.relative(root, f);
    if (rel.startsWith("..") || path.isAbsolute(rel)) throw new Error(`${f} is outside ${root}`);
  }
  log(`build_npm: ${sources.length} source files reachable from mod.ts`);
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
  const js: ts.CompilerOptions = {
    target: base.target,
    useDefineForClassFields: base.useDefineForClassFields,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    newLine: ts.NewLineKind.LineFeed,
    removeComments: false,
  };
  const esm: ts.CompilerOptions = {
    ...js,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    verbatimModuleSyntax: true,
  };
  const cjs: ts.CompilerOptions = {
    ...js,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    verbatimModuleSyntax: false, // not allowed with CommonJS output; the type check enforces it
    esModuleInterop: true,
  };
  const problems: ts.Diagnostic[] = [];
  const transpile = (
    fn: typeof ts.transpileModule,
    text: string,
    fileName: string,
    compilerOptions: ts.CompilerOptions,
  ) => {
    const out = fn(text, { fileName, reportDiagnostics: true, compilerOptions });
    problems.push(...(out.diagnostics ?? []));
    return out.outputText;
  };
  for (const fileName of sources) {
    const rel = path.relative(root, fileName).split(path.sep).join("/");
    const stem = rel.replace(/\.[cm]?tsx?$/, "");
    const text = fs.readFileSync(fileName, "utf8");
    const dts = declarations.get(stem);
    if (dts === undefined) throw new Error(`build_npm: no declarations emitted for ${rel}`);
    emitted.set(`esm/${stem}.js`, transpile(ts.transpileModule, text, fileName, esm));
    emitted.set(`esm/${stem}.d.ts`, dts);
    emitted.set(`cjs/${stem}.js`, transpile(ts.transpileModule, text, fileName, cjs));
    emitted.set(`cjs/${stem}.d.ts`, dts);
  }
  if (problems.length > 0) {
    console.error(ts.formatDiagnosticsWithColorAndContext(problems, formatHost(root)));
    throw new Error(`build_npm: transpilation reported ${problems.length} problem(s)`);
  }
  emitted.set("cjs/package.json", json({ type: "commonjs" }));

  checkOutput(emitted);

  // ---- package.json and docs ---------------------------------------------------------------
  const docs = DOCS.filter((f) => fs.existsSync(path.join(root, f)));
  if (!docs.includes("README.md")) console.warn("build_npm: warning: README.md is missing");
  for (const f of docs) emitted.set(f, fs.readFileSync(path.join(root, f), "utf8"));
  emitted.set("package.json", json(npmManifest(pkg, docs)));

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
}

/** Names under which a module can reach the global object. */
const GLOBAL_OBJECTS = new Set(["globalThis", "self", "window", "global"]);

/** Collects module references and runtime-global uses from an emitted JS file. */
function scanJs(fileName: string, text: string): ModuleRefs {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS);
  const refs: ModuleRefs = { static: [], dynamic: [], globalUses: [] };
  const use = (n: ts.Node) => {
    const { line } = sf.getLineAndCharacterOfPosition(n.getStart(sf));
    const code = (n.parent ?? n).getText(sf).replace(/\s+/g, " ").slice(0, 80);
    refs.globalUses.push(`${fileName}:${line + 1}: ${code}`);
  };
  const visit = (node: ts.Node, inFunction: boolean): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      refs.static.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node)) {
      const arg = node.arguments[0];
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
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
  for (const flavour of ["esm", "cjs"]) {
    const scans = new Map<string, ModuleRefs>();
    for (const [file, text] of emitted) {
      if (file.startsWith(`${flavour}/`) && file.endsWith(".js")) {
        scans.set(file, scanJs(file, text));
        if (flavour === "cjs" && /\bimport\.meta\b/.test(stripComments(text))) {
          problems.push(`${file}: uses import.meta, which CommonJS does not have`);
        }
      }
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
        } else if (!spec.startsWith("node:") && !spec.startsWith("bun:")) {
          problems.push(`${file}: imports ${spec}; the package has no dependencies`);
        }
      }
    }
    // Everything reachable from mod.js through static imports loads on every runtime.
    const entry = `${flavour}/mod.js`;
    const seen = new Set<string>();
    const queue = [entry];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const refs = scans.get(file);
      if (!refs) continue;
      for (const spec of refs.static) {
        if (spec.startsWith("bun:")) {
          problems.push(`${file}: statically imports ${spec}; load it with import() under Bun`);
        }
        if (spec.startsWith(".")) queue.push(resolve(file, spec));
      }
      for (const use of refs.globalUses) {
        problems.push(`${use}  <- Deno/Bun global used by a module every runtime loads`);
      }
    }
    if (!scans.has(entry)) problems.push(`${entry} was not emitted`);
  }
  for (const file of emitted.keys()) {
    const parts = file.split("/");
    if (parts.some((p) => EXCLUDED_DIR.has(p)) || EXCLUDED_FILE.test(file)) {
      problems.push(`${file}: test or benchmark code in the package`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`build_npm: the output is unsafe:\n  ${problems.sort().join("\n  ")}`);
  }
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'])\/\/.*$/gm, "$1");
}

/** The published package.json: runtime metadata only, keys in a fixed order. */
function npmManifest(pkg: Record<string, unknown>, docs: string[]): Record<string, unknown> {
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
    main: "./cjs/mod.js",
    module: "./esm/mod.js",
    types: "./cjs/mod.d.ts",
    exports: {
      ".": {
        import: { types: "./esm/mod.d.ts", default: "./esm/mod.js" },
        require: { types: "./cjs/mod.d.ts", default: "./cjs/mod.js" },
      },
      "./package.json": "./package.json",
    },
    files: ["cjs/", "esm/", ...docs].sort(),
    engines: pkg.engines ?? { node: ">=20.15" },
    sideEffects: false,
  };
  for (const k of Object.keys(m)) if (m[k] === undefined) delete m[k];
  return m;
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
