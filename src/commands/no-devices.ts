/**
 * What `-M none -nodefaults` has none of: no balloon, PCI bus, ACPI, VNC,
 * SPICE, SEV, SGX, TPM, mouse, rocker switch, NIC or hotpluggable device,
 * and no descriptors passed in. Each command answers as QEMU 7.2 does on
 * such a machine: an empty list, a "disabled" record, or its error.
 */
import { QmpError, genericError } from "../core/error.ts";
import { extraState } from "../machine-extra/state.ts";
import { resolvePath } from "../qom/object.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { array, bool, enumOf, int, optional, str, struct, union, withFeatures } from "./qapi.ts";

const NetworkAddressFamily = enumOf("NetworkAddressFamily", ["ipv4", "ipv6", "unix", "vsock", "unknown"]);

/** No transport here passes descriptors (SCM_RIGHTS), so these find nothing to take. */
const noFd = () => genericError("No file descriptor supplied via SCM_RIGHTS");

const notActive = () => new QmpError("DeviceNotActive", "No balloon device has been activated");

/** Commands that fail the same way every time on this machine. */
export const failing = (name: string, message: string, extra: Partial<CommandDef> = {}): CommandDef =>
  defineCommand({
    name,
    ...extra,
    handler: () => {
      throw genericError(message);
    },
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
const RxState = enumOf("RxState", ["normal", "none", "all"]);
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

export const commands: CommandDef[] = [
  defineCommand({ name: "query-memory-devices", returns: array(MemoryDeviceInfo), handler: () => [] }),
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
  failing("query-vm-generation-id", "VM Generation ID device not found", { returns: struct("GuidInfo", { guid: str() }) }),
];

export const hmpCommands: HmpCommand[] = [];
