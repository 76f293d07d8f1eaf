// A log with integrity "merkle": checkpoints and proofs checked by the reference verifier written
// from the RFC (tests/rfc9162_reference.ts), reopening, crashes, retention, the option's rules,
// and the in-place edit with a fixed CRC that only the tree can catch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, type Log, RecordsRemovedError, Store, SyncPolicy } from "../mod.ts";
import { SimPlatform } from "../testing.ts";
import { leafHashOf, verifyCheckpoint, verifyConsistency, verifyInclusion } from "../integrity.ts";
import { decodeV2Segment, v2Frame } from "./spec_codec.ts";
import {
  hex,
  mth,
  recordLeafInput,
  refVerifyConsistency,
  refVerifyInclusion,
  sha,
} from "./rfc9162_reference.ts";

const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const enc = new TextEncoder();
const tmp = () => mkdtempSync(join(tmpdir(), "khipu-integrity-"));

/** The reference tree's leaf inputs of every seq below `nextSeq` (gap inputs where none). */
async function referenceInputs(log: Log): Promise<Uint8Array[]> {
  const inputs: Uint8Array[] = [];
  for await (const r of log.read({ from: log.firstSeq })) {
    while (inputs.length < r.seq) inputs.push(new Uint8Array(8).fill(0)); // not expected here
    inputs.push(recordLeafInput(r.seq, r.timestamp, r.data));
  }
  return inputs;
}

test("checkpoints and proofs pass the reference verifier; reopening keeps the tree", async () => {
  const dir = tmp();
  const store = await Store.open(dir, { segmentBytes: 4096 });
  const audit = await store.log("audit", { integrity: "merkle" });
  assert.equal(audit.integrity, "merkle");
  const cps = [];
  for (let round = 0; round < 5; round++) {
    await audit.appendBatch(
      Array.from({ length: 7 + round * 13 }, (_, i) => `r${round}-${i}`.padEnd(60, ".")),
    );
    cps.push(await audit.checkpoint({ origin: "example.com/audit", sign: privateKey }));
  }
  assert.ok(audit.segments().length > 3, "spans several segments");
  const inputs = await referenceInputs(audit);
  for (const cp of cps) {
    assert.deepEqual(verifyCheckpoint(cp.text, publicKey)?.size, cp.size);
    assert.equal(hex(cp.root), hex(mth(inputs.slice(0, cp.size))), `root of ${cp.size}`);
    for (const seq of [0, 1, cp.size - 1, Math.floor(cp.size / 2)]) {
      const p = await audit.proveInclusion(seq, cp.size);
      assert.ok(
        refVerifyInclusion(seq, cp.size, sha(new Uint8Array([0]), inputs[seq]), p.path, cp.root),
      );
    }
  }
  for (let i = 0; i < cps.length; i++) {
    for (let j = i; j < cps.length; j++) {
      const p = await audit.proveConsistency(cps[i].size, cps[j].size);
      assert.ok(refVerifyConsistency(cps[i].size, cps[j].size, cps[i].root, cps[j].root, p.path));
    }
  }
  await store.close();

  const again = await Store.open(dir, { segmentBytes: 4096 });
  const reopened = await again.log("audit"); // the option may be left out
  assert.equal(reopened.integrity, "merkle");
  await reopened.append("after reopening");
  const last = cps[cps.length - 1];
  const now = await reopened.checkpoint({ origin: "example.com/audit", sign: privateKey });
  assert.equal(now.size, last.size + 1);
  assert.ok(
    verifyConsistency(last.root, now.root, await reopened.proveConsistency(last.size, now.size)),
  );
  assert.equal(hex(now.root), hex(mth(await referenceInputs(reopened))));
  assert.equal((await reopened.verify()).ok, true);

  // A reader beside the writer: its tree covers the committed records, proofs check out.
  const reader = await Store.open(dir, { readOnly: true });
  const seen = await reader.log("audit");
  const fromReader = await seen.checkpoint({ origin: "example.com/audit", sign: privateKey });
  assert.equal(fromReader.size, now.size);
  assert.equal(hex(fromReader.root), hex(now.root));
  await reopened.append("one more");
  await reopened.sync();
  const p = await seen.proveInclusion(now.size, now.size + 1);
  const later = await reopened.checkpoint({ origin: "example.com/audit", sign: privateKey });
  assert.ok(
    refVerifyInclusion(
      now.size,
      now.size + 1,
      sha(new Uint8Array([0]), (await referenceInputs(reopened))[now.size]),
      p.path,
      later.root,
    ),
  );
  assert.equal((await reader.verify()).ok, true);
  await reader.close();
  await again.close();
});

