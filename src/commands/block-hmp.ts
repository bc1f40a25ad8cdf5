/**
 * HMP block commands (QEMU's block/monitor/block-hmp-cmds.c): thin shells
 * over the QMP commands with the arguments QEMU's HMP fills in, so the two
 * cannot disagree. `drive_del` and `commit` report with error_report
 * (no "Error: " prefix), the others as hmp_handle_error does.
 */
import { commitToBacking } from "../block/commit-image.ts";
import { skipFilters, skipImplicitFilters, type BlockNode } from "../block/node.ts";
import { isQmpError, type QmpError } from "../core/error.ts";
import { parseQemuOpts } from "../core/qemu-opts.ts";
import { nestKeyval } from "../block/index.ts";
import { isImageIoError } from "../image/errors.ts";
import type { CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { HmpReport, hmpVerb, runQmp, type HmpArgs } from "./hmp-args.ts";
import { localDateTime, snapshotsReport } from "../block/internal-snapshot.ts";


/**
 * The words drive_backup and drive_mirror share ([-n] [-f] ... device target
 * [format]) as their QMP arguments: -f copies the whole chain, -n reuses the file.
 */
function copyTarget(a: HmpArgs, options: string) {
  const flags = a.flags(options);
  const device = a.device();
  const target = a.str();
  const format = a.optionalStr();
  a.end();
  const sync = flags.has("f") ? "full" : "top";
  return { flags, args: { device, target, format, sync, mode: flags.has("n") ? "existing" : "absolute-paths" } };
}

/** Drops absent optional members, as QAPI does for has_x = false. */
const present = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

export const commands: CommandDef[] = [];

export const hmpCommands: HmpCommand[] = [
  {
    // bdrv_first/bdrv_next order: the devices' images, then the monitor's own nodes.
    name: "info snapshots",
    run(line, { emu }) {
      if (line.trim()) return 'snapshots: extraneous characters at the end of line\nTry "help info snapshots" for more information\n';
      const layer = emu.block;
      const roots = [
        ...layer.backends.flatMap((b) => (b.node ? [b.node] : [])),
        ...layer.graph.topoOrder().filter((n) => n.monitorOwned && n.parents.length === 0),
      ];
      // bdrv_get_device_name: the backend's name, "" for a node without one.
      const deviceName = (n: BlockNode) => layer.backendsOf(n)[0]?.name ?? "";
      return snapshotsReport(layer, roots, deviceName, localDateTime);
    },
  },
  hmpVerb("snapshot_blkdev_internal", async (a, ctx) => {
    const device = a.device();
    const name = a.str();
    a.end();
    await runQmp(ctx, "blockdev-snapshot-internal-sync", { device, name });
  }),
  hmpVerb("snapshot_delete_blkdev_internal", async (a, ctx) => {
    const device = a.device();
    const name = a.str();
    const id = a.optionalStr();
    a.end();
    await runQmp(ctx, "blockdev-snapshot-delete-internal-sync", present({ device, name, id }));
  }),
  hmpVerb("block_resize", async (a, ctx) => {
    const device = a.device();
    const size = a.size();
    a.end();
    await runQmp(ctx, "block_resize", { device, size });
  }),

  hmpVerb("drive_backup", async (a, ctx) => {
    const { flags, args } = copyTarget(a, "nfc");
    await runQmp(ctx, "drive-backup", present({ ...args, compress: flags.has("c") ? true : undefined }));
  }),

  hmpVerb("drive_mirror", async (a, ctx) => {
    const { args } = copyTarget(a, "nf");
    await runQmp(ctx, "drive-mirror", present({ ...args, unmap: true }));
  }),

  hmpVerb("snapshot_blkdev", async (a, ctx) => {
    const reuse = a.flag("n");
    const device = a.device();
    const file = a.optionalStr();
    const format = a.optionalStr();
    a.end();
    // QEMU reserves a missing file for internal snapshots some day; today it is required.
    if (file === undefined) throw new QmpErrorText("Parameter 'snapshot-file' is missing");
    await runQmp(ctx, "blockdev-snapshot-sync", present({ device, "snapshot-file": file, format, mode: reuse ? "existing" : "absolute-paths" }));
  }),

  hmpVerb("block_stream", async (a, ctx) => {
    const device = a.device();
    const speed = a.optionalSize();
    const base = a.optionalStr();
    a.end();
    await runQmp(ctx, "block-stream", present({ "job-id": device, device, base, speed, "on-error": "report" }));
  }),

  hmpVerb("commit", async (a, { emu }) => {
    const device = a.device();
    a.end();
    const block = emu.block;
    try {
      if (device === "all") {
        // blk_commit_all: every backend with a medium over a backing file, stopping at the first failure.
        for (const blk of [...block.backends]) {
          const node = blk.node && skipFilters(blk.node);
          if (node?.backing) await commitToBacking(block, node);
        }
        return;
      }
      const blk = block.findBackend(device);
      if (!blk) throw new HmpReport(`Device '${device}' not found`);
      if (!blk.node) throw new HmpReport(`Device '${device}' has no medium`);
      await commitToBacking(block, skipImplicitFilters(blk.node));
    } catch (e) {
      if (isImageIoError(e)) throw new HmpReport(`'commit' error for '${device}': ${e.desc}`);
      throw e;
    }
  }),

  hmpVerb("drive_add", async (a, { emu }) => {
    const nodeOnly = a.flag("n");
    a.str(); // the PCI address: nothing to plug into here
    const opts = Object.fromEntries(parseQemuOpts(a.str()).pairs);
    a.end();
    const block = emu.block;
    try {
      if (nodeOnly) {
        if (opts["node-name"] === undefined) throw new HmpReport("'node-name' needs to be specified");
        await block.blockdevAdd(nestKeyval(opts), "drive");
        return;
      }
      if (opts.id !== undefined && block.findBackend(opts.id)) throw new HmpReport(`Duplicate ID '${opts.id}' for drive`);
      const blk = await block.addDrive(opts);
      const iface = opts.if ?? "none";
      if (iface === "none") return "OK\n";
      // Only if=none can exist without a device model to plug into.
      await block.deleteDrive(blk.name);
      return `Can't hot-add drive to type ${IF_TYPES.indexOf(iface)}\n`;
    } catch (e) {
      if (isQmpError(e)) throw new HmpReport(reported(e));
      throw e;
    }
  }),

  hmpVerb("drive_del", async (a, ctx) => {
    const id = a.device();
    a.end();
    const block = ctx.emu.block;
    try {
      if (block.findNode(id)) await runQmp(ctx, "blockdev-del", { "node-name": id });
      else await block.deleteDrive(id);
    } catch (e) {
      if (isQmpError(e)) throw new HmpReport(e.desc);
      throw e;
    }
  }),
];

/** BlockInterfaceType, in QEMU's numbering (IF_NONE = 0). */
const IF_TYPES = ["none", "ide", "scsi", "floppy", "pflash", "mtd", "sd", "virtio", "xen"];

/** error_report_err: the message, then any hint QEMU appended to it. */
const reported = (e: QmpError) => (e.hint ? `${e.desc}\n${e.hint.replace(/\n$/, "")}` : e.desc);

/** hmp_handle_error's text for an error QEMU's HMP code raises itself. */
class QmpErrorText extends HmpReport {
  constructor(desc: string) {
    super(`Error: ${desc}`);
  }
}
