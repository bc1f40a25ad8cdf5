import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { JsonFloat } from "./reader.ts";
import { formatG17, frame, qdictBucket, quoteString, serialize } from "./writer.ts";

const havePython = spawnSync("which", ["python3"]).status === 0;

describe("json-writer", () => {
  it("orders members like QEMU's QDict (bucket, then last inserted first)", () => {
    // Verified against QEMU 7.2 output.
    expect(serialize({ major: 7, minor: 2, micro: 22 })).toBe('{"micro": 22, "minor": 2, "major": 7}');
    expect(serialize({ running: true, singlestep: false, status: "running" })).toBe(
      '{"status": "running", "singlestep": false, "running": true}',
    );
    expect(serialize({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 } })).toBe(
      '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}',
    );
    expect(serialize({ error: { class: "GenericError", desc: "x" }, id: 1 })).toBe(
      '{"id": 1, "error": {"class": "GenericError", "desc": "x"}}',
    );
    expect(serialize({ return: {}, id: 1 })).toBe('{"return": {}, "id": 1}');
    expect(qdictBucket("QMP")).toBe(99);
  });

  it("escapes like QEMU: ASCII only, upper-case hex, surrogate pairs, '/' kept", () => {
    expect(quoteString("a/b\u00e9\u{1F600}\u007f\u0001\"\\\b\f\n\r\t")).toBe(
      '"a/b\\u00E9\\uD83D\\uDE00\\u007F\\u0001\\"\\\\\\b\\f\\n\\r\\t"',
    );
    expect(quoteString("\0")).toBe('"\\u0000"');
  });

  it("prints numbers like QEMU: exact integers, %.17g floats", () => {
    expect(serialize([1, -7, 18446744073709551615n, -9223372036854775808n, new JsonFloat(1), new JsonFloat(1e20), 0.1, Infinity, -Infinity, new JsonFloat(-0)])).toBe(
      "[1, -7, 18446744073709551615, -9223372036854775808, 1, 1e+20, 0.10000000000000001, inf, -inf, -0]",
    );
    expect(formatG17(1.8446744073709552e19)).toBe("1.8446744073709552e+19");
    expect(formatG17(1e-5)).toBe("1.0000000000000001e-05");
    expect(formatG17(5e-324)).toBe("4.9406564584124654e-324");
  });

  it.skipIf(!havePython)("formats random doubles exactly like C's %.17g", () => {
    const vals: number[] = [];
    const buf = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 3000; i++) {
      for (let b = 0; b < 8; b++) buf.setUint8(b, Math.floor(Math.random() * 256));
      const x = buf.getFloat64(0);
      if (Number.isFinite(x)) vals.push(x);
    }
    for (let e = -30; e <= 30; e++) vals.push(1.2345 * 10 ** e, 10 ** e, -(10 ** e) / 3);
    const py = spawnSync("python3", ["-c", "import sys\nfor l in sys.stdin: print('%.17g' % float(l))"], {
      input: vals.map((v) => v.toExponential(20)).join("\n") + "\n",
      encoding: "utf8",
    });
    const expected = py.stdout.trim().split("\n");
    expect(vals.map(formatG17)).toEqual(expected);
  });

  it("pretty-prints exactly as QEMU's pretty=on monitor", () => {
    // Captured from qemu-system-x86_64 7.2 with -mon ...,pretty=on.
    const expected =
      '{\r\n    "return": {\r\n        "status": "prelaunch",\r\n        "singlestep": false,\r\n        "running": false\r\n    },\r\n' +
      '    "id": {\r\n        "a": {\r\n        },\r\n        "b": [\r\n        ],\r\n        "c": [\r\n            1,\r\n            {\r\n' +
      '                "d": 2\r\n            }\r\n        ]\r\n    }\r\n}\r\n';
    const msg = {
      return: { running: false, singlestep: false, status: "prelaunch" },
      id: { a: {}, b: [], c: [1, { d: 2 }] },
    };
    expect(frame(msg, true)).toBe(expected);
    expect(frame({ return: {} }, true)).toBe('{\r\n    "return": {\r\n    }\r\n}\r\n');
    expect(frame({ return: {} })).toBe('{"return": {}}\r\n');
  });
});
