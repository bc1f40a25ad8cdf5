/**
 * Internal (in-image) snapshots at the block layer: QEMU's
 * internal_snapshot_prepare/abort and qmp_blockdev_snapshot_delete_internal_sync
 * (blockdev.c), the SnapshotInfo they report, and which nodes take part in
 * the "all disks" view of HMP `info snapshots` (block/snapshot.c).
 */
import { genericError } from "../core/error.ts";
import { isImageIoError } from "../image/errors.ts";
import type { StoredSnapshot } from "../image/qcow2/snapshots.ts";
import type { InternalSnapshotStore } from "./driver.ts";
import type { BlockLayer } from "./index.ts";
import { skipFilters, type BlockNode } from "./node.ts";
import { sizeToStr } from "./query.ts";

type Json = Record<string, unknown>;

/** bdrv_snapshot_fallback: filters hand snapshots to the node they filter. */
function store(node: BlockNode): InternalSnapshotStore | undefined {
  return skipFilters(node).driver.internalSnapshots?.();
}

/** bdrv_can_snapshot: inserted, writable, and a format that keeps internal snapshots. */
export function canSnapshot(node: BlockNode): boolean {
  return !node.ejected && !node.readOnly && store(node) !== undefined;
}

/** The node's snapshots ([] for formats without them). */
export function listSnapshots(node: BlockNode): StoredSnapshot[] {
  return store(node)?.snapshots() ?? [];
}

/** SnapshotInfo in QEMU's member order (icount only when recorded). */
export function snapshotInfo(s: StoredSnapshot): Json {
  const out: Json = {
    id: s.id,
    name: s.name,
    "vm-state-size": s.vmStateSize,
    "date-sec": s.dateSec,
    "date-nsec": s.dateNsec,
    "vm-clock-sec": Math.floor(s.vmClockNsec / 1e9),
    "vm-clock-nsec": s.vmClockNsec % 1e9,
  };
  if (s.icount !== null) out.icount = s.icount;
  return out;
}

/** qmp_get_root_bs. */
function rootNode(layer: BlockLayer, device: string): BlockNode {
  const bs = layer.lookupDeviceOrNode(device);
  if (!layer.isRoot(bs)) throw genericError("Need a root block node");
  if (bs.ejected) throw genericError("Device has no medium");
  return bs;
}

/** What the snapshot records of the moment it is taken. */
export interface SnapshotMoment {
  /** Wall clock in microseconds (g_get_real_time). */
  realTimeUs: number;
  /** QEMU_CLOCK_VIRTUAL in nanoseconds. */
  vmClockNs: number;
}

export interface TakenSnapshot {
  node: BlockNode;
  id: string;
  name: string;
}

/** internal_snapshot_prepare's checks (after the root lookup), in QEMU's order. */
export async function takeInternalSnapshot(
  layer: BlockLayer,
  device: string,
  name: string,
  moment: () => SnapshotMoment,
  onRoot?: (node: BlockNode) => void,
): Promise<TakenSnapshot> {
  const bs = rootNode(layer, device);
  onRoot?.(bs);
  layer.checkOp(bs, "internal-snapshot");
  if (bs.readOnly) throw genericError(`Device '${device}' is read only`);
  const st = canSnapshot(bs) ? store(bs) : undefined;
  if (!st) {
    throw genericError(`Block format '${bs.driverName}' used by device '${device}' does not support internal snapshots`);
  }
  if (!name) throw genericError("Name is empty");
  if (st.snapshots().some((s) => s.name === name)) {
    throw genericError(`Snapshot with name '${name}' already exists on device '${device}'`);
  }
  const m = moment();
  try {
    const sn = await st.createSnapshot({
      name,
      dateSec: Math.floor(m.realTimeUs / 1e6),
      dateNsec: (m.realTimeUs % 1e6) * 1000,
      vmClockNsec: m.vmClockNs,
      icount: null,
    });
    return { node: bs, id: sn.id, name: sn.name };
  } catch (e) {
    if (isImageIoError(e)) throw genericError(`Failed to create snapshot '${name}' on device '${device}': ${e.desc}`);
    throw e;
  }
}

/** internal_snapshot_abort: the snapshot just taken goes again (failures are only reported on stderr). */
export async function dropTakenSnapshot(t: TakenSnapshot): Promise<void> {
  try {
    await store(t.node)?.deleteSnapshot(t.id, t.name);
  } catch {
    // QEMU prints "Failed to delete snapshot ... in abort" and carries on.
  }
}

