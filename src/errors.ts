/**
 * Typed errors. Every error khipu-log throws is a {@linkcode KhipuError} with a stable `code`,
 * and names the file (and, for format errors, the byte offset and sequence number) it concerns.
 *
 * @example Telling errors apart
 * ```ts
 * import { KhipuError, NotFoundError } from "@khipu/log";
 * const err = new NotFoundError({ op: "open", path: "/tmp/missing.seg" });
 * if (!(err instanceof KhipuError) || err.code !== "NOT_FOUND") throw new Error(err.code);
 * ```
 * @module
 */

/** Stable machine-readable error codes. */
export type KhipuErrorCode =
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "NO_SPACE"
  | "PERMISSION_DENIED"
  | "IO"
  | "LOCKED"
  | "CLOSED"
  | "INVALID_ARGUMENT"
  | "RECORD_TOO_LARGE"
  | "CORRUPTION"
  | "POISONED"
  | "FILE_TYPE"
  | "LOG_FULL"
  | "READ_ONLY"
  | "RECORDS_REMOVED";

/** Where an error happened, as far as it is known. */
export interface ErrorContext {
  /** The file or directory concerned. */
  path?: string;
  /** Byte offset in `path`. */
  offset?: number;
  /** Sequence number of the record concerned. */
  seq?: number;
  /** The underlying error (an OS error, or the failure that poisoned a log). */
  cause?: unknown;
}

/** What a failed file-system call reports: the call and the path. */
export interface OsErrorDetails extends ErrorContext {
  /** The call that failed: `open`, `write`, `fdatasync`, `rename to /x`, ... */
  op: string;
  /** The file or directory concerned. */
  path: string;
}

/** Details of an error that is described by a sentence of its own. */
export interface MessageErrorDetails extends ErrorContext {
  /** What is wrong, in one sentence. */
  message: string;
}

/**
 * Base class of every error khipu-log throws. Each subclass takes one details object (its own
 * fields plus {@linkcode ErrorContext}) and builds the message from it.
 *
 * @example
 * ```ts
 * import { KhipuError } from "@khipu/log";
 * try {
 *   throw new KhipuError("IO", "disk on fire", { path: "/data/x.seg" });
 * } catch (e) {
 *   if (!(e instanceof KhipuError) || e.code !== "IO" || e.path !== "/data/x.seg") throw e;
 * }
 * ```
 */
export class KhipuError extends Error {
  /** Stable machine-readable code. */
  readonly code: KhipuErrorCode;
  /** The file or directory concerned, when known. */
  readonly path?: string;
  /** Byte offset in {@linkcode KhipuError.path}, when known. */
  readonly offset?: number;
  /** Sequence number concerned, when known. */
  readonly seq?: number;

  /** Builds an error; the message gets the path, offset and seq appended. */
  constructor(code: KhipuErrorCode, message: string, ctx: ErrorContext = {}) {
    super(describe(message, ctx), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = new.target.name;
    this.code = code;
    if (ctx.path !== undefined) this.path = ctx.path;
    if (ctx.offset !== undefined) this.offset = ctx.offset;
    if (ctx.seq !== undefined) this.seq = ctx.seq;
  }
}

function describe(message: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.path !== undefined) where.push(ctx.path);
  if (ctx.offset !== undefined) where.push(`offset ${ctx.offset}`);
  if (ctx.seq !== undefined) where.push(`seq ${ctx.seq}`);
  return where.length ? `${message} (${where.join(", ")})` : message;
}

/**
 * A file or directory does not exist.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "@khipu/log";
 * const e = new NotFoundError({ op: "open", path: "/nope" });
 * if (e.message !== "open: no such file or directory (/nope)") throw new Error(e.message);
 * ```
 */
export class NotFoundError extends KhipuError {
  /** Creates the error from the call that failed and the missing path. */
  constructor(d: OsErrorDetails) {
    super("NOT_FOUND", `${d.op}: no such file or directory`, d);
  }
}

/**
 * A file that must be new already exists.
 *
 * @example
 * ```ts
 * import { AlreadyExistsError } from "@khipu/log";
 * const e = new AlreadyExistsError({ op: "create", path: "/data/0.seg" });
 * if (e.code !== "ALREADY_EXISTS") throw new Error(e.code);
 * ```
 */
export class AlreadyExistsError extends KhipuError {
  /** Creates the error from the call that failed and the existing path. */
  constructor(d: OsErrorDetails) {
    super("ALREADY_EXISTS", `${d.op}: file already exists`, d);
  }
}

