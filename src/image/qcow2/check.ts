/**
 * A consistency checker like `qemu-img check` for qcow2: recomputes every
 * host cluster's reference count from the metadata and compares it with the
 * stored refcounts; checks reserved bits, alignment and COPIED flags.
 * Repair: "leaks" lowers leaked refcounts; "all" rebuilds the whole refcount
 * structure from the computed counts and fixes COPIED flags.
 */
import type { ByteStore } from "../types.ts";
import { Refcounts } from "./refcounts.ts";
import { parseHeader, type Qcow2Header } from "./header.ts";
import {
  AUTOCLEAR_BITMAPS,
  INCOMPAT,
  L1_RESERVED_HI,
  L1_RESERVED_LO,
  L2_RESERVED_HI,
  L2_RESERVED_LO,
  OFLAG_COMPRESSED_HI,
  OFLAG_COPIED_HI,
  decodeCompressed,
  entryOffset,
  getU64,
  setU64,
} from "./format.ts";

export interface CheckResult {
  corruptions: number;
  leaks: number;
  checkErrors: number;
  corruptionsFixed: number;
  leaksFixed: number;
  imageEndOffset: number;
  totalClusters: number;
  allocatedClusters: number;
  fragmentedClusters: number;
  compressedClusters: number;
  /** Per-problem lines, as qemu-img prints them on stderr. */
  messages: string[];
}

export type RepairMode = "leaks" | "all";

const hex = (n: number) => n.toString(16);

interface Scan {
  h: Qcow2Header;
  cs: number;
  computed: Map<number, number>;
  result: CheckResult;
  refcounts: Refcounts;
  /** Active L1 (where -1) and L2 entries with an offset, and whether COPIED is set. */
  copiedFixes: Array<{ where: number; pos: number; want: boolean }>;
}

async function readTable(store: ByteStore, offset: number, bytes: number): Promise<DataView> {
  const buf = new Uint8Array(bytes);
  await store.pread(buf, offset);
  return new DataView(buf.buffer);
}

