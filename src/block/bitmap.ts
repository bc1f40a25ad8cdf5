/**
 * Dirty bitmaps: one bit per `granularity` bytes of a node, set by writes
 * through the node. A job can freeze a bitmap (it becomes busy) while a
 * successor records new writes; on success the successor replaces the
 * frozen bits (abdicate), on failure they are merged back (reclaim).
 */
import { lazyBuiltin } from "../core/lazy-builtin.ts";

const crypto = lazyBuiltin<typeof import("node:crypto")>("node:crypto");

export class DirtyBitmap {
  private bits: Uint8Array;
  private granules: number;
  /** Not recording when disabled (block-dirty-bitmap-disable). */
  enabled: boolean;
  persistent: boolean;
  inconsistent = false;
  readonly = false;
  /** Set while a job owns the bitmap; new writes go here. */
  successor: DirtyBitmap | null = null;
  /**
   * The node's bitmap list this bitmap lives in (see attachBitmap), so a
   * successor shows up there as an anonymous bitmap the way QEMU lists it.
   */
  list: DirtyBitmap[] | null = null;

  constructor(
    public name: string,
    readonly granularity: number,
    private length: number,
    opts: { enabled?: boolean; persistent?: boolean } = {},
  ) {
    this.granules = Math.ceil(length / granularity);
    this.bits = new Uint8Array(Math.ceil(this.granules / 64) * 8);
    this.enabled = opts.enabled ?? true;
    this.persistent = opts.persistent ?? false;
  }

  get size(): number {
    return this.length;
  }

  get busy(): boolean {
    return this.successor !== null;
  }

  /** BlockDirtyInfo.recording: this bitmap or its successor records writes. */
  get recording(): boolean {
    return this.enabled || (this.successor?.enabled ?? false);
  }

