/**
 * Block-copy's view of graph nodes: the source read through its backing
 * chain (zero runs found by block status, so they become zero writes), and
 * the target written as the job's own user of the node.
 */
import type { BlockNode } from "../index.ts";
import type { CopySource, CopyTarget } from "./block-copy.ts";

import { skipFilters } from "../node.ts";
export { skipFilters };

export function nodeCopySource(source: BlockNode): CopySource {
  const top = skipFilters(source);
  return {
    length: source.size(),
    read: (buf, offset) => source.read(buf, offset),
    async status(offset, length) {
      // First layer of the chain that has the run decides; none → reads as zeros.
      let n = length;
      for (let layer: BlockNode | undefined = top; layer; layer = layer.cowOrFiltered) {
        if (layer.isFilter) continue;
        const size = layer.size();
        if (offset >= size) return { length: n, zero: true };
        const ext = await layer.blockStatus(offset, Math.min(n, size - offset));
        const len = Math.max(1, Math.min(n, ext.length));
        if (ext.allocated) return { length: len, zero: ext.zero && !ext.data };
        n = len;
      }
      return { length: n, zero: true };
    },
    async allocatedInTop(offset, length) {
      const ext = await top.blockStatus(offset, length);
      return { length: Math.max(1, Math.min(length, ext.length)), allocated: ext.allocated };
    },
  };
}

export function nodeCopyTarget(target: BlockNode, compress: boolean): CopyTarget {
  return {
    write: (data, offset) => target.write(data, offset),
    writeZeroes: (offset, length) => target.writeZeroes(offset, length),
    writeCompressed: compress ? (data, offset) => target.writeCompressed(data, offset) : undefined,
    flush: () => target.flush(),
  };
}