async function scan(store: ByteStore): Promise<Scan> {
  const first = new Uint8Array(2 * 1024 * 1024);
  await store.pread(first, 0);
  const h = parseHeader(first, { readWrite: false });
  const cs = 2 ** h.clusterBits;
  const fileSize = await store.size();
  const refcounts = await Refcounts.open({
    store,
    clusterBits: h.clusterBits,
    refcountOrder: h.refcountOrder,
    tableOffset: h.refcountTableOffset,
    tableClusters: h.refcountTableClusters,
    fileEnd: fileSize,
    cacheCapacity: 64,
    writeHeaderTableFields: async () => {},
    sync: async () => {},
  });
  const result: CheckResult = {
    corruptions: 0,
    leaks: 0,
    checkErrors: 0,
    corruptionsFixed: 0,
    leaksFixed: 0,
    imageEndOffset: 0,
    totalClusters: Math.ceil(h.size / cs),
    allocatedClusters: 0,
    fragmentedClusters: 0,
    compressedClusters: 0,
    messages: [],
  };
  const computed = new Map<number, number>();
  const inc = (offset: number, size: number) => {
    if (size <= 0) return;
    const firstC = Math.floor(offset / cs);
    const lastC = Math.floor((offset + size - 1) / cs);
    for (let c = firstC; c <= lastC; c++) computed.set(c, (computed.get(c) ?? 0) + 1);
  };
  const s: Scan = { h, cs, computed, result, refcounts, copiedFixes: [] };
  const l2Entries = cs / 8;

  inc(0, cs);
  let nextContiguous = 0;

  const checkL2 = async (l2Offset: number, active: boolean) => {
    const view = await readTable(store, l2Offset, cs);
    for (let i = 0; i < l2Entries; i++) {
      const hi = view.getUint32(i * 8);
      const lo = view.getUint32(i * 8 + 4);
      const raw = `${hex(hi * 2 ** 32 + lo)}`;
      if (hi & OFLAG_COMPRESSED_HI) {
        if (hi & OFLAG_COPIED_HI) {
          const { offset } = decodeCompressed(hi & ~OFLAG_COPIED_HI, lo, h.clusterBits);
          result.messages.push(`ERROR: coffset=0x${hex(offset)}: copied flag must never be set for compressed clusters`);
          result.corruptions++;
        }
        const { offset, length } = decodeCompressed(hi & ~OFLAG_COPIED_HI, lo, h.clusterBits);
        if (active) {
          result.allocatedClusters++;
          result.compressedClusters++;
        }
        inc(offset - (offset % 512), length + (offset % 512));
        continue;
      }
      const off = entryOffset(hi, lo);
      if ((hi & L2_RESERVED_HI) || (lo & L2_RESERVED_LO)) {
        result.messages.push(`ERROR found l2 entry with reserved bits set: ${raw}`);
        result.corruptions++;
      }
      if (!off) continue;
      if (active) {
        result.allocatedClusters++;
        if (nextContiguous && off !== nextContiguous) result.fragmentedClusters++;
        nextContiguous = off + cs;
      }
      if (off % cs) {
        result.messages.push(`ERROR offset=${hex(off)}: Cluster is not properly aligned; L2 entry corrupted.`);
        result.corruptions++;
        continue;
      }
      inc(off, cs);
      if (active) s.copiedFixes.push({ where: l2Offset, pos: i, want: (hi & OFLAG_COPIED_HI) !== 0 });
    }
  };

  const checkL1 = async (l1Offset: number, l1Size: number, active: boolean) => {
    if (l1Size * 8 > 0x2000000 || l1Offset % cs) {
      result.messages.push(`ERROR L1 table at ${hex(l1Offset)} with ${l1Size} entries is invalid`);
      result.checkErrors++;
      return;
    }
    inc(l1Offset, l1Size * 8);
    const view = await readTable(store, l1Offset, l1Size * 8);
    for (let i = 0; i < l1Size; i++) {
      const hi = view.getUint32(i * 8);
      const lo = view.getUint32(i * 8 + 4);
      if ((hi & L1_RESERVED_HI) || (lo & L1_RESERVED_LO)) {
        result.messages.push(`ERROR found L1 entry with reserved bits set: ${hex(hi * 2 ** 32 + lo)}`);
        result.corruptions++;
      }
      const off = entryOffset(hi, lo);
      if (!off) continue;
      if (active) s.copiedFixes.push({ where: -1, pos: i, want: (hi & OFLAG_COPIED_HI) !== 0 });
      inc(off, cs);
      if (off % cs) {
        result.messages.push(`ERROR l2_offset=${hex(off)}: Table is not cluster aligned; L1 entry corrupted`);
        result.corruptions++;
        continue;
      }
      await checkL2(off, active);
    }
  };

  await checkL1(h.l1TableOffset, h.l1Size, true);

  // Internal snapshots: their L1 tables and the table itself.
  if (h.nbSnapshots > 0) {
    let pos = h.snapshotsOffset;
    const hdr = new Uint8Array(40);
    for (let n = 0; n < h.nbSnapshots; n++) {
      await store.pread(hdr, pos);
      const v = new DataView(hdr.buffer);
      const l1Off = getU64(v, 0);
      const l1Size = v.getUint32(8);
      const idLen = v.getUint16(12);
      const nameLen = v.getUint16(14);
      const extra = v.getUint32(36);
      pos += 40 + extra + idLen + nameLen;
      pos = Math.ceil(pos / 8) * 8;
      await checkL1(l1Off, l1Size, false);
    }
    inc(h.snapshotsOffset, pos - h.snapshotsOffset);
  }

  // Persistent bitmaps (only trusted when the autoclear bit says they are consistent).
  if (h.bitmaps && h.autoclear & BigInt(AUTOCLEAR_BITMAPS)) {
    const dir = await readTable(store, h.bitmaps.directoryOffset, h.bitmaps.directorySize);
    inc(h.bitmaps.directoryOffset, h.bitmaps.directorySize);
    let p = 0;
    for (let n = 0; n < h.bitmaps.nbBitmaps && p + 24 <= h.bitmaps.directorySize; n++) {
      const tOff = getU64(dir, p);
      const tSize = dir.getUint32(p + 8);
      const nameSize = dir.getUint16(p + 18);
      const extra = dir.getUint32(p + 20);
      p = Math.ceil((p + 24 + extra + nameSize) / 8) * 8;
      inc(tOff, tSize * 8);
      const t = await readTable(store, tOff, tSize * 8);
      for (let i = 0; i < tSize; i++) {
        const off = entryOffset(t.getUint32(i * 8), t.getUint32(i * 8 + 4));
        if (off) inc(off, cs);
      }
    }
  }

  // The refcount structure itself.
  inc(h.refcountTableOffset, h.refcountTableClusters * cs);
  const fileClusters = Math.ceil(fileSize / cs);
  for (let t = 0; t < refcounts.table.length; t++) {
    const off = refcounts.table[t]!;
    if (!off) continue;
    if (off % cs) {
      result.messages.push(`ERROR refcount block ${t} is not cluster aligned; refcount table entry corrupted`);
      result.corruptions++;
      continue;
    }
    if (off / cs >= fileClusters) {
      result.messages.push(`ERROR refcount block ${t} is outside image`);
      result.corruptions++;
      continue;
    }
    inc(off, cs);
  }
  return s;
}

