/**
 * Block permissions (QEMU 7.2 has exactly these four) and their two
 * spellings: QAPI enum names for x-debug-query-block-graph, prose names for
 * "Permission conflict" messages.
 */
export const Perm = {
  CONSISTENT_READ: 1,
  WRITE: 2,
  WRITE_UNCHANGED: 4,
  RESIZE: 8,
} as const;

export const PERM_ALL = 0xf;

const PERM_TABLE = [
  { bit: Perm.CONSISTENT_READ, qapi: "consistent-read", prose: "consistent read" },
  { bit: Perm.WRITE, qapi: "write", prose: "write" },
  { bit: Perm.WRITE_UNCHANGED, qapi: "write-unchanged", prose: "write unchanged" },
  { bit: Perm.RESIZE, qapi: "resize", prose: "resize" },
] as const;

/** "write, resize": what conflict messages print. */
export function permProse(perm: number): string {
  return PERM_TABLE.filter((p) => perm & p.bit).map((p) => p.prose).join(", ");
}

/** QEMU lists BlockPermission arrays highest bit first (it prepends). */
export function permQapiList(perm: number): string[] {
  return PERM_TABLE.filter((p) => perm & p.bit).map((p) => p.qapi).reverse();
}

/** Filters forward their parents' needs unchanged. */
export function filterPerms(perm: number, shared: number): [number, number] {
  return [perm & PERM_ALL, shared & PERM_ALL];
}

/**
 * A format node's view of its storage child (bdrv_default_perms_for_storage):
 * metadata means it writes and resizes whenever it is writable, always needs
 * a consistent view, and never lets anyone else change the bytes under it.
 */
export function storagePerms(perm: number, shared: number, writable: boolean): [number, number] {
  let [p, s] = filterPerms(perm, shared);
  if (writable) p |= Perm.WRITE | Perm.RESIZE;
  p |= Perm.CONSISTENT_READ;
  s &= ~(Perm.WRITE | Perm.RESIZE);
  return [p, s];
}

/** A format node's view of its backing child (bdrv_default_perms_for_cow). */
export function cowPerms(perm: number, shared: number): [number, number] {
  const p = perm & Perm.CONSISTENT_READ;
  let s = shared & Perm.WRITE ? Perm.WRITE | Perm.RESIZE : 0;
  s |= Perm.CONSISTENT_READ | Perm.WRITE_UNCHANGED;
  return [p, s];
}
