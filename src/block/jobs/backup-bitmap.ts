/**
 * The bitmap half of backup: argument checks (QEMU's order and texts, see
 * block-jobs.md §3 and test/oracle-extra x-backup-validation) and what
 * happens to the user's bitmap when the job ends (bitmap-mode table).
 */
import { genericError } from "../../core/error.ts";
import type { DirtyBitmap } from "../bitmap.ts";
import type { ClusterBitmap } from "./cluster-bitmap.ts";

export type SyncMode = "top" | "full" | "none" | "incremental" | "bitmap";
export type BitmapMode = "on-success" | "never" | "always";

export interface BitmapArgs {
  sync: SyncMode;
  bitmap?: string;
  "bitmap-mode"?: BitmapMode;
}

export interface ResolvedSync {
  /** 'incremental' is desugared to 'bitmap' + 'on-success'. */
  sync: Exclude<SyncMode, "incremental">;
  bitmap?: DirtyBitmap;
  mode?: BitmapMode;
}

/** Checks a bitmap can be used by an operation (bdrv_dirty_bitmap_check, read-only allowed). */
export function checkBitmapUsable(bm: DirtyBitmap): void {
  if (bm.busy) throw genericError(`Bitmap '${bm.name}' is currently in use by another operation and cannot be used`);
  if (bm.inconsistent) {
    throw genericError(
      `Bitmap '${bm.name}' is inconsistent and cannot be used\nTry block-dirty-bitmap-remove to delete this bitmap from disk`,
    );
  }
}

export function resolveSync(args: BitmapArgs, findBitmap: (name: string) => DirtyBitmap | undefined): ResolvedSync {
  let sync = args.sync;
  let mode = args["bitmap-mode"];
  if ((sync === "bitmap" || sync === "incremental") && args.bitmap === undefined) {
    throw genericError(`must provide a valid bitmap name for '${sync}' sync mode`);
  }
  if (sync === "incremental") {
    if (mode !== undefined && mode !== "on-success") {
      throw genericError("Bitmap sync mode must be 'on-success' when using sync mode 'incremental'");
    }
    sync = "bitmap";
    mode = "on-success";
  }
  let bitmap: DirtyBitmap | undefined;
  if (args.bitmap !== undefined) {
    bitmap = findBitmap(args.bitmap);
    if (!bitmap) throw genericError(`Bitmap '${args.bitmap}' could not be found`);
    if (mode === undefined) throw genericError("Bitmap sync mode must be given when providing a bitmap");
    checkBitmapUsable(bitmap);
    if (sync === "none") throw genericError("sync mode 'none' does not produce meaningful bitmap outputs");
    if (mode === "never" && sync !== "bitmap") {
      throw genericError(`Bitmap sync mode 'never' has no meaningful effect when combined with sync mode '${sync}'`);
    }
  } else if (mode !== undefined) {
    throw genericError("Cannot specify bitmap sync mode without a bitmap");
  }
  return { sync, bitmap, mode };
}

/**
 * Ends the job's hold on the user's bitmap (which was frozen with a
 * successor when the job was created). `uncopied` is the copy bitmap of
 * clusters the job did not reach, for mode 'always' after a failure.
 */
export function releaseSyncBitmap(bm: DirtyBitmap, mode: BitmapMode, success: boolean, uncopied: ClusterBitmap | null): void {
  const takeNewWrites = mode === "always" || (mode === "on-success" && success);
  if (!takeNewWrites) {
    bm.reclaim();
    return;
  }
  bm.abdicate();
  if (!success && uncopied) {
    for (let c = uncopied.nextSet(0); c >= 0; c = uncopied.nextSet(c + 1)) {
      bm.set(c * uncopied.clusterSize, uncopied.clusterSize);
    }
  }
}
