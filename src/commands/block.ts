import type { CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";

export const commands: CommandDef[] = [];
export const hmpCommands: HmpCommand[] = [];
