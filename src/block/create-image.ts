/**
 * The image creation behind blockdev-snapshot-sync, drive-mirror and
 * drive-backup (QEMU's bdrv_img_create): an empty image over a new or
 * truncated file, optionally naming a backing file.
 */
import { genericError, isQmpError } from "../core/error.ts";
import { createQcow2, createRaw, FileStore } from "../image/index.ts";
import { skipFilters, type BlockNode } from "./node.ts";

/** Formats QEMU knows by name; of these we can create only CREATABLE ones. */
const KNOWN_FORMATS = new Set(["qcow2", "raw", "qcow", "qed", "vdi", "vmdk", "vhdx", "vpc", "luks", "parallels", "bochs", "cloop", "dmg", "file", "null-co", "null-aio", "blkdebug"]);
const CREATABLE = new Set(["qcow2", "raw"]);

/**
 * bdrv_img_create: refuses, in QEMU's order and words, a format it does not
 * know, one that cannot be created, and a backing file for a format without
 * one; then writes the image.
 */
export async function createImageAs(filename: string, format: string, size: number, backing: BlockNode | null): Promise<void> {
  if (!KNOWN_FORMATS.has(format)) throw genericError(`Unknown file format '${format}'`);
  if (!CREATABLE.has(format)) throw genericError(`Format driver '${format}' does not support image creation`);
  if (backing && format === "raw") throw genericError(`Backing file not supported for file format '${format}'`);
  await createImageFile(filename, format as "qcow2" | "raw", size, backing);
}

/**
 * Writes an empty `format` image of `size` bytes at `filename`, with `backing`'s
 * image (filters skipped) as its backing file. Callers reject other formats
 * first: their error texts differ per command.
 */
export async function createImageFile(
  filename: string,
  format: "qcow2" | "raw",
  size: number,
  backing: BlockNode | null,
): Promise<void> {
  let store: FileStore;
  try {
    store = FileStore.open(filename, { create: true });
  } catch (e) {
    throw genericError(`Could not create '${filename}': ${isQmpError(e) ? e.desc : String(e)}`);
  }
  try {
    await store.truncate(0);
    if (format === "qcow2") {
      const b = backing ? skipFilters(backing) : null;
      await createQcow2(store, { size, backingFile: b ? b.driver.filename() : null, backingFormat: b ? b.driverName : null });
    } else {
      await createRaw(store, { size });
    }
    await store.flush();
  } finally {
    await store.close();
  }
}
