/**
 * Composition root: builds one emulator (machine state, block layer, jobs,
 * command registry, monitors) from plain options. The CLI is a thin shell
 * over this; tests embed it directly.
 *
 * Lifecycle: `createEmulator(opts)` → `await emu.listen()` (socket monitors
 * from opts.monitors) → … → `await emu.close()`. `emu.whenQuit` resolves when
 * the emulator shut down because of `quit` (or close()); the CLI exits then.
 * Other transports (stdio, inherited fds) run a monitor via attachTransport.
 */
import { RealClock, VirtualClock, type Clock } from "./core/clock.ts";
import { EventBus } from "./core/events.ts";
import { BlockLayer } from "./block/index.ts";
import { JobManager } from "./job/index.ts";
import type { CommandDef, EventDef } from "./commands/command.ts";
import type { HmpCommand } from "./commands/hmp-command.ts";
import { buildTables } from "./commands/registry.ts";
import { validateArgs } from "./commands/validate.ts";
import { Machine, type ShutdownCause } from "./machine.ts";
import { extraState, monitorChardevs } from "./machine-extra/state.ts";
import { ChardevRegistry } from "./chardev/registry.ts";
import { throttleGroupRef } from "./qom/throttle-group.ts";
import { runHmp } from "./commands/hmp.ts";
import { HmpSession } from "./hmp/session.ts";
import { MonitorHub } from "./qmp/hub.ts";
import { InProcessClient } from "./qmp/in-process.ts";
import { MonitorListener, socketTransport } from "./qmp/server.ts";
import type { CommandHost, QmpSession } from "./qmp/session.ts";
import type { MonitorOptions, Transport } from "./qmp/transport.ts";

/** Where a monitor talks: QEMU's chardev backends that make sense here. */
export type ChardevSpec =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  /** An inherited descriptor: a listening socket, or one end of a connected socketpair. */
  | { kind: "fd"; fd: number }
  | { kind: "stdio" };

export interface MonitorSpec {
  chardev: ChardevSpec;
  pretty?: boolean;
  /** The chardev id (query-yank); -qmp monitors are compat_monitor0, 1, ... */
  id?: string;
  /** "readline" serves a human monitor (HMP); default "control" (QMP). */
  mode?: "control" | "readline";
}

export interface EmulatorOptions {
  /** Monitors (-qmp, -monitor, -chardev + -mon, --monitor); QMP unless mode is "readline". */
  monitors?: MonitorSpec[];
  /** Reported by the greeting and query-version. */
  version?: { major: number; minor: number; micro: number };
  package?: string;
  name?: string;
  uuid?: string;
  /** -S: start with the VM paused (run state "prelaunch"). */
  startPaused?: boolean;
  /** "virtual" is qtest's clock: time moves only by clock_step/clock_set. */
  clock?: "real" | "virtual";
  /** -blockdev options, already turned into QAPI dictionaries (nested objects). */
  blockdevs?: Record<string, unknown>[];
  /** -drive options as flat key/value pairs. */
  drives?: Record<string, string>[];
}

export class Emulator {
  readonly clock: Clock;
  readonly events: EventBus;
  readonly machine: Machine;
  readonly block: BlockLayer;
  /** Resolves when the command line's -blockdev/-drive nodes are open; rejects with QEMU's error. */
  readonly blockReady: Promise<void>;
  readonly jobs: JobManager;
  readonly commands: Map<string, CommandDef>;
  readonly hmpCommands: Map<string, HmpCommand>;
  /** Event definitions, for query-qmp-schema. */
  readonly eventDefs: EventDef[];
  readonly monitors: MonitorHub;
  /** Character devices: the monitors' and those chardev-add made. */
  readonly chardevs: ChardevRegistry;
  /** Resolves once the emulator has shut down (quit, or close()). */
  readonly whenQuit: Promise<ShutdownCause>;
  private readonly listeners: MonitorListener[] = [];
  private readonly hmpSessions = new Set<HmpSession>();
  /** Run by close() before the block layer closes (e.g. the NBD server drops its clients). */
  readonly closeHooks: (() => Promise<void>)[] = [];
  private resolveQuit!: (cause: ShutdownCause) => void;
  private closing: Promise<void> | undefined;
  private shuttingDown: Promise<void> | undefined;

  constructor(readonly options: EmulatorOptions = {}) {
    this.clock = options.clock === "virtual" ? new VirtualClock() : new RealClock();
    this.events = new EventBus(() => this.clock.wallTime());
    this.machine = new Machine(this.events, options, this.clock);
    this.jobs = new JobManager({ events: this.events, clock: this.clock });
    this.block = new BlockLayer({
      events: this.events,
      clock: this.clock,
      // Looked up without creating /objects (QEMU keeps its own list of groups).
      throttleGroups: (id) => throttleGroupRef(extraState(this).qom.root.children.get("objects")?.children.get(id)),
      secretExists: (id) => extraState(this).qom.root.children.get("objects")?.children.get(id)?.typename === "secret",
    });
    // -blockdev / -drive open asynchronously; listen() waits for them (and fails like QEMU's startup).
    this.blockReady = this.block.startup({ blockdevs: options.blockdevs, drives: options.drives });
    this.blockReady.catch(() => {});
    this.chardevs = new ChardevRegistry(
      () => monitorChardevs(this),
      () => (options.monitors ?? []).some((m) => m.chardev.kind === "stdio"),
    );
    const tables = buildTables();
    this.commands = tables.commands;
    this.hmpCommands = tables.hmpCommands;
    this.eventDefs = tables.events;
    this.whenQuit = new Promise((resolve) => (this.resolveQuit = resolve));
    const host: CommandHost<CommandDef> = {
      find: (name) => this.commands.get(name),
      run: (cmd, args, session) => cmd.handler(cmd.rawArgs ? args : validateArgs(cmd.args, args), { emu: this, session }),
    };
    this.monitors = new MonitorHub(host, () => ({ version: this.machine.version }), this.events);
    this.machine.onShutdownRequest((cause) => void this.shutdown(cause));
  }

