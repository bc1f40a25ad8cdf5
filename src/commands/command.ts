/**
 * A command is data: name, argument schema, return schema, allow-oob and a
 * handler. Validation, query-commands and query-qmp-schema all read the same
 * definitions, so they cannot disagree.
 */
import type * as v from "valibot";
import type { Emulator } from "../emulator.ts";

/** Who is asking: enough for commands that care about their monitor. */
export interface SessionInfo {
  readonly id: number;
  readonly oob: boolean;
}

export interface CommandContext {
  readonly emu: Emulator;
  readonly session: SessionInfo;
}

export interface CommandDef<A = any, R = unknown> {
  readonly name: string;
  /** A `struct(...)` schema; absent for commands without arguments. */
  readonly args?: v.GenericSchema<A>;
  /** For introspection only; absent means the command returns `{}`. */
  readonly returns?: v.GenericSchema;
  readonly allowOob?: boolean;
  /** QEMU lists some commands with "features"; e.g. ["deprecated"]. */
  readonly features?: readonly string[];
  /**
   * QAPI's 'gen': false (device_add): the handler takes the arguments as
   * sent, extra members included; `args` then serves introspection only.
   */
  readonly rawArgs?: boolean;
  handler(args: A, ctx: CommandContext): R | Promise<R>;
}

export function defineCommand<S extends v.GenericSchema | undefined, R>(def: {
  name: string;
  args?: S;
  returns?: v.GenericSchema;
  allowOob?: boolean;
  features?: readonly string[];
  rawArgs?: boolean;
  handler(args: S extends v.GenericSchema ? v.InferOutput<S> : Record<string, never>, ctx: CommandContext): R | Promise<R>;
}): CommandDef {
  return def as CommandDef;
}

/** An event's data schema, for query-qmp-schema. */
export interface EventDef {
  readonly name: string;
  readonly data?: v.GenericSchema;
}

export function defineEvent(name: string, data?: v.GenericSchema): EventDef {
  return { name, data };
}
