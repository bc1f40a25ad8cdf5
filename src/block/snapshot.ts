/**
 * External snapshots (blockdev-snapshot-sync, blockdev-snapshot) and
 * block_resize. A snapshot is split into prepare / commit / abort so that
 * `transaction` can group it with other actions; the plain commands run
 * prepare then commit.
 */
import { genericError } from "../core/error.ts";
import { createImageAs } from "./create-image.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";
import { Perm, PERM_ALL } from "./perms.ts";
import { BlockBackend } from "./backend.ts";

export interface PreparedAction {
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export type SnapshotAction =
  | {
      type: "blockdev-snapshot-sync";
      device?: string;
      "node-name"?: string;
      "snapshot-file": string;
      "snapshot-node-name"?: string;
      format?: string;
      mode?: "existing" | "absolute-paths";
    }
  | { type: "blockdev-snapshot"; node: string; overlay: string };

/** external_snapshot_prepare: the overlay is in the graph when this resolves. */
export async function prepareExternalSnapshot(
  layer: BlockLayer,
  a: SnapshotAction,
  drainedBegin?: (old: BlockNode) => void,
): Promise<PreparedAction> {
  const [device, nodeName] = a.type === "blockdev-snapshot-sync" ? [a.device, a["node-name"]] : [a.node, a.node];
  const old = layer.lookupNode(device, nodeName);
  drainedBegin?.(old);
  await old.drain();
  layer.checkOp(old, "external-snapshot");
  if (!old.readOnly) {
    try {
      await old.flush();
    } catch {
      throw genericError("Input/output error");
    }
  }
  let overlay: BlockNode;
  let created = false;
  if (a.type === "blockdev-snapshot-sync") {
    const format = a.format ?? "qcow2";
    const snapName = a["snapshot-node-name"];
    if (nodeName !== undefined && snapName === undefined) throw genericError("New overlay node-name missing");
    if (snapName !== undefined && (layer.findBackend(snapName) || layer.findNode(snapName))) {
      throw genericError("New overlay node-name already in use");
    }
    if ((a.mode ?? "absolute-paths") !== "existing") {
      await createImageAs(a["snapshot-file"], format, old.size(), old);
    }
    const opts: Record<string, unknown> = { driver: format, file: { driver: "file", filename: a["snapshot-file"] } };
    if (snapName !== undefined) opts["node-name"] = snapName;
    if (old.readOnly) opts["read-only"] = true;
    overlay = await layer.openNode(opts, { noBacking: true });
    created = true;
  } else {
    overlay = layer.lookupNode(a.overlay, a.overlay);
  }

  const discardCreated = async () => {
    if (created) await layer.graph.closeIfOrphan(overlay);
  };
  try {
    const perm = overlay.parents.reduce((p, e) => p | e.perm, 0);
    if (perm & Perm.CONSISTENT_READ) throw genericError("The overlay is already in use");
    if (overlay.isFilter) throw genericError("Filters cannot be used as overlays");
    if (overlay.backing) throw genericError("The overlay already has a backing image");
    if (!overlay.def.supportsBacking) throw genericError("The overlay does not support backing images");
    // bdrv_append: old becomes the overlay's backing, then old's parents move to the overlay.
    await layer.setBacking(overlay, old);
    // A temporary reference keeps the overlay alive until commit decides (like state->new_bs).
    const hold = layer.attachUser(new BlockBackend(""), overlay, "root", 0, PERM_ALL);
    try {
      layer.replaceNode(old, overlay);
    } catch (e) {
      await layer.detachUser(hold);
      await layer.setBacking(overlay, null);
      throw e;
    }
    return {
      async commit() {
        // The old image is now only a backing file: QEMU reopens it read-only.
        try {
          await layer.reopen(old, true);
        } catch {
          // QEMU ignores a failed reopen here as well.
        }
        await layer.detachUser(hold);
      },
      async abort() {
        layer.replaceNode(overlay, old);
        await layer.setBacking(overlay, null);
        await layer.detachUser(hold);
        await discardCreated();
      },
    };
  } catch (e) {
    await discardCreated();
    throw e;
  }
}

/** qmp_block_resize. */
/** BDRV_MAX_LENGTH: INT64_MAX aligned down to 1 GiB, the largest offset bdrv_check_request lets through. */
const BDRV_MAX_LENGTH = 2n ** 63n - 2n ** 30n;

/** `size` is QAPI's int: a bigint beyond 2^53. */
export async function blockResize(layer: BlockLayer, device: string | undefined, nodeName: string | undefined, size: number | bigint): Promise<void> {
  const node = layer.lookupNode(device, nodeName);
  if (size < 0) throw genericError("Parameter 'size' expects a >0 size");
  if (node.opBlockedReason("resize")) throw genericError(`Device '${device ?? "(null)"}' is in use`);
  const blk = new BlockBackend("");
  const edge = layer.attachUser(blk, node, "root", Perm.RESIZE, PERM_ALL);
  try {
    await node.drain();
    if (node.readOnly) throw genericError("Image is read-only");
    if (BigInt(size) > BDRV_MAX_LENGTH) throw genericError(`offset(${size}) exceeds maximum(${BDRV_MAX_LENGTH})`);
    await node.resize(Number(size));
  } finally {
    await layer.detachUser(edge);
  }
}
