/**
 * The record format in memory, without I/O: what encoding and verifying frames cost, so the file
 * benchmarks can be read against it. Version 2 (what the writer writes) has the plain row names;
 * the same rows for version 1 frames (still read: older segments) carry the prefix `v1 `, so the
 * report's "v1 → current" table shows the ratio of each pair.
 *
 * - `crc32 64MiB`: the checksum alone (native `zlib.crc32`), MB/s.
 * - `encode+checksum`: `encodeFrameInto` of one record (v2: type, varint length and delta, payload
 *   copy, CRC seeded with the log id and the seq; v1: the 28-byte header, payload copy, CRC).
 * - `scan 64MiB in memory`: `FrameScanner` over 64 MiB of frames held in memory (decode + verify
 *   every checksum), records/s and MB/s. The v2 row's `extra.ratioToV1` is its records/s over the
 *   v1 row's (also printed).
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
import { writeU32, writeU64 } from "../src/format/bytes.ts";
import { crc32 } from "../src/format/checksum.ts";
import { codecFor, type FrameCodec } from "../src/format/codec.ts";
import {
  encodeFrameInto,
  FRAME_RECORD,
  frameBytes,
  MAX_FRAME_HEADER_BYTES,
} from "../src/format/frame.ts";
import { decodeHeader, encodeHeader, newLogId } from "../src/format/header.ts";
import { FrameScanner } from "../src/format/scanner.ts";
import {
  encodeFrameInto as encodeFrameIntoV1,
  FRAME_HEADER_BYTES as V1_FRAME_HEADER_BYTES,
} from "../src/format/v1/frame.ts";
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
const BASE_TIMESTAMP = 1_700_000_000_000;
const MAX_PAYLOAD = 16 * MiB;

/**
 * A version 1 segment header (FORMAT.md, "Version 1"), built here because `src/` encodes v1 no
 * more: magic `KHIPUSEG`, u16 version 1, u8 header length 32, u8 0, u32 maxRecordBytes,
 * u64 firstSeq, u32 0, u32 CRC-32 of bytes 0..27.
 *
 * @example
 * ```ts
 * import { encodeV1Header } from "./format.bench.ts";
 * console.log(encodeV1Header(0, 1 << 20).length); // 32
 * ```
 */
export function encodeV1Header(firstSeq: number, maxRecordBytes: number): Uint8Array {
  const b = new Uint8Array(32);
  b.set(new TextEncoder().encode("KHIPUSEG"), 0);
  b[8] = 1;
  b[9] = 0;
  b[10] = 32;
  b[11] = 0;
  writeU32(b, 12, maxRecordBytes);
  writeU64(b, 16, firstSeq);
  writeU32(b, 24, 0);
  writeU32(b, 28, crc32(b.subarray(0, 28)));
  return b;
}

/** One format version: how to encode a record frame and how to decode its segment's frames. */
interface Version {
  /** Row-name prefix: `""` for v2, `"v1 "` for v1. */
  prefix: string;
  /** Bytes of the frame of one `size`-byte record. */
  frameBytes(size: number): number;
  /** Encodes record `seq` at `off`, returning the offset after it. */
  encode(buf: Uint8Array, off: number, seq: number, rec: Uint8Array): number;
  /** The codec a scanner gets from the segment's decoded header. */
  codec: FrameCodec;
}

function v2(): Version {
  const logId = newLogId();
  const idCrc = crc32(logId);
  const h = decodeHeader(
    encodeHeader({
      firstSeq: 0,
      maxRecordBytes: MAX_PAYLOAD,
      logId,
      prevEndSeq: 0,
      baseTimestamp: BASE_TIMESTAMP,
      indexCapacity: 1024,
    }),
  );
  if (!h.ok) throw new Error(`v2 header: ${h.reason}`);
  // Timestamps 1 ms apart: a one-byte delta, as records written at a steady rate have.
  return {
    prefix: "",
    frameBytes: (size) => frameBytes(size, 1),
    encode: (buf, off, seq, rec) => encodeFrameInto(buf, off, FRAME_RECORD, idCrc, seq, 1, rec),
    codec: codecFor(h.header),
  };
}

