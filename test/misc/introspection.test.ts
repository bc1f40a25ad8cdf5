/**
 * query-qmp-schema vs real QEMU 7.2 for every command and event of the
 * machine-extra, no-devices, migration and QOM modules: the SchemaInfo entries must
 * have the same structure once masked type names are resolved.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commands as extraCommands, events as extraEvents } from "../../src/commands/machine-extra.ts";
import { commands as migrationCommands } from "../../src/commands/migration.ts";
import { commands as noDeviceCommands } from "../../src/commands/no-devices.ts";
import { commands as qomCommands } from "../../src/commands/qom.ts";
import { exchange, haveQemu, parseLine, startEmu, startQemu, type Peer } from "../protocol/harness.ts";

type Info = Record<string, any>;

/**
 * Where qmpemu's schema is knowingly narrower than QEMU's: object-add has
 * variants only for the emulated types (checked separately below), and
 * query-pci lacks the recursive pci_bridge member.
 */
const NARROWER = new Set(["object-add", "query-pci"]);

function resolve(name: string, table: Map<string, Info>, depth = 0): unknown {
  const t = table.get(name);
  if (!t) return `<missing ${name}>`;
  if (depth > 6) return "<deep>";
  switch (t["meta-type"]) {
    case "builtin":
      return { builtin: t.name };
    case "enum":
      return { enum: t.values };
    case "array":
      return { array: resolve(t["element-type"], table, depth + 1) };
    case "alternate":
      return { alternate: t.members.map((m: Info) => resolve(m.type, table, depth + 1)) };
    case "object":
      return {
        members: t.members.map((m: Info) => ({ ...m, type: resolve(m.type, table, depth + 1) })),
        ...(t.tag ? { tag: t.tag, variants: t.variants.map((v: Info) => ({ case: v.case, type: resolve(v.type, table, depth + 1) })) } : {}),
      };
    default:
      return t;
  }
}

function entity(schema: Info[], name: string): unknown {
  const table = new Map(schema.map((e) => [e.name, e]));
  const e = table.get(name);
  if (!e) return undefined;
  const out: Info = { ...e };
  for (const k of ["arg-type", "ret-type"]) if (k in e) out[k] = resolve(e[k], table);
  return out;
}

async function fetch(peer: Peer, cmd: string): Promise<any> {
  const [, lines] = await exchange(peer, [{ execute: "qmp_capabilities" }, { execute: cmd, id: cmd }]);
  return parseLine(lines!.at(-1)!).return;
}

describe.skipIf(!haveQemu)("machine-extra / migration / QOM introspection vs real QEMU", () => {
  let qemu: Peer;
  let emu: Peer;
  let theirs: Info[];
  let ours: Info[];
  beforeAll(async () => {
    [qemu, emu] = await Promise.all([startQemu(), startEmu()]);
    [theirs, ours] = await Promise.all([fetch(qemu, "query-qmp-schema"), fetch(emu, "query-qmp-schema")]);
  });
  afterAll(async () => {
    await Promise.all([qemu?.stop(), emu?.stop()]);
  });

  const names = [...extraCommands, ...noDeviceCommands, ...migrationCommands, ...qomCommands].map((c) => c.name);
  for (const name of names.filter((n) => !NARROWER.has(n))) {
    it(`command ${name}`, () => {
      expect(entity(ours, name)).toEqual(entity(theirs, name));
    });
  }
  for (const ev of extraEvents) {
    it(`event ${ev.name}`, () => {
      expect(entity(ours, ev.name)).toEqual(entity(theirs, ev.name));
    });
  }

  it("object-add: QEMU's ObjectType enum; the emulated types' members exactly as QEMU's", () => {
    const o = entity(ours, "object-add") as Info;
    const t = entity(theirs, "object-add") as Info;
    expect(o["arg-type"].members).toEqual(t["arg-type"].members);
    for (const v of o["arg-type"].variants) {
      expect(v).toEqual(t["arg-type"].variants.find((x: Info) => x.case === v.case));
    }
  });

  it("query-events stays absent, query-commands lists every new command", async () => {
    expect(entity(ours, "query-events")).toBeUndefined();
    const present = new Set((await fetch(emu, "query-commands")).map((e: Info) => e.name));
    for (const n of names) expect(present.has(n)).toBe(true);
  });
});
