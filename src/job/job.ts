/**
 * One job: status, pausing, cancelling, rate limiting, events, and the
 * completion algorithm over its transaction (QEMU's job.c + blockjob.c).
 *
 * The driver's `run` is an async function standing in for QEMU's coroutine.
 * Where QEMU's coroutine yields (sleep, yield, pause point) this job "parks":
 * it records what the coroutine would do when re-entered (`onEnter`) and sets
 * busy = false. `enter()` runs that continuation synchronously, so a pause
 * of an idle job shows its `paused` event before the pausing command returns,
 * exactly as in QEMU; only the driver's own code resumes in a microtask.
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";
import type { JobDriver, JobType } from "./driver.ts";
import { ECANCELED, ENOSPC, describeFailure, strerror } from "./errno.ts";
import { jobError } from "./errors.ts";
import { ProgressMeter } from "./progress.ts";
import { RateLimit, SLICE_NS } from "./ratelimit.ts";
import { allowVerb, isCompletedStatus, isReadyStatus, transition, type JobStatus, type JobVerb } from "./status.ts";
import type { JobTxn } from "./txn.ts";

/** BlockDeviceIoStatus, as block jobs report it. */
export type IoStatus = "ok" | "failed" | "nospace";
/** BlockdevOnError: a job's on-error / on-source-error / on-target-error. */
export type ErrorPolicy = "report" | "ignore" | "stop" | "enospc" | "auto";
/** BlockErrorAction: what the job does about one I/O error. */
export type ErrorAction = "report" | "ignore" | "stop";
export type IoOperation = "read" | "write";

/** What the manager provides to each job. */
export interface JobHost {
  readonly events: EventSink;
  readonly clock: Clock;
  /** The job reached `null`: it leaves the job list. */
  removed(job: Job): void;
  /** A driver callback threw where QEMU's cannot fail: report, don't crash. */
  internalError(e: unknown): void;
}

export interface JobInit {
  /** Absent for internal jobs (never listed, no events). Validated by the manager. */
  readonly id: string | undefined;
  readonly driver: JobDriver;
  readonly autoFinalize: boolean;
  readonly autoDismiss: boolean;
  readonly txn: JobTxn;
}

export class Job {
  readonly id: string | undefined;
  readonly driver: JobDriver;
  readonly autoFinalize: boolean;
  readonly autoDismiss: boolean;
  /** current/total progress; drivers call workDone / setRemaining / increaseRemaining. */
  readonly progress = new ProgressMeter();
  readonly rateLimit = new RateLimit();

  private state: JobStatus = "undefined";
  private group: JobTxn | null;
  private currentSpeed = 0;
  private exactSpeed: number | bigint = 0;
  private io: IoStatus = "ok";

  // QEMU's Job fields, same meaning.
  private pauseCounter = 1; // a job is paused until it starts
  private isUserPaused = false;
  private parkedInPause = true; // job->paused
  private isBusy = false;
  private isStarted = false;
  private deferredToMainLoop = false; // run has returned
  private cancelled = false;
  private forceCancel = false;
  private returnCode = 0; // 0 or a negative errno
  private errorText: string | undefined;

  /** The rest of the "coroutine" after its current yield; set while parked. */
  private onEnter: (() => void) | null = null;
  private sleepTimer: Timer | null = null;
  private readonly watchers = new Set<() => void>();

  /** job_create: emits `created` and joins `init.txn` (at its head). */
  constructor(
    private readonly host: JobHost,
    init: JobInit,
  ) {
    this.id = init.id;
    this.driver = init.driver;
    this.autoFinalize = init.autoFinalize;
    this.autoDismiss = init.autoDismiss;
    this.setStatus("created");
    this.group = init.txn;
    init.txn.add(this);
  }

  // ---- observation ---------------------------------------------------------------