  private test(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  private range(offset: number, length: number): [number, number] {
    const first = Math.floor(offset / this.granularity);
    const last = Math.min(this.granules, Math.ceil((offset + length) / this.granularity));
    return [Math.max(0, first), last];
  }

  /** Called by the node on every write; respects enabled/successor. */
  markWrite(offset: number, length: number): void {
    if (this.successor) this.successor.markWrite(offset, length);
    else if (this.enabled) this.set(offset, length);
  }

  set(offset: number, length: number): void {
    const [a, b] = this.range(offset, length);
    for (let i = a; i < b; i++) this.bits[i >> 3]! |= 1 << (i & 7);
  }

  reset(offset: number, length: number): void {
    // Only whole granules inside the range are cleared (hbitmap_reset needs alignment; we round inward).
    const a = Math.ceil(offset / this.granularity);
    const end = offset + length >= this.length ? this.granules : Math.floor((offset + length) / this.granularity);
    for (let i = a; i < end; i++) this.bits[i >> 3]! &= ~(1 << (i & 7));
  }

  clear(): void {
    this.bits.fill(0);
  }

  get(offset: number): boolean {
    const i = Math.floor(offset / this.granularity);
    return i < this.granules && this.test(i);
  }

  /** Dirty bytes, counted in whole granules (bdrv_get_dirty_count). */
  count(): number {
    let n = 0;
    for (let i = 0; i < this.granules; i++) if (this.test(i)) n++;
    return n * this.granularity;
  }

  /** First dirty offset ≥ `offset`, or -1. */
  nextDirty(offset: number, end = this.length): number {
    for (let i = Math.floor(offset / this.granularity); i * this.granularity < end && i < this.granules; i++) {
      if (this.test(i)) return Math.max(offset, i * this.granularity);
    }
    return -1;
  }

  /** First clean offset ≥ `offset`, or -1. */
  nextClean(offset: number, end = this.length): number {
    for (let i = Math.floor(offset / this.granularity); i * this.granularity < end && i < this.granules; i++) {
      if (!this.test(i)) return Math.max(offset, i * this.granularity);
    }
    return -1;
  }

  /** Dirty runs as [offset, length] pairs, clamped to the bitmap's length. */
  *dirtyRanges(): Generator<[number, number]> {
    let i = 0;
    while (i < this.granules) {
      if (!this.test(i)) { i++; continue; }
      const start = i;
      while (i < this.granules && this.test(i)) i++;
      const off = start * this.granularity;
      yield [off, Math.min(this.length, i * this.granularity) - off];
    }
  }

  /** this |= other (same granularity needed for exact results; otherwise by byte ranges). */
  merge(other: DirtyBitmap): void {
    if (other.granularity === this.granularity && other.granules === this.granules) {
      for (let i = 0; i < this.bits.length; i++) this.bits[i]! |= other.bits[i]!;
      return;
    }
    for (const [off, len] of other.dirtyRanges()) this.set(off, len);
  }

  /** A detached copy of the bits (for undo and for jobs' working copies). */
  clone(name = this.name): DirtyBitmap {
    const c = new DirtyBitmap(name, this.granularity, this.length, { enabled: this.enabled, persistent: this.persistent });
    c.bits.set(this.bits);
    return c;
  }

  /** Replaces the bits with `src`'s (same geometry). */
  restore(src: DirtyBitmap): void {
    this.bits.set(src.bits.subarray(0, this.bits.length));
  }

  /** The bits as stored in a qcow2 image: bit i = granule i, LSB first. */
  serialize(): Uint8Array {
    return this.bits.slice(0, Math.ceil(this.granules / 8));
  }

  /** Loads bits in the serialize() layout (extra bits past the end are dropped). */
  deserialize(data: Uint8Array): void {
    this.bits.fill(0);
    this.bits.set(data.subarray(0, Math.min(data.length, Math.ceil(this.granules / 8))));
    for (let i = this.granules; i < this.bits.length * 8; i++) this.bits[i >> 3]! &= ~(1 << (i & 7));
  }

  resize(length: number): void {
    const old = this.bits;
    this.length = length;
    this.granules = Math.ceil(length / this.granularity);
    this.bits = new Uint8Array(Math.ceil(this.granules / 64) * 8);
    this.bits.set(old.subarray(0, Math.min(old.length, this.bits.length)));
    // Bits past the new end must not survive a shrink-then-grow.
    for (let i = this.granules; i < this.bits.length * 8; i++) this.bits[i >> 3]! &= ~(1 << (i & 7));
    this.successor?.resize(length);
  }

  /**
   * SHA-256 of the lowest hbitmap level as QEMU stores it: 64-bit words,
   * bit i of the disk = bit i of the little-endian word array.
   */
  sha256(): string {
    return crypto().createHash("sha256").update(this.bits).digest("hex");
  }

  // ---- Job ownership (bdrv_dirty_bitmap_create_successor & co) ------------

  /** Freezes this bitmap; writes now land in a fresh successor. */
  createSuccessor(): DirtyBitmap {
    if (this.successor) throw new Error(`bitmap ${this.name} already frozen`);
    const s = new DirtyBitmap("", this.granularity, this.length, { enabled: this.enabled });
    this.successor = s;
    this.enabled = false;
    if (this.list) attachBitmap(this.list, s);
    return s;
  }

  /** Success: the frozen bits are dropped, the successor's become the bitmap's. */
  abdicate(): void {
    const s = this.takeSuccessor();
    this.restore(s);
  }

  /** Failure: the successor's bits are merged back into the frozen ones. */
  reclaim(): void {
    const s = this.takeSuccessor();
    this.merge(s);
  }

  private takeSuccessor(): DirtyBitmap {
    const s = this.successor;
    if (!s) throw new Error(`bitmap ${this.name} is not frozen`);
    this.successor = null;
    this.enabled = s.enabled;
    detachBitmap(s);
    return s;
  }

  /** BlockDirtyInfo. */
  info(): Record<string, unknown> {
    // BlockDirtyInfo member order (the JSON writer mirrors QEMU's QDict order from it).
    const out: Record<string, unknown> = {};
    if (this.name) out.name = this.name; // anonymous bitmaps (successors, job-internal) have none
    Object.assign(out, {
      count: this.count(),
      granularity: this.granularity,
      recording: this.recording,
      busy: this.busy,
      persistent: this.persistent,
    });
    if (this.inconsistent) out.inconsistent = true;
    return out;
  }
}

/** Puts a bitmap on a node's list, newest first like QEMU's QLIST_INSERT_HEAD. */
export function attachBitmap(list: DirtyBitmap[], bm: DirtyBitmap): void {
  list.unshift(bm);
  bm.list = list;
}

export function detachBitmap(bm: DirtyBitmap): void {
  const i = bm.list?.indexOf(bm) ?? -1;
  if (i >= 0) bm.list!.splice(i, 1);
  bm.list = null;
}
