/**
 * Removable-media commands (eject, blockdev-open/close-tray,
 * blockdev-remove/insert-medium, blockdev-change-medium) and HMP `eject` /
 * `change`, as QEMU 7.2 answers them under -M none.
 *
 * No device model exists there, so a BlockBackend has no tray: opening or
 * closing it is a silent no-op, eject just drops the medium, and no
 * DEVICE_TRAY_MOVED is ever sent. Commands taking a qdev `id` find no
 * device at all.
 */
import { genericError, QmpError } from "../core/error.ts";
import type { BlockBackend, BlockLayer } from "../block/index.ts";
import { currentRootState, insertMedium, openMedium, removeMedium, type ReadOnlyMode } from "../block/media.ts";
import { defineCommand, defineEvent, type CommandDef, type EventDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { hmpVerb } from "./hmp-args.ts";
import { bool, enumOf, optional, str, struct, withFeatures } from "./qapi.ts";

const READ_ONLY_MODES = ["retain", "read-only", "read-write"] as const;
const BlockdevChangeReadOnlyMode = enumOf("BlockdevChangeReadOnlyMode", READ_ONLY_MODES);

/** The deprecated `device` member most of these commands still take. */
const deviceMember = () => withFeatures(optional(str()), ["deprecated"]);

/** qmp_get_blk: exactly one of a backend name and a qdev id. */
function getBackend(layer: BlockLayer, device: string | undefined, id: string | undefined): BlockBackend {
  if ((device === undefined) === (id === undefined)) throw genericError("Need exactly one of 'device' and 'id'");
  const blk = id !== undefined
    ? layer.backends.find((b) => b.attachedDevice === id)
    : layer.findBackend(device!);
  if (!blk) throw new QmpError("DeviceNotFound", `Device '${id ?? device}' not found`);
  return blk;
}

/** blockdev-change-medium: open the new medium first, then swap it in. */
async function changeMedium(
  layer: BlockLayer,
  a: { device?: string; id?: string; filename: string; format?: string; mode?: ReadOnlyMode },
): Promise<void> {
  const blk = getBackend(layer, a.device, a.id);
  const medium = await openMedium(layer, currentRootState(blk), a.filename, a.format, a.mode ?? "retain");
  try {
    await removeMedium(layer, blk);
    // qmp_blockdev_insert_anon_medium: the old medium is gone unless an op blocker kept it.
    if (blk.root) throw genericError("There already is a medium in the device");
    insertMedium(layer, blk, medium);
  } catch (e) {
    await layer.graph.closeIfOrphan(medium);
    throw e;
  }
}

export const events: EventDef[] = [
  defineEvent("DEVICE_TRAY_MOVED", struct("q_obj_DEVICE_TRAY_MOVED-arg", { device: str(), id: str(), "tray-open": bool() })),
];

export const commands: CommandDef[] = [
  defineCommand({
    name: "eject",
    args: struct("q_obj_eject-arg", { device: deviceMember(), id: optional(str()), force: optional(bool()) }),
    handler: async (a, { emu }) => {
      // No tray to open (QEMU ignores -ENOSYS), so eject is the medium's removal.
      await removeMedium(emu.block, getBackend(emu.block, a.device, a.id));
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-open-tray",
    args: struct("q_obj_blockdev-open-tray-arg", { device: deviceMember(), id: optional(str()), force: optional(bool()) }),
    handler: (a, { emu }) => {
      getBackend(emu.block, a.device, a.id);
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-close-tray",
    args: struct("q_obj_blockdev-close-tray-arg", { device: deviceMember(), id: optional(str()) }),
    handler: (a, { emu }) => {
      getBackend(emu.block, a.device, a.id);
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-remove-medium",
    args: struct("q_obj_blockdev-remove-medium-arg", { id: str() }),
    handler: async (a, { emu }) => {
      await removeMedium(emu.block, getBackend(emu.block, undefined, a.id));
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-insert-medium",
    args: struct("q_obj_blockdev-insert-medium-arg", { id: str(), "node-name": str() }),
    handler: (a, { emu }) => {
      const layer = emu.block;
      const blk = getBackend(layer, undefined, a.id);
      const node = layer.findNode(a["node-name"]);
      if (!node) throw genericError(`Node '${a["node-name"]}' not found`);
      if (layer.backendsOf(node).length) throw genericError(`Node '${a["node-name"]}' is already in use`);
      if (blk.root) throw genericError("There already is a medium in the device");
      insertMedium(layer, blk, node);
      return {};
    },
  }),
  defineCommand({
    name: "blockdev-change-medium",
    args: struct("q_obj_blockdev-change-medium-arg", {
      device: deviceMember(),
      id: optional(str()),
      filename: str(),
      format: optional(str()),
      force: optional(bool()),
      "read-only-mode": optional(BlockdevChangeReadOnlyMode),
    }),
    handler: async (a, { emu }) => {
      await changeMedium(emu.block, { ...a, mode: a["read-only-mode"] });
      return {};
    },
  }),
];

/** hmp_change for "vnc": without a VNC display nothing can take a password. */
function changeVnc(target: string, arg: string | undefined, readOnlyMode: string | undefined): string {
  if (readOnlyMode !== undefined) return "Parameter 'read-only-mode' is invalid for VNC\n";
  if (target !== "passwd" && target !== "password") return "Expected 'password' after 'vnc'\n";
  // A monitor reached through QMP has no terminal to prompt on.
  if (arg === undefined) return "terminal does not support password prompting\n";
  return "Error: Could not set password\n";
}

export const hmpCommands: HmpCommand[] = [
  hmpVerb("eject", async (a, { emu }) => {
    a.flag("f"); // no tray lock to force
    const device = a.device();
    a.end();
    await removeMedium(emu.block, getBackend(emu.block, device, undefined));
  }),
  hmpVerb("change", async (a, { emu }) => {
    const device = a.device();
    a.flag("f");
    const filename = a.filename();
    const format = a.optionalStr();
    const mode = a.optionalStr();
    a.end();
    if (device === "vnc") return changeVnc(filename, format, mode);
    if (mode !== undefined && !(READ_ONLY_MODES as readonly string[]).includes(mode)) {
      throw genericError(`invalid parameter value: ${mode}`);
    }
    await changeMedium(emu.block, { device, filename, format, mode: mode as ReadOnlyMode | undefined });
  }),
];
