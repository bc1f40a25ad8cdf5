/**
 * block-commit (QEMU's block/commit.c and the commit parts of blockdev.c).
 *
 * Intermediate commit (`top` below the active layer): a commit_top filter
 * goes above `top`, the data of top..(above base) is copied into `base`
 * chunk by chunk, then the overlay of `top` is re-pointed to `base` and its
 * header records base's file name (or `backing-file`). It completes by
 * itself.
 *
 * Active commit (`top` is the device): a mirror job of type "commit" whose
 * target is `base` (./mirror.ts); it reaches READY and needs job-complete,
 * which replaces the active layer by `base` in the graph.
 */
import { JobEdges } from "./common.ts";
import { genericError } from "../../core/error.ts";
import { isImageIoError } from "../../image/errors.ts";
import type { BlockLayer, BlockNode } from "../index.ts";
import { Perm, PERM_ALL } from "../perms.ts";
import { COMMIT_TOP, insertTopFilter } from "./mirror-top.ts";
import { chainContains, findOverlay, skipFilters, yieldToLoop, YIELD_EVERY, type JobRuntime, type OnError } from "./mirror-runtime.ts";
import type { CreatedJob } from "./mirror.ts";

export const COMMIT_BUFFER_SIZE = 512 << 10;

export interface CommitNodes {
  /** The node the job copies from (default: the device). */
  top: BlockNode;
  base: BlockNode;
  /** top is the active layer: a mirror-like job. */
  active: boolean;
}

/**
 * qmp_block_commit's checks after the device lookup, in QEMU's order.
 * `findBacking` implements bdrv_find_backing_image for the deprecated
 * file-name forms.
 */
export function checkCommitNodes(
  layer: BlockLayer,
  device: BlockNode,
  args: { topNode?: string; top?: string; baseNode?: string; base?: string; backingFile?: string },
  findBacking: (from: BlockNode, name: string) => BlockNode | null,
): CommitNodes {
  layer.checkOp(device, "commit-source");
  let top: BlockNode | null = device;
  if (args.topNode !== undefined && args.top !== undefined) throw genericError("'top-node' and 'top' are mutually exclusive");
  if (args.topNode !== undefined) {
    top = layer.lookupNode(undefined, args.topNode);
    if (!chainContains(device, top)) throw genericError(`'${args.topNode}' is not in this backing file chain`);
  } else if (args.top !== undefined) {
    if (device.driver.filename() !== args.top) top = findBacking(device, args.top);
  }
  if (!top) throw genericError(`Top image file ${args.top ?? "NULL"} not found`);
  let base: BlockNode | null;
  if (args.baseNode !== undefined && args.base !== undefined) throw genericError("'base-node' and 'base' are mutually exclusive");
  if (args.baseNode !== undefined) {
    base = layer.lookupNode(undefined, args.baseNode);
    if (!chainContains(top, base)) throw genericError(`'${args.baseNode}' is not in this backing file chain`);
  } else if (args.base !== undefined) {
    base = findBacking(top, args.base);
    if (!base) throw genericError(`Can't find '${args.base}' in the backing chain`);
  } else {
    // bdrv_find_base: the bottom of the chain (top itself when it has no backing).
    base = top;
    while (base.cowOrFiltered) base = base.cowOrFiltered;
  }
  for (let n: BlockNode | undefined = top; n && n !== base.cowOrFiltered; n = n.cowOrFiltered) layer.checkOp(n, "commit-target");
  if (top === base) throw genericError("cannot commit an image into itself");
  const active = top === device || hasWriter(top);
  if (active && args.backingFile !== undefined) throw genericError("'backing-file' specified, but 'top' is the active layer");
  return { top, base, active };
}

/** Someone holds write permission on the node (then only an active commit is safe). */
function hasWriter(node: BlockNode): boolean {
  return node.parents.some((p) => (p.perm & Perm.WRITE) !== 0);
}

export interface CommitParams {
  layer: BlockLayer;
  device: BlockNode;
  top: BlockNode;
  base: BlockNode;
  backingFile?: string;
  onError: OnError;
  filterNodeName?: string;
}

/** The intermediate commit job. */
export class CommitJob {
  private edges: JobEdges | null = null;
  private filter: BlockNode | null = null;
  private cleaned = false;
  private baseWasReadOnly = false;

