/**
 * The mirror job (QEMU's block/mirror.c), also the engine of active commit.
 *
 * Lifecycle, split the way the job layer calls it:
 *   MirrorJob.start(...)   graph part of mirror_start_job: checks, mirror_top
 *                          filter above the source, then `createJob` (job id
 *                          and speed errors happen there, as in QEMU), the
 *                          job's users and op blockers, the dirty bitmap.
 *   run(rt)                mirror_run: size check, dirty bitmap init, copy
 *                          loop until converged → READY, then keeps the
 *                          target in sync until complete or cancel.
 *   complete()             job-complete: pivot wanted (replaces checked now).
 *   cancel(force)          soft cancel in ready = finish without pivot.
 *   exit(abort)            mirror_exit_common: backing of the new target,
 *                          pivot, filter removal. prepare → exit(false),
 *                          abort → exit(true).
 *
 * Dirty tracking: an anonymous DirtyBitmap on the source node (like 7.2,
 * so writes straight to the source node are tracked as well as writes
 * through the device). Bits are cleared before a chunk is read, so a write
 * landing while the chunk is copied marks it dirty again.
 */
import { BlockJobParent } from "./common.ts";
import { genericError } from "../../core/error.ts";
import { BlockBackend, DirtyBitmap, type BdrvChild, type BlockLayer, type BlockNode } from "../index.ts";
import { Perm, PERM_ALL } from "../perms.ts";
import { filterHooks, insertTopFilter, MIRROR_TOP, refreshFilterPerms, type WriteKind } from "./mirror-top.ts";
import {
  chainContains,
  chainStatus,
  skipFilters,
  SLICE_MS,
  yieldToLoop,
  type JobRuntime,
  type OnError,
} from "./mirror-runtime.ts";

export type MirrorMode = "full" | "top" | "none";
/** What the target's backing becomes at the end (BlockMirrorBackingMode). */
export type BackingMode = "leave" | "source-chain" | "open-chain";
export type CopyMode = "background" | "write-blocking";

export interface MirrorParams {
  layer: BlockLayer;
  /** "mirror" or "commit" (active commit). */
  type: "mirror" | "commit";
  source: BlockNode;
  target: BlockNode;
  /** Node to swap for the target at completion instead of the source. */
  replaces?: string;
  mode: MirrorMode;
  /** Copy only what lies above this node (sync top: the source's backing; commit: the base). */
  base: BlockNode | null;
  /** 0 = default (target cluster size in [4 KiB, 64 KiB]). */
  granularity: number;
  /** 0 = default 16 MiB; negative is an error. */
  bufSize: number;
  zeroTarget: boolean;
  backingMode: BackingMode;
  onSourceError: OnError;
  onTargetError: OnError;
  unmap: boolean;
  filterNodeName?: string;
  copyMode: CopyMode;
}

const DEFAULT_BUF_SIZE = 16 << 20;
const MAX_IO_BYTES = 1 << 20;
const MAX_IN_FLIGHT = 16;
/** Mirror requests are up to 1 MiB: yield after each so queries stay fast (see README numbers). */
const MIRROR_YIELD_BYTES = 1 << 20;

/**
 * The mirror's dirty bitmap with an O(1) dirty count (QEMU's hbitmap keeps
 * one too): the copy loop reads the count on every pass, which must not cost
 * a scan of a large disk's bitmap.
 */
class CountingBitmap extends DirtyBitmap {
  private dirtyGranules = 0;

  override set(offset: number, length: number): void {
    const g = this.granularity;
    const first = Math.max(0, Math.floor(offset / g));
    const end = Math.min(Math.ceil(this.size / g), Math.ceil((offset + length) / g));
    for (let i = first; i < end; i++) if (!this.get(i * g)) this.dirtyGranules++;
    super.set(offset, length);
  }

  override reset(offset: number, length: number): void {
    // Same inward rounding as DirtyBitmap.reset.
    const g = this.granularity;
    const granules = Math.ceil(this.size / g);
    const first = Math.ceil(offset / g);
    const end = offset + length >= this.size ? granules : Math.floor((offset + length) / g);
    for (let i = first; i < end; i++) if (this.get(i * g)) this.dirtyGranules--;
    super.reset(offset, length);
  }

  override resize(length: number): void {
    super.resize(length);
    this.dirtyGranules = 0;
    for (const [, len] of this.dirtyRanges()) this.dirtyGranules += Math.ceil(len / this.granularity);
  }

  override count(): number {
    return this.dirtyGranules * this.granularity;
  }
}

