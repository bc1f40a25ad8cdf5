/**
 * QemuOpts on the command line: the syntax lives in core (the monitor's
 * drive_add reads it too); these helpers add the CLI's own errors.
 */
import { optGet, type QemuOpts } from "../core/qemu-opts.ts";
import { CliError } from "./errors.ts";

export { optGet, parseQemuOpts, splitOptItems, withWarnings, type QemuOpts } from "../core/qemu-opts.ts";

/** QEMU's boolean spellings for QemuOpts (qapi_bool_parse). */
export function parseOnOff(name: string, value: string): boolean {
  if (value === "on" || value === "yes" || value === "true" || value === "y") return true;
  if (value === "off" || value === "no" || value === "false" || value === "n") return false;
  throw new CliError(`Parameter '${name}' expects 'on' or 'off'`);
}

/** Rejects keys outside `allowed` the way QemuOpts does for a described option group. */
export function checkKeys(opts: QemuOpts, allowed: readonly string[]): void {
  for (const [key] of opts.pairs) if (!allowed.includes(key)) throw new CliError(`Invalid parameter '${key}'`);
}

/** Optional on/off parameter with a default. */
export function optBool(opts: QemuOpts, key: string, dflt: boolean): boolean {
  const v = optGet(opts, key);
  return v === undefined ? dflt : parseOnOff(key, v);
}
