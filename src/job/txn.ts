/**
 * A job transaction: jobs that finish together. Every job belongs to one
 * (a lone job to its own); grouped backups share one, so nobody reaches
 * `pending` before all have finished and one failure cancels the rest.
 * The completion algorithm lives with the jobs (./job.ts); this is the
 * membership list.
 */
import type { Job } from "./job.ts";

export class JobTxn {
  private readonly members: Job[] = [];
  /** Set once a failure or cancel started aborting the whole transaction. */
  aborting = false;
  /** Set while prepare/commit callbacks run, so a second finalisation does not start. */
  finalizing = false;

  /** Members, newest first: QEMU inserts each new job at the head, and every "for each job" loop follows this order. */
  get jobs(): readonly Job[] {
    return this.members;
  }

  add(job: Job): void {
    this.members.unshift(job);
  }

  remove(job: Job): void {
    const i = this.members.indexOf(job);
    if (i >= 0) this.members.splice(i, 1);
  }
}
