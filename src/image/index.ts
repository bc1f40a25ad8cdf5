/** The image library: raw and qcow2 formats over a ByteStore. */
export type { ByteStore, DiskImage, DiskReader, Extent } from "./types.ts";
export { FileStore, openFileStore, type FileStoreOptions } from "./file-store.ts";
export { RawImage, openRaw, createRaw, type RawOptions } from "./raw.ts";
export { ImageIoError, ioError, formatError, isImageIoError, ERRNO_TEXT, type Errno } from "./errors.ts";
export * from "./qcow2/index.ts";
export { zlibCodec, fflateCodec, bunCodec, DEFLATE_CODEC, INFLATE_CODEC, compressCluster, type ClusterCodec } from "./codec.ts";
export { probeFormat, openImageChain, resolveBackingName, type ImageFormat, type ImageChain, type ChainLayer, type ChainOptions } from "./chain.ts";
export { createCompressPool, sharedCompressPool, type CompressPool } from "./compress-pool.ts";
