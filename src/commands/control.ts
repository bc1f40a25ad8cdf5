/**
 * The monitor's own commands: qmp_capabilities, query-version,
 * query-commands, query-qmp-schema.
 */
import { genericError } from "../core/error.ts";
import { defineCommand, type CommandDef, type SessionInfo } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { buildSchema } from "./introspect.ts";
import { any, array, enumOf, int, optional, str, struct } from "./qapi.ts";

/** The part of a monitor session qmp_capabilities needs (see src/qmp/session.ts). */
interface NegotiatingSession extends SessionInfo {
  negotiate(enable?: readonly string[]): void;
}

const VersionTriple = struct("VersionTriple", { major: int(), minor: int(), micro: int() });
const VersionInfo = struct("VersionInfo", { qemu: VersionTriple, package: str() });

let schemaCache: { key: unknown; value: unknown } | undefined;

export const commands: CommandDef[] = [
  defineCommand({
    name: "qmp_capabilities",
    args: struct("q_obj_qmp_capabilities-arg", { enable: optional(array(enumOf("QMPCapability", ["oob"]))) }),
    handler: ({ enable }, { session }) => {
      const s = session as Partial<NegotiatingSession>;
      if (typeof s.negotiate !== "function") throw genericError("qmp_capabilities needs a QMP monitor");
      s.negotiate(enable);
    },
  }),
  defineCommand({
    name: "query-version",
    returns: VersionInfo,
    handler: (_a, { emu }) => emu.machine.version,
  }),
  defineCommand({
    name: "query-commands",
    returns: array(struct("CommandInfo", { name: str() })),
    handler: (_a, { emu }) => [...emu.commands.keys()].map((name) => ({ name })),
  }),
  defineCommand({
    name: "query-qmp-schema",
    returns: array(struct("SchemaInfo", { name: str(), "meta-type": str(), extra: optional(any()) })),
    handler: (_a, { emu }) => {
      // The table is fixed once the emulator is built; build the schema once.
      if (schemaCache?.key !== emu.commands) {
        schemaCache = { key: emu.commands, value: buildSchema(emu.commands.values(), emu.eventDefs) };
      }
      return schemaCache.value;
    },
  }),
];

export const hmpCommands: HmpCommand[] = [];
