/**
 * Refcount table + refcount blocks for any refcount_order, and the cluster
 * allocator built on them.
 *
 * Increments are made in the block cache and reach the disk at writeback
 * (blocks first, then new table entries), before any L2/L1 that points at
 * the clusters. Decrements are deferred (deferFree) until the references
 * are gone on disk, so a freed cluster is never reused while an on-disk
 * table still points at it.
 */
import type { ByteStore } from "../types.ts";
import { ioError } from "../errors.ts";
import { CachedTable, TableCache } from "./table-cache.ts";
import { getU64, setU64 } from "./format.ts";

export interface RefcountsInit {
  store: ByteStore;
  clusterBits: number;
  refcountOrder: number;
  tableOffset: number;
  tableClusters: number;
  /** Highest byte the file is known to use (its size at open). */
  fileEnd: number;
  cacheCapacity: number;
  /** Writes the 12 header bytes at offset 48 (table offset + clusters). */
  writeHeaderTableFields(offset: number, clusters: number): Promise<void>;
  sync(): Promise<void>;
}

export class Refcounts {
  readonly clusterSize: number;
  readonly bits: number;
  readonly max: number;
  /** Refcount entries per block, log2. */
  private readonly blockBits: number;
  tableOffset: number;
  tableClusters: number;
  /** Block offsets by table index (0 = absent). */
  table: number[];
  private readonly dirtyTableIndices = new Set<number>();
  readonly blocks: TableCache;
  private pendingFrees: number[] = [];
  /** First cluster index worth looking at for free space. */
  private freeHint = 0;
  /** One past the highest cluster ever in use (file end at open, then allocations). */
  private highWater: number;

  constructor(private readonly init: RefcountsInit, table: number[]) {
    this.clusterSize = 2 ** init.clusterBits;
    this.bits = 2 ** init.refcountOrder;
    this.max = this.bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.bits - 1;
    this.blockBits = init.clusterBits + 3 - init.refcountOrder;
    this.tableOffset = init.tableOffset;
    this.tableClusters = init.tableClusters;
    this.table = table;
    this.blocks = new TableCache(init.store, this.clusterSize, init.cacheCapacity);
    this.highWater = Math.ceil(init.fileEnd / this.clusterSize);
  }

  static async open(init: RefcountsInit): Promise<Refcounts> {
    const bytes = new Uint8Array(init.tableClusters * 2 ** init.clusterBits);
    await init.store.pread(bytes, init.tableOffset);
    const view = new DataView(bytes.buffer);
    const table: number[] = new Array(bytes.length / 8);
    for (let i = 0; i < table.length; i++) {
      // Bits 0-8 are reserved; a misaligned entry is treated as the aligned block.
      table[i] = getU64(view, i * 8) - (view.getUint32(i * 8 + 4) & 0x1ff);
    }
    return new Refcounts(init, table);
  }

  get entriesPerBlock(): number {
    return 2 ** this.blockBits;
  }

  private tableIndex(cluster: number): number {
    return Math.floor(cluster / this.entriesPerBlock);
  }

  /** Reads entry `i` of a block. */
  read(block: CachedTable, i: number): number {
    const v = block.view;
    switch (this.bits) {
      case 64:
        return getU64(v, i * 8);
      case 32:
        return v.getUint32(i * 4);
      case 16:
        return v.getUint16(i * 2);
      case 8:
        return block.buf[i]!;
      default: {
        const bitPos = i * this.bits;
        return (block.buf[bitPos >> 3]! >> (bitPos & 7)) & (2 ** this.bits - 1);
      }
    }
  }

  write(block: CachedTable, i: number, value: number): void {
    const v = block.view;
    let lo: number;
    let len: number;
    switch (this.bits) {
      case 64:
        setU64(v, i * 8, value);
        lo = i * 8;
        len = 8;
        break;
      case 32:
        v.setUint32(i * 4, value);
        lo = i * 4;
        len = 4;
        break;
      case 16:
        v.setUint16(i * 2, value);
        lo = i * 2;
        len = 2;
        break;
      case 8:
        block.buf[i] = value;
        lo = i;
        len = 1;
        break;
      default: {
        const bitPos = i * this.bits;
        const mask = (2 ** this.bits - 1) << (bitPos & 7);
        lo = bitPos >> 3;
        len = 1;
        block.buf[lo] = (block.buf[lo]! & ~mask) | ((value << (bitPos & 7)) & mask);
      }
    }
    block.markDirty(lo, lo + len);
  }

