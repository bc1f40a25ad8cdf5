/**
 * Standalone helpers: format probing and opening a whole backing chain from
 * a file path (backing names resolved against the image's directory, as
 * QEMU does for relative names), refusing loops at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ByteStore, DiskImage } from "./types.ts";
import { FileStore } from "./file-store.ts";
import { RawImage } from "./raw.ts";
import { Qcow2Image, type Qcow2OpenOptions } from "./qcow2/image.ts";
import { QCOW2_MAGIC } from "./qcow2/format.ts";
import { formatError } from "./errors.ts";

export type ImageFormat = "raw" | "qcow2";

/** QEMU's probe: the qcow2 magic with version ≥ 2, else raw. */
export async function probeFormat(store: ByteStore): Promise<ImageFormat> {
  const head = new Uint8Array(8);
  await store.pread(head, 0);
  const v = new DataView(head.buffer);
  return v.getUint32(0) === QCOW2_MAGIC && v.getUint32(4) >= 2 ? "qcow2" : "raw";
}

export interface ChainLayer {
  path: string;
  format: ImageFormat;
  image: DiskImage;
}

export interface ImageChain {
  /** The top image; reads fall through the backing layers. */
  top: DiskImage;
  /** Top first. */
  layers: ChainLayer[];
  close(): Promise<void>;
}

export interface ChainOptions {
  /** Open the top image read-only (backing layers always are). Default true. */
  readOnly?: boolean;
  /** Format of the top image; probed when absent. */
  format?: ImageFormat;
  qcow2?: Omit<Qcow2OpenOptions, "readOnly" | "backing">;
}

/** Where QEMU looks for a backing file named `name` of the image at `imagePath`. */
export function resolveBackingName(imagePath: string, name: string): string {
  return path.isAbsolute(name) ? name : path.join(path.dirname(imagePath), name);
}

export async function openImageChain(file: string, opts: ChainOptions = {}): Promise<ImageChain> {
  const layers: ChainLayer[] = [];
  const seen = new Set<string>();
  const closeAll = async () => {
    for (const l of layers) await l.image.close().catch(() => {});
  };
  // Walk down first (collect names), then open bottom-up so each layer gets its backing reader.
  const plan: Array<{ path: string; format: ImageFormat | undefined }> = [];
  let cur: { path: string; format: ImageFormat | undefined } | null = { path: file, format: opts.format };
  while (cur) {
    const real = fs.existsSync(cur.path) ? fs.realpathSync(cur.path) : cur.path;
    if (seen.has(real)) throw formatError(`Backing file '${cur.path}' creates an infinite loop.`);
    seen.add(real);
    plan.push(cur);
    const store = FileStore.open(cur.path, { readOnly: true });
    try {
      const format = cur.format ?? (await probeFormat(store));
      cur.format = format;
      if (format !== "qcow2") break;
      const img = await Qcow2Image.open(store, { readOnly: true });
      const name = img.backingFile;
      const bfmt = img.backingFormat;
      cur = name ? { path: resolveBackingName(cur.path, name), format: bfmt === "raw" || bfmt === "qcow2" ? bfmt : undefined } : null;
    } finally {
      await store.close();
    }
  }
  try {
    let backing: DiskImage | null = null;
    for (let i = plan.length - 1; i >= 0; i--) {
      const p = plan[i]!;
      const readOnly = i === 0 ? (opts.readOnly ?? true) : true;
      const store = FileStore.open(p.path, { readOnly });
      const image: DiskImage =
        p.format === "qcow2"
          ? await Qcow2Image.open(store, { ...opts.qcow2, readOnly, backing })
          : await RawImage.open(store, { readOnly });
      layers.unshift({ path: p.path, format: p.format!, image });
      backing = image;
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  return { top: layers[0]!.image, layers, close: closeAll };
}
