/**
 * The command line as data: argv → CliConfig, or the exit QEMU would take.
 * Error texts were checked against qemu-system-x86_64 / qemu-storage-daemon
 * 7.2 (the differential test in cli-vs-qemu.test.ts runs them side by side).
 */
import { describe, expect, it } from "vitest";
import { parseCommandLine, type CliConfig } from "../../src/cli/args.ts";

function config(args: string[], argv0 = "/usr/bin/qmpemu"): CliConfig {
  const r = parseCommandLine(argv0, args);
  if (r.kind !== "run") throw new Error(`expected run, got ${JSON.stringify(r)}`);
  return r.config;
}

function failure(args: string[], argv0 = "qemu-system-x86_64"): string {
  const r = parseCommandLine(argv0, args);
  if (r.kind !== "exit" || r.code !== 1) throw new Error(`expected exit 1, got ${JSON.stringify(r)}`);
  return r.stderr!;
}

describe("qemu-system form", () => {
  it("-qmp unix/tcp and -qmp-pretty make compat monitors in order", () => {
    const c = config(["-qmp", "unix:/tmp/a.sock,server=on,wait=off", "--qmp-pretty", "tcp:127.0.0.1:4444,server=on,wait=off"]);
    expect(c.monitors).toMatchObject([
      { chardevId: "compat_monitor0", mode: "control", pretty: false },
      { chardevId: "compat_monitor1", mode: "control", pretty: true },
    ]);
    expect(c.chardevs.map((d) => d.address)).toEqual([
      { kind: "unix", path: "/tmp/a.sock" },
      { kind: "tcp", host: "127.0.0.1", port: 4444 },
    ]);
  });

  it("-chardev + -mon, in either order, any number", () => {
    const c = config(["-mon", "chardev=c1,mode=control,pretty=on", "-chardev", "socket,id=c1,fd=3", "-chardev", "stdio,id=c2", "-mon", "c2,mode=control"]);
    expect(c.monitors.map((m) => [m.chardevId, m.pretty])).toEqual([["c1", true], ["c2", false]]);
    expect(c.chardevs.map((d) => d.backend)).toEqual(["socket", "stdio"]);
  });

  it("records identity, run state, pidfile, daemonize, accelerators", () => {
    const c = config(["-S", "-name", "vm1,debug-threads=on", "-uuid", "A0000000-0000-0000-0000-000000000001", "-pidfile", "/tmp/p", "-daemonize", "-machine", "none,accel=qtest", "-accel", "tcg"]);
    expect(c).toMatchObject({ startPaused: true, name: "vm1", uuid: "a0000000-0000-0000-0000-000000000001", pidfile: "/tmp/p", daemonize: true, accel: ["qtest", "tcg"], machine: { type: "none" } });
    expect(config(["-name", "guest=g2"]).name).toBe("g2");
  });

  it("hands -blockdev (keyval and JSON) and -drive to the block layer", () => {
    const c = config(["-blockdev", "driver=file,node-name=f0,filename=/x.img", "-blockdev", '{"driver":"raw","node-name":"r0","file":"f0"}', "-drive", "file=/y.img,if=none,id=d0,format=qcow2"]);
    expect(c.blockdevs).toEqual([
      { driver: "file", "node-name": "f0", filename: "/x.img" },
      { driver: "raw", "node-name": "r0", file: "f0" },
    ]);
    expect(c.drives).toEqual([{ file: "/y.img", if: "none", id: "d0", format: "qcow2" }]);
  });

  it("accepts and records VM-only options without failing", () => {
    const vmOnly = ["-device", "virtio-blk-pci,drive=d0", "-vga", "none", "-serial", "none", "-monitor", "none", "-incoming", "defer", "-object", "iothread,id=io0", "-cpu", "host", "-boot", "c", "-enable-kvm", "-rtc", "base=utc", "-global", "x.y=z", "-k", "en-us", "-usb", "-vnc", ":0", "-nodefaults", "-display", "none", "-nographic", "-no-user-config", "-m", "512M", "-smp", "2,sockets=1"];
    const c = config(vmOnly);
    expect(c.recorded.map((r) => r.option)).toContain("-vnc");
    expect(c.monitors).toEqual([]);
  });

  it("warns about short-form booleans like QEMU", () => {
    const r = parseCommandLine("qemu-system-x86_64", ["-qmp", "unix:/tmp/a.sock,server,nowait"]);
    expect(r.kind).toBe("run");
    expect(r.kind === "run" && r.warnings).toBe(
      "qemu-system-x86_64: -qmp unix:/tmp/a.sock,server,nowait: warning: short-form boolean option 'server' deprecated\nPlease use server=on instead\n" +
        "qemu-system-x86_64: -qmp unix:/tmp/a.sock,server,nowait: warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead\n",
    );
  });

  const errors: [string[], string][] = [
    [["-foo"], "qemu-system-x86_64: -foo: invalid option\n"],
    [["-qmp=unix:/tmp/a.sock"], "qemu-system-x86_64: -qmp=unix:/tmp/a.sock: invalid option\n"],
    [["-qmp"], "qemu-system-x86_64: -qmp: requires an argument\n"],
    [["-qmp", "foo:bar"], "qemu-system-x86_64: -qmp foo:bar: 'foo:bar' is not a valid char driver\nqemu-system-x86_64: -qmp foo:bar: parse error: foo:bar\n"],
    [["-M", "bogus"], "qemu-system-x86_64: unsupported machine type\nUse -machine help to list supported machines\n"],
    [["-m", "abc"], "qemu-system-x86_64: -m abc: Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n"],
    [["-smp", "abc"], "qemu-system-x86_64: Parameter 'smp.cpus' expects integer\n"],
    [["-name", "guest=a,bogus=1"], "qemu-system-x86_64: -name guest=a,bogus=1: Invalid parameter 'bogus'\n"],
    [["-uuid", "xyz"], "qemu-system-x86_64: -uuid xyz: failed to parse UUID string: wrong format\n"],
    [["-mon", "chardev=nope"], 'qemu-system-x86_64: -mon chardev=nope: chardev "nope" not found\n'],
    [["-mon", "mode=control"], "qemu-system-x86_64: -mon mode=control: Parameter 'chardev' is missing\n"],
    [["-chardev", "null,id=a", "-chardev", "null,id=a"], "qemu-system-x86_64: -chardev null,id=a: Duplicate ID 'a' for chardev\n"],
    [["-accel", "nope"], "qemu-system-x86_64: -accel nope: invalid accelerator nope\n"],
    [["-drive", "foo=bar"], "qemu-system-x86_64: -drive foo=bar: Must specify either driver or file\n"],
    [["-daemonize", "-qmp", "stdio"], "qemu-system-x86_64: -qmp stdio: cannot use stdio with -daemonize\n"],
    [["-chardev", "stdio,id=s", "-daemonize"], "qemu-system-x86_64: -chardev stdio,id=s: cannot use stdio with -daemonize\n"],
    [["-daemonize", "-nographic"], "qemu-system-x86_64: -nographic cannot be used with -daemonize\n"],
  ];
  it.each(errors)("%j", (args, stderr) => {
    expect(failure(args)).toBe(stderr);
  });

  it("help queries print to stdout and exit 0", () => {
    const out = (args: string[]) => {
      const r = parseCommandLine("qmpemu", args);
      expect(r).toMatchObject({ kind: "exit", code: 0 });
      return r.kind === "exit" ? r.stdout! : "";
    };
    expect(out(["-machine", "help"])).toMatch(/^Supported machines are:\n(.*\n)*none {17}empty machine\n/);
    expect(out(["-M", "?"])).toMatch(/^Supported machines are:/);
    expect(out(["-accel", "help"])).toBe("Accelerators supported in QEMU binary:\ntcg\nkvm\nqtest\n");
    expect(out(["-drive", "format=help"])).toMatch(/^Supported formats: (\S+ )*qcow2 (\S+ )*raw\n/);
    expect(out(["-device", "help"])).toMatch(/\n\nStorage devices:\nname "ide-cd", bus IDE/);
    expect(out(["--version"])).toMatch(/^QEMU emulator version 7\.2\.\d+ \(qmpemu-[^)]+\)\nCopyright/);
    expect(out(["-h"])).toMatch(/^QEMU emulator version .*\n.*\nusage: qmpemu \[options\]/);
  });
});

