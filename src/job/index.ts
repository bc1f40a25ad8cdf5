/**
 * The generic job layer (QEMU 7.2's job.c / blockjob.c semantics). It knows
 * nothing of blocks or sockets: backup, mirror, stream, commit and
 * blockdev-create are job DRIVERS written against this API.
 *
 * ## Lifecycle of a job, as a driver author sees it
 *
 * ```ts
 * const job = emu.jobs.create({ id, driver, autoFinalize, autoDismiss, speed, txn });
 *   // JOB_STATUS_CHANGE created. Throws QEMU's texts: Invalid job ID 'x',
 *   // Job ID 'x' already in use, and for speed < 0 (after created → null):
 *   // Parameter 'speed' expects a non-negative value.
 * emu.jobs.start(job);          // when the creating command commits: running
 * emu.jobs.earlyFail(job);      // or: the command failed before start: null
 * await job.cancel(true);       // or: a transaction action's abort:
 *                               // created → aborting → concluded → null, no BLOCK_JOB_*
 * ```
 *
 * The driver (./driver.ts `JobDriver`): `run(job)` does the work, between
 * chunks `await job.pausePoint()` and `if (job.isCancelled()) return`;
 * progress via `job.progress.workDone(n) / setRemaining(r) /
 * increaseRemaining(d)`; rate limiting via `job.rateLimitProcessed(bytes)`
 * after issuing a chunk and `await job.rateLimitSleep()` before the next
 * (QEMU's 100 ms slices, on the injected Clock; a zero sleep is one
 * setImmediate). `job.yield()` idles until `job.enter()` (mirror in ready,
 * backup sync=none; `job.whenCancelled()`); `job.setReady()` → ready +
 * BLOCK_JOB_READY. I/O errors: `const a = job.handleIoError('read', policy,
 * errno)` emits BLOCK_JOB_ERROR; `report` → throw (e.g.
 * `JobFailure.fromErrno(errno)`), `ignore` → retry later, `stop` → the job
 * is now user-paused with io-status failed/nospace: `await job.pausePoint()`
 * then retry. Throwing from `run` fails the job with the error's message
 * (query-jobs `error`, BLOCK_JOB_COMPLETED `error`).
 * Optional callbacks: complete, cancel(force) → real cancel? (mirror in
 * ready: soft cancel = finish without pivot, see `job.cancelRequested()`),
 * setSpeed, prepare (throw = transaction fails), commit, abort, clean, free.
 *
 * ## Completion (automatic)
 * run returns → waiting; when the whole transaction is done: pending (newest
 * member first, BLOCK_JOB_PENDING if auto-finalize=false); finalise (auto or
 * job-finalize): prepare all, then commit+clean+BLOCK_JOB_COMPLETED →
 * concluded (→ null if auto-dismiss). Failure or force cancel: aborting,
 * every peer force-cancelled, abort+clean, BLOCK_JOB_CANCELLED (force
 * cancelled) or BLOCK_JOB_COMPLETED{error}. Grouped transactions:
 * `const txn = emu.jobs.createTxn()` and pass `txn` to each create().
 *
 * ## Pauses and drains
 * `job.pause()` / `job.resume()` are internal, nesting pauses (a drained
 * node); user pauses are `job.userPause()` / `job.userResume()`. Pausing an
 * idle job (sleeping, yielding) takes effect synchronously, so `paused` is
 * emitted before the command that paused it returns, as in QEMU.
 * `emu.jobs.drainBegin()` / `drainEnd()` pause/resume every block job (and
 * jobs created meanwhile), reproducing QEMU's transaction-command pairs:
 * a backup created in a drained transaction shows created, running, paused
 * | (drainEnd) running. `await emu.jobs.quiesce()` waits until drained jobs
 * are idle; `emu.jobs.drained(fn)` wraps all three. Finer control (QEMU
 * drains per node): call `job.pause()` / `job.resume()` on the affected jobs.
 *
 * ## Verbs (QMP side; ../commands/jobs.ts)
 * `emu.jobs.get(id)` (`Job not found`), `getBlockJob(id)` (DeviceNotActive),
 * then `job.userPause() / userResume() / userCancel(force) / complete() /
 * finalize() / dismiss() / setSpeed(n)`; `await` the ones returning promises.
 * `emu.jobs.cancelAllSync()` at quit.
 */
export { JOB_STATUSES, JOB_VERBS, TRANSITIONS, VERB_TABLE, allowVerb, transition, isCompletedStatus, isReadyStatus } from "./status.ts";
export type { JobStatus, JobVerb } from "./status.ts";
export { JOB_TYPES } from "./driver.ts";
export type { JobDriver, JobType } from "./driver.ts";
export { Job } from "./job.ts";
export type { ErrorAction, ErrorPolicy, IoOperation, IoStatus, JobHost } from "./job.ts";
export { JobTxn } from "./txn.ts";
export { JobManager, isWellFormedId } from "./manager.ts";
export type { CreateJobOptions, JobManagerDeps } from "./manager.ts";
export { ProgressMeter } from "./progress.ts";
export { RateLimit, SLICE_NS } from "./ratelimit.ts";
export { JobFailure, describeFailure, strerror, EIO, ENOSPC, ECANCELED, EPERM, EINVAL } from "./errno.ts";
export { jobError } from "./errors.ts";
export type { JobErrorCode } from "./errors.ts";
