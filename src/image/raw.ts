/**
 * The raw format: guest offset = host offset, nothing else.
 */
import type { ByteStore, DiskImage, Extent } from "./types.ts";
import { ioError } from "./errors.ts";

export interface RawOptions {
  readOnly?: boolean;
}

const ZERO_CHUNK = new Uint8Array(1 << 20);

export class RawImage implements DiskImage {
  readonly format = "raw" as const;
  readonly clusterSize = 0;

  private constructor(
    readonly store: ByteStore,
    readonly readOnly: boolean,
    private virtualSize: number,
  ) {}

  static async open(store: ByteStore, opts: RawOptions = {}): Promise<RawImage> {
    return new RawImage(store, opts.readOnly ?? false, await store.size());
  }

  get size(): number {
    return this.virtualSize;
  }

  async read(buf: Uint8Array, offset: number): Promise<void> {
    const inside = Math.max(0, Math.min(buf.length, this.virtualSize - offset));
    if (inside > 0) await this.store.pread(buf.subarray(0, inside), offset);
    if (inside < buf.length) buf.fill(0, inside);
  }

  private checkWrite(offset: number, length: number): void {
    if (this.readOnly) throw ioError("EPERM");
    if (offset < 0 || offset + length > this.virtualSize) throw ioError("EIO");
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    this.checkWrite(offset, data.length);
    await this.store.pwrite(data, offset);
  }

  async writeZeroes(offset: number, length: number, opts: { unmap?: boolean } = {}): Promise<void> {
    this.checkWrite(offset, length);
    if (opts.unmap && this.store.discard) {
      await this.store.discard(offset, length);
      return;
    }
    for (let pos = offset; pos < offset + length; pos += ZERO_CHUNK.length) {
      const n = Math.min(ZERO_CHUNK.length, offset + length - pos);
      await this.store.pwrite(ZERO_CHUNK.subarray(0, n), pos);
    }
  }

  /** Punches a hole when the store can; otherwise the data stays (discard is advisory). */
  async discard(offset: number, length: number): Promise<void> {
    this.checkWrite(offset, length);
    if (this.store.discard) await this.store.discard(offset, length);
  }

  /** A raw file has no allocation map we can see from node:fs: all data. */
  async blockStatus(offset: number, length: number): Promise<Extent> {
    const len = Math.max(0, Math.min(length, this.virtualSize - offset));
    return { offset, length: len, allocated: true, zero: false, data: true };
  }

  async resize(size: number): Promise<void> {
    if (this.readOnly) throw ioError("EPERM");
    await this.store.truncate(size);
    this.virtualSize = size;
  }

  async flush(): Promise<void> {
    await this.store.flush();
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

export function openRaw(store: ByteStore, opts: RawOptions = {}): Promise<RawImage> {
  return RawImage.open(store, opts);
}

/** Creates (or truncates to) an empty raw image of `size` bytes. */
export async function createRaw(store: ByteStore, opts: { size: number }): Promise<void> {
  await store.truncate(0);
  await store.truncate(opts.size);
}
