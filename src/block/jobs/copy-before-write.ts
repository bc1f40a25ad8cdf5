/**
 * The copy-before-write filter backup inserts above its source: reads pass
 * through; every write first lets the job's BlockCopy save the old data of
 * the range to the target, so the target stays the point-in-time image.
 * It unshares write/resize on the source, so nobody can write the source
 * behind its back (QEMU's "Permission conflict ... unshared by node 'flt'").
 *
 * The filter is internal (not blockdev-add'able here); a job opens it with
 * `openCbwFilter` after registering the driver once per BlockLayer.
 */
import { genericError } from "../../core/error.ts";
import type { BlockLayer, BlockNode, DriverDef, NodeDriver } from "../index.ts";
import { Perm, PERM_ALL } from "../perms.ts";
import { insertJobFilter } from "./common.ts";
import type { BlockCopy } from "./block-copy.ts";

export const CBW_DRIVER = "copy-before-write";

/** Filters the job attaches its BlockCopy to once it exists (the node opens before the job). */
const copiers = new WeakMap<BlockNode, BlockCopy>();

export function setCbwCopier(filter: BlockNode, bc: BlockCopy | null): void {
  if (bc) copiers.set(filter, bc);
  else copiers.delete(filter);
}

export const copyBeforeWriteDriver: DriverDef = {
  name: CBW_DRIVER,
  kind: "filter",
  internal: true,
  primaryChild: { key: "file", role: "file" },
  fields: {
    file: { type: "ref", required: true },
    target: { type: "ref", required: true },
  },
  childPerms(node, child, perm, shared): [number, number] {
    if (child.name === "target") return [Perm.WRITE, PERM_ALL & ~Perm.RESIZE];
    let p = perm & PERM_ALL;
    // Like QEMU, the source is only locked once the filter has parents: it is
    // opened over a source that still has writers and then takes their place.
    if (node.parents.length === 0) return [p, shared & PERM_ALL];
    if (p & Perm.WRITE) p |= Perm.CONSISTENT_READ;
    return [p, shared & PERM_ALL & ~(Perm.WRITE | Perm.RESIZE)];
  },
  async open(ctx): Promise<NodeDriver> {
    const file = (await ctx.openChild("file", "file"))!;
    await ctx.openChild("target", "target");
    const node = ctx.node;
    const src = () => file.node;
    const beforeWrite = async (offset: number, length: number) => {
      await copiers.get(node)?.copyBeforeWrite(offset, length);
    };
    return {
      size: () => src().size(),
      read: (buf, off) => src().read(buf, off),
      async write(data, off) {
        await beforeWrite(off, data.length);
        await src().write(data, off);
      },
      async writeZeroes(off, len, opts) {
        await beforeWrite(off, len);
        await src().writeZeroes(off, len, opts);
      },
      async discard(off, len) {
        await beforeWrite(off, len);
        await src().discard(off, len);
      },
      blockStatus: (off, len) => src().blockStatus(off, len),
      flush: () => src().flush(),
      resize: () => Promise.reject(genericError("Cannot resize while a backup runs")),
      close: async () => {},
      filename: () => src().driver.filename(),
      // bdrv_get_info on a filter asks the filtered node: its dirty flag, if it has one.
      imageInfo: () => {
        const dirty = src().driver.imageInfo?.()["dirty-flag"];
        return { format: CBW_DRIVER, "cluster-size": src().clusterSize || undefined, ...(dirty === undefined ? {} : { "dirty-flag": dirty }) };
      },
      actualSize: () => src().driver.actualSize?.() ?? 0,
      get clusterSize() {
        return src().clusterSize;
      },
    };
  },
};

export function ensureCbwDriver(layer: BlockLayer): void {
  if (!layer.driver(CBW_DRIVER)) layer.registerDriver(copyBeforeWriteDriver);
}

/**
 * Opens a copy-before-write node over `source` writing old data to
 * `target` and moves the source's parents onto it. Name errors come back
 * as QEMU words them ("Could not create node: Duplicate nodes ...").
 */
export async function openCbwFilter(layer: BlockLayer, source: BlockNode, target: BlockNode, nodeName?: string): Promise<BlockNode> {
  ensureCbwDriver(layer);
  const options: Record<string, unknown> = { driver: CBW_DRIVER, file: source.nodeName, target: target.nodeName };
  if (nodeName !== undefined) options["node-name"] = nodeName;
  return insertJobFilter(layer, source, options);
}
