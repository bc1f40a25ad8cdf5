/**
 * A qcow2 image (v2/v3, 512 B..2 MiB clusters, any refcount width) over a
 * ByteStore: reads through backing files, allocating writes with COW,
 * zero/discard, compressed clusters, block status, resize.
 *
 * Metadata changes of an operation are made in memory (L1, L2 cache,
 * refcount-block cache) and written back in the crash-safe order:
 * refcount blocks -> refcount-table entries -> L2 tables -> L1 (-> header)
 * -> deferred refcount decrements. Data is written during the operation,
 * before any metadata that points at it. With `metadataCache: "writethrough"`
 * every operation ends with such a writeback (no fsync); with "deferred"
 * (the default) it happens once the event loop is idle after a burst, so
 * the file is consistent for other readers whenever the image is quiet;
 * "writeback" defers it to flush()/close()/cache pressure, like QEMU.
 */
import type { ByteStore, DiskImage, DiskReader, Extent } from "../types.ts";
import { ioError } from "../errors.ts";
import { DEFLATE_CODEC, INFLATE_CODEC, compressCluster, type ClusterCodec } from "../codec.ts";
import { sharedCompressPool } from "../compress-pool.ts";
import { AsyncLock } from "./lock.ts";
import { CachedTable, TableCache } from "./table-cache.ts";
import { Refcounts } from "./refcounts.ts";
import { HEADER_PROBE_BYTES, parseHeader, serializeHeader, type Qcow2Header } from "./header.ts";
import {
  BME_FLAG_AUTO,
  BME_FLAG_IN_USE,
  bitmapTableSize,
  parseDirectory,
  readBitmapBits,
  readBitmapTable,
  serializeDirectory,
  type BitmapToStore,
  type StoredBitmap,
} from "./bitmaps.ts";
import {
  MAX_SNAPSHOTS,
  findSnapshotIndex,
  nextSnapshotId,
  parseSnapshotTable,
  serializeSnapshotTable,
  type StoredSnapshot,
} from "./snapshots.ts";
import {
  AUTOCLEAR_BITMAPS,
  COMPAT_LAZY_REFCOUNTS,
  INCOMPAT,
  OFLAG_COMPRESSED_HI,
  OFLAG_COPIED_HI,
  OFLAG_ZERO_LO,
  decodeCompressed,
  encodeCompressed,
  entryOffset,
  hex,
  setEntry,
  setU64,
} from "./format.ts";

// Header bits as bigint once: these are read on every allocating write.
const LAZY_REFCOUNTS_BIT = BigInt(COMPAT_LAZY_REFCOUNTS);
const DIRTY_BIT = BigInt(INCOMPAT.DIRTY);

export interface Qcow2OpenOptions {
  readOnly?: boolean;
  backing?: DiskReader | null;
  /** L2 cache limit in bytes (QEMU's default is 1 MiB). */
  l2CacheBytes?: number;
  refcountCacheBytes?: number;
  /**
   * When changed metadata reaches the file (always in the crash-safe order):
   * "writethrough" at the end of every operation; "deferred" (default) once
   * the event loop is idle after a burst of operations; "writeback" only on
   * flush/close/cache pressure, like QEMU's metadata caches.
   */
  metadataCache?: "writethrough" | "deferred" | "writeback";
  /** Called when metadata is found inconsistent at runtime (QEMU: BLOCK_IMAGE_CORRUPTED). */
  onCorruption?: (info: CorruptionInfo) => void;
  /**
   * Compresses batches of clusters for writeCompressed. Default: inline for
   * one or two clusters, the process-wide worker pool (compress-pool.ts) for
   * bigger batches; null: always inline.
   */
  compressor?: ((clusters: Uint8Array[]) => Promise<Array<Uint8Array | null>>) | null;
}

/** A persistent bitmap found in the image at open. */
export interface ImageBitmap {
  name: string;
  granularityBits: number;
  /** In use at open: not stored back cleanly, so its bits cannot be trusted. */
  inUse: boolean;
  /** Records writes (the "auto" flag). */
  auto: boolean;
  /** Reads the stored bits (bit i = granule i). */
  readBits(): Promise<Uint8Array>;
}

export type { BitmapToStore } from "./bitmaps.ts";

export interface CorruptionInfo {
  msg: string;
  offset?: number;
  size?: number;
  fatal: boolean;
}

const enum Kind {
  Unallocated,
  ZeroPlain,
  ZeroAlloc,
  Normal,
  Compressed,
}

/** Whether an entry of this kind references host storage that zeroing or discarding gives up. */
function holdsHostCluster(kind: Kind): boolean {
  return kind === Kind.Normal || kind === Kind.ZeroAlloc || kind === Kind.Compressed;
}

interface Entry {
  kind: Kind;
  hi: number;
  lo: number;
  host: number;
  copied: boolean;
}

const DEFAULT_L2_CACHE = 1 << 20;
const DEFAULT_REFCOUNT_CACHE = 256 << 10;

export class Qcow2Image implements DiskImage {
  readonly format = "qcow2" as const;
  readonly clusterSize: number;
  readonly clusterBits: number;
  private readonly l2Entries: number;
  private l1: Uint8Array;
  private l1View: DataView;
  private l1DirtyLo = Infinity;
  private l1DirtyHi = 0;
  /** Set when the L1 moved and the header must be switched at writeback. */
  private l1Relocated: { oldOffset: number; oldClusters: number } | null = null;
  private readonly l2: TableCache;
  private readonly lock = new AsyncLock();
  private backing: DiskReader | null;
  private readonly metadataMode: "writethrough" | "deferred" | "writeback";
  private writebackScheduled = false;
  private inflated: { hi: number; lo: number; data: Uint8Array } | null = null;
  /** Next free byte for packing compressed clusters (QEMU's free_byte_offset). */
  private compressedTail = 0;
  private closed = false;
  /** The bitmap directory as it is on disk. */
  private stored: StoredBitmap[] = [];
  /** Names whose in_use flag was already set when the image was opened. */
  private inUseAtOpen = new Set<string>();
  /** The internal snapshot table as it is on disk, and its length in bytes. */
  private snapshotList: StoredSnapshot[] = [];
  private snapshotTableBytes = 0;
  private readonly deflateCodec: ClusterCodec = DEFLATE_CODEC;
  private readonly inflateCodec: ClusterCodec = INFLATE_CODEC;

  private constructor(
    readonly store: ByteStore,
    readonly header: Qcow2Header,
    readonly readOnly: boolean,
    private readonly refcounts: Refcounts,
    l1: Uint8Array,
    private readonly opts: Qcow2OpenOptions,
  ) {
    this.clusterBits = header.clusterBits;
    this.clusterSize = 2 ** header.clusterBits;
    this.l2Entries = this.clusterSize / 8;
    this.l1 = l1;
    this.l1View = new DataView(l1.buffer, l1.byteOffset, l1.byteLength);
    const l2Bytes = opts.l2CacheBytes ?? DEFAULT_L2_CACHE;
    this.l2 = new TableCache(store, this.clusterSize, Math.max(4, Math.floor(l2Bytes / this.clusterSize)));
    this.backing = opts.backing ?? null;
    this.metadataMode = opts.metadataCache ?? "deferred";
  }

