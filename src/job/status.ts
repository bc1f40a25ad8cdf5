/**
 * The job state machine as data, the way QEMU's job.c keeps it: one table of
 * allowed status transitions (JobSTT), one table of which user verbs each
 * status accepts (JobVerbTable), and one small pure function reading each.
 */

/** QAPI JobStatus, in QEMU's enum order. */
export const JOB_STATUSES = [
  "undefined",
  "created",
  "running",
  "paused",
  "ready",
  "standby",
  "waiting",
  "pending",
  "aborting",
  "concluded",
  "null",
] as const;

export type JobStatus = (typeof JOB_STATUSES)[number];

/** Where each status may go. Everything else is a bug in the caller. */
export const TRANSITIONS = {
  undefined: ["created"],
  created: ["running", "aborting", "null"],
  running: ["paused", "ready", "waiting", "aborting"],
  paused: ["running"],
  ready: ["standby", "waiting", "aborting"],
  standby: ["ready"],
  waiting: ["pending", "aborting"],
  pending: ["aborting", "concluded"],
  aborting: ["aborting", "concluded"],
  concluded: ["null"],
  null: [],
} as const satisfies Record<JobStatus, readonly JobStatus[]>;

/** QAPI JobVerb (7.2 has no "change"); these spellings appear in error texts. */
export const JOB_VERBS = ["cancel", "pause", "resume", "set-speed", "complete", "finalize", "dismiss"] as const;

export type JobVerb = (typeof JOB_VERBS)[number];

const ACTIVE = ["created", "running", "paused", "ready", "standby"] as const;

/** The statuses in which each verb is accepted. */
export const VERB_TABLE = {
  cancel: [...ACTIVE, "waiting", "pending"],
  pause: ACTIVE,
  resume: ACTIVE,
  "set-speed": ACTIVE,
  complete: ["ready", "standby"],
  finalize: ["pending"],
  dismiss: ["concluded"],
} as const satisfies Record<JobVerb, readonly JobStatus[]>;

/**
 * The status after moving `from` → `to`; throws when the table forbids the
 * move (that is a bug in the job layer, never a user error).
 */
export function transition(from: JobStatus, to: JobStatus): JobStatus {
  if (!(TRANSITIONS[from] as readonly JobStatus[]).includes(to)) {
    throw new Error(`job state machine: illegal transition ${from} -> ${to}`);
  }
  return to;
}

export function allowVerb(verb: JobVerb, status: JobStatus): boolean {
  return (VERB_TABLE[verb] as readonly JobStatus[]).includes(status);
}

/**
 * QEMU's job_is_completed: the job's run has returned (or it never will),
 * whatever the outcome.
 */
export function isCompletedStatus(status: JobStatus): boolean {
  return COMPLETED.has(status);
}

const COMPLETED: ReadonlySet<JobStatus> = new Set(["waiting", "pending", "aborting", "concluded", "null"]);

/** QEMU's job_is_ready: BlockJobInfo.ready. */
export function isReadyStatus(status: JobStatus): boolean {
  return status === "ready" || status === "standby";
}
