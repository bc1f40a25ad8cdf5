/**
 * Removable media of a BlockBackend (QEMU's blk_remove_bs / blk_insert_bs
 * and the medium part of blockdev-change-medium).
 *
 * Under -M none no device model is attached, so a backend has no tray and
 * no lock: its medium can be exchanged at will, nothing announces it
 * (DEVICE_TRAY_MOVED needs a device), and only op blockers (a block job on
 * the medium) stand in the way.
 */
import type { BlockBackend, MediumRootState } from "./backend.ts";
import { genericError } from "../core/error.ts";
import { probeFormat, type BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";

/** blk_update_root_state: what the medium in the backend was opened with. */
export function rootStateOf(node: BlockNode): MediumRootState {
  return {
    readOnly: node.readOnly,
    cacheDirect: node.common.cacheDirect,
    cacheNoFlush: node.common.cacheNoFlush,
    discard: node.common.discard,
    detectZeroes: node.common.detectZeroes !== "off",
  };
}

/** The root state of a backend: its medium's, else the one recorded when it became empty. */
export function currentRootState(blk: BlockBackend): MediumRootState {
  if (blk.node) return rootStateOf(blk.node);
  return blk.rootState ?? { readOnly: false, cacheDirect: false, cacheNoFlush: false, discard: "ignore", detectZeroes: false };
}

/**
 * blockdev_remove_medium for a device-less backend: nothing to do without a
 * medium; otherwise the eject op blocker decides, then the medium goes (and
 * closes, unless someone else still uses it).
 */
export async function removeMedium(layer: BlockLayer, blk: BlockBackend): Promise<void> {
  const edge = blk.root;
  if (!edge) return;
  layer.checkOp(edge.node, "eject");
  blk.rootState = rootStateOf(edge.node);
  blk.perm = edge.wantPerm;
  blk.shared = edge.wantShared;
  await edge.node.drain();
  blk.root = null;
  await layer.graph.detach(edge);
}

/**
 * blk_insert_bs with the backend's own permissions (which qemu-io may have
 * widened earlier: a writer cannot take a read-only medium). On failure the
 * backend stays empty.
 */
export function insertMedium(layer: BlockLayer, blk: BlockBackend, node: BlockNode): void {
  blk.root = layer.graph.attach(blk, "root", node, { perm: blk.perm, shared: blk.shared });
}

export type ReadOnlyMode = "retain" | "read-only" | "read-write";

/**
 * bdrv_open(filename) for change-medium: the format (given, or probed) over
 * the file, with the backend's root state; node names are generated.
 */
export async function openMedium(
  layer: BlockLayer,
  state: MediumRootState,
  filename: string,
  format: string | undefined,
  mode: ReadOnlyMode,
): Promise<BlockNode> {
  const readOnly = mode === "retain" ? state.readOnly : mode === "read-only";
  const driver = format ?? probeFormat(filename);
  const def = layer.driver(driver);
  // Internal drivers (mirror_top & co) are not registered formats in QEMU either.
  if (!def || def.internal) throw genericError(`Unknown driver '${driver}'`);
  const common = {
    "read-only": readOnly,
    "detect-zeroes": state.detectZeroes ? "on" : "off",
    discard: state.discard,
    cache: { direct: state.cacheDirect, "no-flush": state.cacheNoFlush },
  };
  const tree = def.kind === "protocol"
    ? { driver, filename, ...common }
    : { driver, ...common, file: { driver: "file", filename } };
  return layer.openNode(tree);
}