/**
 * The device is full (ENOSPC) or a quota is exceeded (EDQUOT).
 *
 * @example
 * ```ts
 * import { NoSpaceError } from "@khipu/log";
 * const e = new NoSpaceError({ op: "write", path: "/data/0.seg" });
 * if (e.code !== "NO_SPACE") throw new Error(e.code);
 * ```
 */
export class NoSpaceError extends KhipuError {
  /** Creates the error from the call that failed and the file written. */
  constructor(d: OsErrorDetails) {
    super("NO_SPACE", `${d.op}: no space left on device`, d);
  }
}

/**
 * The OS refused access (EACCES, EPERM, EROFS).
 *
 * @example
 * ```ts
 * import { PermissionDeniedError } from "@khipu/log";
 * const e = new PermissionDeniedError({ op: "open", path: "/root/x" });
 * if (e.code !== "PERMISSION_DENIED") throw new Error(e.code);
 * ```
 */
export class PermissionDeniedError extends KhipuError {
  /** Creates the error from the call that failed and the path concerned. */
  constructor(d: OsErrorDetails) {
    super("PERMISSION_DENIED", `${d.op}: permission denied`, d);
  }
}

/**
 * Any other I/O failure (EIO and friends). The OS error code, when there is one, is in the message.
 *
 * @example
 * ```ts
 * import { IoError } from "@khipu/log";
 * const e = new IoError({ op: "fdatasync", path: "/data/0.seg", osCode: "EIO" });
 * if (e.message !== "fdatasync: I/O error EIO (/data/0.seg)" || e.osCode !== "EIO") {
 *   throw new Error(e.message);
 * }
 * ```
 */
export class IoError extends KhipuError {
  /** The OS error code (`EIO`, `EBADF`, ...), when known. */
  readonly osCode?: string;
  /** Creates the error from the call that failed, the path and the OS code (`EIO`, ...). */
  constructor(d: OsErrorDetails & { osCode?: string }) {
    const text = OS_CODE_TEXT[d.osCode ?? ""] ?? "I/O error";
    super("IO", `${d.op}: ${text}${d.osCode ? ` ${d.osCode}` : ""}`, d);
    if (d.osCode !== undefined) this.osCode = d.osCode;
  }
}

/** Words for the OS codes whose plain "I/O error" would mislead. */
const OS_CODE_TEXT: Record<string, string> = {
  EMFILE: "too many open files in this process",
  ENFILE: "too many open files in the system",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
};

/**
 * Another writer (in this or another process, on any runtime) holds the store lock.
 *
 * @example
 * ```ts
 * import { LockedError } from "@khipu/log";
 * const e = new LockedError({ path: "/data/LOCK", holder: "pid 42" });
 * if (e.message !== "store is locked by pid 42 (/data/LOCK)") throw new Error(e.message);
 * ```
 */
export class LockedError extends KhipuError {
  /** Who holds the lock: `pid 42 on host ...`, `this process ...`. */
  readonly holder: string;
  /**
   * Creates the error from the lock file's path, who holds it and what it guards (`what`,
   * default `"store"`; a cursor's lock says `cursor "billing"`).
   */
  constructor(d: ErrorContext & { path: string; holder: string; what?: string }) {
    super("LOCKED", `${d.what ?? "store"} is locked by ${d.holder}`, d);
    this.holder = d.holder;
  }
}

/**
 * A closed store, log or file was used.
 *
 * @example
 * ```ts
 * import { ClosedError } from "@khipu/log";
 * const e = new ClosedError({ what: "log", path: "/data/events" });
 * if (e.code !== "CLOSED") throw new Error(e.code);
 * ```
 */
export class ClosedError extends KhipuError {
  /** Creates the error from what was closed (`"store"`, `"log"`, `"file"`) and its path. */
  constructor(d: ErrorContext & { what: string; path: string }) {
    super("CLOSED", `${d.what} is closed`, d);
  }
}

/**
 * An argument is out of its documented range (a bad log name, a negative sequence number...).
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * const e = new InvalidArgumentError({ message: "log name must not contain '/'" });
 * if (e.code !== "INVALID_ARGUMENT") throw new Error(e.code);
 * ```
 */
export class InvalidArgumentError extends KhipuError {
  /** Creates the error from what is wrong and, where there is one, the path concerned. */
  constructor(d: MessageErrorDetails) {
    super("INVALID_ARGUMENT", d.message, d);
  }
}

