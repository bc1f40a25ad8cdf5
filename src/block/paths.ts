/** File-name helpers shared by drivers and the layer. */
import * as path from "node:path";

/** Resolves a backing file name relative to the image that names it (bdrv_get_full_backing_filename). */
export function resolveBackingPath(imageFilename: string, backing: string): string {
  if (path.isAbsolute(backing) || /^[a-z0-9+-]+:/i.test(backing) || imageFilename.startsWith("json:")) return backing;
  return path.join(path.dirname(imageFilename), backing);
}
