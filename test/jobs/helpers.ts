/**
 * Test doubles for the job layer: a configurable driver standing in for
 * backup (chunked copy) or mirror (ready until completed), an event log in
 * the golden transcripts' short form ("j:running", "BLOCK_JOB_COMPLETED"),
 * and a manager on a VirtualClock.
 */
import { VirtualClock } from "../../src/core/clock.ts";
import { EventBus, type QmpEvent } from "../../src/core/events.ts";
import { JobFailure, JobManager, type ErrorPolicy, type Job, type JobDriver, type JobType } from "../../src/job/index.ts";

export interface FakeOptions {
  type?: JobType;
  isBlockJob?: boolean;
  chunks?: number;
  chunkSize?: number;
  /** Mirror-like: after copying, ready until complete (or cancel). */
  mirror?: boolean;
  /** Chunk index whose read fails (errno EIO) while `failures` > 0. */
  failChunk?: number;
  failures?: number;
  onError?: ErrorPolicy;
  /** Make prepare throw this text. */
  prepareFails?: string;
  /** Make run throw this text at once. */
  runFails?: string;
}

export class FakeDriver implements JobDriver {
  readonly type: JobType;
  readonly isBlockJob: boolean;
  readonly calls: string[] = [];
  private shouldComplete = false;
  failuresLeft: number;

  constructor(readonly o: FakeOptions = {}) {
    this.type = o.type ?? (o.mirror ? "mirror" : "backup");
    this.isBlockJob = o.isBlockJob ?? true;
    this.failuresLeft = o.failures ?? 0;
  }

  async run(job: Job): Promise<void> {
    this.calls.push("run");
    if (this.o.runFails) throw new Error(this.o.runFails);
    const chunks = this.o.chunks ?? 4;
    const size = this.o.chunkSize ?? 65536;
    job.progress.setRemaining(chunks * size);
    for (let i = 0; i < chunks; ) {
      await job.rateLimitSleep();
      if (job.isCancelled()) return;
      if (i === this.o.failChunk && this.failuresLeft > 0) {
        this.failuresLeft--;
        const action = job.handleIoError("read", this.o.onError ?? "report", 5);
        if (action === "report") throw JobFailure.fromErrno(5);
        if (action === "stop") await job.pausePoint();
        continue; // retry the same chunk
      }
      job.progress.workDone(size);
      job.rateLimitProcessed(size);
      i++;
    }
    if (!this.o.mirror) return;
    job.setReady();
    while (!this.shouldComplete && !job.cancelRequested()) await job.yield();
  }

  complete(job: Job): void {
    if (!this.o.mirror) throw new Error("not completable");
    this.calls.push("complete");
    this.shouldComplete = true;
    if (!job.inPausePoint) job.enter();
  }

  cancel(job: Job, force: boolean): boolean {
    return this.o.mirror ? force || !job.isReady() : true;
  }

  prepare(): void {
    this.calls.push("prepare");
    if (this.o.prepareFails) throw new Error(this.o.prepareFails);
  }
  commit(): void {
    this.calls.push("commit");
  }
  abort(): void {
    this.calls.push("abort");
  }
  clean(): void {
    this.calls.push("clean");
  }
  free(): void {
    this.calls.push("free");
  }
}

/** A driver without complete/cancel hooks (like blockdev-create: a plain job). */
export class PlainDriver implements JobDriver {
  readonly type = "create" as const;
  readonly isBlockJob = false;
  constructor(private readonly fails?: string) {}
  async run(job: Job): Promise<void> {
    job.progress.setRemaining(1);
    await job.pausePoint();
    if (this.fails) throw new Error(this.fails);
    job.progress.workDone(1);
  }
}

export function shortEvent(ev: QmpEvent): string {
  const d = ev.data ?? {};
  if (ev.event === "JOB_STATUS_CHANGE") return `${d.id}:${d.status}`;
  return ev.event;
}

export class Rig {
  readonly clock = new VirtualClock();
  readonly events = new EventBus(() => ({ seconds: 0, microseconds: 0 }));
  readonly log: QmpEvent[] = [];
  readonly errors: unknown[] = [];
  readonly jobs: JobManager;

  constructor() {
    this.events.subscribe((e) => this.log.push(e));
    this.jobs = new JobManager({ events: this.events, clock: this.clock, onInternalError: (e) => this.errors.push(e) });
  }

  /** The events so far in short form, and forget them. */
  take(): string[] {
    return this.log.splice(0).map(shortEvent);
  }

  /** The full events so far, and forget them. */
  takeFull(): QmpEvent[] {
    return this.log.splice(0);
  }
}

/** Lets queued microtasks and setImmediate callbacks run until `cond` holds. */
export async function waitFor(cond: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error("waitFor: condition never became true");
}

/** Lets `turns` event-loop turns pass. */
export async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}