function v1(): Version {
  const h = decodeHeader(encodeV1Header(0, MAX_PAYLOAD));
  if (!h.ok) throw new Error(`v1 header: ${h.reason}`);
  return {
    prefix: "v1 ",
    frameBytes: (size) => V1_FRAME_HEADER_BYTES + size,
    encode: (buf, off, seq, rec) =>
      encodeFrameIntoV1(buf, off, FRAME_RECORD, seq, BASE_TIMESTAMP + 1 + seq, rec),
    codec: codecFor(h.header),
  };
}

/** A read-only {@linkcode PlatformFile} over bytes in memory (only `readAt`/`size` are used). */
function memoryFile(bytes: Uint8Array): PlatformFile {
  const unsupported = (): never => {
    throw new Error("read-only in-memory file");
  };
  return {
    path: "memory",
    write: unsupported,
    writev: unsupported,
    writeAt: unsupported,
    writevAt: unsupported,
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

/** 64 MiB (rounded down to whole frames) of valid frames of `v` starting at seq 0. */
function frames(v: Version, size: number): { bytes: Uint8Array; records: number } {
  const rec = payload(size);
  const records = Math.floor(SCAN_BYTES / v.frameBytes(size));
  const bytes = new Uint8Array(records * v.frameBytes(size));
  let off = 0;
  for (let seq = 0; seq < records; seq++) off = v.encode(bytes, off, seq, rec);
  if (off !== bytes.length) throw new Error(`encoded ${off} of ${bytes.length} bytes`);
  return { bytes, records };
}

function encodeSpec(v: Version, size: number): ThroughputSpec {
  const rec = payload(size);
  return {
    name: `${v.prefix}encode+checksum ${size}B`,
    recordBytes: size,
    setup: () => {
      const buf = new Uint8Array(256 * 1024);
      const most = Math.max(MAX_FRAME_HEADER_BYTES, V1_FRAME_HEADER_BYTES) + size;
      let off = 0;
      let seq = 0;
      return Promise.resolve({
        call: () => {
          if (off + most > buf.length) off = 0;
          off = v.encode(buf, off, seq++, rec);
        },
        teardown: () => {},
      });
    },
  };
}

function scanSpec(v: Version, size: number): ThroughputSpec {
  let data: { bytes: Uint8Array; records: number } | undefined;
  return {
    name: `${v.prefix}scan 64MiB in memory ${size}B`,
    recordBytes: size,
    recordsPerCall: Math.floor(SCAN_BYTES / v.frameBytes(size)),
    setup: () => {
      data ??= frames(v, size);
      const d = data;
      const file = memoryFile(d.bytes);
      const at = {
        start: 0,
        limit: d.bytes.length,
        seq: 0,
        timestamp: BASE_TIMESTAMP,
        maxPayload: MAX_PAYLOAD,
      };
      return Promise.resolve({
        call: () => {
          const s = new FrameScanner(file, v.codec, at);
          let n = 0;
          for (let f = s.next(); f.kind === "frame"; f = s.next()) n++;
          if (n !== d.records) throw new Error(`scanned ${n} of ${d.records} frames`);
        },
        teardown: () => {
          // The 64 MiB buffers go once measured (each pair of scan rows would hold 128 MiB).
          data = undefined;
        },
      });
    },
  };
}

function specs(): ThroughputSpec[] {
  const versions = [v2(), v1()];
  const out: ThroughputSpec[] = [];
  const big = payload(SCAN_BYTES);
  out.push({
    name: "crc32 64MiB",
    recordBytes: SCAN_BYTES,
    setup: () => Promise.resolve({ call: () => crc32(big), teardown: () => {} }),
  });
  for (const size of RECORD_SIZES) for (const v of versions) out.push(encodeSpec(v, size));
  for (const size of RECORD_SIZES) for (const v of versions) out.push(scanSpec(v, size));
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
  for (const kind of ["encode+checksum", "scan 64MiB in memory"]) {
    for (const size of RECORD_SIZES) {
      const name = `${kind} ${size}B`;
      const cur = rec.get(name), old = rec.get(`v1 ${name}`);
      if (!cur?.recordsPerSec || !old?.recordsPerSec) continue;
      const ratio = cur.recordsPerSec / old.recordsPerSec;
      cur.extra = { ...cur.extra, ratioToV1: ratio };
      console.log(`${name}: v2 / v1 = ${ratio.toFixed(2)}x records/s`);
    }
  }
}

if (isMain(import.meta.url)) {
  const rec = new Recorder();
  await formatSuite(rec);
  rec.printTable();
}
