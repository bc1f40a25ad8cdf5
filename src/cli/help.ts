/**
 * Texts for --version, --help and the `help` queries (-machine help,
 * -accel help, -device help, -drive format=help), in QEMU 7.2's layout.
 * No guest devices exist here: the tables list what the command line accepts.
 */
import { DEFAULT_QEMU_VERSION, QMPEMU_VERSION } from "../machine.ts";

const COPYRIGHT = "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers";
const V = DEFAULT_QEMU_VERSION;
export const QEMU_VERSION_STRING = `${V.major}.${V.minor}.${V.micro}`;
export const PACKAGE = `qmpemu-${QMPEMU_VERSION}`;

export function versionText(personality: "system" | "storage-daemon"): string {
  const what = personality === "system" ? "QEMU emulator version" : "qemu-storage-daemon version";
  return `${what} ${QEMU_VERSION_STRING} (${PACKAGE})\n${COPYRIGHT}\n`;
}

/** Machine types -machine accepts (all behave as `none`: there is no guest). */
export const MACHINES: readonly { name: string; desc: string }[] = [
  { name: "microvm", desc: "microvm (i386)" },
  { name: "pc", desc: "Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)" },
  { name: "pc-i440fx-7.2", desc: "Standard PC (i440FX + PIIX, 1996) (default)" },
  { name: "q35", desc: "Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)" },
  { name: "pc-q35-7.2", desc: "Standard PC (Q35 + ICH9, 2009)" },
  { name: "isapc", desc: "ISA-only PC" },
  { name: "none", desc: "empty machine" },
];

/** Older versioned pc machine types are accepted too. */
export function isKnownMachine(name: string): boolean {
  return MACHINES.some((m) => m.name === name) || /^pc-(i440fx|q35)-\d+\.\d+(\.\d+)?$/.test(name);
}

export function machineHelp(): string {
  return "Supported machines are:\n" + MACHINES.map((m) => `${m.name.padEnd(20)} ${m.desc}\n`).join("");
}

export const ACCELERATORS = ["tcg", "kvm", "qtest"] as const;

export function accelHelp(): string {
  return "Accelerators supported in QEMU binary:\n" + ACCELERATORS.map((a) => `${a}\n`).join("");
}

/** Block drivers the block layer implements (QEMU prints them sorted). */
export const BLOCK_FORMATS = ["blkdebug", "file", "null-aio", "null-co", "qcow2", "raw"] as const;

export function driveFormatHelp(): string {
  const list = BLOCK_FORMATS.join(" ");
  return `Supported formats: ${list}\nSupported formats (read-only): ${list}\n`;
}

/** -device is accepted and recorded; help lists the storage devices management tools ask for. */
const DEVICES: readonly { category: string; lines: string[] }[] = [
  {
    category: "Controller/Bridge/Hub devices",
    lines: [
      'name "pci-bridge", bus PCI, desc "Standard PCI Bridge"',
      'name "pcie-root-port", bus PCI, desc "PCI Express Root Port"',
      'name "usb-hub", bus usb-bus',
    ],
  },
  {
    category: "USB devices",
    lines: [
      'name "qemu-xhci", bus PCI',
      'name "usb-ehci", bus PCI',
    ],
  },
  {
    category: "Storage devices",
    lines: [
      'name "ide-cd", bus IDE, desc "virtual IDE CD-ROM"',
      'name "ide-hd", bus IDE, desc "virtual IDE disk"',
      'name "nvme", bus PCI, desc "Non-Volatile Memory Express"',
      'name "scsi-cd", bus SCSI, desc "virtual SCSI CD-ROM"',
      'name "scsi-hd", bus SCSI, desc "virtual SCSI disk"',
      'name "virtio-blk-pci", bus PCI, alias "virtio-blk"',
      'name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"',
    ],
  },
];

export function deviceHelp(): string {
  return DEVICES.map((d) => `${d.category}:\n${d.lines.join("\n")}\n`).join("\n");
}