/** qmp_blockdev_snapshot_delete_internal_sync: returns the deleted snapshot's SnapshotInfo. */
export async function deleteInternalSnapshot(layer: BlockLayer, device: string, id?: string, name?: string): Promise<Json> {
  const bs = rootNode(layer, device);
  if (id === undefined && name === undefined) throw genericError("Name or id must be provided");
  layer.checkOp(bs, "internal-snapshot-delete");
  const st = store(bs);
  if (!st || bs.ejected) throw genericError("Failed to get a snapshot list: Operation not supported");
  const match = st.snapshots().find((s) => (id === undefined || s.id === id) && (name === undefined || s.name === name));
  if (!match) {
    throw genericError(
      `Snapshot with id '${id ?? "null"}' and name '${name ?? "null"}' does not exist on device '${device}'`,
    );
  }
  try {
    await st.deleteSnapshot(id ?? null, name ?? null);
  } catch (e) {
    if (isImageIoError(e)) throw genericError(`Failed to remove snapshot from snapshot list: ${e.desc}`);
    throw e;
  }
  return snapshotInfo(match);
}

/** bdrv_all_snapshots_includes_bs: writable nodes under a backend, or the monitor's own unattached ones. */
function inAllSnapshots(layer: BlockLayer, node: BlockNode): boolean {
  if (node.ejected || node.readOnly) return false;
  return layer.backendsOf(node).length > 0 || node.parents.length === 0;
}

/**
 * HMP `info snapshots` (hmp_info_snapshots): snapshots every included disk
 * has (by name) first, then per device the rest.
 */
export function snapshotsReport(layer: BlockLayer, nodes: readonly BlockNode[], deviceName: (n: BlockNode) => string, formatDate: (sec: number) => string): string {
  const included = nodes.filter((n) => inAllSnapshots(layer, n));
  const vmstate = included.find(canSnapshot);
  if (!vmstate) return "no block device can store vmstate for snapshot\n";
  const perImage = nodes
    .filter(canSnapshot)
    .map((n) => ({ name: deviceName(n), snaps: listSnapshots(n) }))
    .filter((e) => e.snaps.length > 0);
  if (perImage.length === 0) return "There is no snapshot available.\n";
  const globals = listSnapshots(vmstate).filter((s) => included.every((n) => canSnapshot(n) && listSnapshots(n).some((o) => o.name === s.name)));
  for (const g of globals) for (const e of perImage) e.snaps = e.snaps.filter((s) => s.name !== g.name);
  let out = "List of snapshots present on all disks:\n";
  if (globals.length) {
    out += dumpHeader() + "\n";
    for (const g of globals) out += dumpLine({ ...g, id: "--" }, formatDate) + "\n";
  } else {
    out += "None\n";
  }
  for (const e of perImage) {
    if (!e.snaps.length) continue;
    out += `\nList of partial (non-loadable) snapshots on '${e.name}':\n` + dumpHeader() + "\n";
    for (const s of e.snaps) out += dumpLine(s, formatDate) + "\n";
  }
  return out;
}

const padEnd = (s: string, n: number) => s.padEnd(n);
const padStart = (s: string, n: number) => s.padStart(n);

function dumpHeader(): string {
  return padEnd("ID", 10) + padEnd("TAG", 17) + padStart("VM SIZE", 8) + padStart("DATE", 20) + padStart("VM CLOCK", 13) + padStart("ICOUNT", 11);
}

/** bdrv_snapshot_dump of one snapshot. */
function dumpLine(s: StoredSnapshot, formatDate: (sec: number) => string): string {
  const secs = Math.floor(s.vmClockNsec / 1e9);
  const two = (n: number) => String(n).padStart(2, "0");
  const clock = `${two(Math.floor(secs / 3600))}:${two(Math.floor(secs / 60) % 60)}:${two(secs % 60)}.${String(Math.floor(s.vmClockNsec / 1e6) % 1000).padStart(3, "0")}`;
  const icount = s.icount === null ? "" : String(s.icount);
  return `${padEnd(s.id, 9)} ${padEnd(s.name, 16)} ${padStart(vmSize(s.vmStateSize), 8)}${padStart(formatDate(s.dateSec), 20)}${padStart(clock, 13)}${padStart(icount, 11)}`;
}

/** size_to_str with its byte unit ("0 B", "1.5 MiB"). */
function vmSize(bytes: number): string {
  const t = sizeToStr(bytes);
  return t.endsWith(" ") ? `${t}B` : t;
}

/** g_date_time_format(local time, "%Y-%m-%d %H:%M:%S"), as bdrv_snapshot_dump prints dates. */
export function localDateTime(sec: number): string {
  const d = new Date(sec * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** bdrv_image_info_dump's "Snapshot list:" section, from ImageInfo's SnapshotInfo list. */
export function snapshotListDump(list: readonly Json[]): string {
  let out = "Snapshot list:\n" + dumpHeader() + "\n";
  for (const i of list) {
    const s: StoredSnapshot = {
      l1TableOffset: 0,
      l1Size: 0,
      id: i.id as string,
      name: i.name as string,
      dateSec: i["date-sec"] as number,
      dateNsec: i["date-nsec"] as number,
      vmClockNsec: (i["vm-clock-sec"] as number) * 1e9 + (i["vm-clock-nsec"] as number),
      vmStateSize: i["vm-state-size"] as number,
      diskSize: null,
      icount: (i.icount as number | undefined) ?? null,
      unknownExtra: new Uint8Array(0),
    };
    out += dumpLine(s, localDateTime) + "\n";
  }
  return out;
}
