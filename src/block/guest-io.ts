/**
 * Guest-style I/O through a BlockBackend: what a guest device (or the HMP
 * qemu-io command) does. Requests are bounds-checked against the backend's
 * length, and the backend first extends its permissions as qemu-io does
 * (and, like QEMU, never drops them again).
 */
import { genericError } from "../core/error.ts";
import { ioError, isImageIoError } from "../image/errors.ts";
import { BlockBackend } from "./backend.ts";
import { admitBackendIo } from "./io-limits.ts";
import type { BlockLayer } from "./index.ts";
import type { BdrvChild, BlockNode } from "./node.ts";
import { Perm, PERM_ALL } from "./perms.ts";

/** A backend to do I/O on: an existing named one, or a temporary one over a node. */
export interface IoTarget {
  readonly blk: BlockBackend;
  /** The backend's root edge; null for a drive without medium. */
  readonly edge: BdrvChild | null;
  /** Drop a temporary backend (no-op for named ones). */
  release(): Promise<void>;
}

/**
 * hmp_qemu_io's lookup: `-d` names a guest device; otherwise a backend name,
 * else a node-name with a temporary backend. Throws QEMU's lookup errors.
 */
export function openIoTarget(layer: BlockLayer, name: string, opts: { qdev?: boolean } = {}): IoTarget {
  if (opts.qdev) {
    const blk = layer.backends.find((b) => b.attachedDevice === name);
    if (!blk?.root) throw ioTargetError(`Device '${name}' not found`);
    return { blk, edge: blk.root, release: async () => {} };
  }
  const named = layer.findBackend(name);
  if (named) return { blk: named, edge: named.root, release: async () => {} };
  const node = layer.lookupNode(undefined, name);
  const blk = new BlockBackend("");
  const edge = layer.attachUser(blk, node, "root", 0, PERM_ALL);
  blk.root = edge;
  layer.backends.push(blk);
  return {
    blk,
    edge,
    release: async () => {
      layer.backends.splice(layer.backends.indexOf(blk), 1);
      await layer.detachUser(edge);
    },
  };
}

const ioTargetError = genericError;

/** command()'s permission extension in qemu-io-cmds.c. Throws the conflict text. */
export function ensurePerm(layer: BlockLayer, t: IoTarget, perm: number): void {
  const e = t.edge;
  if (e && perm & ~e.wantPerm) layer.setUserPerms(e, e.wantPerm | perm, e.wantShared);
}

function node(t: IoTarget): BlockNode {
  if (!t.blk.node) throw ioError("EIO", "No medium found");
  return t.blk.node;
}

/** blk_check_byte_request. */
function checkRange(t: IoTarget, offset: number, length: number): void {
  const len = node(t).size();
  if (offset < 0 || length < 0 || offset > len || len - offset < length) throw ioError("EIO");
}

export async function guestRead(t: IoTarget, buf: Uint8Array, offset: number): Promise<void> {
  checkRange(t, offset, buf.length);
  await admitBackendIo(t.blk, false, buf.length);
  await node(t).read(buf, offset);
}

/**
 * Not async: qemu-io's long writes call this once per piece, and every promise is garbage to collect.
 * `admitted`: a piece of a request guestAdmitWrite already let through.
 */
export function guestWrite(t: IoTarget, data: Uint8Array, offset: number, admitted = false): Promise<void> {
  try {
    checkRange(t, offset, data.length);
    // A backend with I/O limits waits for its throttle group first (blk_co_do_pwritev_part).
    const wait = admitted ? undefined : admitBackendIo(t.blk, true, data.length);
    if (wait) return wait.then(() => node(t).write(data, offset));
    return node(t).write(data, offset);
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Throttles a whole write once before it goes down in pieces (one operation for iops limits). */
export async function guestAdmitWrite(t: IoTarget, offset: number, length: number): Promise<void> {
  checkRange(t, offset, length);
  await admitBackendIo(t.blk, true, length);
}

export async function guestWriteZeroes(t: IoTarget, offset: number, length: number, unmap: boolean): Promise<void> {
  checkRange(t, offset, length);
  await admitBackendIo(t.blk, true, length);
  await node(t).writeZeroes(offset, length, { unmap });
}

export async function guestWriteCompressed(t: IoTarget, data: Uint8Array, offset: number): Promise<void> {
  checkRange(t, offset, data.length);
  const n = node(t);
  if (!n.supportsCompressedWrites) throw ioError("ENOTSUP");
  await admitBackendIo(t.blk, true, data.length);
  await n.writeCompressed(data, offset);
}

export async function guestDiscard(t: IoTarget, offset: number, length: number): Promise<void> {
  checkRange(t, offset, length);
  await node(t).discard(offset, length);
}

export async function guestFlush(t: IoTarget): Promise<void> {
  await node(t).flush();
}

export const WRITE_PERM = Perm.WRITE;
export const RESIZE_PERM = Perm.RESIZE;

/** strerror text of a failed request. */
export function errorText(e: unknown): string {
  if (isImageIoError(e)) return e.desc;
  if (e && typeof e === "object" && "desc" in e) return String((e as { desc: unknown }).desc);
  return String(e);
}
