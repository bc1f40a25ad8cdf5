/**
 * The `qcow2` format driver: the image library's Qcow2Image over a ByteStore
 * that is the node's `file` child (so blkdebug and permissions see every
 * access), with the backing child as its DiskReader.
 */
import { genericError, isQmpError } from "../../core/error.ts";
import type { ByteStore, DiskReader } from "../../image/types.ts";
import { openQcow2, type CorruptionInfo, type Qcow2Image } from "../../image/qcow2/image.ts";
import { createCompressPool, type CompressPool } from "../../image/compress-pool.ts";

/** One worker pool for every qcow2 node's compressed writes (backup compress), made on first use. */
let compressPool: CompressPool | undefined;
const compressor = (clusters: Uint8Array[]) => (compressPool ??= createCompressPool()).compress(clusters);
import type { DriverDef, DriverImageInfo, NodeDriver } from "../driver.ts";
import type { BdrvChild, BlockNode } from "../node.ts";
import { attachBitmap, DirtyBitmap } from "../bitmap.ts";

/** ImageInfoSpecificQCow2.bitmaps: the directory as on disk, absent when empty. */
function storedBitmapsInfo(img: Qcow2Image): { bitmaps?: unknown[] } {
  const list = img.storedBitmaps();
  if (list.length === 0) return {};
  return {
    bitmaps: list.map((b) => ({
      flags: [...(b.inUse ? ["in-use"] : []), ...(b.auto ? ["auto"] : [])],
      name: b.name,
      granularity: 2 ** b.granularityBits,
    })),
  };
}

/** qcow2_load_dirty_bitmaps: the image's persistent bitmaps become node bitmaps. */
async function loadPersistentBitmaps(node: BlockNode, img: Qcow2Image): Promise<void> {
  for (const b of img.bitmapsAtOpen()) {
    const bm = new DirtyBitmap(b.name, 2 ** b.granularityBits, img.size, { enabled: b.auto && !b.inUse, persistent: true });
    if (b.inUse) bm.inconsistent = true;
    else bm.deserialize(await b.readBits());
    bm.readonly = img.readOnly;
    attachBitmap(node.bitmaps, bm);
  }
}

/** qcow2_store_persistent_dirty_bitmaps: consistent persistent bitmaps go back into the image. */
async function storePersistentBitmaps(node: BlockNode, img: Qcow2Image): Promise<void> {
  if (img.readOnly) return;
  const list = node.bitmaps
    .filter((b) => b.persistent && b.name !== "" && !b.inconsistent)
    .map((b) => ({ name: b.name, granularityBits: Math.log2(b.granularity), auto: b.enabled || b.busy, bits: b.serialize() }));
  await img.storeBitmaps(list);
}

/** bdrv_get_device_name: the backend's name, or "" for nodes without one. */
function deviceName(node: BlockNode): string {
  for (const p of node.parents) {
    if (!("nodeName" in p.parent) && p.parent.kind === "block-backend") return p.parent.graphName;
  }
  return "";
}
import { jsonFilename } from "./raw.ts";
import { resolveBackingPath } from "../paths.ts";

/** The child node as the image library's storage. */
export function childStore(edge: BdrvChild): ByteStore {
  return {
    size: async () => edge.node.driver.size(),
    pread: (buf, off) => edge.node.read(buf, off),
    pwrite: (data, off) => edge.node.write(data, off),
    truncate: (len) => edge.node.resize(len),
    discard: (off, len) => edge.node.discard(off, len),
    flush: () => edge.node.flush(),
    close: async () => {},
  };
}

/** The current backing child as a DiskReader (zeros past its end). */
function backingReader(node: BlockNode): DiskReader | null {
  if (!node.backing) return null;
  return {
    get size() {
      return node.backing?.node.size() ?? 0;
    },
    async read(buf, offset) {
      const b = node.backing?.node;
      const inside = b ? Math.max(0, Math.min(buf.length, b.size() - offset)) : 0;
      if (inside > 0) {
        node.debugEvent("file", "read_backing_aio");
        await b!.read(buf.subarray(0, inside), offset);
      }
      if (inside < buf.length) buf.fill(0, inside);
    },
  };
}

function hasDebugListener(node: BlockNode): boolean {
  let n = node.file?.node;
  while (n) {
    if (n.driver?.debugEvent) return true;
    n = (n.child("file") ?? n.child("image"))?.node;
  }
  return false;
}

