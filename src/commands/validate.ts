/**
 * Argument validation by walking the qapi.ts schemas the way QEMU's QObject
 * input visitor walks a QAPI type: members in declared order (a missing or
 * mistyped earlier member is reported before a later one), variant members
 * after the base, unexpected members last; QEMU's texts, including its
 * quirks (range and enum errors name only the leaf member, or 'null' for a
 * list element; type errors name the full path like 'actions[0].data.sync').
 *
 * Returns a clean copy of the arguments: integral floats and bigints turned
 * into what the member's type says (uint64 accepts negatives by wrapping,
 * like QEMU, so such values arrive as bigint).
 */
import type * as v from "valibot";
import { genericError } from "../core/error.ts";
import { JsonFloat } from "../json/reader.ts";
import { qdictOrder } from "../json/writer.ts";
import { qapiMeta, type IntKind, type QapiMeta } from "./qapi.ts";

type AnySchema = v.GenericSchema & {
  type: string;
  wrapped?: AnySchema;
  item?: AnySchema;
  entries?: Record<string, AnySchema>;
  options?: readonly unknown[];
};

type Dict = Record<string, unknown>;

const SIGNED_RANGE: Partial<Record<IntKind, [bigint, bigint, string]>> = {
  int8: [-128n, 127n, "int8_t"],
  int16: [-32768n, 32767n, "int16_t"],
  int32: [-2147483648n, 2147483647n, "int32_t"],
};
const UNSIGNED_MAX: Partial<Record<IntKind, [bigint, string]>> = {
  uint8: [255n, "uint8_t"],
  uint16: [65535n, "uint16_t"],
  uint32: [4294967295n, "uint32_t"],
};
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function isDict(x: unknown): x is Dict {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof JsonFloat);
}

function typeError(full: string, expected: string): never {
  throw genericError(`Invalid parameter type for '${full}', expected: ${expected}`);
}

/** A JS number or bigint as an exact integer, or undefined for floats / non-numbers. */
function exactInteger(x: unknown): bigint | undefined {
  if (typeof x === "bigint") return x;
  if (typeof x === "number" && Number.isInteger(x)) return BigInt(x);
  return undefined;
}

function narrow(b: bigint): number | bigint {
  return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b;
}

/** Where we are: the full path for most texts, the bare member name for some. */
interface Loc {
  full: string;
  /** The member name, or null for a list element (QEMU prints 'null'). */
  name: string | null;
}

function member(parent: string, key: string): Loc {
  return { full: parent ? `${parent}.${key}` : key, name: key };
}

function visitInt(kind: IntKind, x: unknown, loc: Loc): number | bigint {
  const leaf = loc.name ?? "null";
  if (kind === "uint64" || kind === "size" || kind in UNSIGNED_MAX) {
    let b = exactInteger(x);
    if (b === undefined || b < INT64_MIN || b > UINT64_MAX) throw genericError(`Parameter '${loc.full}' expects uint64`);
    if (b < 0n) b += 2n ** 64n; // QEMU accepts negatives here for backward compatibility
    const lim = UNSIGNED_MAX[kind];
    if (lim && b > lim[0]) throw genericError(`Parameter '${leaf}' expects ${lim[1]}`);
    return narrow(b);
  }
  const b = exactInteger(x);
  if (b === undefined || b < INT64_MIN || b > INT64_MAX) typeError(loc.full, "integer");
  const range = SIGNED_RANGE[kind];
  if (range && (b < range[0] || b > range[1])) throw genericError(`Parameter '${leaf}' expects ${range[2]}`);
  return narrow(b);
}

/** Which alternate member a JSON value selects, by its JSON type (QType). */
function qtypeOf(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "string") return "string";
  if (typeof x === "boolean") return "bool";
  if (typeof x === "number" || typeof x === "bigint" || x instanceof JsonFloat) return "number";
  if (Array.isArray(x)) return "list";
  return "dict";
}

function schemaQtype(s: AnySchema): string {
  const m = metaOf(s);
  switch (m.kind) {
    case "str":
    case "enum":
      return "string";
    case "int":
    case "number":
      return "number";
    case "bool":
      return "bool";
    case "null":
      return "null";
    case "struct":
    case "union":
    case "object":
      return "dict";
    case "list":
      return "list";
    default:
      return "any";
  }
}

/** QapiMeta, plus what untagged valibot wrappers and plain schemas mean. */
export type SchemaShape =
  | QapiMeta
  | { kind: "optional"; wrapped: AnySchema }
  | { kind: "list"; item: AnySchema }
  | { kind: "object"; entries: Record<string, AnySchema> };

export function metaOf(schema: v.GenericSchema): SchemaShape {
  const s = schema as AnySchema;
  const tagged = qapiMeta(s);
  if (tagged) return tagged;
  switch (s.type) {
    case "optional":
    case "nullish":
    case "exact_optional":
      return { kind: "optional", wrapped: s.wrapped! };
    case "array":
      return { kind: "list", item: s.item! };
    case "object":
    case "loose_object":
    case "strict_object":
      return { kind: "object", entries: s.entries! };
    case "string":
      return { kind: "str" };
    case "boolean":
      return { kind: "bool" };
    case "number":
      return { kind: "number" };
    case "bigint":
      return { kind: "int", int: "int" };
    case "null":
      return { kind: "null" };
    case "picklist":
      return { kind: "enum", name: "", values: s.options as string[] };
    default:
      return { kind: "any" };
  }
}

