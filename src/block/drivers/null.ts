/** `null-co`: a sink of a given size; reads leave the buffer alone unless read-zeroes. */
import type { DriverDef, NodeDriver } from "../driver.ts";
import { jsonFilename } from "./raw.ts";

/** One settled promise for every request without latency (a sink is asked thousands of times a second). */
const RESOLVED: Promise<void> = Promise.resolve();

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
      // latency-ns delays every request on the host's real-time clock (QEMU_CLOCK_REALTIME).
      const latencyMs = ((ctx.options["latency-ns"] as number | undefined) ?? 0) / 1e6;
      const delay = () => (latencyMs > 0 ? new Promise<void>((r) => setTimeout(r, latencyMs)) : RESOLVED);
      return {
        size: () => size,
        async read(buf) {
          await delay();
          if (readZeroes) buf.fill(0);
        },
        write: delay,
        writeZeroes: delay,
        discard: delay,
        async blockStatus(offset, length) {
          const len = Math.max(0, Math.min(length, size - offset));
          return { offset, length: len, allocated: readZeroes, zero: readZeroes, data: false };
        },
        flush: delay,
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
