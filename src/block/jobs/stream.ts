/**
 * block-stream (QEMU's block/stream.c): copies into `device` the data that
 * lives in its backing chain above `base` (or down to and including
 * `bottom`), through a copy-on-read filter inserted above `device`. On
 * success `device`'s backing becomes `base` and the image header records
 * base's file name (or `backing-file`); with no base the node ends up
 * without backing. A cancelled or failed stream leaves the chain as it was
 * (what was copied stays: it is the same data).
 */
import { JobEdges } from "./common.ts";
import { genericError } from "../../core/error.ts";
import { isImageIoError } from "../../image/errors.ts";
import type { BlockLayer, BlockNode } from "../index.ts";
import { Perm } from "../perms.ts";
import { insertCopyOnRead } from "./copy-on-read.ts";
import { skipFilters, yieldToLoop, YIELD_EVERY, type JobRuntime, type OnError } from "./mirror-runtime.ts";
import type { CreatedJob } from "./mirror.ts";

export const STREAM_CHUNK = 512 << 10;

export interface StreamParams {
  layer: BlockLayer;
  /** The node that receives the data (top of the streamed part). */
  device: BlockNode;
  /** Keep this node and what lies below it (null: stream the whole chain). */
  base: BlockNode | null;
  /** Last node to copy from (alternative to base). */
  bottom?: BlockNode;
  /** Header backing name to record instead of base's file name. */
  backingFile?: string;
  onError: OnError;
  filterNodeName?: string;
  /** A drained section on a node (other jobs above it pause and resume), where QEMU drains. */
  drain?: (node: BlockNode) => Promise<void>;
}

/** errno name of an I/O error, when it has one. */
function errnoName(e: unknown): string | undefined {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === "string" ? n : undefined;
}

/** What an error policy does with this error: BlockErrorAction. */
export function errorAction(policy: OnError, e: unknown): "report" | "ignore" | "stop" {
  if (policy === "ignore") return "ignore";
  if (policy === "stop") return "stop";
  if ((policy === "enospc" || policy === "auto") && errnoName(e) === "ENOSPC") return "stop";
  return "report";
}

export class StreamJob {
  private edges: JobEdges | null = null;
  private cleaned = false;

  private constructor(
    readonly p: StreamParams,
    readonly filter: BlockNode,
    readonly job: CreatedJob,
    /** The lowest node data is copied from. */
    private readonly baseOverlay: BlockNode,
    /** The node the device's backing chain keeps (below the streamed part). */
    private readonly keep: BlockNode | null,
    private readonly wasReadOnly: boolean,
  ) {}

  /** stream_start: reopen read-write, copy-on-read filter, job, users and blockers. */
  static async start(p: StreamParams, createJob: (filter: BlockNode) => CreatedJob): Promise<StreamJob> {
    const { layer, device } = p;
    let baseOverlay: BlockNode;
    if (p.bottom) {
      baseOverlay = p.bottom;
    } else {
      let n = device;
      while (n.cowOrFiltered && n.cowOrFiltered !== (p.base ?? undefined)) n = n.cowOrFiltered;
      baseOverlay = n;
    }
    // Filters right above base stay with base.
    let aboveBase = baseOverlay;
    while (aboveBase.cowOrFiltered?.isFilter && aboveBase.cowOrFiltered !== p.base) aboveBase = aboveBase.cowOrFiltered;
    const keep = aboveBase.cowOrFiltered ?? null;

    const wasReadOnly = device.readOnly;
    if (wasReadOnly) await layer.reopen(device, false);
    let filter: BlockNode;
    try {
      await p.drain?.(device);
      filter = await insertCopyOnRead(layer, device, baseOverlay, p.filterNodeName);
    } catch (e) {
      if (wasReadOnly) await layer.reopen(device, true).catch(() => {});
      throw e;
    }
    let job: CreatedJob;
    try {
      job = createJob(filter);
    } catch (e) {
      await layer.removeFilter(filter).catch(() => {});
      if (wasReadOnly) await layer.reopen(device, true).catch(() => {});
      throw e;
    }
    const s = new StreamJob(p, filter, job, baseOverlay, keep, wasReadOnly);
    try {
      s.attach();
    } catch (e) {
      job.discard();
      await s.clean();
      throw e;
    }
    return s;
  }

  private attach(): void {
    const { layer, device } = this.p;
    const edges = (this.edges = new JobEdges(layer, this.job.id, "stream"));
    const basic = Perm.CONSISTENT_READ | Perm.WRITE_UNCHANGED;
    edges.attach(this.filter, "main node", 0, layer.permAll);
    edges.attach(device, "active node", 0, basic | Perm.WRITE);
    const held = [this.filter, device];
    for (let n = device.cowOrFiltered; n && n !== (this.keep ?? undefined); n = n.cowOrFiltered) {
      edges.attach(n, "intermediate node", 0, basic);
      held.push(n);
    }
    edges.block(held);
  }

