// Stores written by the format-version-1 code keep opening and reading unchanged. The fixtures in
// tests/fixtures/v1/ were built by tests/fixtures/v1/build.ts run at commit c8ac77d (the last v1
// code; see tests/fixtures/v1/README.md); each holds a store directory and expected.json, what the
// v1 code read back from it. Every test works on a fresh copy, never on the checked-in files.
//
// Two groups: what holds for any code that reads v1 stores (checked today against the v1 code),
// and, in the separate describe block at the end, what needs the version-2 writer (new segments of
// an old log are written in format version 2): that block fails until the new format lands.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { cpSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Log, Store } from "../mod.ts";
import { realDisk } from "./helpers.ts";

const disk = realDisk("v1-fixtures");

const FIXTURES = fileURLToPath(new URL("./fixtures/v1/", import.meta.url));
const NAMES = ["basic", "retained", "multi", "empty-newest", "torn"] as const;
type FixtureName = (typeof NAMES)[number];
/** The garbage build.ts appended after the newest segment's last frame in `torn`. */
const TORN_BYTES = 17;
/** Records the mixed-store tests append to every log of a fixture. */
const APPENDED = 30;

interface ExpectedRecord {
  seq: number;
  timestamp: number;
  /** base64 */
  data: string;
}
interface ExpectedLog {
  firstSeq: number;
  nextSeq: number;
  /** The segment file names the v1 code left (informative; not compared after appends). */
  segments: string[];
  records: ExpectedRecord[];
}
interface Expected {
  logs: Record<string, ExpectedLog>;
}

function expectedOf(name: FixtureName): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8")) as Expected;
}

/** A fresh temp copy of the fixture's store directory. */
function copyOf(name: FixtureName): string {
  const dir = join(disk.tempDir(), "store");
  cpSync(join(FIXTURES, name, "store"), dir, { recursive: true });
  return dir;
}

function segmentFiles(logDir: string): string[] {
  return readdirSync(logDir).filter((n) => /^\d{20}\.seg$/.test(n)).sort();
}

/** The format version of each segment file of `logDir`: the u16 at bytes 8..9 of its header. */
function segmentVersions(logDir: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of segmentFiles(logDir)) {
    const b = readFileSync(join(logDir, n));
    assert.ok(b.length >= 10, `${n}: ${b.length} bytes, no header`);
    m.set(n, b.readUInt16LE(8));
  }
  return m;
}

async function readAll(log: Log): Promise<ExpectedRecord[]> {
  const out: ExpectedRecord[] = [];
  for await (const r of log.read({ from: 0 })) {
    out.push({ seq: r.seq, timestamp: r.timestamp, data: Buffer.from(r.data).toString("base64") });
  }
  return out;
}

/** Deterministic payload `i` of the appended records; every fourth one a string. */
function newRecord(log: string, i: number): Uint8Array | string {
  if (i % 4 === 1) return `${log} appended ${i}`;
  const b = new Uint8Array((i * 97) % 450);
  for (let j = 0; j < b.length; j++) b[j] = (i * 31 + j * 7 + log.length) & 0xff;
  return b;
}

function base64Of(item: Uint8Array | string): string {
  return (typeof item === "string" ? Buffer.from(item, "utf8") : Buffer.from(item)).toString(
    "base64",
  );
}

interface Mixed {
  dir: string;
  expected: Expected;
  /** Per log: the records it holds after the appends, old then new. */
  after: Map<string, { log: ExpectedLog; read: ExpectedRecord[]; appendedFrom: number }>;
  /** Per log: the fixture's sealed segment files, bytes before the appends. */
  sealedBefore: Map<string, Map<string, string>>;
  startedAt: number;
  endedAt: number;
}

/**
 * The mixed store: a copy of the fixture opened by the current code, 30 records appended to each
 * of its logs (one at a time and in batches, with 4 KiB segments so the new records roll over),
 * closed, reopened with the default options and read back.
 */
