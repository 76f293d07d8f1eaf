/**
 * Signed tree heads: the C2SP `tlog-checkpoint` text (origin, size, base64 root) wrapped in a C2SP
 * `signed-note` with an Ed25519 signature, as Go's checksum database and Sigstore write them. Key
 * hashes follow golang.org/x/mod/sumdb/note: SHA-256(name || 0x0A || 0x01 || public key)[:4].
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { InvalidArgumentError } from "./errors.ts";
import { HASH_BYTES } from "./merkle.ts";

/**
 * An Ed25519 key as `node:crypto` makes it (a `KeyObject`, from `generateKeyPairSync("ed25519")`,
 * `createPrivateKey`, `parseSignerKey`, ...), declared by the members khipu-log reads so that the
 * package's types do not depend on `@types/node`.
 */
export interface Ed25519Key {
  /** `"private"` or `"public"`. */
  readonly type: string;
  /** `"ed25519"` for a key checkpoints accept. */
  readonly asymmetricKeyType?: string;
}

/** The `node:crypto` key behind an {@linkcode Ed25519Key}: every one comes from there. */
function native(key: Ed25519Key): KeyObject {
  return key as KeyObject;
}

/** A tree head as a checkpoint states it. */
export interface Checkpoint {
  /** The log's origin line: who runs it, e.g. `example.com/audit`. */
  origin: string;
  /** The tree size: how many records it covers. */
  size: number;
  /** The tree's root hash. */
  root: Uint8Array;
}

/** A checkpoint with its signed-note text. */
export interface SignedCheckpoint extends Checkpoint {
  /** The note: checkpoint body, a blank line, one signature line. */
  text: string;
}

const ED25519 = 0x01;
const DASH = "\u2014 ";

function rawPublicKey(key: Ed25519Key): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(native(key)) : native(key);
  if (pub.asymmetricKeyType !== "ed25519") {
    throw new InvalidArgumentError({ message: "checkpoint keys must be Ed25519" });
  }
  const der = pub.export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(der.length - 32));
}

function keyHash(name: string, pub: Uint8Array): Uint8Array {
  const h = createHash("sha256").update(name + "\n").update(new Uint8Array([ED25519])).update(pub);
  return new Uint8Array(h.digest()).subarray(0, 4);
}

function checkName(name: string): void {
  if (name === "" || /[\s+]/.test(name)) {
    throw new InvalidArgumentError({
      message: `a note signer name must be non-empty, without spaces or '+', got ${
        JSON.stringify(name)
      }`,
    });
  }
}

/**
 * The verifier key of a signer in the note format: `<name>+<hex key hash>+<base64(0x01 || key)>`.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { verifierKey } from "./checkpoint.ts";
 * const { publicKey } = generateKeyPairSync("ed25519");
 * const vkey = verifierKey("example.com/audit", publicKey);
 * if (!/^example\.com\/audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/.test(vkey)) throw new Error(vkey);
 * ```
 */
export function verifierKey(name: string, key: Ed25519Key): string {
  checkName(name);
  const pub = rawPublicKey(key);
  const hash = Buffer.from(keyHash(name, pub)).toString("hex");
  return `${name}+${hash}+${Buffer.from([ED25519, ...pub]).toString("base64")}`;
}

/**
 * Parses a verifier key (`<name>+<hex key hash>+<base64(0x01 || key)>`), checking its hash.
 *
 * @example
 * ```ts
 * import { parseVerifierKey } from "./checkpoint.ts";
 * // the example key of golang.org/x/mod/sumdb/note
 * const v = parseVerifierKey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
 * if (v.name !== "PeterNeumann" || v.publicKey.asymmetricKeyType !== "ed25519") throw new Error();
 * ```
 */
export function parseVerifierKey(vkey: string): { name: string; publicKey: Ed25519Key } {
  const [name, key] = splitKey(vkey, "verifier", false);
  const der = Buffer.concat([Buffer.from(SPKI_PREFIX, "hex"), key]);
  return { name, publicKey: createPublicKey({ key: der, format: "der", type: "spki" }) };
}

