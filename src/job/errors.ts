/**
 * Every user-visible error of the job layer, with QEMU 7.2's class and text,
 * in one table; `jobError(code, ...args)` builds the QmpError.
 */
import { QmpError, type ErrorClass } from "../core/error.ts";

const JOB_ERRORS = {
  "verb-not-allowed": {
    cls: "GenericError",
    text: (id: string, status: string, verb: string) =>
      `Job '${id}' in state '${status}' cannot accept command verb '${verb}'`,
  },
  "not-found": { cls: "GenericError", text: () => "Job not found" },
  "block-job-not-found": { cls: "DeviceNotActive", text: (id: string) => `Block job '${id}' not found` },
  "id-in-use": { cls: "GenericError", text: (id: string) => `Job ID '${id}' already in use` },
  "id-invalid": { cls: "GenericError", text: (id: string) => `Invalid job ID '${id}'` },
  "id-required": { cls: "GenericError", text: () => "An explicit job ID is required" },
  "id-on-internal": { cls: "GenericError", text: () => "Cannot specify job ID for internal job" },
  "already-paused": { cls: "GenericError", text: () => "Job is already paused" },
  "not-paused": { cls: "GenericError", text: () => "Can't resume a job that was not paused" },
  "cancel-paused": {
    cls: "GenericError",
    text: (id: string) => `The block job for device '${id}' is currently paused`,
  },
  "cannot-complete": { cls: "GenericError", text: (id: string) => `The active block job '${id}' cannot be completed` },
  "negative-speed": { cls: "GenericError", text: () => "Parameter 'speed' expects a non-negative value" },
} as const satisfies Record<string, { cls: ErrorClass; text: (...args: string[]) => string }>;

export type JobErrorCode = keyof typeof JOB_ERRORS;

export function jobError<C extends JobErrorCode>(code: C, ...args: Parameters<(typeof JOB_ERRORS)[C]["text"]>): QmpError {
  const entry = JOB_ERRORS[code];
  return new QmpError(entry.cls, (entry.text as (...a: string[]) => string)(...(args as string[])));
}