  static async open(store: ByteStore, opts: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    const readOnly = opts.readOnly ?? false;
    const probe = new Uint8Array(HEADER_PROBE_BYTES);
    await store.pread(probe, 0);
    const bits = new DataView(probe.buffer).getUint32(20);
    const first = new Uint8Array(bits >= 9 && bits <= 21 ? 2 ** bits : HEADER_PROBE_BYTES);
    await store.pread(first, 0);
    let header = parseHeader(first, { readWrite: !readOnly });
    if (!readOnly && header.incompatible & BigInt(INCOMPAT.DIRTY)) {
      // QEMU repairs the refcounts of a dirty image on read-write open.
      const { repairImage } = await import("./check.ts");
      await repairImage(store);
      await store.pread(first, 0);
      header = parseHeader(first, { readWrite: true });
    }
    const cs = 2 ** header.clusterBits;
    const fileEnd = await store.size();
    const l1 = new Uint8Array(header.l1Size * 8);
    await store.pread(l1, header.l1TableOffset);
    const refcounts = await Refcounts.open({
      store,
      clusterBits: header.clusterBits,
      refcountOrder: header.refcountOrder,
      tableOffset: header.refcountTableOffset,
      tableClusters: header.refcountTableClusters,
      fileEnd,
      cacheCapacity: Math.max(4, Math.floor((opts.refcountCacheBytes ?? DEFAULT_REFCOUNT_CACHE) / cs)),
      writeHeaderTableFields: async (offset, clusters) => {
        const b = new Uint8Array(12);
        const v = new DataView(b.buffer);
        setU64(v, 0, offset);
        v.setUint32(8, clusters);
        await store.pwrite(b, 48);
      },
      sync: () => store.flush(),
    });
    const img = new Qcow2Image(store, header, readOnly, refcounts, l1, opts);
    await img.loadBitmapDirectory();
    await img.loadSnapshotTable();
    if (!readOnly) await img.prepareForWriting();
    return img;
  }

  /** Bitmaps are trusted only with the autoclear bit set (otherwise another program wrote the image). */
  private async loadBitmapDirectory(): Promise<void> {
    const ext = this.header.bitmaps;
    if (!ext || !(this.header.autoclear & BigInt(AUTOCLEAR_BITMAPS)) || ext.nbBitmaps === 0) return;
    const dir = new Uint8Array(ext.directorySize);
    await this.store.pread(dir, ext.directoryOffset);
    this.stored = parseDirectory(dir, ext.nbBitmaps);
    for (const b of this.stored) if (b.flags & BME_FLAG_IN_USE) this.inUseAtOpen.add(b.name);
  }

  /**
   * Read-write open: unknown autoclear bits are dropped; stored bitmaps are
   * marked in use (in place) until they are stored back, as QEMU does.
   */
  private async prepareForWriting(): Promise<void> {
    const h = this.header;
    const keep = this.stored.length > 0 ? BigInt(AUTOCLEAR_BITMAPS) : 0n;
    if (h.version === 3 && h.autoclear !== keep) {
      h.autoclear = keep;
      if (!keep) h.bitmaps = null;
      await this.writeHeaderU64(88, h.autoclear);
      await this.store.flush();
    }
    if (this.stored.length > 0 && this.stored.some((b) => !(b.flags & BME_FLAG_IN_USE))) {
      for (const b of this.stored) b.flags |= BME_FLAG_IN_USE;
      await this.store.pwrite(serializeDirectory(this.stored), h.bitmaps!.directoryOffset);
      await this.store.flush();
    }
  }

  // ---- persistent bitmaps -------------------------------------------------

  /** The bitmaps stored in the image when it was opened. */
  bitmapsAtOpen(): ImageBitmap[] {
    return this.stored.map((b) => ({
      name: b.name,
      granularityBits: b.granularityBits,
      inUse: this.inUseAtOpen.has(b.name),
      auto: (b.flags & BME_FLAG_AUTO) !== 0,
      readBits: () => this.lock.run(() => readBitmapBits(this.store, b, this.size, this.clusterSize)),
    }));
  }

  /** The directory as on disk now (qemu-img info's "bitmaps"). */
  storedBitmaps(): Array<{ name: string; granularityBits: number; inUse: boolean; auto: boolean }> {
    return this.stored.map((b) => ({
      name: b.name,
      granularityBits: b.granularityBits,
      inUse: (b.flags & BME_FLAG_IN_USE) !== 0,
      auto: (b.flags & BME_FLAG_AUTO) !== 0,
    }));
  }

  /**
   * Writes `bitmaps` into the image (replacing stored ones of the same name;
   * others stay as they are): new data clusters, tables and directory first,
   * then the header switch, then the old structures are freed.
   */
  storeBitmaps(bitmaps: readonly BitmapToStore[]): Promise<void> {
    return this.lock.run(async () => {
      if (this.readOnly) throw ioError("EPERM");
      if (bitmaps.length === 0) return;
      const cs = this.clusterSize;
      const fresh = new Map<string, StoredBitmap>();
      for (const b of bitmaps) {
        const tableSize = bitmapTableSize(this.size, b.granularityBits, cs);
        const table = new Uint8Array(tableSize * 8);
        const tv = new DataView(table.buffer);
        for (let i = 0; i < tableSize; i++) {
          const chunk = b.bits.subarray(i * cs, (i + 1) * cs);
          if (chunk.every((x) => x === 0)) continue;
          const data = new Uint8Array(cs);
          data.set(chunk);
          const off = await this.refcounts.allocate(1);
          await this.store.pwrite(data, off);
          setU64(tv, i * 8, off);
        }
        const tableOffset = tableSize ? await this.refcounts.allocate(Math.ceil((tableSize * 8) / cs)) : 0;
        if (tableSize) await this.store.pwrite(table, tableOffset);
        const flags = b.auto ? BME_FLAG_AUTO : 0;
        fresh.set(b.name, { name: b.name, granularityBits: b.granularityBits, flags, tableOffset, tableSize, extra: new Uint8Array(0) });
      }
      const replaced = this.stored.filter((s) => fresh.has(s.name));
      const next = this.stored.map((s) => fresh.get(s.name) ?? s);
      for (const f of fresh.values()) if (!this.stored.some((s) => s.name === f.name)) next.push(f);
      await this.switchDirectory(next, replaced);
    });
  }

  /** Deletes a stored bitmap from the image (no-op when it is not stored). */
  removeBitmap(name: string): Promise<void> {
    return this.lock.run(async () => {
      if (this.readOnly) throw ioError("EPERM");
      const gone = this.stored.filter((s) => s.name === name);
      if (gone.length === 0) return;
      await this.switchDirectory(this.stored.filter((s) => s.name !== name), gone);
    });
  }

  private async switchDirectory(next: StoredBitmap[], freed: StoredBitmap[]): Promise<void> {
    const cs = this.clusterSize;
    const h = this.header;
    const old = h.bitmaps;
    let ext: Qcow2Header["bitmaps"] = null;
    if (next.length > 0) {
      const dir = serializeDirectory(next);
      const dirOffset = await this.refcounts.allocate(Math.ceil(dir.length / cs));
      await this.store.pwrite(dir, dirOffset);
      ext = { nbBitmaps: next.length, directorySize: dir.length, directoryOffset: dirOffset };
    }
    await this.writeback(true);
    await this.store.flush();
    h.bitmaps = ext;
    if (ext) h.autoclear |= BigInt(AUTOCLEAR_BITMAPS);
    else h.autoclear &= ~BigInt(AUTOCLEAR_BITMAPS);
    await this.store.pwrite(serializeHeader(h), 0);
    await this.store.flush();
    if (old && old.directorySize > 0 && this.stored.length > 0) {
      this.refcounts.deferFree(old.directoryOffset, Math.ceil(old.directorySize / cs));
    }
    for (const b of freed) {
      for (const e of await readBitmapTable(this.store, b)) if (e.offset) this.refcounts.deferFree(e.offset);
      if (b.tableSize) this.refcounts.deferFree(b.tableOffset, Math.ceil((b.tableSize * 8) / cs));
    }
    this.stored = next;
    await this.writeback(true);
    await this.store.flush();
  }

