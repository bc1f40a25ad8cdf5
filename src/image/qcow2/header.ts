/**
 * qcow2 header (cluster 0): parse with QEMU 7.2's checks and messages, and
 * serialise back as one whole-cluster write, preserving unknown header
 * fields and unknown extensions.
 */
import { formatError } from "../errors.ts";
import {
  EXT,
  FEATURE_NAMES,
  INCOMPAT,
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  QCOW2_MAGIC,
  QCOW_MAX_L1_SIZE,
  QCOW_MAX_REFTABLE_SIZE,
  SUPPORTED_INCOMPAT,
  V3_HEADER_LENGTH,
  getU64,
  setU64,
} from "./format.ts";

export interface HeaderExtension {
  type: number;
  data: Uint8Array;
}

export interface BitmapsExtension {
  nbBitmaps: number;
  directorySize: number;
  directoryOffset: number;
}

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  /** Header bytes past the fields we know (offset 112 .. headerLength), kept verbatim. */
  unknownFields: Uint8Array;
  backingFile: string | null;
  backingFormat: string | null;
  bitmaps: BitmapsExtension | null;
  /** Extensions we do not interpret, in file order (rewritten verbatim). */
  otherExtensions: HeaderExtension[];
  /** Names from the image's feature table, for error messages. */
  featureTable: Array<{ type: number; bit: number; name: string }>;
}

const utf8 = new TextDecoder();
const utf8enc = new TextEncoder();

/** Fixed-size fields, read before we know the cluster size. */
export const HEADER_PROBE_BYTES = V3_HEADER_LENGTH;

function readExtensions(
  buf: Uint8Array,
  start: number,
  end: number,
): { list: HeaderExtension[]; error?: string } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const list: HeaderExtension[] = [];
  let pos = start;
  while (pos < end) {
    if (pos + 8 > end) return { list, error: "Header extension too large" };
    const type = view.getUint32(pos);
    const len = view.getUint32(pos + 4);
    pos += 8;
    if (len > end - pos) return { list, error: "Header extension too large" };
    if (type === EXT.END) return { list };
    list.push({ type, data: buf.slice(pos, pos + len) });
    pos += (len + 7) & ~7;
  }
  return { list };
}

function parseFeatureTable(data: Uint8Array): Qcow2Header["featureTable"] {
  const out: Qcow2Header["featureTable"] = [];
  for (let p = 0; p + 48 <= data.length; p += 48) {
    const nameBytes = data.subarray(p + 2, p + 48);
    const nul = nameBytes.indexOf(0);
    const name = utf8.decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul));
    if (name === "") break;
    out.push({ type: data[p]!, bit: data[p + 1]!, name });
  }
  return out;
}

function unsupportedFeatures(table: Qcow2Header["featureTable"], mask: bigint): string {
  const names: string[] = [];
  for (const f of table) {
    if (f.type === 0 && mask & (1n << BigInt(f.bit))) {
      names.push(f.name.slice(0, 46));
      mask &= ~(1n << BigInt(f.bit));
    }
  }
  if (mask) names.push(`Unknown incompatible feature: ${mask.toString(16)}`);
  return `Unsupported qcow2 feature(s): ${names.join(", ")}`;
}

/**
 * Parses cluster 0. `buf` must hold at least the first cluster (zero-filled
 * past EOF). `readWrite` applies the read/write-only refusals (corrupt bit).
 * Throws QmpError with QEMU's message on anything QEMU refuses.
 */
