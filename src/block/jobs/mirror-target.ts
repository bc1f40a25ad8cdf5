/**
 * drive-mirror's target (qmp_drive_mirror): create the image unless
 * mode=existing (with the source's backing as its backing file for sync
 * top, the source itself for sync none), then open it without its backing
 * chain — the mirror copies what the target needs and, at the end, gives it
 * the right backing (MIRROR_SOURCE_BACKING_CHAIN / MIRROR_OPEN_BACKING_CHAIN).
 */
import { genericError } from "../../core/error.ts";
import { createImageAs } from "../create-image.ts";
import { probeFormat, type BlockLayer, type BlockNode } from "../index.ts";
import { skipFilters } from "../node.ts";
import type { BackingMode, MirrorMode } from "./mirror.ts";

export interface DriveMirrorTargetRequest {
  source: BlockNode;
  target: string;
  sync: MirrorMode;
  format?: string;
  mode?: "existing" | "absolute-paths";
  nodeName?: string;
}

export interface DriveMirrorTarget {
  node: BlockNode;
  sync: MirrorMode;
  backingMode: BackingMode;
  zeroTarget: boolean;
}

/** Creates (unless mode=existing) and opens the target, in qmp_drive_mirror's order. */
export async function openDriveMirrorTarget(layer: BlockLayer, req: DriveMirrorTargetRequest): Promise<DriveMirrorTarget> {
  const mode = req.mode ?? "absolute-paths";
  const format = req.format ?? (mode === "existing" ? undefined : req.source.driverName);
  let sync = req.sync;
  let targetBacking: BlockNode | null = skipFilters(req.source).backing?.node ?? null;
  if (!targetBacking && sync === "top") sync = "full";
  if (sync === "none") targetBacking = req.source;
  const size = req.source.size();
  const backingMode: BackingMode = mode === "absolute-paths" ? "source-chain" : "open-chain";
  if (mode !== "existing") await createImageAs(req.target, format!, size, sync === "full" || !targetBacking ? null : targetBacking);

  const fmt = format ?? probeFormat(req.target);
  const options: Record<string, unknown> = { driver: fmt, file: { driver: "file", filename: req.target } };
  if (req.nodeName !== undefined) options["node-name"] = req.nodeName;
  // The source's open flags carry over (discard=unmap).
  if (req.source.common.discard === "unmap") options.discard = "unmap";
  // Mirroring takes care of copy-on-write using the source's backing file.
  const node = await layer.openNode(options, { noBacking: true });
  // A fresh image reads as zeros already; an existing one must be zeroed for sync full.
  const zeroTarget = sync === "full" && mode === "existing";
  return { node, sync, backingMode, zeroTarget };
}
