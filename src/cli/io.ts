/**
 * Where the `khipu` command's output goes: the process's stdout and stderr ({@linkcode processIo})
 * or memory ({@linkcode memoryIo}, for tests and examples). Writes wait for the stream (so a fast
 * dump into a slow pipe holds only one buffer), and a reader that went away (`khipu dump ... |
 * head`, EPIPE) turns into {@linkcode OutputClosed}, which the command treats as a normal end.
 * Only `node:` modules, so the same code runs on Node, Deno and Bun.
 *
 * @example
 * ```ts
 * import { Lines, memoryIo } from "./io.ts";
 * const { io, stdout } = memoryIo();
 * const out = new Lines(io.out);
 * for (let i = 0; i < 3; i++) await out.line(`record ${i}`);
 * await out.flush();
 * if (stdout() !== "record 0\nrecord 1\nrecord 2\n") throw new Error(stdout());
 * ```
 * @module
 */
import process from "node:process";

/** A text stream the command writes to. */
export interface Sink {
  /** Writes `text`; resolves once the stream took it. Rejects with {@linkcode OutputClosed}. */
  write(text: string): Promise<void>;
  /** True if it is a terminal. */
  readonly isTTY: boolean;
  /** The terminal's width in columns (80 when not a terminal). */
  readonly columns: number;
}

/** A command's streams, and how it learns that it was asked to stop. */
export interface CliIo {
  /** Results. */
  readonly out: Sink;
  /** Errors and progress. */
  readonly err: Sink;
  /**
   * An AbortSignal that aborts on SIGINT or SIGTERM until `release` is called (which removes the
   * handlers, so the signals kill the process again).
   */
  stopSignal(): { signal: AbortSignal; release(): void };
}

/**
 * The reader of the output has gone (EPIPE: `| head` exited). Not a failure: the command stops
 * and exits 0, as `cat` and `grep` do.
 *
 * @example
 * ```ts
 * import { OutputClosed } from "./io.ts";
 * const e = new OutputClosed(new Error("write EPIPE"));
 * if (!(e.cause instanceof Error)) throw new Error("lost the cause");
 * ```
 */
export class OutputClosed extends Error {
  /** Wraps the stream's EPIPE error. */
  constructor(cause: unknown) {
    super("the output was closed", { cause });
    this.name = "OutputClosed";
  }
}

/** True for the error a write to a pipe without a reader gives (EPIPE on Node, Deno and Bun). */
function isBrokenPipe(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "EPIPE";
}

/** The part of a `process.stdout`-like stream a sink uses. */
interface WritableLike {
  write(chunk: string, callback: (err?: Error | null) => void): boolean;
  on(event: "error", listener: (err: Error) => void): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

function streamSink(stream: WritableLike): Sink {
  let failed: unknown = null;
  // An EPIPE also arrives as an 'error' event; without a listener it would crash the process.
  stream.on("error", (err) => (failed ??= err));
  const closed = (err: unknown) => (isBrokenPipe(err) ? new OutputClosed(err) : err);
  return {
    isTTY: stream.isTTY === true,
    get columns() {
      return stream.isTTY === true && stream.columns ? stream.columns : 80;
    },
    write(text) {
      if (failed !== null) return Promise.reject(closed(failed));
      return new Promise((resolve, reject) => {
        stream.write(text, (err) => (err ? reject(closed(err)) : resolve()));
      });
    },
  };
}

/**
 * The process's stdout and stderr, and SIGINT/SIGTERM as a stop signal.
 *
 * @example
 * ```ts
 * import { processIo } from "./io.ts";
 * const io = processIo();
 * const { signal, release } = io.stopSignal();
 * release();
 * if (signal.aborted || typeof io.out.isTTY !== "boolean") throw new Error();
 * ```
 */
export function processIo(): CliIo {
  return {
    out: streamSink(process.stdout),
    err: streamSink(process.stderr),
    stopSignal() {
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      return {
        signal: stop.signal,
        release() {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        },
      };
    },
  };
}

/**
 * Streams that keep what is written in memory, for tests and examples; `stop()` aborts the
 * signals handed out by `stopSignal()`.
 *
 * @example
 * ```ts
 * import { memoryIo } from "./io.ts";
 * const m = memoryIo({ errIsTTY: true });
 * await m.io.err.write("\rhalf");
 * const { signal } = m.io.stopSignal();
 * m.stop();
 * if (m.stderr() !== "\rhalf" || !m.io.err.isTTY || !signal.aborted) throw new Error();
 * ```
 */
export function memoryIo(opts: { errIsTTY?: boolean } = {}): {
  io: CliIo;
  stdout(): string;
  stderr(): string;
  stop(): void;
} {
  const text = { out: "", err: "" };
  const stops = new Set<AbortController>();
  const sink = (which: "out" | "err", isTTY: boolean): Sink => ({
    isTTY,
    columns: 80,
    write(t) {
      text[which] += t;
      return Promise.resolve();
    },
  });
  return {
    io: {
      out: sink("out", false),
      err: sink("err", opts.errIsTTY === true),
      stopSignal() {
        const c = new AbortController();
        stops.add(c);
        return { signal: c.signal, release: () => stops.delete(c) };
      },
    },
    stdout: () => text.out,
    stderr: () => text.err,
    stop: () => stops.forEach((c) => c.abort()),
  };
}

/** Bytes of output gathered before a write: large enough for throughput, small enough to stream. */
const CHUNK_CHARS = 64 * 1024;

/**
 * Lines gathered into chunks of about 64 KiB before each write to `sink`.
 *
 * @example
 * ```ts
 * import { Lines, memoryIo } from "./io.ts";
 * const { io, stdout } = memoryIo();
 * const out = new Lines(io.out);
 * await out.line("a");
 * if (stdout() !== "") throw new Error("wrote before the chunk filled");
 * await out.flush();
 * if (stdout() !== "a\n") throw new Error(stdout());
 * ```
 */
export class Lines {
  #sink: Sink;
  #parts: string[] = [];
  #chars = 0;

  /** Lines for `sink`. */
  constructor(sink: Sink) {
    this.#sink = sink;
  }

  /** Adds `text` and a newline; writes once a chunk is full. */
  async line(text: string): Promise<void> {
    this.#parts.push(text, "\n");
    this.#chars += text.length + 1;
    if (this.#chars >= CHUNK_CHARS) await this.flush();
  }

  /** Writes what is gathered. */
  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const text = this.#parts.join("");
    this.#parts = [];
    this.#chars = 0;
    await this.#sink.write(text);
  }
}