/**
 * Parses a signer key (`PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>`).
 *
 * @example
 * ```ts
 * import { parseSignerKey } from "./checkpoint.ts";
 * const s = parseSignerKey(
 *   "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
 * );
 * if (s.name !== "PeterNeumann" || s.privateKey.type !== "private") throw new Error();
 * ```
 */
export function parseSignerKey(skey: string): { name: string; privateKey: Ed25519Key } {
  if (!skey.startsWith("PRIVATE+KEY+")) {
    throw new InvalidArgumentError({ message: "a signer key starts with PRIVATE+KEY+" });
  }
  const [name, seed] = splitKey(skey.slice("PRIVATE+KEY+".length), "signer", true);
  const der = Buffer.concat([Buffer.from(PKCS8_PREFIX, "hex"), seed]);
  return { name, privateKey: createPrivateKey({ key: der, format: "der", type: "pkcs8" }) };
}

/** DER prefixes that wrap a raw Ed25519 public key / seed (RFC 8410). */
const SPKI_PREFIX = "302a300506032b6570032100";
const PKCS8_PREFIX = "302e020100300506032b657004220420";

function splitKey(text: string, what: string, secret: boolean): [string, Buffer] {
  const bad = () => new InvalidArgumentError({ message: `not a note ${what} key` });
  // The base64 key may itself hold '+': it is everything after the second one.
  const i = text.indexOf("+");
  const j = text.indexOf("+", i + 1);
  if (i < 1 || j < 0) throw bad();
  const name = text.slice(0, i);
  const hash = text.slice(i + 1, j);
  const blob = Buffer.from(text.slice(j + 1), "base64");
  if (!/^[0-9a-f]{8}$/.test(hash) || blob.length !== 33 || blob[0] !== ED25519) throw bad();
  const key = blob.subarray(1);
  const pub = secret ? rawPublicKey(privateKeyOf(key)) : new Uint8Array(key);
  if (Buffer.from(keyHash(name, pub)).toString("hex") !== hash) throw bad();
  return [name, key];
}

