/**
 * The remaining block commands: query-blockstats, block-set-write-threshold,
 * blockdev-reopen, x-blockdev-change, and NBD exports (nbd-server-*,
 * block-export-*, query-block-exports).
 */
import { genericError } from "../core/error.ts";
import type { Emulator } from "../emulator.ts";
import { extraState } from "../machine-extra/state.ts";
import { queryBlockstats } from "../block/stats.ts";
import { setWriteThreshold } from "../block/threshold.ts";
import { blockdevReopen } from "../block/reopen.ts";
import { BlockExports } from "../nbd/block-export.ts";
import type { NbdAddress } from "../nbd/server.ts";
import { BLOCKDEV_DRIVERS, BlockdevOptions, BlockDirtyBitmapOrStr } from "./block.ts";
import { defineCommand, defineEvent, type CommandDef, type EventDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { SocketAddress, SocketAddressLegacy } from "./socket-address.ts";
import { array, bool, enumOf, int, num, optional, str, struct, union } from "./qapi.ts";

/** A user-created QOM object (object-add) by id. */
function qomObject(emu: Emulator, id: string): { typename: string } | undefined {
  return extraState(emu).qom.objects().children.get(id) as { typename: string } | undefined;
}

// ---- Per-emulator export state ------------------------------------------------

const exportsOf = new WeakMap<Emulator, BlockExports>();

/** The emulator's block exports (created on first use; closed with the emulator). */
export function blockExports(emu: Emulator): BlockExports {
  let e = exportsOf.get(emu);
  if (!e) {
    const created = new BlockExports(emu.block, emu.events);
    emu.closeHooks.push(() => created.close());
    exportsOf.set(emu, (e = created));
  }
  return e;
}

// ---- Schemas --------------------------------------------------------------------

const BlockExportRemoveMode = enumOf("BlockExportRemoveMode", ["safe", "hard"]);
const BlockExportType = enumOf("BlockExportType", ["nbd", "vhost-user-blk", "fuse", "vduse-blk"]);

const BlockExportOptions = union(
  "BlockExportOptions",
  "type",
  {
    type: BlockExportType,
    id: str(),
    "fixed-iothread": optional(bool()),
    iothread: optional(str()),
    "node-name": str(),
    writable: optional(bool()),
    writethrough: optional(bool()),
  },
  {
    nbd: {
      name: optional(str()),
      description: optional(str()),
      bitmaps: optional(array(BlockDirtyBitmapOrStr)),
      "allocation-depth": optional(bool()),
    },
    "vhost-user-blk": {
      addr: SocketAddress,
      "logical-block-size": optional(int("size")),
      "num-queues": optional(int("uint16")),
    },
    fuse: {
      mountpoint: str(),
      growable: optional(bool()),
      "allow-other": optional(enumOf("FuseExportAllowOther", ["off", "on", "auto"])),
    },
    "vduse-blk": {
      name: str(),
      "num-queues": optional(int("uint16")),
      "queue-size": optional(int("uint16")),
      "logical-block-size": optional(int("size")),
      serial: optional(str()),
    },
  },
);

const intMember = () => int();
const BlockDeviceTimedStats = struct("BlockDeviceTimedStats", {
  ...Object.fromEntries(
    ["interval_length", "min_rd_latency_ns", "max_rd_latency_ns", "avg_rd_latency_ns", "min_wr_latency_ns", "max_wr_latency_ns",
      "avg_wr_latency_ns", "min_flush_latency_ns", "max_flush_latency_ns", "avg_flush_latency_ns"].map((k) => [k, intMember()]),
  ),
  avg_rd_queue_depth: num(),
  avg_wr_queue_depth: num(),
});
const BlockLatencyHistogramInfo = struct("BlockLatencyHistogramInfo", { boundaries: array(int("uint64")), bins: array(int("uint64")) });
const counters = (names: string[]) => Object.fromEntries(names.map((k) => [k, intMember()]));
const BlockDeviceStats = struct("BlockDeviceStats", {
  ...counters([
    "rd_bytes", "wr_bytes", "unmap_bytes", "rd_operations", "wr_operations", "flush_operations", "unmap_operations",
    "rd_total_time_ns", "wr_total_time_ns", "flush_total_time_ns", "unmap_total_time_ns", "wr_highest_offset",
    "rd_merged", "wr_merged", "unmap_merged",
  ]),
  idle_time_ns: optional(int()),
  ...counters([
    "failed_rd_operations", "failed_wr_operations", "failed_flush_operations", "failed_unmap_operations",
    "invalid_rd_operations", "invalid_wr_operations", "invalid_flush_operations", "invalid_unmap_operations",
  ]),
  account_invalid: bool(),
  account_failed: bool(),
  timed_stats: array(BlockDeviceTimedStats),
  rd_latency_histogram: optional(BlockLatencyHistogramInfo),
  wr_latency_histogram: optional(BlockLatencyHistogramInfo),
  flush_latency_histogram: optional(BlockLatencyHistogramInfo),
});
const fileStats = { "discard-nb-ok": int("uint64"), "discard-nb-failed": int("uint64"), "discard-bytes-ok": int("uint64") };
const nvmeStats = { "completion-errors": int("uint64"), "aligned-accesses": int("uint64"), "unaligned-accesses": int("uint64") };
const BlockStatsSpecific = union(
  "BlockStatsSpecific",
  "driver",
  { driver: enumOf("BlockdevDriver", BLOCKDEV_DRIVERS) },
  // QAPI lists the variants with members first, then the implicit empty ones in enum order.
  {
    file: fileStats,
    host_device: fileStats,
    nvme: nvmeStats,
    ...Object.fromEntries(BLOCKDEV_DRIVERS.filter((d) => !["file", "host_device", "nvme"].includes(d)).map((d) => [d, {}])),
  },
);
const BlockStatsSchema = struct("BlockStats", {
  device: optional(str()),
  qdev: optional(str()),
  "node-name": optional(str()),
  stats: BlockDeviceStats,
  "driver-specific": optional(BlockStatsSpecific),
});
// BlockStats nests itself (a node's file child and backing file); introspection only reads these entries.
Object.assign(BlockStatsSchema.entries, { parent: optional(BlockStatsSchema), backing: optional(BlockStatsSchema) });

// ---- Helpers ----------------------------------------------------------------------

function nbdAddress(addr: { type: string; data: Record<string, unknown> }): NbdAddress {
  const d = addr.data;
  switch (addr.type) {
    case "inet": {
      const port = Number(d.port);
      if (!/^\d+$/.test(String(d.port)) || port > 65535) {
        throw genericError(`address resolution failed for ${d.host}:${d.port}: Servname not supported for ai_socktype`);
      }
      return { type: "inet", host: String(d.host), port };
    }
    case "unix":
      return { type: "unix", path: String(d.path) };
    case "fd":
      throw genericError(`File descriptor named '${d.str}' has not been found`);
    default:
      throw genericError("Failed to create socket: Address family not supported by protocol");
  }
}

async function nbdServerAdd(
  emu: Emulator,
  a: { device: string; name?: string; description?: string; writable?: boolean; bitmap?: string },
): Promise<void> {
  const ex = blockExports(emu);
  if (!ex.running) throw genericError("NBD server not running");
  const node = emu.block.lookupNode(a.device, a.device);
  // nbd-server-add quietly exports a read-only node read-only.
  await ex.add({
    type: "nbd",
    id: a.name ?? a.device,
    nodeName: node.nodeName,
    name: a.name ?? a.device,
    description: a.description,
    writable: (a.writable ?? false) && !node.readOnly,
    writethrough: false,
    bitmaps: a.bitmap !== undefined ? [a.bitmap] : undefined,
  });
}

/** HMP's socket_parse for nbd_server_start: unix:PATH, or HOST:PORT. */
function parseHmpAddress(text: string): NbdAddress {
  if (text.startsWith("unix:")) return { type: "unix", path: text.slice(5) };
  const m = /^(\[[^\]]*\]|[^:]*):(.+)$/.exec(text);
  if (!m) throw genericError(`error parsing address '${text}'`);
  return nbdAddress({ type: "inet", data: { host: m[1]!.replace(/^\[|\]$/g, ""), port: m[2]! } });
}

