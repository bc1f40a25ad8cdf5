/**
 * blockdev-create for the `file` driver: create (or truncate) a host file
 * and give it its size, QEMU's raw_co_create with its messages.
 */
import * as fs from "node:fs";
import { genericError } from "../../core/error.ts";
import { ERRNO_TEXT } from "../../image/errors.ts";

export interface CreateFileRequest {
  filename: string;
  size: number;
  preallocation?: "off" | "metadata" | "falloc" | "full";
}

function strerror(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code && code in ERRNO_TEXT) return ERRNO_TEXT[code as keyof typeof ERRNO_TEXT];
  if (code === "EISDIR") return "Is a directory";
  if (code === "ENOTDIR") return "Not a directory";
  return (e as Error)?.message ?? String(e);
}

const ZEROS = new Uint8Array(1 << 20);

export async function createFile(req: CreateFileRequest): Promise<void> {
  const prealloc = req.preallocation ?? "off";
  if (prealloc === "metadata") throw genericError("Unsupported preallocation mode: metadata");
  let fd: number;
  try {
    fd = fs.openSync(req.filename, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  } catch (e) {
    throw genericError(`Could not create '${req.filename}': ${strerror(e)}`);
  }
  try {
    if (req.size < 0) throw genericError("Could not resize file: Invalid argument");
    // existing content is discarded: truncate to 0 first, then grow
    fs.ftruncateSync(fd, 0);
    if (prealloc === "full" || prealloc === "falloc") {
      for (let pos = 0; pos < req.size; pos += ZEROS.length) {
        fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, req.size - pos), pos);
      }
    }
    fs.ftruncateSync(fd, req.size);
  } catch (e) {
    if (e instanceof Error && e.name === "QmpError") throw e;
    throw genericError(`Could not resize file: ${strerror(e)}`);
  } finally {
    fs.closeSync(fd);
  }
}