/** bdrv_get_default_bitmap_granularity: the target's cluster size within [4 KiB, 64 KiB]. */
export function defaultGranularity(target: BlockNode): number {
  const cs = target.clusterSize;
  if (!cs) return 65536;
  return Math.min(65536, Math.max(4096, cs));
}

/** bdrv_can_write_zeroes_with_unmap: discard=unmap and a driver that can unmap on zero writes. */
function canWriteZeroesWithUnmap(node: BlockNode): boolean {
  if (node.common.discard !== "unmap") return false;
  const n = skipFilters(node);
  if (n.driverName === "qcow2") return n.driver.imageInfo?.()["format-specific"]?.data.compat !== "0.10";
  return n.driverName === "raw" || n.driverName === "file";
}

/** A handle on the created job: what start() needs back from the job layer. */
export interface CreatedJob {
  readonly id: string;
  /** Undo a job that was created but will never start (created → null). */
  discard(): void;
}

export class MirrorJob {
  readonly filter: BlockNode;
  readonly granularity: number;
  readonly bufSize: number;
  private readonly layer: BlockLayer;
  private readonly bitmap: CountingBitmap;
  private readonly users: BdrvChild[] = [];
  private targetUser: BdrvChild | null = null;
  private unblock: (() => void) | null = null;
  private replaceUnblock: (() => void) | null = null;
  private toReplace: BlockNode | null = null;
  private shouldComplete = false;
  private synced = false;
  /** The job has finished initialising; guest writes may go to the target (write-blocking). */
  private active = false;
  private initialZeroing = false;
  private iterPos = 0;
  private sinceYield = 0;
  private exited = false;
  private rt: JobRuntime | null = null;
  private readonly targetWasReadOnly: boolean;

  private constructor(
    readonly p: MirrorParams,
    filter: BlockNode,
    readonly job: CreatedJob,
    granularity: number,
    bufSize: number,
    targetWasReadOnly: boolean,
  ) {
    this.layer = p.layer;
    this.filter = filter;
    this.granularity = granularity;
    this.bufSize = bufSize;
    this.targetWasReadOnly = targetWasReadOnly;
    this.bitmap = new CountingBitmap("", granularity, p.source.size());
  }

  get source(): BlockNode {
    return this.p.source;
  }

  get target(): BlockNode {
    return this.p.target;
  }

  /** Whether the target is in the source's chain (active commit). */
  get isCommit(): boolean {
    return this.p.type === "commit";
  }

  /**
   * mirror_start_job's checks and graph setup, in QEMU's order. `createJob`
   * runs once the filter is in place (job id / speed errors come from it).
   */
  static async start(p: MirrorParams, createJob: (filter: BlockNode) => CreatedJob): Promise<MirrorJob> {
    const granularity = p.granularity || defaultGranularity(p.target);
    if (p.bufSize < 0) throw genericError("Invalid parameter 'buf-size'");
    let bufSize = p.bufSize || DEFAULT_BUF_SIZE;
    bufSize = Math.ceil(bufSize / granularity) * granularity;
    if (skipFilters(p.source) === skipFilters(p.target)) throw genericError("Can't mirror node into itself");
    const targetIsBacking = chainContains(p.source, p.target);

    // Active commit writes the base: make it writable first (commit_active_start).
    const targetWasReadOnly = p.target.readOnly;
    if (targetIsBacking && targetWasReadOnly) await p.layer.reopen(p.target, false);

    let filter: BlockNode;
    try {
      filter = await insertTopFilter(p.layer, MIRROR_TOP, p.source, p.filterNodeName);
    } catch (e) {
      if (targetIsBacking && targetWasReadOnly) await p.layer.reopen(p.target, true).catch(() => {});
      throw e;
    }
    let job: CreatedJob;
    try {
      job = createJob(filter);
    } catch (e) {
      await p.layer.removeFilter(filter).catch(() => {});
      if (targetIsBacking && targetWasReadOnly) await p.layer.reopen(p.target, true).catch(() => {});
      throw e;
    }
    const m = new MirrorJob(p, filter, job, granularity, bufSize, targetWasReadOnly);
    try {
      m.attach(targetIsBacking);
    } catch (e) {
      job.discard();
      await m.detach();
      await p.layer.removeFilter(filter).catch(() => {});
      if (targetIsBacking && targetWasReadOnly) await p.layer.reopen(p.target, true).catch(() => {});
      throw e;
    }
    return m;
  }

