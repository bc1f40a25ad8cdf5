/**
 * blockdev-create qcow2: option checks in QEMU 7.2's order with its texts
 * (verified against qemu-system-x86_64 by combining bad options, see
 * test/oracle-extra/scenarios/x-blockdev-create-options.json). They run as
 * part of the job, so failures become the job's error, not a command error.
 */
import { genericError } from "../../core/error.ts";

export interface Qcow2CreateRequest {
  /** A bigint when the request held more than 2^53 (QAPI's uint64). */
  size: number | bigint;
  version?: "v2" | "v3";
  "backing-file"?: string;
  "backing-fmt"?: string;
  "cluster-size"?: number;
  preallocation?: "off" | "metadata" | "falloc" | "full";
  "lazy-refcounts"?: boolean;
  "refcount-bits"?: number;
  "compression-type"?: "zlib" | "zstd";
  "data-file"?: unknown;
  "data-file-raw"?: boolean;
  "extended-l2"?: boolean;
  encrypt?: unknown;
}

export interface Qcow2CreatePlan {
  /** As requested; resizeTarget() says whether an image can have it. */
  size: bigint;
  version: 2 | 3;
  clusterSize: number;
  refcountBits: number;
  lazyRefcounts: boolean;
  backingFile?: string;
  backingFormat?: string;
  preallocation: "off" | "metadata" | "falloc" | "full";
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
const V3_NEEDED = "(use version=v3 or greater)";

/**
 * What QEMU 7.2 can create and we cannot. Checked where QEMU would already
 * have begun writing the image, so the job fails after the command's reply.
 */
export function refuseUnsupportedQcow2(o: Qcow2CreateRequest, secretExists: (id: string) => boolean): void {
  if (o["compression-type"] === "zstd") throw genericError("Compression type 'zstd' is not supported");
  if (o["data-file"] !== undefined) throw genericError("External data files are not supported");
  if (o["extended-l2"]) throw genericError("Extended L2 entries are not supported");
  if (o.encrypt !== undefined) {
    // LUKS finds a missing key before anything we would have to implement.
    const e = o.encrypt as { format?: string; "key-secret"?: string };
    if (e.format === "luks" && e["key-secret"] === undefined) throw genericError("Parameter 'key-secret' is required for cipher");
    if (e.format === "luks" && !secretExists(e["key-secret"]!)) throw genericError(`No secret with id '${e["key-secret"]}'`);
    throw genericError("Encryption is not supported");
  }
}

/** The new image's size, or the error QEMU's final truncate of it gives. */
export function resizeTarget(size: bigint): number {
  // As int64_t, what QAPI took for a uint64 above INT64_MAX is negative.
  if (size < 0n || size > 0x7fffffffffffffffn) throw genericError("Could not resize image: Image size cannot be negative");
  if (size > BDRV_MAX_LENGTH) {
    throw genericError(`Could not resize image: offset(${size}) exceeds maximum(${BDRV_MAX_LENGTH})`);
  }
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw genericError("Could not resize image: File too large");
  return Number(size);
}

/** BDRV_MAX_LENGTH: INT64_MAX rounded down to 1 GiB, the longest request the block layer takes. */
const BDRV_MAX_LENGTH = 9223372035781033984n;

/**
 * Checks that depend on nothing but the options, in qcow2_co_create's order
 * up to the data file (which needs a node lookup): `dataFile` looks it up.
 */
export function planQcow2Create(o: Qcow2CreateRequest, dataFile: (ref: unknown) => void = () => {}): Qcow2CreatePlan {
  const size = BigInt(o.size);
  if (size % 512n !== 0n) throw genericError("Image size must be a multiple of 512 bytes");
  const version = o.version === "v2" ? 2 : 3;
  const clusterSize = o["cluster-size"] ?? 65536;
  if (o["extended-l2"] && version < 3) {
    throw genericError(`Extended L2 entries are only supported with compatibility level 1.1 and above ${V3_NEEDED}`);
  }
  if (!isPow2(clusterSize) || clusterSize < 512 || clusterSize > 2 * 1024 * 1024) {
    throw genericError("Cluster size must be a power of two between 512 and 2048k");
  }
  if (o["extended-l2"] && clusterSize < 16384) {
    throw genericError("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
  }
  const preallocation = o.preallocation ?? "off";
  if (o["backing-file"] !== undefined && preallocation !== "off" && !o["extended-l2"]) {
    throw genericError("Backing file and preallocation can only be used at the same time if extended_l2 is on");
  }
  if (o["backing-fmt"] !== undefined && o["backing-file"] === undefined) {
    throw genericError("Backing format cannot be used without backing file");
  }
  if (version < 3 && o["lazy-refcounts"]) {
    throw genericError(`Lazy refcounts only supported with compatibility level 1.1 and above ${V3_NEEDED}`);
  }
  const refcountBits = o["refcount-bits"] ?? 16;
  if (refcountBits > 64 || !isPow2(refcountBits)) {
    throw genericError("Refcount width must be a power of two and may not exceed 64 bits");
  }
  if (version < 3 && refcountBits !== 16) {
    throw genericError(`Different refcount widths than 16 bits require compatibility level 1.1 or above ${V3_NEEDED}`);
  }
  if (o["data-file-raw"] && o["data-file"] === undefined) throw genericError("data-file-raw requires data-file");
  if (o["data-file-raw"] && o["backing-file"] !== undefined) {
    throw genericError("Backing file and data-file-raw cannot be used at the same time");
  }
  if (o["data-file"] !== undefined) {
    if (version < 3) {
      throw genericError(`External data files are only supported with compatibility level 1.1 and above ${V3_NEEDED}`);
    }
    dataFile(o["data-file"]);
  }
  if (o["compression-type"] === "zstd" && version < 3) {
    throw genericError(`Non-zlib compression type is only supported with compatibility level 1.1 and above ${V3_NEEDED}`);
  }
  return {
    size,
    version,
    clusterSize,
    refcountBits,
    lazyRefcounts: !!o["lazy-refcounts"],
    backingFile: o["backing-file"],
    backingFormat: o["backing-fmt"],
    preallocation,
  };
}
