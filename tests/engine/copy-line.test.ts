/**
 * The snapshot's one-pass COPY transcoding (issue 13): transcodeLine, which finds a row's fields
 * and its end while it writes them, writes exactly transcodeRow's bytes (and the encoders'), and
 * CopyBlockTranscoder lands the same records whatever the framing of the COPY stream it is given
 * (whole blocks, one row per piece as the socket tap hands them over, arbitrary cuts).
 */
import assert from "node:assert/strict";
import { copyKindOf, lineEnd, transcodeLine, transcodeRow, worstCase, type CopyColumn } from "../../container/src/source/decoding/copy-text";
import { CopyBlockTranscoder, type RecordBlock, type RangeSpec } from "../../container/src/source/decoding/copy-block";
import { copyFieldText } from "../../container/src/source/decoding/copy-field";
import { encoderFor, type ScalarKind, type TypeShape } from "../../container/src/source/decoding/values";

const shapes: TypeShape[] = (["integer", "float", "bool", "numeric", "json", "string", "timestamptz", "timestamp", "bytea", "string"] as ScalarKind[]).map((scalar) => ({ kind: "scalar", scalar }));
shapes.push({ kind: "array", element: { kind: "scalar", scalar: "string" }, delimiter: "," });
const columns: CopyColumn[] = shapes.map((shape, i) => ({ prefix: Buffer.from(`,"c${i}":`), kind: copyKindOf(shape), encode: encoderFor(shape) }));

/** A small deterministic generator (the test must fail the same way every run). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** PostgreSQL's COPY text escaping of a value (CopyAttributeOutText): backslash, the delimiter and \b \f \n \r \t \v. */
function copyEscape(value: string): string {
  const letters: Record<string, string> = { "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v" };
  return value.replace(/[\\\b\f\n\r\t\v]/g, (c) => letters[c]);
}

function randomText(next: () => number, length: number): string {
  const pieces = ["a", "Z", " ", '"', "\\", "\t", "\n", "\r", "\u0001", "\u001f", "\u000b", "\b", "\f", "ü", "é", "€", "😀", "{", "}", ",", "\\N", "N"];
  let out = "";
  for (let i = 0; i < length; i++) out += pieces[Math.floor(next() * pieces.length)];
  return out;
}

/** One row's COPY fields (NULL as \N), one per column above. */
function randomRow(next: () => number, long = 0): string[] {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const nul = () => next() < 0.1;
  const fields = [
    pick(["0", "-42", "9223372036854775807", "-9223372036854775808", String(Math.floor(next() * 1e9))]),
    pick(["1.5", "-0", "1.5e+300", "NaN", "Infinity", "-Infinity", "3.14159265358979"]),
    pick(["t", "f"]),
    pick(["123.4500", "NaN", "-0.000001", "12345678901234567890.123456789"]),
    pick(['{"s": "a\\\\nb"}', '{"k": [1, 2, {"z": null}]}', "[\\n  1\\r\\n]", '"\\\\u00e9"', "{}", '{"é": "😀"}']),
    copyEscape(randomText(next, long > 0 ? long : Math.floor(next() * 40))),
    pick(["2026-11-21 12:00:00.5+00", "2026-11-21 12:00:00+00", "infinity", "-infinity", "2026-11-21 12:00:00+05:30", "0044-03-15 12:00:00+00 BC"]),
    pick(["2026-11-21 12:00:00", "2026-11-21 12:00:00.123456", "0044-03-15 12:00:00 BC", "infinity"]),
    pick(["\\\\x", "\\\\x00ff10", "\\\\x" + "ab".repeat(Math.floor(next() * 50))]),
    // Hand-written escapes COPY FROM accepts (octal, hex, an escaped ordinary character).
    pick(["\\001x", "\\x41\\x4", "\\101\\60", "\\q", "", "plain"]),
    pick(['{"a b",NULL}', "{}", '{"c,d","e\\\\"f"}']),
  ];
  return fields.map((f) => (nul() ? "\\N" : f));
}

const expectedRecord = (fields: string[]) => fields.map((f, i) => columns[i].prefix.toString() + (f === "\\N" ? "null" : columns[i].encode(copyFieldText(f)))).join("");