  /** The job's users (permissions), op blockers, dirty bitmap and write hook. */
  private attach(targetIsBacking: boolean): void {
    const { layer, source, target } = this.p;
    const parent = new BlockJobParent(this.job.id, this.p.type);
    this.users.push(layer.attachUser(parent, this.filter, "main node", Perm.CONSISTENT_READ, Perm.CONSISTENT_READ | Perm.WRITE_UNCHANGED | Perm.WRITE));
    let targetPerm: number = Perm.WRITE;
    let targetShared: number = Perm.WRITE_UNCHANGED;
    if (targetIsBacking) {
      if (source.size() > target.size()) targetPerm |= Perm.RESIZE;
      targetShared |= Perm.CONSISTENT_READ | Perm.WRITE;
    } else if (chainContains(source, skipFilters(target))) {
      throw genericError("Cannot mirror to a filter on top of a node in the source's backing chain");
    }
    this.targetUser = layer.attachUser(layer.temporaryBackend() as BlockBackend, target, "root", targetPerm, targetShared);
    this.users.push(layer.attachUser(parent, source, "source", 0, Perm.WRITE_UNCHANGED | Perm.WRITE | Perm.CONSISTENT_READ));
    // block_job_add_bdrv(target): no permissions, but drains of the target reach the job.
    this.users.push(layer.attachUser(parent, target, "target", 0, PERM_ALL));
    const held = [this.filter, source, target];
    if (targetIsBacking) {
      for (let n = source.cowOrFiltered; n && n !== target; n = n.cowOrFiltered) held.push(n);
    }
    this.unblock = layer.blockForJob(held, this.p.type);
    source.bitmaps.push(this.bitmap);
    filterHooks(this.filter).interceptWrite = (kind, off, data, len, forward) => this.activeWrite(kind, off, data, len, forward);
  }

  /** Drops the job's users (they must not follow the pivot) and its blockers. */
  private async detach(): Promise<void> {
    this.unblock?.();
    this.unblock = null;
    const i = this.p.source.bitmaps.indexOf(this.bitmap);
    if (i >= 0) this.p.source.bitmaps.splice(i, 1);
    for (const u of this.users.splice(0)) await this.layer.detachUser(u);
    if (this.targetUser) {
      const u = this.targetUser;
      this.targetUser = null;
      this.layer.graph.unlink(u);
      this.layer.graph.refreshPermsRelaxed();
    }
  }

  // ---- run ----------------------------------------------------------------

  async run(rt: JobRuntime): Promise<void> {
    this.rt = rt;
    if (rt.cancelled) return;
    const { source, target } = this.p;
    const length = source.size();
    if (this.isCommit) {
      if (length > target.size()) await target.resize(length);
    } else if (length !== target.size()) {
      throw genericError("Source and target image have different sizes");
    }
    if (length === 0) {
      rt.setReady();
      this.synced = true;
      while (!rt.cancelRequested && !this.shouldComplete) await rt.sleep(SLICE_MS);
      return;
    }
    if (this.bitmap.size !== length) this.bitmap.resize(length);
    if (this.p.mode !== "none") {
      await this.dirtyInit(rt, length);
      if (rt.cancelled) return;
    }
    this.active = true;
    for (;;) {
      await rt.pausePoint();
      if (rt.cancelled) return;
      let cnt = this.bitmap.count();
      rt.setRemaining(cnt);
      if (cnt > 0) {
        const issued = await this.iteration(rt, length);
        await rt.rateLimit(issued);
        continue;
      }
      let complete = false;
      if (!rt.ready) {
        if (!(await this.flushTarget(rt))) continue;
        this.synced = true;
        rt.setReady();
      }
      complete = this.shouldComplete || rt.cancelRequested;
      cnt = this.bitmap.count();
      if (cnt === 0 && complete) {
        // Final sync: nothing dirty and the target is durable.
        if (!(await this.flushTarget(rt))) continue;
        if (this.bitmap.count() > 0) continue;
        return;
      }
      await rt.sleep(cnt === 0 && !complete ? SLICE_MS : 0);
      if (rt.cancelled) return;
    }
  }

  /** Lets monitors run between requests: at least every MIRROR_YIELD_BYTES copied. */
  private async maybeYield(bytes: number): Promise<void> {
    this.sinceYield += bytes;
    if (this.sinceYield >= MIRROR_YIELD_BYTES) {
      this.sinceYield = 0;
      await yieldToLoop();
    }
  }

