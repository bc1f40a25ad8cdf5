/**
 * The graph-change API the block jobs build on: filters in and out,
 * node replacement, backing changes with their op blockers, job blockers,
 * external users' permissions, write notifiers, bitmap successors, reopen.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlockBackend, BlockLayer, type BlockNode, type DriverDef, type ExternalParent, Perm, PERM_ALL } from "../../src/block/index.ts";
import { bitmapAdd, bitmapClear, bitmapDisable, bitmapMerge } from "../../src/block/bitmap-ops.ts";
import { RealClock } from "../../src/core/clock.ts";
import { EventBus } from "../../src/core/events.ts";
import { blockGraph } from "../../src/block/query.ts";
import { hasQemuImg, sh, tmpDir } from "./helpers.ts";

/** A pass-through filter like mirror_top: forwards I/O, unshares write on its child when it has parents. */
const passFilter: DriverDef = {
  name: "test-filter",
  kind: "filter",
  internal: true,
  fields: { file: { type: "ref", required: true } },
  primaryChild: { key: "file", role: "file" },
  childPerms(node, _c, perm, shared) {
    return node.parents.length ? [perm, shared & ~Perm.WRITE] : [perm, shared];
  },
  async open(ctx) {
    const edge = (await ctx.openChild("file", "file"))!;
    const n = () => edge.node;
    return {
      size: () => n().size(),
      read: (b, o) => n().read(b, o),
      write: (d, o) => n().write(d, o),
      writeZeroes: (o, l, x) => n().writeZeroes(o, l, x),
      discard: (o, l) => n().discard(o, l),
      blockStatus: (o, l) => n().blockStatus(o, l),
      flush: () => n().flush(),
      resize: (s) => n().resize(s),
      close: async () => {},
      filename: () => n().driver.filename(),
    };
  },
};

function job(id: string): ExternalParent {
  return { kind: "block-job", graphName: id, describe: () => `backup job '${id}'` };
}

let layer: BlockLayer;
const d = tmpDir();

beforeEach(() => {
  const clock = new RealClock();
  layer = new BlockLayer({ clock, events: new EventBus(() => clock.wallTime()) });
  layer.registerDriver(passFilter);
});
afterEach(async () => {
  await layer.close();
});

async function nullNode(name: string, size = 1 << 20): Promise<BlockNode> {
  return layer.blockdevAdd({ driver: "null-co", "node-name": name, size, "read-zeroes": true });
}

