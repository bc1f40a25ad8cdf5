/**
 * Graph vertices and edges. A BlockNode wraps one opened driver; a BdrvChild
 * is an edge from a parent (another node, or an external user such as a
 * BlockBackend or a block job) to a child node, carrying the permissions the
 * parent holds on it. Structure and permission bookkeeping live in
 * ./graph.ts; this file is the per-node I/O path: write notifiers, dirty
 * bitmaps, detect-zeroes, in-flight tracking.
 */
import type { Extent } from "../image/types.ts";
import { ioError } from "../image/errors.ts";
import type { CommonOptions, NodeOptions } from "./options.ts";
import type { DebugEvent, DriverDef, NodeDriver } from "./driver.ts";
import { cowPerms, filterPerms, PERM_ALL, storagePerms } from "./perms.ts";
import type { DirtyBitmap } from "./bitmap.ts";

/** A parent that is not a node: a BlockBackend, a block job, qemu-io's temporary backend. */
export interface ExternalParent {
  readonly kind: "block-backend" | "block-job";
  /** Shown in x-debug-query-block-graph. */
  readonly graphName: string;
  /** "block device 'drive0'", "an unnamed block device", "backup job 'j0'". */
  describe(): string;
}

export class BdrvChild {
  /** Permissions held on `node`, and those the parent lets others have. */
  perm = 0;
  shared = PERM_ALL;

  constructor(
    readonly name: string,
    readonly parent: BlockNode | ExternalParent,
    public node: BlockNode,
    /** For external parents: what they asked for (graph.ts copies it into perm/shared). */
    public wantPerm = 0,
    public wantShared = PERM_ALL,
  ) {}

  get parentNode(): BlockNode | null {
    return this.parent instanceof BlockNode ? this.parent : null;
  }

  describeParent(): string {
    return this.parent instanceof BlockNode ? `node '${this.parent.nodeName}'` : this.parent.describe();
  }
}

/** QEMU's BlockOpType: what an op blocker can forbid. */
export const OP_TYPES = [
  "backup-source", "backup-target", "change", "commit-source", "commit-target", "dataplane",
  "drive-del", "eject", "external-snapshot", "internal-snapshot", "internal-snapshot-delete",
  "mirror-source", "mirror-target", "resize", "stream", "replace",
] as const;
export type OpType = (typeof OP_TYPES)[number];

interface OpBlocker {
  readonly reason: string;
  readonly ops: ReadonlySet<OpType>;
}

export type WriteKind = "write" | "zero" | "discard" | "compressed";

/** Runs before a write reaches the driver (copy-before-write); may throw to fail it. */
export type WriteNotifier = (req: { node: BlockNode; offset: number; length: number; kind: WriteKind }) => Promise<void> | void;

let nextNodeSerial = 0;

