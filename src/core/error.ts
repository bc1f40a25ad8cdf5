/**
 * Errors are data: anything below the dispatcher throws a QmpError and the
 * dispatcher turns it into QEMU's {"error": {"class", "desc"}} reply.
 */
export const ERROR_CLASSES = [
  "GenericError",
  "CommandNotFound",
  "DeviceNotActive",
  "DeviceNotFound",
  "KVMMissingCap",
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

export class QmpError extends Error {
  /** QEMU's error_append_hint text: printed after the message on the command line, never sent over QMP. */
  hint?: string;

  constructor(
    readonly errorClass: ErrorClass,
    readonly desc: string,
  ) {
    super(desc);
    this.name = "QmpError";
  }

  toJSON(): { class: ErrorClass; desc: string } {
    return { class: this.errorClass, desc: this.desc };
  }
}

/** The common case: QEMU reports nearly everything as GenericError. */
export function genericError(desc: string): QmpError {
  return new QmpError("GenericError", desc);
}

export function isQmpError(e: unknown): e is QmpError {
  return e instanceof QmpError;
}
