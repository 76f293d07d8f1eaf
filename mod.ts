/**
 * khipu-log: a durable, segmented append-only log for Deno, Bun and Node.
 *
 * Records are framed with their length, sequence number, timestamp and a CRC-32 in segment files;
 * a {@linkcode SyncPolicy} says exactly what a power cut can lose; concurrent appends share one
 * fdatasync (group commit); recovery repairs a torn tail and never hides corruption.
 *
 * @example
 * ```ts
 * import { Store, SyncPolicy } from "./mod.ts";
 *
 * const store = await Store.open(await Deno.makeTempDir(), { syncPolicy: SyncPolicy.everyN(64) });
 * const events = await store.log("events");
 * const seq = await events.append("user signed in");
 * const seqs = await events.appendBatch(["a", "b", "c"]);
 * for await (const rec of events.read({ from: 0 })) console.log(rec.seq, rec.timestamp, rec.data);
 * await events.sync();
 * await store.close();
 * console.log(seq, seqs);
 * ```
 * @module
 */
export {
  type ResolvedStoreOptions,
  Store,
  type StoreOptions,
  validateLogName,
} from "./src/store.ts";
export { Log, type LogOptions } from "./src/log.ts";
export { type LogRecord, type ReadOptions, RecordIterator } from "./src/reader.ts";
export type { OpenReport, RepairAction } from "./src/recovery.ts";
export { SyncPolicy, type SyncPolicyKind } from "./src/sync_policy.ts";
export {
  AlreadyExistsError,
  ClosedError,
  CorruptionError,
  type ErrorContext,
  FileTypeError,
  InvalidArgumentError,
  IoError,
  KhipuError,
  type KhipuErrorCode,
  LockedError,
  LogFullError,
  NoSpaceError,
  NotFoundError,
  PermissionDeniedError,
  PoisonedError,
  RecordTooLargeError,
} from "./src/errors.ts";
export type {
  FileOp,
  OpenMode,
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformOp,
  PlatformStat,
} from "./src/platform/types.ts";
export { defaultPlatform } from "./src/platform/detect.ts";
export { nodePlatform } from "./src/platform/node.ts";
export {
  CRASH_MODES,
  type CrashInfo,
  type CrashMode,
  type CrashOptions,
  seededRandom,
  type SimCall,
  type SimOptions,
  SimPlatform,
  SimSnapshot,
} from "./src/platform/sim.ts";
export {
  type FaultOp,
  type FaultRule,
  FaultyPlatform,
  type InjectedFault,
} from "./src/platform/faulty.ts";
export {
  type RecordedCall,
  type RecordedOp,
  type RecordingOptions,
  type RecordingPlatform,
  recordingPlatform,
} from "./src/platform/recording.ts";
