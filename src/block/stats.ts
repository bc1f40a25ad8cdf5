/**
 * query-blockstats: BlockStats for every named BlockBackend (with its node
 * tree below) or, with query-nodes, for every named node.
 *
 * Device-level counters (BlockAcctStats) only move for guest devices'
 * requests, which QEMU's -M none never makes: qemu-io, NBD exports and block
 * jobs do not account. Here only x-qmpemu-guest-io (our stand-in for a guest
 * device) does; otherwise they stay zero, with the backend's default
 * account_invalid/account_failed (true). A node's own counters are zero too
 * except wr_highest_offset and file-posix's discard statistics.
 */
import { BlockBackend } from "./backend.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";

type Json = Record<string, unknown>;

type AcctKind = "rd" | "wr" | "flush" | "unmap";

/** BlockAcctStats of one backend: what its guest's requests did. */
interface AcctStats {
  bytes: Record<AcctKind, number>;
  ops: Record<AcctKind, number>;
  failed: Record<AcctKind, number>;
  totalNs: Record<AcctKind, number>;
  /** Clock time of the last accounted request; undefined until there is one. */
  lastAccessNs?: number;
  /** Latency histograms (block-latency-histogram-set), by request type. */
  histograms: Partial<Record<AcctKind, LatencyHistogram>>;
}

/** BlockLatencyHistogram: bins[i] counts latencies in [boundaries[i-1], boundaries[i]). */
interface LatencyHistogram {
  /** uint64 as given (exact beyond 2^53 for queries); compared with latencies as numbers. */
  readonly boundaries: readonly (number | bigint)[];
  readonly bins: number[];
}

const zero = (): Record<AcctKind, number> => ({ rd: 0, wr: 0, flush: 0, unmap: 0 });
const acctOf = new WeakMap<BlockBackend, AcctStats>();

function acctStats(blk: BlockBackend): AcctStats {
  let a = acctOf.get(blk);
  if (!a) acctOf.set(blk, (a = { bytes: zero(), ops: zero(), failed: zero(), totalNs: zero(), histograms: {} }));
  return a;
}

/** The request types a latency histogram can be set for, and their query-blockstats members. */
export const HISTOGRAM_KINDS = { read: "rd", write: "wr", flush: "flush" } as const;

/**
 * block_latency_histogram_set: boundaries must strictly ascend from above 0
 * (false otherwise, leaving the histogram as it was); the bins start at zero.
 */
export function setLatencyHistogram(blk: BlockBackend, type: keyof typeof HISTOGRAM_KINDS, boundaries: readonly (number | bigint)[]): boolean {
  if (boundaries.some((b, i) => b <= (i ? boundaries[i - 1]! : 0))) return false;
  acctStats(blk).histograms[HISTOGRAM_KINDS[type]] = { boundaries: [...boundaries], bins: new Array(boundaries.length + 1).fill(0) };
  return true;
}

/** block_latency_histograms_clear. */
export function clearLatencyHistograms(blk: BlockBackend): void {
  acctStats(blk).histograms = {};
}

function accountLatency(h: LatencyHistogram | undefined, latencyNs: number): void {
  if (!h) return;
  // The first boundary above the latency names the bin; none above: the last bin.
  const i = h.boundaries.findIndex((b) => latencyNs < b);
  h.bins[i < 0 ? h.boundaries.length : i]!++;
}

/** x-qmpemu-guest-io ops as the block_acct type a guest device would use. */
const ACCT_KIND: Record<string, AcctKind> = { read: "rd", write: "wr", zero: "wr", discard: "unmap", flush: "flush" };

/**
 * Accounts one guest request on a named backend (block_acct_done/failed).
 * Only guest-device I/O counts: qemu-io, NBD clients and jobs do not.
 */
export function accountGuestIo(blk: BlockBackend, op: string, bytes: number, ok: boolean, startNs: number, endNs: number): void {
  const kind = ACCT_KIND[op];
  if (!kind || !blk.name) return;
  const a = acctStats(blk);
  // Failed requests count in the histogram too (block_account_one_io).
  accountLatency(a.histograms[kind], endNs - startNs);
  if (ok) {
    a.bytes[kind] += bytes;
    a.ops[kind]++;
    a.totalNs[kind] += endNs - startNs;
  } else {
    a.failed[kind]++;
  }
  a.lastAccessNs = endNs;
}

/** BlockDeviceStats: the backend's accounting (all zero for nodes and idle backends). */
function deviceStats(accounting: boolean, wrHighestOffset: number, acct?: AcctStats, nowNs = 0): Json {
  const b = acct?.bytes ?? zero();
  const o = acct?.ops ?? zero();
  const f = acct?.failed ?? zero();
  const t = acct?.totalNs ?? zero();
  const out: Json = {
    rd_bytes: b.rd,
    wr_bytes: b.wr,
    unmap_bytes: b.unmap,
    rd_operations: o.rd,
    wr_operations: o.wr,
    flush_operations: o.flush,
    unmap_operations: o.unmap,
    rd_total_time_ns: t.rd,
    wr_total_time_ns: t.wr,
    flush_total_time_ns: t.flush,
    unmap_total_time_ns: t.unmap,
    wr_highest_offset: wrHighestOffset,
    rd_merged: 0,
    wr_merged: 0,
    unmap_merged: 0,
  };
  // idle_time_ns only once something was accounted.
  if (acct?.lastAccessNs !== undefined) out.idle_time_ns = Math.max(0, nowNs - acct.lastAccessNs);
  Object.assign(out, {
    failed_rd_operations: f.rd,
    failed_wr_operations: f.wr,
    failed_flush_operations: f.flush,
    failed_unmap_operations: f.unmap,
    invalid_rd_operations: 0,
    invalid_wr_operations: 0,
    invalid_flush_operations: 0,
    invalid_unmap_operations: 0,
    account_invalid: accounting,
    account_failed: accounting,
    timed_stats: [],
  });
  for (const kind of Object.values(HISTOGRAM_KINDS)) {
    const h = acct?.histograms[kind];
    if (h) out[`${kind}_latency_histogram`] = { boundaries: [...h.boundaries], bins: [...h.bins] };
  }
  return out;
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

function backendStats(blk: BlockBackend, nowNs: number): Json {
  const node = blk.node;
  const out: Json = node ? nodeStats(node, true) : {};
  out.device = blk.name;
  if (blk.attachedDevice) out.qdev = blk.attachedDevice;
  // The backend's own accounting replaces the root node's counters.
  out.stats = deviceStats(true, node?.ioStats.wrHighestOffset ?? 0, acctOf.get(blk), nowNs);
  return out;
}

export function queryBlockstats(layer: BlockLayer, queryNodes: boolean): Json[] {
  if (queryNodes) return layer.nodes.map((n) => nodeStats(n, false));
  const now = layer.deps.clock.nowNs();
  return layer.backends.filter((b) => b.name || b.attachedDevice).map((b) => backendStats(b, now));
}