  /** False when the device has nothing below it to stream (the job ends at once, 0/0). */
  get hasWork(): boolean {
    return skipFilters(this.p.device) !== this.baseOverlay;
  }

  /** stream_run. */
  async run(rt: JobRuntime): Promise<void> {
    const top = skipFilters(this.p.device);
    if (!this.hasWork) return; // nothing to stream: 0/0
    const len = top.size();
    rt.setRemaining(len);
    let firstError: unknown = null;
    let sinceYield = 0;
    let delay = 0;
    const buf = new Uint8Array(STREAM_CHUNK);
    for (let offset = 0; offset < len; ) {
      await rt.rateLimit(delay);
      delay = 0;
      await rt.pausePoint();
      if (rt.cancelled) break;
      let n = Math.min(STREAM_CHUNK, len - offset);
      let copy = false;
      try {
        const own = await top.blockStatus(offset, n);
        n = Math.max(1, Math.min(n, own.length));
        if (!own.allocated) {
          const below = top.cowOrFiltered;
          const r = below ? await below.isAllocatedAbove(this.keep, offset, n) : { allocated: false, length: n };
          n = Math.max(1, Math.min(n, r.length));
          copy = r.allocated;
        }
        if (copy) await this.filter.read(buf.subarray(0, n), offset);
      } catch (e) {
        if (!isImageIoError(e)) throw e;
        const action = errorAction(this.p.onError, e);
        await rt.ioError("read", this.p.onError, e);
        if (action === "stop") continue; // retry the same chunk once resumed
        firstError ??= e;
      }
      rt.workDone(n);
      if (copy) delay = n;
      offset += n;
      sinceYield += n;
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await yieldToLoop();
      }
    }
    if (firstError) throw firstError;
  }

  /** stream_prepare: the device's backing becomes what was kept, header updated. */
  async prepare(): Promise<void> {
    const { layer } = this.p;
    const top = skipFilters(this.p.device);
    if (!top.backing) {
      await this.p.drain?.(top);
      await this.p.drain?.(top);
      return;
    }
    const base = this.keep;
    const unfilteredBase = base ? skipFilters(base) : null;
    const name = unfilteredBase ? (this.p.backingFile ?? unfilteredBase.driver.filename()) : null;
    const format = unfilteredBase ? unfilteredBase.driverName : null;
    // QEMU drops the filter, then re-points the backing in a second drained section.
    await this.p.drain?.(top);
    await this.p.drain?.(top);
    JobEdges.release(this.edges, this.p.layer);
    await layer.setBacking(top, base);
    await layer.changeBackingFile(top, name, format);
  }


  /** stream_clean: filter out, read-only again if it was. */
  async clean(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await this.p.drain?.(this.p.device);
    await this.p.drain?.(this.p.device);
    JobEdges.release(this.edges, this.p.layer);
    await this.p.layer.removeFilter(this.filter);
    if (this.wasReadOnly) await this.p.layer.reopen(this.p.device, true).catch(() => {});
  }
}

/** Validates block-stream's node arguments in QEMU's order (qmp_block_stream). */
export function checkStreamNodes(
  layer: BlockLayer,
  device: BlockNode,
  deviceName: string,
  args: { base?: BlockNode | null; baseNode?: string; bottom?: string },
): { base: BlockNode | null; bottom?: BlockNode } {
  let base = args.base ?? null;
  if (args.baseNode !== undefined) {
    base = layer.lookupNode(undefined, args.baseNode);
    let inChain = false;
    for (let n = device.cowOrFiltered; n; n = n.cowOrFiltered) if (n === base) inChain = true;
    if (base === device || !inChain) throw genericError(`Node '${args.baseNode}' is not a backing image of '${deviceName}'`);
  }
  let bottom: BlockNode | undefined;
  if (args.bottom !== undefined) {
    bottom = layer.lookupNode(undefined, args.bottom);
    if (bottom.isFilter) throw genericError(`Node '${args.bottom}' is a filter, use a non-filter node as 'bottom'`);
    let inChain = false;
    for (let n: BlockNode | undefined = device; n; n = n.cowOrFiltered) if (n === bottom) inChain = true;
    if (!inChain) throw genericError(`Node '${args.bottom}' is not in a chain starting from '${deviceName}'`);
  }
  return { base, bottom };
}
