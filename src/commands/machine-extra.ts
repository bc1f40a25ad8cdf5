/**
 * The everyday machine-level queries management tools send when they
 * connect, answered as `qemu-system-x86_64 -M none -nodefaults -display
 * none` 7.2 does: no CPUs, no devices, no displays; static descriptions of
 * the binary (CPU models, machine types, option groups) replayed from a
 * recording.
 */
import { QmpError, genericError } from "../core/error.ts";
import { COMMAND_LINE_OPTIONS, CPU_DEFINITIONS, CPU_EXPANSIONS, MACHINES } from "../machine-extra/data/recorded.ts";
import { extraState, monitorChardevs } from "../machine-extra/state.ts";
import { resolvePath } from "../qom/object.ts";
import { UserObject } from "../qom/user-types.ts";
import { defineCommand, defineEvent, type CommandDef, type EventDef } from "./command.ts";
import { any, array, bool, enumOf, int, optional, str, struct, union, withFeatures } from "./qapi.ts";

const NetworkAddressFamily = enumOf("NetworkAddressFamily", ["ipv4", "ipv6", "unix", "vsock", "unknown"]);
const SHUTDOWN_CAUSES = [
  "none", "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal", "host-ui",
  "guest-shutdown", "guest-reset", "guest-panic", "subsystem-reset", "snapshot-load",
] as const;

/** Built-in chardev backends, in QEMU's (hash table) order. */
const CHARDEV_BACKENDS = [
  "testdev", "pty", "wctablet", "serial", "file", "memory", "udp", "parallel", "vc", "socket", "msmouse", "null",
  "qemu-vdagent", "pipe", "mux", "ringbuf", "stdio",
];
/** ... and once the modules are loaded (dbus, spice and braille backends live in modules). */
const CHARDEV_BACKENDS_WITH_MODULES = [
  "testdev", "pty", "wctablet", "serial", "file", "memory", "udp", "dbus", "parallel", "vc", "spiceport", "braille",
  "socket", "msmouse", "null", "qemu-vdagent", "pipe", "mux", "spicevmc", "ringbuf", "stdio",
];

/** No transport here passes descriptors (SCM_RIGHTS), so these find nothing to take. */
const noFd = () => genericError("No file descriptor supplied via SCM_RIGHTS");

const notActive = () => new QmpError("DeviceNotActive", "No balloon device has been activated");

/** Commands that fail the same way every time on this machine. */
const failing = (name: string, message: string, extra: Partial<CommandDef> = {}): CommandDef =>
  defineCommand({
    name,
    ...extra,
    handler: () => {
      throw genericError(message);
    },
  });

const CpuInstanceProperties = struct("CpuInstanceProperties", {
  "node-id": optional(int()),
  "socket-id": optional(int()),
  "die-id": optional(int()),
  "cluster-id": optional(int()),
  "core-id": optional(int()),
  "thread-id": optional(int()),
});

const SgxInfo = struct("SGXInfo", {
  sgx: bool(),
  sgx1: bool(),
  sgx2: bool(),
  flc: bool(),
  "section-size": withFeatures(int("uint64"), ["deprecated"]),
  sections: array(struct("SGXEPCSection", { node: int(), size: int("uint64") })),
});

const VncClientInfo = struct("VncClientInfo", {
  host: str(),
  service: str(),
  family: NetworkAddressFamily,
  websocket: bool(),
  x509_dname: optional(str()),
  sasl_username: optional(str()),
});
const VncPrimaryAuth = enumOf("VncPrimaryAuth", ["none", "vnc", "ra2", "ra2ne", "tight", "ultra", "tls", "vencrypt", "sasl"]);
const VncVencryptSubAuth = enumOf("VncVencryptSubAuth", [
  "plain", "tls-none", "x509-none", "tls-vnc", "x509-vnc", "tls-plain", "x509-plain", "tls-sasl", "x509-sasl",
]);

