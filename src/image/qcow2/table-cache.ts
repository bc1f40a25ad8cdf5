/**
 * A bounded write-back cache of cluster-sized metadata tables (L2 tables,
 * refcount blocks), keyed by host offset, least recently used first.
 *
 * Dirty tables are only written by writeDirty(); the owner decides when
 * (and in which order relative to other metadata), which is what keeps the
 * crash-safety order. trim() only drops clean tables.
 */
import type { ByteStore } from "../types.ts";

export class CachedTable {
  readonly view: DataView;
  /** Dirty byte range [dirtyLo, dirtyHi); empty when dirtyLo >= dirtyHi. */
  dirtyLo = Infinity;
  dirtyHi = 0;

  constructor(
    readonly offset: number,
    readonly buf: Uint8Array,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get dirty(): boolean {
    return this.dirtyLo < this.dirtyHi;
  }

  markDirty(lo: number, hi: number): void {
    if (lo < this.dirtyLo) this.dirtyLo = lo;
    if (hi > this.dirtyHi) this.dirtyHi = hi;
  }
}

export class TableCache {
  private readonly tables = new Map<number, CachedTable>();
  /** The most recently used table: hitting it again needs no reordering. */
  private mru: CachedTable | undefined;

  constructor(
    private readonly store: ByteStore,
    readonly tableSize: number,
    /** Most tables kept once trim() runs. */
    readonly capacity: number,
  ) {}

  peek(offset: number): CachedTable | undefined {
    return this.tables.get(offset);
  }

  /** A cached table, marked most recently used; undefined when it must be read. */
  hit(offset: number): CachedTable | undefined {
    if (this.mru?.offset === offset) return this.mru;
    const hit = this.tables.get(offset);
    if (hit) {
      this.mru = hit;
      // Map order is our LRU order: move to the back.
      this.tables.delete(offset);
      this.tables.set(offset, hit);
    }
    return hit;
  }

  async get(offset: number): Promise<CachedTable> {
    const hit = this.hit(offset);
    if (hit) return hit;
    const buf = new Uint8Array(this.tableSize);
    await this.store.pread(buf, offset);
    const t = new CachedTable(offset, buf);
    this.tables.set(offset, t);
    this.mru = t;
    return t;
  }

  /** A brand-new table (zeros, or a copy of `init`), dirty as a whole. */
  create(offset: number, init?: Uint8Array): CachedTable {
    const buf = new Uint8Array(this.tableSize);
    if (init) buf.set(init);
    const t = new CachedTable(offset, buf);
    t.markDirty(0, this.tableSize);
    this.tables.delete(offset);
    this.tables.set(offset, t);
    this.mru = t;
    return t;
  }

  /** Forget a table (its cluster was freed); its pending changes are dropped. */
  drop(offset: number): void {
    this.tables.delete(offset);
    if (this.mru?.offset === offset) this.mru = undefined;
  }

  hasDirty(): boolean {
    for (const t of this.tables.values()) if (t.dirty) return true;
    return false;
  }

  get size(): number {
    return this.tables.size;
  }

  /** Writes each dirty range once, in offset order (sequential for the disk). */
  async writeDirty(): Promise<boolean> {
    const dirty = [...this.tables.values()].filter((t) => t.dirty).sort((a, b) => a.offset - b.offset);
    for (const t of dirty) {
      await this.store.pwrite(t.buf.subarray(t.dirtyLo, t.dirtyHi), t.offset + t.dirtyLo);
      t.dirtyLo = Infinity;
      t.dirtyHi = 0;
    }
    return dirty.length > 0;
  }

  overCapacity(): boolean {
    return this.tables.size > this.capacity;
  }

  /** Drops clean tables, least recently used first, down to capacity. */
  trim(): void {
    if (this.tables.size <= this.capacity) return;
    for (const [off, t] of this.tables) {
      if (this.tables.size <= this.capacity) break;
      if (!t.dirty) {
        this.tables.delete(off);
        if (this.mru === t) this.mru = undefined;
      }
    }
  }
}
