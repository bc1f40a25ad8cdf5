/**
 * The persistent-bitmap structures of a qcow2 image (the "bitmaps" header
 * extension): directory entries, bitmap tables and data clusters. Encoding
 * and decoding only; allocation and the crash-safe switch live in image.ts.
 */
import type { ByteStore } from "../types.ts";
import { formatError } from "../errors.ts";
import { entryOffset, getU64, setU64 } from "./format.ts";

export const BME_FLAG_IN_USE = 1;
export const BME_FLAG_AUTO = 2;
const BME_TYPE_DIRTY_TRACKING = 1;
/** Table entry bit 0 with offset 0: the whole cluster's bits are set. */
const BME_TABLE_ENTRY_ALL_ONES = 1;
const ENTRY_HEADER = 24;

/** One entry of the bitmap directory, as stored. */
export interface StoredBitmap {
  name: string;
  granularityBits: number;
  flags: number;
  tableOffset: number;
  tableSize: number;
  /** Extra data, kept verbatim. */
  extra: Uint8Array;
}

/** A bitmap to write: bit i = granule i, LSB first in each byte (QEMU's serialisation). */
export interface BitmapToStore {
  name: string;
  granularityBits: number;
  auto: boolean;
  bits: Uint8Array;
}

const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

function entrySize(nameBytes: number, extraBytes: number): number {
  return Math.ceil((ENTRY_HEADER + extraBytes + nameBytes) / 8) * 8;
}

export function parseDirectory(dir: Uint8Array, count: number): StoredBitmap[] {
  const v = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const out: StoredBitmap[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + ENTRY_HEADER > dir.length) throw formatError("Could not read bitmap directory: Invalid argument");
    const nameSize = v.getUint16(p + 18);
    const extraSize = v.getUint32(p + 20);
    const nameStart = p + ENTRY_HEADER + extraSize;
    if (nameStart + nameSize > dir.length || v.getUint8(p + 16) !== BME_TYPE_DIRTY_TRACKING) {
      throw formatError("Could not read bitmap directory: Invalid argument");
    }
    out.push({
      tableOffset: getU64(v, p),
      tableSize: v.getUint32(p + 8),
      flags: v.getUint32(p + 12),
      granularityBits: v.getUint8(p + 17),
      extra: dir.slice(p + ENTRY_HEADER, nameStart),
      name: utf8.decode(dir.subarray(nameStart, nameStart + nameSize)),
    });
    p += entrySize(nameSize, extraSize);
  }
  return out;
}

export function serializeDirectory(list: readonly StoredBitmap[]): Uint8Array {
  const names = list.map((b) => utf8enc.encode(b.name));
  const size = list.reduce((s, b, i) => s + entrySize(names[i]!.length, b.extra.length), 0);
  const dir = new Uint8Array(size);
  const v = new DataView(dir.buffer);
  let p = 0;
  list.forEach((b, i) => {
    const name = names[i]!;
    setU64(v, p, b.tableOffset);
    v.setUint32(p + 8, b.tableSize);
    v.setUint32(p + 12, b.flags);
    v.setUint8(p + 16, BME_TYPE_DIRTY_TRACKING);
    v.setUint8(p + 17, b.granularityBits);
    v.setUint16(p + 18, name.length);
    v.setUint32(p + 20, b.extra.length);
    dir.set(b.extra, p + ENTRY_HEADER);
    dir.set(name, p + ENTRY_HEADER + b.extra.length);
    p += entrySize(name.length, b.extra.length);
  });
  return dir;
}

/** Data clusters a bitmap of `size` bytes at 2^granularityBits needs. */
export function bitmapTableSize(size: number, granularityBits: number, clusterSize: number): number {
  const granules = Math.ceil(size / 2 ** granularityBits);
  return Math.ceil(granules / (clusterSize * 8));
}

/** Raw table entries: data cluster offset, or 0 (all zeros / all ones per bit 0). */
export async function readBitmapTable(store: ByteStore, bm: StoredBitmap): Promise<Array<{ offset: number; ones: boolean }>> {
  const raw = new Uint8Array(bm.tableSize * 8);
  await store.pread(raw, bm.tableOffset);
  const v = new DataView(raw.buffer);
  const out: Array<{ offset: number; ones: boolean }> = [];
  for (let i = 0; i < bm.tableSize; i++) {
    const hi = v.getUint32(i * 8);
    const lo = v.getUint32(i * 8 + 4);
    const offset = entryOffset(hi, lo);
    out.push({ offset, ones: offset === 0 && (lo & BME_TABLE_ENTRY_ALL_ONES) !== 0 });
  }
  return out;
}

/** The bitmap's bits (ceil(granules/8) bytes, bits past the end cleared). */
export async function readBitmapBits(store: ByteStore, bm: StoredBitmap, size: number, clusterSize: number): Promise<Uint8Array> {
  const granules = Math.ceil(size / 2 ** bm.granularityBits);
  const bytes = Math.ceil(granules / 8);
  if (bm.tableSize !== bitmapTableSize(size, bm.granularityBits, clusterSize)) {
    throw formatError(`Bitmap '${bm.name}' doesn't satisfy the constraints`);
  }
  const out = new Uint8Array(bm.tableSize * clusterSize);
  const table = await readBitmapTable(store, bm);
  for (let i = 0; i < table.length; i++) {
    const e = table[i]!;
    const part = out.subarray(i * clusterSize, (i + 1) * clusterSize);
    if (e.offset) await store.pread(part, e.offset);
    else if (e.ones) part.fill(0xff);
  }
  const bits = out.slice(0, bytes);
  if (granules % 8) bits[bytes - 1]! &= (1 << granules % 8) - 1;
  return bits;
}
