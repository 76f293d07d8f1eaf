/**
 * The crash-testing kit: {@linkcode SimPlatform}, an in-memory file system that tracks what is
 * durable apart from what is only in the page cache and can be "power-cut" in eight
 * {@linkcode CRASH_MODES}; {@linkcode FaultyPlatform}, which injects the typed I/O errors the real
 * platforms raise; and {@linkcode recordingPlatform}, which records every file-system call. Pass
 * any of them as `Store.open(dir, { platform })` to test what your code does on a power cut, a full
 * disk or a failing fsync.
 *
 * @example A power cut right after an acknowledged append loses nothing under `always()`
 * ```ts
 * import { Store, SyncPolicy } from "@khipu/log";
 * import { SimPlatform } from "@khipu/log/testing";
 *
 * const sim = new SimPlatform();
 * const store = await Store.open("/data", { platform: sim, syncPolicy: SyncPolicy.always() });
 * await (await store.log("events")).append("paid");
 * const afterCut = sim.crash("subset", 42); // what a power cut could leave, seeded
 * const reopened = await Store.open("/data", { platform: afterCut });
 * const log = await reopened.log("events");
 * if (log.nextSeq !== 1) throw new Error("an acknowledged record was lost");
 * await reopened.close();
 * ```
 * @module
 */
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
} from "./src/testing/sim.ts";
export {
  type FaultOp,
  type FaultRule,
  FaultyPlatform,
  type InjectedFault,
} from "./src/testing/faulty.ts";
export {
  type RecordedCall,
  type RecordedOp,
  type RecordingOptions,
  type RecordingPlatform,
  recordingPlatform,
} from "./src/testing/recording.ts";