  private async block(t: number): Promise<CachedTable | null> {
    const off = t < this.table.length ? this.table[t]! : 0;
    if (!off) return null;
    return this.blocks.get(off);
  }

  /**
   * The covering block without waiting: null when there is none, undefined
   * when it must be read first. Sequential writes meet cached blocks almost
   * always, and skipping the awaits there measurably lowered their CPU time.
   */
  private cachedBlock(t: number): CachedTable | null | undefined {
    const off = t < this.table.length ? this.table[t]! : 0;
    return off ? this.blocks.hit(off) : null;
  }

  /** The refcount if its block is cached (or absent), else undefined. */
  private cachedGet(cluster: number): number | undefined {
    const b = this.cachedBlock(this.tableIndex(cluster));
    if (b === undefined) return undefined;
    return b ? this.read(b, cluster % this.entriesPerBlock) : 0;
  }

  async get(cluster: number): Promise<number> {
    const cached = this.cachedGet(cluster);
    if (cached !== undefined) return cached;
    const b = await this.block(this.tableIndex(cluster));
    return b ? this.read(b, cluster % this.entriesPerBlock) : 0;
  }

  /** Sets a refcount; the covering block must exist (allocate() guarantees it). */
  async set(cluster: number, value: number): Promise<void> {
    this.setIn((await this.block(this.tableIndex(cluster))) ?? null, cluster, value);
  }

  private setIn(b: CachedTable | null, cluster: number, value: number): void {
    if (!b) throw ioError("EIO");
    if (value > this.max) throw ioError("EINVAL", "Reference count overflow");
    this.write(b, cluster % this.entriesPerBlock, value);
    if (value > 0 && cluster + 1 > this.highWater) this.highWater = cluster + 1;
  }

  async add(cluster: number, delta: number): Promise<number> {
    const v = (await this.get(cluster)) + delta;
    if (v < 0) throw ioError("EIO");
    await this.set(cluster, v);
    return v;
  }

  /**
   * First run of `n` clusters with refcount 0 at or after the hint: a number
   * when every refcount block on the way is cached (sequential writes, nearly
   * always), else a promise that reads the missing block and looks again.
   */
  private findFree(n: number): number | Promise<number> {
    let start = this.freeHint;
    let run = 0;
    for (let c = start; ; c++) {
      if (c >= this.highWater) {
        // Everything past the high-water mark is free.
        return run > 0 ? start : c;
      }
      const v = this.cachedGet(c);
      if (v === undefined) return this.get(c).then(() => this.findFree(n));
      if (v === 0) {
        if (run === 0) start = c;
        if (++run === n) return start;
      } else {
        run = 0;
      }
    }
  }

  /** Allocates `n` contiguous clusters with refcount 1; returns the byte offset. */
  async allocate(n: number): Promise<number> {
    for (;;) {
      const found = this.findFree(n);
      const start = typeof found === "number" ? found : await found;
      const first = this.tableIndex(start);
      const last = this.tableIndex(start + n - 1);
      let created = false;
      for (let t = first; t <= last; t++) {
        if (t >= this.table.length || !this.table[t]) {
          await this.createBlock(t);
          created = true;
        }
      }
      if (created) continue; // new blocks may sit inside the run: look again
      for (let c = start; c < start + n; c++) {
        const b = this.cachedBlock(this.tableIndex(c));
        if (b === undefined) await this.set(c, 1);
        else this.setIn(b, c, 1);
      }
      // As QEMU's free_cluster_index: holes too small for this run are passed
      // over until a free moves the hint back. Keeping the hint at the first
      // hole made every multi-cluster allocation scan the whole image again.
      this.freeHint = start + n;
      return start * this.clusterSize;
    }
  }

  /** Creates the refcount block for table index t, preferably inside its own range. */
  private async createBlock(t: number): Promise<void> {
    if (t >= this.table.length) await this.growTable(t);
    if (this.table[t]) return;
    const b = await this.findFree(1);
    const tb = this.tableIndex(b);
    if (tb !== t && (tb >= this.table.length || !this.table[tb])) {
      await this.createBlock(tb);
      return this.createBlock(t);
    }
    const block = this.blocks.create(b * this.clusterSize);
    this.table[t] = b * this.clusterSize;
    this.dirtyTableIndices.add(t);
    await this.set(b, 1);
    void block;
  }