/** Runs an HMP command body; a QMP-style failure becomes HMP's "Error: ..." line. */
async function hmpRun(fn: () => Promise<string | void> | string | void): Promise<string> {
  try {
    return (await fn()) ?? "";
  } catch (e) {
    const desc = (e as { desc?: string }).desc;
    if (desc === undefined) throw e;
    return `Error: ${desc}\n`;
  }
}

/** Splits "-a -w rest" into flags and words. */
function hmpWords(line: string): { flags: Set<string>; words: string[] } {
  const all = line.trim().split(/\s+/).filter(Boolean);
  return { flags: new Set(all.filter((w) => /^-[a-z]$/.test(w)).map((w) => w[1]!)), words: all.filter((w) => !/^-[a-z]$/.test(w)) };
}

// ---- Commands ---------------------------------------------------------------------

export const events: EventDef[] = [
  defineEvent(
    "BLOCK_WRITE_THRESHOLD",
    struct("BLOCK_WRITE_THRESHOLD-data", { "node-name": str(), "amount-exceeded": int("uint64"), "write-threshold": int("uint64") }),
  ),
  defineEvent("BLOCK_EXPORT_DELETED", struct("BLOCK_EXPORT_DELETED-data", { id: str() })),
];

export const commands: CommandDef[] = [
  defineCommand({
    name: "query-blockstats",
    args: struct("q_obj_query-blockstats-arg", { "query-nodes": optional(bool()) }),
    returns: array(BlockStatsSchema),
    handler: (a, { emu }) => queryBlockstats(emu.block, a["query-nodes"] ?? false),
  }),
  defineCommand({
    name: "block-set-write-threshold",
    args: struct("q_obj_block-set-write-threshold-arg", { "node-name": str(), "write-threshold": int("uint64") }),
    handler: (a, { emu }) => {
      setWriteThreshold(emu.block, emu.events, a["node-name"], a["write-threshold"]);
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-reopen",
    args: struct("q_obj_blockdev-reopen-arg", { options: array(BlockdevOptions) }),
    handler: async (a, { emu }) => {
      await blockdevReopen(emu.block, a.options as Record<string, unknown>[]);
      return {};
    },
  }),
  defineCommand({
    name: "x-blockdev-change",
    args: struct("q_obj_x-blockdev-change-arg", { parent: str(), child: optional(str()), node: optional(str()) }),
    features: ["unstable"],
    handler: (a, { emu }) => {
      const parent = emu.block.lookupNode(a.parent, a.parent);
      if ((a.child === undefined) === (a.node === undefined)) {
        throw genericError(a.child !== undefined ? "The parameters child and node are in conflict" : "Either child or node must be specified");
      }
      // None of our drivers (no quorum) can add or remove children at runtime.
      const name = emu.block.deviceOrNodeName(parent);
      if (a.child !== undefined) {
        if (!parent.child(a.child)) throw genericError(`Node '${a.parent}' does not have child '${a.child}'`);
        throw genericError(`The node ${name} does not support removing a child`);
      }
      if (!emu.block.findNode(a.node!)) throw genericError(`Node '${a.node}' not found`);
      throw genericError(`The node ${name} does not support adding a child`);
    },
  }),
  defineCommand({
    name: "nbd-server-start",
    args: struct("q_obj_nbd-server-start-arg", {
      addr: SocketAddressLegacy,
      "tls-creds": optional(str()),
      "tls-authz": optional(str()),
      "max-connections": optional(int("uint32")),
    }),
    handler: async (a, { emu }) => {
      const ex = blockExports(emu);
      if (ex.running) throw genericError("NBD server already running");
      const creds = a["tls-creds"];
      if (creds !== undefined) {
        const obj = qomObject(emu, creds);
        if (!obj) throw genericError(`No TLS credentials with id '${creds}'`);
        if (!obj.typename.startsWith("tls-creds-")) throw genericError(`Object with id '${creds}' is not TLS credentials`);
        // TLS itself is not implemented: the server would refuse every client QEMU would accept.
        throw genericError("Expected TLS credentials for a server endpoint");
      }
      const addr = nbdAddress(a.addr as { type: string; data: Record<string, unknown> });
      await ex.startServer(addr, Number(a["max-connections"] ?? 0));
      return {};
    },
  }),
  defineCommand({
    name: "nbd-server-stop",
    handler: async (_a, { emu }) => {
      await blockExports(emu).stopServer();
      return {};
    },
  }),
  defineCommand({
    name: "nbd-server-add",
    features: ["deprecated"],
    args: struct("NbdServerAddOptions", {
      name: optional(str()),
      description: optional(str()),
      device: str(),
      writable: optional(bool()),
      bitmap: optional(str()),
    }),
    handler: async (a, { emu }) => {
      await nbdServerAdd(emu, a);
      return {};
    },
  }),
  defineCommand({
    name: "nbd-server-remove",
    features: ["deprecated"],
    args: struct("q_obj_nbd-server-remove-arg", { name: str(), mode: optional(BlockExportRemoveMode) }),
    handler: async (a, { emu }) => {
      const ex = blockExports(emu);
      const exp = ex.find(a.name);
      if (!exp) throw genericError(`Export '${a.name}' is not found`);
      await ex.remove(exp, a.mode ?? "safe");
      return {};
    },
  }),
  defineCommand({
    name: "block-export-add",
    args: BlockExportOptions,
    handler: async (a, { emu }) => {
      const ex = blockExports(emu);
      const o = a as typeof a & {
        name?: string;
        description?: string;
        bitmaps?: (string | { node: string; name: string })[];
        mountpoint?: string;
        addr?: { type: string; path?: string };
      };
      if (o.iothread !== undefined && qomObject(emu, o.iothread)?.typename !== "iothread") {
        throw genericError(`iothread "${o.iothread}" not found`);
      }
      await ex.add({
        type: o.type,
        mountpoint: o.mountpoint,
        socketPath: o.addr?.type === "unix" ? o.addr.path : undefined,
        id: o.id,
        nodeName: o["node-name"],
        name: o.name,
        description: o.description,
        writable: o.writable ?? false,
        writethrough: o.writethrough ?? false,
        bitmaps: o.bitmaps,
      });
      return {};
    },
  }),
  defineCommand({
    name: "block-export-del",
    args: struct("q_obj_block-export-del-arg", { id: str(), mode: optional(BlockExportRemoveMode) }),
    handler: async (a, { emu }) => {
      const ex = blockExports(emu);
      const exp = ex.find(a.id);
      if (!exp) throw genericError(`Export '${a.id}' is not found`);
      await ex.remove(exp, a.mode ?? "safe");
      return {};
    },
  }),
  defineCommand({
    name: "query-block-exports",
    returns: array(
      struct("BlockExportInfo", { id: str(), type: BlockExportType, "node-name": str(), "shutting-down": bool() }),
    ),
    handler: (_a, { emu }) => blockExports(emu).query(),
  }),
];

const HMP_STATS = [
  "rd_bytes", "wr_bytes", "rd_operations", "wr_operations", "flush_operations", "wr_total_time_ns", "rd_total_time_ns",
  "flush_total_time_ns", "rd_merged", "wr_merged", "idle_time_ns",
] as const;

export const hmpCommands: HmpCommand[] = [
  {
    name: "info blockstats",
    run: (_line, { emu }) =>
      queryBlockstats(emu.block, false)
        .map((b) => {
          const st = b.stats as Record<string, number>;
          return `${b.device}: ${HMP_STATS.map((k) => `${k}=${st[k] ?? 0}`).join(" ")}\n`;
        })
        .join(""),
  },
  {
    name: "nbd_server_start",
    run: (line, { emu }) =>
      hmpRun(async () => {
        const { flags, words } = hmpWords(line);
        const ex = blockExports(emu);
        if (ex.running) throw genericError("NBD server already running");
        await ex.startServer(parseHmpAddress(words[0] ?? ""), 0);
        if (!flags.has("a")) return;
        // -a: every named drive with a medium, under its own name (-w: writable).
        for (const blk of emu.block.backends.filter((b) => b.name && b.node)) {
          await nbdServerAdd(emu, { device: blk.name, writable: flags.has("w") });
        }
      }),
  },
  {
    name: "nbd_server_add",
    run: (line, { emu }) =>
      hmpRun(async () => {
        const { flags, words } = hmpWords(line);
        await nbdServerAdd(emu, { device: words[0] ?? "", name: words[1], writable: flags.has("w") });
      }),
  },
  {
    name: "nbd_server_remove",
    run: (line, { emu }) =>
      hmpRun(async () => {
        const { flags, words } = hmpWords(line);
        const ex = blockExports(emu);
        const exp = ex.find(words[0] ?? "");
        if (!exp) throw genericError(`Export '${words[0] ?? ""}' is not found`);
        await ex.remove(exp, flags.has("f") ? "hard" : "safe");
      }),
  },
  {
    name: "nbd_server_stop",
    run: (_line, { emu }) => hmpRun(() => blockExports(emu).stopServer()),
  },
];
