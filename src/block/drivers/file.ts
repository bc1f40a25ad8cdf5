/** The `file` protocol driver: a host file through FileStore, with image locking. */
import * as fs from "node:fs";
import { FileStore } from "../../image/file-store.ts";
import { isQmpError, genericError } from "../../core/error.ts";
import { ioError, isImageIoError } from "../../image/errors.ts";
import type { DriverDef, NodeDriver } from "../driver.ts";
import { FileLocks } from "../locks.ts";
import { PERM_ALL } from "../perms.ts";

const ZERO = new Uint8Array(1 << 20);

export function fileDriver(locks: FileLocks): DriverDef {
  return {
    name: "file",
    kind: "protocol",
    strongOptions: ["filename"],
    fields: {
      filename: { type: "str", required: true },
      "pr-manager": { type: "str" },
      locking: { type: { enum: ["off", "on", "auto"] } },
      aio: { type: { enum: ["threads", "native", "io_uring"] } },
      "aio-max-batch": { type: "int" },
      "drop-cache": { type: "bool" },
      "x-check-cache-dropped": { type: "bool" },
    },
    async open(ctx): Promise<NodeDriver> {
      const filename = ctx.options.filename as string;
      let store: FileStore;
      try {
        if (fs.statSync(filename, { throwIfNoEntry: false })?.isDirectory()) throw ioError("EINVAL", "Is a directory");
        try {
          store = FileStore.open(filename, { readOnly: ctx.node.readOnly });
        } catch (e) {
          // auto-read-only: fall back to read-only when the file cannot be written.
          const errno = (e as { errno?: string }).errno;
          if (ctx.node.readOnly || !ctx.node.common.autoReadOnly || !["EACCES", "EROFS", "EPERM"].includes(errno ?? "")) throw e;
          store = FileStore.open(filename, { readOnly: true });
          ctx.node.readOnly = true;
        }
      } catch (e) {
        throw genericError(`Could not open '${filename}': ${isQmpError(e) ? e.desc : String(e)}`);
      }
      const locking = (ctx.options.locking as string | undefined) ?? "auto";
      const key = FileLocks.keyOf(filename);
      const holder = locking === "off" ? null : locks.holder(key);
      return {
        size: () => store.sizeSync(),
        read: (buf, offset) => store.pread(buf, offset),
        write: (data, offset) => store.pwrite(data, offset),
        async writeZeroes(offset, length, { unmap }) {
          if (unmap) return store.discard(offset, length);
          for (let pos = offset; pos < offset + length; pos += ZERO.length) {
            store.writeSync(ZERO.subarray(0, Math.min(ZERO.length, offset + length - pos)), pos);
          }
        },
        discard: (offset, length) => store.discard(offset, length),
        // node:fs cannot see holes (no SEEK_DATA): everything is data, like a fully allocated file.
        async blockStatus(offset, length) {
          const len = Math.max(0, Math.min(length, store.sizeSync() - offset));
          return { offset, length: len, allocated: true, zero: false, data: true };
        },
        flush: () => store.flush(),
        async resize(size) {
          try {
            await store.truncate(size);
          } catch (e) {
            // raw_co_truncate's words for a failed ftruncate.
            if (isImageIoError(e)) throw genericError(`Could not resize file: ${e.message}`);
            throw e;
          }
        },
        close: async () => {
          if (holder) locks.release(key, holder);
          await store.close();
        },
        filename: () => filename,
        imageInfo: () => ({ format: "file", "dirty-flag": false }),
        actualSize() {
          try {
            return fs.statSync(filename).blocks * 512;
          } catch {
            return 0;
          }
        },
        async reopen(readOnly: boolean) {
          const next = (() => {
            try {
              return FileStore.open(filename, { readOnly });
            } catch (e) {
              throw genericError(`Could not reopen file: ${isQmpError(e) ? e.desc : String(e)}`);
            }
          })();
          // The new descriptor takes over the locks before the old one (and its locks) goes.
          if (holder) locks.apply(holder, next.descriptor);
          await store.close();
          store = next;
        },
        checkPerm(perm, shared) {
          if (holder) locks.check(key, holder, perm, ctx.node.common.forceShare ? PERM_ALL : shared, { fd: store.descriptor, filename });
        },
        setPerm(perm, shared) {
          if (holder) {
            holder.perm = perm;
            holder.shared = ctx.node.common.forceShare ? PERM_ALL : shared;
            locks.apply(holder, store.descriptor);
          }
        },
      };
    },
  };
}
