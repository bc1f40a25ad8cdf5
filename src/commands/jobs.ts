/**
 * The job verbs and queries: job-* (any job, `Job not found`), block-job-*
 * (block jobs only, DeviceNotActive), query-jobs / query-block-jobs, their
 * events for introspection, and the HMP block_job_* commands and
 * `info block-jobs`. Output members follow QEMU's order.
 *
 * Emulator extension: the pause/resume/cancel verbs and both queries are
 * allow-oob (QEMU 7.2 has them in-band only).
 */
import { JOB_STATUSES, JOB_TYPES, jobError, type Job, type JobManager } from "../job/index.ts";
import { defineCommand, defineEvent, type CommandContext, type CommandDef, type EventDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { hmpVerb } from "./hmp-args.ts";
import { array, bool, enumOf, int, optional, str, struct } from "./qapi.ts";

// ---- schemas ----------------------------------------------------------------------------

const JobType = enumOf("JobType", JOB_TYPES as unknown as [string, ...string[]]);
const JobStatus = enumOf("JobStatus", JOB_STATUSES as unknown as [string, ...string[]]);
const IoStatus = enumOf("BlockDeviceIoStatus", ["ok", "failed", "nospace"]);

const JobInfo = struct("JobInfo", {
  id: str(),
  type: JobType,
  status: JobStatus,
  "current-progress": int(),
  "total-progress": int(),
  error: optional(str()),
});

const BlockJobInfo = struct("BlockJobInfo", {
  type: str(),
  device: str(),
  len: int(),
  offset: int(),
  busy: bool(),
  paused: bool(),
  speed: int(),
  "io-status": IoStatus,
  ready: bool(),
  status: JobStatus,
  "auto-finalize": bool(),
  "auto-dismiss": bool(),
  error: optional(str()),
});

/** Each QAPI command has its own implicit argument type (q_obj_<name>-arg). */
const idArg = (command: string) => struct(`q_obj_${command}-arg`, { id: str() });
const deviceArg = (command: string) => struct(`q_obj_${command}-arg`, { device: str() });

// ---- queries ----------------------------------------------------------------------------

export function jobInfo(job: Job): Record<string, unknown> {
  const info: Record<string, unknown> = {
    "current-progress": job.progress.current,
    status: job.status,
    "total-progress": job.progress.total,
    type: job.type,
    id: job.id,
  };
  if (job.error !== undefined) info.error = job.error;
  return info;
}

export function blockJobInfo(job: Job): Record<string, unknown> {
  const info: Record<string, unknown> = {
    "auto-finalize": job.autoFinalize,
    "io-status": job.ioStatus,
    device: job.id,
    "auto-dismiss": job.autoDismiss,
    busy: job.busy,
    len: job.progress.total,
    offset: job.progress.current,
    status: job.status,
    paused: job.paused,
    speed: job.requestedSpeed,
    ready: job.isReady(),
    type: job.type,
  };
  if (job.ret) info.error = job.error;
  return info;
}

// ---- verbs ------------------------------------------------------------------------------

/**
 * Cancels and, when the job was idle (so QEMU would have run it to its end
 * inside the command), waits until it is finished or idle again: the
 * aborting/BLOCK_JOB_CANCELLED/concluded/null events then precede the reply.
 */
async function cancelJob(job: Job, force: boolean): Promise<void> {
  // A mirror treats every cancel before READY as a real one.
  const real = force || !job.isReady();
  const wasIdle = job.started && !job.busy && !job.isCompleted() && !(job.driver.drainsOnExit && real);
  await job.userCancel(force);
  if (!wasIdle) return;
  // Up to where QEMU's job would stop on its own: gone, concluded, waiting for its peers or for job-finalize.
  await job.until((j) => j.status === "concluded" || j.status === "null" || j.awaitsOthers() || (!j.busy && !j.runReturned));
}

/** block-job-cancel: without force, a user-paused job is refused (checked before the verb). */
async function blockJobCancel(jobs: JobManager, device: string, force: boolean): Promise<void> {
  const job = jobs.getBlockJob(device);
  if (job.userPaused && !force) throw jobError("cancel-paused", device);
  await cancelJob(job, force);
}

function setSpeed(jobs: JobManager, device: string, speed: number | bigint): void {
  jobs.getBlockJob(device).setSpeed(speed);
}

// ---- QMP --------------------------------------------------------------------------------

export const commands: CommandDef[] = [
  defineCommand({
    name: "query-jobs",
    returns: array(JobInfo),
    allowOob: true,
    handler: (_args, { emu }) => emu.jobs.list().map(jobInfo),
  }),
  defineCommand({
    name: "job-pause",
    args: idArg("job-pause"),
    allowOob: true,
    handler: ({ id }, { emu }) => void emu.jobs.get(id).userPause(),
  }),
  defineCommand({
    name: "job-resume",
    args: idArg("job-resume"),
    allowOob: true,
    handler: ({ id }, { emu }) => void emu.jobs.get(id).userResume(),
  }),
  defineCommand({
    name: "job-cancel",
    args: idArg("job-cancel"),
    allowOob: true,
    handler: async ({ id }, { emu }) => void (await cancelJob(emu.jobs.get(id), true)),
  }),
  defineCommand({
    name: "job-complete",
    args: idArg("job-complete"),
    handler: ({ id }, { emu }) => void emu.jobs.get(id).complete(),
  }),
  defineCommand({
    name: "job-dismiss",
    args: idArg("job-dismiss"),
    handler: ({ id }, { emu }) => void emu.jobs.get(id).dismiss(),
  }),
  defineCommand({
    name: "job-finalize",
    args: idArg("job-finalize"),
    handler: async ({ id }, { emu }) => void (await emu.jobs.get(id).finalize()),
  }),
  defineCommand({
    name: "query-block-jobs",
    returns: array(BlockJobInfo),
    allowOob: true,
    handler: (_args, { emu }) => emu.jobs.blockJobs().map(blockJobInfo),
  }),
  defineCommand({
    name: "block-job-set-speed",
    args: struct("q_obj_block-job-set-speed-arg", { device: str(), speed: int() }),
    handler: ({ device, speed }, { emu }) => setSpeed(emu.jobs, device, speed),
  }),
  defineCommand({
    name: "block-job-cancel",
    args: struct("q_obj_block-job-cancel-arg", { device: str(), force: optional(bool()) }),
    allowOob: true,
    handler: async ({ device, force }, { emu }) => void (await blockJobCancel(emu.jobs, device, force ?? false)),
  }),
  defineCommand({
    name: "block-job-pause",
    args: deviceArg("block-job-pause"),
    allowOob: true,
    handler: ({ device }, { emu }) => void emu.jobs.getBlockJob(device).userPause(),
  }),
  defineCommand({
    name: "block-job-resume",
    args: deviceArg("block-job-resume"),
    allowOob: true,
    handler: ({ device }, { emu }) => void emu.jobs.getBlockJob(device).userResume(),
  }),
  defineCommand({
    name: "block-job-complete",
    args: deviceArg("block-job-complete"),
    handler: ({ device }, { emu }) => void emu.jobs.getBlockJob(device).complete(),
  }),
  defineCommand({
    name: "block-job-finalize",
    args: idArg("block-job-finalize"),
    handler: async ({ id }, { emu }) => void (await emu.jobs.getBlockJob(id).finalize()),
  }),
  defineCommand({
    name: "block-job-dismiss",
    args: idArg("block-job-dismiss"),
    handler: ({ id }, { emu }) => void emu.jobs.getBlockJob(id).dismiss(),
  }),
];

const progressMembers = () => ({ type: JobType, device: str(), len: int(), offset: int(), speed: int() });

export const events: EventDef[] = [
  defineEvent("JOB_STATUS_CHANGE", struct("q_obj_JOB_STATUS_CHANGE-arg", { id: str(), status: JobStatus })),
  defineEvent(
    "BLOCK_JOB_COMPLETED",
    struct("q_obj_BLOCK_JOB_COMPLETED-arg", { ...progressMembers(), error: optional(str()) }),
  ),
  defineEvent("BLOCK_JOB_CANCELLED", struct("q_obj_BLOCK_JOB_CANCELLED-arg", progressMembers())),
  defineEvent(
    "BLOCK_JOB_ERROR",
    struct("q_obj_BLOCK_JOB_ERROR-arg", {
      device: str(),
      operation: enumOf("IoOperationType", ["read", "write"]),
      action: enumOf("BlockErrorAction", ["ignore", "report", "stop"]),
    }),
  ),
  defineEvent("BLOCK_JOB_READY", struct("q_obj_BLOCK_JOB_READY-arg", progressMembers())),
  defineEvent("BLOCK_JOB_PENDING", struct("q_obj_BLOCK_JOB_PENDING-arg", { type: JobType, id: str() })),
];

// ---- HMP --------------------------------------------------------------------------------

/** hmp_info_block_jobs: streams get their own wording. */
export function formatBlockJobs(jobs: readonly Job[]): string {
  if (jobs.length === 0) return "No active jobs\n";
  return jobs
    .map((j) => {
      const what = j.type === "stream" ? `Streaming device ${j.id}` : `Type ${j.type}, device ${j.id}`;
      return `${what}: Completed ${j.progress.current} of ${j.progress.total} bytes, speed limit ${j.requestedSpeed} bytes/s\n`;
    })
    .join("");
}

export const hmpCommands: HmpCommand[] = [
  {
    name: "info block-jobs",
    run(line, { emu }) {
      if (line.trim() !== "") {
        return 'block-jobs: extraneous characters at the end of line\nTry "help info block-jobs" for more information\n';
      }
      return formatBlockJobs(emu.jobs.blockJobs());
    },
  },
  hmpVerb("block_job_cancel", async (a, { emu }) => {
    const force = a.flag("f");
    const device = a.device();
    a.end();
    await blockJobCancel(emu.jobs, device, force);
  }),
  hmpVerb("block_job_complete", (a, { emu }) => {
    const device = a.device();
    a.end();
    emu.jobs.getBlockJob(device).complete();
  }),
  hmpVerb("block_job_pause", (a, { emu }) => {
    const device = a.device();
    a.end();
    emu.jobs.getBlockJob(device).userPause();
  }),
  hmpVerb("block_job_resume", (a, { emu }) => {
    const device = a.device();
    a.end();
    emu.jobs.getBlockJob(device).userResume();
  }),
  hmpVerb("block_job_set_speed", (a, { emu }) => {
    const device = a.device();
    const speed = a.size();
    a.end();
    setSpeed(emu.jobs, device, speed);
  }),
];
