/**
 * blockdev-mirror, drive-mirror, block-stream and block-commit: argument
 * schemas (QAPI member order of QEMU 7.2) and the checks of blockdev.c in
 * QEMU's order; the jobs themselves live in src/block/jobs/{mirror,stream,
 * commit}.ts and reach the job layer through ../block/jobs/mirror-port.ts.
 */
import * as path from "node:path";
import type * as v from "valibot";
import { genericError, QmpError } from "../core/error.ts";
import type { Emulator } from "../emulator.ts";
import type { BlockLayer, BlockNode } from "../block/index.ts";
import { MirrorJob, type MirrorMode } from "../block/jobs/mirror.ts";
import { openDriveMirrorTarget } from "../block/jobs/mirror-target.ts";
import { backingChainNext, findBackingImage, type OnError } from "../block/jobs/mirror-runtime.ts";
import { checkStreamNodes, StreamJob } from "../block/jobs/stream.ts";
import { checkCommitNodes, CommitJob } from "../block/jobs/commit.ts";
import { createSyncJob, drainedSection, type SyncJobHandle, type SyncJobSpec } from "../block/jobs/mirror-port.ts";
import { bool, enumOf, int, intNumber, optional, str, struct } from "./qapi.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";

const MirrorSyncMode = enumOf("MirrorSyncMode", ["top", "full", "none", "incremental", "bitmap"]);
const BlockdevOnError = enumOf("BlockdevOnError", ["report", "ignore", "enospc", "stop", "auto"]);
const MirrorCopyMode = enumOf("MirrorCopyMode", ["background", "write-blocking"]);
const NewImageMode = enumOf("NewImageMode", ["existing", "absolute-paths"]);

export const BlockdevMirrorArgs = struct("q_obj_blockdev-mirror-arg", {
  "job-id": optional(str()),
  device: str(),
  target: str(),
  replaces: optional(str()),
  sync: MirrorSyncMode,
  speed: optional(int()),
  granularity: optional(int("uint32")),
  "buf-size": optional(int()),
  "on-source-error": optional(BlockdevOnError),
  "on-target-error": optional(BlockdevOnError),
  "filter-node-name": optional(str()),
  "copy-mode": optional(MirrorCopyMode),
  "auto-finalize": optional(bool()),
  "auto-dismiss": optional(bool()),
});

export const DriveMirrorArgs = struct("DriveMirror", {
  "job-id": optional(str()),
  device: str(),
  target: str(),
  format: optional(str()),
  "node-name": optional(str()),
  replaces: optional(str()),
  sync: MirrorSyncMode,
  mode: optional(NewImageMode),
  speed: optional(int()),
  granularity: optional(int("uint32")),
  "buf-size": optional(int()),
  "on-source-error": optional(BlockdevOnError),
  "on-target-error": optional(BlockdevOnError),
  unmap: optional(bool()),
  "copy-mode": optional(MirrorCopyMode),
  "auto-finalize": optional(bool()),
  "auto-dismiss": optional(bool()),
});

export const BlockStreamArgs = struct("q_obj_block-stream-arg", {
  "job-id": optional(str()),
  device: str(),
  base: optional(str()),
  "base-node": optional(str()),
  "backing-file": optional(str()),
  bottom: optional(str()),
  speed: optional(int()),
  "on-error": optional(BlockdevOnError),
  "filter-node-name": optional(str()),
  "auto-finalize": optional(bool()),
  "auto-dismiss": optional(bool()),
});

export const BlockCommitArgs = struct("q_obj_block-commit-arg", {
  "job-id": optional(str()),
  device: str(),
  "base-node": optional(str()),
  base: optional(str()),
  "top-node": optional(str()),
  top: optional(str()),
  "backing-file": optional(str()),
  speed: optional(int()),
  "on-error": optional(BlockdevOnError),
  "filter-node-name": optional(str()),
  "auto-finalize": optional(bool()),
  "auto-dismiss": optional(bool()),
});

