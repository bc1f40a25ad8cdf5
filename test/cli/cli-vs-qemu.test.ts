/**
 * Differential: the same command lines given to real QEMU 7.2 and to
 * dist/qmpemu behind a symlink with QEMU's program name. Exit status and
 * stderr must be byte-identical for errors; for help queries the form (first
 * line, layout of entries) must match, not the lists themselves.
 * Skipped when QEMU is not installed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { has, QmpClient, qemuNamedLinks, runSync, tmpDir, waitFor } from "./helpers.ts";

const haveQemu = has("qemu-system-x86_64") && has("qemu-storage-daemon");
const links = haveQemu ? qemuNamedLinks() : { system: "", storageDaemon: "" };
const BASE = ["-M", "none", "-display", "none", "-nodefaults"];

/** Command lines that QEMU rejects while parsing, before it would start running. */
const SYSTEM_ERRORS: string[][] = [
  ["-foo"],
  ["-qmp"],
  ["-qmp=unix:/tmp/a.sock"],
  ["--nosuchoption", "x"],
  ["-qmp", "foo:bar"],
  ["-M", "bogus"],
  ["-m", "abc"],
  ["-m", "64,foo=1"],
  ["-smp", "abc"],
  ["-smp", "2,bogus=1"],
  ["-name", "guest=a,bogus=1"],
  ["-uuid", "xyz"],
  ["-mon", "chardev=nope"],
  ["-mon", "mode=control"],
  ["-mon", "chardev=x,mode=bogus"],
  ["-mon", "chardev=c,bogus=1"],
  ["-chardev", "socket,id=x"],
  ["-chardev", "bogus,id=x"],
  ["-chardev", "socket,path=/x"],
  ["-chardev", "socket,id=m,host=localhost,server=on,wait=off"],
  ["-chardev", "socket,id=m,path=/s,server=maybe"],
  ["-chardev", "null,id=a", "-chardev", "null,id=a"],
  ["-chardev", "socket,id=m,path=/tmp/zz.sock,server=on,wait=off,bogus=1"],
  ["-accel", "nope"],
  ["-accel", "kvm:tcg"],
  ["-drive", "foo=bar"],
  // An empty drive takes only options QEMU consumes itself; cache= and discard= need a medium.
  ["-drive", "if=none,id=e,cache=none"],
  ["-drive", "if=none,id=e,discard=unmap"],
  ["-drive", "if=none,id=e,node-name=n"],
  ["-daemonize", "-nographic"],
  ["-daemonize", "-qmp", "stdio"],
  ["-chardev", "stdio,id=s", "-mon", "chardev=s,mode=control", "-daemonize"],
  ["-blockdev", "driver=null-co,node-name=n,=x"],
  ["-blockdev", "driver=null-co,node-name"],
  ["-blockdev", "driver=null-co,a.b=1,a=2"],
  ["-blockdev", "driver=null-co,a=2,a.b=1"],
  ["-blockdev", "driver=null-co,node-name=n,x.1=a"],
  ["-blockdev", "driver=null-co,x.0=a,x.b=c"],
  ["-blockdev", "driver=null-co,node-name=n,bad key=1"],
  ["-blockdev", '{"driver":"null-co"'],
  ["-qmp", "unix:/proc/nonexistent/x.sock,server=on,wait=off"],
  ["-qmp", "unix:/proc/nonexistent/y.sock"],
  ["-qtest", "unix:/proc/nonexistent/q"],
  ["-chardev", "socket,id=c,path=/proc/nonexistent/z", "-mon", "chardev=c,mode=control"],
  ["-name", "vm,debug-threads", "-foo"],
  // Inherited descriptors that are not sockets (fd 99 is not open in either process).
  ["-chardev", "socket,id=m,fd=99", "-mon", "chardev=m,mode=control"],
  ["-chardev", "socket,id=m,fd=99,server=on,wait=off", "-mon", "chardev=m,mode=control"],
  // Errors while opening block devices carry the option's location too.
  ["-blockdev", "driver=file,node-name=f,filename=/nonexistent.img"],
  ["-blockdev", "driver=null-co,node-name=n0,size=abc"],
  ["-drive", "file=/nonexistent.img,if=none,id=d0"],
  // -drive options go through bdrv_open, which words its refusals its own way.
  ["-drive", "if=none,driver=null-co,bogus=1"],
  ["-drive", "if=none,driver=nosuch"],
  ["-drive", "if=none,driver=null-co,format=raw"],
  ["-drive", "if=none,driver=null-co,detect-zeroes=bad"],
  ["-drive", "if=none,driver=null-co,cache.direct=maybe"],
  ["-drive", "if=none,driver=null-co,readonly=maybe"],
  ["-drive", "if=none,driver=null-co,cache=bogus"],
  ["-drive", "if=none,driver=raw,file.driver=null-co,file.bogus=1"],
  ["-blockdev", "driver=null-co,node-name=a", "-blockdev", "driver=null-co,node-name=a"],
  // -object: checked while parsing (with the location), created before the block devices (without).
  ["-object", "throttle-group,id=tg0,x-bps-total=abc"],
  ["-object", "throttle-group,id=tg0,limits.bps-total=1048576"],
  ["-object", "throttle-group,id=tg0,bogus=1"],
  ["-object", "iothread,id=9x"],
  ["-object", "throttle-group"],
  ["-object", "nosuchtype,id=a"],
  ["-object", '{"qom-type":"throttle-group","id":"tg1","limits":{"iops-total":"5"}}'],
  ["-object", "memory-backend-ram,id=m0,size=1M,share=maybe"],
  ["-object", "memory-backend-ram,id=m0,size=abc"],
  ["-object", "throttle-group,id=tg0,x-bps-total=1048576,x-bps-read=5"],
  ["-object", "iothread,id=io0,poll-max-ns=-5"],
  ["-object", "iothread,id=io0", "-object", "iothread,id=io0"],
  ["-blockdev", "driver=null-co,node-name=n0", "-blockdev", "driver=throttle,node-name=t0,throttle-group=tg0,file=n0"],
];