async function compare(s: Scan, store: ByteStore): Promise<{ leaked: number[]; short: number[] }> {
  const { result, refcounts, computed, cs } = s;
  const fileClusters = Math.ceil((await store.size()) / cs);
  // Dense inside the file; references past its end (possibly garbage offsets) one by one.
  const beyond = [...computed.keys()].filter((c) => c >= fileClusters).sort((a, b) => a - b);
  const clusters = function* () {
    for (let c = 0; c < fileClusters; c++) yield c;
    yield* beyond;
  };
  let highest = -1;
  const leaked: number[] = [];
  const short: number[] = [];
  for (const c of clusters()) {
    const stored = await refcounts.get(c);
    const want = computed.get(c) ?? 0;
    if (stored > 0 || want > 0) highest = c;
    if (stored === want) continue;
    if (stored > want) {
      result.messages.push(`Leaked cluster ${c} refcount=${stored} reference=${want}`);
      result.leaks++;
      leaked.push(c);
    } else {
      result.messages.push(`ERROR cluster ${c} refcount=${stored} reference=${want}`);
      result.corruptions++;
      short.push(c);
    }
  }
  result.imageEndOffset = (highest + 1) * cs;
  return { leaked, short };
}

/** COPIED must say "refcount is exactly 1" for active L2 tables and data clusters. */
async function copiedMismatches(s: Scan, store: ByteStore): Promise<Scan["copiedFixes"]> {
  const bad: Scan["copiedFixes"] = [];
  const { refcounts, cs } = s;
  const l1 = await readTable(store, s.h.l1TableOffset, s.h.l1Size * 8);
  const l2Views = new Map<number, DataView>();
  for (const f of s.copiedFixes) {
    let hi: number;
    let lo: number;
    if (f.where === -1) {
      hi = l1.getUint32(f.pos * 8);
      lo = l1.getUint32(f.pos * 8 + 4);
    } else {
      let v = l2Views.get(f.where);
      if (!v) l2Views.set(f.where, (v = await readTable(store, f.where, cs)));
      hi = v.getUint32(f.pos * 8);
      lo = v.getUint32(f.pos * 8 + 4);
    }
    const off = entryOffset(hi, lo);
    const rc = await refcounts.get(off / cs);
    if ((rc === 1) !== f.want) {
      const entry = hex(hi * 2 ** 32 + lo);
      s.result.messages.push(
        f.where === -1
          ? `ERROR OFLAG_COPIED L2 cluster: l1_index=${f.pos} l1_entry=${entry} refcount=${rc}`
          : `ERROR OFLAG_COPIED data cluster: l2_entry=${entry} refcount=${rc}`,
      );
      s.result.corruptions++;
      bad.push({ ...f, want: rc === 1 });
    }
  }
  return bad;
}

/** Checks (and optionally repairs) a qcow2 image like `qemu-img check [-r leaks|all]`. */
export async function checkQcow2(store: ByteStore, opts: { repair?: RepairMode } = {}): Promise<CheckResult> {
  let s = await scan(store);
  const { leaked, short } = await compare(s, store);
  const copied = await copiedMismatches(s, store);
  if (!opts.repair || (leaked.length === 0 && short.length === 0 && copied.length === 0)) {
    if (opts.repair && s.result.corruptions === 0) await clearIncompat(store, s.h, INCOMPAT.CORRUPT | INCOMPAT.DIRTY);
    return s.result;
  }
  const before = s.result;
  if (opts.repair === "leaks" || short.length === 0) {
    for (const c of leaked) await s.refcounts.set(c, s.computed.get(c) ?? 0);
    await s.refcounts.writeBlocksAndTable();
  } else {
    await rebuildRefcounts(store, s);
  }
  if (opts.repair === "all" && copied.length) {
    const after = await scan(store);
    await compare(after, store);
    await fixCopied(store, after, await copiedMismatches(after, store));
  }
  await store.flush();
  s = await scan(store);
  await compare(s, store);
  await copiedMismatches(s, store);
  const fixedResult = s.result;
  fixedResult.leaksFixed = before.leaks - fixedResult.leaks;
  fixedResult.corruptionsFixed = before.corruptions - fixedResult.corruptions;
  fixedResult.messages = [...before.messages, ...fixedResult.messages];
  if (fixedResult.corruptions === 0) await clearIncompat(store, s.h, INCOMPAT.CORRUPT | INCOMPAT.DIRTY);
  return fixedResult;
}

