/**
 * Errors raised by the image library.
 *
 * Open/create failures carry QEMU's exact message as a GenericError (the
 * block layer usually prefixes it, e.g. with the node or file name).
 * I/O failures during reads and writes carry an errno name as well, because
 * the block layer reports them by errno (BLOCK_IO_ERROR, job error text).
 */
import { QmpError } from "../core/error.ts";
import { STRERROR } from "../core/errno.ts";

/** errno names we raise, with the strerror text QEMU prints for them. */
export const ERRNO_TEXT = {
  EIO: STRERROR.EIO!,
  EINVAL: STRERROR.EINVAL!,
  ENOSPC: STRERROR.ENOSPC!,
  EPERM: STRERROR.EPERM!,
  EACCES: STRERROR.EACCES!,
  EROFS: STRERROR.EROFS!,
  EFBIG: STRERROR.EFBIG!,
  ENOTSUP: STRERROR.ENOTSUP!,
  ENOENT: STRERROR.ENOENT!,
  EBUSY: STRERROR.EBUSY!,
} as const;

export type Errno = keyof typeof ERRNO_TEXT;

/** A failed read/write/flush: `desc` is the strerror text, `errno` its name. */
export class ImageIoError extends QmpError {
  constructor(
    readonly errno: Errno,
    desc: string = ERRNO_TEXT[errno],
  ) {
    super("GenericError", desc);
    this.name = "ImageIoError";
  }
}

export function ioError(errno: Errno, desc?: string): ImageIoError {
  return new ImageIoError(errno, desc);
}

/** An image that cannot be opened or created, with QEMU's message. */
export function formatError(desc: string): QmpError {
  return new QmpError("GenericError", desc);
}

export function isImageIoError(e: unknown): e is ImageIoError {
  return e instanceof ImageIoError;
}

/** Maps a node:fs error to ImageIoError (keeps the errno when we know its text). */
export function fromFsError(e: unknown): ImageIoError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code && code in ERRNO_TEXT) return new ImageIoError(code as Errno);
  return new ImageIoError("EIO");
}
