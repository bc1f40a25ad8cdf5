/** BlockdevOptions visiting: QMP JSON and -blockdev keyval strings against one table, QEMU's texts. */
import { describe, expect, it } from "vitest";
import { nestKeyval } from "../../src/block/index.ts";
import { visitBlockdevOptions, type Fields } from "../../src/block/options.ts";
import { blkdebugDriver } from "../../src/block/drivers/blkdebug.ts";
import { nullDriver } from "../../src/block/drivers/null.ts";

const drivers = new Map<string, { fields: Fields }>([
  ["null-co", nullDriver("null-co")],
  ["blkdebug", blkdebugDriver],
]);

describe("visitBlockdevOptions", () => {
  it("converts keyval strings per schema: booleans, sizes with suffixes, lists", () => {
    const o = visitBlockdevOptions(
      "",
      nestKeyval({
        driver: "blkdebug",
        "read-only": "on",
        image: "x",
        "inject-error.0.event": "read_aio",
        "inject-error.0.errno": "28",
        "inject-error.0.once": "on",
        "inject-error.1.event": "write_aio",
      }),
      drivers,
      "keyval",
    );
    expect(o.common.readOnly).toBe(true);
    expect(o.specific["inject-error"]).toEqual([{ event: "read_aio", errno: 28, once: true }, { event: "write_aio" }]);
    expect(visitBlockdevOptions("", { driver: "null-co", size: "0x1000" }, drivers, "keyval").specific.size).toBe(4096);
    expect(visitBlockdevOptions("", { driver: "null-co", size: "4096" }, drivers, "keyval").specific.size).toBe(4096);
  });

  it("reports QEMU's messages in member order", () => {
    const v = (x: Record<string, unknown>, origin: "json" | "keyval" = "json") => () => visitBlockdevOptions("", x, drivers, origin);
    expect(v({})).toThrow("Parameter 'driver' is missing");
    expect(v({ driver: "nope" })).toThrow("Parameter 'driver' does not accept value 'nope'");
    expect(v({ driver: "null-co", "read-only": 1 })).toThrow("Invalid parameter type for 'read-only', expected: boolean");
    expect(v({ driver: "null-co", "read-only": "maybe" }, "keyval")).toThrow("Parameter 'read-only' expects 'on' or 'off'");
    expect(v({ driver: "null-co", size: "big" }, "keyval")).toThrow("Parameter 'size' expects integer");
    expect(v({ driver: "null-co", size: "1.5k" }, "keyval")).toThrow("Parameter 'size' expects integer");
    expect(v({ driver: "null-co", "latency-ns": "1k" }, "keyval")).toThrow("Parameter 'latency-ns' expects integer");
    expect(v({ driver: "null-co", bogus: 1, size: "x" })).toThrow("Invalid parameter type for 'size', expected: integer");
    expect(v({ driver: "null-co", bogus: 1 })).toThrow("Parameter 'bogus' is unexpected");
    expect(v({ driver: "blkdebug", image: "x", "inject-error": [{ errno: 5 }] })).toThrow("Parameter 'inject-error[0].event' is missing");
    expect(v({ driver: "blkdebug", image: "x", "inject-error": [{ event: "bogus" }] })).toThrow("Parameter 'event' does not accept value 'bogus'");
    expect(v({ driver: "blkdebug" })).toThrow("Parameter 'image' is missing");
    expect(v({ driver: "blkdebug", image: 5 })).toThrow("Invalid parameter type for 'image', expected: BlockdevRef");
  });
});