  /**
   * Moves the refcount table to a bigger place at the end of the used
   * area, with self-describing new refcount blocks: written in full, synced,
   * then switched in the header; the old table is freed afterwards.
   */
  private async growTable(neededIndex: number): Promise<void> {
    await this.writeBlocksAndTable(); // the new table may only point at written blocks
    const cs = this.clusterSize;
    const epb = this.entriesPerBlock;
    const base = Math.max(this.highWater, this.freeHint);
    let entries = Math.max(neededIndex + 1, Math.ceil((this.table.length * 3) / 2));
    let tableClusters = 0;
    let newBlocks: number[] = [];
    for (;;) {
      tableClusters = Math.ceil((entries * 8) / cs);
      const areaEnd = base + newBlocks.length + tableClusters;
      const missing: number[] = [];
      for (let t = Math.floor(base / epb); t <= Math.floor((areaEnd - 1) / epb); t++) {
        if (t >= this.table.length || !this.table[t]) missing.push(t);
      }
      const lastIndex = Math.floor((areaEnd - 1) / epb);
      if (missing.length === newBlocks.length && lastIndex < entries) {
        newBlocks = missing;
        break;
      }
      newBlocks = missing;
      entries = Math.max(entries, lastIndex + 1);
    }
    const tableStart = base + newBlocks.length;
    const areaEnd = tableStart + tableClusters;
    const newTable = this.table.slice();
    while (newTable.length < (tableClusters * cs) / 8) newTable.push(0);
    newBlocks.forEach((t, i) => {
      newTable[t] = (base + i) * cs;
      this.blocks.create((base + i) * cs);
    });
    const oldOffset = this.tableOffset;
    const oldClusters = this.tableClusters;
    this.table = newTable;
    for (let c = base; c < areaEnd; c++) await this.set(c, 1);
    await this.blocks.writeDirty();
    const bytes = new Uint8Array(tableClusters * cs);
    const view = new DataView(bytes.buffer);
    newTable.forEach((off, i) => setU64(view, i * 8, off));
    await this.init.store.pwrite(bytes, tableStart * cs);
    await this.init.sync();
    await this.init.writeHeaderTableFields(tableStart * cs, tableClusters);
    await this.init.sync();
    this.tableOffset = tableStart * cs;
    this.tableClusters = tableClusters;
    this.dirtyTableIndices.clear();
    this.freeHint = Math.max(this.freeHint, areaEnd);
    this.deferFree(oldOffset, oldClusters);
  }

  /** Schedules a decrement for each of `n` clusters from `offset`, applied by applyFrees(). */
  deferFree(offset: number, n = 1): void {
    const c = Math.floor(offset / this.clusterSize);
    for (let i = 0; i < n; i++) this.pendingFrees.push(c + i);
  }

  hasPendingFrees(): boolean {
    return this.pendingFrees.length > 0;
  }

  /** Writes dirty blocks, then table entries for new blocks. */
  async writeBlocksAndTable(): Promise<boolean> {
    const wroteBlocks = await this.blocks.writeDirty();
    if (this.dirtyTableIndices.size === 0) return wroteBlocks;
    const entry = new Uint8Array(8);
    const view = new DataView(entry.buffer);
    for (const t of [...this.dirtyTableIndices].sort((a, b) => a - b)) {
      setU64(view, 0, this.table[t]!);
      await this.init.store.pwrite(entry, this.tableOffset + t * 8);
    }
    this.dirtyTableIndices.clear();
    return true;
  }

  /** Applies deferred decrements (call once the references are gone on disk). */
  async applyFrees(): Promise<boolean> {
    if (this.pendingFrees.length === 0) return false;
    const frees = this.pendingFrees;
    this.pendingFrees = [];
    for (const c of frees) {
      const v = await this.add(c, -1);
      if (v === 0 && c < this.freeHint) this.freeHint = c;
    }
    return true;
  }

  /** How many clusters from the start of the image carry a non-zero refcount's range. */
  get highWaterCluster(): number {
    return this.highWater;
  }

  /**
   * One past the last cluster in use, below `limit` clusters (QEMU's
   * qcow2_get_last_cluster + 1). Lowers the high-water mark to it: the file
   * may then be cut there.
   */
  async usedEnd(limit: number): Promise<number> {
    let c = Math.min(limit, this.highWater);
    while (c > 0 && (await this.get(c - 1)) === 0) c--;
    this.highWater = c;
    if (this.freeHint > c) this.freeHint = c;
    return c;
  }
}