describe("graph changes", () => {
  it("insertFilter moves parents up, removeFilter moves them back", async () => {
    const src = await nullNode("s");
    const userEdge = layer.attachUser(job("j"), src, "main", Perm.CONSISTENT_READ, PERM_ALL);
    const blk = new BlockBackend("drive0");
    const blkEdge = layer.attachUser(blk, src, "root", Perm.CONSISTENT_READ, PERM_ALL);
    const filter = await layer.openNode({ driver: "test-filter", "node-name": "flt", file: "s" }, { allowInternal: true });
    layer.insertFilter(filter, src);
    // Backends follow the graph change, jobs stay on the node they hold (stay_at_node).
    expect(blkEdge.node).toBe(filter);
    expect(userEdge.node).toBe(src);
    expect(src.parents.map((p) => p.describeParent())).toEqual(["node 'flt'", "backup job 'j'"]);
    expect(layer.isRoot(src)).toBe(false);
    // Writing the filtered node directly now conflicts with the filter.
    expect(() => layer.attachUser(job("w"), src, "w", Perm.WRITE, PERM_ALL)).toThrow(
      "Permission conflict on node 's': permissions 'write' are both required by backup job 'w' (uses node 's' as 'w' child) and unshared by node 'flt' (uses node 's' as 'file' child).",
    );
    await layer.removeFilter(filter);
    expect(blkEdge.node).toBe(src);
    expect(layer.findNode("flt")).toBeUndefined();
    expect(layer.isRoot(src)).toBe(false); // the job still holds it
    await layer.detachUser(userEdge);
    expect(layer.isRoot(src)).toBe(true);
  });

  it("replaceNode keeps the replacement's own subtree out of the move", async () => {
    const a = await nullNode("a");
    const b = await layer.openNode({ driver: "test-filter", "node-name": "b", file: "a" }, { allowInternal: true });
    const user = layer.attachUser(new BlockBackend("d"), a, "root", 0, PERM_ALL);
    layer.replaceNode(a, b);
    expect(user.node).toBe(b);
    expect(b.filtered!.node).toBe(a);
  });

  it("setBacking blocks the backing node's ops with QEMU's reason, and lifts it again", async () => {
    const top = await layer.blockdevAdd({ driver: "raw", "node-name": "top", file: { driver: "null-co", size: 1 << 20 } });
    void top;
    if (!hasQemuImg) return;
    sh("qemu-img create -q -f qcow2 ov.qcow2 1M", d.dir);
    const ov = await layer.blockdevAdd({ driver: "qcow2", "node-name": "ov", file: { driver: "file", filename: d.file("ov.qcow2") } });
    const base = await nullNode("base");
    await layer.setBacking(ov, base);
    await expect(layer.blockdevDel("base")).rejects.toThrow("Node 'base' is busy: node is used as backing hd of 'ov'");
    expect(base.opBlockedReason("stream")).toBeNull();
    expect(base.opBlockedReason("backup-source")).toBeNull();
    expect(base.opBlockedReason("mirror-source")).toMatch(/backing hd/);
    await layer.setBacking(ov, null);
    await layer.blockdevDel("base");
    expect(layer.findNode("base")).toBeUndefined();
  });

  it("job blockers and blockdev-del's checks in QEMU's order", async () => {
    const n = await nullNode("n");
    const unblock = layer.blockForJob([n], "backup");
    await expect(layer.blockdevDel("n")).rejects.toThrow("Node 'n' is busy: block device is in use by block job: backup");
    expect(() => layer.checkOp(n, "external-snapshot")).toThrow("Node 'n' is busy: block device is in use by block job: backup");
    unblock();
    await layer.blockdevAdd({ driver: "raw", "node-name": "r", file: "n" });
    await expect(layer.blockdevDel("n")).rejects.toThrow("Block device n is in use");
    const fileName = layer.nodes.find((x) => x.driverName === "null-co" && x.autoNamed);
    expect(fileName).toBeUndefined();
    await layer.addDrive({ if: "none", id: "d0", driver: "raw", "file.driver": "null-co", "node-name": "dr" });
    expect(layer.findBackend("d0")!.node!.nodeName).toBe("dr");
    await expect(layer.blockdevDel("dr")).rejects.toThrow("Node dr is in use");
    const auto = layer.findNode("dr")!.file!.node;
    await layer.blockdevDel("r");
    await expect(layer.blockdevDel(auto.nodeName)).rejects.toThrow(`Node ${auto.nodeName} is not owned by the monitor`);
  });

  it("x-debug-query-block-graph lists job users", async () => {
    const n = await nullNode("n");
    layer.attachUser(job("j0"), n, "main node", Perm.CONSISTENT_READ, PERM_ALL & ~Perm.WRITE);
    const g = blockGraph(layer) as { nodes: any[]; edges: any[] };
    expect(g.nodes).toEqual([
      { id: 2, type: "block-driver", name: "n" },
      { id: 1, type: "block-job", name: "j0" },
    ]);
    expect(g.edges).toEqual([
      { parent: 1, child: 2, name: "main node", perm: ["consistent-read"], "shared-perm": ["resize", "write-unchanged", "consistent-read"] },
    ]);
  });

  it("write notifiers run before the write and can fail it; bitmaps mark after success", async () => {
    const n = await nullNode("n");
    bitmapAdd(layer, { node: "n", name: "b", granularity: 65536 });
    const seen: string[] = [];
    const off = n.addWriteNotifier(({ offset, length, kind }) => {
      seen.push(`${kind}@${offset}+${length}`);
      if (offset === 666) throw new Error("refused");
    });
    await n.write(new Uint8Array(10), 0);
    await n.writeZeroes(131072, 4096);
    await expect(n.write(new Uint8Array(1), 666)).rejects.toThrow("refused");
    off();
    await n.write(new Uint8Array(1), 3 * 65536);
    expect(seen).toEqual(["write@0+10", "zero@131072+4096", "write@666+1"]);
    expect(n.bitmaps[0]!.count()).toBe(3 * 65536);
  });

  it("bitmap successors: abdicate keeps new writes, reclaim merges them back; ops undo", async () => {
    const n = await nullNode("n");
    bitmapAdd(layer, { node: "n", name: "b", granularity: 65536 });
    const bm = n.bitmaps[0]!;
    await n.write(new Uint8Array(1), 0);
    bm.createSuccessor();
    expect(bm.info()).toMatchObject({ busy: true, recording: true });
    // The successor is listed on the node as an anonymous bitmap, newest first (as QEMU does).
    expect(n.bitmaps.map((b) => b.info())).toEqual([
      { count: 0, granularity: 65536, recording: true, busy: false, persistent: false },
      { name: "b", count: 65536, granularity: 65536, recording: true, busy: true, persistent: false },
    ]);
    expect(() => bitmapClear(layer, "n", "b")).toThrow("Bitmap 'b' is currently in use by another operation and cannot be used");
    await n.write(new Uint8Array(1), 65536);
    bm.abdicate();
    expect(n.bitmaps).toEqual([bm]);
    expect([...bm.dirtyRanges()]).toEqual([[65536, 65536]]);
    bm.createSuccessor();
    await n.write(new Uint8Array(1), 2 * 65536);
    bm.reclaim();
    expect([...bm.dirtyRanges()]).toEqual([[65536, 2 * 65536]]);
    const undoClear = bitmapClear(layer, "n", "b");
    expect(bm.count()).toBe(0);
    undoClear();
    expect(bm.count()).toBe(2 * 65536);
    bitmapAdd(layer, { node: "n", name: "c", granularity: 4096 });
    bitmapDisable(layer, "n", "b");
    await n.write(new Uint8Array(1), 5 * 65536);
    expect(bm.count()).toBe(2 * 65536);
    const undoMerge = bitmapMerge(layer, "n", "b", ["c"]);
    expect(bm.count()).toBe(3 * 65536);
    undoMerge();
    expect(bm.count()).toBe(2 * 65536);
  });

  it.skipIf(!hasQemuImg)("reopen switches a qcow2 node between read-only and read-write", async () => {
    sh("qemu-img create -q -f qcow2 ro.qcow2 1M", d.dir);
    const n = await layer.blockdevAdd({ driver: "qcow2", "node-name": "q", "read-only": true, file: { driver: "file", filename: d.file("ro.qcow2") } });
    await expect(n.write(new Uint8Array(512).fill(7), 0)).rejects.toThrow();
    await layer.reopen(n, false);
    await n.write(new Uint8Array(512).fill(7), 0);
    await layer.reopen(n, true);
    expect(n.readOnly).toBe(true);
    await layer.close();
    expect(sh("qemu-io -f qcow2 -c 'read -P 7 0 512' ro.qcow2", d.dir)).toMatch(/read 512\/512/);
    expect(sh("qemu-img check ro.qcow2", d.dir)).toMatch(/No errors were found/);
  });
});
