/**
 * Block-layer QMP commands (blockdev-add/del, queries, snapshots, resize,
 * dirty bitmaps, x-qmpemu-guest-io) and HMP `qemu-io` / `info block`.
 * Argument schemas are exported for `transaction`.
 */
import type * as v from "valibot";
import { genericError } from "../core/error.ts";
import { BASE_FIELDS, type Fields, type FieldType } from "../block/options.ts";
import { fileDriver } from "../block/drivers/file.ts";
import { rawDriver } from "../block/drivers/raw.ts";
import { qcow2Driver } from "../block/drivers/qcow2.ts";
import { nullDriver } from "../block/drivers/null.ts";
import { blkdebugDriver } from "../block/drivers/blkdebug.ts";
import { FileLocks } from "../block/locks.ts";
import { blockGraph, infoBlock, queryBlock, queryNamedBlockNodes } from "../block/query.ts";
import {
  bitmapAdd, bitmapClear, bitmapDisable, bitmapEnable, bitmapMerge, bitmapRemove, bitmapSha256, type BitmapRef,
} from "../block/bitmap-ops.ts";
import { blockResize } from "../block/snapshot.ts";
import { runAsTransaction } from "./transactions.ts";
import { deleteInternalSnapshot } from "../block/internal-snapshot.ts";
import { accountGuestIo } from "../block/stats.ts";
import { hmpQemuIo, parseQemuIoHmpArgs } from "../block/qemu-io.ts";
import { drainedSection } from "../block/jobs/mirror-port.ts";
import {
  ensurePerm, errorText, guestDiscard, guestFlush, guestRead, guestWrite, guestWriteZeroes, openIoTarget, WRITE_PERM,
} from "../block/guest-io.ts";
import { defineCommand, defineEvent, type CommandDef, type EventDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { alternate, any, array, bool, enumOf, int, intNumber, optional, str, struct, union } from "./qapi.ts";

// ---- BlockdevOptions as a QAPI union, from the drivers' option tables ------

/** QEMU 7.2's BlockdevDriver enum (x86_64 Debian build). */
export const BLOCKDEV_DRIVERS = [
  "blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop", "compress", "copy-before-write",
  "copy-on-read", "dmg", "file", "snapshot-access", "ftp", "ftps", "gluster", "host_cdrom", "host_device", "http",
  "https", "iscsi", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme", "parallels",
  "preallocate", "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication", "snapshot-access", "ssh", "throttle",
  "vdi", "vhdx", "vmdk", "vpc", "vvfat",
].filter((d, i, all) => all.indexOf(d) === i) as [string, ...string[]];

/** Filters the block-jobs layer registers; their members are accepted here, opened there. */
const JOB_FILTER_FIELDS: Record<string, Fields> = {
  "copy-before-write": {
    file: { type: "ref", required: true },
    target: { type: "ref", required: true },
    bitmap: { type: { struct: { node: { type: "str", required: true }, name: { type: "str", required: true } } } },
    "on-cbw-error": { type: { enum: ["break-guest-write", "break-snapshot"] } },
    "cbw-timeout": { type: "int" },
  },
  "copy-on-read": { file: { type: "ref", required: true }, bottom: { type: "str" } },
  throttle: { "throttle-group": { type: "str", required: true }, file: { type: "ref", required: true } },
  "snapshot-access": { file: { type: "ref", required: true } },
};

const DRIVER_FIELDS: Record<string, Fields> = {
  file: fileDriver(new FileLocks()).fields,
  raw: rawDriver.fields,
  qcow2: qcow2Driver.fields,
  "null-co": nullDriver("null-co").fields,
  "null-aio": nullDriver("null-aio").fields,
  blkdebug: blkdebugDriver.fields,
  ...JOB_FILTER_FIELDS,
};

let schemaSeq = 0;
function toSchema(t: FieldType, name: string): v.GenericSchema {
  if (t === "str") return str();
  if (t === "bool") return bool();
  if (t === "int") return int();
  if (t === "size") return int("size");
  if (typeof t === "string") return any(); // refs: checked (recursively) by the block layer
  if ("enum" in t) return enumOf(name, t.enum as [string, ...string[]]);
  if ("list" in t) return array(toSchema(t.list, name));
  return struct(`${name}-${++schemaSeq}`, toEntries(t.struct, name));
}

function toEntries(fields: Fields, prefix: string): v.ObjectEntries {
  const out: v.ObjectEntries = {};
  for (const [k, f] of Object.entries(fields)) {
    const s = toSchema(f.type, `${prefix}-${k}`);
    out[k] = f.required ? s : optional(s);
  }
  return out;
}

export const BlockdevOptions = union(
  "BlockdevOptions",
  "driver",
  { driver: enumOf("BlockdevDriver", BLOCKDEV_DRIVERS), ...toEntries(BASE_FIELDS, "BlockdevOptions") },
  Object.fromEntries(BLOCKDEV_DRIVERS.map((d) => [d, toEntries(DRIVER_FIELDS[d] ?? {}, `BlockdevOptions${d}`)])),
);

// ---- Argument schemas --------------------------------------------------------

export const BlockDirtyBitmap = struct("BlockDirtyBitmap", { node: str(), name: str() });
export const BlockDirtyBitmapAdd = struct("BlockDirtyBitmapAdd", {
  node: str(),
  name: str(),
  granularity: optional(int("uint32")),
  persistent: optional(bool()),
  disabled: optional(bool()),
});
export const BlockDirtyBitmapOrStr = alternate("BlockDirtyBitmapOrStr", [str(), BlockDirtyBitmap] as const);
export const BlockDirtyBitmapMerge = struct("BlockDirtyBitmapMerge", {
  node: str(),
  target: str(),
  bitmaps: array(BlockDirtyBitmapOrStr),
});
export const BlockdevSnapshotInternal = struct("BlockdevSnapshotInternal", { device: str(), name: str() });
export const SnapshotInfo = struct("SnapshotInfo", {
  id: str(),
  name: str(),
  "vm-state-size": int(),
  "date-sec": int(),
  "date-nsec": int(),
  "vm-clock-sec": int(),
  "vm-clock-nsec": int(),
  icount: optional(int()),
});

export const BlockdevSnapshotSync = struct("BlockdevSnapshotSync", {
  device: optional(str()),
  "node-name": optional(str()),
  "snapshot-file": str(),
  "snapshot-node-name": optional(str()),
  format: optional(str()),
  mode: optional(enumOf("NewImageMode", ["existing", "absolute-paths"])),
});
export const BlockdevSnapshot = struct("BlockdevSnapshot", { node: str(), overlay: str() });

const GUEST_IO_OPS = ["read", "write", "zero", "discard", "flush"] as const;

/** Where qemu-io's own report goes (QEMU: its stdout). Replaceable for tests. */
export let qemuIoLog: (s: string) => void = (s) => void process.stderr.write(s);
export function setQemuIoLog(fn: (s: string) => void): void {
  qemuIoLog = fn;
}

export const events: EventDef[] = [
  defineEvent(
    "BLOCK_IMAGE_CORRUPTED",
    struct("BLOCK_IMAGE_CORRUPTED-data", {
      device: str(),
      "node-name": optional(str()),
      msg: str(),
      offset: optional(int()),
      size: optional(int()),
      fatal: bool(),
    }),
  ),
];

export const commands: CommandDef[] = [
  defineCommand({
    name: "blockdev-add",
    args: BlockdevOptions,
    handler: async (args, { emu }) => {
      await emu.block.blockdevAdd(args as Record<string, unknown>);
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-del",
    args: struct("q_obj_blockdev-del-arg", { "node-name": str() }),
    handler: async (a, { emu }) => {
      await emu.block.blockdevDel(a["node-name"]);
      return {};
    },
  }),
  defineCommand({
    name: "query-block",
    handler: (_a, { emu }) => queryBlock(emu.block),
  }),
  defineCommand({
    name: "query-named-block-nodes",
    args: struct("q_obj_query-named-block-nodes-arg", { flat: optional(bool()) }),
    handler: (a, { emu }) => queryNamedBlockNodes(emu.block, a.flat ?? false),
  }),
  defineCommand({
    name: "x-debug-query-block-graph",
    features: ["unstable"],
    handler: (_a, { emu }) => blockGraph(emu.block),
  }),
  defineCommand({
    name: "block_resize",
    args: struct("q_obj_block_resize-arg", { device: optional(str()), "node-name": optional(str()), size: int() }),
    handler: async (a, { emu }) => {
      await blockResize(emu.block, a.device, a["node-name"], a.size);
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-snapshot-sync",
    args: BlockdevSnapshotSync,
    handler: (a, { emu }) => runAsTransaction(emu, "blockdev-snapshot-sync", a),
  }),
  defineCommand({
    name: "blockdev-snapshot-internal-sync",
    args: BlockdevSnapshotInternal,
    handler: (a, { emu }) => runAsTransaction(emu, "blockdev-snapshot-internal-sync", a),
  }),
  defineCommand({
    name: "blockdev-snapshot-delete-internal-sync",
    args: struct("q_obj_blockdev-snapshot-delete-internal-sync-arg", { device: str(), id: optional(str()), name: optional(str()) }),
    returns: SnapshotInfo,
    handler: (a, { emu }) => deleteInternalSnapshot(emu.block, a.device, a.id, a.name),
  }),
  defineCommand({
    name: "blockdev-snapshot",
    args: BlockdevSnapshot,
    handler: (a, { emu }) => runAsTransaction(emu, "blockdev-snapshot", a),
  }),
  defineCommand({
    name: "block-dirty-bitmap-add",
    args: BlockDirtyBitmapAdd,
    handler: (a, { emu }) => {
      bitmapAdd(emu.block, a);
      return {};
    },
  }),
  defineCommand({
    name: "block-dirty-bitmap-remove",
    args: BlockDirtyBitmap,
    handler: (a, { emu }) => {
      bitmapRemove(emu.block, a.node, a.name);
      return {};
    },
  }),
  defineCommand({
    name: "block-dirty-bitmap-clear",
    args: BlockDirtyBitmap,
    handler: (a, { emu }) => {
      bitmapClear(emu.block, a.node, a.name);
      return {};
    },
  }),
  defineCommand({
    name: "block-dirty-bitmap-enable",
    args: BlockDirtyBitmap,
    handler: (a, { emu }) => {
      bitmapEnable(emu.block, a.node, a.name);
      return {};
    },
  }),
  defineCommand({
    name: "block-dirty-bitmap-disable",
    args: BlockDirtyBitmap,
    handler: (a, { emu }) => {
      bitmapDisable(emu.block, a.node, a.name);
      return {};
    },
  }),
  defineCommand({
    name: "block-dirty-bitmap-merge",
    args: BlockDirtyBitmapMerge,
    handler: (a, { emu }) => {
      bitmapMerge(emu.block, a.node, a.target, a.bitmaps as BitmapRef[]);
      return {};
    },
  }),
  defineCommand({
    name: "x-debug-block-dirty-bitmap-sha256",
    args: BlockDirtyBitmap,
    features: ["unstable"],
    returns: struct("BlockDirtyBitmapSha256", { sha256: str() }),
    handler: (a, { emu }) => ({ sha256: bitmapSha256(emu.block, a.node, a.name) }),
  }),
  defineCommand({
    name: "x-qmpemu-guest-io",
    args: struct("q_obj_x-qmpemu-guest-io-arg", {
      device: optional(str()),
      node: optional(str()),
      op: enumOf("QmpemuGuestIoOp", GUEST_IO_OPS),
      offset: optional(int("uint64")),
      length: optional(int("uint64")),
      pattern: optional(int("uint8")),
    }),
    handler: async (a, { emu }) => {
      const name = a.device ?? a.node;
      if (name === undefined) throw genericError("Parameter 'device' is missing");
      const layer = emu.block;
      const t = a.device !== undefined
        ? openIoTarget(layer, a.device)
        : openIoTarget(layer, a.node!);
      // Beyond 2^53 only the block layer's range errors follow, which a number meets alike.
      const offset = intNumber(a.offset ?? 0);
      const length = intNumber(a.length ?? 0);
      const started = emu.clock.nowNs();
      // A named backend accounts the request like a guest device's (query-blockstats).
      const account = <R extends { bytes: number; error?: string }>(r: R): R => {
        if (a.device !== undefined) accountGuestIo(t.blk, a.op, r.bytes, r.error === undefined, started, emu.clock.nowNs());
        return r;
      };
      try {
        if (a.op !== "read" && a.op !== "flush") ensurePerm(layer, t, WRITE_PERM);
        try {
          switch (a.op) {
            case "read": {
              const buf = new Uint8Array(length);
              await guestRead(t, buf, offset);
              if (a.pattern !== undefined) {
                const bad = buf.findIndex((b) => b !== a.pattern);
                if (bad >= 0) return account({ bytes: length, ok: false, mismatch: { offset: offset + bad, found: buf[bad] } });
              }
              return account({ bytes: length, ok: true });
            }
            case "write":
              await guestWrite(t, new Uint8Array(length).fill(a.pattern ?? 0xcd), offset);
              return account({ bytes: length, ok: true });
            case "zero":
              await guestWriteZeroes(t, offset, length, false);
              return account({ bytes: length, ok: true });
            case "discard":
              await guestDiscard(t, offset, length);
              return account({ bytes: length, ok: true });
            case "flush":
              await guestFlush(t);
              return account({ bytes: 0, ok: true });
          }
        } catch (e) {
          return account({ bytes: 0, ok: false, error: errorText(e) });
        }
      } finally {
        await t.release();
      }
    },
  }),
];

export const hmpCommands: HmpCommand[] = [
  {
    name: "qemu-io",
    async run(line, { emu }) {
      // On a node-name, QEMU attaches and later drops a temporary BlockBackend: two drained
      // sections, so block jobs above the node show paused/running (standby/ready) pairs.
      const a = parseQemuIoHmpArgs(line);
      const node = "error" in a || a.qdev || emu.block.findBackend(a.device) ? undefined : emu.block.findNode(a.device);
      if (node) await drainedSection(emu, node);
      try {
        return await hmpQemuIo(emu.block, line, qemuIoLog);
      } finally {
        if (node) await drainedSection(emu, node);
      }
    },
  },
  { name: "info block", run: (line, { emu }) => infoBlock(emu.block, line) },
];