type Flags = { "job-id"?: string; speed?: number | bigint; "auto-finalize"?: boolean; "auto-dismiss"?: boolean };

/** The device (BlockBackend) name of a node, "" for plain nodes: QEMU's default job id. */
function deviceName(layer: BlockLayer, node: BlockNode): string {
  return layer.backendsOf(node)[0]?.name ?? "";
}

function jobSpec(a: Flags, type: SyncJobSpec["type"], defaultId: string): SyncJobSpec {
  return {
    id: a["job-id"] ?? defaultId,
    type,
    speed: a.speed ?? 0,
    autoFinalize: a["auto-finalize"] ?? true,
    autoDismiss: a["auto-dismiss"] ?? true,
  };
}

/** qmp_get_root_bs. */
function rootNode(layer: BlockLayer, name: string): BlockNode {
  const bs = layer.lookupDeviceOrNode(name);
  if (!layer.isRoot(bs)) throw genericError("Need a root block node");
  return bs;
}

/** bdrv_find_backing_image's name resolution: relative names against the overlay's directory. */
function resolveAgainst(overlay: BlockNode, name: string): string | null {
  if (path.isAbsolute(name) || /^[a-z0-9+.-]+:/i.test(name)) return name;
  const fn = overlay.driver.filename();
  if (fn.startsWith("json:")) return null;
  return path.resolve(path.dirname(fn), name);
}

const findBacking = (from: BlockNode, name: string) => findBackingImage(from, name, resolveAgainst);

/** bdrv_recurse_can_replace: only the source itself (through filters) may be replaced. */
function canReplace(source: BlockNode, toReplace: BlockNode): boolean {
  for (let n: BlockNode | undefined = source; n; n = n.isFilter ? n.filtered?.node : undefined) if (n === toReplace) return true;
  return false;
}

interface MirrorCommon extends Flags {
  replaces?: string;
  sync: string;
  granularity?: number;
  "buf-size"?: number | bigint;
  "on-source-error"?: OnError;
  "on-target-error"?: OnError;
  "filter-node-name"?: string;
  "copy-mode"?: "background" | "write-blocking";
  unmap?: boolean;
}

/** blockdev_mirror_common + mirror_start + mirror_start_job. */
async function startMirror(
  emu: Emulator,
  bs: BlockNode,
  target: BlockNode,
  a: MirrorCommon,
  opts: { zeroTarget: boolean; backingMode: "leave" | "source-chain" | "open-chain" },
): Promise<void> {
  const layer = emu.block;
  const g = a.granularity ?? 0;
  if (g !== 0 && (g < 512 || g > 64 * 1048576)) throw genericError("Parameter 'granularity' expects a value in range [512B, 64MB]");
  if (g & (g - 1)) throw genericError("Parameter 'granularity' expects a power of 2");
  layer.checkOp(bs, "mirror-source");
  layer.checkOp(target, "mirror-target");
  let sync = a.sync;
  if (!backingChainNext(bs) && sync === "top") sync = "full";
  if (a.replaces !== undefined) {
    const toReplace = layer.findNode(a.replaces);
    if (!toReplace) throw genericError(`Failed to find node with node-name='${a.replaces}'`);
    layer.checkOp(toReplace, "replace");
    if (!canReplace(bs, toReplace)) {
      throw genericError(
        `Cannot replace '${a.replaces}' by a node mirrored from '${bs.nodeName}', because it cannot be guaranteed that doing so would not lead to an abrupt change of visible data`,
      );
    }
    if (toReplace.size() !== bs.size()) throw genericError("cannot replace image with a mirror image of different size");
  }
  if (sync === "incremental" || sync === "bitmap") throw genericError(`Sync mode '${sync}' not supported`);
  const mode = sync as MirrorMode;
  let job: ReturnType<typeof createSyncJob> | null = null;
  const m = await MirrorJob.start(
    {
      layer,
      type: "mirror",
      source: bs,
      target,
      replaces: a.replaces,
      mode,
      base: mode === "top" ? backingChainNext(bs) : null,
      granularity: g,
      bufSize: intNumber(a["buf-size"] ?? 0),
      zeroTarget: opts.zeroTarget,
      backingMode: opts.backingMode,
      onSourceError: a["on-source-error"] ?? "report",
      onTargetError: a["on-target-error"] ?? "report",
      unmap: a.unmap ?? true,
      filterNodeName: a["filter-node-name"],
      copyMode: a["copy-mode"] ?? "background",
    },
    (filter) => {
      job = createSyncJob(emu, jobSpec(a, "mirror", deviceName(layer, filter)));
      return job;
    },
  );
  job!.start(mirrorBody(m));
}

