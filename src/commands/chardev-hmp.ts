import type { HmpCommand } from "./hmp-command.ts";
export const hmpCommands: HmpCommand[] = [];
