/**
 * argv → CliConfig: QEMU's command line for qemu-system-x86_64 and
 * qemu-storage-daemon, as data. The option tables below say which options
 * exist and whether they take an argument; `apply` functions read one
 * option's value into the config. Nothing here opens sockets or files.
 *
 * qemu-system form: `-opt` ≡ `--opt`, the argument is always the next argv
 * entry (`-opt=value` is an unknown option, as in QEMU).
 * qemu-storage-daemon form: getopt_long: `--opt value`, `--opt=value`,
 * unique prefixes of long names, and `-h` / `-V`.
 */
import { parseObjectOption } from "../commands/qom.ts";
import { CliError } from "./errors.ts";
import { type Chardev, parseChardevOption, parseLegacyChardev } from "./chardev.ts";
import { parseBlockdevArg, parseKeyval } from "./keyval.ts";
import { checkKeys, optBool, optGet, parseOnOff, parseQemuOpts, withWarnings, type QemuOpts } from "./qemu-opts.ts";
import * as help from "./help.ts";

export type Personality = "system" | "storage-daemon";

export interface MonitorRequest {
  chardevId: string;
  mode: "control" | "readline";
  pretty: boolean;
  /** The option that asked for it, for error messages (`-mon chardev=x`). */
  origin: string;
}

export interface CliConfig {
  prog: string;
  personality: Personality;
  /** Every -chardev / --chardev and the chardevs -qmp / -monitor create, in order. */
  chardevs: Chardev[];
  monitors: MonitorRequest[];
  /** -object options of the types modelled here: object-add arguments, created before the block devices. */
  objects: { args: Record<string, unknown>; origin?: string }[];
  /** -object ids so far (qemu-system refuses a repeated one while parsing). */
  objectIds: Set<string>;
  blockdevs: Record<string, unknown>[];
  drives: Record<string, string>[];
  /** The option text of each blockdev / drive (same order), for error locations. */
  blockdevOrigins: string[];
  driveOrigins: string[];
  startPaused: boolean;
  name?: string;
  uuid?: string;
  pidfile?: string;
  daemonize: boolean;
  qtest?: { chardev: Chardev; origin: string };
  /** -qtest-log: undefined means stderr (QEMU's default), "none" means no log. */
  qtestLog?: string;
  /** Accelerators asked for (-accel, -machine accel=), in order of preference. */
  accel: string[];
  machine: { type: string; props: [string, string][] };
  /** Options accepted for compatibility but without effect here (there is no guest). */
  recorded: { option: string; value?: string }[];
  /** --demo: the `npm start` configuration. */
  demo: boolean;
}

export type ParseOutcome =
  /** `warnings`: text for stderr (deprecated short forms), possibly empty. */
  | { kind: "run"; config: CliConfig; warnings: string }
  | { kind: "exit"; code: number; stdout?: string; stderr?: string };

/** Something the parser wants to print and exit with (help queries). */
class EarlyExit {
  constructor(readonly stdout: string) {}
}

type Apply = (cfg: CliConfig, value: string, origin: string) => void;

interface OptionDef {
  arg: boolean;
  apply?: Apply;
}

const record: Apply = (cfg, value, origin) => cfg.recorded.push({ option: origin.split(" ")[0], value });
const flag = (fn: (cfg: CliConfig) => void): OptionDef => ({ arg: false, apply: (cfg) => fn(cfg) });
const withArg = (apply: Apply = record): OptionDef => ({ arg: true, apply });
const noArg: OptionDef = { arg: false, apply: (cfg, _v, origin) => cfg.recorded.push({ option: origin }) };

// ---- individual options --------------------------------------------------

function addChardev(cfg: CliConfig, dev: Chardev, origin: string): void {
  if (cfg.chardevs.some((c) => c.id === dev.id)) throw new CliError(`Duplicate ID '${dev.id}' for chardev`);
  cfg.chardevs.push({ ...dev, origin });
}

