/**
 * The qcow2 internal snapshot table: parsing and serialising it, and the
 * lookups QEMU's snapshot code makes on it.
 *
 * Each entry: a 40-byte header (L1 offset and size, id/name lengths, date,
 * vm clock, 32-bit vm state size, extra data size), extra data (QEMU writes
 * 24 bytes: vm_state_size_large, disk_size, icount), the id and the name,
 * the next entry starting 8-byte aligned.
 */
import { getU64, setU64 } from "./format.ts";

/** QEMU's QCOW_MAX_SNAPSHOTS. */
export const MAX_SNAPSHOTS = 65536;
/** The extra data QEMU writes (QCowSnapshotExtraData). */
export const SNAPSHOT_EXTRA_SIZE = 24;

export interface StoredSnapshot {
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  vmStateSize: number;
  /** Guest size at snapshot time (null: an old entry without it; the image size is assumed). */
  diskSize: number | null;
  /** Instruction count (null: QEMU's -1, not recorded). */
  icount: number | null;
  /** Extra data beyond the 24 known bytes, kept as found. */
  unknownExtra: Uint8Array;
}

const ALL_ONES_HI = 0xffffffff;

function getU64OrNull(v: DataView, pos: number): number | null {
  if (v.getUint32(pos) === ALL_ONES_HI && v.getUint32(pos + 4) === ALL_ONES_HI) return null;
  return getU64(v, pos);
}

/** Parses `count` entries from the table bytes; returns them and the bytes used. */
export function parseSnapshotTable(buf: Uint8Array, count: number): { list: StoredSnapshot[]; size: number } {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dec = new TextDecoder();
  const list: StoredSnapshot[] = [];
  let pos = 0;
  for (let n = 0; n < count; n++) {
    pos = Math.ceil(pos / 8) * 8;
    const l1TableOffset = getU64(v, pos);
    const l1Size = v.getUint32(pos + 8);
    const idLen = v.getUint16(pos + 12);
    const nameLen = v.getUint16(pos + 14);
    const dateSec = v.getUint32(pos + 16);
    const dateNsec = v.getUint32(pos + 20);
    const vmClockNsec = getU64(v, pos + 24);
    let vmStateSize = v.getUint32(pos + 32);
    const extraSize = v.getUint32(pos + 36);
    pos += 40;
    let diskSize: number | null = null;
    let icount: number | null = null;
    if (extraSize >= 8) vmStateSize = getU64(v, pos);
    if (extraSize >= 16) diskSize = getU64(v, pos + 8);
    if (extraSize >= 24) icount = getU64OrNull(v, pos + 16);
    const unknownExtra = extraSize > SNAPSHOT_EXTRA_SIZE ? buf.slice(pos + SNAPSHOT_EXTRA_SIZE, pos + extraSize) : new Uint8Array(0);
    pos += extraSize;
    const id = dec.decode(buf.subarray(pos, pos + idLen));
    pos += idLen;
    const name = dec.decode(buf.subarray(pos, pos + nameLen));
    pos += nameLen;
    list.push({ l1TableOffset, l1Size, id, name, dateSec, dateNsec, vmClockNsec, vmStateSize, diskSize, icount, unknownExtra });
  }
  return { list, size: pos };
}

/** The table as QEMU's qcow2_write_snapshots lays it out (extra data always at least 24 bytes). */
export function serializeSnapshotTable(list: readonly StoredSnapshot[], imageSize: number): Uint8Array {
  const enc = new TextEncoder();
  const parts = list.map((s) => ({ s, id: enc.encode(s.id), name: enc.encode(s.name) }));
  let size = 0;
  for (const p of parts) {
    size = Math.ceil(size / 8) * 8;
    size += 40 + SNAPSHOT_EXTRA_SIZE + p.s.unknownExtra.length + p.id.length + p.name.length;
  }
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  let pos = 0;
  for (const { s, id, name } of parts) {
    pos = Math.ceil(pos / 8) * 8;
    setU64(v, pos, s.l1TableOffset);
    v.setUint32(pos + 8, s.l1Size);
    v.setUint16(pos + 12, id.length);
    v.setUint16(pos + 14, name.length);
    v.setUint32(pos + 16, s.dateSec);
    v.setUint32(pos + 20, s.dateNsec);
    setU64(v, pos + 24, s.vmClockNsec);
    // Older readers treat a state too big for 32 bits as a disk-only snapshot.
    v.setUint32(pos + 32, s.vmStateSize <= 0xffffffff ? s.vmStateSize : 0);
    v.setUint32(pos + 36, SNAPSHOT_EXTRA_SIZE + s.unknownExtra.length);
    pos += 40;
    setU64(v, pos, s.vmStateSize);
    setU64(v, pos + 8, s.diskSize ?? imageSize);
    if (s.icount === null) {
      v.setUint32(pos + 16, ALL_ONES_HI);
      v.setUint32(pos + 20, ALL_ONES_HI);
    } else {
      setU64(v, pos + 16, s.icount);
    }
    pos += SNAPSHOT_EXTRA_SIZE;
    buf.set(s.unknownExtra, pos);
    pos += s.unknownExtra.length;
    buf.set(id, pos);
    pos += id.length;
    buf.set(name, pos);
    pos += name.length;
  }
  return buf;
}

/** find_new_snapshot_id: one more than the highest numeric id (strtoul of each). */
export function nextSnapshotId(list: readonly StoredSnapshot[]): string {
  let max = 0;
  for (const s of list) {
    const m = /^\s*\+?(\d+)/.exec(s.id);
    const n = m ? Number(m[1]) : 0;
    if (n > max) max = n;
  }
  return String(max + 1);
}

/** find_snapshot_by_id_and_name: both must match when both are given. */
export function findSnapshotIndex(list: readonly StoredSnapshot[], id?: string | null, name?: string | null): number {
  if (id != null && name != null) return list.findIndex((s) => s.id === id && s.name === name);
  if (id != null) return list.findIndex((s) => s.id === id);
  if (name != null) return list.findIndex((s) => s.name === name);
  return -1;
}
