/**
 * `khipu verify`'s progress on stderr. On a terminal, one bar redrawn in place (`\r`, at most
 * every 100 ms and at each segment's end) and erased at the end; otherwise (a file, a pipe, CI
 * logs) one plain line per segment verified, never a `\r`.
 *
 * @example
 * ```ts
 * import { memoryIo } from "./io.ts";
 * import { ProgressView } from "./progress.ts";
 * const { io, stderr } = memoryIo(); // not a terminal: plain lines
 * const view = new ProgressView(io.err);
 * const p = { log: "events", bytesTotal: 200, segmentsTotal: 2, records: 0 };
 * view.update({ ...p, bytesDone: 50, segmentsDone: 0 });
 * view.update({ ...p, bytesDone: 100, segmentsDone: 1, records: 10 });
 * view.update({ ...p, bytesDone: 200, segmentsDone: 2, records: 20 });
 * await view.finish();
 * const want = "verify: events: segment 1/2 (100 B of 200 B, 10 records)\n" +
 *   "verify: events: segment 2/2 (200 B of 200 B, 20 records)\n";
 * if (stderr() !== want) throw new Error(JSON.stringify(stderr()));
 * ```
 * @module
 */
import type { VerifyProgress } from "../verify.ts";
import type { Sink } from "./io.ts";
import { formatBytes } from "./output.ts";

/** Least time between two redraws of the bar. */
const REDRAW_MS = 100;
/** Cells of the bar itself. */
const BAR_CELLS = 20;

/** Shows verify's progress on `sink` (a bar on a terminal, lines otherwise). */
export class ProgressView {
  #sink: Sink;
  #writing: Promise<void> = Promise.resolve();
  #drawn = false;
  #lastDraw = -Infinity;
  #last: { log: string; segmentsDone: number } | null = null;

  /** A view on `sink`. */
  constructor(sink: Sink) {
    this.#sink = sink;
  }

  /**
   * Takes one progress report (`onProgress` of verify): redraws the bar or prints the line of a
   * segment that is done.
   */
  update(p: VerifyProgress): void {
    const segmentDone = this.#last === null || this.#last.log !== p.log ||
      this.#last.segmentsDone !== p.segmentsDone;
    this.#last = { log: p.log, segmentsDone: p.segmentsDone };
    if (!this.#sink.isTTY) {
      if (segmentDone && p.segmentsDone > 0) this.#write(`${line(p)}\n`);
      return;
    }
    const now = Date.now();
    if (!segmentDone && now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    this.#drawn = true;
    this.#write(`\r${bar(p, this.#sink.columns)}\x1b[K`);
  }

  /** Erases the bar (on a terminal) and waits for everything written. */
  async finish(): Promise<void> {
    if (this.#drawn) this.#write("\r\x1b[K");
    this.#drawn = false;
    await this.#writing;
  }

  #write(text: string): void {
    // Progress is a courtesy: a stderr that fails must not fail the verify.
    this.#writing = this.#writing.then(() => this.#sink.write(text)).catch(() => {});
  }
}

function line(p: VerifyProgress): string {
  return `verify: ${p.log}: segment ${p.segmentsDone}/${p.segmentsTotal} (${
    formatBytes(p.bytesDone)
  } of ${formatBytes(p.bytesTotal)}, ${p.records} records)`;
}

/** The bar line, cut to the terminal's width. */
function bar(p: VerifyProgress, columns: number): string {
  const share = p.bytesTotal === 0 ? 1 : Math.min(1, p.bytesDone / p.bytesTotal);
  const filled = Math.round(share * BAR_CELLS);
  const text = `verify ${p.log} [${"#".repeat(filled)}${"-".repeat(BAR_CELLS - filled)}] ${
    Math.floor(share * 100)
  }%  ${p.segmentsDone}/${p.segmentsTotal} segments  ${formatBytes(p.bytesDone)}/${
    formatBytes(p.bytesTotal)
  }`;
  return text.slice(0, Math.max(1, columns - 1));
}
