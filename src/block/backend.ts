/**
 * BlockBackend: the named front of a node tree (-drive id=drive0), what
 * query-block lists and what "device" arguments name first. A backend
 * without a name is a temporary user (qemu-io on a node-name).
 */
import type { BdrvChild, BlockNode, ExternalParent } from "./node.ts";
import { Perm, PERM_ALL } from "./perms.ts";

export class BlockBackend implements ExternalParent {
  readonly kind = "block-backend" as const;
  root: BdrvChild | null = null;
  /** BlockInfo.removable / locked / tray: -drive if=none media is removable. */
  removable = true;
  locked = false;
  /** Write cache enabled (cache=writeback/none/unsafe). */
  writeback = true;
  /** The guest device using it, if any (-M none has none). */
  attachedDevice: string | null = null;
  ioStatus: "ok" | "failed" | "nospace" = "ok";
  /** Options the backend's node was opened with (-drive readonly etc.), for change/eject if ever needed. */
  readOnly = false;
  /** Error policies from -drive werror=/rerror=. */
  werror = "enospc";
  rerror = "report";

  /**
   * What the backend asks of its medium (blk->perm / shared_perm), kept while
   * no medium is inserted: the next medium is attached with these. An empty
   * -drive asks for nothing.
   */
  perm = 0;
  shared = PERM_ALL;
  /**
   * BlockBackendRootState: how the next medium is opened (change-medium).
   * Set for an empty -drive and whenever a medium is removed.
   */
  rootState: MediumRootState | null = null;

  constructor(readonly name: string) {}

  get graphName(): string {
    return this.name;
  }

  describe(): string {
    if (this.name) return `block device '${this.name}'`;
    if (this.attachedDevice) return `block device '${this.attachedDevice}'`;
    return "an unnamed block device";
  }

  get node(): BlockNode | null {
    return this.root?.node ?? null;
  }
}

/** The open flags a new medium inherits (QEMU's root_state.open_flags and detect_zeroes). */
export interface MediumRootState {
  readOnly: boolean;
  cacheDirect: boolean;
  cacheNoFlush: boolean;
  discard: "ignore" | "unmap";
  /** Only on/off survives: QEMU keeps the enum but reads it back as a bool. */
  detectZeroes: boolean;
}

/**
 * What a -drive backend holds: consistent read only, sharing everything.
 * QEMU 7.2 adds write/resize when a user (qemu-io) needs them, and keeps them.
 */
export const DRIVE_BACKEND_PERMS = { perm: Perm.CONSISTENT_READ, shared: PERM_ALL } as const;
