/**
 * device_add on a machine with no buses to plug into: QEMU 7.2 refuses
 * every device type, each in its own way (no such bus, not pluggable,
 * abstract, no hotplug handler). The refusals are recorded per type
 * (./data/device-add.ts); this module reproduces the order in which QEMU
 * checks the options (qmp_device_add, qdev_device_add).
 */
import { genericError } from "../core/error.ts";
import { JsonFloat } from "../json/reader.ts";
import { formatG17 } from "../json/writer.ts";
import { defineCommand, type CommandContext, type CommandDef } from "./command.ts";
import { DEVICE_ADD_REFUSALS, DEVICE_ALIASES } from "./data/device-add.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { optional, str, struct } from "./qapi.ts";

let refusals: Map<string, string> | undefined;

/** The recorded refusal for a device type (with its name filled in), if it is one. */
function refusalFor(type: string): string | undefined {
  if (!refusals) {
    refusals = new Map();
    for (const [msg, names] of Object.entries(DEVICE_ADD_REFUSALS)) for (const n of names.split(" ")) refusals.set(n, msg);
  }
  return refusals.get(type)?.replace("'%s'", `'${type}'`);
}

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
const ID = /^[A-Za-z][A-Za-z0-9\-._]*$/;

/** qemu_opts_from_qdict: scalars become option strings; other values are dropped. */
function optionText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "bigint") return v.toString();
  if (v instanceof JsonFloat) return formatG17(v.value);
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : formatG17(v);
  return undefined;
}

/** qdev_device_add up to the point where -M none always stops. */
export function deviceAdd(opts: Record<string, string | undefined>): never {
  const { driver, bus, id } = opts;
  if (id !== undefined && !ID.test(id)) throw genericError("Parameter 'id' expects an identifier");
  if (driver === undefined) throw genericError("Parameter 'driver' is missing");
  const type = DEVICE_ALIASES[driver] ?? driver;
  const refusal = refusalFor(type);
  if (refusal === undefined) throw genericError(`'${driver}' is not a valid device model name`);
  // Class checks come before the bus; a named bus is looked up before the default one is.
  if (bus !== undefined && (refusal.startsWith("No '") || refusal.endsWith("on this machine"))) {
    throw genericError(`Bus '${bus}' not found`);
  }
  throw genericError(refusal);
}

export const commands: CommandDef[] = [
  defineCommand({
    name: "device_add",
    args: struct("q_obj_device_add-arg", { driver: str(), bus: optional(str()), id: optional(str()) }),
    features: ["json-cli", "json-cli-hotplug"],
    rawArgs: true,
    handler: (args: Record<string, unknown>) => {
      const opts: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(args)) opts[k] = optionText(v);
      // qemu_opts_from_qdict takes the id only as a string.
      opts.id = typeof args.id === "string" ? args.id : undefined;
      deviceAdd(opts);
    },
  }),
];

/** HMP device_add: -device's option syntax, the driver implied first. */
function hmpDeviceAdd(line: string, _ctx: CommandContext): string {
  const text = line.trim();
  if (!text) return `device_add: Parameter 'driver' is missing\n`;
  const opts: Record<string, string | undefined> = {};
  text.split(/,(?!,)/).forEach((item, i) => {
    const eq = item.indexOf("=");
    if (eq < 0 && i === 0) opts.driver = item;
    else if (eq >= 0) opts[item.slice(0, eq)] = item.slice(eq + 1);
  });
  try {
    deviceAdd(opts);
  } catch (e) {
    return `Error: ${(e as Error).message}\n`;
  }
}

export const hmpCommands: HmpCommand[] = [{ name: "device_add", run: hmpDeviceAdd }];
