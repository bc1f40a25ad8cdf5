/**
 * query-qmp-schema and query-commands compared with real QEMU 7.2: for the
 * commands and events this layer defines, the SchemaInfo entries must have
 * the same shape once masked type names are resolved to their structure.
 */
import { describe, expect, it } from "vitest";
import { commands as controlCommands } from "../../src/commands/control.ts";
import { commands as hmpCommands } from "../../src/commands/hmp.ts";
import { commands as machineCommands, events as machineEvents } from "../../src/commands/machine.ts";
import { haveQemu } from "./harness.ts";
import { bothSchemas, entity, fetchReturn, type Info } from "./schema-view.ts";


describe.skipIf(!haveQemu)("introspection vs real QEMU", () => {
  const schemas = bothSchemas();

  const names = [...controlCommands, ...machineCommands, ...hmpCommands].map((c) => c.name).filter((n) => n !== "query-qmp-schema");
  for (const name of names) {
    it(`command ${name}`, () => {
      expect(entity(schemas.ours(), name)).toEqual(entity(schemas.theirs(), name));
    });
  }
  for (const ev of machineEvents) {
    it(`event ${ev.name}`, () => {
      expect(entity(schemas.ours(), ev.name)).toEqual(entity(schemas.theirs(), ev.name));
    });
  }

  it("query-qmp-schema's own entry and the overall layout", () => {
    const q = entity(schemas.ours(), "query-qmp-schema") as Info;
    expect(q["meta-type"]).toBe("command");
    expect(schemas.ours()[0]!["meta-type"]).toBe("command");
    // Types follow the entities; "0" is the empty object, builtins keep their names.
    expect(schemas.ours().find((e) => e.name === "0")).toEqual({ name: "0", members: [], "meta-type": "object" });
    expect(schemas.ours().filter((e) => e["meta-type"] === "builtin").every((e) => schemas.theirs().some((t) => JSON.stringify(t) === JSON.stringify(e)))).toBe(true);
    const metas = new Set(schemas.ours().map((e) => e["meta-type"]));
    for (const m of metas) expect(["command", "event", "object", "enum", "array", "builtin", "alternate"]).toContain(m);
  });

  it("query-commands has QEMU's shape and lists every command of the table", async () => {
    const qc = await fetchReturn(schemas.emu(), "query-commands");
    expect(qc.every((e: Info) => Object.keys(e).join() === "name")).toBe(true);
    const present = new Set(qc.map((e: Info) => e.name));
    for (const n of names) expect(present.has(n)).toBe(true);
  });
});