export function parseHeader(buf: Uint8Array, opts: { readWrite: boolean }): Qcow2Header {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 72 || view.getUint32(0) !== QCOW2_MAGIC) throw formatError("Image is not in qcow2 format");
  const version = view.getUint32(4);
  if (version < 2 || version > 3) throw formatError(`Unsupported qcow2 version ${version}`);
  const clusterBits = view.getUint32(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw formatError(`Unsupported cluster size: 2^${clusterBits}`);
  }
  const clusterSize = 2 ** clusterBits;
  const u64big = (p: number) => view.getBigUint64(p);
  const h: Qcow2Header = {
    version: version as 2 | 3,
    backingFileOffset: getU64(view, 8),
    backingFileSize: view.getUint32(16),
    clusterBits,
    size: getU64(view, 24),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: getU64(view, 40),
    refcountTableOffset: getU64(view, 48),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: getU64(view, 64),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: 72,
    compressionType: 0,
    unknownFields: new Uint8Array(0),
    backingFile: null,
    backingFormat: null,
    bitmaps: null,
    otherExtensions: [],
    featureTable: [],
  };
  if (version === 3) {
    h.incompatible = u64big(72);
    h.compatible = u64big(80);
    h.autoclear = u64big(88);
    h.refcountOrder = view.getUint32(96);
    h.headerLength = view.getUint32(100);
    if (h.headerLength < 104) throw formatError("qcow2 header too short");
  }
  if (h.headerLength > clusterSize) throw formatError("qcow2 header exceeds cluster size");
  if (h.headerLength > V3_HEADER_LENGTH) h.unknownFields = buf.slice(V3_HEADER_LENGTH, h.headerLength);
  if (h.backingFileOffset > clusterSize) throw formatError("Invalid backing file offset");
  const extEnd = h.backingFileOffset || clusterSize;

  h.compressionType = h.headerLength > 104 ? buf[104]! : 0;
  if (h.compressionType > 1) throw formatError(`qcow2: unknown compression type: ${h.compressionType}`);
  const compressionBit = (h.incompatible & BigInt(INCOMPAT.COMPRESSION)) !== 0n;
  if (h.compressionType === 0 && compressionBit) {
    throw formatError("qcow2: Compression type incompatible feature bit must not be set");
  }
  if (h.compressionType !== 0 && !compressionBit) {
    throw formatError("qcow2: Compression type incompatible feature bit must be set");
  }

  const exts = readExtensions(buf, h.headerLength, Math.min(extEnd, buf.length));
  const tableExt = exts.list.find((e) => e.type === EXT.FEATURE_TABLE);
  if (tableExt) h.featureTable = parseFeatureTable(tableExt.data);
  const unknownIncompat = h.incompatible & ~BigInt(SUPPORTED_INCOMPAT);
  if (unknownIncompat) throw formatError(unsupportedFeatures(h.featureTable, unknownIncompat));
  if (h.incompatible & BigInt(INCOMPAT.CORRUPT) && opts.readWrite) {
    throw formatError("qcow2: Image is corrupt; cannot be opened read/write");
  }
  if (h.refcountOrder > 6) {
    throw formatError("Reference count entry width too large; may not exceed 64 bits");
  }
  if (h.cryptMethod > 2) throw formatError(`Unsupported encryption method ${h.cryptMethod}`);
  if (h.cryptMethod !== 0) throw formatError("Encrypted qcow2 images are not supported");
  if (h.refcountTableClusters === 0) throw formatError("Image does not contain a reference count table");
  validateTable(h.refcountTableOffset, h.refcountTableClusters, clusterSize, QCOW_MAX_REFTABLE_SIZE, "Reference count table", clusterSize);
  validateTable(h.snapshotsOffset, h.nbSnapshots, 40, 40 * 65536, "Snapshot table", clusterSize);
  validateTable(h.l1TableOffset, h.l1Size, 8, QCOW_MAX_L1_SIZE, "Active L1 table", clusterSize);
  const l2Coverage = clusterSize * (clusterSize / 8);
  if (Math.ceil(h.size / l2Coverage) > h.l1Size) throw formatError("L1 table is too small");

  if (exts.error) throw formatError(exts.error);
  for (const ext of exts.list) {
    const ev = new DataView(ext.data.buffer, ext.data.byteOffset, ext.data.byteLength);
    switch (ext.type) {
      case EXT.BACKING_FORMAT:
        if (ext.data.length >= 16) {
          throw formatError(`ERROR: ext_backing_format: len=${ext.data.length} too large (>=16)`);
        }
        h.backingFormat = utf8.decode(ext.data);
        break;
      case EXT.FEATURE_TABLE:
        break;
      case EXT.BITMAPS:
        if (ext.data.length !== 24) throw formatError("bitmaps_ext: Invalid extension length");
        h.bitmaps = { nbBitmaps: ev.getUint32(0), directorySize: getU64(ev, 8), directoryOffset: getU64(ev, 16) };
        break;
      default:
        h.otherExtensions.push(ext);
    }
  }
  if (h.backingFileOffset !== 0) {
    const len = h.backingFileSize;
    if (len > Math.min(1023, clusterSize - h.backingFileOffset)) throw formatError("Backing file name too long");
    h.backingFile = utf8.decode(buf.subarray(h.backingFileOffset, h.backingFileOffset + len));
  }
  return h;
}

function validateTable(offset: number, entries: number, entryLen: number, maxBytes: number, name: string, clusterSize: number): void {
  if (entries > Math.floor(maxBytes / entryLen)) throw formatError(`${name} too large`);
  if (offset % clusterSize !== 0 || offset + entries * entryLen > Number.MAX_SAFE_INTEGER) {
    throw formatError(`${name} offset invalid`);
  }
}

