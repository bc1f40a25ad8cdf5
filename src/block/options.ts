/**
 * BlockdevOptions as a table, and one visitor that checks a dictionary
 * against it with QEMU's QAPI input-visitor messages. The same table reads
 * QMP JSON and -blockdev keyval strings (whose scalars all arrive as strings),
 * because the schema, not the JSON type, says what a value is.
 */
import { KEYVAL_FALSE, KEYVAL_TRUE, parseKeyvalNumber } from "../core/keyval-scalars.ts";
import { genericError } from "../core/error.ts";

export type FieldType =
  | "str" | "bool" | "int" | "size" | "any"
  /** BlockdevRef: node-name string or inline options. */
  | "ref"
  /** BlockdevRefOrNull: like ref, plus JSON null (no child). */
  | "ref-or-null"
  | { enum: readonly string[] }
  | { struct: Fields }
  | { list: FieldType };

export interface Field {
  readonly type: FieldType;
  readonly required?: boolean;
}

export type Fields = Readonly<Record<string, Field>>;

const TYPE_NAMES: Record<string, string> = {
  str: "string", bool: "boolean", int: "integer", size: "integer", ref: "BlockdevRef", "ref-or-null": "BlockdevRefOrNull",
};

/**
 * Where the value came from: QMP JSON, keyval strings (-blockdev a=b,c.d=e),
 * or the legacy -drive / drive_add options, which are keyval strings that
 * bdrv_open checks with its own words ("Unknown driver", "Block format ...
 * does not support the option ...").
 */
export type Origin = "json" | "keyval" | "drive";

function typeName(t: FieldType): string {
  if (typeof t === "string") return TYPE_NAMES[t] ?? t;
  if ("enum" in t) return "string";
  if ("list" in t) return "array";
  return "object";
}

const join = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

function badType(path: string, t: FieldType): never {
  throw genericError(`Invalid parameter type for '${path}', expected: ${typeName(t)}`);
}

/** The keyval visitor's integers and sizes, with its texts. */
function parseKeyvalScalar(path: string, s: string, size: boolean): number {
  const n = parseKeyvalNumber(s, size);
  if (n === undefined) throw genericError(`Parameter '${path}' expects ${size ? "size" : "integer"}`);
  return n;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/** Keyval lists arrive as {"0": …, "1": …}; JSON lists as arrays. */
function asList(v: unknown, origin: Origin): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  if (origin !== "json" && v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.every((k) => /^\d+$/.test(k))) return keys.sort((a, b) => +a - +b).map((k) => (v as Record<string, unknown>)[k]);
  }
  return undefined;
}

export function visitValue(path: string, name: string, t: FieldType, v: unknown, origin: Origin): unknown {
  const ks = origin !== "json" && typeof v === "string";
  if (t === "any") return v;
  if (t === "str") {
    if (typeof v !== "string") badType(path, t);
    return v;
  }
  if (t === "bool") {
    if (typeof v === "boolean") return v;
    if (ks) {
      if (KEYVAL_TRUE.has(v)) return true;
      if (KEYVAL_FALSE.has(v)) return false;
      throw genericError(`Parameter '${path}' expects 'on' or 'off'`);
    }
    badType(path, t);
  }
  if (t === "int" || t === "size") {
    if (ks) return parseKeyvalScalar(path, v, t === "size");
    const n = toNumber(v);
    if (n === undefined) badType(path, t);
    if (t === "size" && n < 0) badType(path, t);
    return n;
  }
  if (t === "ref" || t === "ref-or-null") {
    if (typeof v === "string") return v;
    if (v === null && t === "ref-or-null") return null;
    if (v && typeof v === "object" && !Array.isArray(v)) return v; // visited when the child is opened
    badType(path, t);
  }
  if ("enum" in t) {
    if (typeof v !== "string") badType(path, t);
    if (!t.enum.includes(v)) throw genericError(`Parameter '${name}' does not accept value '${v}'`);
    return v;
  }
  if ("list" in t) {
    const list = asList(v, origin);
    if (!list) badType(path, t);
    return list.map((item, i) => visitValue(`${path}[${i}]`, name, t.list, item, origin));
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) badType(path, t);
  return visitStruct(path, t.struct, v as Record<string, unknown>, origin);
}