function visitMembers(entries: Record<string, AnySchema>, dict: Dict, path: string, out: Dict): void {
  for (const key of Object.keys(entries)) {
    const sch = entries[key]!;
    const m = metaOf(sch);
    const present = Object.prototype.hasOwnProperty.call(dict, key);
    const loc = member(path, key);
    if (m.kind === "optional") {
      if (present) out[key] = visit(m.wrapped, dict[key], loc);
      continue;
    }
    if (!present) throw genericError(`Parameter '${loc.full}' is missing`);
    out[key] = visit(sch, dict[key], loc);
  }
}

/** GLib's g_str_hash (djb2 over signed chars, as glib's gchar). */
function gStrHash(key: string): number {
  let h = 5381;
  for (const b of Buffer.from(key, "utf8")) h = (Math.imul(h, 33) + (b < 128 ? b : b - 256)) >>> 0;
  return h;
}

/**
 * The order QEMU finds leftover members in: its input visitor copies the
 * argument QDict (in QDict order) into a GHashTable and reports the first
 * key that iteration yields. Emulated for tables that never resized (fewer
 * than 8 members: 8 slots, modulus 7, quadratic probing); beyond that the
 * input order is used.
 */
export function leftoverOrder(keys: string[]): string[] {
  if (keys.length < 2) return keys;
  if (keys.length > 7) return keys;
  const slots: (string | undefined)[] = new Array(8);
  for (const k of qdictOrder([...keys])) {
    let h = gStrHash(k);
    if (h < 2) h = 2;
    let idx = (Math.imul(h, 11) >>> 0) % 7;
    for (let step = 1; slots[idx] !== undefined; step++) idx = (idx + step) & 7;
    slots[idx] = k;
  }
  return slots.filter((k): k is string => k !== undefined);
}

function checkUnexpected(dict: Dict, known: (key: string) => boolean, path: string): void {
  const keys = Object.keys(dict);
  if (keys.every(known)) return;
  for (const key of leftoverOrder(keys)) {
    if (!known(key)) throw genericError(`Parameter '${member(path, key).full}' is unexpected`);
  }
}

function visitStruct(sch: AnySchema, dict: Dict, path: string): Dict {
  const m = metaOf(sch);
  const out: Dict = {};
  if (m.kind === "union") {
    visitMembers(m.base as Record<string, AnySchema>, dict, path, out);
    const tag = out[m.discriminator] as string;
    const variant = (m.variants[tag] ?? {}) as Record<string, AnySchema>;
    visitMembers(variant, dict, path, out);
    checkUnexpected(dict, (k) => k in m.base || k in variant, path);
    return out;
  }
  const entries = (m.kind === "object" ? m.entries : (sch.entries ?? {})) as Record<string, AnySchema>;
  visitMembers(entries, dict, path, out);
  checkUnexpected(dict, (k) => Object.prototype.hasOwnProperty.call(entries, k), path);
  return out;
}

function visit(sch: AnySchema, x: unknown, loc: Loc): unknown {
  const m = metaOf(sch);
  switch (m.kind) {
    case "optional":
      return visit(m.wrapped, x, loc);
    case "int":
      return visitInt(m.int, x, loc);
    case "number":
      if (x instanceof JsonFloat) return x.value;
      if (typeof x === "number") return x;
      if (typeof x === "bigint") return Number(x);
      return typeError(loc.full, "number");
    case "str":
      if (typeof x !== "string") typeError(loc.full, "string");
      return x;
    case "bool":
      if (typeof x !== "boolean") typeError(loc.full, "boolean");
      return x;
    case "null":
      if (x !== null) typeError(loc.full, "null");
      return x;
    case "any":
      return x;
    case "enum":
      if (typeof x !== "string") typeError(loc.full, "string");
      if (!m.values.includes(x)) throw genericError(`Parameter '${loc.name ?? "null"}' does not accept value '${x}'`);
      return x;
    case "list": {
      if (!Array.isArray(x)) typeError(loc.full, "array");
      return x.map((el, i) => visit(m.item, el, { full: `${loc.full}[${i}]`, name: null }));
    }
    case "struct":
    case "union":
    case "object":
      if (!isDict(x)) typeError(loc.full, "object");
      return visitStruct(sch, x, loc.full);
    case "alternate": {
      const want = qtypeOf(x);
      // By JSON type; a member of type 'any' (a stand-in for a type that is
      // checked elsewhere, e.g. inline BlockdevOptions) takes the rest.
      const pick =
        m.members.find((s) => schemaQtype(s as AnySchema) === want) ??
        m.members.find((s) => schemaQtype(s as AnySchema) === "any");
      if (!pick) typeError(loc.name ?? "null", m.name);
      return visit(pick as AnySchema, x, loc);
    }
  }
}

/**
 * Validates a command's `arguments` object against its schema (a struct or
 * a flat union, boxed); without a schema every member is unexpected.
 */
export function validateArgs(schema: v.GenericSchema | undefined, args: Dict): Dict {
  if (!schema) {
    checkUnexpected(args, () => false, "");
    return {};
  }
  return visitStruct(schema as AnySchema, args, "");
}
