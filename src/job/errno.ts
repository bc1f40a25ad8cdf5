/**
 * Job failures carry a message (QEMU's Error) and an errno (QEMU's ret).
 * When a driver only has an errno, the message is glibc's strerror text,
 * which is what QEMU shows in BLOCK_JOB_COMPLETED.error and query-jobs.
 */
import { STRERROR } from "../core/errno.ts";

export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const EFBIG = 27;
export const ENOSPC = 28;
export const EROFS = 30;
export const ERANGE = 34;
export const ENOTSUP = 95;
export const ECANCELED = 125;

/** errno numbers (Linux) to their names, for the core table's texts. */
const NAMES: Record<number, string> = {
  [EPERM]: "EPERM", [ENOENT]: "ENOENT", [EIO]: "EIO", [E2BIG]: "E2BIG", [EAGAIN]: "EAGAIN", [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES", [EBUSY]: "EBUSY", [EEXIST]: "EEXIST", [EINVAL]: "EINVAL", [EFBIG]: "EFBIG", [ENOSPC]: "ENOSPC",
  [EROFS]: "EROFS", [ERANGE]: "ERANGE", [ENOTSUP]: "ENOTSUP", [ECANCELED]: "ECANCELED",
};

/** glibc's text for a (positive or negative) errno. */
export function strerror(errno: number): string {
  const e = Math.abs(errno);
  return STRERROR[NAMES[e] ?? ""] ?? `Unknown error ${e}`;
}

/**
 * What a driver throws to fail its job: the message becomes the job's
 * error text; `errno` (positive) is kept as the job's return code.
 * Any other thrown value fails the job too (message = its text, errno EIO).
 */
export class JobFailure extends Error {
  constructor(
    message: string,
    readonly errno: number = EIO,
  ) {
    super(message);
    this.name = "JobFailure";
  }

  /** A failure described only by an errno: the text is strerror's. */
  static fromErrno(errno: number): JobFailure {
    return new JobFailure(strerror(errno), Math.abs(errno));
  }
}

/** The (message, positive errno) pair a thrown value stands for. */
export function describeFailure(e: unknown): { message: string; errno: number } {
  if (e instanceof JobFailure) return { message: e.message, errno: e.errno };
  if (e instanceof Error) {
    const errno = (e as { errno?: unknown }).errno;
    return { message: e.message, errno: typeof errno === "number" && errno !== 0 ? Math.abs(errno) : EIO };
  }
  return { message: String(e), errno: EIO };
}
