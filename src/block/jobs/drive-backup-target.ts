/**
 * drive-backup's target: create the image (mode absolute-paths) with the
 * source's size, and the backing rules of sync top/none, then open it with
 * discard=unmap, detect-zeroes=unmap like QEMU's drive_backup_prepare.
 */
import { genericError } from "../../core/error.ts";
import { createImageAs } from "../create-image.ts";
import { skipFilters } from "../node.ts";
import { probeFormat, type BlockLayer, type BlockNode } from "../index.ts";
import type { SyncMode } from "./backup-bitmap.ts";

export interface DriveBackupTargetRequest {
  source: BlockNode;
  target: string;
  sync: SyncMode;
  format?: string;
  mode?: "existing" | "absolute-paths";
}

export interface DriveBackupTarget {
  node: BlockNode;
  /** 'top' without a backing file becomes 'full'. */
  sync: SyncMode;
}

/** The next layer below a node, skipping filters (bdrv_cow_bs(bdrv_skip_filters(bs))). */
function backingOf(node: BlockNode): BlockNode | undefined {
  let n: BlockNode | undefined = node;
  while (n?.isFilter) n = n.filtered?.node;
  return n?.backing?.node;
}

export async function openDriveBackupTarget(layer: BlockLayer, req: DriveBackupTargetRequest): Promise<DriveBackupTarget> {
  const existing = req.mode === "existing";
  let format = req.format ?? (existing ? undefined : skipFilters(req.source).driverName);
  let sync = req.sync;
  let backing: BlockNode | null = null;
  if (sync === "top") {
    backing = backingOf(req.source) ?? null;
    if (!backing) sync = "full";
  }
  if (sync === "none") backing = req.source;
  const size = req.source.size();
  if (!existing) await createImageAs(req.target, format!, size, backing);
  format ??= probeFormat(req.target);
  const options: Record<string, unknown> = {
    driver: format,
    file: { driver: "file", filename: req.target },
    discard: "unmap",
    "detect-zeroes": "unmap",
  };
  // The live backing node is attached below instead of opening the file again.
  if (backing && format === "qcow2") options.backing = null;
  const node = await layer.openNode(options);
  if (backing && format === "qcow2") await layer.setBacking(node, backing);
  return { node, sync };
}
