/**
 * The peer a TypeScript user reaches for: SQLite in WAL mode, one table
 * `log(seq INTEGER PRIMARY KEY, ts INTEGER, data BLOB)`.
 *
 * - `synchronous=FULL`: every commit fsyncs the WAL (comparable to `always()`).
 * - `synchronous=NORMAL`: commits do not sync; only checkpoints do (a power cut loses recent commits).
 * - `synchronous=OFF`: never syncs (comparable to `osManaged()`).
 * - `tx100`: 100 inserts per transaction with `synchronous=FULL` (comparable to `appendBatch` of 100
 *   under `always()`).
 *
 * Drivers: `bun:sqlite` on Bun, `node:sqlite` on Deno and on Node >= 22.13 (built in; the benchmark
 * runs on Node 24), else `better-sqlite3@12` on Node (installed on demand into `bench/.deps`, never a
 * dependency of the package: it compiles from source, ~80 s, and only for the Node that installs it).
 *
 * {@linkcode sqliteSpace} measures the bytes on disk of the same rows for the space comparison.
 *
 * Run alone: `npx tsx bench/sqlite.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { sqliteSuite } from "./sqlite.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await sqliteSuite(new Recorder());
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  freshDir,
  isMain,
  payload,
  RECORD_SIZES,
  Recorder,
  removeDir,
  runThroughput,
  RUNTIME,
  type ThroughputSpec,
} from "./harness.ts";

/** Where `better-sqlite3` is installed on demand (gitignored). */
const DEPS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), ".deps");

/** The few calls the benchmark needs from any SQLite driver. */
interface SqlDb {
  /** Runs SQL without results. */
  exec(sql: string): void;
  /** A prepared `INSERT INTO log(ts, data)`. */
  insert(ts: number, data: Uint8Array): void;
  close(): void;
}

/** The minimal shape shared by the three drivers' database objects. */
interface DriverDb {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...args: unknown[]): unknown };
  close(): unknown;
}

type DriverCtor = new (file: string) => DriverDb;

/**
 * Makes sure `better-sqlite3@12` is installed in `bench/.deps` (Node only). Returns an error message
 * instead of throwing, so the rest of the benchmark still runs without it. Set
 * `KHIPU_BENCH_NO_INSTALL=1` to never install.
 *
 * @example
 * ```ts
 * import { ensureBetterSqlite } from "./sqlite.bench.ts";
 * console.log(ensureBetterSqlite() ?? "ready");
 * ```
 */
export function ensureBetterSqlite(): string | undefined {
  if (fs.existsSync(path.join(DEPS_DIR, "node_modules", "better-sqlite3", "package.json"))) {
    return undefined;
  }
  if (process.env.KHIPU_BENCH_NO_INSTALL === "1") return "better-sqlite3 not installed";
  console.error(
    `Installing better-sqlite3@12 into ${DEPS_DIR} (compiles from source, about 80 s)...`,
  );
  fs.mkdirSync(DEPS_DIR, { recursive: true });
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(
    npm,
    ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", DEPS_DIR, "better-sqlite3@12"],
    { stdio: ["ignore", "inherit", "inherit"], shell: process.platform === "win32" },
  );
  if (r.status !== 0) return `npm install better-sqlite3@12 failed (status ${r.status})`;
  return undefined;
}

/** Loads this runtime's SQLite driver, or returns why it cannot. */
async function loadDriver(): Promise<{ ctor: DriverCtor; name: string } | string> {
  try {
    if (RUNTIME === "bun") {
      // A variable specifier keeps tsc and deno check from resolving a Bun-only module.
      const spec = "bun:sqlite";
      const m = (await import(spec)) as { Database: DriverCtor };
      return { ctor: m.Database, name: "bun:sqlite" };
    }
    if (RUNTIME === "deno") {
      const spec = "node:sqlite";
      const m = (await import(spec)) as { DatabaseSync: DriverCtor };
      return { ctor: m.DatabaseSync, name: "node:sqlite (Deno)" };
    }
    try {
      // Node >= 22.13 (unflagged) has SQLite built in: no native addon to compile per Node ABI.
      const spec = "node:sqlite";
      const m = (await import(spec)) as { DatabaseSync: DriverCtor };
      return { ctor: m.DatabaseSync, name: `node:sqlite (Node ${process.versions.node})` };
    } catch {
      // Older Node: fall back to better-sqlite3.
    }
    const err = ensureBetterSqlite();
    if (err) return err;
    const require = createRequire(path.join(DEPS_DIR, "node_modules", "noop.js"));
    const ctor = require("better-sqlite3") as DriverCtor;
    const version = (require("better-sqlite3/package.json") as { version: string }).version;
    return { ctor, name: `better-sqlite3 ${version}` };
  } catch (e) {
    return `no SQLite driver: ${(e as Error).message}`;
  }
}

let driver: { ctor: DriverCtor; name: string } | string | undefined;

/**
 * The SQLite driver this runtime uses (`"better-sqlite3 12.x"`, `"bun:sqlite"`,
 * `"node:sqlite (Deno)"`), or why there is none.
 *
 * @example
 * ```ts
 * import { sqliteDriverName } from "./sqlite.bench.ts";
 * console.log(await sqliteDriverName());
 * ```
 */
export async function sqliteDriverName(): Promise<string> {
  driver ??= await loadDriver();
  return typeof driver === "string" ? `n/a (${driver})` : driver.name;
}

