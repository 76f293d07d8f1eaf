/**
 * The record format in memory, without I/O: what encoding and verifying frames cost, so the file
 * benchmarks can be read against it.
 *
 * - `crc32 64MiB`: the checksum alone (native `zlib.crc32`), MB/s.
 * - `encode+checksum`: `encodeFrameInto` of one record (header fields, payload copy, CRC).
 * - `scan 64MiB`: `FrameScanner` over 64 MiB of frames held in memory (decode + verify every
 *   checksum), records/s and MB/s.
 *
 * Run alone: `npx tsx bench/format.bench.ts` (or `npx deno run -A` / `npx bun run`).
 *
 * @example
 * ```ts
 * import { formatSuite } from "./format.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await formatSuite(new Recorder());
 * ```
 * @module
 */
import { crc32 } from "../src/format/checksum.ts";
import { encodeFrameInto, FRAME_HEADER_BYTES, FRAME_RECORD } from "../src/format/frame.ts";
import { FrameScanner } from "../src/format/scanner.ts";
import type { PlatformFile } from "../src/platform/types.ts";
import {
  isMain,
  MiB,
  payload,
  RECORD_SIZES,
  Recorder,
  runThroughput,
  type ThroughputSpec,
} from "./harness.ts";

const SCAN_BYTES = 64 * MiB;

/** A read-only {@linkcode PlatformFile} over bytes in memory (only `readAt`/`size` are used). */
function memoryFile(bytes: Uint8Array): PlatformFile {
  const unsupported = (): never => {
    throw new Error("read-only in-memory file");
  };
  return {
    path: "memory",
    write: unsupported,
    writev: unsupported,
    truncate: unsupported,
    readAt(buf: Uint8Array, position: number): number {
      const n = Math.max(0, Math.min(buf.length, bytes.length - position));
      buf.set(bytes.subarray(position, position + n));
      return n;
    },
    size: () => bytes.length,
    datasync: () => Promise.resolve(),
    sync: () => Promise.resolve(),
    close: () => {},
  };
}

/** 64 MiB (rounded down to whole frames) of valid frames starting at seq 0. */
function frames(size: number): { bytes: Uint8Array; records: number } {
  const rec = payload(size);
  const frameBytes = FRAME_HEADER_BYTES + size;
  const records = Math.floor(SCAN_BYTES / frameBytes);
  const bytes = new Uint8Array(records * frameBytes);
  let off = 0;
  for (let seq = 0; seq < records; seq++) {
    off = encodeFrameInto(bytes, off, FRAME_RECORD, seq, 1_700_000_000_000 + seq, rec);
  }
  return { bytes, records };
}

function specs(): ThroughputSpec[] {
  const out: ThroughputSpec[] = [];
  const big = payload(SCAN_BYTES);
  out.push({
    name: "crc32 64MiB",
    recordBytes: SCAN_BYTES,
    setup: () => Promise.resolve({ call: () => crc32(big), teardown: () => {} }),
  });
  for (const size of RECORD_SIZES) {
    const rec = payload(size);
    out.push({
      name: `encode+checksum ${size}B`,
      recordBytes: size,
      setup: () => {
        const buf = new Uint8Array(256 * 1024);
        let off = 0;
        let seq = 0;
        return Promise.resolve({
          call: () => {
            if (off + FRAME_HEADER_BYTES + size > buf.length) off = 0;
            off = encodeFrameInto(buf, off, FRAME_RECORD, seq++, 1_700_000_000_000, rec);
          },
          teardown: () => {},
        });
      },
    });
  }
  for (const size of RECORD_SIZES) {
    let data: { bytes: Uint8Array; records: number } | undefined;
    out.push({
      name: `scan 64MiB in memory ${size}B`,
      recordBytes: size,
      recordsPerCall: Math.floor(SCAN_BYTES / (FRAME_HEADER_BYTES + size)),
      setup: () => {
        data ??= frames(size);
        const d = data;
        const file = memoryFile(d.bytes);
        return Promise.resolve({
          call: () => {
            const s = new FrameScanner(file, 0, d.bytes.length, 0, 16 * MiB);
            let n = 0;
            for (let f = s.next(); f.kind === "frame"; f = s.next()) n++;
            if (n !== d.records) throw new Error(`scanned ${n} of ${d.records} frames`);
          },
          teardown: () => {},
        });
      },
    });
  }
  return out;
}

/**
 * Runs the format suite into `rec`.
 *
 * @example
 * ```ts
 * import { formatSuite } from "./format.bench.ts";
 * import { Recorder } from "./harness.ts";
 * await formatSuite(new Recorder());
 * ```
 */
export async function formatSuite(rec: Recorder): Promise<void> {
  await runThroughput("format", specs(), rec, "record format in memory (no I/O)");
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await formatSuite(rec);
  rec.printTable();
}