export function systemUsage(prog: string): string {
  return `${versionText("system")}usage: ${prog} [options] [disk_image]

'disk_image' is a raw hard disk image for IDE hard disk 0

Standard options:
-h or -help     display this help and exit
-version        display version information and exit
-machine [type=]name[,prop[=value][,...]]
                selects emulated machine ('-machine help' for list)
                property accel=accel1[:accel2[:...]] selects accelerator
-M              as -machine
-accel [accel=]accelerator
                select accelerator ('-accel help for list')
-m [size=]megs  configure guest RAM size (recorded)
-smp n[,...]    set the number of CPUs (recorded)
-name string1[,guest=string2]
                set the name of the guest
-uuid %08x-%04x-%04x-%04x-%012x
                specify machine UUID

Block device options:
-blockdev [driver=]driver[,node-name=N][,discard=ignore|unmap]
          [,cache.direct=on|off][,cache.no-flush=on|off]
          [,read-only=on|off][,auto-read-only=on|off]
          [,force-share=on|off][,detect-zeroes=on|off|unmap]
          [,driver specific parameters...]
                configure a block backend
-drive [file=file][,if=type][,format=f][,id=name][,node-name=N]
       [,readonly=on|off][,cache=writethrough|writeback|none|directsync|unsafe]
                use 'file' as a drive image

Character device options:
-chardev socket,id=id[,host=host],port=port[,server=on|off][,wait=on|off]
-chardev socket,id=id,path=path[,server=on|off][,wait=on|off]
-chardev socket,id=id,fd=fd[,server=on|off]
-chardev stdio,id=id
-chardev null,id=id

Debug/Expert options:
-qmp dev        like -monitor but opens in 'control' mode
-qmp-pretty dev like -qmp but uses pretty JSON formatting
-mon [chardev=]name[,mode=readline|control][,pretty[=on|off]]
-pidfile file   write PID to 'file'
-S              freeze CPU at startup (use 'c' to start execution)
-daemonize      daemonize QEMU after initializing
-qtest CHR      connect a qtest client to character device CHR
-qtest-log FILE log the qtest protocol to FILE ('none' for no log)
-nodefaults, -no-user-config, -display none, -nographic, -device, -object,
-serial, -monitor, -vga, -cpu, -boot, -enable-kvm, -rtc, -global, -k, -usb,
-vnc, -incoming, -net, -netdev, -nic, -sandbox, -msg, -overcommit ...
                accepted and recorded (there is no guest)

qmpemu options:
--demo          run the demo configuration (QMP on ./qmp.sock and
                tcp 127.0.0.1:4444, a scratch copy of the demo disk)
--storage-daemon
                behave as qemu-storage-daemon (also chosen when the
                program is called qemu-storage-daemon*)

See <https://qemu.org/contribute/report-a-bug> for how to report bugs.
More information on the QEMU project at <https://qemu.org>.
`;
}

export function storageDaemonUsage(prog: string): string {
  return `Usage: ${prog} [options]
QEMU storage daemon

  -h, --help             display this help and exit
  -V, --version          output version information and exit

  --blockdev [driver=]<driver>[,node-name=<N>][,discard=ignore|unmap]
             [,cache.direct=on|off][,cache.no-flush=on|off]
             [,read-only=on|off][,auto-read-only=on|off]
             [,force-share=on|off][,detect-zeroes=on|off|unmap]
             [,driver specific parameters...]
                         configure a block backend

  --chardev <options>    configure a character device backend
                         (see the qemu(1) man page for possible options)

  --daemonize            daemonize the process, and have the parent exit
                         once startup is complete

  --monitor [chardev=]name[,mode=control][,pretty[=on|off]]
                         configure a QMP monitor

  --pidfile <path>       write process ID to a file after startup

  --export, --nbd-server, --object
                         accepted and recorded

QEMU storage daemon ${QEMU_VERSION_STRING} (${PACKAGE})
`;
}
