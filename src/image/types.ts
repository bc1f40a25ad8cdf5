/**
 * The contract between image formats and whoever stores their bytes.
 *
 * A format (raw, qcow2) reads and writes its container through a ByteStore:
 * a plain file for standalone use, or a block-graph child node (so a blkdebug
 * node between a qcow2 node and its file sees every metadata and data access).
 * Formats know nothing of graphs, jobs or QMP.
 */

/** Byte-addressed storage under a format: a file, or a protocol node. */
export interface ByteStore {
  /** Current length in bytes. */
  size(): Promise<number>;
  /** Fills `buf` from `offset`; bytes past the end read as zeros. */
  pread(buf: Uint8Array, offset: number): Promise<void>;
  pwrite(data: Uint8Array, offset: number): Promise<void>;
  truncate(length: number): Promise<void>;
  /** Optional: make the range read as zeros and release its space if possible. */
  discard?(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Read-only view of a disk, for backing files. */
export interface DiskReader {
  /** Virtual size in bytes. */
  readonly size: number;
  /** Fills `buf` with guest data at `offset`; past the end reads zeros. */
  read(buf: Uint8Array, offset: number): Promise<void>;
}

/** One run of `qemu-img map`-like status. */
export interface Extent {
  offset: number;
  length: number;
  /** Data lives in this layer (not inherited from a backing file). */
  allocated: boolean;
  /** Reads as zeros. */
  zero: boolean;
  /** Backed by host data (false for unallocated holes and zero clusters without storage). */
  data: boolean;
  /** Compressed cluster (qcow2 only). */
  compressed?: boolean;
  /** Host (file) offset of the extent's first byte, when it maps 1:1 to the file. */
  hostOffset?: number;
}

/** A guest-visible disk in some format. */
export interface DiskImage extends DiskReader {
  readonly format: "raw" | "qcow2";
  readonly readOnly: boolean;
  /** Bytes per allocation unit: qcow2 cluster size, or 0 when not meaningful. */
  readonly clusterSize: number;
  write(data: Uint8Array, offset: number): Promise<void>;
  writeZeroes(offset: number, length: number, opts?: { unmap?: boolean }): Promise<void>;
  discard(offset: number, length: number): Promise<void>;
  /** Whole clusters, into unallocated clusters only (qcow2); absent when unsupported. */
  writeCompressed?(data: Uint8Array, offset: number): Promise<void>;
  /** Status of the range starting at `offset`: the first extent, at most `length` long. */
  blockStatus(offset: number, length: number): Promise<Extent>;
  /** Grows or shrinks the virtual disk. */
  resize(size: number): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Replace (or drop, with null) the backing reader, for commit/stream/snapshot graph changes. */
  setBacking?(backing: DiskReader | null): void;
}