/** The job body of a mirror, which active commit runs too: pivot on success, no pivot on abort. */
function mirrorBody(m: MirrorJob) {
  return {
    run: (rt: Parameters<MirrorJob["run"]>[0]) => m.run(rt),
    drainsOnExit: true,
    complete: () => m.complete(),
    cancel: (force: boolean) => m.cancel(force),
    prepare: () => m.exit(false),
    abort: () => m.exit(true),
  };
}

async function blockdevMirror(emu: Emulator, a: v.InferOutput<typeof BlockdevMirrorArgs>): Promise<Record<string, never>> {
  const layer = emu.block;
  const bs = rootNode(layer, a.device);
  const target = layer.lookupDeviceOrNode(a.target);
  await startMirror(emu, bs, target, a, { zeroTarget: a.sync === "full", backingMode: "leave" });
  return {};
}

async function driveMirror(emu: Emulator, a: v.InferOutput<typeof DriveMirrorArgs>): Promise<Record<string, never>> {
  const layer = emu.block;
  const bs = rootNode(layer, a.device);
  layer.checkOp(bs, "mirror-source");
  if (a.replaces !== undefined && a["node-name"] === undefined) {
    throw genericError("a node-name must be provided when replacing a named node of the graph");
  }
  // Bitmap modes fail only later, in mirror_start: QEMU creates the image (as for full) first.
  const bitmapSync = a.sync === "incremental" || a.sync === "bitmap";
  const t = await openDriveMirrorTarget(layer, {
    source: bs,
    target: a.target,
    sync: bitmapSync ? "full" : (a.sync as MirrorMode),
    format: a.format,
    mode: a.mode,
    nodeName: a["node-name"],
  });
  const sync = bitmapSync ? a.sync : t.sync;
  try {
    await startMirror(emu, bs, t.node, { ...a, sync }, { zeroTarget: t.zeroTarget, backingMode: t.backingMode });
  } catch (e) {
    await layer.graph.closeIfOrphan(t.node);
    throw e;
  }
  return {};
}

