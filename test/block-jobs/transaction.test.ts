import { describe, expect, it } from "vitest";
import { RealClock } from "../../src/core/clock.ts";
import { EventBus } from "../../src/core/events.ts";
import { BlockLayer } from "../../src/block/index.ts";
import { runTransaction } from "../../src/block/jobs/transaction.ts";
import { blockActions } from "../../src/block/jobs/txn-block-actions.ts";

async function layerWithNode() {
  const clock = new RealClock();
  const layer = new BlockLayer({ events: new EventBus(() => clock.wallTime()), clock });
  await layer.blockdevAdd({ driver: "null-co", "node-name": "n0", size: 1 << 20 });
  return layer;
}
const names = (layer: BlockLayer) => layer.findNode("n0")!.bitmaps.map((b) => [b.name, b.enabled, b.count()]);
const run = (layer: BlockLayer, actions: { type: string; data: unknown }[], mode: "individual" | "grouped" = "individual") =>
  runTransaction(blockActions, actions, mode, { layer });

// Texts and outcomes recorded from QEMU 7.2 (test/oracle-extra x-txn-actions).
describe("transaction with block actions", () => {
  it("aborts prepared actions when a later one fails", async () => {
    const layer = await layerWithNode();
    await expect(run(layer, [
      { type: "block-dirty-bitmap-add", data: { node: "n0", name: "t0" } },
      { type: "abort", data: {} },
    ])).rejects.toThrow("Transaction aborted using Abort action");
    expect(names(layer)).toEqual([]);
  });

  it("refuses grouped completion for non-backup actions", async () => {
    const layer = await layerWithNode();
    await expect(run(layer, [{ type: "block-dirty-bitmap-add", data: { node: "n0", name: "t0" } }], "grouped")).rejects.toThrow(
      "Action 'block-dirty-bitmap-add' does not support Transaction property completion-mode = grouped",
    );
    expect(names(layer)).toEqual([]);
  });

  it("commits a chain of bitmap actions in order", async () => {
    const layer = await layerWithNode();
    await run(layer, [{ type: "block-dirty-bitmap-add", data: { node: "n0", name: "t0" } }]);
    layer.findNode("n0")!.bitmaps[0]!.set(0, 65536);
    await run(layer, [
      { type: "block-dirty-bitmap-clear", data: { node: "n0", name: "t0" } },
      { type: "block-dirty-bitmap-disable", data: { node: "n0", name: "t0" } },
      { type: "block-dirty-bitmap-add", data: { node: "n0", name: "t1", disabled: true } },
      { type: "block-dirty-bitmap-merge", data: { node: "n0", target: "t1", bitmaps: ["t0"] } },
      { type: "block-dirty-bitmap-remove", data: { node: "n0", name: "t0" } },
    ]);
    expect(names(layer)).toEqual([["t1", false, 0]]);
  });

  it("undoes enable when a later add fails, in reverse order", async () => {
    const layer = await layerWithNode();
    await run(layer, [{ type: "block-dirty-bitmap-add", data: { node: "n0", name: "t1", disabled: true } }]);
    layer.findNode("n0")!.bitmaps[0]!.set(0, 4096);
    await expect(run(layer, [
      { type: "block-dirty-bitmap-clear", data: { node: "n0", name: "t1" } },
      { type: "block-dirty-bitmap-enable", data: { node: "n0", name: "t1" } },
      { type: "block-dirty-bitmap-add", data: { node: "n0", name: "t1" } },
    ])).rejects.toThrow("Bitmap already exists: t1");
    expect(names(layer)).toEqual([["t1", false, 65536]]);
    await expect(run(layer, [{ type: "block-dirty-bitmap-remove", data: { node: "n0", name: "nope" } }])).rejects.toThrow(
      "Dirty bitmap 'nope' not found",
    );
  });

  it("returns {} for an empty list", async () => {
    const layer = await layerWithNode();
    await expect(run(layer, [])).resolves.toBeUndefined();
  });
});