  /** mirror_dirty_init: what must be copied at start. */
  private async dirtyInit(rt: JobRuntime, length: number): Promise<void> {
    const { source, target, base } = this.p;
    if (this.p.zeroTarget) {
      if (!canWriteZeroesWithUnmap(target)) {
        this.bitmap.set(0, length);
        return;
      }
      this.initialZeroing = true;
      const step = 64 << 20;
      for (let off = 0; off < length; off += step) {
        await rt.pausePoint();
        if (rt.cancelled) return;
        const n = Math.min(step, length - off);
        await this.withRetry(rt, "write", () => target.writeZeroes(off, n, { unmap: true }));
        await yieldToLoop();
      }
      this.initialZeroing = false;
    }
    for (let off = 0; off < length; ) {
      if (rt.cancelled) return;
      const r = await source.isAllocatedAbove(base, off, length - off);
      const n = Math.max(1, Math.min(r.length, length - off));
      if (r.allocated) this.bitmap.set(off, n);
      off += n;
      await this.maybeYield(n);
    }
  }

  /** Runs `op` under the error policy of its side until it succeeds; false = gave up (job fails). */
  private async withRetry(rt: JobRuntime, side: "read" | "write", op: () => Promise<void>): Promise<void> {
    for (;;) {
      try {
        await op();
        return;
      } catch (e) {
        await rt.ioError(side, side === "read" ? this.p.onSourceError : this.p.onTargetError, e);
        await rt.pausePoint();
        if (rt.cancelled) throw e;
      }
    }
  }

  private async flushTarget(rt: JobRuntime): Promise<boolean> {
    try {
      await this.p.target.flush();
      return true;
    } catch (e) {
      await rt.ioError("write", this.p.onTargetError, e);
      return false;
    }
  }

  /**
   * mirror_iteration: copies the next run of dirty granules (at most
   * buf-size), choosing copy / write-zeroes / discard per the source's
   * status. Returns the bytes to account for rate limiting.
   */
  private async iteration(rt: JobRuntime, length: number): Promise<number> {
    const g = this.granularity;
    let offset = this.bitmap.nextDirty(this.iterPos);
    if (offset < 0) offset = this.bitmap.nextDirty(0);
    if (offset < 0) return 0;
    offset = Math.floor(offset / g) * g;
    let chunks = 1;
    while (chunks * g < this.bufSize) {
      const next = offset + chunks * g;
      if (next >= length || !this.bitmap.get(next)) break;
      chunks++;
    }
    const end = Math.min(length, offset + chunks * g);
    this.bitmap.reset(offset, end - offset);
    this.iterPos = end;
    const maxIo = Math.max(this.bufSize / MAX_IN_FLIGHT, MAX_IO_BYTES);
    const zeroesCheap = canWriteZeroesWithUnmap(this.p.target);
    const targetCluster = this.p.target.clusterSize;
    let accounted = 0;
    let pos = offset;
    while (pos < end) {
      let method: "copy" | "zero" | "discard" = "copy";
      let io: number;
      let st: { data: boolean; zero: boolean; length: number } | null = null;
      try {
        st = await chainStatus(this.p.source, pos, end - pos);
      } catch {
        st = null;
      }
      if (!st) io = Math.min(end - pos, maxIo);
      else io = st.data ? Math.min(st.length, maxIo) : st.length;
      io -= io % g;
      if (io < g) {
        io = g;
      } else if (st && !st.data) {
        const aligned = !targetCluster || (pos % targetCluster === 0 && (pos + io) % targetCluster === 0);
        if (aligned) method = st.zero ? "zero" : "discard";
      }
      io = Math.min(io, end - pos);
      const ok = await this.perform(rt, pos, io, method);
      if (!ok) {
        // Left dirty for a later pass (ignore/stop), or the job is going away.
        this.bitmap.set(pos, end - pos);
        return accounted;
      }
      accounted += method !== "copy" && zeroesCheap ? 0 : io;
      pos += io;
      await this.maybeYield(io);
    }
    return accounted;
  }

  /** One copy/zero/discard operation; false when it failed and was left dirty. */
  private async perform(rt: JobRuntime, offset: number, bytes: number, method: "copy" | "zero" | "discard"): Promise<boolean> {
    const { source, target } = this.p;
    let data: Uint8Array | null = null;
    if (method === "copy") {
      data = new Uint8Array(bytes);
      try {
        await source.read(data, offset);
      } catch (e) {
        this.bitmap.set(offset, bytes);
        await rt.ioError("read", this.p.onSourceError, e);
        return false;
      }
    }
    try {
      if (method === "copy") await target.write(data!, offset);
      else if (method === "zero") await target.writeZeroes(offset, bytes, { unmap: this.p.unmap });
      else await target.discard(offset, bytes);
    } catch (e) {
      this.bitmap.set(offset, bytes);
      await rt.ioError("write", this.p.onTargetError, e);
      return false;
    }
    if (!this.initialZeroing) rt.workDone(bytes);
    return true;
  }

