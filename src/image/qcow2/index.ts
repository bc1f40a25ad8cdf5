export { Qcow2Image, openQcow2, type Qcow2OpenOptions, type CorruptionInfo } from "./image.ts";
export { createQcow2, type Qcow2CreateOptions } from "./create.ts";
export { checkQcow2, repairImage, type CheckResult, type RepairMode } from "./check.ts";
export type { Qcow2Header } from "./header.ts";
export { parseSnapshotTable, serializeSnapshotTable, type StoredSnapshot } from "./snapshots.ts";
