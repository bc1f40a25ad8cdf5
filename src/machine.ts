/**
 * The (absent) guest's state as QMP sees it: run state, identity, version.
 * No guest ever runs; this is just the part of QEMU's runstate machine that
 * stop / cont / quit and query-status observe.
 */
import type { EventSink } from "./core/events.ts";

/** qmpemu's own version, used in the default "package" string. */
export const QMPEMU_VERSION = "0.1.0";

/**
 * What we claim to be by default: the QEMU 7.2 build the oracle transcripts
 * were recorded from reports micro 22 (Debian's 7.2 stable series), and the
 * differential checks compare the version object.
 */
export const DEFAULT_QEMU_VERSION = { major: 7, minor: 2, micro: 22 } as const;

export type RunState = "prelaunch" | "running" | "paused" | "shutdown";

export interface MachineOptions {
  version?: { major: number; minor: number; micro: number };
  package?: string;
  name?: string;
  uuid?: string;
  startPaused?: boolean;
}

export interface VersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export type ShutdownCause = "host-qmp-quit" | "host-signal" | "host-error";

export class Machine {
  private state: RunState;
  readonly version: VersionInfo;
  readonly name: string | undefined;
  readonly uuid: string;
  private quitRequested: ShutdownCause | undefined;
  private readonly quitListeners: ((cause: ShutdownCause) => void)[] = [];
  /** QEMU_CLOCK_VIRTUAL: advances only while running (nanoseconds run before the current stretch, and its start). */
  private ranNs = 0;
  private runningSinceNs = 0;

  constructor(
    private readonly events: EventSink,
    opts: MachineOptions = {},
    private readonly clock: { nowNs(): number } = { nowNs: () => Number(process.hrtime.bigint()) },
  ) {
    const v = opts.version ?? DEFAULT_QEMU_VERSION;
    this.version = {
      qemu: { major: v.major, minor: v.minor, micro: v.micro },
      package: opts.package ?? `qmpemu-${QMPEMU_VERSION}`,
    };
    this.name = opts.name;
    this.uuid = opts.uuid ?? "00000000-0000-0000-0000-000000000000";
    this.state = opts.startPaused ? "prelaunch" : "running";
    this.runningSinceNs = this.clock.nowNs();
  }

  /** The guest's virtual clock in nanoseconds (QEMU_CLOCK_VIRTUAL without icount). */
  vmClockNs(): number {
    return this.ranNs + (this.state === "running" ? this.clock.nowNs() - this.runningSinceNs : 0);
  }

  get runState(): RunState {
    return this.state;
  }

  get running(): boolean {
    return this.state === "running";
  }

  /** `stop`: running → paused with a STOP event; other states are left alone. */
  stop(): void {
    if (this.state !== "running") return;
    this.ranNs += this.clock.nowNs() - this.runningSinceNs;
    this.state = "paused";
    this.events.emit("STOP");
  }

  /** `cont`: paused or prelaunch → running with a RESUME event. */
  cont(): void {
    if (this.state === "running") return;
    this.runningSinceNs = this.clock.nowNs();
    this.state = "running";
    this.events.emit("RESUME");
  }

  /** Ask the emulator to shut down (QEMU's qemu_system_shutdown_request). */
  requestShutdown(cause: ShutdownCause): void {
    if (this.quitRequested) return;
    this.quitRequested = cause;
    for (const fn of this.quitListeners) fn(cause);
  }

  get shutdownRequested(): ShutdownCause | undefined {
    return this.quitRequested;
  }

  onShutdownRequest(fn: (cause: ShutdownCause) => void): void {
    this.quitListeners.push(fn);
  }

  /** The SHUTDOWN event QEMU sends just before it exits. */
  emitShutdown(cause: ShutdownCause): void {
    this.state = "shutdown";
    this.events.emit("SHUTDOWN", { guest: false, reason: cause });
  }
}