describe("engine: one-pass COPY row transcoding (transcodeLine)", () => {
  it("writes exactly transcodeRow's and the encoders' bytes, and finds the row's end", () => {
    const next = random(13);
    for (let n = 0; n < 3000; n++) {
      const fields = randomRow(next, n % 500 === 0 ? 5000 : 0);
      const line = fields.join("\t");
      // More rows follow in the same buffer, as in a block of COPY bytes.
      const src = Buffer.from(`${line}\n1\t2\n`);
      const rowEnd = Buffer.byteLength(line);
      const bound = worstCase(src.length, 0);
      const a = Buffer.alloc(bound);
      const b = Buffer.alloc(bound);
      const viaRow = transcodeRow(src, 0, rowEnd, columns, a, 0);
      const viaLine = transcodeLine(src, 0, src.length, columns, b, 0);
      assert.equal(lineEnd.at, rowEnd, `row ${n}: its end`);
      assert.equal(b.toString("utf8", 0, viaLine), a.toString("utf8", 0, viaRow), `row ${n}: ${JSON.stringify(line)}`);
      assert.equal(b.toString("utf8", 0, viaLine), expectedRecord(fields), `row ${n}`);
      // The last row of a stream may come without its newline: limit is then its end.
      const bare = Buffer.from(line);
      const viaBare = transcodeLine(bare, 0, bare.length, columns, b, 0);
      assert.equal(lineEnd.at, bare.length);
      assert.equal(b.toString("utf8", 0, viaBare), expectedRecord(fields));
    }
  });

  it("refuses a row with fewer or more fields than columns", () => {
    const two = columns.slice(0, 2);
    assert.throws(() => transcodeLine(Buffer.from("1\n2\t3\n"), 0, 6, two, Buffer.alloc(200), 0), /fewer fields/);
    assert.throws(() => transcodeLine(Buffer.from("1\t2\t3\n"), 0, 6, two, Buffer.alloc(200), 0), /more fields/);
    assert.throws(() => transcodeLine(Buffer.from("1"), 0, 1, two, Buffer.alloc(200), 0), /fewer fields/);
    const text = [columns[5], columns[5]];
    assert.throws(() => transcodeLine(Buffer.from("a\\tb\n"), 0, 5, text, Buffer.alloc(200), 0), /fewer fields/);
  });
});

