/**
 * The program: parse the command line, build the emulator, open every
 * monitor and the qtest channel, write the pidfile, then run until `quit`
 * or a signal, and clean up (sockets and pidfile removed) before exiting.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as net from "node:net";
import { addObject } from "../commands/qom.ts";
import { keepRuntimeHelpersInBackground } from "../core/background-threads.ts";
import { VirtualClock } from "../core/clock.ts";
import { createEmulator, type Emulator, type EmulatorOptions, type MonitorSpec } from "../emulator.ts";
import { socketTransport } from "../qmp/server.ts";
import type { Transport } from "../qmp/transport.ts";
import { parseCommandLine, type CliConfig, type MonitorRequest } from "./args.ts";
import { describeListener, type Chardev } from "./chardev.ts";
import { isDaemonChild, signalReady, spawnDaemon } from "./daemonize.ts";
import { connectOut, FdListener, socketFromFd, stdioTransport } from "./transports.ts";
import { QtestServer, qtestSession } from "./qtest.ts";
import { strerror } from "../core/errno.ts";

export interface ProcessIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** How to start this same program again (for -daemonize). */
export interface SelfCommand {
  command: string;
  args: string[];
}


/** A QmpError's text, else the error's message. */
function errorDesc(e: unknown): string {
  const desc = (e as { desc?: string }).desc ?? (e instanceof Error ? e.message : String(e));
  // A hint follows the message on its own line(s), as QEMU's error_report_err prints it.
  const hint = (e as { hint?: string }).hint;
  return hint ? `${desc}\n${hint.replace(/\n$/, "")}` : desc;
}

/** A startup failure; `formatted` texts already carry the program prefix. */
class StartupError extends Error {
  constructor(
    message: string,
    readonly formatted = false,
  ) {
    super(message);
  }
}

/** Demo configuration (`npm start`): two QMP sockets and a scratch copy of the demo disk. */
function applyDemo(cfg: CliConfig, cwd: string): { scratchDir?: string; summary: string } {
  const add = (dev: Chardev) => {
    cfg.chardevs.push(dev);
    cfg.monitors.push({ chardevId: dev.id, mode: "control", pretty: false, origin: "--demo" });
  };
  add({ id: "demo_unix", backend: "socket", server: true, wait: false, address: { kind: "unix", path: path.join(cwd, "qmp.sock") } });
  add({ id: "demo_tcp", backend: "socket", server: true, wait: false, address: { kind: "tcp", host: "127.0.0.1", port: 4444 } });
  const summary = `QMP on ${path.join(cwd, "qmp.sock")} and tcp 127.0.0.1:4444`;
  const image = findDemoImage(cwd);
  if (!image) return { summary };
  // The repository's image is never modified: the demo works on a scratch copy.
  const scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-demo-"));
  const scratch = path.join(scratchDir, path.basename(image));
  fs.copyFileSync(image, scratch);
  const format = image.endsWith(".qcow2") ? "qcow2" : "raw";
  cfg.blockdevs.push({ driver: format, "node-name": "demo0", file: { driver: "file", filename: scratch } });
  return { scratchDir, summary: `${summary}; node demo0 (${format}) is a scratch copy of ${image}` };
}

/** The first disk image in images/ (next to the binary or in the working directory). */
function findDemoImage(cwd: string): string | undefined {
  for (const dir of [path.join(cwd, "images"), path.join(path.dirname(process.execPath), "..", "images")]) {
    try {
      const names = fs.readdirSync(dir).filter((n) => /\.(qcow2|raw|img)$/.test(n)).sort();
      if (names.length) return path.join(dir, names.find((n) => n.endsWith(".qcow2")) ?? names[0]);
    } catch {
      // no such directory
    }
  }
  return undefined;
}

/** Socket monitors the emulator listens on itself (server=on unix/tcp). */
function listeningSpec(mon: MonitorRequest, dev: Chardev): MonitorSpec | undefined {
  const a = dev.address;
  if (dev.backend !== "socket" || !dev.server || !a || a.kind === "fd") return undefined;
  const chardev: MonitorSpec["chardev"] = a.kind === "unix" ? { kind: "unix", path: a.path } : { kind: "tcp", host: a.host, port: a.port };
  return { chardev, pretty: mon.pretty, id: dev.id, mode: mon.mode };
}

function emulatorOptions(cfg: CliConfig): EmulatorOptions {
  const monitors: MonitorSpec[] = [];
  for (const mon of cfg.monitors) {
    const spec = listeningSpec(mon, cfg.chardevs.find((c) => c.id === mon.chardevId)!);
    if (spec) monitors.push(spec);
  }
  return {
    monitors,
    name: cfg.name,
    uuid: cfg.uuid,
    startPaused: cfg.startPaused,
    clock: cfg.accel[0] === "qtest" ? "virtual" : "real",
    // -blockdev / -drive are opened by openBlockDevices(), one at a time, so that a
    // failure names its option the way QEMU does.
  };
}

