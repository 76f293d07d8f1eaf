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
import type { Integrity } from "./log_integrity.ts";
import type { Platform } from "./platform/types.ts";
import { MAX_RECORD_BYTES } from "./format/limits.ts";
import { SyncPolicy } from "./sync_policy.ts";
import { boolean, describeValue, options as checkOptions, wholeNumber } from "./validate.ts";
import {
  type ResolvedRetention,
  resolveRetention,
  type RetentionOptions,
} from "./retention_policy.ts";

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
   * Repair each log as it opens: read every segment whole, copy a damaged one aside as `.broken`,
   * keep every intact record readable at its own seq, and declare what the damage took (and any
   * missing segment) as a gap readers skip, instead of failing with `CorruptionError`. What was
   * done is in `log.openReport.repaired`. Default false. See RECOVERY.md, "Repair mode".
   */
  repair?: boolean;
  /**
   * Open for reading only, beside the writer (another process, any runtime) or with none: no
   * lock, and nothing is ever written under the store (no torn tail cut, no directory created);
   * `store.log(name)` opens existing logs only. Writes reject with `ReadOnlyError`; cursors still
   * work (their own files are all that such a store writes). Not with `repair`. Default false.
   */
  readOnly?: boolean;
  /**
   * Retention limits for every log (a log's own options override them): sealed segments are
   * deleted, oldest first, by age, size and record count (see `RetentionOptions`), on a background
   * timer and at each rollover. Default: none (only `truncateBefore` deletes).
   */
  retention?: RetentionOptions;
  /**
   * Roll the active segment over once its first record is this many ms old, even with no new
   * appends, so that an age limit can delete a quiet log's records. Default: never by age.
   */
  segmentMaxAgeMs?: number;
}

/**
 * Options of one log, `store.log(name, options)`: each overrides the store's default for that
 * log. Taken when the log opens; asking again for an open log with other options is an
 * `InvalidArgumentError`.
 */
export type LogOpenOptions =
  & Pick<
    StoreOptions,
    | "syncPolicy"
    | "segmentBytes"
    | "bufferBytes"
    | "maxRecordBytes"
    | "fileMode"
    | "retention"
    | "segmentMaxAgeMs"
  >
  & {
    /**
     * `"merkle"`: the log keeps an RFC 6962 Merkle tree over its records, for signed checkpoints
     * and proofs (README, "Tamper evidence"). Chosen when the log is created; later opens may
     * leave it out. `"merkle"` for an existing log without a tree, or `"none"` for one with a
     * tree, is an `InvalidArgumentError`.
     */
    integrity?: Integrity;
  };

/** Options after defaults (`segmentMaxAgeMs`: `Infinity` for never). */
export type ResolvedStoreOptions =
  & Required<Omit<StoreOptions, "platform" | "retention">>
  & {
    platform: Platform;
    /** The retention limits, `Infinity` where there is none. */
    retention: ResolvedRetention;
    /** A log's tree, as asked for (`store.log`) or, once open, as it is; unset: as it is. */
    integrity?: Integrity;
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
  "retention",
  "segmentMaxAgeMs",
];

const LOG_OPTION_KEYS: readonly (keyof LogOpenOptions)[] = [
  "syncPolicy",
  "segmentBytes",
  "bufferBytes",
  "maxRecordBytes",
  "fileMode",
  "retention",
  "segmentMaxAgeMs",
  "integrity",
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
    retention: resolveRetention(o.retention),
    segmentMaxAgeMs: o.segmentMaxAgeMs === undefined
      ? Infinity
      : wholeNumber("segmentMaxAgeMs", o.segmentMaxAgeMs, 1, Number.MAX_SAFE_INTEGER),
    platform: o.platform,
  };
}

/**
 * The options of one log: the store's, overridden by `given` (checked as the store's are; store-wide
 * keys such as `platform` or `readOnly` are refused). A read-only store takes none: its logs are
 * another process's to configure.
 *
 * @example
 * ```ts
 * import { SyncPolicy } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 * import { resolveLogOptions, resolveOptions } from "./store_options.ts";
 * const store = { ...resolveOptions({ segmentBytes: 1 << 20 }), platform: new SimPlatform() };
 * const audit = resolveLogOptions(store, { syncPolicy: SyncPolicy.always() });
 * if (audit.syncPolicy.kind !== "always" || audit.segmentBytes !== 1 << 20) throw new Error();
 * ```
 */
export function resolveLogOptions(
  store: ResolvedStoreOptions,
  given: LogOpenOptions | undefined,
): ResolvedStoreOptions {
  if (given === undefined) return store;
  const { integrity, ...o } = checkOptions("log options", given, LOG_OPTION_KEYS);
  if (integrity !== undefined && integrity !== "merkle" && integrity !== "none") {
    throw new InvalidArgumentError({
      message: `integrity must be "merkle" or "none", got ${describeValue(integrity)}`,
    });
  }
  if (store.readOnly && Object.keys(given).length > 0) {
    throw new InvalidArgumentError({
      message: "a read-only store's logs take no options: the writer's store configures them",
    });
  }
  const { syncPolicy, segmentBytes, bufferBytes, maxRecordBytes, fileMode, segmentMaxAgeMs } =
    store;
  const merged = resolveOptions({
    syncPolicy,
    segmentBytes,
    bufferBytes,
    maxRecordBytes,
    fileMode,
    repair: store.repair,
    ...(segmentMaxAgeMs === Infinity ? {} : { segmentMaxAgeMs }),
    ...o,
  });
  return {
    ...merged,
    platform: store.platform,
    readOnly: store.readOnly,
    retention: o.retention === undefined ? store.retention : merged.retention,
    ...(integrity === undefined ? {} : { integrity }),
  };
}
