/**
 * The adapter between block-job code (./common.ts BlockJobPort, the
 * BackupRuntime of ./backup-run.ts) and the job layer (src/job), plus the
 * blockdev-create job and the drained sections of transaction commands.
 */
import type { Emulator } from "../../emulator.ts";
import { JobFailure, type Job, type JobDriver, type JobTxn } from "../../job/index.ts";
import type { BackupRuntime } from "./backup-run.ts";
import { jobsAbove, type BlockJobPort, type CreatedJob, type DrainedSection } from "./common.ts";
import { runBlockdevCreate } from "./create.ts";
import type { TxnHooks } from "./transaction.ts";

/** The runtime a block job body sees, over one Job. */
export function jobRuntime(job: Job): BackupRuntime {
  return {
    pausePoint: () => job.pausePoint(),
    get cancelled() {
      return job.isCancelled();
    },
    whenCancelled: () => job.whenCancelled(),
    workDone: (n) => job.progress.workDone(n),
    setRemaining: (n) => job.progress.setRemaining(n),
    async rateLimit(n) {
      job.rateLimitProcessed(n);
      await job.rateLimitSleep();
    },
    async ioError(op, policy, failure) {
      const action = job.handleIoError(op, policy, failure.errno);
      if (action === "report") throw JobFailure.fromErrno(failure.errno);
      // stop: the job is user-paused now; retry once resumed. ignore: retry.
      await job.pausePoint();
    },
  };
}

const GROUP_TXN = "jobTxn";

/** Jobs behind CreatedJob handles, for drained sections. */
const jobOf = new WeakMap<CreatedJob, Job>();

const alive = (job: Job) => job.status !== "null" && !job.isCompleted();

export function blockJobPort(emu: Emulator): BlockJobPort {
  return {
    create(spec): CreatedJob {
      let txn: JobTxn | undefined;
      if (spec.group) {
        txn = spec.group.get(GROUP_TXN) as JobTxn | undefined;
        if (!txn) spec.group.set(GROUP_TXN, (txn = emu.jobs.createTxn()));
      }
      const driver: JobDriver = {
        type: spec.type,
        isBlockJob: true,
        run: (job) => spec.run(jobRuntime(job)),
        prepare: spec.prepare && (() => spec.prepare!()),
        commit: spec.commit && (() => spec.commit!()),
        abort: spec.abort && (() => spec.abort!()),
        clean: spec.clean && (() => spec.clean!()),
      };
      const job = emu.jobs.create({
        id: spec.id,
        driver,
        autoFinalize: spec.autoFinalize,
        autoDismiss: spec.autoDismiss,
        speed: spec.speed,
        txn,
      });
      job.progress.setRemaining(spec.initialTotal);
      const handle: CreatedJob = {
        id: spec.id,
        start: () => emu.jobs.start(job),
        async dropUnstarted() {
          await job.cancel(true);
          // The callbacks are idempotent: make sure nothing is left held.
          await spec.abort?.();
          await spec.clean?.();
        },
      };
      jobOf.set(handle, job);
      return handle;
    },

    drain(node, exceptJobId): DrainedSection {
      const paused: Job[] = [];
      for (const id of jobsAbove(node)) {
        if (id === exceptJobId) continue;
        const job = emu.jobs.find(id);
        if (job && alive(job)) {
          job.pause();
          paused.push(job);
        }
      }
      const adopted: Job[] = [];
      return {
        adopt(handle) {
          const job = jobOf.get(handle);
          if (!job) return;
          job.pause();
          adopted.push(job);
        },
        async settled() {
          for (const job of paused) await job.until((j) => !j.busy || j.isCompleted() || j.status === "null");
        },
        end() {
          for (const job of [...adopted, ...paused.reverse()]) if (job.status !== "null") job.resume();
          adopted.length = paused.length = 0;
        },
      };
    },
  };
}

/** blockdev-create: a `create` job (never auto-dismissed, progress 0/1 → 1/1) started at once. */
/**
 * Resolves when the command may answer: QEMU runs the create coroutine inside
 * the command until it first waits for the disk, so a job that fails before
 * that (bad options, a missing node or directory) has concluded by the reply.
 */
export async function startCreateJob(emu: Emulator, id: string, options: { driver: string } & Record<string, unknown>): Promise<void> {
  let reachedIo!: () => void;
  const firstIo = new Promise<void>((resolve) => (reachedIo = resolve));
  const driver: JobDriver = {
    type: "create",
    isBlockJob: false,
    async run(job) {
      job.progress.setRemaining(1);
      try {
        await runBlockdevCreate(emu.block, options, () => {
          reachedIo();
          // The command answers while the job waits for its first I/O.
          return new Promise<void>((r) => setImmediate(r));
        });
      } finally {
        job.progress.workDone(1);
      }
    },
  };
  const job = emu.jobs.create({ id, driver, autoFinalize: true, autoDismiss: false });
  emu.jobs.start(job);
  await Promise.race([firstIo, job.until((j) => j.status === "concluded" || j.status === "null")]);
}

/**
 * The drain of everything QEMU's qmp_transaction starts with: every block
 * job shows a paused/running pair (once it reached a pause point), even
 * when the command then fails. Per-action drains are the actions' own
 * (BlockJobPort.drain).
 */
export function transactionDrain(emu: Emulator): TxnHooks {
  return {
    drainBegin: () => emu.jobs.drained(() => {}),
  };
}
