/**
 * query-blockstats: BlockStats for every named BlockBackend (with its node
 * tree below) or, with query-nodes, for every named node.
 *
 * Device-level counters (BlockAcctStats) only move for guest devices'
 * requests, which QEMU's -M none never makes: qemu-io, NBD exports and block
 * jobs do not account. So they stay zero, with the backend's default
 * account_invalid/account_failed (true); a node's own counters are zero too
 * except wr_highest_offset and file-posix's discard statistics.
 */
import { BlockBackend } from "./backend.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";

type Json = Record<string, unknown>;

/** BlockDeviceStats with every counter zero. */
function deviceStats(accounting: boolean, wrHighestOffset: number): Json {
  return {
    rd_bytes: 0,
    wr_bytes: 0,
    unmap_bytes: 0,
    rd_operations: 0,
    wr_operations: 0,
    flush_operations: 0,
    unmap_operations: 0,
    rd_total_time_ns: 0,
    wr_total_time_ns: 0,
    flush_total_time_ns: 0,
    unmap_total_time_ns: 0,
    wr_highest_offset: wrHighestOffset,
    rd_merged: 0,
    wr_merged: 0,
    unmap_merged: 0,
    // idle_time_ns is left out: nothing was ever accounted.
    failed_rd_operations: 0,
    failed_wr_operations: 0,
    failed_flush_operations: 0,
    failed_unmap_operations: 0,
    invalid_rd_operations: 0,
    invalid_wr_operations: 0,
    invalid_flush_operations: 0,
    invalid_unmap_operations: 0,
    account_invalid: accounting,
    account_failed: accounting,
    timed_stats: [],
  };
}

/** Drivers with BlockStatsSpecific (file-posix's discard counters). */
const DRIVER_SPECIFIC: Record<string, (n: BlockNode) => Json> = {
  file: (n) => ({
    driver: "file",
    "discard-nb-ok": n.ioStats.discardNbOk,
    "discard-nb-failed": n.ioStats.discardNbFailed,
    "discard-bytes-ok": n.ioStats.discardBytesOk,
  }),
};

/** bdrv_query_bds_stats: a node, its file child and (device level) its COW child, recursively. */
function nodeStats(start: BlockNode, blkLevel: boolean): Json {
  let node = start;
  // A device-level query looks through filters the user did not name (mirror_top & co).
  while (blkLevel && node.isFilter && node.autoNamed && node.filtered) node = node.filtered.node;
  const out: Json = {};
  if (node.nodeName) out["node-name"] = node.nodeName;
  out.stats = deviceStats(false, node.ioStats.wrHighestOffset);
  const specific = DRIVER_SPECIFIC[node.driverName];
  if (specific) out["driver-specific"] = specific(node);
  const file = node.file?.node;
  if (file) out.parent = nodeStats(file, blkLevel);
  const cow = node.isFilter ? undefined : node.backing?.node;
  if (blkLevel && cow) out.backing = nodeStats(cow, blkLevel);
  return out;
}

function backendStats(blk: BlockBackend): Json {
  const node = blk.node;
  const out: Json = node ? nodeStats(node, true) : {};
  out.device = blk.name;
  if (blk.attachedDevice) out.qdev = blk.attachedDevice;
  // The backend's own accounting replaces the root node's counters.
  out.stats = deviceStats(true, node?.ioStats.wrHighestOffset ?? 0);
  return out;
}

export function queryBlockstats(layer: BlockLayer, queryNodes: boolean): Json[] {
  if (queryNodes) return layer.nodes.map((n) => nodeStats(n, false));
  return layer.backends.filter((b) => b.name || b.attachedDevice).map(backendStats);
}
