/**
 * The everyday machine-level queries management tools send when they
 * connect, answered as `qemu-system-x86_64 -M none -nodefaults -display
 * none` 7.2 does: no CPUs, no displays; static descriptions of the binary
 * (CPU models, machine types, option groups) replayed from a recording.
 * What such a machine lacks altogether (devices, VNC, TPM, ...) answers
 * from ./no-devices.ts.
 */
import { genericError } from "../core/error.ts";
import { COMMAND_LINE_OPTIONS, CPU_DEFINITIONS, CPU_EXPANSIONS, MACHINES } from "../machine-extra/data/recorded.ts";
import { extraState } from "../machine-extra/state.ts";
import { UserObject } from "../qom/user-types.ts";
import { defineCommand, defineEvent, type CommandDef, type EventDef } from "./command.ts";
import { CpuInstanceProperties } from "./machine.ts";
import { failing } from "./no-devices.ts";
import { any, array, bool, enumOf, int, intNumber, optional, str, struct, union } from "./qapi.ts";

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

const DisplayGLMode = enumOf("DisplayGLMode", ["off", "on", "core", "es"]);

const WatchdogAction = enumOf("WatchdogAction", ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"]);

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
  const def = CPU_DEFINITIONS().find((d) => d.name === model.name);
  if (!def) throw genericError(`CPU model '${model.name}' not found`);
  const recorded = CPU_EXPANSIONS()[model.name];
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

const DirtyRateMeasureMode = enumOf("DirtyRateMeasureMode", ["page-sampling", "dirty-ring", "dirty-bitmap"]);

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
    handler: () => structuredClone(MACHINES()),
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
    handler: () => structuredClone(CPU_DEFINITIONS()),
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
      const list = option === undefined ? COMMAND_LINE_OPTIONS() : COMMAND_LINE_OPTIONS().filter((o) => o.option === option);
      if (list.length === 0) throw genericError(`invalid option name: ${option}`);
      return structuredClone(list);
    },
  }),
  // query-chardev: ./chardev.ts, beside the commands that change the list.
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
  defineCommand({
    name: "query-memory-size-summary",
    returns: struct("MemoryInfo", { "base-memory": int("size"), "plugged-memory": optional(int("size")) }),
    handler: () => ({ "base-memory": 0, "plugged-memory": 0 }),
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
      mode: DirtyRateMeasureMode,
      "vcpu-dirty-rate": optional(array(struct("DirtyRateVcpu", { id: int(), "dirty-rate": int() }))),
    }),
    handler: (_a, { emu }) => extraState(emu).dirtyRate.query(),
  }),
  defineCommand({
    name: "calc-dirty-rate",
    args: struct("q_obj_calc-dirty-rate-arg", {
      "calc-time": int(),
      "sample-pages": optional(int()),
      mode: optional(DirtyRateMeasureMode),
    }),
    handler: (a, { emu }) =>
      void extraState(emu).dirtyRate.start(intNumber(a["calc-time"]), a["sample-pages"] === undefined ? undefined : intNumber(a["sample-pages"]), a.mode),
  }),
  defineCommand({
    name: "query-vcpu-dirty-limit",
    returns: array(struct("DirtyLimitInfo", { "cpu-index": int(), "limit-rate": int("uint64"), "current-rate": int("uint64") })),
    handler: () => [],
  }),
];

export { hmpCommands } from "./misc-hmp.ts";

