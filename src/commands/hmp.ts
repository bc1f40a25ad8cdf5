/**
 * human-monitor-command: a small HMP front end over the `hmpCommands`
 * entries every command module contributes. The first word picks the
 * command (`info X` picks the entry named "info X"); the rest of the line
 * is handed to it. Output uses CRLF like QEMU's monitor.
 */
import { genericError } from "../core/error.ts";
import { defineCommand, type CommandContext, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { int, optional, str, struct } from "./qapi.ts";

/** QEMU's one-line help for the HMP commands we implement (args, help). */
const HELP: Record<string, [string, string]> = {
  "info status": ["", "show the current VM status (running|paused)"],
  "info version": ["", "show the version of QEMU"],
  "info name": ["", "show the current VM name"],
  "info uuid": ["", "show the current VM UUID"],
  "info kvm": ["", "show KVM information"],
  "info block": ["[-n] [-v] [device]", "show info of one block device or all block devices (-n: show named nodes; -v: show details)"],
  "info block-jobs": ["", "show progress of ongoing block device operations"],
  block_job_cancel: [
    "[-f] device",
    "stop an active background block operation (use -f\n\t\t\t if you want to abort the operation immediately\n\t\t\t instead of keep running until data is in sync)",
  ],
  block_job_complete: ["device", "stop an active background block operation"],
  block_job_pause: ["device", "pause an active background block operation"],
  block_job_resume: ["device", "resume a paused background block operation"],
  block_job_set_speed: ["device speed", "set maximum speed for a background block operation"],
  "info jobs": ["", "show progress of ongoing jobs"],
  help: ["[cmd]", "show the help"],
  stop: ["", "stop emulation"],
  cont: ["", "resume emulation"],
  quit: ["", "quit the emulator"],
  "qemu-io": ["[-d] [device] \"[command]\"", "run a qemu-io command on a block device\n\t\t\t-d: [device] is a device ID rather than a drive ID or QOM path"],
  // Character devices (./chardev-hmp.ts) and device_add (./devices.ts).
  "chardev-add": ["args", "add chardev"],
  "chardev-change": ["id args", "change chardev"],
  "chardev-remove": ["id", "remove chardev"],
  "chardev-send-break": ["id", "send a break on chardev"],
  ringbuf_write: ["device data", "Write to a ring buffer character device"],
  ringbuf_read: ["device size", "Read from a ring buffer character device"],
  device_add: ["driver[,prop=value][,...]", "add device, like -device on the command line"],
  // Machine and device commands (./machine-hmp.ts).
  calc_dirty_rate: [
    "[-r] [-b] second [sample_pages_per_GB]",
    "start a round of guest dirty rate measurement (using -r to\n\t\t\t specify dirty ring as the method of calculation and\n\t\t\t -b to specify dirty bitmap as method of calculation)",
  ],
  set_link: ["name on|off", "change the link status of a network adapter"],
  netdev_del: ["id", "remove host network device"],
  device_del: ["device", "remove device"],
  getfd: ["getfd name", "receive a file descriptor via SCM rights and assign it a name"],
  closefd: ["closefd name", "close a file descriptor previously passed via SCM rights"],
  balloon: ["target", "request VM to change its memory allocation (in MB)"],
  system_wakeup: ["", "wakeup guest from suspend"],
  nmi: ["", "inject an NMI"],
  watchdog_action: ["[reset|shutdown|poweroff|pause|debug|none]", "change watchdog action"],
  cpu: ["index", "set the default CPU"],
  boot_set: ["bootdevice", "define new values for the boot device list"],
  stopcapture: ["capture index", "stop capture"],
  sum: ["addr size", "compute the checksum of a memory region"],
  // Migration commands (./migration-hmp.ts).
  migrate_cancel: ["", "cancel the current VM migration"],
  migrate_continue: ["state", "Continue migration from the given paused state"],
  migrate_pause: ["", "Pause an ongoing migration (postcopy-only)"],
  migrate_recover: ["uri", "Continue a paused incoming postcopy migration"],
  migrate_set_capability: ["capability state", "Enable/Disable the usage of a capability for migration"],
  migrate_set_parameter: ["parameter value", "Set the parameter for migration"],
  migrate_start_postcopy: ["", "Followup to a migration command to switch the migration to postcopy mode. The postcopy-ram capability must be set on both source and destination before the original migration command ."],
  // I/O limits (./block-io-limits.ts).
  block_set_io_throttle: ["device bps bps_rd bps_wr iops iops_rd iops_wr", "change I/O throttle limits for a block drive"],
  // Removable media (./block-media.ts).
  eject: ["[-f] device", "eject a removable medium (use -f to force it)"],
  change: ["device [-f] filename [format [read-only-mode]]", "change a removable medium, optional format, use -f to force the operation"],
  // Block commands (./block-hmp.ts).
  block_resize: ["device size", "resize a block image"],
  block_stream: ["device [speed [base]]", "copy data from a backing file into a block device"],
  commit: ["device|all", "commit changes to the disk images (if -snapshot is used) or backing files"],
  drive_backup: [
    "[-n] [-f] [-c] device target [format]",
    "initiates a point-in-time\n\t\t\tcopy for a device. The device's contents are\n\t\t\tcopied to the new image file, excluding data that\n\t\t\tis written after the command is started.\n\t\t\tThe -n flag requests QEMU to reuse the image found\n\t\t\tin new-image-file, instead of recreating it from scratch.\n\t\t\tThe -f flag requests QEMU to copy the whole disk,\n\t\t\tso that the result does not need a backing file.\n\t\t\tThe -c flag requests QEMU to compress backup data\n\t\t\t(if the target format supports it).\n\t\t\t",
  ],
  drive_add: [
    "[-n] [[<domain>:]<bus>:]<slot>\n[file=file][,if=type][,bus=n]\n[,unit=m][,media=d][,index=i]\n[,snapshot=on|off][,cache=on|off]\n[,readonly=on|off][,copy-on-read=on|off]",
    "add drive to PCI storage controller",
  ],
  drive_del: ["device", "remove host block device"],
  drive_mirror: [
    "[-n] [-f] device target [format]",
    "initiates live storage\n\t\t\tmigration for a device. The device's contents are\n\t\t\tcopied to the new image file, including data that\n\t\t\tis written after the command is started.\n\t\t\tThe -n flag requests QEMU to reuse the image found\n\t\t\tin new-image-file, instead of recreating it from scratch.\n\t\t\tThe -f flag requests QEMU to copy the whole disk,\n\t\t\tso that the result does not need a backing file.\n\t\t\t",
  ],
  snapshot_blkdev: [
    "[-n] device [new-image-file] [format]",
    "initiates a live snapshot\n\t\t\tof device. If a new image file is specified, the\n\t\t\tnew image file will become the new root image.\n\t\t\tIf format is specified, the snapshot file will\n\t\t\tbe created in that format.\n\t\t\tThe default format is qcow2.  The -n flag requests QEMU\n\t\t\tto reuse the image found in new-image-file, instead of\n\t\t\trecreating it from scratch.",
  ],
  snapshot_blkdev_internal: [
    "device name",
    "take an internal snapshot of device.\n\t\t\tThe format of the image used by device must\n\t\t\tsupport it, such as qcow2.\n\t\t\t",
  ],
  snapshot_delete_blkdev_internal: [
    "device name [id]",
    "delete an internal snapshot of device.\n\t\t\tIf id is specified, qemu will try delete\n\t\t\tthe snapshot matching both id and name.\n\t\t\tThe format of the image used by device must\n\t\t\tsupport it, such as qcow2.\n\t\t\t",
  ],
  // Machine, QOM and migration commands (./misc-hmp.ts).
  "info balloon": ["", "show balloon information"],
  "info chardev": ["", "show the character devices"],
  "info cpus": ["", "show infos for each CPU"],
  "info dump": ["", "Display the latest dump status"],
  "info hotpluggable-cpus": ["", "Show information about hotpluggable CPUs"],
  "info iothreads": ["", "show iothreads"],
  "info memdev": ["", "show memory backends"],
  "info memory-devices": ["", "show memory devices"],
  "info memory_size_summary": ["", "show the amount of initially allocated and present hotpluggable (if enabled) memory in bytes."],
  "info mice": ["", "show which guest mouse is receiving events"],
  "info migrate": ["", "show migration status"],
  "info migrate_capabilities": ["", "show current migration capabilities"],
  "info migrate_parameters": ["", "show current migration parameters"],
  "info pci": ["", "show PCI info"],
  "info qom-tree": ["[path]", "show QOM composition tree"],
  "info replay": ["", "show record/replay information"],
  "info sev": ["", "show SEV information"],
  "info sgx": ["", "show intel SGX information"],
  "info spice": ["", "show the spice server status"],
  "info tpm": ["", "show the TPM device"],
  "info vnc": ["", "show the vnc server status"],
  "info mtree": [
    "[-f][-d][-o][-D]",
    "show memory tree (-f: dump flat view for address spaces;-d: dump dispatch tree, valid with -f only);-o: dump region owners/parents;-D: dump disabled regions",
  ],
  "info qtree": ["", "show device tree"],
  "info registers": ["[-a|vcpu]", "show the cpu registers (-a: show register info for all cpus; vcpu: specific vCPU to query; show the current CPU's registers if no argument is specified)"],
  "info lapic": ["[apic-id]", "show local apic state (apic-id: local apic to read, default is which of current CPU)"],
  "info tlb": ["", "show virtual to physical memory mappings"],
  "info mem": ["", "show the active virtual memory mappings"],
  "info usb": ["", "show guest USB devices"],
  "info numa": ["", "show NUMA information"],
  "info roms": ["", "show roms"],
  "info irq": ["", "show the interrupts statistics (if available)"],
  "info pic": ["", "show PIC state"],
  "info history": ["", "show the command line history"],
  "info network": ["", "show the network state"],
  "info capture": ["", "show capture information"],
  "info usernet": ["", "show user network stack connection states"],
  "info rdma": ["", "show RDMA state"],
  "info virtio": ["", "List all available virtio devices"],
  "info vcpu_dirty_limit": ["", "show dirty page limit information of all vCPU"],
  "info vm-generation-id": ["", "Show Virtual Machine Generation ID"],
  "info dirty_rate": ["", "show dirty rate information"],
  "info profile": ["", "show profiling information"],
  "info opcount": ["", "show dynamic compiler opcode counters"],
  "info ramblock": ["", "Display system ramblock information"],
  "info sync-profile": [
    "[-m] [-n] [max]",
    "show synchronization profiling info, up to max entries (default: 10), sorted by total wait time. (-m: sort by mean wait time; -n: do not coalesce objects with the same call site)",
  ],
  "info snapshots": ["", "show the currently saved VM snapshots"],
  object_del: ["id", "destroy QOM object"],
  "qom-get": ["path property", "print QOM property"],
  "qom-list": ["path", "list QOM properties"],
  "qom-set": ["[-j] path property value", "set QOM property.\n\t\t\t-j: the value is specified in json format."],
  system_powerdown: ["", "send system power down event"],
  system_reset: ["", "reset the system"],
  // Block statistics and the NBD server (./block-extra.ts); QEMU repeats the name in these args.
  "info blockstats": ["", "show block device statistics"],
  nbd_server_start: ["nbd_server_start [-a] [-w] host:port", "serve block devices on the given host and port"],
  nbd_server_add: ["nbd_server_add [-w] device [name]", "export a block device via NBD"],
  nbd_server_remove: ["nbd_server_remove [-f] name", "remove an export previously exposed via NBD"],
  nbd_server_stop: ["nbd_server_stop", "stop serving block devices using the NBD protocol"],
};

const ALIASES: Record<string, string> = { c: "cont", q: "quit", "?": "help", s: "stop" };

function helpLine(name: string): string {
  const [args, help] = HELP[name] ?? ["", ""];
  // QEMU lists a command's short form after it: "stop|s".
  const alias = Object.keys(ALIASES).find((a) => ALIASES[a] === name);
  return `${alias ? `${name}|${alias}` : name} ${args} -- ${help}\n`;
}

function helpFor(words: string[], table: Map<string, HmpCommand>): string {
  const names = [...table.keys(), "help"];
  if (words.length === 0) {
    return names.filter((n) => !n.startsWith("info ")).sort().map(helpLine).join("") + "info [subcommand] -- show various information about the system state\n";
  }
  const key = words[0] === "info" && words[1] ? `info ${words[1]}` : (ALIASES[words[0]!] ?? words[0]!);
  if (key === "info") return infoList(table);
  if (!table.has(key) && key !== "help") return `unknown command: '${words.join(" ")}'\n`;
  return helpLine(key);
}

function infoList(table: Map<string, HmpCommand>): string {
  return [...table.keys()].filter((n) => n.startsWith("info ")).sort().map(helpLine).join("");
}

/** A command without parameters given some: QEMU's parser refuses before the command runs. */
function extraneous(key: string, shownName: string, args: string): string | undefined {
  const help = HELP[key];
  if (!help || help[0] !== "" || args.trim() === "") return undefined;
  return `${shownName}: extraneous characters at the end of line\nTry "help ${key}" for more information\n`;
}

/** Runs one HMP command line; returns what QEMU would put in "return". */
export async function runHmp(line: string, ctx: CommandContext): Promise<string> {
  const table = ctx.emu.hmpCommands;
  const trimmed = line.trim();
  if (!trimmed) return "";
  const m = /^(\S+)\s*(.*)$/s.exec(trimmed)!;
  let word = m[1]!;
  let rest = m[2]!;
  word = ALIASES[word] ?? word;
  let out: string;
  if (word === "help") {
    out = helpFor(rest.split(/\s+/).filter(Boolean), table);
  } else if (word === "info") {
    const sub = /^(\S+)\s*(.*)$/s.exec(rest);
    if (!sub) out = infoList(table);
    else {
      const cmd = table.get(`info ${sub[1]}`);
      out = !cmd ? `unknown command: 'info ${sub[1]}'\n` : (extraneous(`info ${sub[1]}`, sub[1]!, sub[2]!) ?? (await cmd.run(sub[2]!, ctx)));
    }
  } else {
    const cmd = table.get(word);
    const alias = Object.keys(ALIASES).find((a) => ALIASES[a] === word);
    out = !cmd ? `unknown command: '${word}'\n` : (extraneous(word, alias ? `${word}|${alias}` : word, rest) ?? (await cmd.run(rest, ctx)));
  }
  return out.replace(/\r?\n/g, "\r\n");
}

export const commands: CommandDef[] = [
  defineCommand({
    name: "human-monitor-command",
    args: struct("q_obj_human-monitor-command-arg", { "command-line": str(), "cpu-index": optional(int()) }),
    returns: str(),
    features: ["savevm-monitor-nodes"],
    handler: ({ "command-line": line, "cpu-index": cpu }, ctx) => {
      // -M none has no CPUs, so no index can be selected.
      if (cpu !== undefined) throw genericError("Parameter 'cpu-index' expects a CPU number");
      return runHmp(line, ctx);
    },
  }),
];

export const hmpCommands: HmpCommand[] = [];