test("integrity is chosen when a log is created, and asked-for mismatches are refused", async () => {
  const dir = tmp();
  const store = await Store.open(dir);
  await (await store.log("plain")).append("x");
  await (await store.log("audit", { integrity: "merkle" })).append("y");
  await store.close();
  const again = await Store.open(dir);
  await assert.rejects(again.log("plain", { integrity: "merkle" }), InvalidArgumentError);
  await assert.rejects(again.log("audit", { integrity: "none" }), InvalidArgumentError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(again.log("audit", { integrity: "sha1" as any }), InvalidArgumentError);
  const plain = await again.log("plain");
  assert.equal(plain.integrity, "none");
  await assert.rejects(plain.proveInclusion(0, 1), InvalidArgumentError);
  await assert.rejects(plain.checkpoint({ origin: "o", sign: privateKey }), InvalidArgumentError);
  const audit = await again.log("audit", { integrity: "merkle" });
  assert.equal(audit, await again.log("audit", { syncPolicy: SyncPolicy.everyN(64) }));
  await again.close();
});

test("an in-place edit with a fixed CRC: verify names the record, proofs refuse it", async () => {
  const dir = tmp();
  const store = await Store.open(dir);
  const audit = await store.log("audit", { integrity: "merkle" });
  await audit.appendBatch(["alice paid 10", "bob paid 20", "carol paid 30"]);
  const cp = await audit.checkpoint({ origin: "example.com/audit", sign: privateKey });
  await store.close();

  // Rewrite bob's payload (same length) and recompute the frame's seeded CRC as the writer would.
  const logDir = join(dir, "audit");
  const seg = join(logDir, readdirSync(logDir).find((n) => n.endsWith(".seg"))!);
  const file = new Uint8Array(readFileSync(seg));
  const decoded = decodeV2Segment(file, false);
  const f = decoded.frames.find((x) => x.seq === 1)!;
  const forged = v2Frame(decoded.header.logId, 1, f.type, f.delta, enc.encode("bob paid 99"));
  assert.equal(forged.length, f.size);
  file.set(forged, f.offset);
  writeFileSync(seg, file);

  const again = await Store.open(dir);
  const log = await again.log("audit");
  let bob;
  for await (const r of log.read({ from: 1 })) {
    bob = r;
    break;
  }
  assert.equal(new TextDecoder().decode(bob!.data), "bob paid 99", "the checksums pass");
  const report = await log.verify();
  assert.equal(report.ok, false);
  assert.equal(report.problems.length, 1);
  assert.equal(report.problems[0].seq, 1);
  assert.match(report.problems[0].reason, /leaf hash/);
  const proof = await log.proveInclusion(1, cp.size);
  assert.equal(verifyInclusion(leafHashOf(bob!), proof, cp.root), false);
  assert.equal(refVerifyInclusion(1, cp.size, leafHashOf(bob!), proof.path, cp.root), false);
  await again.close();
  const reader = await Store.open(dir, { readOnly: true });
  const storeReport = await reader.verify();
  assert.equal(storeReport.ok, false);
  assert.equal(storeReport.logs[0].problems[0]?.seq, 1);
  await reader.close();
});

test("after any crash the tree matches the records present", async () => {
  for (const mode of ["none", "subset", "all"] as const) {
    for (let seed = 1; seed <= 6; seed++) {
      const sim = new SimPlatform();
      const opts = { platform: sim, segmentBytes: 4096, syncPolicy: SyncPolicy.osManaged() };
      const store = await Store.open("/s", opts);
      const log = await store.log("audit", { integrity: "merkle" });
      for (let i = 0; i < 40; i++) {
        await log.appendBatch(Array.from({ length: 1 + (i % 4) }, (_, j) => `${i}:${j}`));
        if (i % 9 === 0) await log.sync();
      }
      const cut = sim.crash(mode, seed);
      await store.close().catch(() => {});
      const after = await Store.open("/s", { ...opts, platform: cut });
      const reopened = await after.log("audit");
      const inputs = await referenceInputs(reopened);
      assert.equal(inputs.length, reopened.nextSeq, `${mode} ${seed}: no gaps`);
      const cp = await reopened.checkpoint({ origin: "o", sign: privateKey });
      assert.equal(hex(cp.root), hex(mth(inputs)), `${mode} ${seed}: root`);
      assert.equal((await reopened.verify()).ok, true, `${mode} ${seed}: verify`);
      await after.close();
    }
  }
});

test("retention: removed records fail with RecordsRemovedError, later ones stay provable", async () => {
  const dir = tmp();
  const store = await Store.open(dir, { segmentBytes: 4096 });
  const audit = await store.log("audit", { integrity: "merkle" });
  for (let i = 0; i < 300; i += 10) {
    await audit.appendBatch(Array.from({ length: 10 }, (_, j) => `event ${i + j}`.padEnd(60, ".")));
  }
  const before = await audit.checkpoint({ origin: "o", sign: privateKey });
  await audit.truncateBefore(150);
  const first = audit.firstSeq;
  assert.ok(first > 0);
  await assert.rejects(audit.proveInclusion(0, before.size), RecordsRemovedError);
  await audit.append("later");
  const cp = await audit.checkpoint({ origin: "o", sign: privateKey });
  let rec;
  for await (const r of audit.read({ from: first })) {
    rec = r;
    break;
  }
  assert.ok(verifyInclusion(leafHashOf(rec!), await audit.proveInclusion(first, cp.size), cp.root));
  assert.ok(verifyConsistency(before.root, cp.root, await audit.proveConsistency(300, cp.size)));
  assert.equal((await audit.verify()).ok, true);
  await store.close();
});
