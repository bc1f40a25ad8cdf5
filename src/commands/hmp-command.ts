/**
 * human-monitor-command is a second, text-based command table. Each layer
 * contributes entries; the HMP front end (./hmp.ts) splits the line and
 * dispatches on the first word (and on `info <what>`).
 */
import type { CommandContext } from "./command.ts";

export interface HmpCommand {
  /** "qemu-io", or "info block-jobs" for an `info` sub-command. */
  readonly name: string;
  /** Returns the text QEMU would put into the reply's "return" string. */
  run(argLine: string, ctx: CommandContext): string | Promise<string>;
}