/**
 * Creates the -object objects (a throttle filter's group must exist before
 * its -blockdev). qemu-system reports their property and completion errors
 * without an option location; the storage daemon with one.
 */
function createObjects(emu: Emulator, cfg: CliConfig): void {
  for (const { args, origin } of cfg.objects) {
    try {
      addObject(emu, args);
    } catch (e) {
      throw new StartupError(origin ? `${origin}: ${errorDesc(e)}` : errorDesc(e));
    }
  }
}

/** Opens -blockdev then -drive options in command-line order, like QEMU's startup. */
async function openBlockDevices(emu: Emulator, cfg: CliConfig): Promise<void> {
  await emu.blockReady;
  const items = [
    ...cfg.blockdevs.map((b, i) => ({ origin: cfg.blockdevOrigins[i], opts: { blockdevs: [b] } })),
    ...cfg.drives.map((d, i) => ({ origin: cfg.driveOrigins[i], opts: { drives: [d] } })),
  ];
  for (const item of items) {
    try {
      await emu.block.startup(item.opts);
    } catch (e) {
      throw new StartupError(`${item.origin}: ${errorDesc(e)}`);
    }
  }
}

/** Everything that must be undone at exit besides the emulator itself. */
interface Resources {
  fdListeners: FdListener[];
  sockets: net.Socket[];
  pidfile?: string;
  /** The demo's scratch copy of its disk. */
  scratchDir?: string;
}

/** Starts the monitors the emulator does not listen on itself: stdio, fds, outgoing sockets. */
async function attachOtherMonitors(emu: Emulator, cfg: CliConfig, res: Resources): Promise<void> {
  for (const mon of cfg.monitors) {
    const dev = cfg.chardevs.find((c) => c.id === mon.chardevId)!;
    const opts = { pretty: mon.pretty, chardevId: dev.id };
    const attach = (t: Transport) => emu.attachMonitor(t, mon.mode, opts);
    if (dev.backend === "stdio") {
      attach(stdioTransport());
      continue;
    }
    const a = dev.address;
    if (dev.backend !== "socket" || !a) continue;
    if (a.kind === "fd") {
      const where = dev.origin ?? mon.origin;
      if (!isSocketFd(a.fd)) throw new StartupError(`${where}: File descriptor '${a.fd}' is not a socket`);
      if (dev.server) {
        const l = new FdListener(a.fd, (sock, done) => attach(socketTransport(sock)).onClose(done));
        try {
          await l.listen();
        } catch (e) {
          throw new StartupError(`${where}: Failed to listen on fd socket: ${strerror(e)}`);
        }
        res.fdListeners.push(l);
      } else {
        const sock = socketFromFd(a.fd);
        res.sockets.push(sock);
        attach(socketTransport(sock));
      }
    } else if (!dev.server) {
      res.sockets.push(await connectFor(a, dev.origin ?? mon.origin));
      attach(socketTransport(res.sockets[res.sockets.length - 1]!));
    }
  }
}

