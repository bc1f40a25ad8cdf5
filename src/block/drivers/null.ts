/** `null-co`: a sink of a given size; reads leave the buffer alone unless read-zeroes. */
import type { DriverDef, NodeDriver } from "../driver.ts";
import { jsonFilename } from "./raw.ts";

export function nullDriver(name: "null-co" | "null-aio"): DriverDef {
  return {
    name,
    kind: "protocol",
    strongOptions: ["size", "read-zeroes"],
    fields: {
      size: { type: "int" },
      "latency-ns": { type: "int" },
      "read-zeroes": { type: "bool" },
    },
    async open(ctx): Promise<NodeDriver> {
      let size = (ctx.options.size as number | undefined) ?? 1 << 30;
      const readZeroes = (ctx.options["read-zeroes"] as boolean | undefined) ?? false;
      const plain = ctx.options.size === undefined && ctx.options["read-zeroes"] === undefined;
      return {
        size: () => size,
        async read(buf) {
          if (readZeroes) buf.fill(0);
        },
        async write() {},
        async writeZeroes() {},
        async discard() {},
        async blockStatus(offset, length) {
          const len = Math.max(0, Math.min(length, size - offset));
          return { offset, length: len, allocated: readZeroes, zero: readZeroes, data: false };
        },
        async flush() {},
        async resize(n) {
          size = n;
        },
        async close() {},
        filename: () => (plain ? `${name}://` : jsonFilename(ctx.node)),
        imageInfo: () => ({ format: name }),
        actualSize: () => 0,
      };
    },
  };
}