const STORAGE_DAEMON_ERRORS: string[][] = [
  ["--object", "throttle-group,id=tg0,bogus=1"],
  ["--object", "throttle-group,id=tg0,x-bps-total=abc"],
  ["--object", "throttle-group,id=tg0,limits.bps-total=abc"],
  ["--object", "memory-backend-ram,id=m0,size=abc"],
  ["--object", "iothread,id=9x"],
  ["--object", "throttle-group,id=tg0,x-bps-total=1048576,x-bps-read=5"],
  ["--object", "iothread,id=io0", "--object", "iothread,id=io0"],
  ["--foo"],
  ["--chardev"],
  ["-x"],
  ["--monitor", "nope"],
  ["extra"],
  ["--blockdev", "driver=null-co,node-name"],
];

describe.skipIf(!haveQemu)("command line errors: byte-identical to QEMU 7.2", () => {
  it.each(SYSTEM_ERRORS)("qemu-system-x86_64 %s", (...args: string[]) => {
    const full = args[0] === "-M" || args[0] === "-daemonize" ? args : [...BASE, ...args];
    const real = runSync("qemu-system-x86_64", full);
    const ours = runSync(links.system, full);
    expect(real.status).toBe(1);
    expect({ status: ours.status, stderr: ours.stderr }).toEqual({ status: real.status, stderr: real.stderr });
  });

  it.each(STORAGE_DAEMON_ERRORS)("qemu-storage-daemon %s", (...args: string[]) => {
    const real = runSync("qemu-storage-daemon", args);
    const ours = runSync(links.storageDaemon, args);
    expect(real.status).toBe(1);
    expect({ status: ours.status, stderr: ours.stderr }).toEqual({ status: real.status, stderr: real.stderr });
  });
});

