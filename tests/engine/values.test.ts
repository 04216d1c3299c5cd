/** The text → JSON encoders on their own (the end-to-end type test is in records.test.ts). */
import assert from "node:assert/strict";
import { encodeArray, encoderFor, scalarKindOf, type ScalarKind } from "../../container/src/source/decoding/values";
import { formatLsn, lsnHex16, parseLsn } from "../../container/src/source/lsn";
import { copyKindOf, transcodeRow, worstCase, type CopyColumn } from "../../container/src/source/decoding/copy-text";
import { copyFieldText } from "../../container/src/source/decoding/copy-field";
import type { TypeShape } from "../../container/src/source/decoding/values";

const scalar = (kind: ScalarKind) => encoderFor({ kind: "scalar", scalar: kind });

describe("engine: value encoders", () => {
  it("writes integers from their digits and floats as numbers, specials as strings", () => {
    assert.equal(scalar("integer")("9223372036854775807"), "9223372036854775807");
    assert.equal(scalar("float")("1.5e+300"), "1.5e+300");
    assert.equal(scalar("float")("-0.1"), "-0.1");
    for (const s of ["NaN", "Infinity", "-Infinity"]) assert.equal(scalar("float")(s), JSON.stringify(s));
    assert.equal(scalar("numeric")("-0.000000000000000000001"), '"-0.000000000000000000001"');
  });

  it("converts timestamps to ISO-8601", () => {
    const tz = scalar("timestamptz");
    assert.equal(tz("2026-11-21 12:00:00+00"), '"2026-11-21T12:00:00Z"');
    assert.equal(tz("12026-11-21 12:00:00.5+00"), '"12026-11-21T12:00:00.5Z"');
    assert.equal(tz("2026-11-21 12:00:00+05:30"), '"2026-11-21T12:00:00+05:30"');
    assert.equal(tz("infinity"), '"infinity"');
    assert.equal(tz("0044-03-15 12:00:00+00 BC"), '"0044-03-15 12:00:00+00 BC"');
    assert.equal(scalar("timestamp")("2026-11-21 00:00:00"), '"2026-11-21T00:00:00"');
  });

  it("encodes bytea hex as base64 and strings with JSON escaping", () => {
    assert.equal(scalar("bytea")("\\xdeadbeef"), JSON.stringify(Buffer.from("deadbeef", "hex").toString("base64")));
    assert.equal(scalar("string")('a"b\\c\n\u0001'), JSON.stringify('a"b\\c\n\u0001'));
    assert.equal(scalar("bool")("t"), "true");
    assert.equal(scalar("bool")("f"), "false");
  });

  it("says where an array literal is malformed but never what it holds (errors reach the logs)", () => {
    const text = scalar("string");
    const cases: [string, RegExp][] = [
      ['{"card 4111-1111', /^malformed array literal: unterminated quoted element at character 17 of 16$/],
      ["card 4111-1111}", /^malformed array literal: expected "\{" at character 1 of 15$/],
      ['{"card 4111-1111"x}', /^malformed array literal: expected the delimiter "," or "\}" at character 18 of 19$/],
    ];
    for (const [literal, message] of cases) {
      assert.throws(() => encodeArray(literal, text, ","), (err: Error) => {
        assert.match(err.message, message);
        assert.ok(!err.message.includes("4111"), err.message);
        return true;
      });
    }
  });

  it("parses array literals: quoting, NULL, nesting, bounds, other delimiters", () => {
    const int = scalar("integer");
    const text = scalar("string");
    assert.equal(encodeArray("{}", int, ","), "[]");
    assert.equal(encodeArray("{1,NULL,-3}", int, ","), "[1,null,-3]");
    assert.equal(encodeArray("[0:1]={7,8}", int, ","), "[7,8]");
    assert.equal(encodeArray("{{1,2},{3,4}}", int, ","), "[[1,2],[3,4]]");
    assert.deepEqual(JSON.parse(encodeArray('{"a,b","c\\"d","e\\\\f",null,"NULL",""}', text, ",")), ["a,b", 'c"d', "e\\f", null, "NULL", ""]);
    assert.equal(encodeArray("{(0,0),(1,1);(2,2),(3,3)}", text, ";"), '["(0,0),(1,1)","(2,2),(3,3)"]');
    const arrayOfArrays = encoderFor({ kind: "array", element: { kind: "scalar", scalar: "json" }, delimiter: "," });
    assert.equal(arrayOfArrays('{"{\\"a\\": 1}",2}'), '[{"a": 1},2]');
    // int2vector-style text is not an array literal: kept as a string.
    assert.equal(encoderFor({ kind: "array", element: { kind: "scalar", scalar: "integer" }, delimiter: "," })("1 2 3"), '"1 2 3"');
  });

  it("maps catalog type names to the contract's kinds", () => {
    assert.equal(scalarKindOf("int8"), "integer");
    assert.equal(scalarKindOf("jsonb"), "json");
    assert.equal(scalarKindOf("uuid"), "string");
    assert.equal(scalarKindOf("money"), "string");
  });

  it("formats LSNs for PostgreSQL and for object names", () => {
    assert.equal(parseLsn("16/B374D848"), 0x16b374d848n);
    assert.equal(formatLsn(0x16b374d848n), "16/B374D848");
    assert.equal(lsnHex16(0x16b374d848n), "00000016B374D848");
  });

  it("transcodes COPY text rows byte for byte exactly as the encoders would", () => {
    const shapes: TypeShape[] = (["integer", "float", "bool", "numeric", "json", "string", "timestamptz", "timestamp", "bytea"] as ScalarKind[]).map((scalar) => ({ kind: "scalar", scalar }));
    shapes.push({ kind: "array", element: { kind: "scalar", scalar: "string" }, delimiter: "," });
    const columns: CopyColumn[] = shapes.map((shape, i) => ({ prefix: Buffer.from(`,"c${i}":`), kind: copyKindOf(shape), encode: encoderFor(shape) }));
    const rows = [
      ["-42", "1.5e+300", "t", "123.4500", '{"s": "a\\nb"}', 'tab\\there "q" \\\\ \u0001 \\v ü', "2026-11-21 12:00:00.5+00", "2026-11-21 12:00:00", "\\x00ff", '{"a b",NULL}'],
      ["\\N", "NaN", "f", "NaN", "[\\n  1\\r\\n]", "", "infinity", "0044-03-15 12:00:00 BC", "\\x", "{}"],
      ["0", "-Infinity", "\\N", "\\N", "\\N", "\\N", "2026-11-21 12:00:00+05:30", "\\N", "\\N", "\\N"],
    ];
    for (const fields of rows) {
      const src = Buffer.from(fields.join("\t") + "\n");
      const out = Buffer.alloc(worstCase(src.length, 200));
      const end = transcodeRow(src, 0, src.length - 1, columns, out, 0);
      const expected = fields.map((f, i) => columns[i].prefix.toString() + (f === "\\N" ? "null" : columns[i].encode(copyFieldText(f)))).join("");
      assert.equal(out.toString("utf8", 0, end), expected);
      assert.ok(!/[\r\n]/.test(out.toString("utf8", 0, end)), "a record stays on one line");
    }
    assert.throws(() => transcodeRow(Buffer.from("1\t2\n"), 0, 3, columns.slice(0, 1), Buffer.alloc(100), 0), /more fields/);
    assert.throws(() => transcodeRow(Buffer.from("1\n"), 0, 1, columns.slice(0, 2), Buffer.alloc(100), 0), /fewer fields/);
  });
});
