/**
 * The filters mirror and commit put into the graph while they run.
 *
 * `mirror_top` sits above the mirror source (and above the top layer in an
 * active commit): the device keeps writing through it, it forwards every
 * request to its "backing" child, and in write-blocking copy mode it also
 * writes guest data straight to the target. Like QEMU it asks nothing of its
 * child but `write` (when its parents write) and shares everything, so the
 * source node itself stays writable by others (qemu-io on the node).
 *
 * `commit_top` sits above the top of an intermediate commit: a read-only
 * pass-through that takes no permissions at all.
 *
 * Both are internal (blockdev-add refuses them) and auto-named unless the
 * command gives `filter-node-name`. The job talks to its filter through a
 * FilterHooks object registered per node.
 */
import { genericError } from "../../core/error.ts";
import type { BlockLayer, BlockNode, DriverDef, NodeDriver } from "../index.ts";
import { Perm, PERM_ALL } from "../perms.ts";

export const MIRROR_TOP = "mirror_top";
export const COMMIT_TOP = "commit_top";

/** What the running job tells its filter. */
export interface FilterHooks {
  /** The job is finishing: forward nothing to the child any more (bs_opaque->stop). */
  stopped: boolean;
  /**
   * Wraps a guest write through the filter (write-blocking mode): `forward`
   * sends it to the child; the hook may also write the target.
   */
  interceptWrite?(kind: WriteKind, offset: number, data: Uint8Array | null, length: number, forward: () => Promise<void>): Promise<void>;
}

export type WriteKind = "write" | "zero" | "discard";

const hooks = new WeakMap<BlockNode, FilterHooks>();

export function filterHooks(filter: BlockNode): FilterHooks {
  let h = hooks.get(filter);
  if (!h) {
    h = { stopped: false };
    hooks.set(filter, h);
  }
  return h;
}

function passThroughDriver(name: string, node: BlockNode, child: () => BlockNode): NodeDriver {
  const through = (kind: WriteKind, off: number, data: Uint8Array | null, len: number, forward: () => Promise<void>) => {
    const h = hooks.get(node)?.interceptWrite;
    return h ? h(kind, off, data, len, forward) : forward();
  };
  return {
    size: () => child().size(),
    read: (buf, off) => child().read(buf, off),
    write: (data, off) => through("write", off, data, data.length, () => child().write(data, off)),
    writeZeroes: (off, len, opts) => through("zero", off, null, len, () => child().writeZeroes(off, len, opts)),
    discard: (off, len) => through("discard", off, null, len, () => child().discard(off, len)),
    blockStatus: (off, len) => child().blockStatus(off, len),
    flush: () => child().flush(),
    resize: () => Promise.reject(genericError("Cannot resize a node with a running block job")),
    close: async () => {},
    filename: () => child().driver.filename(),
    imageInfo: () => ({ format: name, "cluster-size": child().clusterSize || undefined, "dirty-flag": false }),
    actualSize: () => child().driver.actualSize?.(),
    get clusterSize() {
      return child().clusterSize;
    },
  };
}

function topFilterDriver(name: string, childPerms: DriverDef["childPerms"]): DriverDef {
  return {
    name,
    kind: "filter",
    internal: true,
    primaryChild: { key: "backing", role: "backing" },
    fields: { backing: { type: "ref", required: true } },
    childPerms,
    async open(ctx): Promise<NodeDriver> {
      const edge = (await ctx.openChild("backing", "backing"))!;
      return passThroughDriver(name, ctx.node, () => edge.node);
    },
  };
}

/** bdrv_mirror_top_child_perm: only forward writes; share everything. */
export const mirrorTopDriver = topFilterDriver(MIRROR_TOP, (node, _child, perm): [number, number] => {
  if (hooks.get(node)?.stopped) return [0, PERM_ALL];
  return [perm & Perm.WRITE, PERM_ALL];
});

/** bdrv_commit_top_child_perm: nothing taken, everything shared. */
export const commitTopDriver = topFilterDriver(COMMIT_TOP, (): [number, number] => [0, PERM_ALL]);

export function ensureTopFilterDrivers(layer: BlockLayer): void {
  if (!layer.driver(MIRROR_TOP)) layer.registerDriver(mirrorTopDriver);
  if (!layer.driver(COMMIT_TOP)) layer.registerDriver(commitTopDriver);
}

/**
 * bdrv_new_open_driver + bdrv_append: opens a `driver` filter over `below`
 * and moves below's parents onto it. Node-name errors come back unprefixed,
 * as QEMU words them for mirror and commit.
 */
export async function insertTopFilter(
  layer: BlockLayer,
  driver: typeof MIRROR_TOP | typeof COMMIT_TOP,
  below: BlockNode,
  nodeName: string | undefined,
): Promise<BlockNode> {
  ensureTopFilterDrivers(layer);
  const options: Record<string, unknown> = { driver, backing: below.nodeName };
  // commit_top is opened without BDRV_O_RDWR.
  if (driver === COMMIT_TOP) options["read-only"] = true;
  if (nodeName !== undefined) options["node-name"] = nodeName;
  const filter = await layer.openNode(options, { allowInternal: true });
  filterHooks(filter);
  try {
    layer.insertFilter(filter, below);
  } catch (e) {
    await layer.removeFilter(filter).catch(() => {});
    throw e;
  }
  return filter;
}

/** Refreshes the graph's permissions after a filter's hooks changed (stop). */
export function refreshFilterPerms(layer: BlockLayer): void {
  layer.graph.refreshPermsRelaxed();
}