function compatMonitorId(cfg: CliConfig): string {
  return `compat_monitor${cfg.monitors.filter((m) => m.chardevId.startsWith("compat_monitor")).length}`;
}

function legacyMonitor(mode: "control" | "readline", pretty: boolean): Apply {
  return (cfg, value, origin) => {
    if (value === "none") return;
    const id = compatMonitorId(cfg);
    addChardev(cfg, parseLegacyChardev(value, id), origin);
    cfg.monitors.push({ chardevId: id, mode, pretty, origin });
  };
}

const MON_MODES = ["readline", "control"] as const;

function applyMon(cfg: CliConfig, value: string, origin: string): void {
  const opts = parseQemuOpts(value, "chardev");
  checkKeys(opts, ["chardev", "mode", "pretty"]);
  const mode = optGet(opts, "mode") ?? "readline";
  if (!(MON_MODES as readonly string[]).includes(mode)) {
    throw new CliError(`Parameter 'mode' does not accept value '${mode}'`);
  }
  const chardevId = optGet(opts, "chardev");
  if (chardevId === undefined) throw new CliError("Parameter 'chardev' is missing");
  cfg.monitors.push({ chardevId, mode: mode as MonitorRequest["mode"], pretty: optBool(opts, "pretty", false), origin });
}

/** --monitor (qemu-storage-daemon): keyval MonitorOptions, always QMP. */
function applyQsdMonitor(cfg: CliConfig, value: string, origin: string): void {
  const opts = parseKeyval(value, "chardev");
  for (const key of Object.keys(opts)) {
    if (!["id", "mode", "pretty", "chardev"].includes(key)) throw new CliError(`Parameter '${key}' is unexpected`);
  }
  const chardevId = opts.chardev;
  if (typeof chardevId !== "string") throw new CliError("Parameter 'chardev' is missing");
  const mode = (opts.mode as string | undefined) ?? "control";
  if (!(MON_MODES as readonly string[]).includes(mode)) {
    throw new CliError(`Parameter 'mode' does not accept value '${mode}'`);
  }
  if (mode !== "control") throw new CliError("Only QMP is supported");
  const pretty = opts.pretty === undefined ? false : parseOnOff("pretty", String(opts.pretty));
  cfg.monitors.push({ chardevId, mode: "control", pretty, origin });
}

