// khipu checkpoint, prove and verify-proof, and khipu verify on a log with integrity on, run
// in-process through runCli with the same arguments a shell would pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Store } from "../mod.ts";
import { verifierKey } from "../integrity.ts";
import { memoryIo } from "../src/cli/io.ts";
import { runCli } from "../src/cli/main.ts";
import { decodeV2Segment, v2Frame } from "./spec_codec.ts";

async function khipu(...args: string[]) {
  const { io, stdout, stderr } = memoryIo();
  const code = await runCli(args, io);
  return { code, out: stdout(), err: stderr() };
}

test("checkpoint, prove, verify-proof: ok, then the same proofs fail after a rewrite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "khipu-integrity-cli-"));
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pem = join(dir, "audit.pem");
  writeFileSync(pem, privateKey.export({ type: "pkcs8", format: "pem" }));
  const vkey = join(dir, "audit.vkey");
  writeFileSync(vkey, verifierKey("example.com/audit", publicKey) + "\n");
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  const store = await Store.open(dir);
  const audit = await store.log("audit", { integrity: "merkle" });
  await audit.appendBatch(["alice paid 10", "bob paid 20"]);
  await store.close();
  const checkpoint = (...extra: string[]) =>
    khipu("checkpoint", dir, "audit", "--key", pem, "--origin", "example.com/audit", ...extra);
  const cp1 = await checkpoint();
  assert.equal(cp1.code, 0, cp1.err);
  assert.match(
    cp1.out,
    /^example\.com\/audit\n2\n[A-Za-z0-9+/]{43}=\n\n\u2014 example\.com\/audit /,
  );
  const old = file("cp1.txt", cp1.out);

  const again = await Store.open(dir);
  await (await again.log("audit")).append("carol paid 30");
  await again.close();
  const cp2 = await checkpoint("--json");
  assert.equal(JSON.parse(cp2.out).size, 3);
  const now = file("cp2.txt", JSON.parse(cp2.out).text);

  const inclusion = await khipu("prove", dir, "audit", "1", "--size", "3");
  assert.equal(inclusion.code, 0, inclusion.err);
  const inc = file("inc.json", inclusion.out);
  const consistency = await khipu("prove", dir, "audit", "--from", "2", "--size", "3");
  const cons = file("cons.json", consistency.out);
  assert.equal((await khipu("verify-proof", inc, "--checkpoint", now, "--key", vkey)).code, 0);
  const ok = await khipu(
    "verify-proof",
    cons,
    "--checkpoint",
    now,
    "--key",
    vkey,
    "--old-checkpoint",
    old,
  );
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /^ok: the tree of 2 is a prefix of the tree of 3/);
  assert.equal((await khipu("prove", dir, "audit", "1")).code, 2, "--size is required");
  assert.equal(
    (await khipu("verify-proof", inc, "--checkpoint", old, "--key", vkey)).code,
    1,
    "size",
  );

  // Someone edits bob's record in place and fixes its CRC.
  const logDir = join(dir, "audit");
  const seg = join(logDir, readdirSync(logDir).find((n) => n.endsWith(".seg"))!);
  const bytes = new Uint8Array(readFileSync(seg));
  const d = decodeV2Segment(bytes, false);
  const f = d.frames.find((x) => x.seq === 1)!;
  bytes.set(
    v2Frame(d.header.logId, 1, f.type, f.delta, new TextEncoder().encode("bob paid 99")),
    f.offset,
  );
  writeFileSync(seg, bytes);

  const verify = await khipu("verify", dir, "audit");
  assert.equal(verify.code, 1, verify.out);
  assert.match(verify.out, /seq 1: the record's leaf hash does not match the tree/);
  const forged = await khipu("prove", dir, "audit", "1", "--size", "3");
  const bad = await khipu(
    "verify-proof",
    file("forged.json", forged.out),
    "--checkpoint",
    now,
    "--key",
    vkey,
  );
  assert.equal(bad.code, 1);
  assert.match(bad.out, /^FAILED: record 1 is not in the checkpoint's tree/);
  const other = file("other.vkey", verifierKey("x", generateKeyPairSync("ed25519").publicKey));
  assert.equal((await khipu("verify-proof", inc, "--checkpoint", now, "--key", other)).code, 1);
});