const PCDIMMDeviceInfo = struct("PCDIMMDeviceInfo", {
  id: optional(str()),
  addr: int(),
  size: int(),
  slot: int(),
  node: int(),
  memdev: str(),
  hotplugged: bool(),
  hotpluggable: bool(),
});
const MemoryDeviceInfo = union(
  "MemoryDeviceInfo",
  "type",
  { type: enumOf("MemoryDeviceInfoKind", ["dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc"]) },
  {
    // Each branch is QEMU's "...Wrapper" struct: its one member, data.
    dimm: { data: PCDIMMDeviceInfo },
    nvdimm: { data: PCDIMMDeviceInfo },
    "virtio-pmem": {
      data: struct("VirtioPMEMDeviceInfo", { id: optional(str()), memaddr: int("size"), size: int("size"), memdev: str() }),
    },
    "virtio-mem": {
      data: struct("VirtioMEMDeviceInfo", {
        id: optional(str()),
        memaddr: int("size"),
        "requested-size": int("size"),
        size: int("size"),
        "max-size": int("size"),
        "block-size": int("size"),
        node: int(),
        memdev: str(),
      }),
    },
    "sgx-epc": {
      data: struct("SgxEPCDeviceInfo", { id: optional(str()), memaddr: int("size"), size: int("size"), node: int(), memdev: str() }),
    },
  },
);

const PciDeviceInfo = struct("PciDeviceInfo", {
  bus: int(),
  slot: int(),
  function: int(),
  class_info: struct("PciDeviceClass", { desc: optional(str()), class: int() }),
  id: struct("PciDeviceId", { device: int(), vendor: int(), subsystem: optional(int()), "subsystem-vendor": optional(int()) }),
  irq: optional(int()),
  irq_pin: int(),
  qdev_id: str(),
  // QEMU's pci_bridge member nests PciDeviceInfo recursively; a machine without PCI never has one.
  regions: array(
    struct("PciMemoryRegion", { bar: int(), type: str(), address: int(), size: int(), prefetch: optional(bool()), mem_type_64: optional(bool()) }),
  ),
});


const TpmModel = enumOf("TpmModel", ["tpm-tis", "tpm-crb", "tpm-spapr"]);
const TpmType = enumOf("TpmType", ["passthrough", "emulator"]);
const DisplayGLMode = enumOf("DisplayGLMode", ["off", "on", "core", "es"]);

const RxState = enumOf("RxState", ["normal", "none", "all"]);
const WatchdogAction = enumOf("WatchdogAction", ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"]);

function rockerCommands(): CommandDef[] {
  const notFound = ({ name }: { name: string }): never => {
    throw genericError(`rocker ${name} not found`);
  };
  const optInt = () => optional(int());
  const optStr = () => optional(str());
  return [
    defineCommand({
      name: "query-rocker",
      args: struct("q_obj_query-rocker-arg", { name: str() }),
      returns: struct("RockerSwitch", { name: str(), id: int("uint64"), ports: int("uint32") }),
      handler: notFound,
    }),
    defineCommand({
      name: "query-rocker-ports",
      args: struct("q_obj_query-rocker-ports-arg", { name: str() }),
      returns: array(
        struct("RockerPort", {
          name: str(),
          enabled: bool(),
          "link-up": bool(),
          speed: int("uint32"),
          duplex: enumOf("RockerPortDuplex", ["half", "full"]),
          autoneg: enumOf("RockerPortAutoneg", ["off", "on"]),
        }),
      ),
      handler: notFound,
    }),
    defineCommand({
      name: "query-rocker-of-dpa-flows",
      args: struct("q_obj_query-rocker-of-dpa-flows-arg", { name: str(), "tbl-id": optional(int("uint32")) }),
      returns: array(
        struct("RockerOfDpaFlow", {
          cookie: int("uint64"),
          hits: int("uint64"),
          key: struct("RockerOfDpaFlowKey", {
            priority: int("uint32"),
            "tbl-id": int("uint32"),
            "in-pport": optInt(),
            "tunnel-id": optInt(),
            "vlan-id": optInt(),
            "eth-type": optInt(),
            "eth-src": optStr(),
            "eth-dst": optStr(),
            "ip-proto": optInt(),
            "ip-tos": optInt(),
            "ip-dst": optStr(),
          }),
          mask: struct("RockerOfDpaFlowMask", {
            "in-pport": optInt(),
            "tunnel-id": optInt(),
            "vlan-id": optInt(),
            "eth-src": optStr(),
            "eth-dst": optStr(),
            "ip-proto": optInt(),
            "ip-tos": optInt(),
          }),
          action: struct("RockerOfDpaFlowAction", {
            "goto-tbl": optInt(),
            "group-id": optInt(),
            "tunnel-lport": optInt(),
            "vlan-id": optInt(),
            "new-vlan-id": optInt(),
            "out-pport": optInt(),
          }),
        }),
      ),
      handler: notFound,
    }),
    defineCommand({
      name: "query-rocker-of-dpa-groups",
      args: struct("q_obj_query-rocker-of-dpa-groups-arg", { name: str(), type: optional(int("uint8")) }),
      returns: array(
        struct("RockerOfDpaGroup", {
          id: int("uint32"),
          type: int("uint8"),
          "vlan-id": optInt(),
          pport: optInt(),
          index: optInt(),
          "out-pport": optInt(),
          "group-id": optInt(),
          "set-vlan-id": optInt(),
          "pop-vlan": optInt(),
          "group-ids": optional(array(int("uint32"))),
          "set-eth-src": optStr(),
          "set-eth-dst": optStr(),
          "ttl-check": optInt(),
        }),
      ),
      handler: notFound,
    }),
  ];
}

const CpuModelInfo = struct("CpuModelInfo", { name: str(), props: optional(any()) });

/**
 * A recorded props dict, rebuilt so that qmpemu's writer prints it in the
 * recorded order: the writer orders members by QDict bucket, the most
 * recently inserted first within a bucket, so inserting in reverse of the
 * printed order reproduces it.
 */
function replayDict(printed: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(printed).reverse()) out[k] = k in overrides ? overrides[k] : printed[k];
  return out;
}

