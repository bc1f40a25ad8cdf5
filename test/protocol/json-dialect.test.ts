/**
 * Differential: odd JSON input, byte for byte, against real QEMU 7.2 and us.
 * Every chunk's replies (errors, cascades, echoed ids) must be identical.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { converse, haveQemu, startEmu, startQemu, type Peer } from "./harness.ts";

const caps = '{"execute":"qmp_capabilities"}';
const q = (id: string) => `{"execute":"query-status","id":${id}}`;

const CASES: (string | Uint8Array)[] = [
  q("TRUE"),
  q("tru"),
  q("truex"),
  q("01"),
  q("-"),
  q("-a"),
  q("1."),
  q("1.e5"),
  q("1e"),
  q("1e+"),
  q("12abc"),
  q("0x1F"),
  q("0e5"),
  q("0E5"),
  q("0.5e3"),
  q("0a"),
  q("-0"),
  q("-0.0"),
  q("[1.0, 1e20, 0.1, 1e400, -1e400, 18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809, 1e-5, 123456789012345678, 5e-324, 1.7976931348623157e308, 0.000123456789]"),
  q("[1,]"),
  q("[1 2]"),
  q("{\"a\" 1}"),
  q("{1:2}"),
  q("{\"a\":1,\"a\":2}"),
  q("{\"a\":}"),
  q("{,}"),
  "]",
  "}",
  "[}",
  "{]",
  ":",
  ",",
  "1 2 ",
  "\"str\"",
  "'single'",
  "{'execute':'query-status','id':'it\\'s \"q\"'}",
  q("\"\\q\""),
  q("\"\\u12\""),
  q("\"\\u12G4\""),
  q("\"\\uD800\""),
  q("\"\\uD800\\u0041\""),
  q("\"\\uDC00\""),
  q("\"\\uFFFE\""),
  q("\"\\u0000x\""),
  q("\"\\uD83D\\uDE00 \\u00e9 \\/ \\b\\f\\n\\r\\t\""),
  q('"tab\there"'),
  q('"a\u0001b"'),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from([0xc3, 0x28]), Buffer.from(`"}`)]),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from([0xc0, 0xaf]), Buffer.from(`"}`)]),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from([0xc0, 0x80]), Buffer.from(`"}`)]),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from([0xef, 0xbf, 0xbe]), Buffer.from(`"}`)]),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(`"}`)]),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from(`"}`)]),
  Buffer.concat([Buffer.from(`{"execute":"query-status","id":"`), Buffer.from("é😀"), Buffer.from(`"}`)]),
  Buffer.from([0x7b, 0x01, 0x7d]),
  Buffer.from([0x00]),
  Buffer.concat([Buffer.from(`{"id":`), Buffer.from([0x80, 0x81]), Buffer.from(`}`)]),
  q("nul") + q("null"),
  `{"execute":"query-status"}{"execute":"query-status","id":2}[1]42 "x" null`,
  "[".repeat(1024) + "]".repeat(1024),
  "[".repeat(1025) + "]".repeat(1025),
  `{"execute":"query-status","id":"x","execute":"y"}`,
  `{"execute":"query-status", "arguments": {"a": [1, {"b": null}]}, "id": {"deep": [true, false, null, "s"]}}`,
];

describe.skipIf(!haveQemu)("JSON dialect vs real QEMU", () => {
  let qemu: Peer;
  let emu: Peer;
  beforeAll(async () => {
    [qemu, emu] = await Promise.all([startQemu(), startEmu()]);
    await converse(qemu, [caps]);
    await converse(emu, [caps]);
  });
  afterAll(async () => {
    await Promise.all([qemu?.stop(), emu?.stop()]);
  });

  it("greets alike", () => {
    expect(emu.greeting).toEqual(qemu.greeting);
  });

  for (const [i, c] of CASES.entries()) {
    const label = typeof c === "string" ? c.slice(0, 70) : `bytes ${Buffer.from(c).toString("hex").slice(0, 60)}`;
    it(`case ${i}: ${label}`, async () => {
      const [ours] = await converse(emu, [c]);
      const [theirs] = await converse(qemu, [c]);
      expect(ours).toEqual(theirs);
    });
  }
});
