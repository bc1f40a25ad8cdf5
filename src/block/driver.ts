/**
 * What a block driver is: a table entry (name, kind, option schema, open)
 * and, once opened, a NodeDriver that does the node's I/O. Drivers only see
 * their own node and its children; the graph and permissions live in
 * ./graph.ts.
 */
import type { Extent } from "../image/types.ts";
import type { Qcow2Image } from "../image/qcow2/image.ts";

/** A format that keeps internal snapshots (qcow2's image). */
export type InternalSnapshotStore = Pick<Qcow2Image, "snapshots" | "createSnapshot" | "deleteSnapshot">;
import type { BdrvChild, BlockNode } from "./node.ts";
import type { Fields } from "./options.ts";

export type ChildRole = "file" | "backing" | "image" | "data-file" | "target" | (string & {});

/** QEMU's BlkdebugEvent subset the drivers here raise on their children. */
export type DebugEvent = "read_aio" | "write_aio" | "read_backing_aio" | "flush_to_os" | "flush_to_disk" | "write_compressed" | (string & {});

export interface OpenContext {
  readonly node: BlockNode;
  /** This driver's validated options (QAPI member names, typed values). */
  readonly options: Record<string, unknown>;
  /** The primary child the layer opened before naming the node, if any. */
  readonly primary: BlockNode | null;
  /**
   * Opens (or looks up) the child referenced by option `key` and links it
   * under `role`. `null` option value or absent optional child: returns null.
   */
  openChild(key: string, role: ChildRole): Promise<BdrvChild | null>;
  /** Emits a QMP event (BLOCK_IMAGE_CORRUPTED from format drivers). */
  emit(event: string, data: Record<string, unknown>): void;
  /** Opens a child from a file name (qcow2 default backing). */
  openChildByFilename(filename: string, format: string | undefined, role: ChildRole, readOnly: boolean): Promise<BdrvChild>;
}

/** Image info pieces a driver adds to ImageInfo (block/qapi.c bdrv_query_image_info). */
export interface DriverImageInfo {
  format?: string;
  "cluster-size"?: number;
  "dirty-flag"?: boolean;
  "backing-filename"?: string;
  "backing-filename-format"?: string;
  "format-specific"?: { type: string; data: Record<string, unknown> };
  /** false for nodes that have no host file (null-co): no actual-size. */
  hasActualSize?: boolean;
}

export interface NodeDriver {
  /** Length in bytes (the layer rounds up to 512 like QEMU's total_sectors). */
  size(): number;
  read(buf: Uint8Array, offset: number): Promise<void>;
  write(data: Uint8Array, offset: number): Promise<void>;
  writeZeroes(offset: number, length: number, opts: { unmap: boolean }): Promise<void>;
  discard(offset: number, length: number): Promise<void>;
  /** Drops every cluster of this layer, leaving the backing file visible (bdrv_make_empty). */
  makeEmpty?(): Promise<void>;
  writeCompressed?(data: Uint8Array, offset: number): Promise<void>;
  /** Status of this layer only (data below a backing boundary = unallocated). */
  blockStatus(offset: number, length: number): Promise<Extent>;
  flush(): Promise<void>;
  resize(size: number): Promise<void>;
  close(): Promise<void>;
  /** Permissions this node needs on `child` given its parents' cumulative needs (default: per role, see BlockNode.childPerms). */
  childPerms?(child: BdrvChild, perm: number, shared: number): [number, number];
  /** The "file" string in BlockDeviceInfo when the node is a plain image. */
  filename(): string;
  imageInfo?(): DriverImageInfo;
  /** Internal snapshots, for formats that have them (bdrv_snapshot_*). */
  internalSnapshots?(): InternalSnapshotStore;
  /** Bytes of host storage (ImageInfo actual-size); undefined when unknown (blkdebug). */
  actualSize?(): number | undefined;
  /** The backing child is the one the image header names (so json: filenames leave it out). */
  impliedBacking?(): boolean;
  /** Bytes per allocation unit (qcow2 cluster size), 0 if none. */
  readonly clusterSize?: number;
  /** Called after the node's backing child changed (commit, stream, snapshot). */
  backingChanged?(): void;
  /** Rewrites the image's backing file name in its header (commit, stream). */
  changeBackingFile?(name: string | null, format: string | null): Promise<void>;
  /** Switches between read-only and read-write (bdrv_reopen of read-only). */
  reopen?(readOnly: boolean): Promise<void>;
  /** The backing file name recorded in the image header (qcow2). */
  headerBackingFile?(): string | null;
  /** blkdebug: an event raised on this node by a parent format driver. */
  debugEvent?(event: DebugEvent): void;
  /** Extra permission check for the node's cumulative needs (image locking); throws QEMU's error. */
  checkPerm?(perm: number, shared: number): void;
  /** The cumulative needs were committed. */
  setPerm?(perm: number, shared: number): void;
  /** A drain began: let requests the driver holds back go now (throttle; QEMU drains with I/O limits off). */
  drainBegin?(): void;
  /** Per-request hook for drivers that fail I/O on purpose (blkdebug). */
  checkRequest?(iotype: IoType, offset: number, length: number): Promise<void>;
}

export type IoType = "read" | "write" | "write-zeroes" | "discard" | "flush" | "block-status";

export type DriverKind = "protocol" | "format" | "filter";

export interface DriverDef {
  readonly name: string;
  readonly kind: DriverKind;
  /** Variant members of BlockdevOptions for this driver (after the common base). */
  readonly fields: Fields;
  /** Options that shape what the guest sees, shown in json: filenames (QEMU's strong_runtime_opts). */
  readonly strongOptions?: readonly string[];
  /** Child option opened before the node gets its name (QEMU opens "file" first). */
  readonly primaryChild?: { key: string; role: ChildRole };
  /** Supports a "backing" child (blockdev-snapshot overlay check). */
  readonly supportsBacking?: boolean;
  /** Static child permission policy (used before the driver is open); defaults per role. */
  childPerms?(node: BlockNode, child: BdrvChild, perm: number, shared: number): [number, number];
  /** Internal filters (mirror_top) cannot be blockdev-add'ed. */
  readonly internal?: boolean;
  open(ctx: OpenContext): Promise<NodeDriver>;
}