  // ---- internal snapshots -------------------------------------------------

  private async loadSnapshotTable(): Promise<void> {
    const h = this.header;
    if (h.nbSnapshots === 0) return;
    // Entries are variable-sized: read a generous window, then more if needed.
    let want = Math.max(this.clusterSize, h.nbSnapshots * 128);
    for (;;) {
      const buf = new Uint8Array(want);
      await this.store.pread(buf, h.snapshotsOffset);
      try {
        const { list, size } = parseSnapshotTable(buf, h.nbSnapshots);
        if (size <= want) {
          this.snapshotList = list;
          this.snapshotTableBytes = size;
          return;
        }
      } catch {
        // ran past the window
      }
      if (want >= 64 << 20) throw ioError("EINVAL", "Snapshot table too large");
      want *= 2;
    }
  }

  /** The internal snapshots, in table order (copies). */
  snapshots(): StoredSnapshot[] {
    return this.snapshotList.map((s) => ({ ...s }));
  }

  /**
   * qcow2_snapshot_create: the active L1 copied to new clusters, every L2
   * table and host cluster reachable from it referenced once more (so the
   * active image copies on write), then the new table and the header.
   * Returns the stored entry (its id is the next free number).
   */
  createSnapshot(sn: { name: string; dateSec: number; dateNsec: number; vmClockNsec: number; vmStateSize?: number; icount?: number | null }): Promise<StoredSnapshot> {
    return this.lock.run(async () => {
      if (this.readOnly || this.closed) throw ioError("EPERM");
      if (this.snapshotList.length >= MAX_SNAPSHOTS) throw ioError("EFBIG");
      const cs = this.clusterSize;
      await this.writeback(true);
      await this.store.flush();
      const l1Bytes = this.header.l1Size * 8;
      const l1Offset = l1Bytes ? await this.refcounts.allocate(Math.ceil(l1Bytes / cs)) : 0;
      if (l1Bytes) await this.store.pwrite(this.l1.slice(), l1Offset);
      await this.referenceActiveTables();
      // Refcounts first, then the L2/L1 entries without COPIED: a crash leaves leaks only.
      await this.writeback(true);
      await this.store.flush();
      const entry: StoredSnapshot = {
        l1TableOffset: l1Offset,
        l1Size: this.header.l1Size,
        id: nextSnapshotId(this.snapshotList),
        name: sn.name,
        dateSec: sn.dateSec,
        dateNsec: sn.dateNsec,
        vmClockNsec: sn.vmClockNsec,
        vmStateSize: sn.vmStateSize ?? 0,
        diskSize: this.size,
        icount: sn.icount ?? null,
        unknownExtra: new Uint8Array(0),
      };
      await this.switchSnapshotTable([...this.snapshotList, entry]);
      // A host cluster now shared must not be packed into further.
      this.compressedTail = 0;
      this.inflated = null;
      return { ...entry };
    });
  }

  /** update_snapshot_refcount(+1) over the active L1: one more reference each, COPIED cleared. */
  private async referenceActiveTables(): Promise<void> {
    await this.forEachActiveL2(
      async (table, j, e) => {
        if (!holdsHostCluster(e.kind)) return;
        for (const c of this.hostClustersOf(e)) await this.refcounts.add(c, 1);
        if (e.copied) this.setL2(table, j, e.hi & ~OFLAG_COPIED_HI, e.lo);
      },
      async (i, l2Offset) => {
        await this.refcounts.add(l2Offset / this.clusterSize, 1);
        this.setL1Entry(i, l2Offset, 0);
      },
    );
  }