  /** Starts the socket monitors of options.monitors (unix and tcp chardevs). */
  async listen(): Promise<void> {
    await this.blockReady;
    let compat = 0;
    for (const spec of this.options.monitors ?? []) {
      const c = spec.chardev;
      const id = spec.id ?? `compat_monitor${compat++}`;
      if (c.kind !== "unix" && c.kind !== "tcp") continue; // stdio / fd: the CLI attaches those
      const l = new MonitorListener(
        c.kind === "unix" ? { kind: "unix", path: c.path } : { kind: "tcp", host: c.host, port: c.port },
        (sock, opts) => this.attachMonitor(socketTransport(sock), spec.mode, opts),
        { pretty: spec.pretty, chardevId: id },
      );
      await l.listen();
      this.listeners.push(l);
    }
  }

  /** Ports actually bound by tcp monitors (in options order), e.g. after port 0. */
  get tcpPorts(): number[] {
    return this.listeners.filter((l) => l.address.kind === "tcp").map((l) => l.port!);
  }

  /** Runs a QMP monitor session on any byte stream; it greets immediately. */
  attachTransport(t: Transport, opts: MonitorOptions = {}): QmpSession {
    return this.monitors.attach(t, opts);
  }

  /** A QMP monitor, or with mode "readline" a human one, on any byte stream. */
  attachMonitor(t: Transport, mode: MonitorSpec["mode"], opts: MonitorOptions = {}): QmpSession | HmpSession {
    return mode === "readline" ? this.attachHmp(t) : this.attachTransport(t, opts);
  }

  /**
   * Runs a human monitor (HMP) on any byte stream: banner and prompt now,
   * lines run through the shared in-band dispatcher like QMP commands.
   */
  attachHmp(t: Transport): HmpSession {
    const v = this.machine.version.qemu;
    const s = new HmpSession(
      t,
      {
        version: () => `${v.major}.${v.minor}.${v.micro}`,
        run: (line, session) => runHmp(line, { emu: this, session }),
        quitting: () => this.shuttingDown !== undefined || this.closing !== undefined,
      },
      this.monitors.dispatcher,
    );
    this.hmpSessions.add(s);
    s.onClose(() => this.hmpSessions.delete(s));
    return s;
  }

  /** An in-process client connection (tests, embedding). */
  connect(opts: MonitorOptions = {}): InProcessClient {
    const client = new InProcessClient();
    this.attachTransport(client.transport, opts);
    return client;
  }

  /** Chardev ids of socket monitors, as query-yank lists them. */
  yankInstances(): string[] {
    return [...this.listeners.map((l) => l.opts.chardevId!).filter(Boolean), ...this.chardevs.yankIds()];
  }

  /** yank on a monitor chardev: drop its current client. */
  yank(id: string): void {
    for (const l of this.listeners) if (l.opts.chardevId === id) l.kick();
    this.chardevs.yank(id);
  }

  /**
   * QEMU's exit sequence: the SHUTDOWN event, then running jobs drained and
   * cancelled synchronously (their events still go out), then, on the next
   * turn, everything closes. The promise settles before the closing, so
   * `quit` answers after those events, in QEMU 7.2's order.
   */
  shutdown(cause: ShutdownCause): Promise<void> {
    this.shuttingDown ??= (async () => {
      this.machine.emitShutdown(cause);
      await this.stopJobs();
      setImmediate(() => void this.close(cause));
    })();
    return this.shuttingDown;
  }

  private async stopJobs(): Promise<void> {
    // vm_shutdown's bdrv_drain_all comes first: each job's paused/running pair.
    await this.jobs.drained(() => {});
    await this.jobs.cancelAllSync();
  }

  /** Stops everything: jobs, block devices, monitors and their sockets. */
  close(cause: ShutdownCause = "host-signal"): Promise<void> {
    this.closing ??= (async () => {
      // Jobs are cancelled synchronously on exit in QEMU; their events still go out.
      await this.stopJobs();
      this.monitors.flushAll();
      for (const hook of this.closeHooks) await hook();
      await this.block.close();
      await Promise.all(this.listeners.map((l) => l.close()));
      await this.chardevs.closeAll();
      this.monitors.closeAll();
      for (const s of [...this.hmpSessions]) s.close();
      this.resolveQuit(cause);
    })();
    return this.closing;
  }
}

export function createEmulator(options: EmulatorOptions = {}): Emulator {
  return new Emulator(options);
}
