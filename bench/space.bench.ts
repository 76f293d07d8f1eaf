/**
 * Bytes on disk for 1,000,000 records of 100 B (10,000 in a smoke test), for every implementation
 * of `./impls.ts` and for SQLite (WAL, the same table as `sqlite.bench.ts`, 1000 rows per
 * transaction, closed so the WAL is checkpointed into the database):
 *
 * - khipu: a fresh store with default options, `appendBatch` of 1000 under `osManaged()`, then
 *   `store.close()`; every regular file under the store directory counts (segments, any index or
 *   lock file).
 * - `extra.framingBytesPerRecord` = (bytes − payload bytes) / records, from the apparent size
 *   (`st_size`); `extra.allocatedBytes` is what the file system allocated (`st_blocks * 512`), which
 *   differs when a file is preallocated or sparse.
 *
 * Run alone: `npx tsx bench/space.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { spaceSuite } from "./space.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await spaceSuite(new Recorder());
 * ```
 * @module
 */
import {
  dirBytes,
  freshDir,
  isMain,
  payload,
  Recorder,
  removeDir,
  type Row,
  SMOKE,
} from "./harness.ts";
import { loadImpls } from "./impls.ts";
import { sqliteSpace } from "./sqlite.bench.ts";

/** Records written. */
export const SPACE_RECORDS: number = SMOKE ? 10_000 : 1_000_000;
/** Payload bytes per record. */
export const SPACE_RECORD_BYTES = 100;
const LABEL = SMOKE ? "10k" : "1M";

/**
 * The row name of a space measurement: `space 1M x 100B khipu` (`v1 space ...`, `space ... sqlite`).
 *
 * @example
 * ```ts
 * import { spaceRowName } from "./space.bench.ts";
 * console.log(spaceRowName("khipu"));
 * ```
 */
export function spaceRowName(what: "khipu" | "sqlite", prefix = ""): string {
  return `${prefix}space ${LABEL} x ${SPACE_RECORD_BYTES}B ${what}`;
}

function spaceRow(
  name: string,
  apparent: number,
  allocated: number,
  seconds: number,
  more: Record<string, string | number>,
): Row {
  const payloadBytes = SPACE_RECORDS * SPACE_RECORD_BYTES;
  return {
    suite: "space",
    name,
    recordBytes: SPACE_RECORD_BYTES,
    recordsPerSec: SPACE_RECORDS / seconds,
    extra: {
      records: SPACE_RECORDS,
      payloadBytes,
      bytes: apparent,
      allocatedBytes: allocated,
      framingBytesPerRecord: (apparent - payloadBytes) / SPACE_RECORDS,
      allocatedFramingBytesPerRecord: (allocated - payloadBytes) / SPACE_RECORDS,
      ...more,
    },
  };
}

/**
 * Runs the space suite into `rec`.
 *
 * @example
 * ```ts
 * import { spaceSuite } from "./space.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await spaceSuite(new Recorder());
 * ```
 */
export async function spaceSuite(rec: Recorder): Promise<void> {
  const rec100 = payload(SPACE_RECORD_BYTES);
  const batch: Uint8Array[] = Array.from({ length: 1000 }, () => rec100);
  for (const impl of await loadImpls()) {
    const dir = freshDir(`${impl.key}space`);
    try {
      const t0 = performance.now();
      const store = await impl.mod.Store.open(dir, { syncPolicy: impl.mod.SyncPolicy.osManaged() });
      const log = await store.log("bench");
      for (let done = 0; done < SPACE_RECORDS; done += batch.length) {
        await log.appendBatch(
          done + batch.length <= SPACE_RECORDS ? batch : batch.slice(0, SPACE_RECORDS - done),
        );
      }
      await store.close();
      const seconds = (performance.now() - t0) / 1000;
      const b = dirBytes(dir);
      const row = spaceRow(spaceRowName("khipu", impl.prefix), b.apparent, b.allocated, seconds, {
        files: b.files,
        impl: impl.label,
      });
      rec.add(row);
      console.log(
        `${row.name}: ${b.apparent} bytes in ${b.files} files (${b.allocated} allocated), ` +
          `${(row.extra!.framingBytesPerRecord as number).toFixed(2)} framing bytes/record`,
      );
    } finally {
      removeDir(dir);
    }
  }
  const s = await sqliteSpace(SPACE_RECORDS, SPACE_RECORD_BYTES);
  if (!s) {
    rec.add({
      suite: "space",
      name: spaceRowName("sqlite"),
      recordBytes: SPACE_RECORD_BYTES,
      skipped: "no SQLite driver",
    });
    return;
  }
  const row = spaceRow(spaceRowName("sqlite"), s.bytes, s.allocated, s.seconds, {});
  rec.add(row);
  console.log(
    `${row.name}: ${s.bytes} bytes (${s.allocated} allocated), ` +
      `${(row.extra!.framingBytesPerRecord as number).toFixed(2)} overhead bytes/record`,
  );
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await spaceSuite(rec);
}
