/**
 * The copy engine shared by backup and its copy-before-write filter (QEMU's
 * block-copy): a bitmap of clusters still to copy, background chunks, and
 * copy-before-write requests that copy a range first so the target keeps
 * the point-in-time data while the guest goes on writing.
 *
 * Invariants:
 * - A cluster's bit is cleared when a task claims it, before its read; a
 *   failed task sets its bits again.
 * - A copy-before-write waits for every in-flight task overlapping its range
 *   (their reads may not have happened yet), then copies what is still set.
 * So every cluster is read from the source exactly once before the first
 * guest write to it lands, and a cluster never reaches the target twice
 * with different contents.
 *
 * Background chunks read ahead: while one chunk is written to the target,
 * the source reads of the next ones already run (in the thread pool), as
 * QEMU's block-copy keeps several requests in flight. A read-ahead claims
 * nothing: its chunk is cut again from the bitmap when its turn comes, and
 * only clusters still to copy take its data. A guest write copies (and so
 * clears) its clusters before it lands, so those were never written since
 * the job started: the read-ahead holds their point-in-time data.
 */
import { ClusterBitmap } from "./cluster-bitmap.ts";

/** Where the data comes from (the backup source, seen through its backing chain). */
export interface CopySource {
  readonly length: number;
  read(buf: Uint8Array, offset: number): Promise<void>;
  /**
   * Status of the run starting at `offset` through the whole chain: `zero`
   * when it reads as zeros without data to copy. At most `length` long.
   */
  status(offset: number, length: number): Promise<{ length: number; zero: boolean }>;
  /** Sync 'top': is the run at `offset` allocated in the top layer itself? */
  allocatedInTop?(offset: number, length: number): Promise<{ length: number; allocated: boolean }>;
}

export interface CopyTarget {
  write(data: Uint8Array, offset: number): Promise<void>;
  writeZeroes(offset: number, length: number): Promise<void>;
  /** Whole clusters (the disk's last one may be short) into unallocated clusters. */
  writeCompressed?(data: Uint8Array, offset: number): Promise<void>;
  flush(): Promise<void>;
}

/** An I/O failure with the side it happened on, for the job's error policy. */
export class CopyFailure extends Error {
  constructor(
    readonly op: "read" | "write",
    readonly errno: number,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = "CopyFailure";
  }
}

const ERRNO_NUMBERS: Record<string, number> = {
  EPERM: 1, ENOENT: 2, EIO: 5, EACCES: 13, EBUSY: 16, EINVAL: 22, EFBIG: 27, ENOSPC: 28, EROFS: 30, ENOTSUP: 95,
};

/** errno (positive number) of an image/block error: ImageIoError carries its name, fs errors a code. */
export function errnoOf(e: unknown): number {
  const n = (e as { errno?: unknown } | null)?.errno;
  if (typeof n === "number") return Math.abs(n);
  if (typeof n === "string" && n in ERRNO_NUMBERS) return ERRNO_NUMBERS[n]!;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in ERRNO_NUMBERS) return ERRNO_NUMBERS[code]!;
  return 5;
}

export interface BlockCopyOptions {
  source: CopySource;
  target: CopyTarget;
  /** max(64 KiB, target cluster size) for backup. */
  clusterSize: number;
  /** Write compressed clusters (target must have writeCompressed). */
  compress?: boolean;
  /** Largest background request (x-perf max-chunk; never above QEMU's 1 MiB buffer). */
  maxChunk?: number;
}

interface Task {
  first: number;
  end: number;
  done: Promise<void>;
}

/** A source read started before its chunk's turn. */
interface ReadAhead {
  offset: number;
  length: number;
  /** The data, or the read's error (settled, so nothing is left unhandled). */
  result: Promise<Uint8Array | { error: unknown }>;
}

const MAX_BUFFER = 1 << 20;
/** Chunks whose source reads run ahead of the chunk being written. */
const READ_AHEAD = 2;

/**
 * Chunk buffers to reuse, shared by every copy of the process: a fresh 1 MiB
 * costs page faults (milliseconds on a VM whose host reclaims freed memory),
 * more than copying it, and a job's first chunks otherwise pay them each time.
 */
const SPARES_PER_SIZE = 8;
const spareBuffers = new Map<number, ArrayBuffer[]>();