function privateKeyOf(seed: Uint8Array): Ed25519Key {
  const der = Buffer.concat([Buffer.from(PKCS8_PREFIX, "hex"), seed]);
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

/**
 * Signs a note's text (which must end with a newline) as the C2SP signed-note format says: the
 * text, a blank line, then `— <name> <base64(key hash || Ed25519 signature of the text)>`.
 *
 * @example
 * ```ts
 * import { parseSignerKey, signNote } from "./checkpoint.ts";
 * const { name, privateKey } = parseSignerKey(
 *   "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
 * );
 * const note = signNote("hello\n", privateKey, name); // key hash c74f20a3: base64 "x08g"...
 * if (!note.startsWith("hello\n\n\u2014 PeterNeumann x08go")) throw new Error(note);
 * ```
 */
export function signNote(text: string, privateKey: Ed25519Key, name: string): string {
  checkName(name);
  if (!text.endsWith("\n")) {
    throw new InvalidArgumentError({ message: "a note's text ends with a newline" });
  }
  const sig = sign(null, Buffer.from(text), native(privateKey));
  const hash = keyHash(name, rawPublicKey(privateKey));
  return `${text}\n${DASH}${name} ${Buffer.concat([hash, sig]).toString("base64")}\n`;
}

/**
 * Opens a signed note: its text if one of its signature lines is a valid signature by
 * `publicKey` under that line's name, null if none is. Throws `InvalidArgumentError` if `note` is
 * not a signed note at all.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { openNote, signNote } from "./checkpoint.ts";
 * const { privateKey, publicKey } = generateKeyPairSync("ed25519");
 * const note = signNote("hi\n", privateKey, "me");
 * if (openNote(note, publicKey) !== "hi\n") throw new Error("valid");
 * if (openNote(note.replace("hi", "ho"), publicKey) !== null) throw new Error("forged");
 * ```
 */
export function openNote(note: string, publicKey: Ed25519Key): string | null {
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) {
    throw new InvalidArgumentError({
      message: "not a signed note: no blank line before signatures",
    });
  }
  const text = note.slice(0, cut + 1);
  const pub = rawPublicKey(publicKey);
  for (const line of note.slice(cut + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new InvalidArgumentError({ message: `not a note signature line: ${line}` });
    const blob = Buffer.from(m[2], "base64");
    if (blob.length !== 4 + 64 || !keyHash(m[1], pub).every((b, i) => b === blob[i])) continue;
    if (verify(null, Buffer.from(text), native(publicKey), blob.subarray(4))) return text;
  }
  return null;
}

/**
 * Writes and signs a checkpoint; `name` (default: the origin) names the signer.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { signCheckpoint } from "./checkpoint.ts";
 * const { privateKey } = generateKeyPairSync("ed25519");
 * const cp = signCheckpoint({ origin: "o", size: 0, root: new Uint8Array(32) }, privateKey);
 * if (!cp.text.startsWith("o\n0\nAAAA")) throw new Error(cp.text);
 * ```
 */
export function signCheckpoint(
  cp: Checkpoint,
  privateKey: Ed25519Key,
  name: string = cp.origin,
): SignedCheckpoint {
  if (cp.origin === "" || /[\n]/.test(cp.origin)) {
    throw new InvalidArgumentError({ message: "a checkpoint origin must be one non-empty line" });
  }
  const body = `${cp.origin}\n${cp.size}\n${Buffer.from(cp.root).toString("base64")}\n`;
  return { ...cp, text: signNote(body, privateKey, name) };
}

/**
 * Parses a checkpoint body: origin, size, base64 root lines (extension lines after them are
 * allowed and ignored).
 *
 * @example
 * ```ts
 * import { parseCheckpoint } from "./checkpoint.ts";
 * const root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
 * if (parseCheckpoint(`o\n0\n${root}\n`).size !== 0) throw new Error("size");
 * ```
 */
export function parseCheckpoint(body: string): Checkpoint {
  const lines = body.split("\n");
  const [origin, size, root] = lines;
  const bad = (why: string) => new InvalidArgumentError({ message: `not a checkpoint: ${why}` });
  if (lines.length < 4 || !origin) throw bad("it needs an origin, a size and a root line");
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) {
    throw bad(`size ${JSON.stringify(size)}`);
  }
  const rootBytes = new Uint8Array(Buffer.from(root, "base64"));
  if (rootBytes.length !== HASH_BYTES || Buffer.from(rootBytes).toString("base64") !== root) {
    throw bad(`root ${JSON.stringify(root)}`);
  }
  return { origin, size: Number(size), root: rootBytes };
}

/**
 * Checks a signed checkpoint: what it states if it carries a valid signature by `key` (a
 * `Ed25519Key`, or a verifier key string), null if not. Throws `InvalidArgumentError` if `text`
 * is not a signed checkpoint.
 *
 * @example
 * ```ts
 * import { generateKeyPairSync } from "node:crypto";
 * import { signCheckpoint, verifierKey, verifyCheckpoint } from "./checkpoint.ts";
 * const { privateKey, publicKey } = generateKeyPairSync("ed25519");
 * const cp = signCheckpoint({ origin: "o", size: 3, root: new Uint8Array(32) }, privateKey);
 * if (verifyCheckpoint(cp.text, verifierKey("o", publicKey))?.size !== 3) throw new Error("ok");
 * const forged = cp.text.replace("\n3\n", "\n4\n");
 * if (verifyCheckpoint(forged, publicKey) !== null) throw new Error("forged");
 * ```
 */
export function verifyCheckpoint(text: string, key: Ed25519Key | string): Checkpoint | null {
  const publicKey = typeof key === "string" ? parseVerifierKey(key).publicKey : key;
  const body = openNote(text, publicKey);
  return body === null ? null : parseCheckpoint(body);
}
