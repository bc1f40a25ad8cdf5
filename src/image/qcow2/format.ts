/**
 * qcow2 on-disk constants and 64-bit entry helpers.
 *
 * L1/L2/refcount-table entries are u64 with flags in bits 62/63 and offsets
 * in bits 9..55. JS numbers are exact to 2^53, so entries are handled as
 * (hi, lo) u32 halves; offsets ≥ 2^53 cannot be valid in any real file.
 */
export const QCOW2_MAGIC = 0x514649fb;
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
export const QCOW_MAX_L1_SIZE = 0x2000000; // 32 MiB of L1 entries
export const QCOW_MAX_REFTABLE_SIZE = 0x800000; // 8 MiB
export const V3_HEADER_LENGTH = 112;

export const EXT = {
  END: 0x00000000,
  BACKING_FORMAT: 0xe2792aca,
  FEATURE_TABLE: 0x6803f857,
  BITMAPS: 0x23852875,
  CRYPTO_HEADER: 0x0537be77,
  DATA_FILE: 0x44415441,
} as const;

export const INCOMPAT = { DIRTY: 1, CORRUPT: 2, DATA_FILE: 4, COMPRESSION: 8, EXTL2: 16 } as const;
export const COMPAT_LAZY_REFCOUNTS = 1;
export const AUTOCLEAR_BITMAPS = 1;
/** Incompatible bits this library understands (dirty, corrupt, compression type). */
export const SUPPORTED_INCOMPAT = INCOMPAT.DIRTY | INCOMPAT.CORRUPT | INCOMPAT.COMPRESSION;

/** The feature name table QEMU writes into v3 images, in QEMU's order. */
export const FEATURE_NAMES: ReadonlyArray<{ type: 0 | 1 | 2; bit: number; name: string }> = [
  { type: 0, bit: 0, name: "dirty bit" },
  { type: 0, bit: 1, name: "corrupt bit" },
  { type: 0, bit: 2, name: "external data file" },
  { type: 0, bit: 3, name: "compression type" },
  { type: 0, bit: 4, name: "extended L2 entries" },
  { type: 1, bit: 0, name: "lazy refcounts" },
  { type: 2, bit: 0, name: "bitmaps" },
  { type: 2, bit: 1, name: "raw external data" },
];

/** An L1/L2 entry as two u32 halves. */
export const OFLAG_COPIED_HI = 0x80000000;
export const OFLAG_COMPRESSED_HI = 0x40000000;
export const OFLAG_ZERO_LO = 1;
/** Reserved bits: L1 0x7F000000_000001FF, L2 (standard) 0x3F000000_000001FE. */
export const L1_RESERVED_HI = 0x7f000000;
export const L1_RESERVED_LO = 0x1ff;
export const L2_RESERVED_HI = 0x3f000000;
export const L2_RESERVED_LO = 0x1fe;

const TWO32 = 0x100000000;

/** Cluster-aligned offset in bits 9..55. */
export function entryOffset(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * TWO32 + ((lo & 0xfffffe00) >>> 0);
}

export function getU64(view: DataView, pos: number): number {
  return view.getUint32(pos) * TWO32 + view.getUint32(pos + 4);
}

export function setU64(view: DataView, pos: number, value: number): void {
  view.setUint32(pos, Math.floor(value / TWO32));
  view.setUint32(pos + 4, value >>> 0);
}

/** Writes an entry: offset plus flag bits given as a hi-word mask and a lo-word mask. */
export function setEntry(view: DataView, pos: number, offset: number, hiFlags: number, loFlags = 0): void {
  view.setUint32(pos, (Math.floor(offset / TWO32) | hiFlags) >>> 0);
  view.setUint32(pos + 4, ((offset >>> 0) | loFlags) >>> 0);
}

/** Compressed descriptor fields (§5.3); BigInt because the split point moves. */
export function decodeCompressed(hi: number, lo: number, clusterBits: number): { offset: number; length: number } {
  const entry = (BigInt(hi) << 32n) | BigInt(lo);
  const shift = BigInt(62 - (clusterBits - 8));
  const offset = Number(entry & ((1n << shift) - 1n));
  const sectors = Number((entry >> shift) & BigInt((1 << (clusterBits - 8)) - 1)) + 1;
  return { offset, length: sectors * 512 - (offset % 512) };
}

export function encodeCompressed(offset: number, length: number, clusterBits: number): { hi: number; lo: number } {
  const shift = BigInt(62 - (clusterBits - 8));
  const field = BigInt(Math.floor((offset + length - 1) / 512) - Math.floor(offset / 512));
  const entry = (1n << 62n) | (field << shift) | BigInt(offset);
  return { hi: Number(entry >> 32n), lo: Number(entry & 0xffffffffn) };
}

/** C's "%#x": "0x1f", but plain "0" for zero (as in QEMU's messages). */
export function hex(n: number): string {
  return n === 0 ? "0" : "0x" + n.toString(16);
}
