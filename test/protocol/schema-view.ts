/**
 * A comparable view of one query-qmp-schema entity: type references are
 * resolved into the types they name, so two schemas whose masked type names
 * differ ("1", "2", ...) compare by structure.
 */
import { afterAll, beforeAll } from "vitest";
import { exchange, parseLine, startEmu, startQemu, type Peer } from "./harness.ts";

export type Info = Record<string, any>;

/** `coarse` leaves out builtins' JSON types and enum member details. */
function resolve(name: string, table: Map<string, Info>, coarse: boolean, depth = 0): unknown {
  const t = table.get(name);
  if (!t) return `<missing ${name}>`;
  if (depth > 6) return "<deep>";
  switch (t["meta-type"]) {
    case "builtin":
      return coarse ? { builtin: t.name } : { builtin: t.name, json: t["json-type"] };
    case "enum":
      return coarse ? { enum: t.values } : { enum: t.values, members: t.members };
    case "array":
      return { array: resolve(t["element-type"], table, coarse, depth + 1) };
    case "alternate":
      return { alternate: t.members.map((m: Info) => resolve(m.type, table, coarse, depth + 1)) };
    case "object":
      return {
        members: t.members.map((m: Info) => ({ ...m, type: resolve(m.type, table, coarse, depth + 1) })),
        ...(t.tag ? { tag: t.tag, variants: t.variants.map((v: Info) => ({ case: v.case, type: resolve(v.type, table, coarse, depth + 1) })) } : {}),
      };
    default:
      return t;
  }
}

/** The entity called `name` with its argument and return types resolved. */
export function entity(schema: Info[], name: string, opts: { coarse?: boolean } = {}): unknown {
  const table = new Map(schema.map((e) => [e.name, e]));
  const e = table.get(name);
  if (!e) return undefined;
  const out: Info = { ...e };
  for (const k of ["arg-type", "ret-type"]) if (k in e) out[k] = resolve(e[k], table, opts.coarse ?? false);
  return out;
}

/** Negotiates and returns what `cmd` returns on `peer`. */
export async function fetchReturn(peer: Peer, cmd: string): Promise<any> {
  const [, lines] = await exchange(peer, [{ execute: "qmp_capabilities" }, { execute: cmd, id: cmd }]);
  return parseLine(lines!.at(-1)!).return;
}

/**
 * For one describe block: real QEMU and qmpemu started once, both
 * query-qmp-schema answers fetched; read them (and ask qmpemu more) inside the tests.
 */
export function bothSchemas(): { theirs(): Info[]; ours(): Info[]; emu(): Peer } {
  let qemu: Peer | undefined;
  let emu: Peer | undefined;
  let theirs: Info[] = [];
  let ours: Info[] = [];
  beforeAll(async () => {
    [qemu, emu] = await Promise.all([startQemu(), startEmu()]);
    [theirs, ours] = await Promise.all([fetchReturn(qemu, "query-qmp-schema"), fetchReturn(emu, "query-qmp-schema")]);
  });
  afterAll(async () => {
    await Promise.all([qemu?.stop(), emu?.stop()]);
  });
  return { theirs: () => theirs, ours: () => ours, emu: () => emu! };
}