function applyName(cfg: CliConfig, value: string): void {
  const opts = parseQemuOpts(value, "guest");
  checkKeys(opts, ["guest", "process", "debug-threads"]);
  const guest = optGet(opts, "guest");
  if (guest !== undefined) cfg.name = guest;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function applyUuid(cfg: CliConfig, value: string): void {
  if (!UUID.test(value)) throw new CliError("failed to parse UUID string: wrong format");
  cfg.uuid = value.toLowerCase();
}

const SIZE = /^(\d+(?:\.\d+)?)([kKmMgGtTpPeE]?)[bB]?$/;
const SIZE_HINT = [
  "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-",
  "and exabytes, respectively.",
];

function applyMemory(cfg: CliConfig, value: string, origin: string): void {
  const opts = parseQemuOpts(value, "size");
  checkKeys(opts, ["size", "slots", "maxmem"]);
  for (const key of ["size", "maxmem"]) {
    const v = optGet(opts, key);
    if (v !== undefined && !SIZE.test(v)) {
      throw new CliError(`Parameter '${key}' expects a non-negative number below 2^64`, { hints: SIZE_HINT });
    }
  }
  record(cfg, value, origin);
}

const SMP_KEYS = ["cpus", "sockets", "dies", "clusters", "cores", "threads", "maxcpus"];

/** QEMU reports -smp problems without the option location. */
class UnlocatedError extends CliError {}

function applySmp(cfg: CliConfig, value: string, origin: string): void {
  const opts = parseQemuOpts(value, "cpus");
  for (const [key, v] of opts.pairs) {
    if (!SMP_KEYS.includes(key)) throw new UnlocatedError(`Parameter 'smp.${key}' is unexpected`);
    if (!/^\d+$/.test(v)) throw new UnlocatedError(`Parameter 'smp.${key}' expects integer`);
  }
  record(cfg, value, origin);
}

function addAccel(cfg: CliConfig, name: string, located: boolean): void {
  if (!(help.ACCELERATORS as readonly string[]).includes(name)) {
    const msg = `invalid accelerator ${name}`;
    throw located ? new CliError(msg) : new UnlocatedError(msg);
  }
  cfg.accel.push(name);
}

function applyAccel(cfg: CliConfig, value: string): void {
  const opts = parseQemuOpts(value, "accel");
  if (opts.help || optGet(opts, "accel") === "help") throw new EarlyExit(help.accelHelp());
  const name = optGet(opts, "accel");
  if (name === undefined) throw new CliError("Parameter 'accel' is missing");
  addAccel(cfg, name, true);
}

function applyMachine(cfg: CliConfig, value: string): void {
  const opts = parseQemuOpts(value, "type");
  if (opts.help || optGet(opts, "type") === "help") throw new EarlyExit(help.machineHelp());
  for (const [key, v] of opts.pairs) {
    if (key === "type") cfg.machine.type = v;
    else if (key === "accel") for (const a of v.split(":")) addAccel(cfg, a, false);
    else cfg.machine.props.push([key, v]);
  }
}

/**
 * -drive options drive_new and blockdev_init consume themselves; a drive
 * given nothing else (no file) is an empty drive, a BlockBackend without
 * medium. cache= is not among them: it becomes cache.direct/no-flush.
 */
function isEmptyDriveOption(key: string): boolean {
  return /^(id|if|bus|unit|index|media|file|readonly|read-only|rerror|werror|copy-on-read|snapshot|aio|cache\.writeback|detect-zeroes|stats-account-invalid|stats-account-failed|stats-intervals\..*|throttling\..*|group|(iops|bps)(_rd|_wr)?(_max)?|iops_size)$/.test(key);
}

function applyDrive(cfg: CliConfig, value: string, origin: string): void {
  const opts = parseQemuOpts(value);
  if (optGet(opts, "format") === "help") throw new EarlyExit(help.driveFormatHelp());
  const file = optGet(opts, "file");
  if (optGet(opts, "driver") === undefined && optGet(opts, "format") === undefined && !file) {
    // Without file and format, only options QEMU takes for itself leave an empty drive.
    if (!opts.pairs.every(([k]) => isEmptyDriveOption(k))) throw new CliError("Must specify either driver or file");
  }
  cfg.drives.push(Object.fromEntries(opts.pairs));
  cfg.driveOrigins.push(origin);
}

function applyBlockdev(cfg: CliConfig, value: string, origin: string): void {
  cfg.blockdevs.push(parseBlockdevArg(value));
  cfg.blockdevOrigins.push(origin);
}

/**
 * -object / --object: checked now, as QEMU does; objects of modelled types are
 * created at startup (the storage daemon creates each one at once, so its
 * creation errors name the option too).
 */
function applyObject(cfg: CliConfig, value: string, origin: string): void {
  const keyval = !value.trimStart().startsWith("{");
  const dict = keyval ? parseKeyval(value, "qom-type") : parseBlockdevArg(value);
  const system = cfg.personality === "system";
  let args: Record<string, unknown> | undefined;
  try {
    args = parseObjectOption(dict, { keyval, dialect: system ? "flat" : "qapi" });
  } catch (e) {
    const desc = (e as { desc?: string }).desc ?? String(e);
    const hints = desc.endsWith("expects an identifier") ? ["Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."] : [];
    throw new CliError(desc, { hints });
  }
  if (system && typeof dict.id === "string") {
    if (cfg.objectIds.has(dict.id)) throw new CliError(`Duplicate ID '${dict.id}' for object`);
    cfg.objectIds.add(dict.id);
  }
  if (args) cfg.objects.push({ args, origin: system ? undefined : origin });
  else cfg.recorded.push({ option: "object", value });
}

function applyDevice(cfg: CliConfig, value: string, origin: string): void {
  const opts: QemuOpts = parseQemuOpts(value, "driver");
  if (opts.help || optGet(opts, "driver") === "help") throw new EarlyExit(help.deviceHelp());
  record(cfg, value, origin);
}

function applyQtest(cfg: CliConfig, value: string, origin: string): void {
  cfg.qtest = { chardev: parseLegacyChardev(value, "qtest"), origin };
}

function applyDaemonize(cfg: CliConfig): void {
  cfg.daemonize = true;
}

// ---- tables --------------------------------------------------------------

/** Options that only shape a guest: accepted with an argument and recorded. */
const RECORDED_WITH_ARG = [
  "display", "vga", "serial", "parallel", "incoming", "cpu", "boot", "rtc", "global", "k",
  "vnc", "net", "netdev", "nic", "sandbox", "msg", "overcommit", "D", "d", "L", "bios", "kernel",
  "initrd", "append", "hda", "hdb", "hdc", "hdd", "cdrom", "fda", "fdb", "numa", "trace", "icount",
  "action", "compat", "fsdev", "virtfs", "audiodev", "iscsi", "add-fd", "spice", "usbdevice",
  "watchdog-action", "mem-path", "runas", "chroot", "loadvm", "option-rom", "smbios", "acpitable",
  "set", "readconfig", "plugin", "semihosting-config", "tpmdev", "debugcon", "gdb", "pflash",
  "mtdblock", "sd", "soundhw", "smp-opts", "machine-opts", "g", "prom-env", "device-tree",
  "xen-domid", "xen-attach", "mem-prealloc-threads", "cpu-pm", "fw_cfg", "seed", "qtest-chardev",
  "async-teardown", "run-with",
] as const;

const RECORDED_NO_ARG = [
  "nodefaults", "no-user-config", "nographic", "enable-kvm", "usb", "snapshot", "no-reboot",
  "no-shutdown", "no-hpet", "no-acpi", "full-screen", "s", "preconfig", "mem-prealloc",
  "only-migratable", "no-fd-bootchk", "win2k-hack", "no-quit", "enable-sync-profile", "ctrl-grab",
  "alt-grab", "no-frame", "semihosting", "enable-fips", "xen-attach-hvm", "nouserconfig",
] as const;

const SYSTEM_OPTIONS: Record<string, OptionDef> = {
  ...Object.fromEntries(RECORDED_WITH_ARG.map((n) => [n, withArg()])),
  ...Object.fromEntries(RECORDED_NO_ARG.map((n) => [n, noArg])),
  machine: withArg(applyMachine),
  M: withArg(applyMachine),
  accel: withArg(applyAccel),
  m: withArg(applyMemory),
  smp: withArg(applySmp),
  name: withArg(applyName),
  uuid: withArg(applyUuid),
  pidfile: withArg((cfg, v) => void (cfg.pidfile = v)),
  daemonize: flag(applyDaemonize),
  S: flag((cfg) => void (cfg.startPaused = true)),
  qmp: withArg(legacyMonitor("control", false)),
  "qmp-pretty": withArg(legacyMonitor("control", true)),
  monitor: withArg(legacyMonitor("readline", false)),
  chardev: withArg((cfg, v, origin) => addChardev(cfg, parseChardevOption(v), origin)),
  mon: withArg(applyMon),
  blockdev: withArg(applyBlockdev),
  drive: withArg(applyDrive),
  object: withArg(applyObject),
  device: withArg(applyDevice),
  qtest: withArg(applyQtest),
  "qtest-log": withArg((cfg, v) => void (cfg.qtestLog = v)),
  h: flag(() => {
    throw new EarlyExit("");
  }),
  help: flag(() => {
    throw new EarlyExit("");
  }),
  version: flag(() => {
    throw new EarlyExit(help.versionText("system"));
  }),
  demo: flag((cfg) => void (cfg.demo = true)),
  "storage-daemon": flag(() => {}),
};

const STORAGE_DAEMON_OPTIONS: Record<string, OptionDef> = {
  blockdev: withArg(applyBlockdev),
  chardev: withArg((cfg, v, origin) => addChardev(cfg, parseChardevOption(v), origin)),
  daemonize: flag(applyDaemonize),
  export: withArg(),
  help: flag(() => {
    throw new EarlyExit("");
  }),
  monitor: withArg(applyQsdMonitor),
  "nbd-server": withArg(),
  object: withArg(applyObject),
  pidfile: withArg((cfg, v) => void (cfg.pidfile = v)),
  trace: withArg(),
  version: flag(() => {
    throw new EarlyExit(help.versionText("storage-daemon"));
  }),
  "storage-daemon": flag(() => {}),
  demo: flag((cfg) => void (cfg.demo = true)),
};

const STORAGE_DAEMON_SHORT: Record<string, string> = { h: "help", V: "version", T: "trace" };

// ---- parsing -------------------------------------------------------------

export function basename(argv0: string): string {
  return argv0.split("/").pop() || argv0;
}

/** qemu-storage-daemon* by name, or --storage-daemon anywhere. */
export function personalityOf(argv0: string, args: readonly string[]): Personality {
  if (basename(argv0).startsWith("qemu-storage-daemon")) return "storage-daemon";
  return args.includes("--storage-daemon") || args.includes("-storage-daemon") ? "storage-daemon" : "system";
}

function emptyConfig(prog: string, personality: Personality): CliConfig {
  return {
    prog,
    personality,
    chardevs: [],
    monitors: [],
    objects: [],
    objectIds: new Set(),
    blockdevs: [],
    drives: [],
    blockdevOrigins: [],
    driveOrigins: [],
    startPaused: false,
    daemonize: false,
    accel: [],
    machine: { type: personality === "system" ? "pc-i440fx-7.2" : "none", props: [] },
    recorded: [],
    demo: false,
  };
}

interface Step {
  def: OptionDef;
  value: string;
  /** How QEMU names the location in messages: `-qmp unix:x` or `--monitor x`. */
  origin: string;
}

/** qemu-system: `-opt`/`--opt`, argument in the next entry. */
function* systemSteps(prog: string, args: readonly string[]): Generator<Step> {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-") || a === "-") {
      // A bare argument is the first IDE disk image (-hda).
      yield { def: SYSTEM_OPTIONS.hda, value: a, origin: a };
      continue;
    }
    const name = a.startsWith("--") ? a.slice(2) : a.slice(1);
    const def = Object.hasOwn(SYSTEM_OPTIONS, name) ? SYSTEM_OPTIONS[name] : undefined;
    if (!def) throw new LocatedExit(`${prog}: ${a}: invalid option`);
    if (!def.arg) {
      yield { def, value: "", origin: a };
      continue;
    }
    if (i + 1 >= args.length) throw new LocatedExit(`${prog}: ${a}: requires an argument`);
    const value = args[++i];
    yield { def, value, origin: `${a} ${value}` };
  }
}

