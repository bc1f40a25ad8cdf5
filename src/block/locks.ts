/**
 * Image locking the way QEMU's OFD byte locks behave: each locked file node
 * holds its permissions and the permissions it refuses to share; a node may
 * not take a permission another user of the same file refuses, nor refuse
 * one another holds. Between file nodes of this process the bookkeeping here
 * decides; other processes (QEMU, another qmpemu) are seen through the real
 * OFD locks of ./ofd-locks.ts where the runtime reaches them.
 */
import * as fs from "node:fs";
import { genericError, type QmpError } from "../core/error.ts";
import { LOCK_PERM_BASE, LOCK_SHARED_BASE, ofdLocks, type OfdLocks } from "./ofd-locks.ts";
import { PERM_ALL, permProse } from "./perms.ts";

interface Holder {
  perm: number;
  shared: number;
  /** What the descriptor's lock bytes already say (refreshes mostly change nothing). */
  applied?: { fd: number; perm: number; shared: number };
}

const BITS = [1, 2, 4, 8];

export class FileLocks {
  private readonly files = new Map<string, Set<Holder>>();

  private hostLocks: OfdLocks | null | undefined;

  /** `host`: the OFD locks to use (default: the runtime's, looked up on first use). */
  constructor(host?: OfdLocks | null) {
    this.hostLocks = host;
  }

  private get host(): OfdLocks | null {
    if (this.hostLocks === undefined) this.hostLocks = ofdLocks();
    return this.hostLocks;
  }

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

  /**
   * raw_check_lock_bytes: throws QEMU's message (and hint) for the first
   * conflicting bit, with users in this process first, then, given the
   * node's descriptor, any other open file of the image.
   */
  check(key: string, self: Holder, perm: number, shared: number, file?: { fd: number; filename: string }): void {
    const others = [...(this.files.get(key) ?? [])].filter((h) => h !== self);
    // Bits this descriptor already locks were checked when taken: other processes check against them since.
    const mine = self.applied && file && self.applied.fd === file.fd ? self.applied : { perm: 0, shared: PERM_ALL };
    const held = (bit: number, base: number, here: (o: Holder) => boolean) => {
      if (others.some(here)) return true;
      const known = base === LOCK_SHARED_BASE ? mine.perm & bit : !(mine.shared & bit);
      return !known && !!file && file.fd >= 0 && !!this.host?.heldByOthers(file.fd, base + Math.log2(bit));
    };
    const fail = (text: string): never => {
      const e: QmpError = genericError(text);
      if (file) e.hint = `Is another process using the image [${file.filename}]?\n`;
      throw e;
    };
    for (const bit of BITS) {
      if (perm & bit && held(bit, LOCK_SHARED_BASE, (o) => !(o.shared & bit))) fail(`Failed to get "${permProse(bit)}" lock`);
    }
    for (const bit of BITS) {
      if (!(shared & bit) && held(bit, LOCK_PERM_BASE, (o) => !!(o.perm & bit))) fail(`Failed to get shared "${permProse(bit)}" lock`);
    }
  }

  /** raw_apply_lock_bytes: the descriptor's lock bytes say what `self` holds and refuses to share. */
  apply(self: Holder, fd: number): void {
    if (!this.host || fd < 0) return;
    const was = self.applied?.fd === fd ? self.applied : undefined;
    for (const bit of BITS) {
      const holds = !!(self.perm & bit);
      const refuses = !(self.shared & bit);
      if (!was || holds !== !!(was.perm & bit)) this.host.set(fd, LOCK_PERM_BASE + Math.log2(bit), holds);
      if (!was || refuses !== !(was.shared & bit)) this.host.set(fd, LOCK_SHARED_BASE + Math.log2(bit), refuses);
    }
    self.applied = { fd, perm: self.perm, shared: self.shared };
  }
}
