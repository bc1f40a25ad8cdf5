/** The `raw` format driver: a window (offset, size) onto its file child. */
import { genericError } from "../../core/error.ts";
import { ioError } from "../../image/errors.ts";
import type { DriverDef, NodeDriver } from "../driver.ts";
import type { BlockNode } from "../node.ts";
import { serialize } from "../../json/writer.ts";
import { filterPerms, Perm } from "../perms.ts";

export const rawDriver: DriverDef = {
  name: "raw",
  kind: "format",
  strongOptions: ["offset", "size"],
  primaryChild: { key: "file", role: "file" },
  fields: {
    file: { type: "ref", required: true },
    offset: { type: "int" },
    size: { type: "int" },
  },
  childPerms(node, _child, perm, shared) {
    const [p, s] = filterPerms(perm, shared);
    const o = node.options.specific;
    return [p, o.size !== undefined || o.offset ? s & ~Perm.RESIZE : s];
  },
  async open(ctx): Promise<NodeDriver> {
    const edge = (await ctx.openChild("file", "file"))!;
    const child = edge.node;
    const offset = (ctx.options.offset as number | undefined) ?? 0;
    const hasSize = ctx.options.size !== undefined;
    const realSize = child.size();
    if (offset > realSize) throw genericError(`Offset (${offset}) cannot be greater than size of the containing file (${realSize})`);
    if (hasSize) {
      const size = ctx.options.size as number;
      if (realSize - offset < size) {
        throw genericError(
          `The sum of offset (${offset}) and size (${size}) has to be smaller or equal to the  actual size of the containing file (${realSize})`,
        );
      }
      if (size % 512 !== 0) throw genericError("Specified size is not multiple of 512");
    }
    let fixedSize = hasSize ? (ctx.options.size as number) : null;
    const size = () => fixedSize ?? Math.max(0, edge.node.size() - offset);
    const check = (off: number, len: number) => {
      if (fixedSize !== null && (off > fixedSize || len > fixedSize - off)) throw ioError("ENOSPC");
    };
    const node = ctx.node;
    return {
      size,
      read: (buf, off) => {
        node.debugEvent("file", "read_aio");
        return edge.node.read(buf, off + offset);
      },
      write: (data, off) => {
        check(off, data.length);
        node.debugEvent("file", "write_aio");
        return edge.node.write(data, off + offset);
      },
      writeZeroes: (off, len, opts) => {
        check(off, len);
        return edge.node.writeZeroes(off + offset, len, opts);
      },
      discard: (off, len) => edge.node.discard(off + offset, len),
      async blockStatus(off, len) {
        const ext = await edge.node.blockStatus(off + offset, Math.min(len, size() - off));
        return { ...ext, offset: off, allocated: true };
      },
      flush: () => edge.node.flush(),
      async resize(newSize) {
        if (offset || fixedSize !== null) throw genericError("Cannot resize a raw node with offset or size");
        await edge.node.resize(newSize);
      },
      close: async () => {},
      filename: () => {
        const f = edge.node.driver.filename();
        return hasSize || offset || f.startsWith("json:") ? jsonFilename(ctx.node) : f;
      },
      imageInfo: () => ({ format: "raw", ...pick(edge.node.driver.imageInfo?.() ?? {}) }),
      actualSize: () => edge.node.driver.actualSize?.(),
    };
  },
};

function pick(info: { "dirty-flag"?: boolean }) {
  return info["dirty-flag"] === undefined ? {} : { "dirty-flag": info["dirty-flag"] };
}

/** QEMU's json: pseudo-filename for nodes whose options a plain path cannot express. */
export function jsonFilename(node: BlockNode): string {
  // QEMU prints its QDict, so members come in QDict order, like QMP replies.
  return "json:" + serialize(fullOptions(node));
}

/** The node's "strong" options (those that change what the guest sees) and its children's. */
export function fullOptions(node: BlockNode): Record<string, unknown> {
  const out: Record<string, unknown> = { driver: node.driverName };
  for (const k of node.def.strongOptions ?? []) {
    const v = node.options.specific[k];
    if (v === undefined) continue;
    // QEMU keeps options as a flattened QDict: lists of structs become "key.N.member".
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        for (const [m, x] of Object.entries(item as Record<string, unknown>)) out[`${k}.${i}.${m}`] = x;
      });
    } else out[k] = v;
  }
  for (const c of node.children) {
    if (c.name === "backing" && node.driver?.impliedBacking?.()) continue;
    out[c.name] = fullOptions(c.node);
  }
  // Only a suppressed backing file is worth saying (bdrv_backing_overridden): the header names one.
  if (!node.backing && node.driver?.headerBackingFile?.()) out.backing = null;
  return out;
}
