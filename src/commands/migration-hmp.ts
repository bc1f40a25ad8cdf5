/**
 * HMP migration commands (QEMU's hmp_migrate_*): each reads its words the
 * way QEMU's HMP does, then runs the QMP command, so state and refusals are
 * the QMP ones. migrate_set_parameter parses each parameter with the visitor
 * QEMU uses for it, which is where most of its error texts come from.
 */
import { genericError } from "../core/error.ts";
import { MIGRATION_CAPABILITIES, MIGRATION_STATUSES } from "../machine-extra/migration.ts";
import type { CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { hmpVerb, parseSizeMiB, runQmp } from "./hmp-args.ts";


/** qapi_enum_parse's complaint. */
const invalidValue = (v: string) => genericError(`invalid parameter value: ${v}`);

type Kind = "uint8" | "uint32" | "bool" | "str" | "size" | "sizeMiB" | "compression" | "qmp-only";

/** How hmp_migrate_set_parameter reads each MigrationParameter. */
const PARAMETER_KINDS: Record<string, Kind> = {
  "announce-initial": "size", "announce-max": "size", "announce-rounds": "size", "announce-step": "size",
  "compress-level": "uint8", "compress-threads": "uint8", "compress-wait-thread": "bool", "decompress-threads": "uint8",
  "throttle-trigger-threshold": "uint8", "cpu-throttle-initial": "uint8", "cpu-throttle-increment": "uint8",
  "cpu-throttle-tailslow": "bool", "tls-creds": "str", "tls-hostname": "str", "tls-authz": "str",
  "max-bandwidth": "sizeMiB", "downtime-limit": "size", "x-checkpoint-delay": "uint32", "block-incremental": "bool",
  "multifd-channels": "uint8", "xbzrle-cache-size": "size", "max-postcopy-bandwidth": "size",
  "max-cpu-throttle": "uint8", "multifd-compression": "compression", "multifd-zlib-level": "uint8",
  "multifd-zstd-level": "uint8", "block-bitmap-mapping": "qmp-only",
};

const SIZE_SUFFIX: Record<string, bigint> = { "": 1n, b: 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n, e: 1n << 60n };

/** strtoull with base 0 (0x hex, leading-0 octal), a minus sign wrapping around as in C. */
function parseUint64(text: string): bigint | null {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)$/.exec(text);
  if (!m) return null;
  const v = BigInt(m[2]!.startsWith("0") && !/^0[xX]/.test(m[2]!) && m[2]!.length > 1 ? `0o${m[2]!.slice(1)}` : m[2]!);
  if (v >= 1n << 64n) return null;
  return m[1] === "-" ? ((1n << 64n) - v) % (1n << 64n) : v;
}

/** The string visitor's size: a number with an optional k/M/G/T/P/E suffix, default bytes. */
function parseSize(name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([bBkKmMgGtTpPeE]?)$/.exec(text);
  const v = m ? BigInt(Math.trunc(Number(m[1]) * Number(SIZE_SUFFIX[m[2]!.toLowerCase()]!))) : -1n;
  if (!m || v >= 1n << 64n) {
    throw genericError(
      `Parameter '${name}' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.`,
    );
  }
  return Number(v);
}

function parseParameter(name: string, kind: Kind, text: string): unknown {
  switch (kind) {
    case "uint8":
    case "uint32": {
      const v = parseUint64(text);
      if (v === null) throw genericError(`Parameter '${name}' expects uint64`);
      if (v >= 1n << (kind === "uint8" ? 8n : 32n)) throw genericError(`Parameter '${name}' expects ${kind}_t`);
      return Number(v);
    }
    case "bool":
      if (["on", "yes", "true", "y"].includes(text)) return true;
      if (["off", "no", "false", "n"].includes(text)) return false;
      throw genericError(`Parameter '${name}' expects 'on' or 'off'`);
    case "str":
      return text;
    case "size":
      return parseSize(name, text);
    case "sizeMiB": {
      // Not the visitor: qemu_strtosz_MiB, so a bare number means MiB.
      const parsed = parseSizeMiB(text);
      if (!parsed || parsed.length !== text.length) throw genericError(`Invalid size ${text}`);
      return parsed.value;
    }
    case "compression":
      if (!["none", "zlib", "zstd"].includes(text)) throw genericError(`Parameter '${name}' does not accept value '${text}'`);
      return text;
    case "qmp-only":
      throw genericError("The block-bitmap-mapping parameter can only be set through QMP");
  }
}

export const hmpCommands: HmpCommand[] = [
  hmpVerb("migrate_cancel", (a, ctx) => {
    a.end();
    runQmp(ctx, "migrate_cancel");
  }),
  hmpVerb("migrate_continue", (a, ctx) => {
    const state = a.str();
    a.end();
    if (!(MIGRATION_STATUSES as readonly string[]).includes(state)) throw invalidValue(state);
    runQmp(ctx, "migrate-continue", { state });
  }),
  hmpVerb("migrate_pause", (a, ctx) => {
    a.end();
    runQmp(ctx, "migrate-pause");
  }),
  hmpVerb("migrate_recover", (a, ctx) => {
    const uri = a.str();
    a.end();
    runQmp(ctx, "migrate-recover", { uri });
  }),
  hmpVerb("migrate_start_postcopy", (a, ctx) => {
    a.end();
    runQmp(ctx, "migrate-start-postcopy");
  }),
  hmpVerb("migrate_set_capability", (a, ctx) => {
    const capability = a.str();
    const state = a.onOff();
    a.end();
    if (!(MIGRATION_CAPABILITIES as readonly string[]).includes(capability)) throw invalidValue(capability);
    runQmp(ctx, "migrate-set-capabilities", { capabilities: [{ capability, state }] });
  }),
  hmpVerb("migrate_set_parameter", (a, ctx) => {
    const name = a.str();
    const text = a.str();
    a.end();
    const kind = PARAMETER_KINDS[name];
    if (!kind) throw invalidValue(name);
    runQmp(ctx, "migrate-set-parameters", { [name]: parseParameter(name, kind, text) });
  }),
];
