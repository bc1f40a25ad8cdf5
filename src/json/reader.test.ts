import { describe, expect, it } from "vitest";
import { JsonFloat, JsonReader, JSON_LIMITS, type ReaderItem } from "./reader.ts";

const enc = new TextEncoder();

function readAll(...chunks: (string | Uint8Array)[]): ReaderItem[] {
  const r = new JsonReader();
  const out: ReaderItem[] = [];
  for (const c of chunks) {
    r.push(typeof c === "string" ? enc.encode(c) : c);
    out.push(...r.drain());
  }
  return out;
}

const STREAM =
  `{"execute":"qmp_capabilities"}{"execute": "query-status", "id": 1}\n` +
  `{'execute':'x','arguments':{'a':[1,2.5,-3,true,false,null,"\\u00e9\\ud83d\\ude00"]},"id":"it\\'s"}` +
  `[1] 42 "str" {"bad":}{"big":18446744073709551615,"neg":-9223372036854775808,"f":1.0,"g":1e400}` +
  `{"id":TRUE}{"after":"recovery","é":"ü"}`;

describe("JsonReader", () => {
  it("parses concatenated messages and QEMU's extensions", () => {
    const items = readAll(STREAM);
    expect(items.map((i) => i.error ?? i.value)).toEqual([
      { execute: "qmp_capabilities" },
      { execute: "query-status", id: 1 },
      { execute: "x", arguments: { a: [1, 2.5, -3, true, false, null, "é😀"] }, id: "it's" },
      [1],
      42,
      "str",
      "JSON parse error, expecting value",
      { big: 18446744073709551615n, neg: -9223372036854775808n, f: new JsonFloat(1), g: Infinity },
      "JSON parse error, stray 'T'",
      "JSON parse error, expecting value",
      { after: "recovery", é: "ü" },
    ]);
  });

  it("gives the same items whatever the cut, at every byte offset", () => {
    const bytes = enc.encode(STREAM);
    const whole = readAll(bytes);
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(readAll(bytes.subarray(0, cut), bytes.subarray(cut))).toEqual(whole);
    }
  });

  it("gives the same items when fed one byte at a time, and at every pair of cuts (sampled)", () => {
    const bytes = enc.encode(STREAM);
    const whole = readAll(bytes);
    expect(readAll(...Array.from(bytes, (b) => Uint8Array.of(b)))).toEqual(whole);
    for (let a = 0; a < bytes.length; a += 7) {
      for (let b = a; b <= bytes.length; b += 13) {
        expect(readAll(bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b))).toEqual(whole);
      }
    }
  });

  it("keeps a bare scalar pending until the next byte ends it", () => {
    const r = new JsonReader();
    r.push(enc.encode("42"));
    expect(r.next()).toBeUndefined();
    r.push(enc.encode(" "));
    expect(r.next()).toEqual({ value: 42 });
  });

  it("is pull-based: unread input stays buffered", () => {
    const r = new JsonReader();
    r.push(enc.encode('{"a":1}{"b":2}{"c":3}'));
    expect(r.next()).toEqual({ value: { a: 1 } });
    expect(r.buffered).toBe(14);
    expect(r.next()).toEqual({ value: { b: 2 } });
    r.reset();
    expect(r.next()).toBeUndefined();
  });

  it("classifies numbers like QEMU (int64, uint64, double)", () => {
    const vals = readAll("[9007199254740993, -9223372036854775809, 18446744073709551616, -0, 1.5e3, 0.5]").map((i) => i.value);
    expect(vals).toEqual([[9007199254740993n, new JsonFloat(-9223372036854775809), new JsonFloat(18446744073709551616), 0, new JsonFloat(1500), 0.5]]);
  });

  it("treats a leading zero like QEMU 7.2: 0 ends at a letter, a digit is an error", () => {
    expect(readAll("[0x]").map((i) => i.error ?? i.value)).toEqual(["JSON parse error, expected separator in list"]);
    expect(readAll("01 ").map((i) => i.error ?? i.value)).toEqual(["JSON parse error, stray '01'"]);
  });

  it("enforces the nesting limit and cascades like QEMU", () => {
    expect(readAll("[".repeat(1024) + "]".repeat(1024))).toEqual([{ value: expect.any(Array) }]);
    const items = readAll("[".repeat(1025) + "]".repeat(1025));
    expect(items[0]).toEqual({ error: "JSON nesting depth limit exceeded" });
    expect(items).toHaveLength(1026);
  });

  it("enforces the token count limit", () => {
    const n = JSON_LIMITS.maxTokens;
    const items = readAll("[" + "1,".repeat(n / 2) + "1]");
    expect(items[0]).toEqual({ error: "JSON token count limit exceeded" });
  });

  it("reports string errors with QEMU's texts", () => {
    const err = (s: string | Uint8Array) => readAll(s)[0]?.error;
    expect(err('"\\x" ')).toBe("JSON parse error, invalid escape sequence in string");
    expect(err('"\\uD800"')).toBe("JSON parse error, \\uD800 is not a valid Unicode character");
    expect(err('"\\u12"')).toBe('JSON parse error, \\u12" is not a valid Unicode character');
    expect(err(Uint8Array.of(0x22, 0xc3, 0x28, 0x22))).toBe("JSON parse error, invalid UTF-8 sequence in string");
    expect(err(Uint8Array.of(0x22, 0x61, 0x01))).toBe("JSON parse error, stray '\"a\u0001'");
    expect(err(Uint8Array.of(0x22, 0x61, 0x00))).toBe("JSON parse error, stray '\"a'");
    expect(err(Uint8Array.of(0xff))).toBe("JSON parse error, stray '\ufffd'");
    expect(readAll(Uint8Array.of(0x22, 0xc0, 0x80, 0x22))[0]).toEqual({ value: "\0" });
  });

  it("reports structure errors with QEMU's texts", () => {
    const err = (s: string) => readAll(s)[0]?.error;
    expect(err('{"a" 1}')).toBe("JSON parse error, missing : in object pair");
    expect(err("{1:2}")).toBe("JSON parse error, key is not a string in object");
    expect(err('{"a":1 "b":2}')).toBe("JSON parse error, expected separator in dict");
    expect(err("[1 2]")).toBe("JSON parse error, expected separator in list");
    expect(err('{"a":1,"a":2}')).toBe("JSON parse error, duplicate key");
    expect(err("[nul]")).toBe("JSON parse error, invalid keyword 'nul'");
  });

  it("keeps __proto__ as an ordinary member", () => {
    const v = readAll('{"__proto__": {"x": 1}}')[0]!.value as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
  });
});

describe("JsonReader token size limit", () => {
  it("cuts a string token longer than 64 MiB and reads on from there", () => {
    const r = new JsonReader();
    const big = new Uint8Array(JSON_LIMITS.maxTokenBytes + 10).fill(0x61);
    big[0] = 0x22;
    r.push(big);
    r.push(new TextEncoder().encode('"{"a":1}'));
    // QEMU's lexer gives up once the token passes 64 MiB and restarts right
    // there: the other 9 'a's are a keyword, then `"{"` is a string, and so on.
    expect(r.drain()).toEqual([
      { error: "JSON token size limit exceeded" },
      { error: "JSON parse error, invalid keyword 'aaaaaaaaa'" },
      { value: "{" },
      { error: "JSON parse error, invalid keyword 'a'" },
    ]);
  });
});
