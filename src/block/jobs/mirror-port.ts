/**
 * The adapter between the mirror / stream / commit bodies (JobRuntime in
 * ./mirror-runtime.ts) and the job layer (src/job).
 *
 *   createSyncJob(emu, spec)  creates the job (JOB_STATUS_CHANGE created);
 *                             throws QEMU's job-id / speed errors (after a
 *                             created → null pair for a negative speed).
 *   handle.start(hooks)       the command committed: the job runs `hooks.run`
 *                             with a JobRuntime; complete/cancel/prepare/
 *                             abort/clean become the driver callbacks.
 *   handle.discard()          the command failed after creating the job.
 *   drainedSection(emu, node) QEMU's bdrv_drained_begin/end on `node`: every
 *                             other block job holding it or a node above it
 *                             parks (paused/standby) and resumes.
 */
import type { Emulator } from "../../emulator.ts";
import type { Job, JobDriver } from "../../job/index.ts";
import type { BlockNode } from "../index.ts";
import { errnoOf } from "./block-copy.ts";
import { jobsAbove } from "./common.ts";
import type { JobRuntime } from "./mirror-runtime.ts";

export interface SyncJobSpec {
  id: string;
  type: "mirror" | "stream" | "commit";
  /** Exact as given (queries echo it); the rate limiter reads it as a number. */
  speed: number | bigint;
  autoFinalize: boolean;
  autoDismiss: boolean;
}

export interface SyncJobHooks {
  run(rt: JobRuntime): Promise<void>;
  /** job-complete; absent: the job cannot be completed. Throw a QmpError to refuse. */
  complete?(): void;
  /** The run ends in a drained section (mirror's): see JobDriver.drainsOnExit. */
  drainsOnExit?: boolean;
  /** Whether a cancel is a real (force) cancel; default: always. */
  cancel?(force: boolean): boolean;
  prepare?(): void | Promise<void>;
  abort?(): void | Promise<void>;
  clean?(): void | Promise<void>;
}

export interface SyncJobHandle {
  readonly id: string;
  readonly job: Job;
  start(hooks: SyncJobHooks): void;
  discard(): void;
}

/** Without a speed limit the job still lets the event loop run this often (bytes). */
const UNLIMITED_YIELD_BYTES = 1 << 20;

/** The job as the copy loops see it. */
export function jobRuntime(job: Job): JobRuntime {
  let sinceSleep = 0;
  return {
    get id() {
      return job.id ?? "";
    },
    pausePoint: () => job.pausePoint(),
    get cancelled() {
      return job.isCancelled();
    },
    get cancelRequested() {
      return job.cancelRequested();
    },
    get ready() {
      return job.isReady();
    },
    setReady: () => job.setReady(),
    workDone: (n) => job.progress.workDone(n),
    setRemaining: (n) => job.progress.setRemaining(n),
    increaseRemaining: (n) => job.progress.increaseRemaining(n),
    async rateLimit(n) {
      if (n > 0) job.rateLimitProcessed(n);
      // Unlimited: a zero sleep every few MiB is enough (each one lets formats write back metadata).
      if (job.speed === 0) {
        sinceSleep += n;
        if (n > 0 && sinceSleep < UNLIMITED_YIELD_BYTES) return;
        sinceSleep = 0;
      }
      await job.rateLimitSleep();
    },
    sleep: (ms) => job.sleep(ms * 1_000_000),
    async ioError(op, policy, e) {
      const action = job.handleIoError(op, policy, errnoOf(e));
      if (action === "report") throw e;
      if (action === "stop") await job.pausePoint();
    },
  };
}

export function createSyncJob(emu: Emulator, spec: SyncJobSpec): SyncJobHandle {
  let hooks: SyncJobHooks | null = null;
  // mirror_run ends in a drained section of its source, which pauses the job
  // itself (BlockJobInfo.paused while waiting or pending) until mirror_exit_common.
  let drainHeld = false;
  const endDrain = (job: Job) => {
    if (drainHeld) job.resume();
    drainHeld = false;
  };
  const driver: JobDriver = {
    type: spec.type,
    isBlockJob: true,
    async run(job) {
      try {
        await hooks!.run(jobRuntime(job));
      } finally {
        if (hooks?.drainsOnExit) {
          job.pause();
          drainHeld = true;
          // After a real cancel, QEMU 7.2's reply comes before the job winds down
          // (recorded: job-cancel of a ready mirror); a completing one finishes first.
          if (job.isCancelled()) await new Promise<void>((r) => setImmediate(r));
        }
      }
    },
    complete(job) {
      if (!hooks?.complete) throw new Error("unreachable: complete without hook");
      hooks.complete();
      // Re-enter the job unless it is paused; a paused one sees the request once resumed.
      if (!job.paused) job.enter();
    },
    cancel: (_job, force) => (hooks?.cancel ? hooks.cancel(force) : true),
    get drainsOnExit() {
      return !!hooks?.drainsOnExit;
    },
    async prepare(job) {
      await hooks?.prepare?.();
      endDrain(job);
    },
    async abort(job) {
      await hooks?.abort?.();
      endDrain(job);
    },
    clean: () => hooks?.clean?.(),
  };
  const job = emu.jobs.create({ id: spec.id, driver, autoFinalize: spec.autoFinalize, autoDismiss: spec.autoDismiss, speed: spec.speed });
  return {
    id: spec.id,
    job,
    start(h) {
      hooks = h;
      if (!h.complete) delete (driver as { complete?: unknown }).complete;
      emu.jobs.start(job);
    },
    discard() {
      emu.jobs.earlyFail(job);
    },
  };
}

/** bdrv_drained_begin/end on `node`: the other block jobs above it pause (QEMU's event pairs). */
export async function drainedSection(emu: Emulator, node: BlockNode, except?: string): Promise<void> {
  const jobs: Job[] = [];
  for (const id of jobsAbove(node)) {
    if (id === except) continue;
    const job = emu.jobs.find(id);
    if (!job || !job.isBlockJob || job.isCompleted()) continue;
    job.pause();
    jobs.push(job);
  }
  for (const job of jobs) await job.until((j) => !j.busy || j.isCompleted());
  for (const job of jobs) job.resume();
}
