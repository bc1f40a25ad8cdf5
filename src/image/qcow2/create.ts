/**
 * Creating qcow2 images with QEMU's layout: header in cluster 0, refcount
 * table in cluster 1, refcount block in cluster 2, then the L1 table, sized
 * by growing an empty image exactly like QEMU's create-then-truncate.
 */
import type { ByteStore } from "../types.ts";
import { formatError } from "../errors.ts";
import { COMPAT_LAZY_REFCOUNTS, setU64 } from "./format.ts";
import { newHeader, serializeHeader } from "./header.ts";
import { Qcow2Image } from "./image.ts";

export interface Qcow2CreateOptions {
  size: number;
  /** Bytes, power of two, 512..2 MiB (default 64 KiB). */
  clusterSize?: number;
  /** 2 = compat 0.10, 3 = compat 1.1 (default). */
  version?: 2 | 3;
  backingFile?: string | null;
  backingFormat?: string | null;
  /** 1..64, power of two (default 16). */
  refcountBits?: number;
  lazyRefcounts?: boolean;
}

export async function createQcow2(store: ByteStore, opts: Qcow2CreateOptions): Promise<void> {
  const clusterSize = opts.clusterSize ?? 65536;
  const clusterBits = Math.log2(clusterSize);
  if (!Number.isInteger(clusterBits) || clusterBits < 9 || clusterBits > 21) {
    throw formatError("Cluster size must be a power of two between 512 and 2048k");
  }
  const version = opts.version ?? 3;
  const refcountBits = opts.refcountBits ?? 16;
  const refcountOrder = Math.log2(refcountBits);
  if (!Number.isInteger(refcountOrder) || refcountOrder < 0 || refcountOrder > 6) {
    throw formatError("Refcount width must be a power of two and may not exceed 64 bits");
  }
  if (version === 2 && refcountBits !== 16) {
    throw formatError("Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)");
  }
  if (version === 2 && opts.lazyRefcounts) {
    throw formatError("Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)");
  }
  if (opts.size % 512) throw formatError("Image size must be a multiple of 512 bytes");
  if (opts.backingFormat && !opts.backingFile) {
    throw formatError("Backing format cannot be used without backing file");
  }

  const h = newHeader({
    version,
    clusterBits,
    size: 0,
    refcountOrder,
    compatible: opts.lazyRefcounts ? BigInt(COMPAT_LAZY_REFCOUNTS) : 0n,
    backingFile: opts.backingFile ?? null,
    backingFormat: opts.backingFormat ?? null,
  });
  h.refcountTableOffset = clusterSize;
  h.refcountTableClusters = 1;
  h.l1TableOffset = 3 * clusterSize;
  const cluster0 = serializeHeader(h);

  await store.truncate(0);
  await store.pwrite(cluster0, 0);
  const table = new Uint8Array(clusterSize);
  setU64(new DataView(table.buffer), 0, 2 * clusterSize);
  await store.pwrite(table, clusterSize);
  // Refcount block: clusters 0..2 (header, table, block) are in use.
  const block = new Uint8Array(clusterSize);
  const entryBits = refcountBits;
  for (let c = 0; c < 3; c++) setPacked(block, c, entryBits, 1);
  await store.pwrite(block, 2 * clusterSize);
  await store.flush();

  if (opts.size > 0) {
    const img = await Qcow2Image.open(store, { readOnly: false });
    await img.resize(opts.size);
    await img.flush();
  }
}

/** Sets refcount entry `i` of a refcount block (any width), for a fresh block. */
function setPacked(block: Uint8Array, i: number, bits: number, value: number): void {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (bits >= 8) {
    const bytes = bits / 8;
    const pos = i * bytes;
    if (bytes === 8) setU64(view, pos, value);
    else if (bytes === 4) view.setUint32(pos, value);
    else if (bytes === 2) view.setUint16(pos, value);
    else block[pos] = value;
    return;
  }
  const bitPos = i * bits;
  block[bitPos >> 3] = block[bitPos >> 3]! | (value << (bitPos & 7));
}
