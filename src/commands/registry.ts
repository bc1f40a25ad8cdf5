/**
 * Every command module, in one list: the composition root builds the QMP
 * and HMP tables from it. A module exports `commands`, `hmpCommands` and,
 * optionally, `events` (EventDefs for query-qmp-schema).
 */
import type { CommandDef, EventDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import * as control from "./control.ts";
import * as machine from "./machine.ts";
import * as hmp from "./hmp.ts";
import * as block from "./block.ts";
import * as blockExtra from "./block-extra.ts";
import * as blockHmp from "./block-hmp.ts";
import * as blockIoLimits from "./block-io-limits.ts";
import * as blockMedia from "./block-media.ts";
import * as jobs from "./jobs.ts";
import * as blockJobs from "./block-jobs.ts";
import * as blockJobsSync from "./block-jobs-sync.ts";
import * as machineExtra from "./machine-extra.ts";
import * as machineHmp from "./machine-hmp.ts";
import * as migration from "./migration.ts";
import * as noDevices from "./no-devices.ts";
import * as qom from "./qom.ts";
import * as chardev from "./chardev.ts";
import * as devices from "./devices.ts";
import * as noGuest from "./no-guest.ts";
import * as traceEvents from "./trace-events.ts";

export interface CommandModule {
  readonly commands: readonly CommandDef[];
  readonly hmpCommands: readonly HmpCommand[];
  readonly events?: readonly EventDef[];
}

export const commandModules: readonly CommandModule[] = [control, machine, hmp, block, blockExtra, blockHmp, blockIoLimits, blockMedia, jobs,
  blockJobs, blockJobsSync, machineExtra, machineHmp, noDevices, migration, qom, chardev, devices, noGuest, traceEvents];

export interface CommandTables {
  commands: Map<string, CommandDef>;
  hmpCommands: Map<string, HmpCommand>;
  events: EventDef[];
}

export function buildTables(modules: readonly CommandModule[] = commandModules): CommandTables {
  const tables: CommandTables = { commands: new Map(), hmpCommands: new Map(), events: [] };
  for (const mod of modules) {
    for (const c of mod.commands) tables.commands.set(c.name, c);
    for (const h of mod.hmpCommands) tables.hmpCommands.set(h.name, h);
    for (const e of mod.events ?? []) if (!tables.events.some((x) => x.name === e.name)) tables.events.push(e);
  }
  return tables;
}