async function mixed(name: FixtureName): Promise<Mixed> {
  const dir = copyOf(name);
  const expected = expectedOf(name);
  const sealedBefore = new Map<string, Map<string, string>>();
  for (const [logName, exp] of Object.entries(expected.logs)) {
    const sealed = new Map<string, string>();
    for (const f of exp.segments.slice(0, -1)) {
      sealed.set(f, readFileSync(join(dir, logName, f)).toString("base64"));
    }
    sealedBefore.set(logName, sealed);
  }
  const startedAt = Date.now();
  const appended = new Map<string, (Uint8Array | string)[]>();
  const store = await Store.open(dir, { segmentBytes: 4096 });
  try {
    for (const logName of Object.keys(expected.logs)) {
      const log = await store.log(logName);
      const items = Array.from({ length: APPENDED }, (_, i) => newRecord(logName, i));
      appended.set(logName, items);
      const from = expected.logs[logName].nextSeq;
      // 10 one at a time, a batch of 8, 5 one at a time, a batch of 7.
      let i = 0;
      for (const [count, batch] of [[10, false], [8, true], [5, false], [7, true]] as const) {
        const part = items.slice(i, i + count);
        if (batch) {
          assert.deepEqual(
            await log.appendBatch(part),
            part.map((_, k) => from + i + k),
            `${logName}: batch seqs`,
          );
        } else {
          for (const [k, item] of part.entries()) {
            assert.equal(await log.append(item), from + i + k, `${logName}: append seq`);
          }
        }
        i += count;
      }
      assert.equal(log.nextSeq, from + APPENDED);
    }
  } finally {
    await store.close();
  }
  const endedAt = Date.now();
  const after: Mixed["after"] = new Map();
  const reopened = await Store.open(dir);
  try {
    assert.deepEqual(await reopened.logs(), Object.keys(expected.logs).sort());
    for (const logName of Object.keys(expected.logs)) {
      const log = await reopened.log(logName);
      assert.equal(log.openReport.truncatedBytes, 0, `${logName}: reopen cut nothing`);
      assert.deepEqual(log.openReport.repaired, [], `${logName}: reopen repaired nothing`);
      const exp = expected.logs[logName];
      const items = appended.get(logName)!;
      after.set(logName, {
        log: {
          firstSeq: exp.firstSeq,
          nextSeq: exp.nextSeq + APPENDED,
          segments: [],
          records: [
            ...exp.records,
            ...items.map((item, k) => ({
              seq: exp.nextSeq + k,
              timestamp: -1,
              data: base64Of(item),
            })),
          ],
        },
        read: await readAll(log),
        appendedFrom: exp.nextSeq,
      });
      assert.equal(log.firstSeq, exp.firstSeq, `${logName}: firstSeq after reopen`);
      assert.equal(log.nextSeq, exp.nextSeq + APPENDED, `${logName}: nextSeq after reopen`);
    }
  } finally {
    await reopened.close();
  }
  return { dir, expected, after, sealedBefore, startedAt, endedAt };
}

describe("v1 fixture stores open and read unchanged", () => {
  it("the checked-in fixtures are version-1 segments, and expected.json matches their logs", () => {
    for (const name of NAMES) {
      const exp = expectedOf(name);
      const logs = readdirSync(join(FIXTURES, name, "store")).sort();
      assert.deepEqual(logs, Object.keys(exp.logs).sort(), `${name}: log directories (no LOCK)`);
      for (const [logName, e] of Object.entries(exp.logs)) {
        const logDir = join(FIXTURES, name, "store", logName);
        const versions = segmentVersions(logDir);
        assert.deepEqual([...versions.keys()], e.segments, `${name}/${logName}: segment files`);
        for (const [f, v] of versions) assert.equal(v, 1, `${name}/${logName}/${f}: version`);
      }
    }
  });

  for (const name of NAMES) {
    it(`${name}: every log's firstSeq, nextSeq and records (seq, timestamp, bytes) equal expected.json`, async () => {
      const expected = expectedOf(name);
      const store = await Store.open(copyOf(name));
      try {
        assert.deepEqual(await store.logs(), Object.keys(expected.logs).sort());
        for (const [logName, exp] of Object.entries(expected.logs)) {
          const log = await store.log(logName);
          const cut = name === "torn" ? TORN_BYTES : 0;
          assert.equal(log.openReport.truncatedBytes, cut, `${logName}: torn tail cut`);
          assert.deepEqual(log.openReport.repaired, [], `${logName}: nothing repaired`);
          assert.equal(log.openReport.recreatedSegment, null, `${logName}: nothing recreated`);
          assert.equal(log.firstSeq, exp.firstSeq, `${logName}: firstSeq`);
          assert.equal(log.nextSeq, exp.nextSeq, `${logName}: nextSeq`);
          assert.deepEqual(await readAll(log), exp.records, `${logName}: records`);
        }
      } finally {
        await store.close();
      }
    });
  }

  it("the fixtures cover what they are for", () => {
    const basic = expectedOf("basic").logs.events;
    assert.ok(basic.segments.length >= 4, "basic: several sealed segments and an active one");
    const activeFirst = Number(basic.segments[basic.segments.length - 1].slice(0, 20));
    assert.ok(basic.nextSeq > activeFirst, "basic: the active segment holds records");
    const sizes = basic.records.map((r) => Buffer.from(r.data, "base64").length);
    assert.ok(sizes.includes(0) && sizes.includes(1) && sizes.some((n) => n >= 3000), "sizes");
    assert.ok(expectedOf("retained").logs.events.firstSeq > 0, "retained: firstSeq > 0");
    const multi = expectedOf("multi").logs;
    assert.equal(multi.single.records.length, 1);
    assert.equal(multi.untouched.records.length, 0);
    const en = expectedOf("empty-newest").logs.events;
    assert.equal(Number(en.segments[en.segments.length - 1].slice(0, 20)), en.nextSeq);
    assert.ok(en.records.length > 0, "empty-newest: older segments hold records");
  });
});