/** Members in schema order, then the unexpected-member check (visit_check_struct). */
export function visitStruct(prefix: string, fields: Fields, input: Record<string, unknown>, origin: Origin, seen = new Set<string>()): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(fields)) {
    seen.add(name);
    const path = join(prefix, name);
    if (!(name in input) || input[name] === undefined) {
      if (f.required) throw genericError(`Parameter '${path}' is missing`);
      continue;
    }
    out[name] = visitValue(path, name, f.type, input[name], origin);
  }
  return out;
}

export function checkUnexpected(prefix: string, input: Record<string, unknown>, seen: Set<string>): void {
  for (const k of Object.keys(input)) {
    if (!seen.has(k)) throw genericError(`Parameter '${join(prefix, k)}' is unexpected`);
  }
}

const bool: Field = { type: "bool" };
const str: Field = { type: "str" };
const int: Field = { type: "int" };

/** BlockdevOptionsBase minus driver (checked separately: it picks the variant). */
export const BASE_FIELDS: Fields = {
  "node-name": str,
  discard: { type: { enum: ["ignore", "unmap"] } },
  cache: { type: { struct: { direct: bool, "no-flush": bool } } },
  "read-only": bool,
  "auto-read-only": bool,
  "force-share": bool,
  "detect-zeroes": { type: { enum: ["off", "on", "unmap"] } },
};

export interface CommonOptions {
  nodeName?: string;
  discard: "ignore" | "unmap";
  cacheDirect: boolean;
  cacheNoFlush: boolean;
  readOnly?: boolean;
  autoReadOnly: boolean;
  forceShare: boolean;
  detectZeroes: "off" | "on" | "unmap";
}

/** Validated BlockdevOptions: the driver, the common part and the variant part. */
export interface NodeOptions {
  driver: string;
  common: CommonOptions;
  specific: Record<string, unknown>;
  /** The dictionary as given, for json: filenames. */
  raw: Record<string, unknown>;
  /** Open without the default backing file (QEMU's BDRV_O_NO_BACKING, used by snapshots). */
  noBacking?: boolean;
}

/**
 * Checks one BlockdevOptions dictionary (not its inline children: those are
 * visited when opened, under `prefix.child`).
 */
export function visitBlockdevOptions(
  prefix: string,
  input: Record<string, unknown>,
  drivers: ReadonlyMap<string, { fields: Fields; internal?: boolean; kind?: string }>,
  origin: Origin,
  inherited?: Partial<CommonOptions>,
): NodeOptions {
  const seen = new Set<string>(["driver"]);
  const driverPath = join(prefix, "driver");
  if (!("driver" in input)) throw genericError(`Parameter '${driverPath}' is missing`);
  if (typeof input.driver !== "string") badType(driverPath, { enum: [] });
  const def = drivers.get(input.driver);
  if (!def || def.internal) {
    throw genericError(origin === "drive" ? `Unknown driver '${input.driver}'` : `Parameter 'driver' does not accept value '${input.driver}'`);
  }
  const base = visitStruct(prefix, BASE_FIELDS, input, origin, seen);
  const specific = visitStruct(prefix, def.fields, input, origin, seen);
  if (origin === "drive") {
    const extra = Object.keys(input).find((k) => !seen.has(k));
    if (extra !== undefined) {
      throw genericError(
        def.kind === "protocol"
          ? `Block protocol '${input.driver}' doesn't support the option '${extra}'`
          : `Block format '${input.driver}' does not support the option '${extra}'`,
      );
    }
  }
  checkUnexpected(prefix, input, seen);
  const cache = (base.cache ?? {}) as { direct?: boolean; "no-flush"?: boolean };
  return {
    driver: input.driver,
    common: {
      nodeName: base["node-name"] as string | undefined,
      discard: (base.discard as CommonOptions["discard"]) ?? inherited?.discard ?? "ignore",
      cacheDirect: cache.direct ?? inherited?.cacheDirect ?? false,
      cacheNoFlush: cache["no-flush"] ?? inherited?.cacheNoFlush ?? false,
      readOnly: (base["read-only"] as boolean | undefined) ?? inherited?.readOnly,
      autoReadOnly: (base["auto-read-only"] as boolean | undefined) ?? inherited?.autoReadOnly ?? false,
      forceShare: (base["force-share"] as boolean | undefined) ?? inherited?.forceShare ?? false,
      detectZeroes: (base["detect-zeroes"] as CommonOptions["detectZeroes"]) ?? "off",
    },
    specific,
    raw: input,
  };
}

/** util/id.c id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
export function isWellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(id);
}

export const fieldTypes = { bool, str, int, size: { type: "size" } as Field };
