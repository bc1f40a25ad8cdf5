/**
 * Pieces every block job shares (backup here; mirror, stream and commit
 * may import them too):
 * - `attachJobNodes`: the job as a parent of the nodes it holds
 *   (block_job_add_bdrv: an edge per node plus an op blocker "block device
 *   is in use by block job: <type>"),
 * - `jobsAbove`: which jobs a drained section of a node pauses (QEMU pauses
 *   every job that is a parent, directly or through parent nodes),
 * - `BlockJobPort`: what block-job code needs from the job layer, so job
 *   bodies stay independent of its API (the adapter is ./job-port.ts).
 */
import { genericError } from "../../core/error.ts";
import type { BdrvChild, BlockLayer, BlockNode, ExternalParent } from "../index.ts";
import { PERM_ALL } from "../perms.ts";
import type { BackupRuntime } from "./backup-run.ts";

/** The job side of a job → node edge. */
export class BlockJobParent implements ExternalParent {
  readonly kind = "block-job" as const;
  constructor(
    readonly jobId: string,
    readonly jobType: string,
  ) {}
  get graphName(): string {
    return this.jobId;
  }
  describe(): string {
    return `${this.jobType} job '${this.jobId}'`;
  }
}

export interface HeldNodes {
  readonly parent: BlockJobParent;
  /** Drops edges and blockers; idempotent. */
  release(): Promise<void>;
}

/** Holds `nodes` for a job: an edge (no permissions needed, all shared) and the op blocker on each. */
export function attachJobNodes(
  layer: BlockLayer,
  jobId: string,
  jobType: string,
  nodes: readonly { node: BlockNode; role: string; perm?: number; shared?: number }[],
): HeldNodes {
  const parent = new BlockJobParent(jobId, jobType);
  const edges: BdrvChild[] = [];
  let unblock: () => void = () => {};
  try {
    for (const n of nodes) edges.push(layer.attachUser(parent, n.node, n.role, n.perm ?? 0, n.shared ?? PERM_ALL));
    unblock = layer.blockForJob(nodes.map((n) => n.node), jobType);
  } catch (e) {
    for (const edge of edges) void layer.detachUser(edge);
    throw e;
  }
  let released = false;
  return {
    parent,
    async release() {
      if (released) return;
      released = true;
      unblock();
      for (const edge of edges.reverse()) await layer.detachUser(edge);
    },
  };
}

/**
 * The edges and op blockers of a job whose permissions differ per node
 * (stream, commit), released together and at once: the edges are unlinked and
 * the graph's permissions loosened in one step, as the jobs' clean paths need.
 */
export class JobEdges {
  private edges: BdrvChild[] = [];
  private unblock: (() => void) | null = null;
  readonly parent: BlockJobParent;

  constructor(
    private readonly layer: BlockLayer,
    jobId: string,
    jobType: string,
  ) {
    this.parent = new BlockJobParent(jobId, jobType);
  }

  attach(node: BlockNode, role: string, perm: number, shared: number): void {
    this.edges.push(this.layer.attachUser(this.parent, node, role, perm, shared));
  }

  /** Puts the op blocker of this job's type on every node of `nodes`. */
  block(nodes: readonly BlockNode[]): void {
    this.unblock = this.layer.blockForJob(nodes, this.parent.jobType);
  }

  /** Idempotent. */
  release(): void {
    this.unblock?.();
    this.unblock = null;
    for (const e of this.edges.splice(0)) this.layer.graph.unlink(e);
    this.layer.graph.refreshPermsRelaxed();
  }

  /** Releases `edges`, or for a job that never attached any, still loosens the graph's permissions. */
  static release(edges: JobEdges | null, layer: BlockLayer): void {
    if (edges) edges.release();
    else layer.graph.refreshPermsRelaxed();
  }
}

/** Ids of the jobs a drained section on `node` reaches (upwards through parent nodes). */
export function jobsAbove(node: BlockNode): string[] {
  const ids: string[] = [];
  const seen = new Set<BlockNode>();
  const visit = (n: BlockNode) => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const e of n.parents) {
      if (e.parent instanceof BlockJobParent) {
        if (!ids.includes(e.parent.jobId)) ids.push(e.parent.jobId);
      } else if (e.parentNode) visit(e.parentNode);
    }
  };
  visit(node);
  return ids;
}

export type JobRuntime = BackupRuntime;

export interface BlockJobSpec {
  id: string;
  type: "backup" | "mirror" | "stream" | "commit";
  /** Exact as given (queries echo it); the rate limiter reads it as a number. */
  speed: number | bigint;
  autoFinalize: boolean;
  autoDismiss: boolean;
  /** Per-transaction storage when the job joins a grouped transaction. */
  group?: Map<string, unknown>;
  /** Progress total when the job starts. */
  initialTotal: number;
  run(rt: JobRuntime): Promise<void>;
  prepare?(): void | Promise<void>;
  commit?(): void | Promise<void>;
  abort?(): void | Promise<void>;
  clean?(): void | Promise<void>;
}

export interface CreatedJob {
  readonly id: string;
  /** The creating command committed: run. */
  start(): void;
  /** The creating transaction failed: created → aborting → concluded → null, callbacks abort + clean. */
  dropUnstarted(): Promise<void>;
}

/** A drained section on one node (bdrv_drained_begin/end): jobs above it are paused meanwhile. */
export interface DrainedSection {
  /** A job created inside the section is paused by it too. */
  adopt(job: CreatedJob): void;
  /**
   * bdrv_drained_begin's poll: resolves once every paused job is idle or has
   * finished its run (a cancelled job woken by the pause winds down here).
   */
  settled(): Promise<void>;
  /** Resumes the adopted jobs first, then the others (newest first), as QEMU's drained_end. */
  end(): void;
}

export interface BlockJobPort {
  /** Creates the job (JOB_STATUS_CHANGE created); throws QEMU's id / speed errors. */
  create(spec: BlockJobSpec): CreatedJob;
  /** Pauses every job above `node` (but `exceptJobId`) until end(). */
  drain(node: BlockNode, exceptJobId?: string): DrainedSection;
}

/**
 * Opens a job's filter node (`options` names its driver and children) and
 * inserts it above `node`. Open errors read as QEMU words them for implicit
 * filters: "Could not create node: ...". A failed insert closes the filter again.
 */
export async function insertJobFilter(layer: BlockLayer, node: BlockNode, options: Record<string, unknown>): Promise<BlockNode> {
  let filter: BlockNode;
  try {
    filter = await layer.openNode(options, { allowInternal: true });
  } catch (e) {
    const desc = (e as { desc?: string }).desc ?? String(e);
    throw genericError(`Could not create node: ${desc}`);
  }
  try {
    layer.insertFilter(filter, node);
  } catch (e) {
    await layer.removeFilter(filter).catch(() => {});
    throw e;
  }
  return filter;
}
