/**
 * blockdev-create qcow2: option checks in QEMU 7.2's order with its texts
 * (verified against qemu-system-x86_64 by combining bad options, see
 * test/oracle-extra/scenarios/x-blockdev-create-options.json). They run as
 * part of the job, so failures become the job's error, not a command error.
 */
import { genericError } from "../../core/error.ts";

export interface Qcow2CreateRequest {
  size: number;
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
  size: number;
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

export function planQcow2Create(o: Qcow2CreateRequest): Qcow2CreatePlan {
  if (o.size % 512 !== 0) throw genericError("Image size must be a multiple of 512 bytes");
  const version = o.version === "v2" ? 2 : 3;
  const clusterSize = o["cluster-size"] ?? 65536;
  if (!isPow2(clusterSize) || clusterSize < 512 || clusterSize > 2 * 1024 * 1024) {
    throw genericError("Cluster size must be a power of two between 512 and 2048k");
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
  if (o["data-file"] !== undefined && version < 3) {
    throw genericError(`External data files are only supported with compatibility level 1.1 and above ${V3_NEEDED}`);
  }
  if (o["data-file-raw"] && o["data-file"] === undefined) throw genericError("data-file-raw requires data-file");
  if (o["compression-type"] === "zstd") {
    if (version < 3) {
      throw genericError(`Non-zlib compression type is only supported with compatibility level 1.1 and above ${V3_NEEDED}`);
    }
    throw genericError("Compression type 'zstd' is not supported");
  }
  if (o["data-file"] !== undefined) throw genericError("External data files are not supported");
  if (o["extended-l2"]) throw genericError("Extended L2 entries are not supported");
  if (o.encrypt !== undefined) throw genericError("Encryption is not supported");
  // QEMU finds this only when it resizes the new image, after every option check
  if (o.size < 0) throw genericError("Could not resize image: Image size cannot be negative");
  return {
    size: o.size,
    version,
    clusterSize,
    refcountBits,
    lazyRefcounts: !!o["lazy-refcounts"],
    backingFile: o["backing-file"],
    backingFormat: o["backing-fmt"],
    preallocation,
  };
}
