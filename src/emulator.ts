/**
 * Composition root: builds one emulator (machine state, block layer, jobs,
 * command registry, monitors) from plain options. The CLI is a thin shell
 * over this; tests embed it directly.
 *
 * OWNER NOTE (foundation work in progress): the monitor/socket parts below are
 * being filled in by the protocol layer (src/qmp). Other layers only rely on
 * the fields of `Emulator` that are declared here.
 */
import { RealClock, VirtualClock, type Clock } from "./core/clock.ts";
import { EventBus } from "./core/events.ts";
import { BlockLayer } from "./block/index.ts";
import { JobManager } from "./job/index.ts";
import type { CommandDef } from "./commands/command.ts";
import type { HmpCommand } from "./commands/hmp-command.ts";
import * as blockCommands from "./commands/block.ts";
import * as jobCommands from "./commands/jobs.ts";
import * as blockJobCommands from "./commands/block-jobs.ts";

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
}

export interface EmulatorOptions {
  /** QMP monitors (-qmp, -chardev + -mon, --monitor). */
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
  readonly block: BlockLayer;
  readonly jobs: JobManager;
  readonly commands = new Map<string, CommandDef>();
  readonly hmpCommands = new Map<string, HmpCommand>();

  constructor(readonly options: EmulatorOptions = {}) {
    this.clock = options.clock === "virtual" ? new VirtualClock() : new RealClock();
    this.events = new EventBus(() => this.clock.wallTime());
    this.jobs = new JobManager({ events: this.events, clock: this.clock });
    this.block = new BlockLayer({ events: this.events, clock: this.clock });
    for (const mod of [blockCommands, jobCommands, blockJobCommands]) {
      for (const c of mod.commands) this.commands.set(c.name, c);
      for (const h of mod.hmpCommands) this.hmpCommands.set(h.name, h);
    }
  }
}

export function createEmulator(options: EmulatorOptions = {}): Emulator {
  return new Emulator(options);
}