/** qemu-storage-daemon: getopt_long. */
function* storageDaemonSteps(prog: string, args: readonly string[]): Generator<Step> {
  const names = Object.keys(STORAGE_DAEMON_OPTIONS);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let name: string;
    let inline: string | undefined;
    if (a.startsWith("--") && a.length > 2) {
      const eq = a.indexOf("=");
      const typed = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
      const exact = names.includes(typed) ? [typed] : names.filter((n) => n.startsWith(typed));
      if (exact.length !== 1) {
        if (exact.length > 1) {
          throw new LocatedExit(`${prog}: option '${a}' is ambiguous; possibilities:${exact.map((n) => ` '--${n}'`).join("")}`);
        }
        throw new LocatedExit(`${prog}: unrecognized option '${a}'`);
      }
      name = exact[0];
    } else if (a.startsWith("-") && a.length === 2 && a !== "--") {
      const long = STORAGE_DAEMON_SHORT[a[1]];
      if (!long) throw new LocatedExit(`${prog}: invalid option -- '${a[1]}'`);
      name = long;
    } else if (a.startsWith("-") && a.length > 2) {
      throw new LocatedExit(`${prog}: invalid option -- '${a[1]}'`);
    } else {
      throw new LocatedExit(`${prog}: ${a}: Unexpected argument`);
    }
    const def = STORAGE_DAEMON_OPTIONS[name];
    if (!def.arg) {
      if (inline !== undefined) throw new LocatedExit(`${prog}: option '--${name}' doesn't allow an argument`);
      yield { def, value: "", origin: `--${name}` };
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= args.length) throw new LocatedExit(`${prog}: option '--${name}' requires an argument`);
      value = args[++i];
    }
    yield { def, value, origin: `--${name} ${value}` };
  }
}