export class BlockCopy {
  readonly bitmap: ClusterBitmap;
  readonly clusterSize: number;
  private readonly source: CopySource;
  private readonly target: CopyTarget;
  private readonly compress: boolean;
  private readonly chunkClusters: number;
  private readonly inflight = new Set<Task>();
  private cursor = 0;
  /** Bytes claimed so far (copied, zeroed or skipped): the job's progress. */
  onProgress: (bytes: number) => void = () => {};
  /** Bytes copied because a guest write came first (the cbw filter's "done" bitmap). */
  copiedBeforeWrite = 0;
  private readAhead: ReadAhead[] = [];
  private readonly chunkBytes: number;

  constructor(opts: BlockCopyOptions) {
    this.source = opts.source;
    this.target = opts.target;
    this.clusterSize = opts.clusterSize;
    this.compress = !!opts.compress;
    this.bitmap = new ClusterBitmap(opts.source.length, opts.clusterSize);
    // Compressed chunks span several clusters too: the image compresses them in parallel.
    const chunk = Math.max(opts.clusterSize, Math.min(MAX_BUFFER, opts.maxChunk || MAX_BUFFER));
    this.chunkClusters = Math.max(1, Math.floor(chunk / opts.clusterSize));
    this.chunkBytes = this.chunkClusters * opts.clusterSize;
  }

  private takeBuffer(length: number): Uint8Array {
    const spare = length <= this.chunkBytes ? spareBuffers.get(this.chunkBytes)?.pop() : undefined;
    return spare ? new Uint8Array(spare, 0, length) : new Uint8Array(length <= this.chunkBytes ? this.chunkBytes : length).subarray(0, length);
  }

  /** Once nothing holds `buf` any more (its write has returned). */
  private recycle(buf: Uint8Array): void {
    if (buf.buffer.byteLength !== this.chunkBytes) return;
    let spares = spareBuffers.get(this.chunkBytes);
    if (!spares) spareBuffers.set(this.chunkBytes, (spares = []));
    if (spares.length < SPARES_PER_SIZE) spares.push(buf.buffer as ArrayBuffer);
  }

  get length(): number {
    return this.source.length;
  }

  /** Bytes still to copy. */
  remainingBytes(): number {
    return this.bitmap.countBytes();
  }

  /**
   * Sync 'top': clear clusters not allocated in the top layer. Returns the
   * bytes dropped. Yields between runs via `yieldFn`.
   */
  async resetUnallocated(yieldFn: () => Promise<void>): Promise<number> {
    const probe = this.source.allocatedInTop;
    if (!probe) return 0;
    let dropped = 0;
    let offset = 0;
    let sinceYield = 0;
    while (offset < this.length) {
      const st = await probe.call(this.source, offset, this.length - offset);
      const len = Math.max(1, Math.min(st.length, this.length - offset));
      if (!st.allocated) {
        // only whole clusters that are entirely unallocated can be skipped
        const first = Math.ceil(offset / this.clusterSize);
        const end = Math.floor((offset + len) / this.clusterSize) + (offset + len >= this.length ? 1 : 0);
        const stop = Math.min(end, this.bitmap.clusters);
        for (let c = first; c < stop; c++) {
          if (this.bitmap.get(c)) {
            this.bitmap.setClusters(c, c + 1, false);
            dropped += Math.min(this.clusterSize, this.length - c * this.clusterSize);
          }
        }
      }
      offset += len;
      if (++sinceYield >= 256) {
        sinceYield = 0;
        await yieldFn();
      }
    }
    return dropped;
  }

  /**
   * Copies the next chunk still to be copied (from the cursor, wrapping once
   * so failed regions are retried). Returns the bytes handled, 0 when nothing
   * is left. Throws CopyFailure.
   */
  async copyNext(): Promise<number> {
    let c = this.bitmap.nextSet(this.cursor);
    if (c < 0) c = this.bitmap.nextSet(0);
    if (c < 0) {
      // everything claimed; wait for copy-before-write tasks still running
      if (this.inflight.size) await Promise.allSettled([...this.inflight].map((t) => t.done));
      return 0;
    }
    const end = Math.min(this.bitmap.nextClear(c), c + this.chunkClusters);
    this.startReadAhead(end);
    const bytes = await this.runTask(c, end, true);
    this.cursor = c + Math.ceil(bytes / this.clusterSize);
    return bytes;
  }