  get type(): JobType {
    return this.driver.type;
  }
  get status(): JobStatus {
    return this.state;
  }
  get txn(): JobTxn | null {
    return this.group;
  }
  get isInternal(): boolean {
    return this.id === undefined;
  }
  get isBlockJob(): boolean {
    return this.driver.isBlockJob;
  }
  /** Bytes per second; 0 = unlimited. */
  get speed(): number {
    return this.currentSpeed;
  }
  /** The speed as the user gave it, exact beyond 2^53 (what queries and events report). */
  get requestedSpeed(): number | bigint {
    return this.exactSpeed;
  }
  get ioStatus(): IoStatus {
    return this.io;
  }
  /** The driver's code is executing (not parked at a sleep/yield/pause point). */
  get busy(): boolean {
    return this.isBusy;
  }
  /** Pause requests outstanding (user pause counts once, each drained section once). */
  get pauseCount(): number {
    return this.pauseCounter;
  }
  /** BlockJobInfo.paused: any pause request, effective yet or not. */
  get paused(): boolean {
    return this.pauseCounter > 0;
  }
  get userPaused(): boolean {
    return this.isUserPaused;
  }
  get started(): boolean {
    return this.isStarted;
  }
  /** 0 on success (so far), else a negative errno. */
  get ret(): number {
    return this.returnCode;
  }
  /** The error text of a failed or cancelled job (query-jobs `error`). */
  get error(): string | undefined {
    return this.errorText;
  }
  /**
   * Parked at a pause point (QEMU's job->paused): a driver's complete()
   * should not enter() such a job, the resume will.
   */
  get inPausePoint(): boolean {
    return this.parkedInPause;
  }
  /** The driver's run has returned (QEMU's deferred_to_main_loop); completion is under way or done. */
  get runReturned(): boolean {
    return this.deferredToMainLoop;
  }
  /** A sleep timer is armed (a zero sleep's event-loop turn counts too). */
  get timerPending(): boolean {
    return this.sleepTimer !== null;
  }

  /** A force cancel was requested: the driver should stop at its next check. */
  isCancelled(): boolean {
    return this.cancelled && this.forceCancel;
  }
  /** Any cancel, soft ones too (mirror in ready: finish without pivoting). */
  cancelRequested(): boolean {
    return this.cancelled;
  }
  isReady(): boolean {
    return isReadyStatus(this.state);
  }
  /** The run is over (waiting, pending, aborting, concluded, null). */
  isCompleted(): boolean {
    return isCompletedStatus(this.state);
  }
  /**
   * Finished its run and stopped where only something else can move it on:
   * waiting for unfinished peers, or pending without auto-finalize.
   */
  awaitsOthers(): boolean {
    if (this.state === "waiting") return !!this.group?.jobs.some((j) => !j.isCompleted());
    if (this.state === "pending") return !this.group?.jobs.every((j) => j.autoFinalize);
    return false;
  }
  shouldPause(): boolean {
    return this.pauseCounter > 0;
  }

