import { describe, expect, it } from "vitest";
import { HmpArgs, HmpSyntaxError } from "./hmp-args.ts";

const args = (line: string) => new HmpArgs("cmd", line);
const failure = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof HmpSyntaxError) return e.message;
    throw e;
  }
  return null;
};

describe("HmpArgs", () => {
  it("options: each in args_type order, later ones skipped over, others refused", () => {
    const a = args("-n -f dev");
    expect([...a.flags("nfc")]).toEqual(["n", "f"]);
    expect(a.device()).toBe("dev");
    expect(failure(() => args("-f -n dev").flags("nfc"))).toBe("cmd: unsupported option -n");
    expect(failure(() => args("-x dev").flags("nf"))).toBe("cmd: unsupported option -x");
    // A letter for a later option is left where it is, then read as the device.
    const b = args("-c -n dev");
    expect([...b.flags("nc")]).toEqual(["c"]);
    expect(b.device()).toBe("-n");
  });

  it("strings: words, quotes with the four escapes, and what is refused", () => {
    expect(args('"a b\\"c\\n"').str()).toBe('a b"c\n');
    expect(failure(() => args('"open').str())).toBe("cmd: string expected");
    expect(failure(() => args('"bad\\x"').str())).toBe("cmd: string expected");
    expect(failure(() => args("").device())).toBe("cmd: block device name expected");
    expect(args("  ").optionalStr()).toBeUndefined();
  });

  it.each([
    ["1+2*3", 7],
    ["(1+2)*3", 9],
    ["0x10|1", 17],
    ["010", 8],
    ["-1 & 0xff", 255],
    ["7 % 4 ^ 1", 2],
    ["'a'", 97],
  ])("expression %s = %d", (text, value) => {
    expect(args(text).int32()).toBe(value);
  });

  it.each([
    ["", "unexpected end of expression"],
    ["1/0", "division by zero"],
    ["(1", "')' expected"],
    ["x", "invalid char 'x' in expression"],
    ["$pc", "unknown register"],
    ["5000000000", "'cmd' has failed: integer is for 32-bit values"],
    ["99999999999999999999", "number too large"],
  ])("expression %j fails with %j", (text, message) => {
    expect(failure(() => args(text).int32())).toBe(message);
  });

  it("sizes: MiB by default for 'o' and 'M'", () => {
    expect(args("2").size()).toBe(2 << 20);
    expect(args("64k").size()).toBe(65536);
    expect(args("3").mebibytes()).toBe(3 << 20);
    expect(failure(() => args("-1").mebibytes())).toBe("enter a positive value");
    expect(failure(() => args("x").size())).toBe("invalid size");
  });
});