describe("qemu-storage-daemon form", () => {
  it("is picked by argv[0] or --storage-daemon", () => {
    expect(config(["--chardev", "socket,id=m,path=/tmp/q,server=on,wait=off", "--monitor", "m"], "/opt/qemu-storage-daemon").personality).toBe("storage-daemon");
    expect(config(["--storage-daemon", "--chardev", "stdio,id=m", "--monitor", "chardev=m,pretty=on"]).monitors).toMatchObject([{ chardevId: "m", pretty: true, mode: "control" }]);
  });

  it("getopt_long forms: --opt=value, unique prefixes", () => {
    const c = config(["--blockdev=driver=null-co,node-name=n0", "--pid", "/tmp/p", "--daemonize"], "qemu-storage-daemon");
    expect(c).toMatchObject({ blockdevs: [{ driver: "null-co", "node-name": "n0" }], pidfile: "/tmp/p", daemonize: true });
  });

  const errors: [string[], string][] = [
    [["--foo"], "qemu-storage-daemon: unrecognized option '--foo'\n"],
    [["--chardev"], "qemu-storage-daemon: option '--chardev' requires an argument\n"],
    [["-x"], "qemu-storage-daemon: invalid option -- 'x'\n"],
    [["--monitor", "nope"], 'qemu-storage-daemon: --monitor nope: chardev "nope" not found\n'],
    [["extra"], "qemu-storage-daemon: extra: Unexpected argument\n"],
  ];
  it.each(errors)("%j", (args, stderr) => {
    expect(failure(args, "qemu-storage-daemon")).toBe(stderr);
  });
});
