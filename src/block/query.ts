/**
 * What the block layer reports: BlockDeviceInfo / ImageInfo / BlockInfo
 * (query-named-block-nodes, query-block), the x-debug-query-block-graph
 * dump, and HMP `info block` text. Pure readers of the graph.
 */
import { genericError } from "../core/error.ts";
import type { BlockBackend } from "./backend.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";
import { resolveBackingPath } from "./paths.ts";
import { permQapiList } from "./perms.ts";

type Json = Record<string, unknown>;

function backingDepth(node: BlockNode): number {
  let n = 0;
  for (let b = node.backing?.node; b; b = b.backing?.node) n++;
  return n;
}

/** ImageInfo (block/qapi.c bdrv_query_image_info). */
export function imageInfo(node: BlockNode, flat: boolean): Json {
  const d = node.driver.imageInfo?.() ?? {};
  const out: Json = {
    filename: node.driver.filename(),
    format: d.format ?? node.driverName,
  };
  if (d["dirty-flag"] !== undefined) out["dirty-flag"] = d["dirty-flag"];
  const actual = node.driver.actualSize?.();
  // (undefined: QEMU cannot tell, and leaves the member out)
  if (actual !== undefined) out["actual-size"] = actual;
  out["virtual-size"] = node.size();
  if (d["cluster-size"]) out["cluster-size"] = d["cluster-size"];
  const backingName = d["backing-filename"];
  if (backingName) {
    out["backing-filename"] = backingName;
    const base = node.file?.node.driver.filename() ?? node.driver.filename();
    out["full-backing-filename"] = resolveBackingPath(base, backingName);
    if (d["backing-filename-format"]) out["backing-filename-format"] = d["backing-filename-format"];
  }
  if (!flat && node.backing) out["backing-image"] = imageInfo(node.backing.node, false);
  if (d["format-specific"]) out["format-specific"] = d["format-specific"];
  return out;
}

/** BlockDeviceInfo (bdrv_block_device_info); `blk` when reached through a backend. */
export function blockDeviceInfo(node: BlockNode, opts: { flat: boolean; blk?: BlockBackend }): Json {
  if (node.ejected) throw genericError(`Block device ${node.nodeName} is ejected`);
  const out: Json = {
    file: node.driver.filename(),
    "node-name": node.nodeName,
    ro: node.readOnly,
    drv: node.driverName,
  };
  // bs->backing_file comes from a COW child only: filters (mirror_top) have none.
  if (node.backing && !node.isFilter) out.backing_file = node.backing.node.driver.filename();
  out.backing_file_depth = opts.flat ? 0 : backingDepth(node);
  out.encrypted = false;
  out.detect_zeroes = node.common.detectZeroes;
  for (const k of ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"]) out[k] = 0;
  out.image = imageInfo(node, opts.flat);
  out.cache = {
    writeback: opts.blk ? opts.blk.writeback : true,
    direct: node.common.cacheDirect,
    "no-flush": node.common.cacheNoFlush,
  };
  out.write_threshold = 0;
  if (node.bitmaps.length) out["dirty-bitmaps"] = node.bitmaps.map((b) => b.info());
  return out;
}

/** query-named-block-nodes: newest first. */
export function queryNamedBlockNodes(layer: BlockLayer, flat: boolean): Json[] {
  return [...layer.nodes].reverse().map((n) => blockDeviceInfo(n, { flat }));
}

/** BlockInfo for one backend (query-block). */
export function blockInfo(blk: BlockBackend): Json {
  const out: Json = { device: blk.name };
  if (blk.attachedDevice) out.qdev = blk.attachedDevice;
  out.type = "unknown";
  out.removable = blk.removable;
  out.locked = blk.locked;
  if (blk.node && !blk.node.ejected) out.inserted = blockDeviceInfo(blk.node, { flat: false, blk });
  if (blk.attachedDevice) {
    out.tray_open = false;
    out["io-status"] = blk.ioStatus;
  }
  return out;
}

export function queryBlock(layer: BlockLayer): Json[] {
  return layer.backends.filter((b) => b.name).map(blockInfo);
}

/** x-debug-query-block-graph, with QEMU's id assignment and prepend order. */
export function blockGraph(layer: BlockLayer): Json {
  const ids = new Map<object, number>();
  const id = (o: object) => {
    let v = ids.get(o);
    if (v === undefined) ids.set(o, (v = ids.size + 1));
    return v;
  };
  const nodes: Json[] = [];
  const edges: Json[] = [];
  const addNode = (o: object, type: string, name: string) => nodes.unshift({ id: id(o), type, name });
  const addEdge = (parent: object, e: { node: BlockNode; name: string; perm: number; shared: number }) =>
    edges.unshift({ parent: id(parent), child: id(e.node), name: e.name, perm: permQapiList(e.perm), "shared-perm": permQapiList(e.shared) });
  for (const blk of layer.backends) {
    addNode(blk, "block-backend", blk.name);
    if (blk.root) addEdge(blk, blk.root);
  }
  for (const job of layer.jobParents) {
    addNode(job, "block-job", job.graphName);
    for (const n of layer.nodes) for (const p of n.parents) if (p.parent === job) addEdge(job, p);
  }
  for (const n of layer.nodes) {
    addNode(n, "block-driver", n.nodeName);
    for (const c of [...n.children].reverse()) addEdge(n, c);
  }
  return { nodes, edges };
}

function cacheMode(info: Json): string {
  const c = info.cache as { writeback: boolean; direct: boolean; "no-flush": boolean };
  let s = c.writeback ? "writeback" : "writethrough";
  if (c.direct) s += ", direct";
  if (c["no-flush"]) s += ", ignore flushes";
  return s;
}

function describeInserted(title: string, info: Json, removable: boolean): string {
  let s = `${title}: ${info.file} (${info.drv}${info.ro ? ", read-only" : ""})\n`;
  if (removable) s += "    Removable device: not locked, tray closed\n";
  s += `    Cache mode:       ${cacheMode(info)}\n`;
  if (info.backing_file) s += `    Backing file:     ${info.backing_file} (chain depth: ${info.backing_file_depth})\n`;
  return s;
}

/** HMP `info block [-n] [-v] [device]`. */
export function infoBlock(layer: BlockLayer, argLine: string): string {
  const words = argLine.trim().split(/\s+/).filter(Boolean);
  const named = words.includes("-n");
  const device = words.find((w) => !w.startsWith("-"));
  const parts: string[] = [];
  if (named) {
    for (const n of [...layer.nodes].reverse()) parts.push(describeInserted(n.nodeName, blockDeviceInfo(n, { flat: false }), false));
  } else {
    for (const blk of layer.backends.filter((b) => b.name && (!device || b.name === device))) {
      const node = blk.node;
      if (!node) {
        parts.push(`${blk.name}: [not inserted]\n    Removable device: not locked, tray closed\n`);
        continue;
      }
      parts.push(describeInserted(`${blk.name} (${node.nodeName})`, blockDeviceInfo(node, { flat: false, blk }), blk.removable));
    }
  }
  return parts.join("\n");
}
