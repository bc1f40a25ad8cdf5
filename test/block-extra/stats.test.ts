/**
 * query-blockstats accounting of guest-style I/O (x-qmpemu-guest-io on a
 * named backend, our stand-in for a guest device), on qtest's virtual clock
 * so times are exact; qemu-io and node-name I/O are not accounted, as in QEMU.
 */
import { describe, expect, it } from "vitest";
import type { VirtualClock } from "../../src/core/clock.ts";
import { emulator } from "../block/helpers.ts";

type Stats = Record<string, number | boolean | unknown[]>;

describe("query-blockstats accounting", () => {
  it("counts reads, writes, zeroes, discards and flushes of guest I/O; idle time from the last request", async () => {
    const s = await emulator({
      clock: "virtual",
      blockdevs: [{ driver: "null-co", "node-name": "n0", size: 1048576 }],
      drives: [{ if: "none", id: "d0", driver: "null-co", size: "1048576", discard: "unmap" }],
    });
    try {
      const stats = async (): Promise<Stats> => (await s.q("query-blockstats")).return[0].stats;
      expect(await stats()).not.toHaveProperty("idle_time_ns");
      const io = (op: string, offset = 0, length = 4096) => s.q("x-qmpemu-guest-io", { device: "d0", op, offset, length });
      await io("write", 0, 8192);
      await io("read", 0, 4096);
      await io("read", 4096, 512);
      await io("zero", 65536, 4096);
      await io("discard", 0, 4096);
      await io("flush");
      // Past the end: a failed request, not counted as done.
      expect((await io("read", 1048576, 512)).return.ok).toBe(false);
      // Neither HMP qemu-io nor I/O on a node-name are guest requests.
      await s.hmp('qemu-io d0 "write 0 512"');
      await s.q("x-qmpemu-guest-io", { node: "n0", op: "write", offset: 0, length: 512 });
      (s.emu.clock as VirtualClock).step(5000);
      const st = await stats();
      expect(st).toMatchObject({
        rd_bytes: 4608, rd_operations: 2, wr_bytes: 12288, wr_operations: 2, unmap_bytes: 4096, unmap_operations: 1,
        flush_operations: 1, failed_rd_operations: 1, failed_wr_operations: 0, rd_total_time_ns: 0, wr_total_time_ns: 0,
        idle_time_ns: 5000, wr_highest_offset: 69632, account_invalid: true, account_failed: true,
      });
      const n0 = (await s.q("query-blockstats", { "query-nodes": true })).return.find((x: { "node-name": string }) => x["node-name"] === "n0");
      expect(n0.stats).toMatchObject({ wr_operations: 0, wr_highest_offset: 512, account_invalid: false });
      expect(n0.stats).not.toHaveProperty("idle_time_ns");
    } finally {
      await s.close();
    }
  });
});
