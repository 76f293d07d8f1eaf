/**
 * Checks of the options the relay and the ingest share: the connection, and the names of
 * streams, consumers and subjects (as the NATS server accepts them), each an
 * `InvalidArgumentError` that names the option, before anything is opened or sent.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@khipu/log";
 * import { natsName, subjectName } from "./options.ts";
 * const wildcard = (() => {
 *   try {
 *     return subjectName("relay options: subject", "orders.*");
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * if (natsName("relay options: stream", "ORDERS") !== "ORDERS") throw new Error("name");
 * if (!(wildcard instanceof InvalidArgumentError)) throw new Error(String(wildcard));
 * ```
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.ts";
import { describeValue } from "../validate.ts";

/**
 * `value` if it looks like a `NatsConnection` (from `connect()` of `@nats-io/transport-node`, or
 * of another NATS transport).
 *
 * @example
 * ```ts
 * import { connectionOption } from "./options.ts";
 * const refused = (() => {
 *   try {
 *     return connectionOption("relay options: connection", "nats://127.0.0.1:4222");
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * if (!String(refused).includes("a NatsConnection")) throw new Error(String(refused));
 * ```
 */
export function connectionOption(what: string, value: unknown): NatsConnection {
  const c = value as Partial<NatsConnection> | null;
  if (
    typeof c !== "object" || c === null || typeof c.request !== "function" ||
    typeof c.isClosed !== "function"
  ) {
    throw new InvalidArgumentError({
      message: `${what} must be a NatsConnection (connect() of @nats-io/transport-node), got ` +
        describeValue(value),
    });
  }
  return c as NatsConnection;
}

/**
 * A stream or consumer name: a non-empty string without whitespace, `.`, `*`, `>`, `/` or `\`.
 *
 * @example
 * ```ts
 * import { natsName } from "./options.ts";
 * let refused = false;
 * try {
 *   natsName("ingest options: consumer", "my consumer");
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("accepted a space");
 * ```
 */
export function natsName(what: string, value: unknown): string {
  if (typeof value !== "string" || !/^[^\s.*>/\\]+$/.test(value)) {
    throw new InvalidArgumentError({
      message: `${what} must be a name without whitespace, ".", "*", ">", "/" or "\\", got ` +
        describeValue(value),
    });
  }
  return value;
}

/**
 * A subject to publish on: dot-separated non-empty tokens, no whitespace or wildcard.
 *
 * @example
 * ```ts
 * import { subjectName } from "./options.ts";
 * if (subjectName("relay options: subject", "orders.eu.created") !== "orders.eu.created") {
 *   throw new Error("subject");
 * }
 * ```
 */
export function subjectName(what: string, value: unknown): string {
  if (typeof value !== "string" || !/^[^\s.*>]+(\.[^\s.*>]+)*$/.test(value)) {
    throw new InvalidArgumentError({
      message: `${what} must be a subject (dot-separated tokens, no whitespace or wildcard), got ` +
        describeValue(value),
    });
  }
  return value;
}