export const qcow2Driver: DriverDef = {
  name: "qcow2",
  kind: "format",
  primaryChild: { key: "file", role: "file" },
  supportsBacking: true,
  fields: {
    file: { type: "ref", required: true },
    backing: { type: "ref-or-null" },
    "lazy-refcounts": { type: "bool" },
    "pass-discard-request": { type: "bool" },
    "pass-discard-snapshot": { type: "bool" },
    "pass-discard-other": { type: "bool" },
    "overlap-check": { type: "any" },
    "cache-size": { type: "int" },
    "l2-cache-size": { type: "int" },
    "l2-cache-entry-size": { type: "int" },
    "refcount-cache-size": { type: "int" },
    "cache-clean-interval": { type: "int" },
    encrypt: { type: "any" },
    "data-file": { type: "ref" },
  },
  async open(ctx): Promise<NodeDriver> {
    const node = ctx.node;
    if (ctx.options.backing === "") {
      // QEMU 7.2 still reads "" as null, with a deprecation warning on stderr.
      process.stderr.write(`warning: Use of "backing": "" is deprecated; use "backing": null instead\n`);
      ctx.options.backing = null;
    }
    const fileEdge = (await ctx.openChild("file", "file"))!;
    const store = childStore(fileEdge);
    const l2CacheBytes = ctx.options["l2-cache-size"] as number | undefined;
    // qcow2_signal_corruption: QEMU reports metadata damage as BLOCK_IMAGE_CORRUPTED.
    let signaled = false;
    const onCorruption = (c: CorruptionInfo) => {
      // Only the first corruption is reported; a fatal one makes the node unusable.
      if (signaled) return;
      signaled = true;
      if (c.fatal) node.ejected = true;
      const data: Record<string, unknown> = { device: deviceName(node), "node-name": node.nodeName, msg: c.msg };
      if (c.offset !== undefined) data.offset = c.offset;
      if (c.size !== undefined) data.size = c.size;
      data.fatal = c.fatal;
      ctx.emit("BLOCK_IMAGE_CORRUPTED", data);
    };
    const openImage = (readOnly: boolean) => openQcow2(store, { readOnly, backing: backingReader(node), l2CacheBytes, onCorruption, compressor });
    let img: Qcow2Image = await openImage(node.readOnly);
    try {
      if ("backing" in ctx.options) {
        await ctx.openChild("backing", "backing");
      } else if (img.backingFile && !node.options.noBacking) {
        const full = resolveBackingPath(fileEdge.node.driver.filename(), img.backingFile);
        try {
          await ctx.openChildByFilename(full, img.backingFormat ?? undefined, "backing", true);
        } catch (e) {
          throw genericError(`Could not open backing file: ${isQmpError(e) ? e.desc : String(e)}`);
        }
      }
    } catch (e) {
      await img.close().catch(() => {});
      throw e;
    }
    img.setBacking(backingReader(node));
    await loadPersistentBitmaps(node, img);
    // bs->auto_backing_file: the resolved name when the backing was opened from the header,
    // else the header string as written (so a relative name never equals a backing's
    // filename: QEMU then prints json: filenames); commit/stream rewrite it with the header.
    let autoBacking = node.backing && !("backing" in ctx.options) ? node.backing.node.driver.filename() : (img.backingFile ?? "");
    // QEMU prints a json: filename when the backing child is not the one the header names.
    const plainFilename = () => {
      const b = node.backing?.node;
      return b ? b.driver.filename() === autoBacking : autoBacking === "";
    };

    const driver: NodeDriver & { image(): Qcow2Image; removePersistentBitmap(name: string): Promise<void> } = {
      image: () => img,
      internalSnapshots: () => img,
      size: () => img.size,
      get clusterSize() {
        return img.clusterSize;
      },
      async read(buf, offset) {
        if (hasDebugListener(node)) {
          // QEMU raises read_aio on bs->file before reading a data cluster.
          for (let pos = offset; pos < offset + buf.length; ) {
            const ext = await img.blockStatus(pos, offset + buf.length - pos);
            if (ext.length <= 0) break;
            if (ext.allocated && ext.data) {
              node.debugEvent("file", "read_aio");
              break;
            }
            pos += ext.length;
          }
        }
        await img.read(buf, offset);
      },
      async write(data, offset) {
        node.debugEvent("file", "write_aio");
        await img.write(data, offset);
      },
      writeZeroes: (offset, length, opts) => img.writeZeroes(offset, length, opts),
      discard: (offset, length) => img.discard(offset, length),
      makeEmpty: () => img.makeEmpty(),
      async writeCompressed(data, offset) {
        node.debugEvent("file", "write_compressed");
        await img.writeCompressed(data, offset);
      },
      blockStatus: (offset, length) => img.blockStatus(offset, length),
      flush: () => img.flush(),
      resize: (size) => img.resize(size),
      async close() {
        try {
          await storePersistentBitmaps(node, img);
        } finally {
          await img.close();
        }
      },
      removePersistentBitmap: (name: string) => img.removeBitmap(name),
      filename: () => {
        const f = fileEdge.node.driver.filename();
        return plainFilename() && !f.startsWith("json:") ? f : jsonFilename(node);
      },
      imageInfo(): DriverImageInfo {
        const data: Record<string, unknown> =
          img.version === 2
            ? { compat: "0.10", "refcount-bits": img.refcountBits, "compression-type": img.compressionType }
            : {
                compat: "1.1",
                "extended-l2": img.extendedL2,
                "lazy-refcounts": img.lazyRefcounts,
                corrupt: img.corrupt,
                "refcount-bits": img.refcountBits,
                ...storedBitmapsInfo(img),
                "compression-type": img.compressionType,
              };
        const info: DriverImageInfo = {
          format: "qcow2",
          "cluster-size": img.clusterSize,
          "dirty-flag": img.dirty,
          "format-specific": { type: "qcow2", data },
        };
        if (img.backingFile) info["backing-filename"] = img.backingFile;
        if (img.backingFormat) info["backing-filename-format"] = img.backingFormat;
        return info;
      },
      actualSize: () => fileEdge.node.driver.actualSize?.(),
      impliedBacking: () => plainFilename(),
      backingChanged() {
        img.setBacking(backingReader(node));
      },
      async changeBackingFile(name, format) {
        await img.setBackingFile(name, format);
        autoBacking = name ?? "";
      },
      async reopen(readOnly: boolean) {
        if (readOnly && !img.readOnly) await storePersistentBitmaps(node, img);
        await img.flush();
        img = await openImage(readOnly);
      },
      headerBackingFile: () => img.backingFile,
    };
    return driver;
  },
};