/** A fully formatted message: exit 1. */
class LocatedExit {
  constructor(readonly text: string) {}
}

/** Checks that need the whole command line (QEMU does them after parsing). */
function finish(cfg: CliConfig): void {
  // QEMU creates chardevs after parsing, so -daemonize anywhere on the line conflicts with stdio.
  const stdio = cfg.daemonize ? cfg.chardevs.find((c) => c.backend === "stdio") : undefined;
  if (stdio) throw new LocatedExit(`${cfg.prog}: ${stdio.origin}: cannot use stdio with -daemonize`);
  for (const mon of cfg.monitors) {
    if (!cfg.chardevs.some((c) => c.id === mon.chardevId)) {
      throw new LocatedExit(`${cfg.prog}: ${mon.origin}: chardev "${mon.chardevId}" not found`);
    }
  }
  if (cfg.personality === "system" && !help.isKnownMachine(cfg.machine.type)) {
    throw new LocatedExit(`${cfg.prog}: unsupported machine type\nUse -machine help to list supported machines`);
  }
  if (cfg.daemonize && cfg.recorded.some((r) => r.option === "-nographic" || r.option === "--nographic")) {
    throw new LocatedExit(`${cfg.prog}: -nographic cannot be used with -daemonize`);
  }
}

/**
 * Parses a whole command line. `argv0` names the program (its basename
 * prefixes messages); `args` excludes it.
 */