describe.skipIf(!haveQemu)("help queries: QEMU's form", () => {
  const firstLineAndShape: [string[], RegExp][] = [
    [["-machine", "help"], /^[a-z0-9.-]+ +\S.*$/],
    [["-accel", "help"], /^[a-z]+$/],
    [["-device", "help"], /^(name "[^"]+"(, bus [^,]+)?(, alias "[^"]+")?(, desc "[^"]+")?|[A-Z].*:|)$/],
  ];
  it.each(firstLineAndShape)("%s", (args, entry) => {
    const real = runSync("qemu-system-x86_64", args);
    const ours = runSync(links.system, args);
    expect(ours.status).toBe(real.status);
    const [realLines, ourLines] = [real.stdout.trimEnd().split("\n"), ours.stdout.trimEnd().split("\n")];
    expect(ourLines[0]).toBe(realLines[0]);
    for (const line of [...realLines.slice(1), ...ourLines.slice(1)]) expect(line).toMatch(entry);
  });

  it("-machine help: `none` is described exactly as QEMU does", () => {
    const pick = (out: string) => out.split("\n").find((l) => l.startsWith("none "));
    expect(pick(runSync(links.system, ["-machine", "help"]).stdout)).toBe(pick(runSync("qemu-system-x86_64", ["-machine", "help"]).stdout));
  });

  it("-drive format=help: two 'Supported formats' lines", () => {
    const shape = (out: string) => out.split("\n").map((l) => l.replace(/: .*/, ": ..."));
    const real = runSync("qemu-system-x86_64", [...BASE, "-drive", "format=help"]);
    const ours = runSync(links.system, [...BASE, "-drive", "format=help"]);
    expect(ours.status).toBe(real.status);
    expect(shape(ours.stdout)).toEqual(shape(real.stdout));
  });

  it("--version: same two-line form, version numbers as query-version reports", () => {
    const mask = (out: string) => out.replace(/\(.*\)/, "(...)");
    expect(mask(runSync(links.system, ["--version"]).stdout)).toBe(mask(runSync("qemu-system-x86_64", ["--version"]).stdout));
    expect(mask(runSync(links.storageDaemon, ["--version"]).stdout)).toBe(mask(runSync("qemu-storage-daemon", ["--version"]).stdout));
  });
});

describe.skipIf(!haveQemu)("-object at startup: the same objects and nodes as QEMU 7.2", () => {
  /** Starts `bin` with `args` and a QMP socket, asks `queries`, quits; the replies in order. */
  async function ask(bin: string, args: string[], queries: [string, object?][]): Promise<unknown[]> {
    const dir = tmpDir();
    const sock = path.join(dir, "q.sock");
    const system = !bin.includes("storage-daemon");
    const mon = system ? ["-qmp", `unix:${sock},server=on,wait=off`] : ["--chardev", `socket,id=m,path=${sock},server=on,wait=off`, "--monitor", "m"];
    const child = spawn(bin, [...(system ? BASE : []), ...args, ...mon], { stdio: "ignore" });
    try {
      await waitFor(() => fs.existsSync(sock));
      const c = await QmpClient.connect(sock);
      await c.handshake();
      const out: unknown[] = [];
      for (const [cmd, a] of queries) out.push(await c.execute(cmd, a));
      c.close();
      return out;
    } finally {
      child.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  const QUERIES: [string, object?][] = [
    ["qom-list", { path: "/objects" }],
    ["qom-get", { path: "/objects/tg0", property: "limits" }],
    ["query-named-block-nodes", { flat: true }],
    ["query-iothreads"],
    ["object-del", { id: "tg0" }],
  ];
  const mask = (replies: unknown[]) => JSON.parse(JSON.stringify(replies).replace(/"thread-id":\d+/g, '"thread-id":0'));

  it("qemu-system-x86_64: a throttle-group, an iothread and a throttle filter over them", async () => {
    const args = [
      "-object", "throttle-group,id=tg0,x-bps-total=1048576,x-iops-total=50",
      "-object", "iothread,id=io0,poll-max-ns=32768",
      "-blockdev", "driver=null-co,node-name=n0,size=67108864",
      "-blockdev", "driver=throttle,node-name=t0,throttle-group=tg0,file=n0",
    ];
    const ours = mask(await ask(links.system, args, QUERIES));
    expect(ours).toEqual(mask(await ask("qemu-system-x86_64", args, QUERIES)));
    expect(JSON.stringify(ours)).toContain('"bps-total":1048576');
  });

  it("qemu-storage-daemon: nested limits in keyval form", async () => {
    const args = ["--object", "throttle-group,id=tg0,limits.bps-total=1048576,limits.iops-read=7", "--blockdev", "driver=null-co,node-name=n0,size=67108864", "--blockdev", "driver=throttle,node-name=t0,throttle-group=tg0,file=n0"];
    const q: [string, object?][] = QUERIES.filter(([cmd]) => cmd !== "query-iothreads");
    const ours = mask(await ask(links.storageDaemon, args, q));
    expect(ours).toEqual(mask(await ask("qemu-storage-daemon", args, q)));
    expect(JSON.stringify(ours)).toContain('"iops-read":7');
  });
});