/**
 * query-cpu-model-expansion, replayed for the recorded models. Props given
 * by the caller must exist on the CPU type; those that appear in the
 * expansion take the caller's value. Not modelled: QEMU's knock-on effects
 * (enabling a feature can raise min-level / min-xlevel, aliases such as
 * sse4.2 / sse4_2 change together).
 */
function expandCpuModel(type: "static" | "full", model: { name: string; props?: unknown }): { model: Record<string, unknown> } {
  const def = CPU_DEFINITIONS.find((d) => d.name === model.name);
  if (!def) throw genericError(`CPU model '${model.name}' not found`);
  const recorded = CPU_EXPANSIONS[model.name];
  if (!recorded) throw genericError(`qmpemu has no record of the expansion of CPU model '${model.name}'`);
  const given = model.props && typeof model.props === "object" && !Array.isArray(model.props) ? (model.props as Record<string, unknown>) : {};
  for (const k of Object.keys(given)) {
    if (!(k in (recorded.full.props ?? {}))) throw genericError(`Property '${def.typename}.${k}' not found`);
  }
  const answer = recorded[type];
  return { model: answer.props ? { name: answer.name, props: replayDict(answer.props, given) } : { name: answer.name } };
}

export const events: EventDef[] = [
  defineEvent("RESET", struct("RESET-data", { guest: bool(), reason: enumOf("ShutdownCause", SHUTDOWN_CAUSES) })),
  defineEvent("POWERDOWN"),
];

