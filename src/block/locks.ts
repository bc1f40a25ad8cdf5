/**
 * Image locking between file nodes of this process, the way QEMU's OFD
 * byte locks behave: each locked file node holds its permissions and the
 * permissions it refuses to share; a node may not take a permission another
 * node of the same file refuses, nor refuse one another node holds.
 * (Other processes are not seen: node:fs has no OFD locks.)
 */
import * as fs from "node:fs";
import { genericError } from "../core/error.ts";
import { PERM_ALL, permProse } from "./perms.ts";

interface Holder {
  perm: number;
  shared: number;
}

const BITS = [1, 2, 4, 8];

export class FileLocks {
  private readonly files = new Map<string, Set<Holder>>();

  /** Identity of a file: device + inode when it exists, else its path. */
  static keyOf(path: string): string {
    try {
      const st = fs.statSync(path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return path;
    }
  }

  holder(key: string): Holder {
    const h: Holder = { perm: 0, shared: PERM_ALL };
    let set = this.files.get(key);
    if (!set) this.files.set(key, (set = new Set()));
    set.add(h);
    return h;
  }

  release(key: string, h: Holder): void {
    this.files.get(key)?.delete(h);
  }

  /** raw_check_lock_bytes: throws QEMU's message for the first conflicting bit. */
  check(key: string, self: Holder, perm: number, shared: number): void {
    const others = [...(this.files.get(key) ?? [])].filter((h) => h !== self);
    for (const bit of BITS) {
      if (perm & bit && others.some((o) => !(o.shared & bit))) throw genericError(`Failed to get "${permProse(bit)}" lock`);
    }
    for (const bit of BITS) {
      if (!(shared & bit) && others.some((o) => o.perm & bit)) throw genericError(`Failed to get shared "${permProse(bit)}" lock`);
    }
  }
}
