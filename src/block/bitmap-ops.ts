/**
 * The dirty-bitmap commands as functions over the block layer. Each mutating
 * function validates (QEMU's checks, texts and order), applies the change
 * and returns an undo function, so `transaction` can run them as prepare
 * steps and call the undos on abort; plain commands ignore the undo.
 */
import { genericError } from "../core/error.ts";
import { attachBitmap, detachBitmap, DirtyBitmap } from "./bitmap.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";

export type Undo = () => void;

const MAX_NAME = 1023;

/** bdrv_get_default_bitmap_granularity: cluster size clamped to [4 KiB, 64 KiB]. */
export function defaultGranularity(node: BlockNode): number {
  const cs = node.clusterSize;
  return cs > 0 ? Math.min(65536, Math.max(4096, cs)) : 65536;
}

/** bdrv_find_dirty_bitmap: anonymous bitmaps never match. */
export function findNamedBitmap(node: BlockNode, name: string): DirtyBitmap | undefined {
  return node.bitmaps.find((b) => b.name !== "" && b.name === name);
}

/** block_dirty_bitmap_lookup. */
export function lookupBitmap(layer: BlockLayer, nodeName: string, name: string): { node: BlockNode; bitmap: DirtyBitmap } {
  let node: BlockNode;
  try {
    node = layer.lookupNode(nodeName, nodeName);
  } catch {
    throw genericError(`Node '${nodeName}' not found`);
  }
  const bitmap = findNamedBitmap(node, name);
  if (!bitmap) throw genericError(`Dirty bitmap '${name}' not found`);
  return { node, bitmap };
}

type CheckFlags = { busy?: boolean; readonly?: boolean; inconsistent?: boolean };

/** bdrv_dirty_bitmap_check. */
export function checkBitmap(bitmap: DirtyBitmap, flags: CheckFlags): void {
  if (flags.busy && bitmap.busy) {
    throw genericError(`Bitmap '${bitmap.name}' is currently in use by another operation and cannot be used`);
  }
  if (flags.readonly && bitmap.readonly) throw genericError(`Bitmap '${bitmap.name}' is readonly and cannot be modified`);
  if (flags.inconsistent && bitmap.inconsistent) throw genericError(`Bitmap '${bitmap.name}' is inconsistent and cannot be used`);
}

const DEFAULT_CHECK: CheckFlags = { busy: true, readonly: true, inconsistent: true };
const ALLOW_RO: CheckFlags = { busy: true, inconsistent: true };

export interface BitmapAddArgs {
  node: string;
  name: string;
  granularity?: number;
  persistent?: boolean;
  disabled?: boolean;
}

function canStorePersistent(node: BlockNode): boolean {
  return node.driverName === "qcow2";
}

export function bitmapAdd(layer: BlockLayer, a: BitmapAddArgs): Undo {
  if (!a.name) throw genericError("Bitmap name cannot be empty");
  const node = layer.lookupNode(a.node, a.node);
  let granularity: number;
  if (a.granularity !== undefined) {
    if (a.granularity < 512 || (a.granularity & (a.granularity - 1)) !== 0) {
      throw genericError("Granularity must be power of 2 and at least 512");
    }
    granularity = a.granularity;
  } else {
    granularity = defaultGranularity(node);
  }
  if (a.persistent && !canStorePersistent(node)) {
    throw genericError(`Can't store persistent bitmaps to ${layer.deviceOrNodeName(node)}: Operation not supported`);
  }
  if (a.persistent && node.driver.imageInfo?.()["format-specific"]?.data.compat === "0.10") {
    throw genericError(
      `Can't make bitmap '${a.name}' persistent in '${layer.deviceOrNodeName(node)}': Cannot store dirty bitmaps in qcow2 v2 files`,
    );
  }
  if (findNamedBitmap(node, a.name)) throw genericError(`Bitmap already exists: ${a.name}`);
  if (new TextEncoder().encode(a.name).length > MAX_NAME) throw genericError(`Bitmap name too long: ${a.name}`);
  const bm = new DirtyBitmap(a.name, granularity, node.size(), { enabled: !a.disabled, persistent: !!a.persistent });
  attachBitmap(node.bitmaps, bm);
  return () => detachBitmap(bm);
}

export function bitmapRemove(layer: BlockLayer, nodeName: string, name: string): Undo {
  const { node, bitmap } = lookupBitmap(layer, nodeName, name);
  checkBitmap(bitmap, { busy: true, readonly: true });
  const i = node.bitmaps.indexOf(bitmap);
  detachBitmap(bitmap);
  if (bitmap.persistent) removeFromImage(node, name);
  return () => {
    node.bitmaps.splice(Math.min(i, node.bitmaps.length), 0, bitmap);
    bitmap.list = node.bitmaps;
  };
}

/**
 * QEMU deletes a persistent bitmap from the image right away; the image
 * orders this after I/O already queued. On failure the stored copy stays
 * (a leak at worst: the node no longer has the bitmap to store back).
 */
function removeFromImage(node: BlockNode, name: string): void {
  const drv = node.driver as { removePersistentBitmap?: (name: string) => Promise<void> } | undefined;
  drv?.removePersistentBitmap?.(name).catch(() => {});
}

export function bitmapClear(layer: BlockLayer, nodeName: string, name: string): Undo {
  const { bitmap } = lookupBitmap(layer, nodeName, name);
  checkBitmap(bitmap, DEFAULT_CHECK);
  const saved = bitmap.clone();
  bitmap.clear();
  return () => bitmap.restore(saved);
}

export function bitmapEnable(layer: BlockLayer, nodeName: string, name: string): Undo {
  const { bitmap } = lookupBitmap(layer, nodeName, name);
  checkBitmap(bitmap, ALLOW_RO);
  const was = bitmap.enabled;
  bitmap.enabled = true;
  return () => void (bitmap.enabled = was);
}

export function bitmapDisable(layer: BlockLayer, nodeName: string, name: string): Undo {
  const { bitmap } = lookupBitmap(layer, nodeName, name);
  checkBitmap(bitmap, ALLOW_RO);
  const was = bitmap.enabled;
  bitmap.enabled = false;
  return () => void (bitmap.enabled = was);
}

/** A merge source: a bitmap name on the target's node, or {node, name}. */
export type BitmapRef = string | { node: string; name: string };

export function bitmapMerge(layer: BlockLayer, nodeName: string, target: string, sources: readonly BitmapRef[]): Undo {
  const { node, bitmap: dst } = lookupBitmap(layer, nodeName, target);
  checkBitmap(dst, DEFAULT_CHECK);
  const srcs = sources.map((s) => {
    let src: DirtyBitmap | undefined;
    if (typeof s === "string") {
      src = findNamedBitmap(node, s);
      if (!src) throw genericError(`Dirty bitmap '${s}' not found`);
    } else {
      src = lookupBitmap(layer, s.node, s.name).bitmap;
    }
    checkBitmap(src, ALLOW_RO);
    return src;
  });
  const saved = dst.clone();
  for (const src of srcs) {
    if (src.size !== dst.size) {
      dst.restore(saved);
      throw genericError(`Bitmaps are of different sizes (destination size is ${dst.size}, source size is ${src.size}) and can't be merged`);
    }
    dst.merge(src);
  }
  return () => dst.restore(saved);
}

export function bitmapSha256(layer: BlockLayer, nodeName: string, name: string): string {
  return lookupBitmap(layer, nodeName, name).bitmap.sha256();
}