/** What QEMU does when opening a dirty (lazy-refcounts) image read-write. */
export async function repairImage(store: ByteStore): Promise<CheckResult> {
  return checkQcow2(store, { repair: "all" });
}

async function clearIncompat(store: ByteStore, h: Qcow2Header, bits: number): Promise<void> {
  if (h.version < 3 || !(h.incompatible & BigInt(bits))) return;
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, h.incompatible & ~BigInt(bits));
  await store.pwrite(b, 72);
  await store.flush();
}

async function fixCopied(store: ByteStore, s: Scan, fixes: Scan["copiedFixes"]): Promise<void> {
  for (const f of fixes) {
    const base = f.where === -1 ? s.h.l1TableOffset : f.where;
    const b = new Uint8Array(8);
    await store.pread(b, base + f.pos * 8);
    const v = new DataView(b.buffer);
    const hi = v.getUint32(0);
    const lo = v.getUint32(4);
    v.setUint32(0, f.want ? (hi | OFLAG_COPIED_HI) >>> 0 : hi & ~OFLAG_COPIED_HI);
    v.setUint32(4, lo);
    await store.pwrite(b, base + f.pos * 8);
  }
}

/**
 * Writes a brand-new refcount table and blocks past the end of everything
 * referenced, describing exactly the computed counts (plus themselves),
 * then switches the header to it. The old structure becomes free space.
 */
async function rebuildRefcounts(store: ByteStore, s: Scan): Promise<void> {
  const { cs, h } = s;
  const bits = 2 ** h.refcountOrder;
  const epb = (cs * 8) / bits;
  const counts = new Map(s.computed);
  // Drop the old refcount structure's own references.
  const drop = (off: number, n: number) => {
    for (let c = off / cs; c < off / cs + n; c++) {
      const v = (counts.get(c) ?? 0) - 1;
      if (v <= 0) counts.delete(c);
      else counts.set(c, v);
    }
  };
  drop(h.refcountTableOffset, h.refcountTableClusters);
  for (const off of s.refcounts.table) if (off && off % cs === 0) drop(off, 1);
  let used = 0;
  for (const c of counts.keys()) used = Math.max(used, c + 1);
  const base = Math.max(used, Math.ceil((await store.size()) / cs));
  let blocks = 1;
  let tableClusters = 1;
  for (;;) {
    const end = base + blocks + tableClusters;
    const needBlocks = Math.ceil(end / epb);
    const needTable = Math.ceil((needBlocks * 8) / cs);
    if (needBlocks === blocks && needTable === tableClusters) break;
    blocks = needBlocks;
    tableClusters = needTable;
  }
  // Block t sits at base + t; the table follows the blocks.
  for (let c = base; c < base + blocks + tableClusters; c++) counts.set(c, 1);
  const tableOffset = (base + blocks) * cs;
  const rc = new Refcounts(
    {
      store,
      clusterBits: h.clusterBits,
      refcountOrder: h.refcountOrder,
      tableOffset,
      tableClusters,
      fileEnd: (base + blocks + tableClusters) * cs,
      cacheCapacity: blocks + 1,
      writeHeaderTableFields: async () => {},
      sync: async () => {},
    },
    Array.from({ length: (tableClusters * cs) / 8 }, (_, t) => (t < blocks ? (base + t) * cs : 0)),
  );
  for (let t = 0; t < blocks; t++) rc.blocks.create((base + t) * cs);
  for (const [c, v] of counts) {
    const block = rc.blocks.peek((base + Math.floor(c / epb)) * cs)!;
    rc.write(block, c % epb, Math.min(v, rc.max));
  }
  await rc.blocks.writeDirty();
  const table = new Uint8Array(tableClusters * cs);
  const tv = new DataView(table.buffer);
  for (let t = 0; t < blocks; t++) setU64(tv, t * 8, (base + t) * cs);
  await store.pwrite(table, tableOffset);
  await store.flush();
  const hdr = new Uint8Array(12);
  const hv = new DataView(hdr.buffer);
  setU64(hv, 0, tableOffset);
  hv.setUint32(8, tableClusters);
  await store.pwrite(hdr, 48);
  await store.flush();
}
