/**
 * Backup job creation up to the point where the job object is made:
 * QEMU's checks in its order (qmp do_backup_common + backup_job_create,
 * see block-jobs.md §3 and test/oracle-extra x-backup-validation), then the
 * graph work: freeze the sync bitmap, insert the copy-before-write filter,
 * build the BlockCopy. `undo()` reverts all of it.
 */
import { genericError } from "../../core/error.ts";
import type { BlockLayer, BlockNode } from "../index.ts";
import type { BackupArgs } from "../../commands/block-jobs-schema.ts";
import { resolveSync, releaseSyncBitmap, type ResolvedSync } from "./backup-bitmap.ts";
import { BlockCopy } from "./block-copy.ts";
import { nodeCopySource, nodeCopyTarget } from "./backup-io.ts";
import { openCbwFilter, setCbwCopier } from "./copy-before-write.ts";
import { showCopyBitmap, showFilterBitmaps } from "./job-bitmaps.ts";
import type { OnError } from "./backup-run.ts";

const INT_MAX = 2147483647;

export interface BackupSetup {
  readonly source: BlockNode;
  readonly target: BlockNode;
  readonly filter: BlockNode;
  readonly copy: BlockCopy;
  readonly sync: ResolvedSync;
  /** Default job id: the source's device name ("" for plain nodes → "Invalid job ID ''"). */
  readonly defaultJobId: string;
  readonly onSourceError: OnError;
  readonly onTargetError: OnError;
  /** Ends the job's hold on the sync bitmap (bitmap-mode table); idempotent. */
  releaseBitmap(success: boolean): void;
  /** Removes the filter; idempotent. */
  removeFilter(): Promise<void>;
}

/** backup cluster size: max(64 KiB, target cluster size) (block_copy_calculate_cluster_size). */
export function backupClusterSize(target: BlockNode): number {
  return Math.max(65536, target.clusterSize || 0);
}

/**
 * Validates and sets up a backup of `source` into `target`. Lookups are the
 * caller's (blockdev-backup and drive-backup find/create targets
 * differently).
 */
export async function setupBackup(layer: BlockLayer, source: BlockNode, target: BlockNode, args: BackupArgs): Promise<BackupSetup> {
  const sync = resolveSync(args, (name) => source.bitmaps.find((b) => b.name === name));
  if (source === target) throw genericError("Source and target cannot be the same");
  if (args.compress && !target.supportsCompressedWrites) {
    throw genericError(`Compression is not supported for this drive ${layer.backendsOf(target)[0]?.name ?? ""}`);
  }
  layer.checkOp(source, "backup-source");
  layer.checkOp(target, "backup-target");
  const perf = args["x-perf"] ?? {};
  const maxWorkers = perf["max-workers"] ?? 64;
  if (maxWorkers < 1 || maxWorkers > INT_MAX) throw genericError(`max-workers must be between 1 and ${INT_MAX}`);
  if ((perf["max-chunk"] ?? 0) < 0) throw genericError("max-chunk must be zero (which means no limit) or positive");
  if (source.size() !== target.size()) throw genericError("Source and target image have different sizes");

  const defaultJobId = layer.backendsOf(source)[0]?.name ?? "";
  const bitmap = sync.bitmap;
  // the block layer lists the successor as an anonymous bitmap while the job holds it
  bitmap?.createSuccessor();
  let filter: BlockNode;
  try {
    filter = await openCbwFilter(layer, source, target, args["filter-node-name"]);
  } catch (e) {
    bitmap?.reclaim();
    throw e;
  }

  const clusterSize = backupClusterSize(target);
  // int64: a bigint beyond 2^53, far above any cluster size, so a number is exact enough.
  const maxChunk = Number(perf["max-chunk"] ?? 0) || undefined;
  const copy = new BlockCopy({
    source: nodeCopySource(source),
    target: nodeCopyTarget(target, !!args.compress),
    clusterSize,
    compress: !!args.compress,
    maxChunk: maxChunk && maxChunk >= clusterSize ? maxChunk : undefined,
  });
  // Clusters still owed to the target: everything for full/top (top drops unallocated ones
  // while running) and none (which only copies before guest writes), the bitmap's for bitmap.
  if (sync.sync !== "bitmap") copy.bitmap.setAll();
  else if (sync.sync === "bitmap" && bitmap) for (const [off, len] of bitmap.dirtyRanges()) copy.bitmap.set(off, len);
  setCbwCopier(filter, copy);
  const hideFilterBitmaps = showFilterBitmaps(filter, clusterSize, () => copy.copiedBeforeWrite);
  const hideCopyBitmap = showCopyBitmap(source, clusterSize, () => copy.remainingBytes());

  let bitmapReleased = !bitmap;
  let filterRemoved = false;
  return {
    source,
    target,
    filter,
    copy,
    sync,
    defaultJobId,
    onSourceError: args["on-source-error"] ?? "report",
    onTargetError: args["on-target-error"] ?? "report",
    releaseBitmap(success) {
      if (bitmapReleased || !bitmap) return;
      bitmapReleased = true;
      releaseSyncBitmap(bitmap, sync.mode ?? "on-success", success, copy.bitmap);
    },
    async removeFilter() {
      if (filterRemoved) return;
      filterRemoved = true;
      setCbwCopier(filter, null);
      hideCopyBitmap();
      hideFilterBitmaps();
      await layer.removeFilter(filter);
    },
  };
}