  /** Starts source reads of the chunks that follow cluster `from` (as copyNext will cut them). */
  private startReadAhead(from: number): void {
    let c = from;
    const last = this.readAhead[this.readAhead.length - 1];
    if (last) c = Math.max(c, Math.ceil((last.offset + last.length) / this.clusterSize));
    while (this.readAhead.length < READ_AHEAD) {
      c = this.bitmap.nextSet(c);
      if (c < 0) return;
      const end = Math.min(this.bitmap.nextClear(c), c + this.chunkClusters);
      const offset = c * this.clusterSize;
      const length = Math.min(end * this.clusterSize, this.length) - offset;
      const buf = this.takeBuffer(length);
      const result = this.source.read(buf, offset).then(
        () => buf,
        (error: unknown) => ({ error }),
      );
      this.readAhead.push({ offset, length, result });
      c = end;
    }
  }

  /** The read-ahead data of [offset, offset+length), if there is one; throws its read error. */
  private async takeReadAhead(offset: number, length: number): Promise<Uint8Array | null> {
    while (this.readAhead.length && this.readAhead[0]!.offset < offset) this.readAhead.shift();
    const ra = this.readAhead[0];
    if (!ra || ra.offset !== offset || ra.length < length) return null;
    this.readAhead.shift();
    const r = await ra.result;
    if (r instanceof Uint8Array) return r.subarray(0, length);
    throw r.error;
  }

  /** Copies every pending cluster of the range before a guest write to it. */
  async copyBeforeWrite(offset: number, bytes: number): Promise<void> {
    const [first, end] = this.bitmap.clusterSpan(offset, bytes);
    for (;;) {
      const busy = [...this.inflight].filter((t) => t.first < end && t.end > first);
      if (busy.length) {
        await Promise.allSettled(busy.map((t) => t.done));
        continue;
      }
      const c = this.bitmap.nextSet(first);
      if (c < 0 || c >= end) return;
      const stop = Math.min(this.bitmap.nextClear(c), end);
      this.copiedBeforeWrite += await this.runTask(c, stop, false);
    }
  }

  async flushTarget(): Promise<void> {
    try {
      await this.target.flush();
    } catch (e) {
      throw new CopyFailure("write", errnoOf(e), e);
    }
  }

  /**
   * Claims [first, end) (possibly shrunk to one status run), copies it; returns bytes claimed.
   * A background task may take its data from the read-ahead.
   */
  private async runTask(first: number, end: number, background: boolean): Promise<number> {
    const offset = first * this.clusterSize;
    let len = Math.min(end * this.clusterSize, this.length) - offset;
    // claim before any await so nobody else starts the same clusters
    this.bitmap.setClusters(first, end, false);
    let resolve!: () => void;
    const task: Task = { first, end, done: new Promise<void>((r) => (resolve = r)) };
    this.inflight.add(task);
    try {
      let st: { length: number; zero: boolean };
      try {
        st = await this.source.status(offset, len);
      } catch (e) {
        throw new CopyFailure("read", errnoOf(e), e);
      }
      if (st.length < len) {
        // keep only whole clusters of the first run; give back the rest
        const keep = Math.max(this.clusterSize, Math.ceil(st.length / this.clusterSize) * this.clusterSize);
        if (keep < len) {
          const newEnd = first + keep / this.clusterSize;
          this.bitmap.setClusters(newEnd, end, true);
          task.end = newEnd;
          len = keep;
        }
      }
      // a zero run shorter than the (cluster-rounded) task must not zero its data tail
      await this.copyData(offset, len, st.zero && st.length >= len, background);
      this.onProgress(len);
      return len;
    } catch (e) {
      this.bitmap.setClusters(task.first, task.end, true);
      throw e;
    } finally {
      this.inflight.delete(task);
      resolve();
    }
  }

  private async copyData(offset: number, len: number, zero: boolean, background: boolean): Promise<void> {
    if (zero) {
      try {
        await this.target.writeZeroes(offset, len);
      } catch (e) {
        throw new CopyFailure("write", errnoOf(e), e);
      }
      return;
    }
    let buf: Uint8Array;
    try {
      const ahead = background ? await this.takeReadAhead(offset, len) : null;
      buf = ahead ?? this.takeBuffer(len);
      if (!ahead) await this.source.read(buf, offset);
    } catch (e) {
      throw new CopyFailure("read", errnoOf(e), e);
    }
    try {
      if (this.compress && this.target.writeCompressed) {
        await this.target.writeCompressed(buf, offset);
      } else {
        await this.target.write(buf, offset);
      }
    } catch (e) {
      throw new CopyFailure("write", errnoOf(e), e);
    } finally {
      this.recycle(buf);
    }
  }
}
