import { describe, expect, it } from "vitest";
import { BlockCopy, CopyFailure, type CopySource, type CopyTarget } from "../../src/block/jobs/block-copy.ts";
import { ClusterBitmap } from "../../src/block/jobs/cluster-bitmap.ts";

const K = 1024;
const CL = 64 * K;

/** An in-memory disk whose zero runs are tracked per cluster, with an optional delay per I/O. */
class MemDisk implements CopySource, CopyTarget {
  readonly data: Uint8Array;
  readonly zeroClusters = new Set<number>();
  readonly log: string[] = [];
  failReadAt = -1;
  readsInFlight = 0;
  constructor(
    readonly length: number,
    private readonly tick: () => Promise<void> = async () => {},
  ) {
    this.data = new Uint8Array(length);
  }
  async read(buf: Uint8Array, offset: number) {
    this.readsInFlight++;
    // reads are slower than writes, so a racing guest write would overtake them
    for (let i = 0; i < 3; i++) await this.tick();
    this.readsInFlight--;
    if (this.failReadAt >= offset && this.failReadAt < offset + buf.length) {
      this.failReadAt = -1;
      throw Object.assign(new Error("Input/output error"), { errno: 5 });
    }
    buf.set(this.data.subarray(offset, offset + buf.length));
    this.log.push(`read ${offset} ${buf.length}`);
  }
  async status(offset: number, length: number) {
    const zero = this.isZeroCluster(offset);
    let end = offset;
    while (end < offset + length && this.isZeroCluster(end) === zero) end += CL;
    return { length: Math.min(end, offset + length) - offset, zero };
  }
  private isZeroCluster(off: number) {
    return this.data.subarray(off, off + CL).every((b) => b === 0);
  }
  async write(data: Uint8Array, offset: number) {
    await this.tick();
    this.data.set(data, offset);
    this.log.push(`write ${offset} ${data.length}`);
  }
  async writeZeroes(offset: number, length: number) {
    this.data.fill(0, offset, offset + length);
    for (let o = offset; o < offset + length; o += CL) this.zeroClusters.add(o / CL);
    this.log.push(`zero ${offset} ${length}`);
  }
  async flush() {}
}

describe("ClusterBitmap", () => {
  it("counts, searches and widens byte ranges to clusters", () => {
    const b = new ClusterBitmap(10 * CL + 512, CL);
    expect(b.clusters).toBe(11);
    b.set(CL + 1, 1);
    expect(b.get(1)).toBe(true);
    expect(b.countBytes()).toBe(CL);
    b.setAll();
    expect(b.countBytes()).toBe(10 * CL + 512);
    b.reset(0, 3 * CL);
    expect(b.nextSet(0)).toBe(3);
    expect(b.nextClear(3)).toBe(11);
    const big = new ClusterBitmap(1 << 30, CL);
    big.setAll();
    big.reset(100 * CL, CL);
    expect(big.countClusters()).toBe(16383);
    expect(big.nextClear(0)).toBe(100);
    expect(big.nextSet(100)).toBe(101);
  });
});

