/**
 * The adapter between the mirror / stream / commit bodies (JobRuntime in
 * ./mirror-runtime.ts) and the job layer (src/job).
 *
 *   createSyncJob(emu, spec)  creates the job (JOB_STATUS_CHANGE created);
 *                             throws QEMU's job-id / speed errors (after a
 *                             created → null pair for a negative speed).
 *   handle.start(hooks)       the command committed: the job runs `hooks.run`
 *                             with a JobRuntime; complete/cancel/prepare/
 *                             abort/clean are the driver callbacks.
 *   handle.discard()          the command failed after creating the job.
 */
import { genericError } from "../../core/error.ts";
import type { Emulator } from "../../emulator.ts";
import type { JobRuntime } from "./mirror-runtime.ts";

export interface SyncJobSpec {
  id: string;
  type: "mirror" | "stream" | "commit";
  speed: number;
  autoFinalize: boolean;
  autoDismiss: boolean;
}

export interface SyncJobHooks {
  run(rt: JobRuntime): Promise<void>;
  /** job-complete; absent: the job cannot be completed. */
  complete?(): void;
  /** Whether a cancel is a real (force) cancel; default: always. */
  cancel?(force: boolean): boolean;
  prepare?(): void | Promise<void>;
  abort?(): void | Promise<void>;
  clean?(): void | Promise<void>;
}

export interface SyncJobHandle {
  readonly id: string;
  start(hooks: SyncJobHooks): Promise<void>;
  discard(): void;
}

export function createSyncJob(_emu: Emulator, _spec: SyncJobSpec): SyncJobHandle {
  throw genericError("The job layer is not available");
}
