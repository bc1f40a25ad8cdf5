/**
 * Character devices at run time: chardev-add / -change / -remove /
 * -send-break, the ring buffer's ringbuf-write / ringbuf-read and
 * query-chardev, with QEMU 7.2's texts (chardev/char.c, char-ringbuf.c,
 * char-socket.c). The devices live in emu.chardevs (src/chardev/); the QOM
 * container /chardevs mirrors them, and its order is query-chardev's.
 */
import { genericError } from "../core/error.ts";
import { openChardev, UNBUILT_KINDS, type Chardev, type ChardevBackend as Backend } from "../chardev/backends.ts";
import { decodeBase64, encodeBase64, qemuStringBytes } from "../chardev/ringbuf.ts";
import type { Emulator } from "../emulator.ts";
import { qemuBytesToString } from "../json/reader.ts";
import { extraState } from "../machine-extra/state.ts";
import { QomObject } from "../qom/object.ts";
import { UserObject } from "../qom/user-types.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import { SocketAddressLegacy } from "./socket-address.ts";
import { array, bool, enumOf, int, optional, str, struct, union } from "./qapi.ts";

// ---- schemas (qapi/char.json) ----------------------------------------------

const common = { logfile: optional(str()), logappend: optional(bool()) };
const ChardevCommon = struct("ChardevCommon", common);
const ChardevHostdev = struct("ChardevHostdev", { ...common, device: str() });
const ChardevRingbuf = struct("ChardevRingbuf", { ...common, size: optional(int()) });

/** Wrappers shared by several variants are one object, so introspection names them once, as QEMU does. */
const CommonWrapper = { data: ChardevCommon };
const HostdevWrapper = { data: ChardevHostdev };
const RingbufWrapper = { data: ChardevRingbuf };

const BACKEND_KINDS = [
  "file", "serial", "parallel", "pipe", "socket", "udp", "pty", "null", "mux", "msmouse", "wctablet", "braille",
  "testdev", "stdio", "console", "spicevmc", "spiceport", "qemu-vdagent", "dbus", "vc", "ringbuf", "memory",
] as const;

export const ChardevBackend = union("ChardevBackend", "type", { type: enumOf("ChardevBackendKind", BACKEND_KINDS) }, {
  file: { data: struct("ChardevFile", { ...common, in: optional(str()), out: str(), append: optional(bool()) }) },
  serial: HostdevWrapper,
  parallel: HostdevWrapper,
  pipe: HostdevWrapper,
  socket: {
    data: struct("ChardevSocket", {
      ...common,
      addr: SocketAddressLegacy,
      "tls-creds": optional(str()),
      "tls-authz": optional(str()),
      server: optional(bool()),
      wait: optional(bool()),
      nodelay: optional(bool()),
      telnet: optional(bool()),
      tn3270: optional(bool()),
      websocket: optional(bool()),
      reconnect: optional(int()),
    }),
  },
  udp: { data: struct("ChardevUdp", { ...common, remote: SocketAddressLegacy, local: optional(SocketAddressLegacy) }) },
  pty: CommonWrapper,
  null: CommonWrapper,
  mux: { data: struct("ChardevMux", { ...common, chardev: str() }) },
  msmouse: CommonWrapper,
  wctablet: CommonWrapper,
  braille: CommonWrapper,
  testdev: CommonWrapper,
  stdio: { data: struct("ChardevStdio", { ...common, signal: optional(bool()) }) },
  console: CommonWrapper,
  spicevmc: { data: struct("ChardevSpiceChannel", { ...common, type: str() }) },
  spiceport: { data: struct("ChardevSpicePort", { ...common, fqdn: str() }) },
  "qemu-vdagent": { data: struct("ChardevQemuVDAgent", { ...common, mouse: optional(bool()), clipboard: optional(bool()) }) },
  dbus: { data: struct("ChardevDBus", { ...common, name: str() }) },
  vc: {
    data: struct("ChardevVC", { ...common, width: optional(int()), height: optional(int()), cols: optional(int()), rows: optional(int()) }),
  },
  ringbuf: RingbufWrapper,
  memory: RingbufWrapper,
});

const ChardevReturn = struct("ChardevReturn", { pty: optional(str()) });
const DataFormat = enumOf("DataFormat", ["utf8", "base64"]);

// ---- the devices and their QOM mirror -----------------------------------------

function container(emu: Emulator): QomObject {
  return extraState(emu).qom.root.children.get("chardevs")!;
}

function qomObject(dev: Chardev): QomObject {
  const s = dev.socket;
  if (!s) return new QomObject(dev.typename);
  return new QomObject(dev.typename, [
    { name: "connected", type: "bool", get: () => s.connected },
    { name: "addr", type: "SocketAddress", get: () => ({ ...s.addr }) },
  ]);
}

function tlsCreds(emu: Emulator, id: string): "missing" | "wrong-type" | "ok" {
  const obj = extraState(emu).qom.root.children.get("objects")?.children.get(id);
  if (!obj) return "missing";
  return obj instanceof UserObject && obj.typename.startsWith("tls-creds") ? "ok" : "wrong-type";
}

/** chardev_new: the backend opened, not yet named in /chardevs. */
async function open(emu: Emulator, id: string, backend: Backend): Promise<Chardev> {
  if (UNBUILT_KINDS.has(backend.type)) throw genericError(`'${backend.type}' is not a valid char driver name`);
  return openChardev(id, backend, {
    find: (x) => emu.chardevs.get(x),
    tlsCreds: (x) => tlsCreds(emu, x),
    stdioInUse: () => emu.chardevs.stdioInUse(),
  });
}

