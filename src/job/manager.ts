/**
 * The job list and the ways in: create/start jobs, look them up as QMP
 * does, drained sections, cancel-all at exit.
 */
import type { Clock } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";
import type { JobDriver } from "./driver.ts";
import { jobError } from "./errors.ts";
import { Job, type JobHost } from "./job.ts";
import { JobTxn } from "./txn.ts";

export interface JobManagerDeps {
  readonly events: EventSink;
  readonly clock: Clock;
  /** Where errors thrown by driver callbacks that cannot fail go (default: console.error). */
  readonly onInternalError?: (e: unknown) => void;
}

export interface CreateJobOptions {
  /** The job id; absent only for internal jobs. "" is an invalid id (QEMU: `Invalid job ID ''`). */
  id?: string;
  /** Internal jobs have no id, are never listed and emit no events. */
  internal?: boolean;
  driver: JobDriver;
  autoFinalize?: boolean;
  autoDismiss?: boolean;
  /**
   * Bytes per second (block jobs). A negative value is detected after the
   * job exists: `created`, then `null`, then the error is thrown.
   * Integers beyond 2^53 may come as bigint from the QMP parser.
   */
  speed?: number | bigint;
  /** Shared transaction (grouped completion); absent: the job is a transaction of one. */
  txn?: JobTxn;
}

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
export function isWellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9\-._]*$/.test(id);
}

/** JSON speeds arrive as number or (beyond 2^53) bigint. */
export class JobManager {
  /** Newest first, like QEMU's job list. */
  private readonly all: Job[] = [];
  private readonly host: JobHost;
  /** Nesting depth of drainBegin() with the jobs each level paused. */
  private readonly drains: Job[][] = [];

  constructor(readonly deps: JobManagerDeps) {
    this.host = {
      events: deps.events,
      clock: deps.clock,
      removed: (job) => {
        const i = this.all.indexOf(job);
        if (i >= 0) this.all.splice(i, 1);
      },
      internalError: deps.onInternalError ?? ((e) => console.error("qmpemu: job callback failed:", e)),
    };
  }

  /** A new transaction for grouped completion: pass it as `txn` to every member's create(). */
  createTxn(): JobTxn {
    return new JobTxn();
  }

  /**
   * job_create (+ block_job_create's speed): validates the id, emits
   * `created`, and returns the job, which waits for start(). Throws QEMU's
   * errors. Jobs created inside a drained section are paused by it.
   */
  create(opts: CreateJobOptions): Job {
    const id = opts.id;
    if (opts.internal) {
      if (id !== undefined) throw jobError("id-on-internal");
    } else if (id === undefined) {
      throw jobError("id-required");
    } else {
      if (!isWellFormedId(id)) throw jobError("id-invalid", id);
      if (this.find(id)) throw jobError("id-in-use", id);
    }
    const job = new Job(this.host, {
      id: opts.internal ? undefined : id,
      driver: opts.driver,
      autoFinalize: opts.autoFinalize ?? true,
      autoDismiss: opts.autoDismiss ?? true,
      txn: opts.txn ?? new JobTxn(),
    });
    this.all.unshift(job);
    if (job.isBlockJob) {
      for (const level of this.drains) {
        job.pause();
        level.push(job);
      }
    }
    if (opts.speed !== undefined) {
      try {
        job.setSpeed(opts.speed);
      } catch (e) {
        this.dropFromDrains(job);
        job.earlyFail();
        throw e;
      }
    }
    return job;
  }

  /** job_start: the creating command committed. */
  start(job: Job): void {
    job.start();
  }

  /** job_early_fail: the creating command failed after create() but before start(): created → null. */
  earlyFail(job: Job): void {
    this.dropFromDrains(job);
    job.earlyFail();
  }

  /** Every listed job (not internal), newest first. */
  list(): Job[] {
    return this.all.filter((j) => !j.isInternal);
  }

  /** Block jobs only, newest first (query-block-jobs). */
  blockJobs(): Job[] {
    return this.list().filter((j) => j.isBlockJob);
  }

  find(id: string): Job | undefined {
    return this.all.find((j) => j.id === id);
  }

  /** The job-* lookup: `Job not found`. */
  get(id: string): Job {
    const job = this.find(id);
    if (!job) throw jobError("not-found");
    return job;
  }

  /** The block-job-* lookup: DeviceNotActive `Block job '<id>' not found` (also for non-block jobs). */
  getBlockJob(id: string): Job {
    const job = this.find(id);
    if (!job || !job.isBlockJob) throw jobError("block-job-not-found", id);
    return job;
  }

  /**
   * A drained section over all block jobs (bdrv_drain_all_begin): each one
   * gets an internal pause, so an idle job shows `paused` (or `standby`)
   * now and a busy one at its next pause point; jobs created before the
   * matching drainEnd() are paused too. Sections nest.
   */
  drainBegin(): void {
    const level = this.all.filter((j) => j.isBlockJob && j.status !== "null").reverse();
    for (const job of level) job.pause();
    this.drains.push(level);
  }

  /**
   * Ends the innermost drained section: resumes its jobs oldest first
   * (a job created in the section resumes after the older ones), which is
   * where QEMU's `running` events of a transaction come from.
   */
  drainEnd(): void {
    const level = this.drains.pop();
    if (!level) throw new Error("drainEnd without drainBegin");
    for (const job of level) if (job.status !== "null") job.resume();
  }

  /** Resolves once every job paused by the open drained sections is idle or finished (bdrv_drain's poll). */
  async quiesce(): Promise<void> {
    const jobs = new Set(this.drains.flat());
    for (const job of jobs) await job.until((j) => !j.busy || j.isCompleted() || j.status === "null");
  }

  /** drainBegin, wait for quiescence, run `fn`, drainEnd (even if `fn` throws). */
  async drained<T>(fn: () => T | Promise<T>): Promise<T> {
    this.drainBegin();
    try {
      await this.quiesce();
      return await fn();
    } finally {
      this.drainEnd();
    }
  }

  /**
   * job_cancel_sync_all (quit): force-cancels every job, newest first,
   * until none is left.
   */
  async cancelAllSync(): Promise<void> {
    for (;;) {
      const job = this.all[0];
      if (!job) return;
      // A job that concludes without auto-dismiss is met again and dismissed by the next cancel.
      await job.cancel(true);
      await job.until((j) => j.status === "concluded" || j.status === "null");
    }
  }

  private dropFromDrains(job: Job): void {
    for (const level of this.drains) {
      const i = level.indexOf(job);
      if (i >= 0) level.splice(i, 1);
    }
  }
}