function isSocketFd(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

async function connectFor(a: { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number }, origin: string): Promise<net.Socket> {
  try {
    return await connectOut(a);
  } catch (e) {
    const where = a.kind === "unix" ? a.path : `${a.host}:${a.port}`;
    throw new StartupError(`${origin}: Failed to connect to '${where}': ${strerror(e)}`);
  }
}

/** -qtest: connect (or use the fd) and answer the qtest protocol. */
async function startQtest(emu: Emulator, cfg: CliConfig, io: ProcessIo, res: Resources): Promise<void> {
  const q = cfg.qtest;
  if (!q) return;
  const a = q.chardev.address;
  const spec = q.origin.slice(q.origin.indexOf(" ") + 1);
  let sock: net.Socket;
  try {
    if (!a || q.chardev.server) throw new Error("unsupported");
    sock = a.kind === "fd" ? socketFromFd(a.fd) : await connectOut(a);
  } catch (e) {
    const where = a && a.kind !== "fd" ? (a.kind === "unix" ? a.path : `${a.host}:${a.port}`) : spec;
    const first = e instanceof Error && e.message === "unsupported" ? "" : `${cfg.prog}: Failed to connect to '${where}': ${strerror(e)}\n`;
    throw new StartupError(`${first}${cfg.prog}: Failed to initialize device for qtest: "${spec}"`, true);
  }
  res.sockets.push(sock);
  const log = openQtestLog(cfg.qtestLog, io);
  const clock = emu.clock instanceof VirtualClock ? emu.clock : undefined;
  const session = qtestSession(new QtestServer(clock), { write: (t) => void sock.write(t) }, log);
  session.opened();
  sock.on("data", (d: Buffer) => session.feed(d));
  sock.on("close", () => session.closed());
  sock.on("error", () => sock.destroy());
}

function openQtestLog(target: string | undefined, io: ProcessIo): ((line: string) => void) | undefined {
  if (target === "none") return undefined;
  if (target === undefined) return (line) => io.stderr(line + "\n");
  const fd = fs.openSync(target, "w+");
  return (line) => void fs.writeSync(fd, line + "\n");
}

function writePidfile(file: string): void {
  try {
    fs.writeFileSync(file, `${process.pid}\n`);
  } catch (e) {
    throw new StartupError(`Cannot open pid file: ${strerror(e)}`);
  }
}

/** Maps a listen() failure back to the monitor option that asked for it. */
function listenError(cfg: CliConfig, e: unknown): string {
  const err = e as { address?: string; port?: number; desc?: string };
  if (typeof err.desc === "string") return `${cfg.prog}: ${err.desc}`;
  for (const mon of cfg.monitors) {
    const a = cfg.chardevs.find((c) => c.id === mon.chardevId)?.address;
    if (!a || a.kind === "fd") continue;
    if (a.kind === "unix" && err.address === a.path) {
      return `${cfg.prog}: ${mon.origin}: Failed to bind socket to ${a.path}: ${strerror(e)}`;
    }
    if (a.kind === "tcp" && err.port === a.port) {
      return `${cfg.prog}: ${mon.origin}: Failed to find an available port: ${strerror(e)}`;
    }
  }
  return `${cfg.prog}: ${e instanceof Error ? e.message : String(e)}`;
}

const SIGNALS = { SIGINT: 2, SIGHUP: 1, SIGTERM: 15 } as const;

/**
 * Runs the program with `argv0` (the name it was called by) and `args`.
 * Resolves with the exit status once the emulator has shut down.
 */
export async function run(argv0: string, args: string[], io: ProcessIo, self: SelfCommand): Promise<number> {
  const parsed = parseCommandLine(argv0, args);
  if (parsed.kind === "exit") {
    if (parsed.stdout) io.stdout(parsed.stdout);
    if (parsed.stderr) io.stderr(parsed.stderr);
    return parsed.code;
  }
  const cfg = parsed.config;
  if (parsed.warnings) io.stderr(parsed.warnings);
  if (cfg.daemonize && !isDaemonChild()) return spawnDaemon(self.command, self.args, argv0);
  const demo = cfg.demo ? applyDemo(cfg, process.cwd()) : undefined;

  let quiet = false;
  const say = (text: string) => void (quiet || io.stderr(text));
  const res: Resources = { fdListeners: [], sockets: [], scratchDir: demo?.scratchDir };
  const emu = createEmulator(emulatorOptions(cfg));
  const cleanup = () => {
    for (const l of res.fdListeners) l.close();
    for (const s of res.sockets) s.destroy();
    if (res.pidfile) fs.rmSync(res.pidfile, { force: true });
    if (res.scratchDir) fs.rmSync(res.scratchDir, { recursive: true, force: true });
  };
  try {
    createObjects(emu, cfg);
    await openBlockDevices(emu, cfg);
    try {
      await emu.listen();
    } catch (e) {
      throw new StartupError(listenError(cfg, e), true);
    }
    await attachOtherMonitors(emu, cfg, res);
    await startQtest(emu, cfg, io, res);
    if (cfg.pidfile) {
      writePidfile(cfg.pidfile);
      res.pidfile = path.resolve(cfg.pidfile);
    }
  } catch (e) {
    if (!(e instanceof StartupError)) throw e;
    io.stderr(e.formatted ? `${e.message}\n` : `${cfg.prog}: ${e.message}\n`);
    await emu.close("host-error");
    cleanup();
    return 1;
  }
  for (const mon of cfg.monitors) {
    const dev = cfg.chardevs.find((c) => c.id === mon.chardevId)!;
    if (dev.wait) say(`${cfg.prog}: ${mon.origin}: info: QEMU waiting for connection on: ${describeListener(dev)}\n`);
  }
  if (demo) say(`${cfg.prog}: demo: ${demo.summary}\n`);
  if (isDaemonChild()) {
    signalReady();
    quiet = true;
  }

  const onSignal = (name: keyof typeof SIGNALS) => () => {
    say(`${cfg.prog}: terminating on signal ${SIGNALS[name]}\n`);
    emu.machine.requestShutdown("host-signal");
  };
  const handlers = (Object.keys(SIGNALS) as (keyof typeof SIGNALS)[]).map((name) => {
    const h = onSignal(name);
    process.on(name, h);
    return () => process.off(name, h);
  });
  const helpers = keepRuntimeHelpersInBackground();
  await emu.whenQuit;
  helpers.stop();
  for (const off of handlers) off();
  cleanup();
  return 0;
}
