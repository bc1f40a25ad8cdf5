/**
 * QEMU's image locks between processes: open-file-description (OFD) byte
 * locks on the image file, so qmpemu and QEMU (or two qmpemus) refuse to
 * write one image at once, each with QEMU's "Failed to get ... lock".
 *
 * The protocol is QEMU's (file-posix.c): a shared lock on byte 100 + bit
 * while holding permission `bit`, and on byte 200 + bit while refusing to
 * share it; a conflict is another open file description holding the byte a
 * request must see free. node:fs has no fcntl, so this needs Bun's FFI into
 * libc (Linux); under Node it is unavailable and only the in-process locks
 * of ./locks.ts apply.
 */
import { createRequire } from "node:module";

export const LOCK_PERM_BASE = 100;
export const LOCK_SHARED_BASE = 200;

export interface OfdLocks {
  /** Whether an open file description other than `fd`'s holds a lock on byte `byte`. */
  heldByOthers(fd: number, byte: number): boolean;
  /** Takes (shared) or drops this descriptor's lock on byte `byte`. */
  set(fd: number, byte: number, locked: boolean): void;
}

// Linux's generic values (x86-64 and arm64 alike).
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
/** struct flock on 64-bit Linux: l_type (i16), l_whence (i16), l_start (i64 at 8), l_len (i64 at 16), l_pid (i32 at 24). */
const FLOCK_SIZE = 32;

type Fcntl = (fd: number, cmd: number, arg: unknown) => number;

function loadFcntl(): { fcntl: Fcntl; ptr: (b: Uint8Array) => unknown } | null {
  if (process.platform !== "linux" || typeof (globalThis as { Bun?: unknown }).Bun === "undefined") return null;
  try {
    const ffi = createRequire(import.meta.url)("bun:ffi");
    const lib = ffi.dlopen("libc.so.6", { fcntl: { args: ["i32", "i32", "ptr"], returns: "i32" } });
    return { fcntl: lib.symbols.fcntl, ptr: ffi.ptr };
  } catch {
    return null;
  }
}

let loaded: OfdLocks | null | undefined;

/** The host's OFD locks, or null where they cannot be reached (Node, not Linux). */
export function ofdLocks(): OfdLocks | null {
  if (loaded !== undefined) return loaded;
  const lib = loadFcntl();
  if (!lib) return (loaded = null);
  const buf = new Uint8Array(FLOCK_SIZE);
  const view = new DataView(buf.buffer);
  const request = (type: number, byte: number) => {
    buf.fill(0);
    view.setInt16(0, type, true);
    view.setBigInt64(8, BigInt(byte), true);
    view.setBigInt64(16, 1n, true);
    return lib.ptr(buf);
  };
  loaded = {
    heldByOthers(fd, byte) {
      // As QEMU's qemu_lock_fd_test: would an exclusive lock be refused?
      if (lib.fcntl(fd, F_OFD_GETLK, request(F_WRLCK, byte)) !== 0) return false;
      return view.getInt16(0, true) !== F_UNLCK;
    },
    set(fd, byte, locked) {
      lib.fcntl(fd, F_OFD_SETLK, request(locked ? F_RDLCK : F_UNLCK, byte));
    },
  };
  return loaded;
}