  /** Resolves once `pred` holds (checked on every status or busy change). */
  until(pred: (job: Job) => boolean): Promise<void> {
    if (pred(this)) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!pred(this)) return;
        this.watchers.delete(check);
        resolve();
      };
      this.watchers.add(check);
    });
  }

  // ---- user verbs (QMP / HMP) ----------------------------------------------------

  /** job-pause / block-job-pause. */
  userPause(): void {
    this.applyVerb("pause");
    if (this.isUserPaused) throw jobError("already-paused");
    this.isUserPaused = true;
    this.pause();
  }

  /** job-resume / block-job-resume: also clears a stopped job's io-status. */
  userResume(): void {
    if (!this.isUserPaused || this.pauseCounter <= 0) throw jobError("not-paused");
    this.applyVerb("resume");
    this.io = "ok";
    this.isUserPaused = false;
    this.resume();
  }

  /** job-cancel (force) / block-job-cancel. Resolves once the synchronous consequences are done. */
  userCancel(force: boolean): Promise<void> {
    this.applyVerb("cancel");
    return this.cancel(force);
  }

  /** job-complete / block-job-complete. */
  complete(): void {
    this.applyVerb("complete");
    if (this.cancelled || !this.driver.complete) throw jobError("cannot-complete", this.id ?? "");
    this.driver.complete(this);
  }

  /** job-finalize / block-job-finalize: finalises the whole transaction. */
  finalize(): Promise<void> {
    this.applyVerb("finalize");
    return this.doFinalize();
  }

  /** job-dismiss / block-job-dismiss. */
  dismiss(): void {
    this.applyVerb("dismiss");
    this.doDismiss();
  }

  /**
   * block-job-set-speed (and the `speed` given at creation). Raising the
   * speed, or lifting the limit, wakes a job sleeping on the limiter;
   * lowering it does not.
   */
  setSpeed(requested: number | bigint): void {
    const old = this.currentSpeed;
    const speed = Number(requested);
    this.applyVerb("set-speed");
    if (speed < 0) throw jobError("negative-speed");
    this.rateLimit.setSpeed(speed, SLICE_NS);
    this.currentSpeed = speed;
    this.exactSpeed = requested;
    this.driver.setSpeed?.(this, speed);
    if (speed && speed <= old) return;
    this.enter((job) => job.timerPending);
  }

  /** Throws QEMU's verb error unless the current status accepts `verb`. */
  applyVerb(verb: JobVerb): void {
    if (!allowVerb(verb, this.state)) throw jobError("verb-not-allowed", this.id ?? "", this.state, verb);
  }

  // ---- internal pauses, cancel, start (block layer / manager) ----------------------

  /** An internal pause (drained section): nests; takes effect at the next pause point, at once if idle. */
  pause(): void {
    this.pauseCounter++;
    if (!this.parkedInPause) this.enter();
  }

  /** Ends one pause; at zero the job continues (unless a sleep timer will wake it anyway). */
  resume(): void {
    if (this.pauseCounter <= 0) throw new Error(`job ${this.id}: resume without pause`);
    this.pauseCounter--;
    if (this.pauseCounter) return;
    this.enter((job) => !job.timerPending);
  }

  /**
   * job_cancel. A job that never started finishes at once (created →
   * aborting → concluded → null, no BLOCK_JOB_* event); a finished job
   * aborts its transaction; a running one is woken to notice.
   * A concluded job is dismissed.
   */
  async cancel(force: boolean): Promise<void> {
    if (this.state === "concluded") {
      this.doDismiss();
      return;
    }
    this.cancelAsync(force);
    if (!this.isStarted) {
      await this.completed();
    } else if (this.deferredToMainLoop) {
      if (this.isCancelled() && !this.group?.finalizing) await this.txnAbort();
    } else {
      this.enter();
    }
  }

  /** job_start: created → running, then the driver's run begins (after a pause point). */
  start(): void {
    if (this.isStarted || this.state !== "created") throw new Error(`job ${this.id}: cannot start in state ${this.state}`);
    this.isStarted = true;
    this.pauseCounter--;
    this.isBusy = true;
    this.parkedInPause = false;
    this.setStatus("running");
    this.pausePointThen(() => this.runDriver());
  }

  /** job_early_fail: a job that never started is dropped (created → null). */
  earlyFail(): void {
    if (this.isStarted) throw new Error(`job ${this.id}: early fail after start`);
    this.doDismiss();
  }

  /**
   * Re-enters a parked job (QEMU's job_enter[_cond]): no effect while it is
   * busy, not started, or finished. Drivers call it to kick a job waiting in
   * `yield()` (e.g. mirror's complete).
   */
  enter(cond?: (job: Job) => boolean): void {
    if (!this.isStarted || this.deferredToMainLoop || this.isBusy) return;
    if (cond && !cond(this)) return;
    this.cancelTimer();
    const resumeCoroutine = this.onEnter;
    this.onEnter = null;
    this.isBusy = true;
    this.notify();
    resumeCoroutine?.();
  }

  // ---- driver side -------------------------------------------------------------------

  /** Parks here while paused (user or internal); returns at once otherwise or when force-cancelled. */
  pausePoint(): Promise<void> {
    return new Promise((resolve) => this.pausePointThen(resolve));
  }

  /** Sleeps `ns` on the job's clock (0 = just let the event loop run), then a pause point. Early wake-ups are possible. */
  sleep(ns: number): Promise<void> {
    if (this.isCancelled()) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.shouldPause()) this.pausePointThen(resolve);
      else this.park(Math.max(0, ns), () => this.pausePointThen(resolve));
    });
  }

  /** Waits until something calls `enter()` (a cancel, complete, pause…), then a pause point. */
  yield(): Promise<void> {
    if (this.isCancelled()) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.shouldPause()) this.pausePointThen(resolve);
      else this.park(null, () => this.pausePointThen(resolve));
    });
  }

  /** Resolves once the job is force-cancelled (backup sync=none waits like this). */
  async whenCancelled(): Promise<void> {
    while (!this.isCancelled()) await this.yield();
  }

  /** Accounts `n` units just issued against the speed limit (block_job_ratelimit_processed_bytes). */
  rateLimitProcessed(n: number): void {
    this.rateLimit.calculateDelay(this.host.clock.nowNs(), n);
  }

  /**
   * Sleeps as long as the speed limit demands, at least one yield to the
   * event loop; sleeps again after an early wake-up if time is still owed
   * (block_job_ratelimit_sleep).
   */
  async rateLimitSleep(): Promise<void> {
    let delay: number;
    do {
      delay = this.rateLimit.calculateDelay(this.host.clock.nowNs(), 0);
      await this.sleep(delay);
    } while (delay && !this.isCancelled());
  }

  /** running → ready, with BLOCK_JOB_READY for block jobs. */
  setReady(): void {
    this.setStatus("ready");
    this.emitBlockEvent("BLOCK_JOB_READY", this.progressData());
  }

  /**
   * One I/O error under `policy` (block_job_error_action): emits
   * BLOCK_JOB_ERROR and returns the action. `stop` pauses the job like a
   * user pause and sets io-status; the driver should then `await
   * job.pausePoint()` and retry. `ignore`: retry later. `report`: fail.
   */
  handleIoError(operation: IoOperation, policy: ErrorPolicy, errno: number): ErrorAction {
    const e = Math.abs(errno);
    const action: ErrorAction = policy === "enospc" || policy === "auto" ? (e === ENOSPC ? "stop" : "report") : policy;
    if (this.id !== undefined) this.host.events.emit("BLOCK_JOB_ERROR", { device: this.id, operation, action });
    if (action === "stop") {
      if (!this.isUserPaused) {
        this.pause();
        this.isUserPaused = true;
      }
      if (this.io === "ok") this.io = e === ENOSPC ? "nospace" : "failed";
    }
    return action;
  }

  // ---- the coroutine machinery -----------------------------------------------------

  private pausePointThen(cont: () => void): void {
    if (!this.shouldPause() || this.isCancelled()) {
      cont();
      return;
    }
    const before = this.state;
    this.setStatus(before === "ready" ? "standby" : "paused");
    this.parkedInPause = true;
    this.park(null, () => {
      this.parkedInPause = false;
      this.setStatus(before);
      cont();
    });
  }

  /** job_do_yield: idle until entered (or until the timer fires, when `ns` is given). */
  private park(ns: number | null, onEnter: () => void): void {
    if (ns !== null) this.sleepTimer = this.armTimer(ns);
    this.onEnter = onEnter;
    this.isBusy = false;
    this.notify();
  }

  private armTimer(ns: number): Timer {
    const fire = () => {
      this.sleepTimer = null;
      this.enter();
    };
    if (ns > 0) return this.host.clock.setTimer(ns, fire);
    // A zero sleep only lets the event loop run once (QEMU arms a timer for "now").
    const handle = setImmediate(fire);
    return { cancel: () => clearImmediate(handle) };
  }

  private cancelTimer(): void {
    this.sleepTimer?.cancel();
    this.sleepTimer = null;
  }

  private runDriver(): void {
    let work: Promise<void>;
    try {
      work = this.driver.run(this);
    } catch (e) {
      work = Promise.reject(e);
    }
    work.then(
      () => this.onRunReturned(false, undefined),
      (e: unknown) => this.onRunReturned(true, e),
    );
  }

  /** job_co_entry's tail and job_exit. */
  private onRunReturned(failed: boolean, failure: unknown): void {
    if (failed) this.fail(failure);
    this.deferredToMainLoop = true;
    this.isBusy = false;
    this.notify();
    void this.completed().catch((e) => this.host.internalError(e));
  }

  private fail(failure: unknown): void {
    const { message, errno } = describeFailure(failure);
    this.returnCode = -errno;
    this.errorText = message;
  }

  private cancelAsync(force: boolean): void {
    const real = this.driver.cancel ? this.driver.cancel(this, force) : true;
    if (this.isUserPaused) {
      // The user pause is dropped so the job can reach its cancel check; internal pauses stay.
      this.io = "ok";
      this.isUserPaused = false;
      this.pauseCounter--;
    }
    // A soft cancel after the run returned changes nothing.
    if (real || !this.deferredToMainLoop) {
      this.cancelled = true;
      this.forceCancel ||= real;
    }
  }

  // ---- completion over the transaction ---------------------------------------------

  /** job_update_rc: a force-cancelled success is a failure; failures move to aborting. */
  private updateRc(): void {
    if (!this.returnCode && this.isCancelled()) this.returnCode = -ECANCELED;
    if (this.returnCode) {
      this.errorText ??= strerror(this.returnCode);
      this.setStatus("aborting");
    }
  }

  /** job_completed: the run is over (or will never happen). */
  private async completed(): Promise<void> {
    this.updateRc();
    if (this.returnCode) await this.txnAbort();
    else await this.txnSuccess();
  }

  private async txnSuccess(): Promise<void> {
    const txn = this.group!;
    this.setStatus("waiting");
    if (txn.jobs.some((j) => !j.isCompleted())) return;
    for (const j of [...txn.jobs]) j.toPending();
    if (txn.jobs.every((j) => j.autoFinalize)) await this.doFinalize();
  }

  private toPending(): void {
    this.setStatus("pending");
    if (!this.autoFinalize) this.emitBlockEvent("BLOCK_JOB_PENDING", { type: this.type, id: this.id });
  }

  /** job_do_finalize: prepare every member; then commit them all, or abort the transaction. */
  private async doFinalize(): Promise<void> {
    const txn = this.group;
    if (!txn || txn.finalizing) return;
    txn.finalizing = true;
    try {
      let failed = false;
      for (const j of [...txn.jobs]) {
        if (await j.prepare()) {
          failed = true;
          break;
        }
      }
      if (failed) await this.txnAbort();
      else for (const j of [...txn.jobs]) await j.finalizeSingle();
    } finally {
      txn.finalizing = false;
    }
  }

  private async prepare(): Promise<number> {
    if (this.returnCode === 0 && this.driver.prepare) {
      try {
        await this.driver.prepare(this);
      } catch (e) {
        this.fail(e);
      }
      this.updateRc();
    }
    return this.returnCode;
  }

  /**
   * job_completed_txn_abort: force-cancel every other member, then, in list
   * order, wait for each one's run to return and finalise it.
   */
  private async txnAbort(): Promise<void> {
    const txn = this.group!;
    if (txn.aborting) return; // the job that started the abort handles everything
    txn.aborting = true;
    for (const other of txn.jobs) if (other !== this) other.cancelAsync(true);
    while (txn.jobs.length > 0) {
      const other = txn.jobs[0]!;
      if (!other.isCompleted()) {
        if (!other.isStarted) {
          // QEMU 7.2 waits forever here (two never-started jobs in one
          // failing grouped transaction hang the monitor); finishing the
          // job as never started is what that wait was for.
          other.updateRc();
        } else {
          other.enter();
          await other.until((j) => j.isCompleted());
        }
      }
      await other.finalizeSingle();
    }
  }

  /** job_finalize_single: commit or abort, clean, the completion event, concluded (→ null). */
  private async finalizeSingle(): Promise<void> {
    this.updateRc(); // a late force cancel still aborts
    await this.callDriver(this.returnCode ? this.driver.abort : this.driver.commit);
    await this.callDriver(this.driver.clean);
    if (this.isStarted) {
      if (this.isCancelled()) {
        this.emitBlockEvent("BLOCK_JOB_CANCELLED", this.progressData());
      } else {
        const data = this.progressData();
        this.emitBlockEvent("BLOCK_JOB_COMPLETED", this.returnCode ? { ...data, error: this.errorText } : data);
      }
    }
    this.group?.remove(this);
    this.group = null;
    this.setStatus("concluded");
    // A job that never ran leaves no trace, whatever auto-dismiss says.
    if (this.autoDismiss || !this.isStarted) this.doDismiss();
  }

  private doDismiss(): void {
    this.cancelTimer();
    this.isBusy = false;
    this.parkedInPause = false;
    this.deferredToMainLoop = true;
    this.group?.remove(this);
    this.group = null;
    this.setStatus("null");
    this.host.removed(this);
    try {
      this.driver.free?.(this);
    } catch (e) {
      this.host.internalError(e);
    }
  }

  private async callDriver(fn: ((job: Job) => void | Promise<void>) | undefined): Promise<void> {
    if (!fn) return;
    try {
      await fn.call(this.driver, this);
    } catch (e) {
      this.host.internalError(e);
    }
  }

  // ---- events ------------------------------------------------------------------------

  private setStatus(to: JobStatus): void {
    const from = this.state;
    this.state = transition(from, to);
    if (this.id !== undefined && from !== to) this.host.events.emit("JOB_STATUS_CHANGE", { status: to, id: this.id });
    this.notify();
  }

  /** BLOCK_JOB_* members in QEMU's output order. */
  private progressData(): Record<string, unknown> {
    return {
      device: this.id,
      len: this.progress.total,
      offset: this.progress.current,
      speed: this.exactSpeed,
      type: this.type,
    };
  }

  private emitBlockEvent(event: string, data: Record<string, unknown>): void {
    if (this.driver.isBlockJob && this.id !== undefined) this.host.events.emit(event, data);
  }

  private notify(): void {
    for (const check of [...this.watchers]) check();
  }
}
