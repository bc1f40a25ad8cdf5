/**
 * blockdev-backup and drive-backup as transaction actions: prepare checks
 * and sets up (bitmap, filter, op blockers) and creates the job; commit
 * starts it; abort drops a job that never ran (created → aborting →
 * concluded → null, no BLOCK_JOB_* events) or undoes the setup.
 */
import type { BlockLayer, BlockNode } from "../index.ts";
import type { BackupArgs, BlockdevBackupArgs, DriveBackupArgs } from "../../commands/block-jobs-schema.ts";
import { setupBackup, type BackupSetup } from "./backup-setup.ts";
import { runBackup } from "./backup-run.ts";
import { openDriveBackupTarget } from "./drive-backup-target.ts";
import { attachJobNodes, type BlockJobPort, type CreatedJob, type DrainedSection } from "./common.ts";
import type { TxnAction, TxnState } from "./transaction.ts";

export interface BackupContext {
  readonly layer: BlockLayer;
  readonly jobs: BlockJobPort;
}

/** Creates the job for a finished setup; undoes the setup when the job layer refuses. */
async function createBackupJob(ctx: BackupContext, setup: BackupSetup, args: BackupArgs, txn: TxnState): Promise<CreatedJob> {
  const nodes = attachJobNodes(ctx.layer, args["job-id"] ?? setup.defaultJobId, "backup", [
    { node: setup.filter, role: "main node" },
    { node: setup.target, role: "target" },
  ]);
  try {
    return ctx.jobs.create({
      id: args["job-id"] ?? setup.defaultJobId,
      type: "backup",
      speed: args.speed ?? 0,
      autoFinalize: args["auto-finalize"] ?? true,
      autoDismiss: args["auto-dismiss"] ?? true,
      group: txn.mode === "grouped" ? txn.shared : undefined,
      run: (rt) =>
        runBackup(rt, setup.copy, { sync: setup.sync.sync, onSourceError: setup.onSourceError, onTargetError: setup.onTargetError }),
      initialTotal: setup.sync.sync === "none" ? setup.source.size() : setup.copy.remainingBytes(),
      commit: () => setup.releaseBitmap(true),
      abort: () => setup.releaseBitmap(false),
      clean: async () => {
        // Dropping the filter is a drained section: other jobs above it pause meanwhile.
        const drained = ctx.jobs.drain(setup.filter, nodes.parent.jobId);
        try {
          await drained.settled();
          await nodes.release();
          await setup.removeFilter();
        } finally {
          drained.end();
        }
      },
    });
  } catch (e) {
    await nodes.release();
    setup.releaseBitmap(false);
    await setup.removeFilter();
    throw e;
  }
}

/**
 * `resolve` finds the nodes in the command's own order and calls
 * `drainedBegin(source)` where QEMU begins the source's drained section, so
 * a refusal after that point still shows the jobs' paused/running pair.
 */
function backupAction(
  ctx: BackupContext,
  txn: TxnState,
  resolve: (drainedBegin: (source: BlockNode) => void) => Promise<{ source: BlockNode; target: BlockNode; args: BackupArgs }>,
): TxnAction {
  let job: CreatedJob | null = null;
  let drained: DrainedSection | null = null;
  return {
    async prepare() {
      // Paired with clean(): jobs using the source stay paused until the command ends.
      const { source, target, args } = await resolve((node) => (drained = ctx.jobs.drain(node)));
      const setup = await setupBackup(ctx.layer, source, target, args);
      job = await createBackupJob(ctx, setup, args, txn);
      drained!.adopt(job);
    },
    commit() {
      job?.start();
    },
    async abort() {
      await job?.dropUnstarted();
      job = null;
    },
    clean() {
      drained?.end();
      drained = null;
    },
  };
}

export function blockdevBackupAction(args: BlockdevBackupArgs, ctx: BackupContext, txn: TxnState): TxnAction {
  return backupAction(ctx, txn, async (drainedBegin) => {
    const source = ctx.layer.lookupDeviceOrNode(args.device);
    const target = ctx.layer.lookupDeviceOrNode(args.target);
    drainedBegin(source);
    return { source, target, args };
  });
}

export function driveBackupAction(args: DriveBackupArgs, ctx: BackupContext, txn: TxnState): TxnAction {
  let created: BlockNode | null = null;
  const action = backupAction(ctx, txn, async (drainedBegin) => {
    const source = ctx.layer.lookupDeviceOrNode(args.device);
    drainedBegin(source);
    ctx.layer.checkOp(source, "backup-source");
    const t = await openDriveBackupTarget(ctx.layer, { source, target: args.target, sync: args.sync, format: args.format, mode: args.mode });
    created = t.node;
    return { source, target: t.node, args: { ...args, sync: t.sync } };
  });
  return {
    ...action,
    async prepare() {
      try {
        await action.prepare();
      } catch (e) {
        // The new target has no user unless a job took it.
        if (created) await ctx.layer.graph.closeIfOrphan(created);
        throw e;
      }
    },
  };
}
