/**
 * bdrv_commit, behind HMP `commit`: copies what a node holds itself into its
 * backing file, then empties the node, all at once rather than as a job.
 * Failures are errno errors, which HMP prints as "'commit' error for ...".
 */
import { ioError } from "../image/errors.ts";
import { BlockBackend } from "./backend.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode } from "./node.ts";
import { Perm, PERM_ALL } from "./perms.ts";

/** COMMIT_BUF_SIZE: the unit of the allocation scan and of each copy. */
const CHUNK = 2 << 20;

export async function commitToBacking(layer: BlockLayer, top: BlockNode): Promise<void> {
  const base = top.backing?.node;
  if (!base) throw ioError("ENOTSUP");
  if (top.opBlockedReason("commit-source") || base.opBlockedReason("commit-target")) throw ioError("EBUSY");
  const wasReadOnly = base.readOnly;
  if (wasReadOnly) {
    try {
      await layer.reopen(base, false);
    } catch {
      throw ioError("EACCES");
    }
  }
  const users = [];
  try {
    try {
      users.push(layer.attachUser(new BlockBackend(""), top, "root", Perm.CONSISTENT_READ, PERM_ALL));
      users.push(layer.attachUser(new BlockBackend(""), base, "root", Perm.WRITE | Perm.RESIZE, PERM_ALL));
    } catch {
      throw ioError("EPERM");
    }
    const length = top.size();
    if (length > base.size()) await base.resize(length);
    const buf = new Uint8Array(CHUNK);
    for (let offset = 0; offset < length; ) {
      const ext = await top.blockStatus(offset, Math.min(CHUNK, length - offset));
      const n = Math.max(1, Math.min(ext.length, length - offset));
      if (ext.allocated) {
        const piece = buf.subarray(0, n);
        await top.read(piece, offset);
        await base.write(piece, offset);
      }
      offset += n;
    }
    if (top.driver.makeEmpty) {
      await top.driver.makeEmpty();
      await top.flush();
    }
    await base.flush();
  } finally {
    for (const u of users.reverse()) await layer.detachUser(u);
    if (wasReadOnly) await layer.reopen(base, true).catch(() => {});
  }
}