/**
 * A record exceeds `maxRecordBytes`; nothing was written.
 *
 * @example
 * ```ts
 * import { RecordTooLargeError } from "@khipu/log";
 * const e = new RecordTooLargeError({ size: 20, limit: 10, path: "/data/events" });
 * if (e.message !== "record of 20 bytes exceeds maxRecordBytes 10 (/data/events)") {
 *   throw new Error(e.message);
 * }
 * ```
 */
export class RecordTooLargeError extends KhipuError {
  /** Size of the rejected record in bytes. */
  readonly size: number;
  /** The limit in force. */
  readonly limit: number;
  /** Creates the error from the record's size, the `maxRecordBytes` in force and the log. */
  constructor(d: ErrorContext & { size: number; limit: number; path: string }) {
    super("RECORD_TOO_LARGE", `record of ${d.size} bytes exceeds maxRecordBytes ${d.limit}`, d);
    this.size = d.size;
    this.limit = d.limit;
  }
}

/**
 * Data that was written whole fails its check: a bad checksum followed by valid records, a broken
 * sealed segment, a gap in sequence numbers. Nothing is truncated when this is thrown.
 *
 * @example
 * ```ts
 * import { CorruptionError } from "@khipu/log";
 * const e = new CorruptionError({ message: "checksum mismatch", path: "/d/0.seg", offset: 96, seq: 2 });
 * if (e.message !== "checksum mismatch (/d/0.seg, offset 96, seq 2)") throw new Error(e.message);
 * ```
 */
export class CorruptionError extends KhipuError {
  /** Creates the error from what failed and the file, offset and sequence number. */
  constructor(d: MessageErrorDetails) {
    super("CORRUPTION", d.message, d);
  }
}

/**
 * A log that can no longer be written safely: an fdatasync failed (no retry is attempted, since the
 * kernel may already have dropped the dirty pages), or a failed write could not be cut back. Pending
 * and later appends reject with this error, reads still work. Reopen the store. The message and
 * `cause` name the failure that poisoned the log.
 *
 * @example
 * ```ts
 * import { IoError, PoisonedError } from "@khipu/log";
 * const e = new PoisonedError({ path: "/d/events", cause: new IoError({ op: "fdatasync", path: "/d/events/0.seg", osCode: "EIO" }) });
 * if (e.code !== "POISONED" || !e.message.includes("fdatasync")) throw new Error(e.message);
 * ```
 */
export class PoisonedError extends KhipuError {
  /** The records the failed fdatasync was to make durable, when an fdatasync poisoned the log. */
  readonly covering?: { from: number; to: number };
  /**
   * Creates the error from the log (or file), the failure that poisoned it and, for a failed
   * fdatasync, the records `[from, to)` it covered.
   */
  constructor(
    d: ErrorContext & { path: string; cause: unknown; covering?: { from: number; to: number } },
  ) {
    const c = d.covering ?? (d.cause instanceof PoisonedError ? d.cause.covering : undefined);
    const what = c
      ? `the fdatasync of records [${c.from}, ${c.to}) failed: ${describeCause(d.cause)}`
      : `poisoned by ${describeCause(d.cause)}`;
    super("POISONED", `log is ${c ? "poisoned: " : ""}${what}; reopen the store`, d);
    if (c) this.covering = c;
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof PoisonedError) return describeCause(cause.cause);
  if (cause instanceof Error) return `a failure (${cause.message})`;
  return `a failure (${String(cause)})`;
}

/**
 * A path inside the store is not the kind of file the store keeps there: a symbolic link, a FIFO,
 * a device or a directory where a regular file belongs, or a non-directory where a log directory
 * belongs. The store never follows links or opens special files inside itself.
 *
 * @example
 * ```ts
 * import { FileTypeError } from "@khipu/log";
 * const e = new FileTypeError({ path: "/data/LOCK", found: "a symbolic link" });
 * if (e.code !== "FILE_TYPE" || e.found !== "a symbolic link") throw new Error(e.message);
 * ```
 */
export class FileTypeError extends KhipuError {
  /** What was found, e.g. `"a symbolic link"`, `"a FIFO"`. */
  readonly found: string;
  /** What belongs there, e.g. `"a regular file"`, `"a directory"`. */
  readonly expected: string;
  /** Creates the error from the path, what is there and what belongs there (a regular file). */
  constructor(d: ErrorContext & { path: string; found: string; expected?: string }) {
    const expected = d.expected ?? "a regular file";
    super("FILE_TYPE", `found ${d.found}, not ${expected}`, d);
    this.found = d.found;
    this.expected = expected;
  }
}

