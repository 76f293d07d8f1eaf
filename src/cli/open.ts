/**
 * How the `khipu` commands open a store. Read-only commands open it `readOnly` (no lock, nothing
 * written: they work beside a writer in another process); `repair` and `cursor set` open it as
 * its writer, so a writer in another process makes them fail with `LockedError`. A writer's open
 * would create a missing directory or log, so those are looked up first: a typo is a
 * `NotFoundError`, never a new empty store.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { existingLog, openStore, withStore } from "./open.ts";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "khipu-"));
 * await (await Store.open(dir)).close();
 * const missing = await withStore(await openStore(dir, "writer"), (s) => existingLog(s, "nope"))
 *   .catch((e) => e);
 * if (missing.code !== "NOT_FOUND") throw new Error(String(missing));
 * ```
 * @module
 */
import { NotFoundError } from "../errors.ts";
import type { Log } from "../log.ts";
import { validateLogName } from "../log_name.ts";
import { defaultPlatform } from "../platform/detect.ts";
import { Store } from "../store.ts";

/** How a command opens the store: beside any writer, as its writer, or as its writer to repair. */
export type OpenMode = "read" | "writer" | "repair";

/**
 * Opens the existing store `dir`: `NotFoundError` if there is none (also for a writer, whose
 * `Store.open` would create it), `LockedError` for a writer while another process holds it.
 *
 * @example
 * ```ts
 * import { openStore } from "./open.ts";
 * const e = await openStore("/no/such/store", "read").catch((e) => e);
 * if (e.code !== "NOT_FOUND") throw new Error(String(e));
 * ```
 */
export async function openStore(dir: string, mode: OpenMode): Promise<Store> {
  if (mode === "read") return await Store.open(dir, { readOnly: true });
  const platform = await defaultPlatform();
  if (!(await platform.stat(dir))) throw new NotFoundError({ op: "open store", path: dir });
  return await Store.open(dir, { platform, repair: mode === "repair" });
}

/**
 * The directory of log `name` in `store`, checked to exist (without opening the log): a writer's
 * `store.log` would create it. `InvalidArgumentError` for a name no log can have.
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { requireLog } from "./open.ts";
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * await store.log("events");
 * const path = await requireLog(store, "events");
 * const e = await requireLog(store, "other").catch((e) => e);
 * await store.close();
 * if (path !== "/data/events" || e.code !== "NOT_FOUND") throw new Error(String(e));
 * ```
 */
export async function requireLog(store: Store, name: string): Promise<string> {
  validateLogName(name);
  const path = `${store.path}/${name}`;
  if (!(await store.logs()).includes(name)) {
    throw new NotFoundError({ op: `open log ${JSON.stringify(name)}`, path });
  }
  return path;
}

/**
 * The log `name` of `store`, opened; it must exist (see {@linkcode requireLog}).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { existingLog } from "./open.ts";
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * await (await store.log("events")).append("a");
 * const log = await existingLog(store, "events");
 * await store.close();
 * if (log.nextSeq !== 1) throw new Error();
 * ```
 */
export async function existingLog(store: Store, name: string): Promise<Log> {
  await requireLog(store, name);
  return await store.log(name);
}

/**
 * Runs `fn` on `store`, then closes the store whatever happened (a failure of `fn` wins over one
 * of the close).
 *
 * @example
 * ```ts
 * import { Store } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { withStore } from "./open.ts";
 * const store = await Store.open("/data", { platform: new SimPlatform() });
 * const names = await withStore(store, (s) => s.logs());
 * const after = await store.logs().catch((e) => e); // closed by withStore
 * if (names.length !== 0 || after.code !== "CLOSED") throw new Error(String(after));
 * ```
 */
export async function withStore<T>(store: Store, fn: (store: Store) => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await fn(store);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  await store.close();
  return result;
}