function openDb(ctor: DriverCtor, file: string, synchronous: string): SqlDb {
  const db = new ctor(file);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(`PRAGMA synchronous=${synchronous}`);
  db.exec("CREATE TABLE log (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, data BLOB NOT NULL)");
  const st = db.prepare("INSERT INTO log (ts, data) VALUES (?, ?)");
  // better-sqlite3 binds Buffers, not plain Uint8Arrays; a Buffer is a Uint8Array for the others.
  const asBlob = (d: Uint8Array): Uint8Array => Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return {
    exec: (sql) => void db.exec(sql),
    insert: (ts, data) => void st.run(ts, asBlob(data)),
    close: () => void db.close(),
  };
}

function specs(ctor: DriverCtor, size: number): ThroughputSpec[] {
  const rec = payload(size);
  const B = `${size}B`;
  const one = (synchronous: string): ThroughputSpec => ({
    name: `sqlite WAL ${synchronous} insert ${B}`,
    recordBytes: size,
    setup: () => {
      const dir = freshDir(`sqlite${synchronous}`);
      const db = openDb(ctor, path.join(dir, "bench.db"), synchronous);
      return Promise.resolve({
        call: () => db.insert(Date.now(), rec),
        teardown: () => {
          db.close();
          removeDir(dir);
        },
      });
    },
  });
  return [
    one("FULL"),
    one("NORMAL"),
    one("OFF"),
    {
      name: `sqlite WAL FULL tx100 ${B}`,
      recordBytes: size,
      recordsPerCall: 100,
      setup: () => {
        const dir = freshDir("sqlitetx");
        const db = openDb(ctor, path.join(dir, "bench.db"), "FULL");
        return Promise.resolve({
          call: () => {
            db.exec("BEGIN");
            const ts = Date.now();
            for (let i = 0; i < 100; i++) db.insert(ts, rec);
            db.exec("COMMIT");
          },
          teardown: () => {
            db.close();
            removeDir(dir);
          },
        });
      },
    },
  ];
}

/**
 * The `synchronous=FULL` one-insert-per-commit benchmark for `size`-byte records, or `undefined`
 * without a driver (used by the interleaved target measurements).
 *
 * @example
 * ```ts
 * import { sqliteFullSpec } from "./sqlite.bench.ts";
 * console.log((await sqliteFullSpec(100))?.name);
 * ```
 */
export async function sqliteFullSpec(size: number): Promise<ThroughputSpec | undefined> {
  driver ??= await loadDriver();
  if (typeof driver === "string") return undefined;
  return specs(driver.ctor, size)[0];
}

/** What {@linkcode sqliteSpace} measured. */
export interface SqliteSpace {
  /** Bytes of the database and any `-wal`/`-shm` files left after close. */
  bytes: number;
  /** Allocated bytes (`st_blocks * 512`) of the same files. */
  allocated: number;
  /** Seconds the inserts took. */
  seconds: number;
}

/**
 * Inserts `records` rows of `size` bytes into a fresh WAL database (`synchronous=FULL`, 1000 rows per
 * transaction, the same table as the throughput rows), closes it (checkpointing the WAL into the
 * database) and returns the bytes on disk; `undefined` without a driver.
 *
 * @example
 * ```ts
 * import { sqliteSpace } from "./sqlite.bench.ts";
 * console.log((await sqliteSpace(1000, 100))?.bytes);
 * ```
 */
export async function sqliteSpace(
  records: number,
  size: number,
): Promise<SqliteSpace | undefined> {
  driver ??= await loadDriver();
  if (typeof driver === "string") return undefined;
  const dir = freshDir("sqlitespace");
  try {
    const file = path.join(dir, "bench.db");
    const db = openDb(driver.ctor, file, "FULL");
    const rec = payload(size);
    const t0 = performance.now();
    for (let done = 0; done < records;) {
      const n = Math.min(1000, records - done);
      db.exec("BEGIN");
      const ts = Date.now();
      for (let i = 0; i < n; i++) db.insert(ts, rec);
      db.exec("COMMIT");
      done += n;
    }
    db.close();
    const seconds = (performance.now() - t0) / 1000;
    let bytes = 0, allocated = 0;
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      if (!fs.existsSync(f)) continue;
      const st = fs.statSync(f);
      bytes += st.size;
      allocated += st.blocks * 512;
    }
    return { bytes, allocated, seconds };
  } finally {
    removeDir(dir);
  }
}

/**
 * Runs the SQLite suite into `rec`; without a driver, records the rows as skipped.
 *
 * @example
 * ```ts
 * import { sqliteSuite } from "./sqlite.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await sqliteSuite(new Recorder());
 * ```
 */
export async function sqliteSuite(rec: Recorder): Promise<void> {
  driver ??= await loadDriver();
  if (typeof driver === "string") {
    console.error(`SQLite benchmarks skipped: ${driver}`);
    for (const size of RECORD_SIZES) {
      for (const s of ["FULL insert", "NORMAL insert", "OFF insert", "FULL tx100"]) {
        rec.add({
          suite: "sqlite",
          name: `sqlite WAL ${s} ${size}B`,
          recordBytes: size,
          skipped: driver,
        });
      }
    }
    return;
  }
  const ctor = driver.ctor;
  await runThroughput(
    "sqlite",
    RECORD_SIZES.flatMap((size) => specs(ctor, size)),
    rec,
    `sqlite WAL (${driver.name})`,
  );
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await sqliteSuite(rec);
  console.log(await sqliteDriverName());
  rec.printTable();
}
