/**
 * blockdev-create for the `file` driver: create (or truncate) a host file
 * and give it its size, QEMU's raw_co_create with its messages.
 */
import * as fs from "node:fs";
import { genericError } from "../../core/error.ts";
import { strerror } from "../../core/errno.ts";

export interface CreateFileRequest {
  filename: string;
  /** A bigint when the request held more than 2^53 (QAPI's uint64). */
  size: number | bigint;
  preallocation?: "off" | "metadata" | "falloc" | "full";
}


const ZEROS = new Uint8Array(1 << 20);

/** ftruncate's answer for a size JavaScript cannot pass on exactly. */
function hugeSizeError(size: bigint): Error {
  // Above INT64_MAX the off_t is negative.
  return genericError(`Could not resize file: ${size > 0x7fffffffffffffffn ? "Invalid argument" : "File too large"}`);
}

/** `firstIo` is awaited where QEMU's coroutine first waits for the disk (the truncate). */
export async function createFile(req: CreateFileRequest, firstIo: () => Promise<void> = async () => {}): Promise<void> {
  const prealloc = req.preallocation ?? "off";
  let fd: number;
  try {
    fd = fs.openSync(req.filename, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  } catch (e) {
    throw genericError(`Could not create '${req.filename}': ${strerror(e)}`);
  }
  try {
    await firstIo();
    // raw_regular_truncate's worker thread finds this, after the file is open.
    if (prealloc === "metadata") throw genericError("Unsupported preallocation mode: metadata");
    if (typeof req.size === "bigint") throw hugeSizeError(req.size);
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
