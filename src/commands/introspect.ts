/**
 * query-qmp-schema, generated from the command table, like QEMU's
 * introspection: SchemaInfo entries for commands and events first, then
 * every type they reach. Type names are masked as QEMU does ("0" is the
 * empty object, the others numbered in order of first use); the builtins
 * keep their names, and every integer width is reported as "int".
 */
import type * as v from "valibot";
import type { CommandDef, EventDef } from "./command.ts";
import { memberFeatures } from "./qapi.ts";
import { metaOf } from "./validate.ts";

type Info = Record<string, unknown>;

const BUILTIN_JSON_TYPE: Record<string, string> = {
  str: "string",
  any: "value",
  bool: "boolean",
  int: "int",
  null: "null",
  number: "number",
};

class SchemaBuilder {
  private readonly entities: Info[] = [];
  private readonly types: Info[] = [];
  private readonly names = new Map<unknown, string>();
  private readonly seen = new Set<string>();
  private next = 1;

  constructor() {
    this.types.push({ name: "0", members: [], "meta-type": "object" });
    this.seen.add("0");
  }

  private builtin(name: string): string {
    if (!this.seen.has(name)) {
      this.seen.add(name);
      this.types.push({ name, "json-type": BUILTIN_JSON_TYPE[name], "meta-type": "builtin" });
    }
    return name;
  }

  private numbered(key: unknown, build: (name: string) => Info | undefined): string {
    const known = this.names.get(key);
    if (known) return known;
    const name = String(this.next++);
    this.names.set(key, name);
    // Reserve the slot first so recursive types keep first-use order.
    const slot = this.types.length;
    this.types.push({});
    const info = build(name);
    if (info) this.types[slot] = info;
    return name;
  }

  private members(entries: Record<string, v.GenericSchema>): Info[] {
    return Object.entries(entries).map(([name, sch]) => {
      const m = metaOf(sch);
      const info: Info = m.kind === "optional" ? { name, default: null, type: this.typeName(m.wrapped) } : { name, type: this.typeName(sch) };
      const features = memberFeatures(sch);
      if (features?.length) info.features = [...features];
      return info;
    });
  }

  private objectType(key: unknown, entries: Record<string, v.GenericSchema>): string {
    if (Object.keys(entries).length === 0) return "0";
    return this.numbered(key, (name) => ({ name, members: this.members(entries), "meta-type": "object" }));
  }

  /** The (masked) name of a schema's type, registering it on first use. */
  typeName(sch: v.GenericSchema): string {
    const m = metaOf(sch);
    switch (m.kind) {
      case "optional":
        return this.typeName(m.wrapped);
      case "int":
        return this.builtin("int");
      case "number":
        return this.builtin("number");
      case "str":
        return this.builtin("str");
      case "bool":
        return this.builtin("bool");
      case "null":
        return this.builtin("null");
      case "any":
        return this.builtin("any");
      case "enum":
        return this.numbered(m.name || sch, (name) => ({
          name,
          members: m.values.map((value) => ({ name: value })),
          "meta-type": "enum",
          values: [...m.values],
        }));
      case "list": {
        const element = this.typeName(m.item);
        const name = `[${element}]`;
        if (!this.seen.has(name)) {
          this.seen.add(name);
          this.types.push({ name, "element-type": element, "meta-type": "array" });
        }
        return name;
      }
      case "struct":
        return this.objectType(m.name || sch, (sch as unknown as { entries: Record<string, v.GenericSchema> }).entries);
      case "object":
        return this.objectType(sch, m.entries);
      case "union":
        return this.numbered(m.name || sch, (name) => ({
          name,
          tag: m.discriminator,
          variants: Object.entries(m.variants).map(([value, entries]) => ({
            case: value,
            type: this.objectType(entries, entries as Record<string, v.GenericSchema>),
          })),
          members: this.members(m.base as Record<string, v.GenericSchema>),
          "meta-type": "object",
        }));
      case "alternate":
        return this.numbered(m.name || sch, (name) => ({
          name,
          members: m.members.map((s) => ({ type: this.typeName(s) })),
          "meta-type": "alternate",
        }));
    }
  }

  command(def: CommandDef): void {
    const info: Info = {
      name: def.name,
      "ret-type": def.returns ? this.typeName(def.returns) : "0",
      "meta-type": "command",
      "arg-type": def.args ? this.typeName(def.args) : "0",
    };
    if (def.allowOob) info["allow-oob"] = true;
    if (def.features?.length) info.features = [...def.features];
    this.entities.push(info);
  }

  event(def: EventDef): void {
    this.entities.push({ name: def.name, "meta-type": "event", "arg-type": def.data ? this.typeName(def.data) : "0" });
  }

  build(): Info[] {
    return [...this.entities, ...this.types];
  }
}

export function buildSchema(commands: Iterable<CommandDef>, events: Iterable<EventDef>): Info[] {
  const b = new SchemaBuilder();
  for (const c of commands) b.command(c);
  for (const e of events) b.event(e);
  return b.build();
}