describe("engine: CopyBlockTranscoder in any framing", () => {
  const spec: RangeSpec = {
    label: "public.t",
    columns: shapes.map((shape, i) => ({ name: `c${i}`, shape })),
    lsn: "42",
    tsMs: 1_795_000_000_000,
    maxRecordBytes: 64 * 1024 * 1024,
    base: 0,
    limit: 10_000_000_000,
    index: 0,
    ranges: 1,
  };
  const next = random(7);
  // Short rows, a few longer than the one-pass window (4 KiB) and one larger than a large row (256 KiB).
  const rows = Array.from({ length: 4000 }, (_v, i) => randomRow(next, i === 1234 ? 300_000 : i % 400 === 0 ? 6000 : 0));
  const stream = Buffer.from(rows.map((r) => r.join("\t") + "\n").join(""));

  function transcode(feed: (t: CopyBlockTranscoder) => void): { bytes: string; seqs: number[] } {
    const blocks: RecordBlock[] = [];
    const t = new CopyBlockTranscoder(spec, (block) => blocks.push({ ...block, data: Buffer.from(block.data) }));
    feed(t);
    t.end();
    assert.equal(t.rows, rows.length);
    const seqs: number[] = [];
    for (const b of blocks) for (let i = 0; i < b.count; i++) seqs.push(b.firstSeq + i);
    for (const b of blocks) assert.equal(b.ends[b.count - 1], b.data.length, "a block holds whole records");
    return { bytes: Buffer.concat(blocks.map((b) => b.data)).toString(), seqs };
  }

  it("lands the same records from whole blocks, one row per piece, and arbitrary cuts", () => {
    const whole = transcode((t) => t.push(stream));
    const lines = whole.bytes.split("\n").slice(0, -1);
    assert.equal(lines.length, rows.length);
    assert.deepEqual(whole.seqs, Array.from({ length: rows.length }, (_v, i) => i + 1));
    for (const [i, line] of lines.entries()) {
      assert.equal(line, `{"__op":"r","__deleted":"false","__lsn":42,"__seq":${i + 1},"__ts_ms":${spec.tsMs}${expectedRecord(rows[i])}}`, `row ${i}`);
    }
    // One row per piece, each a view into a larger buffer (as the socket tap hands them over).
    const perRow = transcode((t) => {
      let at = 0;
      for (const r of rows) {
        const length = Buffer.byteLength(r.join("\t")) + 1;
        t.write(stream, at, at + length);
        at += length;
      }
    });
    assert.equal(perRow.bytes, whole.bytes);
    assert.deepEqual(perRow.seqs, whole.seqs);
    // Cut anywhere (inside fields, escapes, UTF-8 sequences, right before or after a newline).
    for (const seed of [1, 2, 3]) {
      const cut = random(seed);
      const pieces = transcode((t) => {
        for (let at = 0; at < stream.length; ) {
          const length = 1 + Math.floor(cut() * (cut() < 0.5 ? 40 : 9000));
          const to = Math.min(stream.length, at + length);
          // Through a copy the transcoder may not keep: whatever it holds on to, it must have copied.
          const piece = Buffer.from(stream.subarray(at, to));
          if (cut() < 0.5) t.write(piece, 0, piece.length);
          else t.push(piece);
          piece.fill(0);
          at = to;
        }
      });
      assert.equal(pieces.bytes, whole.bytes, `cuts of seed ${seed}`);
      assert.deepEqual(pieces.seqs, whole.seqs);
    }
  });

  it("cuts its blocks where a batcher's batch seals when it is given the batch's room, in the batcher's reused memory", () => {
    // A stand-in for the batcher's open batch: at most 300 records or 50,000 bytes (the record reaching them is its last).
    const batch = { records: 0, bytes: 0 };
    const blocks: RecordBlock[] = [];
    let sealedAt = 0;
    // The batcher's blocks come back dirty and often larger than asked for: a copy is kept, then the block is reused.
    const spare: Buffer[] = [];
    let asked = 0;
    const block = (bytes: number) => {
      asked++;
      const reused = spare.findIndex((b) => b.length >= bytes);
      return reused >= 0 ? spare.splice(reused, 1)[0].fill(0x5c) : Buffer.alloc(bytes + (asked % 3) * 70_000, 0x22);
    };
    const t = new CopyBlockTranscoder(
      spec,
      (block) => {
        blocks.push({ ...block, data: Buffer.from(block.data) });
        spare.push(Buffer.from(block.data.buffer, block.data.byteOffset, block.data.buffer.byteLength - block.data.byteOffset));
        batch.records += block.count;
        batch.bytes += block.data.length;
        assert.ok(batch.records <= 300, "a block never runs past its batch's records");
        if (batch.records >= 300 || batch.bytes >= 50_000) {
          assert.ok(batch.bytes - (block.ends[block.count - 2] ?? 0) <= 50_000 || block.count === 1 || batch.records === 300, "nor past the record that fills its bytes");
          batch.records = batch.bytes = 0;
          sealedAt++;
        }
      },
      { room: () => ({ records: 300 - batch.records, bytes: 50_000 - batch.bytes }), block },
    );
    let at = 0;
    for (const r of rows) {
      const length = Buffer.byteLength(r.join("\t")) + 1;
      t.write(stream, at, at + length);
      at += length;
    }
    t.end();
    assert.equal(Buffer.concat(blocks.map((b) => b.data)).toString(), transcode((w) => w.push(stream)).bytes, "the same records");
    // A batch is one block but where a row longer than the one-pass window (its worst case more than a block's slack) ends one early.
    const split = blocks.length - 1 - sealedAt;
    const long = rows.filter((r) => Buffer.byteLength(r.join("\t")) > 4096).length;
    assert.ok(sealedAt > 20 && split <= long, `${split} of ${sealedAt} batches took more than one block (${long} long rows)`);
    assert.ok(spare.length < asked, "blocks were reused");
  });
});
