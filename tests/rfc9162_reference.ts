// An RFC 9162 section 2.1 Merkle tree written straight from the RFC's text, sharing no code with
// src/: MTH, PATH, PROOF, and the two verification algorithms. The tests check src against it.
import { createHash } from "node:crypto";

export type Bytes = Uint8Array;
export const sha = (...parts: Bytes[]): Bytes => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
export const hex = (b: Bytes): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export const unhex = (s: string): Bytes =>
  new Uint8Array(s.match(/../g)?.map((x) => parseInt(x, 16)) ?? []);

// RFC 9162 2.1.1: MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 || d0),
// MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n.
const largestPow2Below = (n: number): number => 2 ** Math.ceil(Math.log2(n) - 1);
export function mth(d: Bytes[]): Bytes {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(new Uint8Array([0]), d[0]);
  const k = largestPow2Below(d.length);
  return sha(new Uint8Array([1]), mth(d.slice(0, k)), mth(d.slice(k)));
}
// RFC 9162 2.1.3.1 PATH(m, D[n]).
export function path(m: number, d: Bytes[]): Bytes[] {
  if (d.length <= 1) return [];
  const k = largestPow2Below(d.length);
  return m < k
    ? [...path(m, d.slice(0, k)), mth(d.slice(k))]
    : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}
// RFC 9162 2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
export function subproof(m: number, d: Bytes[], b: boolean): Bytes[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const k = largestPow2Below(d.length);
  return m <= k
    ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))]
    : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}
// RFC 9162 2.1.3.2, transcribed step by step.
export function refVerifyInclusion(
  i: number,
  n: number,
  leaf: Bytes,
  proof: Bytes[],
  root: Bytes,
): boolean {
  if (i >= n) return false;
  let fn = i, sn = n - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha(new Uint8Array([1]), p, r);
      if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1]; }
    } else r = sha(new Uint8Array([1]), r, p);
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && hex(r) === hex(root);
}
// RFC 9162 2.1.4.2, transcribed step by step.
export function refVerifyConsistency(
  m: number,
  n: number,
  a: Bytes,
  b: Bytes,
  proof: Bytes[],
): boolean {
  if (m === n) return proof.length === 0 && hex(a) === hex(b);
  const p = (m & (m - 1)) === 0 ? [a, ...proof] : proof;
  let fn = m - 1, sn = n - 1;
  while (fn % 2 === 1) [fn, sn] = [fn >> 1, sn >> 1];
  let fr = p[0], sr = p[0];
  for (const c of p.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = sha(new Uint8Array([1]), c, fr);
      sr = sha(new Uint8Array([1]), c, sr);
      while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1];
    } else sr = sha(new Uint8Array([1]), sr, c);
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && hex(fr) === hex(a) && hex(sr) === hex(b);
}

// FORMAT.md "Merkle tree": a record's leaf input is u64 seq, u64 timestamp, u32 length (all
// little-endian), then its bytes; a seq without a record has the 8-byte input u64 seq.
export function recordLeafInput(seq: number, timestamp: number, data: Bytes): Bytes {
  const b = new Uint8Array(20 + data.length);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(seq), true);
  v.setBigUint64(8, BigInt(timestamp), true);
  v.setUint32(16, data.length, true);
  b.set(data, 20);
  return b;
}
