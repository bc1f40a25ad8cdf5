/**
 * The composition tree of a `-M none -nodefaults` QEMU 7.2 as QOM paths
 * show it: /objects (object-add), /machine (none-machine with its
 * containers) and /chardevs (the monitors' sockets).
 */
import { TYPE_PROPERTIES } from "../machine-extra/data/recorded.ts";
import { QomObject, field, type QomProperty } from "./object.ts";

export type ChardevAddress = { type: "unix"; path: string } | { type: "inet"; host: string; port: string };

export interface ChardevInfo {
  id: string;
  addr: ChardevAddress;
}

export interface QomTree {
  root: QomObject;
  machine: QomObject;
  /**
   * /objects, which QEMU creates on first use (object-add, query-iothreads,
   * query-memdev, ...): until then qom-list / does not show it.
   */
  objects(): QomObject;
}

const container = () => new QomObject("container");

function describe(typename: string, name: string): string | undefined {
  return TYPE_PROPERTIES()[typename]?.find((p) => p.name === name)?.description;
}

/** none-machine's properties, in qom-list order, with -M none's values. */
function machineProperties(): QomProperty[] {
  const str = (name: string) => field(name, "string", { value: "" }, { description: describe("none-machine", name) });
  const bool = (name: string, value: boolean) => field(name, "bool", { value }, { description: describe("none-machine", name) });
  const fixed = (name: string, type: string, value: unknown): QomProperty => ({
    name,
    type,
    description: describe("none-machine", name),
    get: () => structuredClone(value),
  });
  return [
    str("kernel"),
    str("dt-compatible"),
    fixed("boot", "BootConfiguration", { order: "" }),
    fixed("memory", "MemorySizeConfiguration", { size: 0 }),
    str("initrd"),
    fixed("confidential-guest-support", "link<confidential-guest-support>", ""),
    bool("graphics", true),
    bool("usb", false),
    str("firmware"),
    str("memory-encryption"),
    fixed("smp", "SMPConfiguration", { cpus: 1, sockets: 1, dies: 1, clusters: 1, cores: 1, threads: 1, maxcpus: 1 }),
    bool("dump-guest-core", true),
    field("phandle-start", "int", { value: 0 }, { description: describe("none-machine", "phandle-start") }),
    str("dumpdtb"),
    fixed("memory-backend", "link<memory-backend>", ""),
    str("dtb"),
    bool("mem-merge", true),
    str("append"),
    bool("suppress-vmdesc", false),
  ];
}

export function buildTree(chardevs: readonly ChardevInfo[]): QomTree {
  const root = container();
  const machine = root.addChild("machine", new QomObject("none-machine", machineProperties()));
  const devs = root.addChild("chardevs", container());
  machine.addChild("peripheral-anon", container());
  machine.addChild("peripheral", container());
  const unattached = machine.addChild("unattached", container());
  unattached.addChild("io[0]", new QomObject("memory-region"));
  unattached.addChild("system[0]", new QomObject("memory-region"));
  unattached.addChild(
    "sysbus",
    new QomObject("System", [
      { name: "realized", type: "bool", get: () => true },
      { name: "hotplug-handler", type: "link<hotplug-handler>", get: () => "" },
    ]),
  );
  unattached.fixChildOrder(["io[0]", "system[0]", "sysbus"]);
  for (const c of chardevs) {
    devs.addChild(
      c.id,
      new QomObject("chardev-socket", [
        { name: "connected", type: "bool", get: () => true },
        { name: "addr", type: "SocketAddress", get: () => ({ ...c.addr }) },
      ]),
    );
  }
  return { root, machine, objects: () => root.children.get("objects") ?? root.addChild("objects", container()) };
}