export class BlockNode {
  /** Stable identity for graph dumps; never reused. */
  readonly serial = ++nextNodeSerial;
  nodeName = "";
  autoNamed = false;
  /** Added by blockdev-add / -blockdev at top level: blockdev-del may remove it. */
  monitorOwned = false;
  readOnly: boolean;
  readonly children: BdrvChild[] = [];
  readonly parents: BdrvChild[] = [];
  readonly bitmaps: DirtyBitmap[] = [];
  driver!: NodeDriver;
  closed = false;
  /**
   * Set after fatal metadata corruption: QEMU drops the driver (bs->drv = NULL),
   * so I/O fails with "No medium found" and queries call the node ejected.
   */
  ejected = false;
  /** A temporary image file removed when the node closes (-drive snapshot=on). */
  deleteOnClose?: string;
  /** block-set-write-threshold (0: none); ./threshold.ts watches writes while set. */
  /** uint64, exact as set (a bigint beyond 2^53). */
  writeThreshold: number | bigint = 0;
  /** Per-node counters query-blockstats shows (bs->wr_highest_offset, file-posix discard stats). */
  readonly ioStats = { wrHighestOffset: 0, discardNbOk: 0, discardNbFailed: 0, discardBytesOk: 0 };
  /** Requests in flight, for drain. */
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];
  private readonly blockers: OpBlocker[] = [];
  private readonly writeNotifiers = new Set<WriteNotifier>();

  constructor(
    readonly def: DriverDef,
    readonly options: NodeOptions,
  ) {
    this.readOnly = options.common.readOnly ?? false;
  }

  get driverName(): string {
    return this.def.name;
  }

  get common(): CommonOptions {
    return this.options.common;
  }

  get isFilter(): boolean {
    return this.def.kind === "filter";
  }

  child(name: string): BdrvChild | undefined {
    return this.children.find((c) => c.name === name);
  }

  get file(): BdrvChild | undefined {
    return this.child("file");
  }

  get backing(): BdrvChild | undefined {
    return this.child("backing");
  }

  /** The child a filter forwards to (file, image, or for mirror_top/cor "backing"/"file"). */
  get filtered(): BdrvChild | undefined {
    if (!this.isFilter) return undefined;
    return this.child("file") ?? this.child("image") ?? this.child("backing");
  }

  /** Backing or filtered child: the next layer of the COW chain (bdrv_filter_or_cow_bs). */
  get cowOrFiltered(): BlockNode | undefined {
    return (this.isFilter ? this.filtered : this.backing)?.node;
  }

  // ---- Op blockers --------------------------------------------------------

  /** Blocks `ops` (all but `except` when omitted) with `reason`; returns the unblock function. */
  blockOps(reason: string, opts: { except?: readonly OpType[]; only?: readonly OpType[] } = {}): () => void {
    const ops = new Set<OpType>(opts.only ?? OP_TYPES.filter((o) => !opts.except?.includes(o)));
    const b: OpBlocker = { reason, ops };
    this.blockers.unshift(b); // newest first, like QLIST_INSERT_HEAD
    return () => {
      const i = this.blockers.indexOf(b);
      if (i >= 0) this.blockers.splice(i, 1);
    };
  }

  /** The reason `op` is blocked (the most recent blocker), or null. */
  opBlockedReason(op: OpType): string | null {
    return this.blockers.find((b) => b.ops.has(op))?.reason ?? null;
  }

  // ---- Write notifiers ----------------------------------------------------

  addWriteNotifier(fn: WriteNotifier): () => void {
    this.writeNotifiers.add(fn);
    return () => this.writeNotifiers.delete(fn);
  }

  // ---- I/O ----------------------------------------------------------------

  /** Length in bytes, rounded up to 512 (QEMU keeps total_sectors). */
  size(): number {
    return Math.ceil(this.driver.size() / 512) * 512;
  }

  get clusterSize(): number {
    return this.driver.clusterSize ?? 0;
  }

  private async track<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed || this.ejected) throw ioError("EIO", "No medium found");
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.requestDone();
    }
  }

  /** Resolves when no request is in flight on this node. */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    this.driver?.drainBegin?.();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  read(buf: Uint8Array, offset: number): Promise<void> {
    return this.track(async () => {
      await this.driver.checkRequest?.("read", offset, buf.length);
      await this.driver.read(buf, offset);
    });
  }

  private async beforeWrite(offset: number, length: number, kind: WriteKind): Promise<void> {
    if (this.readOnly) throw ioError("EPERM");
    for (const fn of [...this.writeNotifiers]) await fn({ node: this, offset, length, kind });
  }

  private afterWrite(offset: number, length: number, kind: WriteKind = "write"): void {
    // Discards do not move wr_highest_offset (bdrv_co_write_req_finish).
    if (kind !== "discard") this.ioStats.wrHighestOffset = Math.max(this.ioStats.wrHighestOffset, offset + length);
    for (const bm of this.bitmaps) bm.markWrite(offset, length);
  }

  write(data: Uint8Array, offset: number): Promise<void> {
    if (this.writeNotifiers.size === 0 && !this.driver?.checkRequest && this.common.detectZeroes === "off") {
      return this.plainWrite(data, offset);
    }
    return this.track(async () => {
      if (this.common.detectZeroes !== "off" && isAllZero(data)) {
        await this.beforeWrite(offset, data.length, "zero");
        await this.driver.checkRequest?.("write-zeroes", offset, data.length);
        await this.driver.writeZeroes(offset, data.length, { unmap: this.common.detectZeroes === "unmap" && this.common.discard === "unmap" });
      } else {
        await this.beforeWrite(offset, data.length, "write");
        await this.driver.checkRequest?.("write", offset, data.length);
        await this.driver.write(data, offset);
      }
      this.afterWrite(offset, data.length);
    });
  }

  /**
   * write() when nothing watches or checks it (no write notifier, no
   * injected error, no zero detection): the guest I/O path a job or qemu-io
   * runs thousands of times a second, with a third of the promises and no
   * closures, so the GC runs (and pauses the event loop) less often.
   */
  private plainWrite(data: Uint8Array, offset: number): Promise<void> {
    if (this.closed || this.ejected) return Promise.reject(ioError("EIO", "No medium found"));
    if (this.readOnly) return Promise.reject(ioError("EPERM"));
    this.inFlight++;
    let written: Promise<void>;
    try {
      written = this.driver.write(data, offset);
    } catch (e) {
      written = Promise.reject(e);
    }
    return written.then(
      () => {
        this.afterWrite(offset, data.length);
        this.requestDone();
      },
      (e: unknown) => {
        this.requestDone();
        throw e;
      },
    );
  }

  private requestDone(): void {
    if (--this.inFlight === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  writeZeroes(offset: number, length: number, opts: { unmap?: boolean } = {}): Promise<void> {
    return this.track(async () => {
      await this.beforeWrite(offset, length, "zero");
      await this.driver.checkRequest?.("write-zeroes", offset, length);
      await this.driver.writeZeroes(offset, length, { unmap: !!opts.unmap && this.common.discard === "unmap" });
      this.afterWrite(offset, length);
    });
  }

  /** Honoured only with discard=unmap: QEMU returns success and does nothing otherwise. */
  discard(offset: number, length: number): Promise<void> {
    return this.track(async () => {
      if (this.common.discard !== "unmap") return;
      await this.beforeWrite(offset, length, "discard");
      await this.driver.checkRequest?.("discard", offset, length);
      try {
        await this.driver.discard(offset, length);
      } catch (e) {
        this.ioStats.discardNbFailed++;
        throw e;
      }
      this.ioStats.discardNbOk++;
      this.ioStats.discardBytesOk += length;
      this.afterWrite(offset, length, "discard");
    });
  }

  /** Compressed whole-cluster write; EINVAL-like failure when the driver cannot. */
  writeCompressed(data: Uint8Array, offset: number): Promise<void> {
    return this.track(async () => {
      if (!this.driver.writeCompressed) throw ioError("ENOTSUP");
      await this.beforeWrite(offset, data.length, "compressed");
      await this.driver.checkRequest?.("write", offset, data.length);
      await this.driver.writeCompressed(data, offset);
      this.afterWrite(offset, data.length);
    });
  }

  get supportsCompressedWrites(): boolean {
    return typeof this.driver.writeCompressed === "function";
  }

  /** Status of this layer at `offset` (at most `length` bytes). */
  blockStatus(offset: number, length: number): Promise<Extent> {
    return this.track(async () => {
      await this.driver.checkRequest?.("block-status", offset, length);
      return this.driver.blockStatus(offset, length);
    });
  }

  /**
   * Whether [offset, offset+length) is allocated in this node or any layer
   * above `base` (exclusive; null = whole chain). Returns the length of the
   * leading run with the same answer (bdrv_is_allocated_above).
   */
  async isAllocatedAbove(base: BlockNode | null, offset: number, length: number): Promise<{ allocated: boolean; length: number }> {
    let n = length;
    let layer: BlockNode | undefined = this;
    while (layer && layer !== base) {
      const size = layer.size();
      if (offset >= size) {
        // Past a shorter layer's end: reads as zeros from here on, counts as allocated for the overlay.
        return { allocated: layer !== this, length: n };
      }
      const ext = await layer.blockStatus(offset, Math.min(n, size - offset));
      if (ext.allocated) return { allocated: true, length: Math.max(1, Math.min(n, ext.length)) };
      n = Math.max(1, Math.min(n, ext.length));
      layer = layer.cowOrFiltered;
    }
    return { allocated: false, length: n };
  }

  flush(): Promise<void> {
    return this.track(async () => {
      await this.driver.checkRequest?.("flush", 0, 0);
      await this.driver.flush();
    });
  }

  resize(size: number): Promise<void> {
    return this.track(async () => {
      await this.driver.resize(size);
      for (const bm of this.bitmaps) bm.resize(this.size());
    });
  }

  /**
   * Raises a blkdebug event on the child called `childName`: it travels down
   * primary children until a driver that listens (bdrv_debug_event).
   */
  debugEvent(childName: string, event: DebugEvent): void {
    let n = this.child(childName)?.node;
    while (n && !n.driver.debugEvent) n = (n.child("file") ?? n.child("image"))?.node;
    n?.driver.debugEvent?.(event);
  }

  /** Permissions this node needs on `child` (driver override, else QEMU's defaults per role). */
  childPerms(child: BdrvChild, perm: number, shared: number): [number, number] {
    if (this.driver?.childPerms) return this.driver.childPerms(child, perm, shared);
    if (this.def.childPerms) return this.def.childPerms(this, child, perm, shared);
    if (this.isFilter) return filterPerms(perm, shared);
    if (child.name === "backing") return cowPerms(perm, shared);
    return storagePerms(perm, shared, !this.readOnly);
  }
}

function isAllZero(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** The name QEMU prints for a node: its BlockBackend's name if it has one, else the node-name. */
export function deviceOrNodeName(node: BlockNode): string {
  for (const p of node.parents) {
    if (!(p.parent instanceof BlockNode) && p.parent.kind === "block-backend" && p.parent.graphName) return p.parent.graphName;
  }
  return node.nodeName;
}

/** bdrv_skip_filters: the node below any filters (what block status, allocation and image names refer to). */
/** bdrv_skip_implicit_filters: the filters jobs insert without a user-given node-name. */
export function skipImplicitFilters(node: BlockNode): BlockNode {
  let n = node;
  while (n.isFilter && n.filtered && n.nodeName.startsWith("#")) n = n.filtered.node;
  return n;
}

export function skipFilters(node: BlockNode): BlockNode {
  let n = node;
  while (n.isFilter && n.filtered) n = n.filtered.node;
  return n;
}