/**
 * The log has used every sequence number the format can hold: the last record's sequence number is
 * 2^53 - 2, so that the seal after it (one past the last record) still fits in a safe integer.
 * Nothing was written.
 *
 * @example
 * ```ts
 * import { LogFullError } from "@khipu/log";
 * const e = new LogFullError({ path: "/data/events", seq: 2 ** 53 - 1 });
 * if (e.code !== "LOG_FULL") throw new Error(e.code);
 * ```
 */
export class LogFullError extends KhipuError {
  /** Creates the error from the log and the sequence number that was refused. */
  constructor(d: ErrorContext & { path: string; seq: number }) {
    super("LOG_FULL", "no sequence numbers left (the last is 2^53 - 2)", d);
  }
}

/**
 * A write (`append`, `appendBatch`, `sync`, `truncateBefore`) was tried on a log of a store opened
 * with `readOnly: true`. Nothing was written.
 *
 * @example
 * ```ts
 * import { ReadOnlyError } from "@khipu/log";
 * const e = new ReadOnlyError({ op: "append", path: "/data/orders" });
 * if (e.code !== "READ_ONLY" || e.message !== "append: the store is open read-only (/data/orders)") {
 *   throw new Error(e.message);
 * }
 * ```
 */
export class ReadOnlyError extends KhipuError {
  /** Creates the error from the refused call and the log. */
  constructor(d: ErrorContext & { op: string; path: string }) {
    super("READ_ONLY", `${d.op}: the store is open read-only`, d);
  }
}

/**
 * Records a consumer had not yet processed are gone: retention (or `truncateBefore`) removed the
 * segments holding `[position, firstSeq)` before the consumer reached them. Raised instead of
 * silently skipping them; move the cursor on with `cursor.reset(firstSeq)` to accept the loss.
 *
 * @example
 * ```ts
 * import { RecordsRemovedError } from "@khipu/log";
 * const e = new RecordsRemovedError({ path: "/data/orders", position: 10, firstSeq: 500 });
 * if (e.code !== "RECORDS_REMOVED" || e.position !== 10 || e.firstSeq !== 500) throw e;
 * ```
 */
export class RecordsRemovedError extends KhipuError {
  /** The next seq the reader or cursor wanted. */
  readonly position: number;
  /** The log's first seq now: `[position, firstSeq)` was removed. */
  readonly firstSeq: number;
  /** Creates the error from the log, the position wanted and the log's first seq now. */
  constructor(
    d: ErrorContext & { path: string; position: number; firstSeq: number; who?: string },
  ) {
    super(
      "RECORDS_REMOVED",
      `${d.who ?? "reader"} at seq ${d.position} is behind the log's first seq ${d.firstSeq}: ` +
        `records [${d.position}, ${d.firstSeq}) were removed before it read them`,
      d,
    );
    this.position = d.position;
    this.firstSeq = d.firstSeq;
  }
}

/**
 * Maps an error thrown by a runtime's file API (Node/Bun `err.code`, Deno `Deno.errors.*`) to a
 * {@linkcode KhipuError}. KhipuErrors pass through unchanged.
 *
 * @example
 * ```ts
 * import { NoSpaceError } from "@khipu/log";
 * import { fromOsError } from "./errors.ts";
 * const e = Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
 * const mapped = fromOsError(e, "write", "/d/0.seg");
 * if (!(mapped instanceof NoSpaceError) || mapped.cause !== e) throw new Error(mapped.code);
 * ```
 */
export function fromOsError(err: unknown, op: string, path: string): KhipuError {
  if (err instanceof KhipuError) return err;
  const e = err as { code?: unknown; name?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const name = typeof e?.name === "string" ? e.name : undefined;
  switch (code ?? name) {
    case "ENOENT":
    case "NotFound":
      return new NotFoundError({ op, path, cause: err });
    case "EEXIST":
    case "AlreadyExists":
      return new AlreadyExistsError({ op, path, cause: err });
    case "ENOSPC":
    case "EDQUOT":
      return new NoSpaceError({ op, path, cause: err });
    case "EACCES":
    case "EPERM":
    case "EROFS":
    case "PermissionDenied":
    case "NotCapable":
      return new PermissionDeniedError({ op, path, cause: err });
    default:
      return new IoError({ op, path, osCode: code ?? name, cause: err });
  }
}
