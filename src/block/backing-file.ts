/**
 * change-backing-file: rewrites the backing file name recorded in one image
 * of a root node's chain, leaving the graph as it is (the node keeps its
 * open backing child; only the header and what queries report change).
 * Checks and texts follow qmp_change_backing_file in QEMU 7.2.
 */
import { genericError } from "../core/error.ts";
import { ioError } from "../image/errors.ts";
import { errorText } from "./guest-io.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";

function skipFilters(n: BlockNode): BlockNode {
  while (n.isFilter && n.filtered) n = n.filtered.node;
  return n;
}

/** bdrv_find_base: the bottom of the chain below `n`, filters skipped. */
function findBase(n: BlockNode): BlockNode {
  let active = skipFilters(n);
  for (let next = active.backing?.node; next; next = active.backing?.node) active = skipFilters(next);
  return active;
}

/** bdrv_chain_contains: `base` is `top` or below it through COW and filter links. */
function chainContains(top: BlockNode, base: BlockNode): boolean {
  for (let n: BlockNode | undefined = top; n; n = n.cowOrFiltered) if (n === base) return true;
  return false;
}

export async function changeBackingFile(layer: BlockLayer, device: string, imageNodeName: string, backingFile: string): Promise<void> {
  // qmp_get_root_bs
  const bs = layer.lookupDeviceOrNode(device);
  if (!layer.isRoot(bs)) throw genericError("Need a root block node");
  const image = layer.lookupNode(undefined, imageNodeName);
  if (findBase(image) === image) throw genericError("not allowing backing file change on an image without a backing file");
  // The op blocker is checked on the root: a job anywhere on the chain blocks it there.
  layer.checkOp(bs, "change");
  if (!chainContains(bs, image)) throw genericError(`'${device}' and image file are not in the same chain`);
  // A read-only image (a -drive's backing file) is reopened read-write for the change, then back.
  const readOnly = image.readOnly;
  if (readOnly) await layer.reopen(image, false);
  let failure: unknown;
  try {
    // QEMU records the image's own format as the backing format, whatever the backing file is.
    if (!image.driver.changeBackingFile) throw ioError("ENOTSUP");
    await layer.changeBackingFile(image, backingFile, image.driverName);
  } catch (e) {
    failure = e;
  }
  if (readOnly) await layer.reopen(image, true);
  if (failure !== undefined) throw genericError(`Could not change backing file to '${backingFile}': ${errorText(failure)}`);
}
