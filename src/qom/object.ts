/**
 * A small QOM object model: objects with typed properties and children,
 * enough for what management tools read through qom-list / qom-get /
 * qom-set. Property lists are kept in the order QEMU 7.2 prints them
 * (recorded per type), so listing is a plain walk.
 */
import { QmpError, genericError } from "../core/error.ts";
import { GHashOrder } from "./ghash-order.ts";

/** QEMU's visitor types for scalar properties: what qom-set accepts. */
export type ScalarKind = "str" | "bool" | "int" | "uint" | "enum" | "any";

export interface QomProperty {
  readonly name: string;
  /** The type qom-list shows: "string", "bool", "int", "child<...>", "link<...>", a QAPI type name. */
  readonly type: string;
  readonly description?: string;
  get?(): unknown;
  /** Receives the JSON value as sent; throws QEMU's error for a bad one. */
  set?(value: unknown): void;
}

export class QomObject {
  private readonly props: QomProperty[] = [];
  private readonly childMap = new Map<string, QomObject>();
  parent: QomObject | undefined;
  name = "";

  /** Where QEMU's per-object property hash table would keep each child. */
  private readonly childSlots = new GHashOrder();

  constructor(
    readonly typename: string,
    props: readonly QomProperty[] = [],
  ) {
    this.props.push({ name: "type", type: "string", get: () => this.typename }, ...props);
  }

  /**
   * Properties in qom-list order: the type's own (recorded in QEMU's order),
   * then the children. QEMU walks the object's hash table, then its class's
   * properties, and prepends each to the answer: children therefore come
   * last, in reverse hash-table order.
   */
  properties(): QomProperty[] {
    const children = this.childEntries().map(([name, child]): QomProperty => ({
      name,
      type: `child<${child.typename}>`,
      get: () => child.path,
    }));
    return [...this.props, ...children];
  }

  property(name: string): QomProperty | undefined {
    return this.properties().find((p) => p.name === name);
  }

  get children(): ReadonlyMap<string, QomObject> {
    return this.childMap;
  }

  /**
   * For a container whose contents never change, the listing order as
   * recorded from QEMU (its hash table's history is unknown to us).
   */
  private fixedOrder: readonly string[] | undefined;

  fixChildOrder(names: readonly string[]): void {
    this.fixedOrder = names;
  }

  /** Children in QEMU's hash-table iteration order (object_child_foreach). */
  childrenInHashOrder(): [string, QomObject][] {
    const names = this.fixedOrder ? [...this.fixedOrder].reverse() : this.childSlots.order();
    return names.filter((n) => this.childMap.has(n)).map((name) => [name, this.childMap.get(name)!]);
  }

  /** Children as qom-list shows them: walked in hash order and prepended, so reversed. */
  childEntries(): [string, QomObject][] {
    return this.childrenInHashOrder().reverse();
  }

  addChild(name: string, child: QomObject): QomObject {
    if (this.childMap.has(name) || this.props.some((p) => p.name === name)) {
      throw genericError(`attempt to add duplicate property '${name}' to object (type '${this.typename}')`);
    }
    child.parent = this;
    child.name = name;
    this.childMap.set(name, child);
    this.childSlots.insert(name);
    return child;
  }

  /** A child that existed only briefly (QEMU added then dropped it): it still leaves its mark on the hash table. */
  noteTransientChild(name: string): void {
    if (this.childMap.has(name)) return;
    this.childSlots.insert(name);
    this.childSlots.remove(name);
  }

  removeChild(name: string): void {
    const c = this.childMap.get(name);
    if (c) c.parent = undefined;
    this.childMap.delete(name);
    this.childSlots.remove(name);
  }

  get path(): string {
    if (!this.parent) return "/";
    const up = this.parent.path;
    return up === "/" ? `/${this.name}` : `${up}/${this.name}`;
  }

  getProperty(name: string): unknown {
    const p = this.property(name);
    if (!p) throw genericError(`Property '${this.typename}.${name}' not found`);
    if (!p.get) throw genericError(`Property '${this.typename}.${name}' is not readable`);
    return p.get();
  }

  setProperty(name: string, value: unknown): void {
    const p = this.property(name);
    if (!p) throw genericError(`Property '${this.typename}.${name}' not found`);
    if (!p.set) throw genericError(`Property '${this.typename}.${name}' is not writable`);
    p.set(value);
  }
}

/** QEMU's input-visitor complaint for a value of the wrong JSON type. */
export function invalidType(name: string, expected: string): QmpError {
  return genericError(`Invalid parameter type for '${name}', expected: ${expected}`);
}

/** Reads a JSON value as the visitor type `kind`, with QEMU's errors. */
export function visitScalar(name: string, kind: "str" | "bool" | "int", value: unknown): string | boolean | number {
  switch (kind) {
    case "str":
      if (typeof value !== "string") throw invalidType(name, "string");
      return value;
    case "bool":
      if (typeof value !== "boolean") throw invalidType(name, "boolean");
      return value;
    case "int":
      if (typeof value === "bigint") return Number(value);
      if (typeof value !== "number" || !Number.isInteger(value)) throw invalidType(name, "integer");
      return value;
  }
}

/** A plain stored property of a scalar visitor type. */
export function field<T extends string | boolean | number>(
  name: string,
  type: "string" | "bool" | "int",
  store: { value: T },
  opts: { writable?: boolean; check?: (v: T) => void; description?: string } = {},
): QomProperty {
  const kind = type === "string" ? "str" : type;
  return {
    name,
    type,
    description: opts.description,
    get: () => store.value,
    set:
      opts.writable === false
        ? undefined
        : (value) => {
            const v = visitScalar(name, kind, value) as T;
            opts.check?.(v);
            store.value = v;
          },
  };
}

/** Resolves a QOM path like QEMU: absolute from the root, or a unique partial path. */
export function resolvePath(root: QomObject, path: string): QomObject {
  const parts = path.split("/").filter((p) => p !== "");
  if (path.startsWith("/")) {
    const found = walk(root, parts);
    if (!found) throw new QmpError("DeviceNotFound", `Device '${path}' not found`);
    return found;
  }
  const matches = new Set<QomObject>();
  const visit = (o: QomObject): void => {
    const m = walk(o, parts);
    if (m) matches.add(m);
    for (const c of o.children.values()) visit(c);
  };
  // A partial path names a suffix of some object's path.
  visit(root);
  if (parts.length === 0 || matches.size > 1) throw genericError(`Path '${path}' is ambiguous`);
  const [only] = matches;
  if (!only) throw new QmpError("DeviceNotFound", `Device '${path}' not found`);
  return only;
}

function walk(from: QomObject, parts: string[]): QomObject | undefined {
  let o: QomObject | undefined = from;
  for (const p of parts) {
    o = o.children.get(p);
    if (!o) return undefined;
  }
  return o;
}
