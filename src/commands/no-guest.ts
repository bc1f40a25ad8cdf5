/**
 * Commands that act on a guest's memory, display, input, clock or devices,
 * answered as QEMU 7.2's -M none does with no guest at all: most refuse
 * with a fixed error, a few succeed with nothing to act on (announce-self,
 * send-key, rtc-reset-reinjection), and pmemsave reads unassigned memory
 * as zeros. The x-query-* debugging commands return their (empty) text.
 */
import * as fs from "node:fs";
import { QmpError, genericError } from "../core/error.ts";
import { strerror } from "../core/errno.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { failing } from "./no-devices.ts";
import { array, bool, enumOf, int, optional, str, struct, union } from "./qapi.ts";
import { SocketAddress } from "./socket-address.ts";

const QKEYCODES = ["unmapped", "shift", "shift_r", "alt", "alt_r", "ctrl", "ctrl_r", "menu", "esc", "1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "minus", "equal", "backspace", "tab", "q", "w", "e", "r", "t", "y", "u", "i", "o", "p", "bracket_left", "bracket_right", "ret", "a", "s", "d", "f", "g", "h", "j", "k", "l", "semicolon", "apostrophe", "grave_accent", "backslash", "z", "x", "c", "v", "b", "n", "m", "comma", "dot", "slash", "asterisk", "spc", "caps_lock", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "num_lock", "scroll_lock", "kp_divide", "kp_multiply", "kp_subtract", "kp_add", "kp_enter", "kp_decimal", "sysrq", "kp_0", "kp_1", "kp_2", "kp_3", "kp_4", "kp_5", "kp_6", "kp_7", "kp_8", "kp_9", "less", "f11", "f12", "print", "home", "pgup", "pgdn", "end", "left", "up", "down", "right", "insert", "delete", "stop", "again", "props", "undo", "front", "copy", "open", "paste", "find", "cut", "lf", "help", "meta_l", "meta_r", "compose", "pause", "ro", "hiragana", "henkan", "yen", "muhenkan", "katakanahiragana", "kp_comma", "kp_equals", "power", "sleep", "wake", "audionext", "audioprev", "audiostop", "audioplay", "audiomute", "volumeup", "volumedown", "mediaselect", "mail", "calculator", "computer", "ac_home", "ac_back", "ac_forward", "ac_refresh", "ac_bookmarks", "lang1", "lang2"] as const;

const KeyValue = union("KeyValue", "type", { type: enumOf("KeyValueKind", ["number", "qcode"]) }, {
  number: { data: int() },
  qcode: { data: enumOf("QKeyCode", QKEYCODES as unknown as [string, ...string[]]) },
});

const DisplayProtocol = enumOf("DisplayProtocol", ["vnc", "spice"]);
const VncDisplay = { display: optional(str()) };
const NoMembers = {};

const HumanReadableText = struct("HumanReadableText", { "human-readable-text": str() });
const text = (name: string, t: string): CommandDef =>
  defineCommand({ name, returns: HumanReadableText, features: ["unstable"], handler: () => ({ "human-readable-text": t }) });

const spiceNotInUse = () => new QmpError("DeviceNotActive", "SPICE is not in use");

const nothing = () => {};

export const commands: CommandDef[] = [
  defineCommand({
    name: "announce-self",
    args: struct("AnnounceParameters", {
      initial: int(),
      max: int(),
      rounds: int(),
      step: int(),
      interfaces: optional(array(str())),
      id: optional(str()),
    }),
    // There is no NIC to announce.
    handler: nothing,
  }),
  defineCommand({
    name: "screendump",
    args: struct("q_obj_screendump-arg", {
      filename: str(),
      device: optional(str()),
      head: optional(int()),
      format: optional(enumOf("ImageFormat", ["ppm", "png"])),
    }),
    handler: ({ device, head }) => {
      if (device !== undefined) throw new QmpError("DeviceNotFound", `Device '${device}' not found`);
      if (head !== undefined) throw genericError("'head' must be specified together with 'device'");
      throw genericError("There is no console to take a screendump from");
    },
  }),
  defineCommand({
    name: "send-key",
    args: struct("q_obj_send-key-arg", { keys: array(KeyValue), "hold-time": optional(int()) }),
    // Keys go to whichever input handler listens; with none they go nowhere.
    handler: nothing,
  }),
  defineCommand({
    name: "memsave",
    args: struct("q_obj_memsave-arg", { val: int(), size: int(), filename: str(), "cpu-index": optional(int()) }),
    handler: () => {
      throw genericError("Parameter 'cpu-index' expects a CPU number");
    },
  }),
  defineCommand({
    name: "pmemsave",
    args: struct("q_obj_pmemsave-arg", { val: int(), size: int(), filename: str() }),
    // There is no RAM: every address reads as unassigned memory, zeros.
    handler: ({ size, filename }) => {
      let fd: number;
      try {
        fd = fs.openSync(filename, "w");
      } catch (e) {
        throw genericError(`Could not open '${filename}': ${strerror(e)}`);
      }
      try {
        const chunk = new Uint8Array(Math.min(Math.max(Number(size), 0), 1 << 20));
        for (let left = Math.max(Number(size), 0); left > 0; left -= chunk.length) {
          fs.writeSync(fd, chunk, 0, Math.min(left, chunk.length));
        }
      } finally {
        fs.closeSync(fd);
      }
    },
  }),
  failing("dumpdtb", "This machine doesn't have a FDT", { args: struct("q_obj_dumpdtb-arg", { filename: str() }) }),
  defineCommand({
    name: "set_password",
    args: union(
      "SetPasswordOptions",
      "protocol",
      { protocol: DisplayProtocol, password: str(), connected: optional(enumOf("SetPasswordAction", ["keep", "fail", "disconnect"])) },
      { vnc: VncDisplay, spice: NoMembers },
    ),
    handler: (o) => {
      if (o.protocol === "spice") throw spiceNotInUse();
      // VNC takes connected=keep only; then there is no VNC display to set it on.
      if (o.connected !== undefined && o.connected !== "keep") throw genericError("Invalid parameter 'connected'");
      throw genericError("Could not set password");
    },
  }),
  defineCommand({
    name: "expire_password",
    args: union("ExpirePasswordOptions", "protocol", { protocol: DisplayProtocol, time: str() }, { vnc: VncDisplay, spice: NoMembers }),
    handler: (o) => {
      if (o.protocol === "spice") throw spiceNotInUse();
      throw genericError("Could not set password expire time");
    },
  }),
  failing("change-vnc-password", "Could not set password", { args: struct("q_obj_change-vnc-password-arg", { password: str() }) }),
  defineCommand({
    name: "add_client",
    args: struct("q_obj_add_client-arg", { protocol: str(), fdname: str(), skipauth: optional(bool()), tls: optional(bool()) }),
    // The descriptor is looked up first, and no transport here passes any.
    handler: ({ fdname }) => {
      throw genericError(`File descriptor named '${fdname}' has not been found`);
    },
  }),
  defineCommand({
    name: "client_migrate_info",
    args: struct("q_obj_client_migrate_info-arg", {
      protocol: str(),
      hostname: str(),
      port: optional(int()),
      "tls-port": optional(int()),
      "cert-subject": optional(str()),
    }),
    handler: ({ protocol }) => {
      if (protocol === "spice") throw spiceNotInUse();
      throw genericError("Parameter 'protocol' expects 'spice'");
    },
  }),
  failing("migrate-incoming", "'-incoming' was not specified on the command line", {
    args: struct("q_obj_migrate-incoming-arg", { uri: str() }),
  }),
  text("x-query-irq", ""),
  text("x-query-numa", "0 nodes\n"),
  text("x-query-opcount", "[TCG profiler not compiled]\n"),
  failing("x-query-profile", "Internal profiler not compiled", { returns: HumanReadableText, features: ["unstable"] }),
  text("x-query-ramblock", "              Block Name    PSize              Offset               Used              Total\n"),
  text("x-query-rdma", ""),
  text("x-query-roms", ""),
  failing("x-query-usb", "USB support not enabled", { returns: HumanReadableText, features: ["unstable"] }),
  defineCommand({
    name: "x-query-virtio",
    returns: array(struct("VirtioInfo", { path: str(), name: str() })),
    features: ["unstable"],
    handler: () => [],
  }),
  defineCommand({
    name: "display-update",
    args: union("DisplayUpdateOptions", "type", { type: enumOf("DisplayUpdateType", ["vnc"]) }, {
      vnc: { addresses: optional(array(SocketAddress)) },
    }),
    handler: () => {
      throw genericError("Can not find vnc display");
    },
  }),
  defineCommand({
    name: "display-reload",
    args: union("DisplayReloadOptions", "type", { type: enumOf("DisplayReloadType", ["vnc"]) }, {
      vnc: { "tls-certs": optional(bool()) },
    }),
    handler: () => {
      throw genericError("Can not find vnc display");
    },
  }),
  defineCommand({ name: "rtc-reset-reinjection", handler: nothing }),
  failing("set-vcpu-dirty-limit", "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'", {
    args: struct("q_obj_set-vcpu-dirty-limit-arg", { "cpu-index": optional(int()), "dirty-rate": int("uint64") }),
  }),
  defineCommand({
    name: "cancel-vcpu-dirty-limit",
    args: struct("q_obj_cancel-vcpu-dirty-limit-arg", { "cpu-index": optional(int()) }),
    // Without the dirty-limit feature there is nothing to cancel; QEMU says nothing.
    handler: nothing,
  }),
  failing("replay-break", "setting the breakpoint is allowed only in play mode", {
    args: struct("q_obj_replay-break-arg", { icount: int() }),
  }),
  failing("replay-delete-break", "replay breakpoints are allowed only in play mode"),
  failing("replay-seek", "replay must be enabled to seek", { args: struct("q_obj_replay-seek-arg", { icount: int() }) }),
  failing("sev-inject-launch-secret", "SEV not enabled for guest", {
    args: struct("q_obj_sev-inject-launch-secret-arg", { "packet-header": str(), secret: str(), gpa: optional(int("uint64")) }),
  }),
  failing("x-colo-lost-heartbeat", "The feature 'colo' is not enabled", { features: ["unstable"] }),
  failing("x-exit-preconfig", "The command is permitted only before machine initialization", { features: ["unstable"] }),
  defineCommand({ name: "xen-colo-do-checkpoint", handler: nothing }),
  defineCommand({
    name: "xen-set-global-dirty-log",
    args: struct("q_obj_xen-set-global-dirty-log-arg", { enable: bool() }),
    handler: nothing,
  }),
  defineCommand({
    name: "xen-set-replication",
    args: struct("q_obj_xen-set-replication-arg", { enable: bool(), primary: bool(), failover: optional(bool()) }),
    // No block node takes part in replication, so starting or stopping reaches none.
    handler: ({ enable, failover }) => {
      if (failover !== undefined && enable) throw genericError("Parameter 'failover' is only for stopping replication");
    },
  }),
];

export const hmpCommands: HmpCommand[] = [];
