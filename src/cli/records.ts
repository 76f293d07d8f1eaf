/**
 * How `khipu dump` and `khipu tail` print a record, in one of three formats:
 * - `ndjson`: one JSON object per line, `{"seq", "timestamp" (ISO 8601), "data"}`, with `data` the
 *   record as UTF-8 text when it is valid UTF-8, else base64 with `"encoding": "base64"`: exact,
 *   for scripts (`--json` means this format);
 * - `text`: `seq timestamp data` on one line, the data as text with control characters and `\`
 *   escaped (`\n`, `\x00`), or `base64:...` when it is not UTF-8: for reading;
 * - `hex`: a header line and a hexdump (offset, 16 bytes, printable ASCII) per record.
 *
 * @example
 * ```ts
 * import { formatRecord } from "./records.ts";
 * const r = { seq: 7, timestamp: 0, data: new TextEncoder().encode("hi\n") };
 * if (formatRecord("text", r) !== "7 1970-01-01T00:00:00.000Z hi\\n") throw new Error();
 * const j = JSON.parse(formatRecord("ndjson", r));
 * if (j.seq !== 7 || j.data !== "hi\n" || j.encoding !== undefined) throw new Error();
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import type { LogRecord } from "../reader.ts";
import { Lines, type Sink } from "./io.ts";

/** The formats records print in. */
export const RECORD_FORMATS: readonly RecordFormat[] = ["ndjson", "text", "hex"];

/** How records print (see the module doc). */
export type RecordFormat = "ndjson" | "text" | "hex";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The record's bytes as text, or null if they are not valid UTF-8. */
function asText(data: Uint8Array): string | null {
  try {
    return utf8.decode(data);
  } catch {
    return null;
  }
}

function base64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

/** `text` on one line: control characters (C0, DEL, C1) and `\` escaped. */
function oneLine(text: string): string {
  return text.replace(
    /[\p{Cc}\\]/gu,
    (c) => ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/** Sixteen bytes a line, as `hexdump -C` shows them. */
function hexdump(data: Uint8Array): string[] {
  const lines: string[] = [];
  for (let at = 0; at < data.length; at += 16) {
    const row = data.subarray(at, at + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0"));
    const left = hex.slice(0, 8).join(" ");
    const right = hex.slice(8).join(" ");
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "."));
    lines.push(
      `${at.toString(16).padStart(8, "0")}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${
        ascii.join("")
      }|`,
    );
  }
  return lines;
}

/**
 * One record in `format`, without a trailing newline (a hexdump spans several lines).
 *
 * @example
 * ```ts
 * import { formatRecord } from "./records.ts";
 * const r = { seq: 1, timestamp: 0, data: new Uint8Array([0xff, 0x41]) };
 * if (JSON.parse(formatRecord("ndjson", r)).encoding !== "base64") throw new Error();
 * if (!formatRecord("text", r).endsWith(" base64:/0E=")) throw new Error();
 * if (!formatRecord("hex", r).includes("00000000  ff 41")) throw new Error();
 * ```
 */
export function formatRecord(format: RecordFormat, r: LogRecord): string {
  const time = new Date(r.timestamp).toISOString();
  const text = asText(r.data);
  switch (format) {
    case "ndjson":
      return JSON.stringify(
        text === null
          ? { seq: r.seq, timestamp: time, data: base64(r.data), encoding: "base64" }
          : { seq: r.seq, timestamp: time, data: text },
      );
    case "text":
      return `${r.seq} ${time} ${text === null ? `base64:${base64(r.data)}` : oneLine(text)}`;
    case "hex":
      return [`seq ${r.seq}  ${time}  ${r.data.length} bytes`, ...hexdump(r.data)].join("\n");
  }
}

/**
 * Prints `records` on `sink` in `format`, one per line (hexdumps a blank line apart), in chunks;
 * `live` (a follower) writes each record as it arrives. If reading fails (a damaged record), what
 * was read before it is still printed, then the error is thrown.
 *
 * @example
 * ```ts
 * import { memoryIo } from "./io.ts";
 * import { printRecords } from "./records.ts";
 * async function* twoThenDamage() {
 *   yield { seq: 0, timestamp: 0, data: new TextEncoder().encode("a") };
 *   yield { seq: 1, timestamp: 0, data: new TextEncoder().encode("b") };
 *   throw new Error("checksum mismatch");
 * }
 * const { io, stdout } = memoryIo();
 * const failed = await printRecords(twoThenDamage(), "text", io.out).catch((e) => e);
 * if (!(failed instanceof Error) || stdout().split("\n").length !== 3) throw new Error(stdout());
 * ```
 */
export async function printRecords(
  records: AsyncIterable<LogRecord>,
  format: RecordFormat,
  sink: Sink,
  live = false,
): Promise<void> {
  const out = new Lines(sink);
  let first = true;
  try {
    for await (const r of records) {
      if (format === "hex" && !first) await out.line("");
      await out.line(formatRecord(format, r));
      first = false;
      if (live) await out.flush();
    }
  } catch (err) {
    await out.flush().catch(() => {});
    throw err;
  }
  await out.flush();
}