describe("BlockCopy", () => {
  it("copies data in chunks of at most 1 MiB and writes zeroes for zero runs", async () => {
    const src = new MemDisk(4 << 20);
    src.data.fill(0xab, 0, 1 << 20);
    src.data.fill(0xcd, 3 << 20, (3 << 20) + CL);
    const tgt = new MemDisk(4 << 20);
    tgt.data.fill(0xee);
    const bc = new BlockCopy({ source: src, target: tgt, clusterSize: CL });
    bc.bitmap.setAll();
    let progress = 0;
    bc.onProgress = (n) => (progress += n);
    while ((await bc.copyNext()) > 0);
    expect(Buffer.compare(src.data, tgt.data)).toBe(0);
    expect(progress).toBe(4 << 20);
    expect(tgt.log.filter((l) => l.startsWith("write"))).toEqual([`write 0 ${1 << 20}`, `write ${3 << 20} ${CL}`]);
    expect(tgt.log).toContain(`zero ${1 << 20} ${1 << 20}`);
  });

  it("keeps the point-in-time image while the guest writes during the copy", async () => {
    let ticks = 0;
    const tick = () => new Promise<void>((r) => setImmediate(() => (ticks++, r())));
    const src = new MemDisk(2 << 20, tick);
    for (let i = 0; i < src.length; i++) src.data[i] = (i * 7 + (i >> 16)) & 0xff;
    const snapshot = src.data.slice();
    const tgt = new MemDisk(2 << 20, tick);
    const bc = new BlockCopy({ source: src, target: tgt, clusterSize: CL, maxChunk: 128 * K });
    bc.bitmap.setAll();
    const guestWrite = async (off: number, len: number, pat: number) => {
      await bc.copyBeforeWrite(off, len);
      await src.write(new Uint8Array(len).fill(pat), off);
    };
    const background = (async () => {
      while ((await bc.copyNext()) > 0);
    })();
    // writes racing the background copy, overlapping chunks in flight and not yet copied
    await Promise.all([
      guestWrite(0, 4 * K, 1),
      guestWrite(CL - 512, 1024, 2),
      guestWrite(1 << 20, 300 * K, 3),
      guestWrite((2 << 20) - 512, 512, 4),
      guestWrite(200 * K, 8 * K, 5),
    ]);
    await background;
    expect(ticks).toBeGreaterThan(0);
    expect(Buffer.compare(tgt.data, snapshot)).toBe(0);
    expect(src.data[0]).toBe(1);
  });

  it("gives failed clusters back so a retry copies them", async () => {
    const src = new MemDisk(1 << 20);
    src.data.fill(0x5a);
    src.failReadAt = 3 * CL;
    const tgt = new MemDisk(1 << 20);
    const bc = new BlockCopy({ source: src, target: tgt, clusterSize: CL });
    bc.bitmap.setAll();
    const err = await bc.copyNext().catch((e) => e);
    expect(err).toBeInstanceOf(CopyFailure);
    expect((err as CopyFailure).op).toBe("read");
    expect((err as CopyFailure).errno).toBe(5);
    expect(bc.remainingBytes()).toBe(1 << 20);
    while ((await bc.copyNext()) > 0);
    expect(Buffer.compare(src.data, tgt.data)).toBe(0);
  });

  it("compresses cluster by cluster and skips unallocated top clusters", async () => {
    const src = new MemDisk(1 << 20) as MemDisk & CopySource;
    src.data.fill(0x11, 0, 2 * CL);
    src.allocatedInTop = async (off, len) => ({ length: Math.min(len, CL), allocated: off < 2 * CL });
    const tgt = new MemDisk(1 << 20) as MemDisk & CopyTarget;
    const compressed: number[] = [];
    tgt.writeCompressed = async (d, off) => {
      compressed.push(off, d.length);
      tgt.data.set(d, off);
    };
    const bc = new BlockCopy({ source: src, target: tgt, clusterSize: CL, compress: true });
    bc.bitmap.setAll();
    const dropped = await bc.resetUnallocated(async () => {});
    expect(dropped).toBe((1 << 20) - 2 * CL);
    while ((await bc.copyNext()) > 0);
    expect(compressed).toEqual([0, 2 * CL]);
  });

  it("reads the next chunks while it writes one, and reports a read-ahead's error for its own chunk once", async () => {
    const tick = () => new Promise<void>((r) => setImmediate(r));
    const src = new MemDisk(2 << 20, tick);
    for (let i = 0; i < src.length; i++) src.data[i] = (i * 13 + (i >> 12)) & 0xff;
    src.failReadAt = 5 * CL + 7; // in the third 128 KiB chunk
    const tgt = new MemDisk(2 << 20, tick);
    let overlapped = 0;
    const write = tgt.write.bind(tgt);
    tgt.write = async (d, off) => {
      overlapped = Math.max(overlapped, src.readsInFlight);
      await write(d, off);
    };
    const bc = new BlockCopy({ source: src, target: tgt, clusterSize: CL, maxChunk: 128 * K });
    bc.bitmap.setAll();
    const failures: CopyFailure[] = [];
    for (;;) {
      const n = await bc.copyNext().catch((e: unknown) => {
        if (!(e instanceof CopyFailure)) throw e;
        failures.push(e);
        return -1;
      });
      if (n === 0) break;
    }
    expect(overlapped).toBeGreaterThan(0);
    expect(failures.map((f) => f.op)).toEqual(["read"]);
    expect(Buffer.compare(src.data, tgt.data)).toBe(0);
  });

  it("keeps the old data of a range the guest rewrites while it is being read ahead", async () => {
    const tick = () => new Promise<void>((r) => setImmediate(r));
    const src = new MemDisk(1 << 20, tick);
    src.data.fill(0x33);
    const snapshot = src.data.slice();
    const tgt = new MemDisk(1 << 20, tick);
    const bc = new BlockCopy({ source: src, target: tgt, clusterSize: CL, maxChunk: 2 * CL });
    bc.bitmap.setAll();
    expect(await bc.copyNext()).toBe(2 * CL); // the read-ahead of clusters 2..5 is under way
    await bc.copyBeforeWrite(3 * CL, 2 * CL);
    src.data.fill(0x44, 3 * CL, 5 * CL);
    while ((await bc.copyNext()) > 0);
    expect(Buffer.compare(tgt.data.subarray(0, 6 * CL), snapshot.subarray(0, 6 * CL))).toBe(0);
  });
});