function featureTableBytes(): Uint8Array {
  const out = new Uint8Array(FEATURE_NAMES.length * 48);
  FEATURE_NAMES.forEach((f, i) => {
    out[i * 48] = f.type;
    out[i * 48 + 1] = f.bit;
    out.set(utf8enc.encode(f.name), i * 48 + 2);
  });
  return out;
}

/**
 * Builds the whole cluster 0 for `h` (header fields, extensions in QEMU's
 * order, end marker, backing file name), updating h.backingFileOffset/Size.
 * Throws when it does not fit in one cluster.
 */
export function serializeHeader(h: Qcow2Header): Uint8Array {
  const clusterSize = 2 ** h.clusterBits;
  const buf = new Uint8Array(clusterSize);
  const view = new DataView(buf.buffer);
  const headerLength = h.version === 2 ? 72 : Math.max(h.headerLength, V3_HEADER_LENGTH);
  const exts: HeaderExtension[] = [];
  if (h.backingFormat) exts.push({ type: EXT.BACKING_FORMAT, data: utf8enc.encode(h.backingFormat) });
  // QEMU 7.2 leaves the feature table out for clusters of 4 KiB and less (observed).
  if (h.version === 3 && clusterSize > 4096) exts.push({ type: EXT.FEATURE_TABLE, data: featureTableBytes() });
  if (h.bitmaps) {
    const d = new Uint8Array(24);
    const dv = new DataView(d.buffer);
    dv.setUint32(0, h.bitmaps.nbBitmaps);
    setU64(dv, 8, h.bitmaps.directorySize);
    setU64(dv, 16, h.bitmaps.directoryOffset);
    exts.push({ type: EXT.BITMAPS, data: d });
  }
  exts.push(...h.otherExtensions);
  let pos = headerLength;
  for (const e of exts) {
    const need = 8 + ((e.data.length + 7) & ~7);
    if (pos + need + 8 > clusterSize) throw formatError("Header extensions too large for one cluster");
    view.setUint32(pos, e.type);
    view.setUint32(pos + 4, e.data.length);
    buf.set(e.data, pos + 8);
    pos += need;
  }
  pos += 8; // end-of-extensions entry (type 0, length 0)
  const name = h.backingFile ? utf8enc.encode(h.backingFile) : null;
  if (name) {
    if (name.length > 1023 || pos + name.length > clusterSize) throw formatError("Backing file name too long");
    buf.set(name, pos);
    h.backingFileOffset = pos;
    h.backingFileSize = name.length;
  } else {
    h.backingFileOffset = 0;
    h.backingFileSize = 0;
  }
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, h.version);
  setU64(view, 8, h.backingFileOffset);
  view.setUint32(16, h.backingFileSize);
  view.setUint32(20, h.clusterBits);
  setU64(view, 24, h.size);
  view.setUint32(32, h.cryptMethod);
  view.setUint32(36, h.l1Size);
  setU64(view, 40, h.l1TableOffset);
  setU64(view, 48, h.refcountTableOffset);
  view.setUint32(56, h.refcountTableClusters);
  view.setUint32(60, h.nbSnapshots);
  setU64(view, 64, h.snapshotsOffset);
  if (h.version === 3) {
    view.setBigUint64(72, h.incompatible);
    view.setBigUint64(80, h.compatible);
    view.setBigUint64(88, h.autoclear);
    view.setUint32(96, h.refcountOrder);
    view.setUint32(100, headerLength);
    buf[104] = h.compressionType;
    buf.set(h.unknownFields.subarray(0, headerLength - V3_HEADER_LENGTH), V3_HEADER_LENGTH);
    h.headerLength = headerLength;
  }
  return buf;
}

/** A header for a new, empty image (tables are placed by createQcow2). */
export function newHeader(fields: {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  refcountOrder: number;
  compatible?: bigint;
  backingFile?: string | null;
  backingFormat?: string | null;
}): Qcow2Header {
  return {
    version: fields.version,
    backingFileOffset: 0,
    backingFileSize: 0,
    clusterBits: fields.clusterBits,
    size: fields.size,
    cryptMethod: 0,
    l1Size: 0,
    l1TableOffset: 0,
    refcountTableOffset: 0,
    refcountTableClusters: 0,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatible: 0n,
    compatible: fields.compatible ?? 0n,
    autoclear: 0n,
    refcountOrder: fields.refcountOrder,
    headerLength: fields.version === 2 ? 72 : V3_HEADER_LENGTH,
    compressionType: 0,
    unknownFields: new Uint8Array(0),
    backingFile: fields.backingFile ?? null,
    backingFormat: fields.backingFormat ?? null,
    bitmaps: null,
    otherExtensions: [],
    featureTable: [],
  };
}
