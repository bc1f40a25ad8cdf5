/**
 * Run-state and identity commands: query-status, stop, cont, quit,
 * query-name/uuid/kvm/target, yank/query-yank and the two migration
 * commands that are allow-oob in QEMU (answered as a machine that is not
 * migrating, which is always true here).
 */
import { QmpError, genericError } from "../core/error.ts";
import { defineCommand, defineEvent, type CommandDef, type EventDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { array, bool, enumOf, int, optional, str, struct, union } from "./qapi.ts";

const RUN_STATES = [
  "debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate", "prelaunch",
  "finish-migrate", "restore-vm", "running", "save-vm", "shutdown", "suspended", "watchdog",
  "guest-panicked", "colo",
] as const;

const SHUTDOWN_CAUSES = [
  "none", "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal", "host-ui",
  "guest-shutdown", "guest-reset", "guest-panic", "subsystem-reset", "snapshot-load",
] as const;

const SYS_EMU_TARGETS = [
  "aarch64", "alpha", "arm", "avr", "cris", "hppa", "i386", "loongarch64", "m68k", "microblaze",
  "microblazeel", "mips", "mips64", "mips64el", "mipsel", "nios2", "or1k", "ppc", "ppc64", "riscv32",
  "riscv64", "rx", "s390x", "sh4", "sh4eb", "sparc", "sparc64", "tricore", "x86_64", "xtensa", "xtensaeb",
] as const;
const SysEmuTarget = enumOf("SysEmuTarget", SYS_EMU_TARGETS);

export const CpuInstanceProperties = struct("CpuInstanceProperties", {
  "node-id": optional(int()),
  "socket-id": optional(int()),
  "die-id": optional(int()),
  "cluster-id": optional(int()),
  "core-id": optional(int()),
  "thread-id": optional(int()),
});

const CpuInfoFast = union(
  "CpuInfoFast",
  "target",
  { "cpu-index": int(), "qom-path": str(), "thread-id": int(), props: optional(CpuInstanceProperties), target: SysEmuTarget },
  // QEMU lists the explicit branch first, then the implicit empty ones.
  Object.fromEntries([
    ["s390x", { "cpu-state": enumOf("CpuS390State", ["uninitialized", "stopped", "check-stop", "operating", "load"]) }],
    ...SYS_EMU_TARGETS.filter((t) => t !== "s390x").map((t) => [t, {}]),
  ]),
);

const StatusInfo = struct("StatusInfo", {
  running: bool(),
  singlestep: bool(),
  status: enumOf("RunState", RUN_STATES),
});

const YankInstance = union(
  "YankInstance",
  "type",
  { type: enumOf("YankInstanceType", ["block-node", "chardev", "migration"]) },
  {
    "block-node": { "node-name": str() },
    chardev: { id: str() },
    migration: {},
  },
);

export const events: EventDef[] = [
  defineEvent("SHUTDOWN", struct("SHUTDOWN-data", { guest: bool(), reason: enumOf("ShutdownCause", SHUTDOWN_CAUSES) })),
  defineEvent("RESET", struct("RESET-data", { guest: bool(), reason: enumOf("ShutdownCause", SHUTDOWN_CAUSES) })),
  defineEvent("STOP"),
  defineEvent("RESUME"),
];

export const commands: CommandDef[] = [
  defineCommand({
    name: "query-status",
    returns: StatusInfo,
    handler: (_a, { emu }) => {
      const status = emu.machine.runState;
      // Members in QAPI order: the writer reproduces QDict order from insertion order.
      return { running: status === "running", singlestep: false, status };
    },
  }),
  defineCommand({ name: "stop", handler: (_a, { emu }) => emu.machine.stop() }),
  defineCommand({ name: "cont", handler: (_a, { emu }) => emu.machine.cont() }),
  // QEMU 7.2 sends SHUTDOWN (and the events of jobs cancelled on exit) before this reply.
  defineCommand({ name: "quit", handler: (_a, { emu }) => emu.shutdown("host-qmp-quit") }),
  defineCommand({
    name: "query-name",
    returns: struct("NameInfo", { name: optional(str()) }),
    handler: (_a, { emu }) => (emu.machine.name === undefined ? {} : { name: emu.machine.name }),
  }),
  defineCommand({
    name: "query-uuid",
    returns: struct("UuidInfo", { UUID: str() }),
    handler: (_a, { emu }) => ({ UUID: emu.machine.uuid }),
  }),
  defineCommand({
    name: "query-kvm",
    returns: struct("KvmInfo", { enabled: bool(), present: bool() }),
    handler: () => ({ enabled: false, present: true }),
  }),
  defineCommand({
    name: "query-target",
    returns: struct("TargetInfo", { arch: SysEmuTarget }),
    handler: () => ({ arch: "x86_64" }),
  }),
  defineCommand({
    name: "query-yank",
    returns: array(YankInstance),
    allowOob: true,
    handler: (_a, { emu }) => emu.yankInstances().map((id) => ({ type: "chardev", id })),
  }),
  defineCommand({
    name: "yank",
    args: struct("q_obj_yank-arg", { instances: array(YankInstance) }),
    allowOob: true,
    handler: ({ instances }, { emu }) => {
      const known = new Set(emu.yankInstances());
      // All instances are checked before anything is yanked.
      for (const inst of instances) {
        if (inst.type !== "chardev" || !known.has((inst as { id: string }).id)) {
          throw new QmpError("DeviceNotFound", "Instance not found");
        }
      }
      for (const inst of instances) emu.yank((inst as { id: string }).id);
    },
  }),
  defineCommand({
    name: "migrate-pause",
    allowOob: true,
    handler: () => {
      throw genericError("migrate-pause is currently only supported during postcopy-active state");
    },
  }),
  defineCommand({
    name: "migrate-recover",
    args: struct("q_obj_migrate-recover-arg", { uri: str() }),
    allowOob: true,
    handler: () => {
      throw genericError("Migrate recover can only be run when postcopy is paused.");
    },
  }),
  defineCommand({
    name: "system_reset",
    handler: (_a, { emu }) => void emu.events.emit("RESET", { guest: false, reason: "host-qmp-system-reset" }),
  }),
  defineCommand({
    name: "query-cpus-fast",
    returns: array(CpuInfoFast),
    handler: () => [],
  }),
];

export const hmpCommands: HmpCommand[] = [
  {
    name: "info status",
    run: (_l, { emu }) => {
      const s = emu.machine.runState;
      const shown = s === "running" ? "running" : s === "paused" ? "paused" : `paused (${s})`;
      return `VM status: ${shown}\n`;
    },
  },
  {
    name: "info version",
    run: (_l, { emu }) => {
      const { qemu, package: pkg } = emu.machine.version;
      return `${qemu.major}.${qemu.minor}.${qemu.micro}${pkg}\n`;
    },
  },
  { name: "info name", run: (_l, { emu }) => (emu.machine.name === undefined ? "" : `${emu.machine.name}\n`) },
  { name: "info uuid", run: (_l, { emu }) => `${emu.machine.uuid}\n` },
  { name: "info kvm", run: () => "kvm support: disabled\n" },
  { name: "stop", run: (_l, { emu }) => (emu.machine.stop(), "") },
  { name: "cont", run: (_l, { emu }) => (emu.machine.cont(), "") },
  { name: "quit", run: async (_l, { emu }) => (await emu.shutdown("host-qmp-quit"), "") },
];
