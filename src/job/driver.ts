/**
 * What a job driver (backup, mirror, stream, commit, blockdev-create, …)
 * provides to the job layer. The layer owns status, pausing, cancelling,
 * transactions, events and rate limiting; the driver owns the work.
 */
import type { Job } from "./job.ts";

/** QAPI JobType. */
export const JOB_TYPES = [
  "commit",
  "stream",
  "mirror",
  "backup",
  "create",
  "amend",
  "snapshot-load",
  "snapshot-save",
  "snapshot-delete",
] as const;

export type JobType = (typeof JOB_TYPES)[number];

export interface JobDriver {
  readonly type: JobType;
  /**
   * A block job: listed by query-block-jobs, reachable by block-job-*,
   * emits BLOCK_JOB_* events, paused by drained sections (JobManager.drainBegin).
   */
  readonly isBlockJob: boolean;

  /**
   * The work. Between chunks call `await job.pausePoint()` (or sleep via
   * `job.rateLimitSleep()` / `job.sleep()` / `job.yield()`, which include a
   * pause point) and stop when `job.isCancelled()`. Resolve for success;
   * throw to fail (the message becomes the job's error text; see JobFailure).
   * Called synchronously by JobManager.start() (or by the resume that lets a
   * job created while paused begin), like QEMU entering the coroutine.
   */
  run(job: Job): Promise<void>;

  /**
   * job-complete / block-job-complete in ready or standby. Throw a QmpError
   * to refuse. Usually sets a flag and calls `job.enter()` unless paused.
   */
  complete?(job: Job): void;

  /**
   * A cancel request: returns whether it is a real (force) cancel. Absent:
   * every cancel is forced. Mirror in ready returns `force` so that a soft
   * cancel means "finish without pivoting".
   */
  cancel?(job: Job, force: boolean): boolean;

  /**
   * The run ends in a drained section (mirror_run's bdrv_drained_begin),
   * which yields to the main loop: a real cancel does not finish inside the
   * command that asked for it, even when the job was idle.
   */
  readonly drainsOnExit?: boolean;

  /** block-job-set-speed, after the job's own limiter was updated. */
  setSpeed?(job: Job, speed: number): void;

  /**
   * Finalisation, once every job of the transaction has finished its run:
   * prepare (throw to fail the transaction), then commit or abort, then clean.
   */
  prepare?(job: Job): void | Promise<void>;
  commit?(job: Job): void | Promise<void>;
  abort?(job: Job): void | Promise<void>;
  clean?(job: Job): void | Promise<void>;

  /** The job reached `null` and is gone (also after an early failure): release resources. */
  free?(job: Job): void;
}