describe("a v1 store appended to by the current code (mixed store)", () => {
  for (const name of NAMES) {
    it(`${name}: ${APPENDED} more records per log (some in batches), read back with the old ones across a reopen`, async () => {
      const m = await mixed(name);
      for (const [logName, { log, read, appendedFrom }] of m.after) {
        // Old records exactly as the v1 code read them; new ones in order right after.
        assert.deepEqual(
          read.map((r) => r.seq),
          Array.from({ length: log.nextSeq - log.firstSeq }, (_, k) => log.firstSeq + k),
          `${logName}: seqs contiguous from firstSeq`,
        );
        const old = read.filter((r) => r.seq < appendedFrom);
        assert.deepEqual(old, m.expected.logs[logName].records, `${logName}: old records`);
        const fresh = read.filter((r) => r.seq >= appendedFrom);
        assert.deepEqual(
          fresh.map((r) => ({ ...r, timestamp: -1 })),
          log.records.slice(old.length),
          `${logName}: new records`,
        );
        for (const r of fresh) {
          assert.ok(
            r.timestamp >= m.startedAt && r.timestamp <= m.endedAt,
            `${logName}: seq ${r.seq} timestamp ${r.timestamp} outside the append`,
          );
        }
        // A sealed segment never changes again, whatever code appends to its log.
        for (const [f, bytes] of m.sealedBefore.get(logName)!) {
          assert.equal(
            readFileSync(join(m.dir, logName, f)).toString("base64"),
            bytes,
            `${logName}/${f}: sealed v1 segment changed`,
          );
        }
      }
    });
  }
});

// Needs the version-2 writer: fails until the new format lands (today's code writes version 1).
describe("format v2: new segments of a v1 log are version 2 (fails until the new format lands)", () => {
  for (const name of NAMES) {
    it(`${name}: each log directory holds version-1 and version-2 segments`, async () => {
      const m = await mixed(name);
      for (const [logName, exp] of Object.entries(m.expected.logs)) {
        const versions = [...segmentVersions(join(m.dir, logName)).entries()];
        const desc = versions.map(([f, v]) => `${f}=v${v}`).join(", ");
        assert.ok(
          versions.every(([, v]) => v === 1 || v === 2),
          `${logName}: only versions 1 and 2 (${desc})`,
        );
        // A log whose fixture holds no record (multi/untouched: one empty v1 segment) may lose its
        // only v1 file legitimately (an empty segment holds no data to keep); every other one keeps
        // its v1 records in v1 segments.
        if (exp.records.length > 0) {
          assert.ok(versions.some(([, v]) => v === 1), `${logName}: a version-1 segment (${desc})`);
        }
        assert.ok(versions.some(([, v]) => v === 2), `${logName}: a version-2 segment (${desc})`);
      }
    });
  }
});