export function parseCommandLine(argv0: string, args: readonly string[]): ParseOutcome {
  const prog = basename(argv0);
  const personality = personalityOf(argv0, args);
  const cfg = emptyConfig(prog, personality);
  const steps = personality === "system" ? systemSteps(prog, args) : storageDaemonSteps(prog, args);
  const stderr: string[] = [];
  try {
    // Like QEMU, every option name (and the presence of its argument) is checked before any value is read.
    for (const step of [...steps]) {
      try {
        const { warnings } = withWarnings(() => step.def.apply?.(cfg, step.value, step.origin));
        for (const w of warnings) stderr.push(`${prog}: ${step.origin}: ${w}\n`);
      } catch (e) {
        if (e instanceof UnlocatedError) throw new LocatedExit(`${prog}: ${e.message}`);
        if (e instanceof CliError) throw new LocatedExit(e.format(`${prog}: ${step.origin}: `));
        throw e;
      }
    }
    finish(cfg);
  } catch (e) {
    if (e instanceof EarlyExit) {
      const text = e.stdout || (personality === "system" ? help.systemUsage(prog) : help.storageDaemonUsage(prog));
      return { kind: "exit", code: 0, stdout: text, stderr: stderr.join("") || undefined };
    }
    if (e instanceof LocatedExit) return { kind: "exit", code: 1, stderr: stderr.join("") + e.text + "\n" };
    throw e;
  }
  return { kind: "run", config: cfg, warnings: stderr.join("") };
}
