/**
 * A plain bit per cluster: which clusters a block copy still has to copy.
 * Byte ranges are widened to whole clusters (a cluster partly touched counts).
 */
export class ClusterBitmap {
  private readonly words: Uint32Array;
  readonly clusters: number;

  constructor(
    readonly length: number,
    readonly clusterSize: number,
  ) {
    this.clusters = Math.ceil(length / clusterSize);
    this.words = new Uint32Array(Math.ceil(this.clusters / 32));
  }

  /** Cluster index range [first, end) covering bytes [offset, offset+bytes). */
  clusterSpan(offset: number, bytes: number): [number, number] {
    const first = Math.floor(offset / this.clusterSize);
    const end = Math.min(this.clusters, Math.ceil((offset + bytes) / this.clusterSize));
    return [first, Math.max(first, end)];
  }

  get(cluster: number): boolean {
    return (this.words[cluster >>> 5]! & (1 << (cluster & 31))) !== 0;
  }

  setClusters(first: number, end: number, value: boolean): void {
    for (let c = first; c < end; c++) {
      // whole words at once where possible: bitmaps of 1 GiB images have 16k clusters
      if ((c & 31) === 0 && c + 32 <= end) {
        this.words[c >>> 5] = value ? 0xffffffff : 0;
        c += 31;
        continue;
      }
      if (value) this.words[c >>> 5]! |= 1 << (c & 31);
      else this.words[c >>> 5]! &= ~(1 << (c & 31));
    }
  }

  set(offset: number, bytes: number): void {
    const [a, b] = this.clusterSpan(offset, bytes);
    this.setClusters(a, b, true);
  }

  reset(offset: number, bytes: number): void {
    const [a, b] = this.clusterSpan(offset, bytes);
    this.setClusters(a, b, false);
  }

  setAll(): void {
    this.setClusters(0, this.clusters, true);
  }

  /** First set cluster at or after `from`, or -1. */
  nextSet(from: number): number {
    for (let c = from; c < this.clusters; ) {
      const w = this.words[c >>> 5]!;
      if (w === 0) {
        c = (c | 31) + 1;
        continue;
      }
      if (w & (1 << (c & 31))) return c;
      c++;
    }
    return -1;
  }

  /** First clear cluster at or after `from` (or `clusters` when none). */
  nextClear(from: number): number {
    for (let c = from; c < this.clusters; ) {
      const w = this.words[c >>> 5]!;
      if (w === 0xffffffff) {
        c = (c | 31) + 1;
        continue;
      }
      if (!(w & (1 << (c & 31)))) return c;
      c++;
    }
    return this.clusters;
  }

  /** Number of set clusters. */
  countClusters(): number {
    let n = 0;
    for (let w of this.words) {
      while (w) {
        w &= w - 1;
        n++;
      }
    }
    return n;
  }

  /** Bytes covered by set clusters (the last cluster may be short). */
  countBytes(): number {
    let bytes = this.countClusters() * this.clusterSize;
    const last = this.clusters - 1;
    if (last >= 0 && this.get(last)) bytes -= this.clusters * this.clusterSize - this.length;
    return bytes;
  }
}
