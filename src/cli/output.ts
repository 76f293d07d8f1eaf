/**
 * How the `khipu` command shows things: sizes (`1.5 MiB`), times (ISO 8601, UTC), durations,
 * seq ranges, aligned tables for people, and JSON documents for scripts. Text is for reading and
 * may change; `--json` is the stable form (exact byte counts, ISO times, `null` for unknown).
 *
 * @example
 * ```ts
 * import { formatBytes, table } from "./output.ts";
 * const columns = [{ title: "LOG" }, { title: "BYTES", right: true }];
 * const text = table(columns, [["events", formatBytes(1536)]]);
 * if (text !== "LOG       BYTES\nevents  1.5 KiB\n") throw new Error(JSON.stringify(text));
 * ```
 * @module
 */

const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `64.0 MiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./output.ts";
 * if (formatBytes(512) !== "512 B" || formatBytes(64 * 2 ** 20) !== "64.0 MiB") throw new Error();
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let unit = -1;
  let v = n;
  while (v >= 1024 && unit < UNITS.length - 1) {
    v /= 1024;
    unit++;
  }
  return `${v.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A time (ms since the Unix epoch) as ISO 8601 in UTC, or `null` when unknown: the JSON form.
 *
 * @example
 * ```ts
 * import { isoTime } from "./output.ts";
 * if (isoTime(0) !== "1970-01-01T00:00:00.000Z" || isoTime(null) !== null) throw new Error();
 * ```
 */
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * A duration for people: `7 ms`, `1.25 s`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./output.ts";
 * if (formatDuration(7.4) !== "7 ms" || formatDuration(1250) !== "1.25 s") throw new Error();
 * ```
 */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * Seq ranges `[from, to)` as `[3, 5), [9, 10)`, or `none`.
 *
 * @example
 * ```ts
 * import { formatRanges } from "./output.ts";
 * const text = formatRanges([{ from: 3, to: 5 }, { from: 9, to: 10 }]);
 * if (text !== "[3, 5), [9, 10)" || formatRanges([]) !== "none") throw new Error(text);
 * ```
 */
export function formatRanges(ranges: readonly { from: number; to: number }[]): string {
  return ranges.length === 0 ? "none" : ranges.map((r) => `[${r.from}, ${r.to})`).join(", ");
}

/**
 * How many seqs `ranges` span.
 *
 * @example
 * ```ts
 * import { rangeSize } from "./output.ts";
 * if (rangeSize([{ from: 3, to: 5 }, { from: 9, to: 10 }]) !== 3) throw new Error();
 * ```
 */
export function rangeSize(ranges: readonly { from: number; to: number }[]): number {
  return ranges.reduce((n, r) => n + (r.to - r.from), 0);
}

/**
 * `n` and `noun`, plural unless `n` is 1: `1 segment`, `3 segments`.
 *
 * @example
 * ```ts
 * import { plural } from "./output.ts";
 * if (plural(1, "seq") !== "1 seq" || plural(0, "log") !== "0 logs") throw new Error();
 * ```
 */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A table column: its title and whether its cells line up on the right (numbers). */
export interface Column {
  /** The header. */
  readonly title: string;
  /** Right-aligned. */
  readonly right?: boolean;
}

/**
 * Rows under a header line, columns two spaces apart, each as wide as its widest cell; the last
 * column is not padded. Ends with a newline.
 *
 * @example
 * ```ts
 * import { table } from "./output.ts";
 * const columns = [{ title: "NAME" }, { title: "LAG", right: true }];
 * const t = table(columns, [["billing", "7"], ["audit", "120"]]);
 * if (t !== "NAME     LAG\nbilling    7\naudit    120\n") throw new Error(JSON.stringify(t));
 * ```
 */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const all = [columns.map((c) => c.title), ...rows];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const last = columns.length - 1;
  return all.map((r) =>
    columns.map((c, i) => {
      const cell = r[i] ?? "";
      if (c.right) return cell.padStart(widths[i]);
      return i === last ? cell : cell.padEnd(widths[i]);
    }).join("  ").trimEnd()
  ).join("\n") + "\n";
}

/**
 * Label/value lines (`label  value`), labels padded to one width.
 *
 * @example
 * ```ts
 * import { fields } from "./output.ts";
 * const text = fields([["log", "events"], ["records", "3"]]);
 * if (text !== "log      events\nrecords  3\n") throw new Error(text);
 * ```
 */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n") + "\n";
}

/**
 * `value` as one JSON document (indented, newline-terminated): what `--json` prints.
 *
 * @example
 * ```ts
 * import { jsonDocument } from "./output.ts";
 * if (JSON.parse(jsonDocument({ ok: true })).ok !== true) throw new Error();
 * ```
 */
export function jsonDocument(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}
