// The tree, its proofs and checkpoints against references that share no code with src/: a Merkle
// tree written straight from RFC 9162 section 2.1 (MTH, PATH, PROOF and both verification
// algorithms), the Certificate Transparency reference vectors, and the signed-note example of
// golang.org/x/mod/sumdb/note.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import {
  consistencyProof,
  hashLeaf,
  inclusionProof,
  leafSource,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from "../src/merkle.ts";
import {
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifierKey,
  verifyCheckpoint,
} from "../src/checkpoint.ts";
import {
  hex,
  mth,
  path,
  refVerifyConsistency,
  refVerifyInclusion,
  sha,
  subproof,
  unhex,
} from "./rfc9162_reference.ts";

// certificate-transparency merkle_tree_test.cc: the reference tree's inputs and roots.
const CT_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
  .concat(["606162636465666768696a6b6c6d6e6f"]).map(unhex);
const CT_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
const CT_INCLUSION: [number, number, string[]][] = [
  [0, 8, [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
  ]],
  [5, 8, [
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  ]],
  [2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [1, 5, [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
  ]],
];
const CT_CONSISTENCY: [number, number, string[]][] = [
  [1, 8, [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
  ]],
  [6, 8, [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  ]],
  [3, 8, [
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
  ]],
];

const ctLeaves = CT_INPUTS.map(hashLeaf);

test("the RFC 6962 reference roots, by the reference MTH and by src", () => {
  assert.equal(hex(rootOf(leafSource([]), 0)), hex(sha()));
  for (let n = 1; n <= 8; n++) {
    assert.equal(hex(mth(CT_INPUTS.slice(0, n))), CT_ROOTS[n - 1], `reference MTH ${n}`);
    assert.equal(hex(rootOf(leafSource(ctLeaves), n)), CT_ROOTS[n - 1], `src root ${n}`);
  }
});

test("the reference inclusion and consistency vectors", () => {
  const src = leafSource(ctLeaves);
  for (const [i, n, want] of CT_INCLUSION) {
    assert.deepEqual(inclusionProof(src, i, n).path.map(hex), want, `inclusion ${i} of ${n}`);
    assert.deepEqual(path(i, CT_INPUTS.slice(0, n)).map(hex), want, `reference PATH ${i} ${n}`);
  }
  for (const [m, n, want] of CT_CONSISTENCY) {
    assert.deepEqual(consistencyProof(src, m, n).path.map(hex), want, `consistency ${m} ${n}`);
    assert.deepEqual(subproof(m, CT_INPUTS.slice(0, n), true).map(hex), want);
  }
});

test("every proof of trees up to 33 leaves equals the RFC's and passes both verifiers", () => {
  const inputs = Array.from({ length: 33 }, (_, i) => new Uint8Array([i, i * 7]));
  const src = leafSource(inputs.map(hashLeaf));
  for (let n = 1; n <= inputs.length; n++) {
    const d = inputs.slice(0, n);
    const root = mth(d);
    for (let i = 0; i < n; i++) {
      const p = inclusionProof(src, i, n);
      assert.deepEqual(p.path.map(hex), path(i, d).map(hex));
      const leaf = hashLeaf(d[i]);
      assert.ok(refVerifyInclusion(i, n, leaf, p.path, root));
      assert.ok(verifyInclusion(leaf, p, root));
      assert.ok(!verifyInclusion(hashLeaf(new Uint8Array([99])), p, root), "another leaf");
      if (n > 1) assert.ok(!verifyInclusion(leaf, { ...p, index: (i + 1) % n }, root), "index");
    }
    for (let m = 1; m <= n; m++) {
      const p = consistencyProof(src, m, n);
      const want = m === n ? [] : subproof(m, d, true);
      assert.deepEqual(p.path.map(hex), want.map(hex));
      const old = mth(inputs.slice(0, m));
      assert.ok(refVerifyConsistency(m, n, old, root, p.path), `reference ${m} ${n}`);
      assert.ok(verifyConsistency(old, root, p), `src ${m} ${n}`);
      if (m < n) {
        const forked = mth([...inputs.slice(0, m - 1), new Uint8Array([200])]);
        assert.ok(!verifyConsistency(forked, root, p), `forked ${m} ${n}`);
        for (let j = 0; j < p.path.length; j++) {
          const bent = p.path.map((h, k) => k === j ? sha(h) : h);
          assert.ok(!verifyConsistency(old, root, { ...p, path: bent }), `bent ${m} ${n} ${j}`);
        }
      }
    }
  }
});

// golang.org/x/mod/sumdb/note note_test.go: Ed25519 is deterministic, so the note must match.
const GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_TEXT = "If you think cryptography is the answer to your problem,\n" +
  "then you don't know what your problem is.\n";
const GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann " +
  "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

test("signed notes match the sumdb/note reference byte for byte", () => {
  const { name, privateKey } = parseSignerKey(GO_SKEY);
  assert.equal(signNote(GO_TEXT, privateKey, name), GO_NOTE);
  const { publicKey } = parseVerifierKey(GO_VKEY);
  assert.equal(verifierKey(name, publicKey), GO_VKEY);
  assert.equal(openNote(GO_NOTE, publicKey), GO_TEXT);
  assert.equal(openNote(GO_NOTE.replace("cryptography", "cryptographY"), publicKey), null);
  assert.throws(() => parseVerifierKey(GO_VKEY.replace("c74f20a3", "c74f20a4")), /verifier key/);
});

test("checkpoints: signed, checked, and every forgery or other key refused", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const other = generateKeyPairSync("ed25519").publicKey;
  const root = unhex(CT_ROOTS[7]);
  const cp = signCheckpoint({ origin: "example.com/audit", size: 8, root }, privateKey);
  assert.equal(
    cp.text.split("\n").slice(0, 4).join("\n"),
    "example.com/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
  );
  assert.deepEqual(verifyCheckpoint(cp.text, publicKey), {
    origin: "example.com/audit",
    size: 8,
    root,
  });
  assert.equal(verifyCheckpoint(cp.text, other), null);
  assert.equal(verifyCheckpoint(cp.text.replace("\n8\n", "\n9\n"), publicKey), null);
  assert.equal(verifyCheckpoint(cp.text.replace("audit", "audiT"), publicKey), null);
  assert.throws(() => verifyCheckpoint("example.com/audit\n8\n", publicKey), /signed note/);
});
