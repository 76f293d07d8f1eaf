/**
 * The options of `Store.open`, their defaults and their checks: each one is validated (type and
 * range, unknown keys refused) before anything touches the disk.
 *
 * @example
 * ```ts
 * import { resolveOptions } from "./store_options.ts";
 * const o = resolveOptions({ segmentBytes: 8 << 20 });
 * if (o.segmentBytes !== 8 << 20 || o.maxRecordBytes !== 16 << 20) throw new Error("defaults");
 * ```
 * @module
 */
import { InvalidArgumentError } from "./errors.ts";
import type { Platform } from "./platform/types.ts";
import { MAX_RECORD_BYTES } from "./format/limits.ts";
import { SyncPolicy } from "./sync_policy.ts";
import { boolean, describeValue, options as checkOptions, wholeNumber } from "./validate.ts";

/** Options of {@linkcode Store.open}; every one has a default. */
export interface StoreOptions {
  /** Durability policy for every log in the store. Default `SyncPolicy.everyN(64)`. */
  syncPolicy?: SyncPolicy;
  /**
   * Roll a log over to a new segment before its records would pass this size (a sealed segment then
   * gains its seal: 36 bytes plus 16 per 64 KiB of records). Default 64 MiB.
   */
  segmentBytes?: number;
  /** User-space write buffer per log. Default 256 KiB. */
  bufferBytes?: number;
  /**
   * Largest record accepted; larger appends throw `RecordTooLargeError`. Default 16 MiB, at most
   * 256 MiB (the most every runtime writes in one call with memory to spare).
   */
  maxRecordBytes?: number;
  /**
   * Permission bits (0 to 0o777, before the umask) of new segment files and the LOCK file; new
   * store and log directories get them plus an execute bit for each read bit. Default `0o644`.
   */
  fileMode?: number;
  /** The file system to use. Default: detected (Deno, Node or Bun). */
  platform?: Platform;
  /**
   * On damage, move the damaged segment (and any after it) aside as `.broken` and keep everything
   * before the damage readable, instead of failing with `CorruptionError`. Default false.
   */
  repair?: boolean;
  /**
   * Open for reading only, beside the writer (another process, any runtime) or with none: no
   * lock, and nothing is ever written under the store (no torn tail cut, no directory created);
   * `store.log(name)` opens existing logs only. Writes reject with `ReadOnlyError`; cursors still
   * work (their own files are all that such a store writes). Not with `repair`. Default false.
   */
  readOnly?: boolean;
}

/** Options after defaults. */
export type ResolvedStoreOptions = Required<Omit<StoreOptions, "platform">> & {
  platform: Platform;
};

const OPTION_KEYS: readonly (keyof StoreOptions)[] = [
  "syncPolicy",
  "segmentBytes",
  "bufferBytes",
  "maxRecordBytes",
  "fileMode",
  "platform",
  "repair",
  "readOnly",
];

/**
 * The options with their defaults filled in, each checked; the platform stays unset when none was
 * given (`Store.open` detects it).
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { resolveOptions } from "./store_options.ts";
 * try {
 *   resolveOptions({ repair: "yes" } as never);
 *   throw new Error("accepted a string");
 * } catch (e) {
 *   if (!(e instanceof InvalidArgumentError)) throw e;
 * }
 * ```
 */
export function resolveOptions(
  given: StoreOptions | undefined,
): Omit<ResolvedStoreOptions, "platform"> & {
  platform?: Platform;
} {
  const o = checkOptions("Store.open options", given, OPTION_KEYS);
  if (o.syncPolicy !== undefined && !(o.syncPolicy instanceof SyncPolicy)) {
    throw new InvalidArgumentError({
      message: `syncPolicy must come from SyncPolicy.always/everyN/interval/osManaged, got ${
        describeValue(o.syncPolicy)
      }`,
    });
  }
  if (
    o.platform !== undefined &&
    (typeof o.platform !== "object" || o.platform === null ||
      typeof (o.platform as Partial<Platform>).open !== "function")
  ) {
    throw new InvalidArgumentError({
      message: `platform must be a Platform, got ${describeValue(o.platform)}`,
    });
  }
  if (o.readOnly === true && o.repair === true) {
    throw new InvalidArgumentError({
      message: "readOnly and repair exclude each other: repair writes (open without readOnly)",
    });
  }
  const or = <T>(v: T | undefined, d: T): T => (v === undefined ? d : v);
  return {
    syncPolicy: or(o.syncPolicy, SyncPolicy.everyN(64)),
    segmentBytes: wholeNumber("segmentBytes", or(o.segmentBytes, 64 << 20), 4096, 2 ** 48),
    bufferBytes: wholeNumber("bufferBytes", or(o.bufferBytes, 256 << 10), 64, 1 << 30),
    maxRecordBytes: wholeNumber(
      "maxRecordBytes",
      or(o.maxRecordBytes, 16 << 20),
      1,
      MAX_RECORD_BYTES,
    ),
    fileMode: wholeNumber("fileMode", or(o.fileMode, 0o644), 0, 0o777),
    repair: boolean("repair", or(o.repair, false)),
    readOnly: boolean("readOnly", or(o.readOnly, false)),
    platform: o.platform,
  };
}
