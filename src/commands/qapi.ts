/**
 * QAPI-flavoured schema constructors on top of valibot.
 *
 * Every command's arguments are built from these. Each returns an ordinary
 * valibot schema (so `v.InferOutput` gives the handler's argument type) and
 * records the QAPI facts valibot has no word for (type name, integer width,
 * union discriminator) in a side table read by the validator
 * (./validate.ts: QEMU's member order and error texts) and by introspection
 * (./introspect.ts: query-qmp-schema).
 */
import * as v from "valibot";

export type IntKind =
  | "int" | "int8" | "int16" | "int32" | "int64"
  | "uint8" | "uint16" | "uint32" | "uint64" | "size";

export type QapiMeta =
  | { kind: "int"; int: IntKind }
  | { kind: "number" }
  | { kind: "str" }
  | { kind: "bool" }
  | { kind: "null" }
  | { kind: "any" }
  | { kind: "enum"; name: string; values: readonly string[] }
  | { kind: "struct"; name: string }
  | { kind: "union"; name: string; discriminator: string; base: v.ObjectEntries; variants: Record<string, v.ObjectEntries> }
  | { kind: "alternate"; name: string; members: readonly v.GenericSchema[] };

const metaTable = new WeakMap<object, QapiMeta>();

function tag<S extends v.GenericSchema>(schema: S, meta: QapiMeta): S {
  metaTable.set(schema, meta);
  return schema;
}

export function qapiMeta(schema: v.GenericSchema): QapiMeta | undefined {
  return metaTable.get(schema);
}

/**
 * Leaf schemas are made once and shared by every member using them, which
 * took ~2.5 ms off the binary's start (module evaluation, medians of 40
 * runs). withFeatures() therefore tags a copy.
 */
const shared = <S extends v.GenericSchema>(make: () => S) => {
  let s: S | undefined;
  return () => (s ??= make());
};
const intSchemas = new Map<IntKind, v.GenericSchema<number | bigint>>();
/** Kinds whose range fits a JS number exactly: the validator always delivers a number. */
export type SmallIntKind = "int8" | "int16" | "int32" | "uint8" | "uint16" | "uint32";
/**
 * JSON integers beyond 2^53 arrive as bigint; smaller ones as number, so a
 * 64-bit member's type says both: a handler decides whether it keeps the
 * value exact (to echo it back) or computes with intNumber().
 */
export function int(kind: SmallIntKind): v.GenericSchema<number>;
export function int(kind?: "int" | "int64" | "uint64" | "size"): v.GenericSchema<number | bigint>;
export function int(kind: IntKind = "int"): v.GenericSchema<number | bigint> {
  let s = intSchemas.get(kind);
  if (!s) intSchemas.set(kind, (s = tag(v.union([v.pipe(v.number(), v.integer()), v.bigint()]) as v.GenericSchema<number | bigint>, { kind: "int", int: kind })));
  return s;
}
/**
 * An integer argument as a JS number for arithmetic and comparisons: exact
 * up to 2^53, the nearest double beyond (only compared against far smaller
 * limits, or used where QEMU's own value would saturate anyway).
 */
export const intNumber = (x: number | bigint): number => (typeof x === "bigint" ? Number(x) : x);
export { asInt64, asUint32, exactInt } from "../core/int64.ts";

export const num = shared(() => tag(v.union([v.number(), v.bigint()]) as v.GenericSchema<number>, { kind: "number" }));
export const str = shared(() => tag(v.string(), { kind: "str" }));
export const bool = shared(() => tag(v.boolean(), { kind: "bool" }));
export const nil = shared(() => tag(v.null(), { kind: "null" }));
export const any = shared(() => tag(v.unknown(), { kind: "any" }));

export const enumOf = <const T extends readonly [string, ...string[]]>(name: string, values: T) =>
  tag(v.picklist(values), { kind: "enum", name, values });

export const struct = <E extends v.ObjectEntries>(name: string, entries: E) =>
  tag(v.object(entries), { kind: "struct", name });

export const optional = <S extends v.GenericSchema>(schema: S) => v.optional(schema);
export const array = <S extends v.GenericSchema>(schema: S) => v.array(schema);

/**
 * A flat union: common `base` members (including the discriminator, an enum)
 * plus per-value members, like QAPI's `'union': ..., 'discriminator': ...`.
 */
export function union<const D extends string, B extends v.ObjectEntries, V extends Record<string, v.ObjectEntries>>(
  name: string,
  discriminator: D,
  base: B,
  variants: V,
) {
  // Built on first use: the validator and introspection read the side table,
  // and building unions of many variants (CpuInfoFast, BlockdevOptions) at
  // startup took 1 ms of the commands' 8.
  let built: v.GenericSchema | undefined;
  const build = () =>
    (built ??= v.variant(
      discriminator,
      Object.entries(variants).map(([value, entries]) => v.object({ ...base, [discriminator]: v.literal(value), ...entries })) as never,
    ));
  const schema = v.lazy(build) as unknown as v.GenericSchema<
    { [K in keyof V]: v.InferOutput<v.ObjectSchema<B & V[K], undefined>> & Record<D, K> }[keyof V]
  >;
  return tag(schema, { kind: "union", name, discriminator, base, variants });
}

/** QAPI alternate: the JSON type of the value picks the member. */
export function alternate<const M extends readonly v.GenericSchema[]>(name: string, members: M) {
  const schema = v.union(members as unknown as v.GenericSchema[]) as unknown as v.GenericSchema<v.InferOutput<M[number]>>;
  return tag(schema, { kind: "alternate", name, members });
}

/**
 * QAPI member features (e.g. "deprecated", "unstable"), shown by
 * query-qmp-schema on the member: tag the member's schema as used in the
 * struct's entries (after optional(), if optional).
 */
const featureTable = new WeakMap<object, readonly string[]>();

export function withFeatures<S extends v.GenericSchema>(schema: S, features: readonly string[]): S {
  const copy = Object.create(Object.getPrototypeOf(schema), Object.getOwnPropertyDescriptors(schema)) as S;
  const meta = metaTable.get(schema);
  if (meta) metaTable.set(copy, meta);
  featureTable.set(copy, features);
  return copy;
}

export function memberFeatures(schema: v.GenericSchema): readonly string[] | undefined {
  return featureTable.get(schema);
}

export type Infer<S extends v.GenericSchema> = v.InferOutput<S>;