async function blockStream(emu: Emulator, a: v.InferOutput<typeof BlockStreamArgs>): Promise<Record<string, never>> {
  const layer = emu.block;
  if (a.base !== undefined && a["base-node"] !== undefined) throw genericError("'base' and 'base-node' cannot be specified at the same time");
  if (a.base !== undefined && a.bottom !== undefined) throw genericError("'base' and 'bottom' cannot be specified at the same time");
  if (a.bottom !== undefined && a["base-node"] !== undefined) throw genericError("'bottom' and 'base-node' cannot be specified at the same time");
  const bs = layer.lookupDeviceOrNode(a.device);
  let base: BlockNode | null = null;
  if (a.base !== undefined) {
    base = findBacking(bs, a.base);
    if (!base) throw genericError(`Can't find '${a.base}' in the backing chain`);
  }
  const nodes = checkStreamNodes(layer, bs, a.device, { base, baseNode: a["base-node"], bottom: a.bottom });
  const iterEnd = nodes.bottom ? nodes.bottom.cowOrFiltered : nodes.base ?? undefined;
  for (let n: BlockNode | undefined = bs; n && n !== iterEnd; n = n.cowOrFiltered) layer.checkOp(n, "stream");
  if (!nodes.base && a["backing-file"] !== undefined) {
    throw genericError("backing file specified, but streaming the entire chain");
  }
  let job: ReturnType<typeof createSyncJob> | null = null;
  const s = await StreamJob.start(
    {
      layer,
      device: bs,
      base: nodes.base,
      bottom: nodes.bottom,
      backingFile: a["backing-file"],
      onError: a["on-error"] ?? "report",
      filterNodeName: a["filter-node-name"],
      drain: (node) => drainedSection(emu, node, job?.id),
    },
    (filter) => {
      job = createSyncJob(emu, jobSpec(a, "stream", deviceName(layer, filter)));
      return job;
    },
  );
  const handle = job! as SyncJobHandle;
  handle.start({
    run: (rt) => s.run(rt),
    prepare: () => s.prepare(),
    clean: () => s.clean(),
  });
  // Nothing to stream: QEMU's coroutine finishes before the command returns.
  if (!s.hasWork) {
    // Finalisation (and its drained sections) happens before the reply too, unless parked in pending.
    const settled = handle.job.autoFinalize ? ["concluded", "null"] : ["pending", "concluded", "null"];
    await handle.job.until((j) => settled.includes(j.status));
  }
  return {};
}

async function blockCommit(emu: Emulator, a: v.InferOutput<typeof BlockCommitArgs>): Promise<Record<string, never>> {
  const layer = emu.block;
  let bs: BlockNode;
  try {
    bs = rootNode(layer, a.device);
  } catch (e) {
    if (e instanceof QmpError && e.desc === "Need a root block node") throw e;
    throw new QmpError("DeviceNotFound", `Device '${a.device}' not found`);
  }
  const nodes = checkCommitNodes(
    layer,
    bs,
    { topNode: a["top-node"], top: a.top, baseNode: a["base-node"], base: a.base, backingFile: a["backing-file"] },
    findBacking,
  );
  const onError: OnError = a["on-error"] ?? "report";
  // Named after the device even when `top` is not it (and before a filter takes the backend).
  const defaultId = deviceName(layer, bs);
  let job: ReturnType<typeof createSyncJob> | null = null;
  if (nodes.active) {
    const m = await MirrorJob.start(
      {
        layer,
        type: "commit",
        source: nodes.top,
        target: nodes.base,
        mode: "top",
        base: nodes.base,
        granularity: 0,
        bufSize: 0,
        zeroTarget: false,
        backingMode: "leave",
        onSourceError: onError,
        onTargetError: onError,
        unmap: true,
        filterNodeName: a["filter-node-name"],
        copyMode: "background",
      },
      () => {
        job = createSyncJob(emu, jobSpec(a, "commit", defaultId));
        return job;
      },
    );
    job!.start(mirrorBody(m));
    return {};
  }
  const c = await CommitJob.start(
    { layer, device: bs, top: nodes.top, base: nodes.base, backingFile: a["backing-file"], onError, filterNodeName: a["filter-node-name"] },
    () => {
      job = createSyncJob(emu, jobSpec(a, "commit", defaultId));
      return job;
    },
  );
  job!.start({
    run: (rt) => c.run(rt),
    prepare: () => c.prepare(),
    abort: () => c.abort(),
    clean: () => c.clean(),
  });
  return {};
}

export const commands: CommandDef[] = [
  defineCommand({ name: "blockdev-mirror", args: BlockdevMirrorArgs, handler: (a, { emu }) => blockdevMirror(emu, a) }),
  defineCommand({ name: "drive-mirror", args: DriveMirrorArgs, handler: (a, { emu }) => driveMirror(emu, a) }),
  defineCommand({ name: "block-stream", args: BlockStreamArgs, handler: (a, { emu }) => blockStream(emu, a) }),
  defineCommand({ name: "block-commit", args: BlockCommitArgs, handler: (a, { emu }) => blockCommit(emu, a) }),
];

export const hmpCommands: HmpCommand[] = [];
