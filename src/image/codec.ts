/**
 * Raw-DEFLATE codecs for qcow2 compressed clusters (compression_type 0).
 *
 * Two implementations of one interface; which one each direction uses is a
 * measured choice (scripts/bench-image.ts prints the numbers). QEMU writes
 * with a 4 KiB window (windowBits 12) and reads by inflating the whole
 * cluster in one call, so any window size decodes; inflate stops once
 * `outLen` bytes came out, ignoring trailing bytes of the next stream.
 */
import { lazyBuiltin } from "../core/lazy-builtin.ts";

import { deflateSync as fflateDeflate, inflateSync as fflateInflate } from "fflate";
import { ioError } from "./errors.ts";

const zlibModule = lazyBuiltin<typeof import("node:zlib")>("node:zlib");

export interface ClusterCodec {
  readonly name: string;
  deflate(cluster: Uint8Array): Uint8Array;
  /** Exactly `outLen` bytes, or throws ImageIoError(EIO). */
  inflate(data: Uint8Array, outLen: number): Uint8Array;
}

/** QEMU's Z_DEFAULT_COMPRESSION. */
const LEVEL = 6;

export const zlibCodec: ClusterCodec = {
  name: "node:zlib",
  deflate(cluster) {
    return zlibModule().deflateRawSync(cluster, { windowBits: 12, memLevel: 9, level: LEVEL });
  },
  inflate(data, outLen) {
    let out: Uint8Array;
    try {
      // SYNC_FLUSH: a stream cut short (image truncated) yields what it has.
      const zlib = zlibModule();
      out = zlib.inflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: Math.max(16384, outLen + 512) });
    } catch {
      throw ioError("EIO");
    }
    if (out.length < outLen) throw ioError("EIO");
    return out.length === outLen ? out : out.subarray(0, outLen);
  },
};

export const fflateCodec: ClusterCodec = {
  name: "fflate",
  deflate(cluster) {
    // fflate uses a 32 KiB window; QEMU's reader accepts that (see above).
    return fflateDeflate(cluster, { level: LEVEL });
  },
  inflate(data, outLen) {
    const out = new Uint8Array(outLen);
    try {
      // fflate stops when `out` is full; trailing input is ignored.
      const got = fflateInflate(data, { out });
      if (got.length !== outLen) throw new Error("short");
      return got;
    } catch {
      // fflate rejects a stream cut short even after producing enough; zlib does not.
      return zlibCodec.inflate(data, outLen);
    }
  },
};

interface BunZlib {
  deflateSync(data: Uint8Array, opts: { windowBits: number; level: number; memLevel: number }): Uint8Array;
  inflateSync(data: Uint8Array, opts: { windowBits: number }): Uint8Array;
}
const bunZlib = (globalThis as { Bun?: BunZlib }).Bun;

/** Bun's built-in zlib binding (negative windowBits = raw DEFLATE); only on Bun. */
export const bunCodec: ClusterCodec | null = bunZlib
  ? {
      name: "Bun zlib",
      deflate(cluster) {
        return bunZlib.deflateSync(cluster, { windowBits: -12, level: LEVEL, memLevel: 9 });
      },
      inflate(data, outLen) {
        try {
          const out = bunZlib.inflateSync(data, { windowBits: -15 });
          if (out.length >= outLen) return out.length === outLen ? out : out.subarray(0, outLen);
        } catch {
          // e.g. a stream cut short by the end of the file: node:zlib returns what it has
        }
        return zlibCodec.inflate(data, outLen);
      },
    }
  : null;

/**
 * The choice per direction, from scripts/bench-image.ts on Bun 1.x (the
 * runtime of the shipped binary), 64 KiB clusters that qcow2 stores
 * compressed, 2-core VM under load:
 *   node:zlib  deflate 1052 MB/s, inflate 732 MB/s  (1 GiB run)
 *   fflate     deflate   11 MB/s, inflate  19 MB/s
 * (an idle micro-run: zlib 497-802 / 365-1217, fflate 38-44 / 56-75 MB/s;
 * fflate only wins on incompressible input, which qcow2 never inflates
 * because such clusters are stored uncompressed). Bun's own binding skips
 * node:zlib's per-call stream setup: on a text cluster 32 us deflate and
 * 30 us inflate per 64 KiB (~2 GB/s) against 101 us inflate for node:zlib.
 * So: Bun's binding on Bun, node:zlib elsewhere (Node under vitest).
 */
export const DEFLATE_CODEC: ClusterCodec = bunCodec ?? zlibCodec;
export const INFLATE_CODEC: ClusterCodec = bunCodec ?? zlibCodec;

/**
 * Cheap test for data that deflate cannot shrink (random, already
 * compressed or encrypted): four 256-byte samples at the quarter points,
 * deflated together at level 1. Compressing such a cluster fully costs
 * ~20x more than compressing text and ends in an uncompressed write anyway.
 * Any repetition inside the samples (zeros, text, structures) passes.
 */
export function looksIncompressible(cluster: Uint8Array): boolean {
  if (cluster.length < 4096) return false;
  const sample = new Uint8Array(1024);
  const step = cluster.length / 4;
  for (let i = 0; i < 4; i++) sample.set(cluster.subarray(i * step, i * step + 256), i * 256);
  return zlibModule().deflateRawSync(sample, { level: 1 }).length >= 1000;
}

/** Compressed form of a full cluster, or null when it would not be smaller. */
export function compressCluster(cluster: Uint8Array, codec: ClusterCodec = DEFLATE_CODEC): Uint8Array | null {
  if (looksIncompressible(cluster)) return null;
  const out = codec.deflate(cluster);
  return out.length < cluster.length ? out : null;
}
