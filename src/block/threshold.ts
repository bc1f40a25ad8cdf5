/**
 * block-set-write-threshold: the first write (not discard) reaching past the
 * threshold on the node raises BLOCK_WRITE_THRESHOLD before it runs, and the
 * threshold drops back to 0 (one-shot, as in QEMU).
 */
import { genericError } from "../core/error.ts";
import type { EventSink } from "../core/events.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";

const watchers = new WeakMap<BlockNode, () => void>();

function clear(node: BlockNode): void {
  watchers.get(node)?.();
  watchers.delete(node);
  node.writeThreshold = 0;
}

export function setWriteThreshold(layer: BlockLayer, events: EventSink, nodeName: string, threshold: number | bigint): void {
  // Node names only: a BlockBackend name is "not found" here.
  const node = layer.findNode(nodeName);
  if (!node) throw genericError(`Device '${nodeName}' not found`);
  clear(node);
  if (BigInt(threshold) === 0n) return;
  node.writeThreshold = threshold;
  const remove = node.addWriteNotifier(({ offset, length, kind }) => {
    if (kind === "discard" || node.writeThreshold === 0) return;
    const end = offset + length;
    if (end <= node.writeThreshold) return;
    // Exceeded, so below the write's end: a number is exact.
    const limit = Number(node.writeThreshold);
    clear(node);
    events.emit("BLOCK_WRITE_THRESHOLD", { "node-name": node.nodeName, "amount-exceeded": end - limit, "write-threshold": limit });
  });
  watchers.set(node, remove);
}
