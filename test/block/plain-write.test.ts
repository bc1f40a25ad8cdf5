/**
 * BlockNode.write's path for writes nothing watches (no write notifier, no
 * blkdebug rule, no zero detection) must keep what the general path does:
 * in-flight accounting for drain, dirty bitmaps, errors.
 */
import { describe, expect, it } from "vitest";
import { emulator } from "./helpers.ts";

describe("plain guest writes", () => {
  it("are drained and mark dirty bitmaps", async () => {
    const s = await emulator();
    expect(await s.q("blockdev-add", { driver: "null-co", "node-name": "n0", size: 1 << 20, "latency-ns": 30_000_000 })).toEqual({ return: {} });
    expect(await s.q("block-dirty-bitmap-add", { node: "n0", name: "b0", granularity: 65536 })).toEqual({ return: {} });
    const node = s.emu.block.lookupNode(undefined, "n0");
    const t0 = performance.now();
    const w = node.write(new Uint8Array(65536), 131072);
    await node.drain();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25); // drain waited for the write in flight (30 ms latency)
    await w;
    const [bm] = (await s.q("query-named-block-nodes", { flat: true })).return[0]["dirty-bitmaps"];
    expect(bm).toMatchObject({ name: "b0", count: 65536 });
    await s.close();
  });

  it("fail on a read-only node and after the node is gone, and leave no request in flight", async () => {
    const s = await emulator();
    await s.q("blockdev-add", { driver: "null-co", "node-name": "ro", "read-only": true });
    const node = s.emu.block.lookupNode(undefined, "ro");
    await expect(node.write(new Uint8Array(512), 0)).rejects.toMatchObject({ errno: "EPERM" });
    await node.drain(); // resolves: nothing left in flight
    await s.q("blockdev-del", { "node-name": "ro" });
    await expect(node.write(new Uint8Array(512), 0)).rejects.toMatchObject({ errno: "EIO" });
    await s.close();
  });
});
