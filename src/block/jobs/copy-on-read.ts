/**
 * The `copy-on-read` filter block-stream puts above the streamed node: every
 * read through it that finds data only in the backing chain (down to and
 * including `bottom`) writes that data into the node, so the node ends up
 * holding it. The stream job itself is a reader of this filter; guest reads
 * through the device populate the node the same way.
 *
 * Like QEMU's COR, data that reads as all zeros is written as a zero write,
 * and the filter takes write-unchanged (it never changes what is visible).
 */
import { genericError } from "../../core/error.ts";
import type { BlockLayer, BlockNode, DriverDef, NodeDriver } from "../index.ts";
import { Perm, PERM_ALL } from "../perms.ts";
import { insertJobFilter } from "./common.ts";
import { jsonFilename } from "../drivers/raw.ts";

export const COPY_ON_READ = "copy-on-read";

function isAllZero(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** The node below `bottom` in the chain: where copying stops (null = whole chain). */
function stopAt(file: BlockNode, bottomName: string | undefined): BlockNode | null {
  if (!bottomName) return null;
  let n: BlockNode | undefined = file;
  while (n && n.nodeName !== bottomName) n = n.cowOrFiltered;
  return n?.cowOrFiltered ?? null;
}

export const copyOnReadDriver: DriverDef = {
  name: COPY_ON_READ,
  kind: "filter",
  internal: true,
  primaryChild: { key: "file", role: "file" },
  fields: { file: { type: "ref", required: true }, bottom: { type: "str" } },
  childPerms(_node, _child, perm, shared): [number, number] {
    // cor_child_perm: forward the parents' needs, add write-unchanged, never share write-unchanged away.
    return [(perm & PERM_ALL) | Perm.WRITE_UNCHANGED, (shared & PERM_ALL) | Perm.WRITE_UNCHANGED];
  },
  async open(ctx): Promise<NodeDriver> {
    const edge = (await ctx.openChild("file", "file"))!;
    const file = () => edge.node;
    const bottom = ctx.options.bottom as string | undefined;
    return {
      size: () => file().size(),
      async read(buf, off) {
        const top = file();
        const base = stopAt(top, bottom);
        for (let pos = off; pos < off + buf.length; ) {
          const want = off + buf.length - pos;
          const own = await top.blockStatus(pos, want);
          const n = Math.max(1, Math.min(want, own.length));
          const part = buf.subarray(pos - off, pos - off + n);
          if (own.allocated) {
            await top.read(part, pos);
            pos += n;
            continue;
          }
          const below = top.cowOrFiltered;
          const fromChain = below ? await below.isAllocatedAbove(base, pos, n) : { allocated: false, length: n };
          const m = Math.max(1, Math.min(n, fromChain.length));
          const piece = part.subarray(0, m);
          await top.read(piece, pos);
          if (fromChain.allocated) {
            if (isAllZero(piece)) await top.writeZeroes(pos, m);
            else await top.write(piece, pos);
          }
          pos += m;
        }
      },
      write: (data, off) => file().write(data, off),
      writeZeroes: (off, len, opts) => file().writeZeroes(off, len, opts),
      discard: (off, len) => file().discard(off, len),
      blockStatus: (off, len) => file().blockStatus(off, len),
      flush: () => file().flush(),
      resize: () => Promise.reject(genericError("Cannot resize a node while it is being streamed")),
      close: async () => {},
      // A json: child name makes the filter's own options the name (QEMU's generic refresh).
      filename: () => {
        const f = file().driver.filename();
        return f.startsWith("json:") ? jsonFilename(ctx.node) : f;
      },
      imageInfo: () => ({ format: COPY_ON_READ, "cluster-size": file().clusterSize || undefined, "dirty-flag": false }),
      actualSize: () => file().driver.actualSize?.(),
      get clusterSize() {
        return file().clusterSize;
      },
    };
  },
};

/**
 * bdrv_insert_node of a copy-on-read filter over `node`, copying from the
 * chain down to and including `bottom`. Errors are prefixed like QEMU's
 * ("Could not create node: Duplicate nodes with node-name='x'").
 */
export async function insertCopyOnRead(layer: BlockLayer, node: BlockNode, bottom: BlockNode, nodeName: string | undefined): Promise<BlockNode> {
  if (!layer.driver(COPY_ON_READ)) layer.registerDriver(copyOnReadDriver);
  const options: Record<string, unknown> = { driver: COPY_ON_READ, file: node.nodeName, bottom: bottom.nodeName };
  if (nodeName !== undefined) options["node-name"] = nodeName;
  return insertJobFilter(layer, node, options);
}