  /**
   * Visits every entry of every L2 table the active L1 points at, then the
   * L1 entry itself, relieving the caches table by table (snapshot refcounts).
   */
  private async forEachActiveL2(
    entry: (table: CachedTable, index: number, e: Entry) => Promise<void>,
    l1Entry: (index: number, l2Offset: number, hi: number) => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < this.header.l1Size; i++) {
      const { hi, lo } = this.l1Entry(i);
      const l2Offset = entryOffset(hi, lo);
      if (!l2Offset) continue;
      const table = await this.l2Table(i);
      if (!table) continue;
      for (let j = 0; j < this.l2Entries; j++) await entry(table, j, this.entry(table, j));
      await l1Entry(i, l2Offset, hi);
      await this.relieveCaches();
    }
  }

  /** Rewrites L1 entry `i` in memory; the dirty range reaches the file at the next write-back. */
  private setL1Entry(i: number, l2Offset: number, flagsHi: number): void {
    setEntry(this.l1View, i * 8, l2Offset, flagsHi);
    this.l1DirtyLo = Math.min(this.l1DirtyLo, i * 8);
    this.l1DirtyHi = Math.max(this.l1DirtyHi, i * 8 + 8);
  }

  /** The host clusters an entry references (a compressed one may span several). */
  private hostClustersOf(e: Entry): number[] {
    const cs = this.clusterSize;
    if (e.kind === Kind.Compressed) {
      const { offset, length } = decodeCompressed(e.hi, e.lo, this.clusterBits);
      const out: number[] = [];
      for (let c = Math.floor(offset / cs); c <= Math.floor((offset + length - 1) / cs); c++) out.push(c);
      return out;
    }
    return e.host ? [e.host / cs] : [];
  }

  /**
   * qcow2_snapshot_delete: the table without the entry goes to disk first;
   * then the snapshot's references are dropped, its L1 freed, and COPIED
   * set again where the active image is the only user. Returns the entry,
   * or null when no snapshot matches.
   */
  deleteSnapshot(id?: string | null, name?: string | null): Promise<StoredSnapshot | null> {
    return this.lock.run(async () => {
      if (this.closed) throw ioError("EPERM");
      const index = findSnapshotIndex(this.snapshotList, id, name);
      if (index < 0) return null;
      if (this.readOnly) {
        // qcow2_snapshot_delete drops the entry from its list before the table
        // write fails, and does not put it back: QEMU lists it no more.
        this.snapshotList = this.snapshotList.filter((_, k) => k !== index);
        throw ioError("EPERM");
      }
      const cs = this.clusterSize;
      const sn = this.snapshotList[index]!;
      await this.writeback(true);
      await this.store.flush();
      await this.switchSnapshotTable(this.snapshotList.filter((_, k) => k !== index));
      // Nothing on disk points at the snapshot's L1 any more.
      const l1 = new Uint8Array(sn.l1Size * 8);
      if (l1.length) await this.store.pread(l1, sn.l1TableOffset);
      const lv = new DataView(l1.buffer);
      const tables: number[] = [];
      for (let i = 0; i < sn.l1Size; i++) {
        const l2Offset = entryOffset(lv.getUint32(i * 8), lv.getUint32(i * 8 + 4));
        if (!l2Offset) continue;
        const table = await this.l2.get(l2Offset);
        for (let j = 0; j < this.l2Entries; j++) {
          const e = this.entry(table, j);
          if (holdsHostCluster(e.kind)) for (const c of this.hostClustersOf(e)) this.refcounts.deferFree(c * cs);
        }
        this.refcounts.deferFree(l2Offset);
        tables.push(l2Offset);
      }
      if (l1.length) this.refcounts.deferFree(sn.l1TableOffset, Math.ceil(l1.length / cs));
      await this.writeback(true);
      for (const t of tables) if ((await this.refcounts.get(t / cs)) === 0) this.l2.drop(t);
      await this.restoreCopiedFlags();
      await this.writeback(true);
      await this.store.flush();
      this.inflated = null;
      return { ...sn };
    });
  }

  /** update_snapshot_refcount(0) over the active L1: COPIED exactly where the refcount is 1. */
  private async restoreCopiedFlags(): Promise<void> {
    const cs = this.clusterSize;
    await this.forEachActiveL2(
      async (table, j, e) => {
        if (e.kind !== Kind.Normal && e.kind !== Kind.ZeroAlloc) return;
        const own = (await this.refcounts.get(e.host / cs)) === 1;
        if (own !== e.copied) this.setL2(table, j, own ? e.hi | OFLAG_COPIED_HI : e.hi & ~OFLAG_COPIED_HI, e.lo);
      },
      async (i, l2Offset, hi) => {
        const own = (await this.refcounts.get(l2Offset / cs)) === 1;
        if (own !== ((hi & OFLAG_COPIED_HI) !== 0)) this.setL1Entry(i, l2Offset, own ? OFLAG_COPIED_HI : 0);
      },
    );
  }

  /** qcow2_write_snapshots: new table in new clusters, synced, one header write, old table freed. */
  private async switchSnapshotTable(next: StoredSnapshot[]): Promise<void> {
    const cs = this.clusterSize;
    const h = this.header;
    const bytes = serializeSnapshotTable(next, this.size);
    const offset = bytes.length ? await this.refcounts.allocate(Math.ceil(bytes.length / cs)) : 0;
    await this.writeback(true);
    await this.store.flush();
    if (bytes.length) await this.store.pwrite(bytes, offset);
    await this.store.flush();
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    v.setUint32(0, next.length);
    setU64(v, 4, offset);
    await this.store.pwrite(b, 60);
    await this.store.flush();
    if (this.snapshotTableBytes) this.refcounts.deferFree(h.snapshotsOffset, Math.ceil(this.snapshotTableBytes / cs));
    h.nbSnapshots = next.length;
    h.snapshotsOffset = offset;
    this.snapshotList = next;
    this.snapshotTableBytes = bytes.length;
    await this.writeback(true);
  }

  // ---- header facts -------------------------------------------------------

  get size(): number {
    return this.header.size;
  }
  get version(): 2 | 3 {
    return this.header.version;
  }
  /** QEMU's "compat" string. */
  get compat(): "0.10" | "1.1" {
    return this.header.version === 2 ? "0.10" : "1.1";
  }
  get backingFile(): string | null {
    return this.header.backingFile;
  }
  get backingFormat(): string | null {
    return this.header.backingFormat;
  }
  get refcountBits(): number {
    return 2 ** this.header.refcountOrder;
  }
  get compressionType(): "zlib" | "zstd" {
    return this.header.compressionType === 1 ? "zstd" : "zlib";
  }
  get lazyRefcounts(): boolean {
    return (this.header.compatible & LAZY_REFCOUNTS_BIT) !== 0n;
  }
  get dirty(): boolean {
    return (this.header.incompatible & DIRTY_BIT) !== 0n;
  }
  get corrupt(): boolean {
    return (this.header.incompatible & BigInt(INCOMPAT.CORRUPT)) !== 0n;
  }
  get extendedL2(): boolean {
    return false;
  }
  get nbSnapshots(): number {
    return this.header.nbSnapshots;
  }
  get hasBitmaps(): boolean {
    return this.header.bitmaps !== null;
  }

  // ---- entries ------------------------------------------------------------

  private l1Entry(i: number): { hi: number; lo: number } {
    return { hi: this.l1View.getUint32(i * 8), lo: this.l1View.getUint32(i * 8 + 4) };
  }

  /** Points L1 entry `i` at a table this image alone uses (COPIED set). */
  private setL1(i: number, offset: number): void {
    this.setL1Entry(i, offset, offset ? OFLAG_COPIED_HI : 0);
  }

  private entry(t: CachedTable, i: number): Entry {
    const hi = t.view.getUint32(i * 8);
    const lo = t.view.getUint32(i * 8 + 4);
    const copied = (hi & OFLAG_COPIED_HI) !== 0;
    if (hi & OFLAG_COMPRESSED_HI) return { kind: Kind.Compressed, hi, lo, host: 0, copied };
    const host = entryOffset(hi, lo);
    if (lo & OFLAG_ZERO_LO) return { kind: host ? Kind.ZeroAlloc : Kind.ZeroPlain, hi, lo, host, copied };
    return { kind: host ? Kind.Normal : Kind.Unallocated, hi, lo, host, copied };
  }

  private setL2(t: CachedTable, i: number, hi: number, lo: number): void {
    t.view.setUint32(i * 8, hi >>> 0);
    t.view.setUint32(i * 8 + 4, lo >>> 0);
    t.markDirty(i * 8, i * 8 + 8);
  }

  /** Reports metadata QEMU would call corrupt, marks the image, and fails the request. */
  private async corruption(msg: string, offset?: number, size?: number): Promise<never> {
    const fatal = !this.readOnly;
    this.opts.onCorruption?.({ msg, offset, size, fatal });
    if (fatal && !this.corrupt) {
      this.header.incompatible |= BigInt(INCOMPAT.CORRUPT);
      await this.writeHeaderU64(72, this.header.incompatible);
    }
    throw ioError("EIO");
  }

  /** The L2 table for L1 index `i`, or null when unallocated. */
  private async l2Table(i: number): Promise<CachedTable | null> {
    if (i >= this.header.l1Size) return null;
    const { hi, lo } = this.l1Entry(i);
    const off = entryOffset(hi, lo);
    if (!off) return null;
    if (off % this.clusterSize) {
      return this.corruption(`L2 table offset ${hex(off)} unaligned (L1 index: ${hex(i)})`, off, this.clusterSize);
    }
    return this.l2.get(off);
  }

  /** l2TableForWrite's answer when no wait is needed: the table is cached and owned (COPIED). */
  private writableL2IfCached(i: number): CachedTable | undefined {
    const { hi, lo } = this.l1Entry(i);
    const off = entryOffset(hi, lo);
    if (!off || !(hi & OFLAG_COPIED_HI) || off % this.clusterSize) return undefined;
    return this.l2.hit(off);
  }

  /** The L2 table for L1 index `i`, allocated or copied so it may be modified. */
  private async l2TableForWrite(i: number): Promise<CachedTable> {
    const { hi, lo } = this.l1Entry(i);
    const off = entryOffset(hi, lo);
    if (!off) {
      const fresh = await this.refcounts.allocate(1);
      const t = this.l2.create(fresh);
      this.setL1(i, fresh);
      return t;
    }
    const t = await this.l2Table(i);
    if (!t) throw ioError("EIO");
    if (hi & OFLAG_COPIED_HI) return t;
    if ((await this.refcounts.get(off / this.clusterSize)) === 1) {
      this.setL1(i, off);
      return t;
    }
    // Shared with a snapshot: copy on write.
    const fresh = await this.refcounts.allocate(1);
    const copy = this.l2.create(fresh, t.buf);
    this.setL1(i, fresh);
    this.refcounts.deferFree(off);
    return copy;
  }

  // ---- reads --------------------------------------------------------------

  read(buf: Uint8Array, offset: number): Promise<void> {
    return this.lock.run(() => this.readLocked(buf, offset));
  }

  private async readLocked(buf: Uint8Array, offset: number): Promise<void> {
    const cs = this.clusterSize;
    const inside = Math.max(0, Math.min(buf.length, this.size - offset));
    const tableSpan = cs * this.l2Entries;
    let pos = 0;
    while (pos < inside) {
      const guest = offset + pos;
      const l1i = Math.floor(guest / tableSpan);
      const sliceEnd = Math.min(inside, (l1i + 1) * tableSpan - offset);
      const table = await this.l2Table(l1i);
      if (!table) {
        await this.readUnallocated(buf.subarray(pos, sliceEnd), guest);
        pos = sliceEnd;
        continue;
      }
      while (pos < sliceEnd) {
        const g = offset + pos;
        const l2i = Math.floor(g / cs) % this.l2Entries;
        const inCluster = g % cs;
        const e = this.entry(table, l2i);
        // Extend over following clusters of the same kind (contiguous host for data).
        let end = Math.min(sliceEnd, pos + cs - inCluster);
        if (e.kind !== Kind.Compressed) {
          let j = l2i + 1;
          while (end < sliceEnd) {
            const n = this.entry(table, j);
            if (n.kind !== e.kind && !(isZero(n.kind) && isZero(e.kind))) break;
            if (e.kind === Kind.Normal && n.host !== e.host + (j - l2i) * cs) break;
            end = Math.min(sliceEnd, end + cs);
            j++;
          }
        }
        const part = buf.subarray(pos, end);
        switch (e.kind) {
          case Kind.Normal:
            if (e.host % cs) {
              await this.corruption(
                `Cluster allocation offset ${hex(e.host)} unaligned (L2 offset: ${hex(table.offset)}, L2 index: ${hex(l2i)})`,
                e.host,
                cs,
              );
            }
            await this.store.pread(part, e.host + inCluster);
            break;
          case Kind.Unallocated:
            await this.readUnallocated(part, g);
            break;
          case Kind.ZeroPlain:
          case Kind.ZeroAlloc:
            part.fill(0);
            break;
          case Kind.Compressed: {
            const data = await this.inflate(e);
            part.set(data.subarray(inCluster, inCluster + part.length));
            break;
          }
        }
        pos = end;
      }
    }
    if (inside < buf.length) buf.fill(0, Math.max(0, inside));
  }

  private async readUnallocated(buf: Uint8Array, guest: number): Promise<void> {
    if (this.backing) await this.backing.read(buf, guest);
    else buf.fill(0);
  }

  private async inflate(e: Entry): Promise<Uint8Array> {
    if (this.inflated && this.inflated.hi === e.hi && this.inflated.lo === e.lo) return this.inflated.data;
    const { offset, length } = decodeCompressed(e.hi, e.lo, this.clusterBits);
    const raw = new Uint8Array(length);
    await this.store.pread(raw, offset);
    if (this.header.compressionType !== 0) throw ioError("ENOTSUP");
    const data = this.inflateCodec.inflate(raw, this.clusterSize);
    this.inflated = { hi: e.hi, lo: e.lo, data };
    return data;
  }

  /** Old guest content of part of one cluster, for COW. */
  private async readOld(e: Entry, guestCluster: number, from: number, out: Uint8Array): Promise<void> {
    switch (e.kind) {
      case Kind.Normal:
        await this.store.pread(out, e.host + from);
        return;
      case Kind.Compressed:
        out.set((await this.inflate(e)).subarray(from, from + out.length));
        return;
      case Kind.Unallocated:
        await this.readUnallocated(out, guestCluster * this.clusterSize + from);
        return;
      default:
        out.fill(0);
    }
  }

  // ---- writes -------------------------------------------------------------

  private checkWritable(offset: number, length: number): void {
    if (this.closed) throw ioError("EIO");
    if (this.readOnly) throw ioError("EPERM");
    if (offset < 0 || length < 0 || offset + length > this.size) throw ioError("EIO");
  }

  write(data: Uint8Array, offset: number): Promise<void> {
    return this.lock.run(async () => {
      this.checkWritable(offset, data.length);
      const span = this.clusterSize * this.l2Entries;
      if (Math.floor(offset / span) === Math.floor((offset + data.length - 1) / span)) {
        // Within one L2 table (nearly every request): no per-table loop.
        await this.writeSlice(data, offset);
        if (this.cachesOverCapacity()) await this.relieveCaches();
      } else {
        await this.forEachTable(offset, data.length, (start, len) =>
          this.writeSlice(data.subarray(start - offset, start - offset + len), start),
        );
      }
      const pending = this.afterOperation();
      if (pending) await pending;
    });
  }

  /** Runs fn for each part of [offset, offset+length) that one L2 table covers. */
  private async forEachTable(offset: number, length: number, fn: (start: number, len: number) => Promise<void>): Promise<void> {
    const span = this.clusterSize * this.l2Entries;
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const next = Math.min(end, (Math.floor(pos / span) + 1) * span);
      await fn(pos, next - pos);
      pos = next;
      await this.relieveCaches();
    }
  }

  /**
   * QEMU marks an image with lazy refcounts dirty when a write links newly
   * allocated data clusters (not for in-place, zero or compressed writes).
   */
  private beforeAllocatingWrite(): Promise<void> | undefined {
    if (!this.lazyRefcounts || this.dirty || this.header.version !== 3) return undefined;
    this.header.incompatible |= DIRTY_BIT;
    return this.writeHeaderU64(72, this.header.incompatible).then(() => this.store.flush());
  }

  /** A promise only when there is something to wait for (writethrough metadata). */
  private afterOperation(): Promise<void> | undefined {
    if (this.metadataMode === "writethrough") return this.writeback(false);
    if (this.metadataMode === "deferred" && !this.writebackScheduled) {
      // One writeback per burst: runs when the event loop gets to its next turn.
      this.writebackScheduled = true;
      setImmediate(() => {
        this.writebackScheduled = false;
        void this.lock
          .run(async () => {
            if (!this.closed) await this.writeback(false);
          })
          .catch(() => {});
      });
    }
  }

  private cachesOverCapacity(): boolean {
    return this.l2.overCapacity() || this.refcounts.blocks.overCapacity();
  }

  private async relieveCaches(): Promise<void> {
    if (this.cachesOverCapacity()) {
      await this.writeback(true);
      this.l2.trim();
      this.refcounts.blocks.trim();
    }
  }

  private async writeSlice(data: Uint8Array, offset: number): Promise<void> {
    const cs = this.clusterSize;
    const l1i = Math.floor(offset / (cs * this.l2Entries));
    const table = this.writableL2IfCached(l1i) ?? (await this.l2TableForWrite(l1i));
    const first = Math.floor(offset / cs);
    const last = Math.floor((offset + data.length - 1) / cs);
    const count = last - first + 1;
    const old: Entry[] = new Array(count);
    const host: number[] = new Array(count);
    /** True when the whole cluster must be written (new cluster, COW). */
    const fresh: boolean[] = new Array(count);
    let needed = 0;
    for (let k = 0; k < count; k++) {
      const e = this.entry(table, (first + k) % this.l2Entries);
      old[k] = e;
      if (e.host % cs && (e.kind === Kind.Normal || e.kind === Kind.ZeroAlloc)) {
        await this.corruption(
          `Cluster allocation offset ${hex(e.host)} unaligned (L2 offset: ${hex(table.offset)}, L2 index: ${hex((first + k) % this.l2Entries)})`,
          e.host,
          cs,
        );
      }
      const reusable =
        (e.kind === Kind.Normal || e.kind === Kind.ZeroAlloc) &&
        (e.copied || (await this.refcounts.get(e.host / cs)) === 1);
      if (reusable) {
        host[k] = e.host;
        fresh[k] = e.kind === Kind.ZeroAlloc;
      } else {
        host[k] = -1;
        fresh[k] = true;
        needed++;
      }
    }
    if (needed > 0) {
      const marking = this.beforeAllocatingWrite();
      if (marking) await marking;
      let next = await this.refcounts.allocate(needed);
      for (let k = 0; k < count; k++) if (host[k] === -1) (host[k] = next), (next += cs);
    }
    // Write runs of clusters that are contiguous on the host.
    const dataEnd = offset + data.length;
    let k = 0;
    while (k < count) {
      let j = k + 1;
      while (j < count && host[j] === host[j - 1]! + cs) j++;
      const runFirst = first + k;
      const runGuestStart = runFirst * cs;
      const runGuestEnd = (first + j) * cs;
      const writeStart = fresh[k] ? runGuestStart : Math.max(offset, runGuestStart);
      const writeEnd = fresh[j - 1] ? runGuestEnd : Math.min(dataEnd, runGuestEnd);
      const dataStart = Math.max(offset, runGuestStart);
      const dataStop = Math.min(dataEnd, runGuestEnd);
      const hostStart = host[k]! + (writeStart - runGuestStart);
      if (writeStart === dataStart && writeEnd === dataStop) {
        const whole = dataStart === offset && dataStop === dataEnd;
        await this.store.pwrite(whole ? data : data.subarray(dataStart - offset, dataStop - offset), hostStart);
      } else {
        const buf = new Uint8Array(writeEnd - writeStart);
        if (writeStart < dataStart) {
          await this.readOld(old[k]!, runFirst, 0, buf.subarray(0, dataStart - writeStart));
        }
        if (dataStop < writeEnd) {
          const lastIdx = j - 1;
          const from = dataStop - (first + lastIdx) * cs;
          await this.readOld(old[lastIdx]!, first + lastIdx, from, buf.subarray(dataStop - writeStart));
        }
        buf.set(data.subarray(dataStart - offset, dataStop - offset), dataStart - writeStart);
        await this.store.pwrite(buf, hostStart);
      }
      k = j;
    }
    for (let k2 = 0; k2 < count; k2++) {
      const e = old[k2]!;
      const l2i = (first + k2) % this.l2Entries;
      const h = host[k2]!;
      if (e.kind === Kind.Normal && e.copied && e.host === h) continue;
      setEntry(table.view, l2i * 8, h, OFLAG_COPIED_HI);
      table.markDirty(l2i * 8, l2i * 8 + 8);
      if (e.host !== h) this.releaseEntry(e);
    }
    this.inflated = null;
  }

  /** Defers the refcount decrements for whatever host space an entry used. */
  private releaseEntry(e: Entry): void {
    if (e.kind === Kind.Compressed) {
      const { offset, length } = decodeCompressed(e.hi, e.lo, this.clusterBits);
      const cs = this.clusterSize;
      // QEMU counts the sectors the descriptor names, up to the last byte.
      const firstC = Math.floor(offset / cs);
      const lastC = Math.floor((offset + length - 1) / cs);
      for (let c = firstC; c <= lastC; c++) this.refcounts.deferFree(c * cs);
    } else if (e.host) {
      this.refcounts.deferFree(e.host);
    }
  }

  writeZeroes(offset: number, length: number, opts: { unmap?: boolean } = {}): Promise<void> {
    return this.lock.run(async () => {
      this.checkWritable(offset, length);
      if (length === 0) return;
      const cs = this.clusterSize;
      const end = offset + length;
      // Whole clusters (the image's last partial cluster counts as whole when covered to the end).
      let alignedStart = Math.ceil(offset / cs) * cs;
      let alignedEnd = end === this.size ? end : Math.floor(end / cs) * cs;
      // A partial cluster becomes a whole one when the rest of it already reads as zeros.
      if (offset % cs && (await this.readsAsZero(Math.floor(offset / cs) * cs, offset))) {
        const clusterEnd = Math.min(this.size, Math.floor(offset / cs) * cs + cs);
        if (end >= clusterEnd || (await this.readsAsZero(end, clusterEnd))) alignedStart = Math.floor(offset / cs) * cs;
      }
      if (end % cs && end !== this.size) {
        const clusterStart = Math.floor(end / cs) * cs;
        const clusterEnd = Math.min(this.size, clusterStart + cs);
        if (clusterStart >= offset || (await this.readsAsZero(clusterStart, offset))) {
          if (await this.readsAsZero(end, clusterEnd)) alignedEnd = clusterEnd;
        }
      }
      // v3 has the zero flag; v2 can only deallocate, which reads as zeros without a backing file.
      const v3 = this.header.version >= 3;
      if (alignedEnd <= alignedStart || (!v3 && this.backing)) {
        await this.writeZeroBuffers(offset, end);
      } else {
        if (offset < alignedStart) await this.writeZeroBuffers(offset, alignedStart);
        await this.forEachTable(alignedStart, alignedEnd - alignedStart, (s, l) =>
          v3 ? this.zeroSlice(s, l, !!opts.unmap) : this.discardSlice(s, l),
        );
        if (alignedEnd < end) await this.writeZeroBuffers(alignedEnd, end);
      }
      await this.afterOperation();
    });
  }

  private async readsAsZero(start: number, end: number): Promise<boolean> {
    if (end <= start) return true;
    const buf = new Uint8Array(end - start);
    await this.readLocked(buf, start);
    return buf.every((b) => b === 0);
  }

  /** The fallback QEMU's block layer uses when the format cannot zero a range. */
  private async writeZeroBuffers(start: number, end: number): Promise<void> {
    const chunk = 1 << 20;
    for (let pos = start; pos < end; pos += chunk) {
      const len = Math.min(chunk, end - pos);
      await this.forEachTable(pos, len, (s, l) => this.writeSlice(new Uint8Array(l), s));
    }
  }

  private async zeroSlice(offset: number, length: number, unmap: boolean): Promise<void> {
    const cs = this.clusterSize;
    const l1i = Math.floor(offset / (cs * this.l2Entries));
    const table = await this.l2TableForWrite(l1i);
    const first = Math.floor(offset / cs);
    const count = Math.ceil(length / cs);
    for (let k = 0; k < count; k++) {
      const l2i = (first + k) % this.l2Entries;
      const e = this.entry(table, l2i);
      const allocated = holdsHostCluster(e.kind);
      const drop = e.kind === Kind.Compressed || (unmap && allocated);
      // As QEMU's zero_in_l2_slice, a cluster shared with a snapshot keeps its
      // reference (without COPIED); a later write copies it like any other.
      const hi = drop ? 0 : e.hi;
      const lo = (drop ? 0 : e.lo) | OFLAG_ZERO_LO;
      if (drop) this.releaseEntry(e);
      if (hi === e.hi && lo === e.lo) continue;
      this.setL2(table, l2i, hi, lo);
    }
    this.inflated = null;
  }

  discard(offset: number, length: number): Promise<void> {
    return this.lock.run(async () => {
      this.checkWritable(offset, length);
      const cs = this.clusterSize;
      const start = Math.ceil(offset / cs) * cs;
      const end = offset + length === this.size ? this.size : Math.floor((offset + length) / cs) * cs;
      if (end <= start) return;
      await this.forEachTable(start, end - start, (s, l) => this.discardSlice(s, l));
      await this.afterOperation();
    });
  }

  /**
   * Unallocates every cluster, so the whole image reads from its backing
   * file again (bdrv_make_empty after a commit). Like QEMU's fallback for
   * images it cannot rebuild from scratch, the L2 tables stay.
   */
  makeEmpty(): Promise<void> {
    return this.lock.run(async () => {
      this.checkWritable(0, this.size);
      if (this.size > 0) await this.forEachTable(0, this.size, (s, l) => this.discardSlice(s, l, true));
      await this.afterOperation();
    });
  }

  /** `full`: entries become unallocated even over a backing file (no zero flag). */
  private async discardSlice(offset: number, length: number, full = false): Promise<void> {
    const cs = this.clusterSize;
    const l1i = Math.floor(offset / (cs * this.l2Entries));
    const zeroFlag = this.header.version >= 3 && !full;
    if (!(await this.l2Table(l1i)) && !(this.backing && zeroFlag)) return;
    const table = await this.l2TableForWrite(l1i);
    const first = Math.floor(offset / cs);
    const count = Math.ceil(length / cs);
    for (let k = 0; k < count; k++) {
      const l2i = (first + k) % this.l2Entries;
      const e = this.entry(table, l2i);
      const allocated = holdsHostCluster(e.kind);
      if (!this.backing && !allocated) continue;
      const lo = zeroFlag ? OFLAG_ZERO_LO : 0;
      if (e.hi === 0 && e.lo === lo) continue;
      this.setL2(table, l2i, 0, lo);
      if (allocated) this.releaseEntry(e);
    }
    this.inflated = null;
  }

  /**
   * Writes whole clusters compressed (the image's last partial cluster may
   * be given short; it is zero-padded). Targets must have no host cluster,
   * as in QEMU. A cluster that does not shrink is written normally.
   */
  writeCompressed(data: Uint8Array, offset: number): Promise<void> {
    const cs = this.clusterSize;
    if (offset % cs || (data.length % cs && offset + data.length !== this.size)) {
      return Promise.reject(ioError("EINVAL"));
    }
    // Only zlib streams are produced; a zstd image must not get them.
    if (this.header.compressionType !== 0) return Promise.reject(ioError("ENOTSUP"));
    const clusters: Uint8Array[] = [];
    for (let p = 0; p < data.length; p += cs) {
      const part = data.subarray(p, Math.min(data.length, p + cs));
      if (part.length === cs) clusters.push(part);
      else {
        const padded = new Uint8Array(cs);
        padded.set(part);
        clusters.push(padded);
      }
    }
    // Compress outside the lock (possibly on worker threads).
    const compressor =
      this.opts.compressor !== undefined
        ? this.opts.compressor
        : clusters.length > 2
          ? (c: Uint8Array[]) => sharedCompressPool().compress(c)
          : null;
    const compressing = compressor
      ? compressor(clusters)
      : Promise.resolve(clusters.map((c) => compressCluster(c, this.deflateCodec)));
    return compressing.then((streams) =>
      this.lock.run(async () => {
        this.checkWritable(offset, data.length);
        // Streams packed back to back on the host go down in one write, before
        // any L2 entry that points at them can reach the disk.
        const run = new StreamRun();
        for (let k = 0; k < clusters.length; k++) {
          const guest = offset + k * cs;
          const stream = streams[k];
          if (!stream) {
            await this.writeRun(run);
            await this.writeSlice(data.subarray(k * cs, Math.min(data.length, k * cs + cs)), guest);
          } else {
            await this.placeCompressedCluster(stream, guest, run);
          }
          if (k % 64 === 63) {
            await this.writeRun(run);
            await this.relieveCaches();
          }
        }
        await this.writeRun(run);
        await this.afterOperation();
      }),
    );
  }

  /** Writes the gathered streams, then links their L2 entries (data first, as for every write). */
  private async writeRun(run: StreamRun): Promise<void> {
    if (!run.length) return;
    const { start, data, links } = run.take();
    await this.store.pwrite(data, start);
    for (const link of links) link();
  }

  /** Finds host room for a compressed stream; its bytes and L2 link join `run` (written by writeRun). */
  private async placeCompressedCluster(stream: Uint8Array, guest: number, run: StreamRun): Promise<void> {
    const cs = this.clusterSize;
    const table = await this.l2TableForWrite(Math.floor(guest / (cs * this.l2Entries)));
    const l2i = Math.floor(guest / cs) % this.l2Entries;
    const e = this.entry(table, l2i);
    if (e.kind !== Kind.Unallocated && e.kind !== Kind.ZeroPlain) throw ioError("EIO");
    const len = stream.length;
    const tail = this.compressedTail;
    const room = tail % cs ? cs - (tail % cs) : 0;
    const cur = Math.floor(tail / cs);
    let start: number;
    if (room && (await this.refcounts.get(cur)) < this.refcounts.max) {
      if (len <= room) {
        start = tail;
      } else {
        // Spill into the next cluster only if the allocator hands us exactly that one.
        const next = await this.refcounts.allocate(Math.ceil((len - room) / cs));
        start = next === (cur + 1) * cs ? tail : next;
      }
      if (start === tail) await this.refcounts.add(cur, 1);
    } else {
      start = await this.refcounts.allocate(Math.ceil(len / cs));
    }
    if (!run.continues(start)) await this.writeRun(run);
    this.compressedTail = start + len;
    const desc = encodeCompressed(start, len, this.clusterBits);
    run.append(stream, start, () => {
      this.setL2(table, l2i, desc.hi, desc.lo);
      this.inflated = null;
    });
  }

  // ---- status -------------------------------------------------------------

  blockStatus(offset: number, length: number): Promise<Extent> {
    return this.lock.run(async () => {
      const cs = this.clusterSize;
      const limit = Math.max(0, Math.min(length, this.size - offset));
      if (limit === 0) return { offset, length: 0, allocated: false, zero: false, data: false };
      const span = cs * this.l2Entries;
      let pos = offset;
      let first: Entry | null = null;
      let firstHost = 0;
      const end = offset + limit;
      while (pos < end) {
        const l1i = Math.floor(pos / span);
        const table = await this.l2Table(l1i);
        const tableEnd = Math.min(end, (l1i + 1) * span);
        if (!table) {
          if (first && first.kind !== Kind.Unallocated) break;
          first ??= { kind: Kind.Unallocated, hi: 0, lo: 0, host: 0, copied: false };
          pos = tableEnd;
          continue;
        }
        let stop = false;
        while (pos < tableEnd) {
          const e = this.entry(table, Math.floor(pos / cs) % this.l2Entries);
          const step = Math.min(tableEnd, (Math.floor(pos / cs) + 1) * cs) - pos;
          if (!first) {
            first = e;
            firstHost = e.host ? e.host + (pos % cs) : 0;
          } else {
            const same =
              e.kind === first.kind &&
              e.kind !== Kind.Compressed &&
              (!first.host || e.host + (pos % cs) === firstHost + (pos - offset));
            // Compressed clusters are reported one by one, like QEMU.
            if (!same) {
              stop = true;
              break;
            }
          }
          pos += step;
        }
        if (stop) break;
      }
      const len = pos - offset;
      const k = first!.kind;
      const ext: Extent = {
        offset,
        length: len,
        allocated: k !== Kind.Unallocated,
        zero: k === Kind.ZeroPlain || k === Kind.ZeroAlloc || (k === Kind.Unallocated && !this.backing),
        data: k === Kind.Normal || k === Kind.Compressed,
      };
      if (k === Kind.Compressed) ext.compressed = true;
      if (k === Kind.Normal || k === Kind.ZeroAlloc) ext.hostOffset = firstHost;
      return ext;
    });
  }

  // ---- resize -------------------------------------------------------------

  resize(size: number): Promise<void> {
    return this.lock.run(async () => {
      if (this.readOnly) throw ioError("EPERM");
      if (size % 512) throw ioError("EINVAL", "The new size must be a multiple of 512");
      // v2 snapshot entries need not record their disk size, so QEMU will not resize such an image.
      if (this.snapshotList.length && this.header.version < 3) throw ioError("ENOTSUP", "Can't resize a v2 image which has snapshots");
      const cs = this.clusterSize;
      const span = cs * this.l2Entries;
      if (size < this.size) {
        // Drop whole clusters past the new end (the partial last cluster stays, as in QEMU).
        const from = Math.ceil(size / cs) * cs;
        for (let l1i = Math.floor(from / span); l1i < this.header.l1Size; l1i++) {
          const table = await this.l2Table(l1i);
          if (!table) continue;
          const tableStart = l1i * span;
          if (from <= tableStart) {
            // The whole table goes.
            const t = await this.l2TableForWrite(l1i);
            for (let i = 0; i < this.l2Entries; i++) {
              const e = this.entry(t, i);
              if (e.kind !== Kind.Unallocated && e.kind !== Kind.ZeroPlain) this.releaseEntry(e);
            }
            this.refcounts.deferFree(t.offset);
            this.l2.drop(t.offset);
            this.setL1(l1i, 0);
          } else {
            const t = await this.l2TableForWrite(l1i);
            for (let i = (from - tableStart) / cs; i < this.l2Entries; i++) {
              const e = this.entry(t, i);
              if (e.kind === Kind.Unallocated) continue;
              if (e.kind !== Kind.ZeroPlain) this.releaseEntry(e);
              this.setL2(t, i, 0, 0);
            }
          }
        }
      } else if (size > this.size) {
        const needed = Math.ceil(size / span);
        if (needed > this.header.l1Size) await this.growL1(needed);
      }
      const shrinking = size < this.size;
      this.header.size = size;
      await this.writeback(true);
      const b = new Uint8Array(8);
      setU64(new DataView(b.buffer), 0, size);
      await this.store.pwrite(b, 24);
      await this.store.flush();
      this.inflated = null;
      if (shrinking) {
        // As QEMU: the file ends after the last cluster still in use.
        const fileSize = await this.store.size();
        const end = (await this.refcounts.usedEnd(Math.ceil(fileSize / cs))) * cs;
        if (end > 0 && end < fileSize) {
          await this.store.truncate(end);
          this.compressedTail = 0;
        }
      }
    });
  }

  /** New, bigger L1 elsewhere; switched in the header at writeback. */
  private async growL1(entries: number): Promise<void> {
    if (entries * 8 > 0x2000000) throw ioError("EFBIG", "Active L1 table too large");
    const cs = this.clusterSize;
    const clusters = Math.ceil((entries * 8) / cs);
    const fresh = await this.refcounts.allocate(clusters);
    const l1 = new Uint8Array(entries * 8);
    l1.set(this.l1);
    const oldClusters = Math.ceil(this.l1.length / cs);
    if (!this.l1Relocated) {
      this.l1Relocated = { oldOffset: this.header.l1TableOffset, oldClusters };
    } else {
      // Relocated twice before a writeback: the intermediate table was never used on disk.
      this.refcounts.deferFree(this.header.l1TableOffset, oldClusters);
    }
    this.l1 = l1;
    this.l1View = new DataView(l1.buffer);
    this.header.l1Size = entries;
    this.header.l1TableOffset = fresh;
  }

  // ---- writeback ----------------------------------------------------------

  /** Writes pending metadata in the crash-safe order; `sync` adds fsyncs between stages. */
  private async writeback(sync: boolean): Promise<void> {
    const barrier = async (wrote: boolean) => {
      if (wrote && sync) await this.store.flush();
    };
    await barrier(await this.refcounts.writeBlocksAndTable());
    await barrier(await this.l2.writeDirty());
    if (this.l1Relocated) {
      await this.store.pwrite(this.l1, this.header.l1TableOffset);
      await this.store.flush();
      const b = new Uint8Array(12);
      const v = new DataView(b.buffer);
      v.setUint32(0, this.header.l1Size);
      setU64(v, 4, this.header.l1TableOffset);
      await this.store.pwrite(b, 36);
      await this.store.flush();
      this.refcounts.deferFree(this.l1Relocated.oldOffset, this.l1Relocated.oldClusters);
      this.l1Relocated = null;
      this.l1DirtyLo = Infinity;
      this.l1DirtyHi = 0;
    } else if (this.l1DirtyLo < this.l1DirtyHi) {
      await this.store.pwrite(this.l1.subarray(this.l1DirtyLo, this.l1DirtyHi), this.header.l1TableOffset + this.l1DirtyLo);
      this.l1DirtyLo = Infinity;
      this.l1DirtyHi = 0;
      await barrier(true);
    }
    if (await this.refcounts.applyFrees()) {
      // A freed cluster may be reused for anything: never pack into it again.
      this.compressedTail = 0;
      await barrier(await this.refcounts.writeBlocksAndTable());
    }
  }

  private async writeHeaderU64(pos: number, value: bigint): Promise<void> {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value);
    await this.store.pwrite(b, pos);
  }

  flush(): Promise<void> {
    return this.lock.run(async () => {
      if (this.readOnly || this.closed) return;
      await this.writeback(true);
      await this.store.flush();
    });
  }

  close(): Promise<void> {
    return this.lock.run(async () => {
      if (this.closed) return;
      if (!this.readOnly) {
        await this.writeback(true);
        if (this.dirty && this.lazyRefcounts) {
          // Refcounts are always up to date here; only the flag needs clearing.
          this.header.incompatible &= ~BigInt(INCOMPAT.DIRTY);
          await this.writeHeaderU64(72, this.header.incompatible);
        }
        await this.store.flush();
      }
      this.closed = true;
      await this.store.close();
    });
  }

  setBacking(backing: DiskReader | null): void {
    this.backing = backing;
    this.inflated = null;
  }

  /** Rewrites the backing file name/format in the header (commit, stream, snapshot). */
  setBackingFile(file: string | null, format: string | null = null): Promise<void> {
    return this.lock.run(async () => {
      if (this.readOnly) throw ioError("EPERM");
      // qcow2_change_backing_file refuses names over 1023 bytes; one that does not fit in cluster 0 is ENOSPC.
      if (file && new TextEncoder().encode(file).length > 1023) throw ioError("EINVAL");
      const saved = { file: this.header.backingFile, format: this.header.backingFormat };
      this.header.backingFile = file;
      this.header.backingFormat = file ? format : null;
      let cluster0: Uint8Array;
      try {
        cluster0 = serializeHeader(this.header);
      } catch {
        this.header.backingFile = saved.file;
        this.header.backingFormat = saved.format;
        throw ioError("ENOSPC");
      }
      await this.writeback(true);
      await this.store.pwrite(cluster0, 0);
      await this.store.flush();
    });
  }

  /** Guest clusters that hold data in this layer (for `qemu-img info`-like output). */
  async allocatedBytes(): Promise<number> {
    let total = 0;
    for (let pos = 0; pos < this.size; ) {
      const ext = await this.blockStatus(pos, this.size - pos);
      if (ext.length === 0) break;
      if (ext.data) total += ext.length;
      pos += ext.length;
    }
    return total;
  }
}

function isZero(k: Kind): boolean {
  return k === Kind.ZeroPlain || k === Kind.ZeroAlloc;
}

export function openQcow2(store: ByteStore, opts: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
  return Qcow2Image.open(store, opts);
}

/** Compressed streams that follow each other on the host, gathered for one write. */
class StreamRun {
  start = 0;
  length = 0;
  private parts: Uint8Array[] = [];
  private links: Array<() => void> = [];

  continues(at: number): boolean {
    return !this.length || at === this.start + this.length;
  }

  append(stream: Uint8Array, at: number, link: () => void): void {
    if (!this.length) this.start = at;
    this.parts.push(stream);
    this.links.push(link);
    this.length += stream.length;
  }

  take(): { start: number; data: Uint8Array; links: Array<() => void> } {
    let data = this.parts[0]!;
    if (this.parts.length > 1) {
      data = new Uint8Array(this.length);
      let pos = 0;
      for (const p of this.parts) data.set(p, pos), (pos += p.length);
    }
    const out = { start: this.start, data, links: this.links };
    this.parts = [];
    this.links = [];
    this.length = 0;
    return out;
  }
}
