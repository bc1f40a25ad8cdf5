/**
 * QAPI argument types of blockdev-backup, drive-backup, blockdev-create and
 * transaction (qapi/block-core.json, qapi/transaction.json of QEMU 7.2),
 * member order as QEMU's so validation reports the same first error.
 */
import * as v from "valibot";
import { alternate, any, array, bool, enumOf, int, optional, str, struct, union } from "./qapi.ts";
import { BlockDirtyBitmap, BlockDirtyBitmapAdd, BlockDirtyBitmapMerge, BlockdevSnapshot, BlockdevSnapshotInternal, BlockdevSnapshotSync } from "./block.ts";

export const MirrorSyncMode = enumOf("MirrorSyncMode", ["top", "full", "none", "incremental", "bitmap"]);
export const BitmapSyncMode = enumOf("BitmapSyncMode", ["on-success", "never", "always"]);
export const BlockdevOnError = enumOf("BlockdevOnError", ["report", "ignore", "enospc", "stop", "auto"]);
export const NewImageMode = enumOf("NewImageMode", ["existing", "absolute-paths"]);

export const BackupPerf = struct("BackupPerf", {
  "use-copy-range": optional(bool()),
  "max-workers": optional(int()),
  "max-chunk": optional(int("int64")),
});

const backupCommon = {
  "job-id": optional(str()),
  device: str(),
  sync: MirrorSyncMode,
  speed: optional(int("int64")),
  bitmap: optional(str()),
  "bitmap-mode": optional(BitmapSyncMode),
  compress: optional(bool()),
  "on-source-error": optional(BlockdevOnError),
  "on-target-error": optional(BlockdevOnError),
  "auto-finalize": optional(bool()),
  "auto-dismiss": optional(bool()),
  "filter-node-name": optional(str()),
  "x-perf": optional(BackupPerf),
};

export const BlockdevBackup = struct("BlockdevBackup", { ...backupCommon, target: str() });
export const DriveBackup = struct("DriveBackup", {
  ...backupCommon,
  target: str(),
  format: optional(str()),
  mode: optional(NewImageMode),
});
export type BlockdevBackupArgs = v.InferOutput<typeof BlockdevBackup>;
export type DriveBackupArgs = v.InferOutput<typeof DriveBackup>;
/** What both backup commands share once drive-backup has opened its target. */
export type BackupArgs = Omit<BlockdevBackupArgs, "target">;

/** BlockdevDriver as QEMU 7.2 on Debian lists it (the create union's tag). */
export const BLOCKDEV_DRIVERS = [
  "blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop", "compress", "copy-before-write",
  "copy-on-read", "dmg", "file", "snapshot-access", "ftp", "ftps", "gluster", "host_cdrom", "host_device",
  "http", "https", "iscsi", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme", "parallels", "preallocate",
  "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication", "ssh", "throttle", "vdi", "vhdx", "vmdk",
  "vpc", "vvfat",
] as const;
export const BlockdevDriver = enumOf("BlockdevDriver", BLOCKDEV_DRIVERS);

const PreallocMode = enumOf("PreallocMode", ["off", "metadata", "falloc", "full"]);
/** A node reference (name) or inline options; creation only supports names here. */
const BlockdevRef = alternate("BlockdevRef", [str(), any()] as const);

const createFile = {
  filename: str(),
  size: int("size"),
  preallocation: optional(PreallocMode),
  nocow: optional(bool()),
  "extent-size-hint": optional(int("size")),
};
const createQcow2 = {
  file: BlockdevRef,
  "data-file": optional(BlockdevRef),
  "data-file-raw": optional(bool()),
  "extended-l2": optional(bool()),
  size: int("size"),
  version: optional(enumOf("BlockdevQcow2Version", ["v2", "v3"])),
  "backing-file": optional(str()),
  "backing-fmt": optional(BlockdevDriver),
  encrypt: optional(any()),
  "cluster-size": optional(int("size")),
  preallocation: optional(PreallocMode),
  "lazy-refcounts": optional(bool()),
  "refcount-bits": optional(int()),
  "compression-type": optional(enumOf("Qcow2CompressionType", ["zlib", "zstd"])),
};

/** Drivers we can create; every other driver has an empty variant (the command refuses it). */
export const CREATE_VARIANTS = { file: createFile, qcow2: createQcow2 } as const;

export const BlockdevCreateOptions = union(
  "BlockdevCreateOptions",
  "driver",
  { driver: BlockdevDriver },
  Object.fromEntries(BLOCKDEV_DRIVERS.map((d) => [d, (CREATE_VARIANTS as Record<string, v.ObjectEntries>)[d] ?? {}])) as Record<
    (typeof BLOCKDEV_DRIVERS)[number],
    v.ObjectEntries
  >,
);
export type CreateFileOptions = v.InferOutput<v.ObjectSchema<typeof createFile, undefined>>;
export type CreateQcow2Options = v.InferOutput<v.ObjectSchema<typeof createQcow2, undefined>>;

export const BlockdevCreateArgs = struct("q_obj_blockdev-create-arg", {
  "job-id": str(),
  options: BlockdevCreateOptions,
});

// ---- transaction ---------------------------------------------------------

// Shared with the plain commands (one QAPI type each, as in QEMU's schema).
export { BlockDirtyBitmap, BlockDirtyBitmapAdd, BlockDirtyBitmapMerge, BlockdevSnapshotSync, BlockdevSnapshot, BlockdevSnapshotInternal };
export const Abort = struct("Abort", {});

export const TRANSACTION_ACTION_TYPES = [
  "abort", "block-dirty-bitmap-add", "block-dirty-bitmap-remove", "block-dirty-bitmap-clear",
  "block-dirty-bitmap-enable", "block-dirty-bitmap-disable", "block-dirty-bitmap-merge", "blockdev-backup",
  "blockdev-snapshot", "blockdev-snapshot-internal-sync", "blockdev-snapshot-sync", "drive-backup",
] as const;
export type TransactionActionKind = (typeof TRANSACTION_ACTION_TYPES)[number];

export const TransactionAction = union(
  "TransactionAction",
  "type",
  { type: enumOf("TransactionActionKind", TRANSACTION_ACTION_TYPES) },
  {
    abort: { data: Abort },
    "block-dirty-bitmap-add": { data: BlockDirtyBitmapAdd },
    "block-dirty-bitmap-remove": { data: BlockDirtyBitmap },
    "block-dirty-bitmap-clear": { data: BlockDirtyBitmap },
    "block-dirty-bitmap-enable": { data: BlockDirtyBitmap },
    "block-dirty-bitmap-disable": { data: BlockDirtyBitmap },
    "block-dirty-bitmap-merge": { data: BlockDirtyBitmapMerge },
    "blockdev-backup": { data: BlockdevBackup },
    "blockdev-snapshot": { data: BlockdevSnapshot },
    "blockdev-snapshot-internal-sync": { data: BlockdevSnapshotInternal },
    "blockdev-snapshot-sync": { data: BlockdevSnapshotSync },
    "drive-backup": { data: DriveBackup },
  },
);
export type TransactionActionArgs = v.InferOutput<typeof TransactionAction>;

export const TransactionProperties = struct("TransactionProperties", {
  "completion-mode": optional(enumOf("ActionCompletionMode", ["individual", "grouped"])),
});

export const TransactionArgs = struct("q_obj_transaction-arg", {
  actions: array(TransactionAction),
  properties: optional(TransactionProperties),
});
