/**
 * What the block layer reports: BlockDeviceInfo / ImageInfo / BlockInfo
 * (query-named-block-nodes, query-block), the x-debug-query-block-graph
 * dump, and HMP `info block` text. Pure readers of the graph.
 */
import { genericError } from "../core/error.ts";
import { asInt64 } from "../core/int64.ts";
import type { BlockBackend } from "./backend.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";
import { resolveBackingPath } from "./paths.ts";
import { permQapiList } from "./perms.ts";
import { throttleInfo } from "./io-limits.ts";
import { qdictOrder } from "../json/writer.ts";
import { listSnapshots, snapshotInfo, snapshotListDump } from "./internal-snapshot.ts";

type Json = Record<string, unknown>;

/** Filters count as a layer too: QEMU walks bdrv_filter_or_cow_bs. */
function backingDepth(node: BlockNode): number {
  let n = 0;
  for (let b = node.cowOrFiltered; b; b = b.cowOrFiltered) n++;
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
  const snapshots = listSnapshots(node);
  if (snapshots.length) out.snapshots = snapshots.map(snapshotInfo);
  // A filter's filtered child shows up as its backing image, as in QEMU (kept for compatibility there).
  const below = node.cowOrFiltered;
  if (!flat && below) out["backing-image"] = imageInfo(below, false);
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
  // I/O limits belong to the backend: a node reached without one shows zeros.
  const limits = throttleInfo(opts.blk);
  Object.assign(out, limits.rates);
  out.image = imageInfo(node, opts.flat);
  Object.assign(out, limits.rest);
  out.cache = {
    writeback: opts.blk ? opts.blk.writeback : true,
    direct: node.common.cacheDirect,
    "no-flush": node.common.cacheNoFlush,
  };
  out.write_threshold = asInt64(node.writeThreshold);
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
  if (info.detect_zeroes !== "off") s += `    Detect zeroes:    ${info.detect_zeroes}\n`;
  s += throttlingLine(info);
  return s;
}

/** print_block_info's throttling line, when some average rate is set (absent members print as 0). */
function throttlingLine(info: Json): string {
  const v = (k: string) => (info[k] as number | undefined) ?? 0;
  if (!["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"].some((k) => v(k))) return "";
  const nums = ["bps", "bps_rd", "bps_wr", "bps_max", "bps_rd_max", "bps_wr_max", "iops", "iops_rd", "iops_wr", "iops_max", "iops_rd_max", "iops_wr_max", "iops_size"];
  return `    I/O throttling:   ${nums.map((k) => `${k}=${v(k)}`).join(" ")} group=${info.group}\n`;
}

/** util/cutils.c size_to_str: three significant digits and a binary unit ("4.25 MiB", "512 "). */
export function sizeToStr(val: number): string {
  const suffixes = ["", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  const i = val <= 0 ? 0 : Math.min(6, Math.floor((Math.floor(Math.log2(val / (1000 / 1024))) + 1 - 1) / 10));
  return `${g3(val / 2 ** (i * 10))} ${suffixes[i]}`;
}

/** printf's %0.3g for the values size_to_str produces (< 1024): exact ties round to even. */
function g3(x: number): string {
  if (x === 0) return "0";
  const factor = 10 ** (2 - Math.floor(Math.log10(x)));
  const y = x * factor;
  const f = Math.floor(y);
  const r = y - f > 0.5 || (y - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return String(Number((r / factor).toPrecision(3)));
}

/** dump_qobject: nested QDict/QList text with 4-space indents, keys with '-' → ' ', in QDict order. */
function dumpValue(indent: number, key: string, v: unknown): string {
  const pad = " ".repeat(indent * 4);
  if (Array.isArray(v)) return `${pad}${key}:\n` + v.map((x, i) => dumpValue(indent + 1, `[${i}]`, x)).join("");
  if (v && typeof v === "object") return `${pad}${key}:\n` + dumpDict(indent + 1, v as Json);
  return `${pad}${key}: ${String(v)}\n`;
}

function dumpDict(indent: number, d: Json): string {
  return qdictOrder(Object.keys(d))
    .map((k) => dumpValue(indent, k.replace(/-/g, " "), d[k]))
    .join("");
}

/** bdrv_image_info_dump, for `info block -v`. */
function imageInfoDump(info: Json): string {
  let s = `image: ${info.filename}\nfile format: ${info.format}\n`;
  s += `virtual size: ${sizeToStr(info["virtual-size"] as number)} (${info["virtual-size"]} bytes)\n`;
  s += `disk size: ${info["actual-size"] === undefined ? "unavailable" : sizeToStr(info["actual-size"] as number)}\n`;
  if (info["cluster-size"] !== undefined) s += `cluster_size: ${info["cluster-size"]}\n`;
  if (info["dirty-flag"]) s += "cleanly shut down: no\n";
  if (info["backing-filename"] !== undefined) {
    s += `backing file: ${info["backing-filename"]}`;
    if (info["full-backing-filename"] === undefined) s += " (cannot determine actual path)";
    else if (info["full-backing-filename"] !== info["backing-filename"]) s += ` (actual path: ${info["full-backing-filename"]})`;
    s += "\n";
    if (info["backing-filename-format"] !== undefined) s += `backing file format: ${info["backing-filename-format"]}\n`;
  }
  if (info.snapshots) s += snapshotListDump(info.snapshots as Json[]);
  const fs = info["format-specific"] as { data: Json } | undefined;
  if (fs) s += "Format specific information:\n" + dumpDict(1, fs.data);
  return s;
}

function imageChainDump(info: Json): string {
  let s = "";
  for (let i: Json | undefined = info; i; i = i["backing-image"] as Json | undefined) s += imageInfoDump(i);
  return s;
}

/** HMP `info block [-n] [-v] [device]`. */
export function infoBlock(layer: BlockLayer, argLine: string): string {
  const words = argLine.trim().split(/\s+/).filter(Boolean);
  const named = words.includes("-n");
  const verbose = words.includes("-v");
  const images = (info: Json) => (verbose ? `\nImages:\n${imageChainDump(info.image as Json)}` : "");
  const device = words.find((w) => !w.startsWith("-"));
  // Every entry but the list's first starts with a blank line, even when a filter hid the first.
  let out = "";
  if (!named) {
    layer.backends.filter((b) => b.name).forEach((blk, i) => {
      if (device && blk.name !== device) return;
      if (i > 0) out += "\n";
      const node = blk.node && !blk.node.ejected ? blk.node : null;
      if (!node) {
        out += `${blk.name}: [not inserted]\n    Removable device: not locked, tray closed\n`;
        return;
      }
      const info = blockDeviceInfo(node, { flat: false, blk });
      out += describeInserted(`${blk.name} (${node.nodeName})`, info, blk.removable) + images(info);
    });
    // A name no backend has may still be a node's.
    if (!device || out) return out;
  }
  // QEMU ignores the query's error (an ejected node) and prints nothing at all.
  if (layer.nodes.some((n) => n.ejected)) return "";
  [...layer.nodes].reverse().forEach((n, i) => {
    if (device && n.nodeName !== device) return;
    if (i > 0) out += "\n";
    const info = blockDeviceInfo(n, { flat: false });
    out += describeInserted(n.nodeName, info, false) + images(info);
  });
  return out;
}