/** Names an opened device: under /chardevs (which refuses a duplicate) and in the registry. */
async function enter(emu: Emulator, dev: Chardev): Promise<void> {
  try {
    container(emu).addChild(dev.id, qomObject(dev));
  } catch (e) {
    await dev.close();
    throw e;
  }
  emu.chardevs.add(dev);
}

/**
 * qemu_chardev_new, as -chardev and HMP's chardev-add create one: opened
 * first, so an id in use is only found when naming it, and errors carry no
 * "Failed to add chardev" prefix.
 */
export async function openChardevNamed(emu: Emulator, id: string, backend: Backend): Promise<{ pty?: string }> {
  const dev = await open(emu, id, backend);
  await enter(emu, dev);
  return dev.pty === undefined ? {} : { pty: dev.pty };
}

export async function removeChardev(emu: Emulator, id: string): Promise<void> {
  container(emu).removeChild(id);
  await emu.chardevs.remove(id);
}

/** qmp_chardev_add. */
export async function addChardev(emu: Emulator, id: string, backend: Backend): Promise<{ pty?: string }> {
  if (emu.chardevs.get(id)) throw genericError(`Chardev with id '${id}' already exists`);
  let dev: Chardev;
  try {
    dev = await open(emu, id, backend);
  } catch (e) {
    throw genericError(`Failed to add chardev '${id}': ${(e as Error).message}`);
  }
  await enter(emu, dev);
  return dev.pty === undefined ? {} : { pty: dev.pty };
}

function find(emu: Emulator, id: string): Chardev {
  const dev = emu.chardevs.get(id);
  if (!dev) throw genericError(`Chardev '${id}' not found`);
  return dev;
}

function ringbufOf(emu: Emulator, device: string) {
  const dev = emu.chardevs.get(device);
  if (!dev) throw genericError(`Device '${device}' not found`);
  if (!dev.ringbuf) throw genericError(`${device} is not a ringbuf device`);
  return dev.ringbuf;
}

export function ringbufWrite(emu: Emulator, device: string, data: string, format?: "utf8" | "base64"): void {
  const ring = ringbufOf(emu, device);
  ring.write(format === "base64" ? decodeBase64(data) : qemuStringBytes(data));
}

/** Reads up to `size` bytes; as text they are a C string: cut at a NUL, bad UTF-8 printed as U+FFFD. */
export function ringbufRead(emu: Emulator, device: string, size: number, format?: "utf8" | "base64"): string {
  const ring = ringbufOf(emu, device);
  if (size <= 0) throw genericError("size must be greater than zero");
  const bytes = ring.read(size);
  return format === "base64" ? encodeBase64(bytes) : qemuBytesToString(bytes);
}

export function queryChardev(emu: Emulator): { label: string; filename: string; "frontend-open": boolean }[] {
  return container(emu).childEntries().map(([label]) => {
    const dev = emu.chardevs.get(label);
    return { label, filename: dev?.filename() ?? "", "frontend-open": dev?.frontendOpen ?? true };
  });
}

// ---- commands ----------------------------------------------------------------

const idArg = (name: string) => struct(`q_obj_${name}-arg`, { id: str() });

export const commands: CommandDef[] = [
  defineCommand({
    name: "chardev-add",
    args: struct("q_obj_chardev-add-arg", { id: str(), backend: ChardevBackend }),
    returns: ChardevReturn,
    handler: ({ id, backend }, { emu }) => addChardev(emu, id, backend as Backend),
  }),
  defineCommand({
    name: "chardev-change",
    args: struct("q_obj_chardev-change-arg", { id: str(), backend: ChardevBackend }),
    returns: ChardevReturn,
    handler: async ({ id, backend }, { emu }) => {
      const dev = emu.chardevs.get(id);
      if (!dev) throw genericError(`Chardev '${id}' does not exist`);
      if (dev.isMux) throw genericError("Mux device hotswap not supported yet");
      // Monitors and muxes cannot take a new backend. A chardev nobody uses is
      // simply replaced: removed first, so a failing new backend leaves nothing.
      if (dev.busy) throw genericError("Chardev user does not support chardev hotswap");
      await removeChardev(emu, id);
      return addChardev(emu, id, backend as Backend);
    },
  }),
  defineCommand({
    name: "chardev-remove",
    args: idArg("chardev-remove"),
    handler: async ({ id }, { emu }) => {
      if (find(emu, id).busy) throw genericError(`Chardev '${id}' is busy`);
      await removeChardev(emu, id);
    },
  }),
  defineCommand({
    name: "chardev-send-break",
    args: idArg("chardev-send-break"),
    // A break goes to the frontend; none here reacts to one.
    handler: ({ id }, { emu }) => void find(emu, id),
  }),
  defineCommand({
    name: "ringbuf-write",
    args: struct("q_obj_ringbuf-write-arg", { device: str(), data: str(), format: optional(DataFormat) }),
    handler: ({ device, data, format }, { emu }) => ringbufWrite(emu, device, data, format),
  }),
  defineCommand({
    name: "ringbuf-read",
    args: struct("q_obj_ringbuf-read-arg", { device: str(), size: int(), format: optional(DataFormat) }),
    returns: str(),
    handler: ({ device, size, format }, { emu }) => ringbufRead(emu, device, Number(size), format),
  }),
  defineCommand({
    name: "query-chardev",
    returns: array(struct("ChardevInfo", { label: str(), filename: str(), "frontend-open": bool() })),
    handler: (_a, { emu }) => queryChardev(emu),
  }),
];

export { hmpCommands } from "./chardev-hmp.ts";