  /**
   * Write-blocking copy mode: a guest write through the filter also goes to
   * the target before it completes. Granules it touches that were clean
   * stay clean (both sides got the same bytes); progress grows by exactly
   * the bytes written.
   */
  private async activeWrite(kind: WriteKind, offset: number, data: Uint8Array | null, length: number, forward: () => Promise<void>): Promise<void> {
    const rt = this.rt;
    if (this.p.copyMode !== "write-blocking" || !this.active || !rt || rt.cancelled || this.exited) return forward();
    const g = this.granularity;
    const first = Math.floor(offset / g);
    const last = Math.ceil((offset + length) / g);
    const wasDirty: boolean[] = [];
    for (let i = first; i < last; i++) wasDirty.push(this.bitmap.get(i * g));
    await forward();
    const { target } = this.p;
    if (kind === "write") await target.write(data!, offset);
    else if (kind === "zero") await target.writeZeroes(offset, length, { unmap: this.p.unmap });
    else await target.discard(offset, length);
    wasDirty.forEach((dirty, k) => {
      if (!dirty) this.bitmap.reset((first + k) * g, g);
    });
    rt.increaseRemaining(length);
    rt.workDone(length);
  }

  // ---- verbs --------------------------------------------------------------

  /** mirror_complete (job-complete / block-job-complete). */
  complete(): void {
    if (!this.synced) throw genericError(`The active block job '${this.job.id}' cannot be completed`);
    if (this.p.replaces !== undefined && !this.toReplace) {
      const n = this.layer.findNode(this.p.replaces);
      if (!n) throw genericError(`Node name '${this.p.replaces}' not found`);
      this.toReplace = n;
      this.replaceUnblock = n.blockOps("block device is in use by block-job-complete");
    }
    this.shouldComplete = true;
  }

  /** mirror_cancel: before READY every cancel is a force cancel. */
  cancel(force: boolean): boolean {
    return force || !this.rt?.ready;
  }

  /** drive-mirror mode=existing: the target's own backing file is opened at completion. */
  private async openTargetBacking(): Promise<void> {
    const t = skipFilters(this.p.target);
    if (t.backing) return;
    const name = t.driver.headerBackingFile?.();
    if (!name) return;
    const { resolveBackingPath } = await import("../paths.ts");
    const full = resolveBackingPath(t.file?.node.driver.filename() ?? t.driver.filename(), name);
    const node = await this.layer.openNode(
      { driver: "qcow2", file: { driver: "file", filename: full }, "read-only": true },
      {},
    ).catch(async () => this.layer.openNode({ driver: "raw", file: { driver: "file", filename: full }, "read-only": true }));
    await this.layer.setBacking(t, node);
  }

  // ---- exit ---------------------------------------------------------------

  /** mirror_exit_common: prepare → exit(false), abort → exit(true). */
  async exit(abort: boolean): Promise<void> {
    if (this.exited) return;
    this.exited = true;
    const { layer, source, target } = this.p;
    const hooks = filterHooks(this.filter);
    await this.detach();
    hooks.stopped = true;
    hooks.interceptWrite = undefined;
    refreshFilterPerms(layer);
    let failure: unknown = null;
    try {
      if (!abort && this.p.backingMode === "open-chain") await this.openTargetBacking();
      if (!abort && this.p.backingMode === "source-chain") {
        const backing = this.p.mode === "none" ? source : this.p.base;
        const t = skipFilters(target);
        if ((t.backing?.node ?? null) !== backing) await layer.setBacking(t, backing);
      }
      if (this.shouldComplete && !abort) {
        const toReplace = this.toReplace ?? source;
        if (toReplace.readOnly !== target.readOnly) await layer.reopen(target, toReplace.readOnly);
        layer.replaceNode(toReplace, target);
      }
    } catch (e) {
      failure = e;
    }
    this.replaceUnblock?.();
    this.replaceUnblock = null;
    await layer.removeFilter(this.filter);
    if (abort && this.isCommit && this.targetWasReadOnly && !target.readOnly) await layer.reopen(target, true).catch(() => {});
    await layer.graph.closeIfOrphan(source);
    await layer.graph.closeIfOrphan(target);
    if (failure) throw failure;
  }
}