  private constructor(
    readonly p: CommitParams,
    readonly job: CreatedJob,
  ) {}

  /** commit_start: the job first, then base read-write, the commit_top filter, users, blockers. */
  static async start(p: CommitParams, createJob: () => CreatedJob): Promise<CommitJob> {
    const { layer, device, top, base } = p;
    if (skipFilters(top) === skipFilters(base)) throw genericError("Invalid files for merge: top and base are the same");
    const overlay = findOverlay(device, top);
    if (!overlay) throw genericError(`Could not find overlay image for ${top.driver.filename()}:`);
    const job = createJob();
    const c = new CommitJob(p, job);
    try {
      c.baseWasReadOnly = base.readOnly;
      if (base.readOnly) await layer.reopen(base, false);
      c.filter = await insertTopFilter(layer, COMMIT_TOP, top, p.filterNodeName);
      c.attach();
    } catch (e) {
      job.discard();
      await c.abort();
      await c.clean();
      throw e;
    }
    return c;
  }

  private attach(): void {
    const { layer, device, top, base } = this.p;
    const edges = (this.edges = new JobEdges(layer, this.job.id, "commit"));
    // block_job_create's "main node": the device stops being a root while the job runs.
    edges.attach(device, "main node", 0, PERM_ALL);
    const held = [device];
    for (let n: BlockNode | undefined = top; n && n !== base; n = n.cowOrFiltered) {
      if (n === this.filter) continue;
      edges.attach(n, "intermediate node", 0, Perm.WRITE_UNCHANGED | Perm.WRITE | Perm.RESIZE);
      if (!held.includes(n)) held.push(n);
    }
    edges.attach(base, "base", Perm.CONSISTENT_READ | Perm.WRITE | Perm.RESIZE, Perm.CONSISTENT_READ | Perm.WRITE_UNCHANGED);
    held.push(base);
    edges.block(held);
  }

  /** commit_run. */
  async run(rt: JobRuntime): Promise<void> {
    const { top, base } = this.p;
    const len = top.size();
    if (base.size() < len) await base.resize(len);
    rt.setRemaining(len);
    const buf = new Uint8Array(COMMIT_BUFFER_SIZE);
    let delay = 0;
    let sinceYield = 0;
    for (let offset = 0; offset < len; ) {
      await rt.rateLimit(delay);
      delay = 0;
      await rt.pausePoint();
      if (rt.cancelled) return;
      let n = Math.min(COMMIT_BUFFER_SIZE, len - offset);
      let copy = false;
      let side: "read" | "write" = "read";
      try {
        const r = await top.isAllocatedAbove(base, offset, n);
        n = Math.max(1, Math.min(n, r.length));
        copy = r.allocated;
        if (copy) {
          const data = buf.subarray(0, n);
          await top.read(data, offset);
          side = "write";
          await base.write(data, offset);
        }
      } catch (e) {
        if (!isImageIoError(e)) throw e;
        await rt.ioError(side, this.p.onError, e);
        continue; // retry this chunk
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
  }

  /** commit_prepare → bdrv_drop_intermediate: top's overlay now uses base, header updated. */
  async prepare(): Promise<void> {
    const { layer, base } = this.p;
    const filter = this.filter!;
    const overlays = filter.parents.map((e) => e.parentNode).filter((n): n is BlockNode => !!n);
    const name = this.p.backingFile ?? skipFilters(base).driver.filename();
    JobEdges.release(this.edges, this.p.layer);
    layer.replaceNode(filter, base);
    this.filter = null;
    for (const o of overlays) {
      o.driver.backingChanged?.();
      await layer.changeBackingFile(o, name, skipFilters(base).driverName);
    }
    await layer.graph.closeIfOrphan(filter);
  }

  /** commit_abort: the filter goes away, the chain is as before. */
  async abort(): Promise<void> {
    JobEdges.release(this.edges, this.p.layer);
    if (this.filter) {
      const f = this.filter;
      this.filter = null;
      await this.p.layer.removeFilter(f);
    }
  }

  /** commit_clean: base read-only again if it was. */
  async clean(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    JobEdges.release(this.edges, this.p.layer);
    if (this.baseWasReadOnly) await this.p.layer.reopen(this.p.base, true).catch(() => {});
  }
}