export const commands: CommandDef[] = [
  // -M none has no ACPI: QEMU still reports the request and nothing else happens.
  defineCommand({ name: "system_powerdown", handler: (_a, { emu }) => void emu.events.emit("POWERDOWN") }),
  failing("system_wakeup", "wake-up from suspend is not supported by this guest"),
  failing("inject-nmi", "this feature or command is not currently supported"),
  defineCommand({
    name: "query-hotpluggable-cpus",
    returns: array(
      struct("HotpluggableCPU", { type: str(), "vcpus-count": int(), props: CpuInstanceProperties, "qom-path": optional(str()) }),
    ),
    handler: () => {
      throw genericError("The feature 'query-hotpluggable-cpus' is not enabled");
    },
  }),
  defineCommand({
    name: "query-machines",
    returns: array(
      struct("MachineInfo", {
        name: str(),
        alias: optional(str()),
        "is-default": optional(bool()),
        "cpu-max": int(),
        "hotpluggable-cpus": bool(),
        "numa-mem-supported": bool(),
        deprecated: bool(),
        "default-cpu-type": optional(str()),
        "default-ram-id": optional(str()),
      }),
    ),
    handler: () => structuredClone(MACHINES),
  }),
  defineCommand({
    name: "query-current-machine",
    returns: struct("CurrentMachineParams", { "wakeup-suspend-support": bool() }),
    handler: () => ({ "wakeup-suspend-support": false }),
  }),
  defineCommand({
    name: "query-cpu-definitions",
    returns: array(
      struct("CpuDefinitionInfo", {
        name: str(),
        "migration-safe": optional(bool()),
        static: bool(),
        "unavailable-features": optional(array(str())),
        typename: str(),
        "alias-of": optional(str()),
        deprecated: bool(),
      }),
    ),
    handler: () => structuredClone(CPU_DEFINITIONS),
  }),
  defineCommand({
    name: "query-cpu-model-expansion",
    args: struct("q_obj_query-cpu-model-expansion-arg", {
      type: enumOf("CpuModelExpansionType", ["static", "full"]),
      model: CpuModelInfo,
    }),
    returns: struct("CpuModelExpansionInfo", { model: CpuModelInfo }),
    handler: ({ type, model }) => expandCpuModel(type, model),
  }),
  defineCommand({
    name: "query-command-line-options",
    args: struct("q_obj_query-command-line-options-arg", { option: optional(str()) }),
    returns: array(
      struct("CommandLineOptionInfo", {
        option: str(),
        parameters: array(
          struct("CommandLineParameterInfo", {
            name: str(),
            type: enumOf("CommandLineParameterType", ["string", "boolean", "number", "size"]),
            help: optional(str()),
            default: optional(str()),
          }),
        ),
      }),
    ),
    handler: ({ option }) => {
      const list = option === undefined ? COMMAND_LINE_OPTIONS : COMMAND_LINE_OPTIONS.filter((o) => o.option === option);
      if (list.length === 0) throw genericError(`invalid option name: ${option}`);
      return structuredClone(list);
    },
  }),
  defineCommand({
    name: "query-chardev",
    returns: array(struct("ChardevInfo", { label: str(), filename: str(), "frontend-open": bool() })),
    handler: (_a, { emu }) => {
      const files = new Map(monitorChardevs(emu).map((c) => [c.id, c.filename]));
      const chardevs = extraState(emu).qom.root.children.get("chardevs");
      return (chardevs?.childEntries() ?? []).map(([label]) => ({ label, filename: files.get(label) ?? "", "frontend-open": true }));
    },
  }),
  defineCommand({
    name: "query-chardev-backends",
    returns: array(struct("ChardevBackendInfo", { name: str() })),
    handler: (_a, { emu }) =>
      (extraState(emu).modulesLoaded ? CHARDEV_BACKENDS_WITH_MODULES : CHARDEV_BACKENDS).map((name) => ({ name })),
  }),
  defineCommand({
    name: "query-display-options",
    returns: union(
      "DisplayOptions",
      "type",
      {
        type: enumOf("DisplayType", ["default", "none", "gtk", "sdl", "egl-headless", "curses", "spice-app", "dbus"]),
        "full-screen": optional(bool()),
        "window-close": optional(bool()),
        "show-cursor": optional(bool()),
        gl: optional(DisplayGLMode),
      },
      {
        gtk: {
          "grab-on-hover": optional(bool()),
          "zoom-to-fit": optional(bool()),
          "show-tabs": optional(bool()),
          "show-menubar": optional(bool()),
        },
        curses: { charset: optional(str()) },
        "egl-headless": { rendernode: optional(str()) },
        dbus: { rendernode: optional(str()), addr: optional(str()), p2p: optional(bool()), audiodev: optional(str()) },
        sdl: { "grab-mod": optional(enumOf("HotKeyMod", ["lctrl-lalt", "lshift-lctrl-lalt", "rctrl"])) },
        default: {},
        none: {},
        "spice-app": {},
      },
    ),
    handler: () => ({ type: "none" }),
  }),
  defineCommand({
    name: "query-memdev",
    returns: array(
      struct("Memdev", {
        id: optional(str()),
        size: int("size"),
        merge: bool(),
        dump: bool(),
        prealloc: bool(),
        share: bool(),
        reserve: optional(bool()),
        "host-nodes": array(int("uint16")),
        policy: enumOf("HostMemPolicy", ["default", "preferred", "bind", "interleave"]),
      }),
    ),
    handler: (_a, { emu }) =>
      extraState(emu).qom.objects().childEntries().map(([, o]) => o)
        .filter((o): o is UserObject => o instanceof UserObject && typeof o.state.memdev === "function")
        .map((o) => {
          const m = (o.state.memdev as () => Record<string, any>)();
          return {
            id: m.id,
            size: m.size,
            merge: m.merge.value,
            dump: m.dump.value,
            prealloc: m.prealloc.value,
            share: m.share.value,
            reserve: m.reserve.value,
            "host-nodes": [...m["host-nodes"]],
            policy: m.policy,
          };
        }),
  }),
  defineCommand({ name: "query-memory-devices", returns: array(MemoryDeviceInfo), handler: () => [] }),
  defineCommand({
    name: "query-memory-size-summary",
    returns: struct("MemoryInfo", { "base-memory": int("size"), "plugged-memory": optional(int("size")) }),
    handler: () => ({ "base-memory": 0, "plugged-memory": 0 }),
  }),
  defineCommand({
    name: "query-balloon",
    returns: struct("BalloonInfo", { actual: int() }),
    handler: () => {
      throw notActive();
    },
  }),
  defineCommand({
    name: "balloon",
    args: struct("q_obj_balloon-arg", { value: int() }),
    handler: () => {
      throw notActive();
    },
  }),
  defineCommand({
    name: "query-pci",
    returns: array(struct("PciInfo", { bus: int(), devices: array(PciDeviceInfo) })),
    handler: () => [],
  }),
  defineCommand({
    name: "query-acpi-ospm-status",
    returns: array(
      struct("ACPIOSTInfo", {
        device: optional(str()),
        slot: str(),
        "slot-type": enumOf("ACPISlotType", ["DIMM", "CPU"]),
        source: int(),
        status: int(),
      }),
    ),
    handler: () => {
      throw genericError("command is not supported, missing ACPI device");
    },
  }),
  defineCommand({
    name: "getfd",
    args: struct("q_obj_getfd-arg", { fdname: str() }),
    handler: () => {
      throw noFd();
    },
  }),
  defineCommand({
    name: "closefd",
    args: struct("q_obj_closefd-arg", { fdname: str() }),
    handler: ({ fdname }) => {
      throw genericError(`File descriptor named '${fdname}' not found`);
    },
  }),
  defineCommand({
    name: "add-fd",
    args: struct("q_obj_add-fd-arg", { "fdset-id": optional(int()), opaque: optional(str()) }),
    returns: struct("AddfdInfo", { "fdset-id": int(), fd: int() }),
    handler: () => {
      throw noFd();
    },
  }),
  defineCommand({
    name: "remove-fd",
    args: struct("q_obj_remove-fd-arg", { "fdset-id": int(), fd: optional(int()) }),
    handler: (a) => {
      const name = a.fd === undefined ? `fdset-id:${a["fdset-id"]}` : `fdset-id:${a["fdset-id"]}, fd:${a.fd}`;
      throw genericError(`File descriptor named '${name}' not found`);
    },
  }),
  defineCommand({
    name: "query-fdsets",
    returns: array(
      struct("FdsetInfo", { "fdset-id": int(), fds: array(struct("FdsetFdInfo", { fd: int(), opaque: optional(str()) })) }),
    ),
    handler: () => [],
  }),
  defineCommand({
    name: "query-vnc",
    returns: struct("VncInfo", {
      enabled: bool(),
      host: optional(str()),
      family: optional(NetworkAddressFamily),
      service: optional(str()),
      auth: optional(str()),
      clients: optional(array(VncClientInfo)),
    }),
    handler: () => ({ enabled: false }),
  }),
  defineCommand({
    name: "query-vnc-servers",
    returns: array(
      struct("VncInfo2", {
        id: str(),
        server: array(
          struct("VncServerInfo2", {
            host: str(),
            service: str(),
            family: NetworkAddressFamily,
            websocket: bool(),
            auth: VncPrimaryAuth,
            vencrypt: optional(VncVencryptSubAuth),
          }),
        ),
        clients: array(VncClientInfo),
        auth: VncPrimaryAuth,
        vencrypt: optional(VncVencryptSubAuth),
        display: optional(str()),
      }),
    ),
    handler: () => [],
  }),
  defineCommand({
    name: "query-spice",
    returns: struct("SpiceInfo", {
      enabled: bool(),
      migrated: bool(),
      host: optional(str()),
      port: optional(int()),
      "tls-port": optional(int()),
      auth: optional(str()),
      "compiled-version": optional(str()),
      "mouse-mode": enumOf("SpiceQueryMouseMode", ["client", "server", "unknown"]),
      channels: optional(
        array(
          struct("SpiceChannel", {
            host: str(),
            port: str(),
            family: NetworkAddressFamily,
            "connection-id": int(),
            "channel-type": int(),
            "channel-id": int(),
            tls: bool(),
          }),
        ),
      ),
    }),
    handler: () => ({ enabled: false, migrated: false, "mouse-mode": "client" }),
  }),
  defineCommand({
    name: "query-sev",
    returns: struct("SevInfo", {
      enabled: bool(),
      "api-major": int("uint8"),
      "api-minor": int("uint8"),
      "build-id": int("uint8"),
      policy: int("uint32"),
      state: enumOf("SevState", ["uninit", "launch-update", "launch-secret", "running", "send-update", "receive-update"]),
      handle: int("uint32"),
    }),
    handler: () => ({ enabled: false, "api-major": 0, "api-minor": 0, "build-id": 0, policy: 0, state: "uninit", handle: 0 }),
  }),
  failing("query-sev-capabilities", "KVM not enabled", {
    returns: struct("SevCapability", { pdh: str(), "cert-chain": str(), "cpu0-id": str(), cbitpos: int(), "reduced-phys-bits": int() }),
  }),
  failing("query-sev-launch-measure", "SEV launch measurement is not available", {
    returns: struct("SevLaunchMeasureInfo", { data: str() }),
  }),
  failing("query-sgx", "SGX is only supported on PC machines", { returns: SgxInfo }),
  failing("query-sgx-capabilities", "SGX is not enabled in KVM", { returns: SgxInfo }),
  defineCommand({
    name: "query-tpm",
    returns: array(
      struct("TPMInfo", {
        id: str(),
        model: TpmModel,
        options: union(
          "TpmTypeOptions",
          "type",
          { type: TpmType },
          {
            passthrough: { data: struct("TPMPassthroughOptions", { path: optional(str()), "cancel-path": optional(str()) }) },
            emulator: { data: struct("TPMEmulatorOptions", { chardev: str() }) },
          },
        ),
      }),
    ),
    handler: () => [],
  }),
  defineCommand({ name: "query-tpm-models", returns: array(TpmModel), handler: () => ["tpm-crb", "tpm-tis"] }),
  defineCommand({ name: "query-tpm-types", returns: array(TpmType), handler: () => ["passthrough", "emulator"] }),
  defineCommand({
    name: "query-mice",
    returns: array(struct("MouseInfo", { name: str(), index: int(), current: bool(), absolute: bool() })),
    handler: () => [],
  }),
  defineCommand({
    name: "query-replay",
    returns: struct("ReplayInfo", {
      mode: enumOf("ReplayMode", ["none", "record", "play"]),
      filename: optional(str()),
      icount: int(),
    }),
    handler: () => ({ mode: "none", icount: 0 }),
  }),
  defineCommand({
    name: "query-dump",
    returns: struct("DumpQueryResult", {
      status: enumOf("DumpStatus", ["none", "active", "completed", "failed"]),
      completed: int(),
      total: int(),
    }),
    handler: () => ({ status: "none", completed: 0, total: 0 }),
  }),
  defineCommand({
    name: "query-dump-guest-memory-capability",
    returns: struct("DumpGuestMemoryCapability", {
      formats: array(enumOf("DumpGuestMemoryFormat", ["elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "win-dmp"])),
    }),
    handler: () => ({ formats: ["elf", "kdump-zlib", "win-dmp"] }),
  }),
  defineCommand({
    name: "query-colo-status",
    returns: struct("COLOStatus", {
      mode: enumOf("COLOMode", ["none", "primary", "secondary"]),
      "last-mode": enumOf("COLOMode", ["none", "primary", "secondary"]),
      reason: enumOf("COLOExitReason", ["none", "request", "error", "processing"]),
    }),
    handler: () => ({ mode: "none", "last-mode": "none", reason: "none" }),
  }),
  defineCommand({
    name: "query-xen-replication-status",
    returns: struct("ReplicationStatus", { error: bool(), desc: optional(str()) }),
    handler: () => ({ error: false }),
  }),
  defineCommand({
    name: "query-pr-managers",
    returns: array(struct("PRManagerInfo", { id: str(), connected: bool() })),
    handler: (_a, { emu }) => (extraState(emu).qom.objects(), []),
  }),
  failing("query-sev-attestation-report", "SEV is not enabled", {
    args: struct("q_obj_query-sev-attestation-report-arg", { mnonce: str() }),
    returns: struct("SevAttestationReport", { data: str() }),
  }),
  // No rocker switch, NIC or net client exists on this machine.
  ...rockerCommands(),
  defineCommand({
    name: "query-rx-filter",
    args: struct("q_obj_query-rx-filter-arg", { name: optional(str()) }),
    returns: array(
      struct("RxFilterInfo", {
        name: str(),
        promiscuous: bool(),
        multicast: RxState,
        unicast: RxState,
        vlan: RxState,
        "broadcast-allowed": bool(),
        "multicast-overflow": bool(),
        "unicast-overflow": bool(),
        "main-mac": str(),
        "vlan-table": array(int()),
        "unicast-table": array(str()),
        "multicast-table": array(str()),
      }),
    ),
    handler: ({ name }) => {
      if (name !== undefined) throw genericError(`invalid net client name: ${name}`);
      return [];
    },
  }),
  defineCommand({
    name: "netdev_del",
    args: struct("q_obj_netdev_del-arg", { id: str() }),
    handler: ({ id }) => {
      throw new QmpError("DeviceNotFound", `Device '${id}' not found`);
    },
  }),
  defineCommand({
    name: "set_link",
    args: struct("q_obj_set_link-arg", { name: str(), up: bool() }),
    handler: ({ name }) => {
      throw new QmpError("DeviceNotFound", `Device '${name}' not found`);
    },
  }),
  defineCommand({
    name: "device_del",
    args: struct("q_obj_device_del-arg", { id: str() }),
    handler: ({ id }, { emu }) => {
      // An id names a device under /machine/peripheral; a path may name any object, none of them hotpluggable.
      if (id.startsWith("/")) {
        try {
          resolvePath(extraState(emu).qom.root, id);
        } catch {
          throw new QmpError("DeviceNotFound", `Device '${id}' not found`);
        }
        throw genericError(`${id} is not a hotpluggable device`);
      }
      throw new QmpError("DeviceNotFound", `Device '${id}' not found`);
    },
  }),
  defineCommand({
    name: "set-action",
    args: struct("q_obj_set-action-arg", {
      reboot: optional(enumOf("RebootAction", ["reset", "shutdown"])),
      shutdown: optional(enumOf("ShutdownAction", ["poweroff", "pause"])),
      panic: optional(enumOf("PanicAction", ["pause", "shutdown", "exit-failure", "none"])),
      watchdog: optional(WatchdogAction),
    }),
    // Nothing here reboots, panics or has a watchdog: the choices have nothing to act on.
    handler: () => {},
  }),
  defineCommand({
    name: "watchdog-set-action",
    args: struct("q_obj_watchdog-set-action-arg", { action: WatchdogAction }),
    handler: () => {},
  }),
  defineCommand({
    name: "query-dirty-rate",
    returns: struct("DirtyRateInfo", {
      "dirty-rate": optional(int()),
      status: enumOf("DirtyRateStatus", ["unstarted", "measuring", "measured"]),
      "start-time": int(),
      "calc-time": int(),
      "sample-pages": int("uint64"),
      mode: enumOf("DirtyRateMeasureMode", ["page-sampling", "dirty-ring", "dirty-bitmap"]),
      "vcpu-dirty-rate": optional(array(struct("DirtyRateVcpu", { id: int(), "dirty-rate": int() }))),
    }),
    handler: () => ({ status: "unstarted", "start-time": 0, "calc-time": 0, "sample-pages": 0, mode: "page-sampling" }),
  }),
  defineCommand({
    name: "query-vcpu-dirty-limit",
    returns: array(struct("DirtyLimitInfo", { "cpu-index": int(), "limit-rate": int("uint64"), "current-rate": int("uint64") })),
    handler: () => [],
  }),
  failing("query-vm-generation-id", "VM Generation ID device not found", { returns: struct("GuidInfo", { guid: str() }) }),
];

export { hmpCommands } from "./misc-hmp.ts";

