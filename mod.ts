/**
 * khipu-log: a durable, segmented append-only log for Deno, Bun and Node.
 *
 * Records are framed with their length, sequence number, timestamp and a CRC-32 in segment files;
 * a {@linkcode SyncPolicy} says exactly what a power cut can lose; concurrent appends share one
 * fdatasync (group commit); recovery repairs a torn tail and never hides corruption.
 *
 * This entry point is the library: {@linkcode Store}, {@linkcode SyncPolicy}, the error classes
 * and the types. The crash-testing kit is `@khipu/log/testing`; the file-system contract and its
 * runtime adapters, for people who write a platform, are `@khipu/log/platform`.
 *
 * @example
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 *
 * const store = await Store.open(mkdtempSync(join(tmpdir(), "khipu-")), {
 *   syncPolicy: SyncPolicy.everyN(64),
 * });
 * const events = await store.log("events");
 * const seq = await events.append("user signed in");
 * const seqs = await events.appendBatch(["a", "b", "c"]);
 * const seen: number[] = [];
 * for await (const rec of events.read({ from: 0 })) seen.push(rec.seq);
 * await store.close();
 * if (seq !== 0 || seqs.join() !== "1,2,3" || seen.join() !== "0,1,2,3") throw new Error("mod");
 * ```
 * @module
 */
export { Store } from "./src/store.ts";
export type { LogOpenOptions, ResolvedStoreOptions, StoreOptions } from "./src/store_options.ts";
export type { ResolvedRetention, RetentionOptions } from "./src/retention_policy.ts";
export type { FollowOptions, Log, LogOptions, RetentionResult, SegmentInfo } from "./src/log.ts";
export type { Cursor, CursorInfo, CursorReadOptions } from "./src/cursor.ts";
export type { CheckpointOptions, Integrity } from "./src/log_integrity.ts";
// What `log.checkpoint()` and the proofs return; checking them is `@khipu/log/integrity`.
export type { Checkpoint, Ed25519Key, SignedCheckpoint } from "./src/checkpoint.ts";
export type { ConsistencyProof, InclusionProof } from "./src/merkle.ts";
export type { LogRecord, ReadOptions, RecordIterator } from "./src/reader.ts";
export type { OpenReport } from "./src/recovery.ts";
export type { RepairAction, SeqRange } from "./src/repair_plan.ts";
export type {
  Gap,
  StoreVerifyReport,
  VerifyOptions,
  VerifyProblem,
  VerifyProgress,
  VerifyReport,
} from "./src/verify.ts";
// `StoreOptions.platform` names these; the adapters themselves are in `@khipu/log/platform`.
export type {
  Platform,
  PlatformFile,
  PlatformLock,
  PlatformStat,
  PlatformWatcher,
} from "./src/platform/types.ts";
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
  type MessageErrorDetails,
  NoSpaceError,
  NotFoundError,
  type OsErrorDetails,
  PermissionDeniedError,
  PoisonedError,
  ReadOnlyError,
  RecordsRemovedError,
  RecordTooLargeError,
} from "./src/errors.ts";
