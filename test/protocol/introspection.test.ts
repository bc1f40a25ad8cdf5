/**
 * query-qmp-schema and query-commands compared with real QEMU 7.2: for the
 * commands and events this layer defines, the SchemaInfo entries must have
 * the same shape once masked type names are resolved to their structure.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commands as controlCommands } from "../../src/commands/control.ts";
import { commands as hmpCommands } from "../../src/commands/hmp.ts";
import { commands as machineCommands, events as machineEvents } from "../../src/commands/machine.ts";
import { haveQemu, startEmu, startQemu, type Peer } from "./harness.ts";
import { entity, fetchReturn, type Info } from "./schema-view.ts";


describe.skipIf(!haveQemu)("introspection vs real QEMU", () => {
  let qemu: Peer;
  let emu: Peer;
  let theirs: Info[];
  let ours: Info[];
  beforeAll(async () => {
    [qemu, emu] = await Promise.all([startQemu(), startEmu()]);
    [theirs, ours] = await Promise.all([fetchReturn(qemu, "query-qmp-schema"), fetchReturn(emu, "query-qmp-schema")]);
  });
  afterAll(async () => {
    await Promise.all([qemu?.stop(), emu?.stop()]);
  });

  const names = [...controlCommands, ...machineCommands, ...hmpCommands].map((c) => c.name).filter((n) => n !== "query-qmp-schema");
  for (const name of names) {
    it(`command ${name}`, () => {
      expect(entity(ours, name)).toEqual(entity(theirs, name));
    });
  }
  for (const ev of machineEvents) {
    it(`event ${ev.name}`, () => {
      expect(entity(ours, ev.name)).toEqual(entity(theirs, ev.name));
    });
  }

  it("query-qmp-schema's own entry and the overall layout", () => {
    const q = entity(ours, "query-qmp-schema") as Info;
    expect(q["meta-type"]).toBe("command");
    expect(ours[0]!["meta-type"]).toBe("command");
    // Types follow the entities; "0" is the empty object, builtins keep their names.
    expect(ours.find((e) => e.name === "0")).toEqual({ name: "0", members: [], "meta-type": "object" });
    expect(ours.filter((e) => e["meta-type"] === "builtin").every((e) => theirs.some((t) => JSON.stringify(t) === JSON.stringify(e)))).toBe(true);
    const metas = new Set(ours.map((e) => e["meta-type"]));
    for (const m of metas) expect(["command", "event", "object", "enum", "array", "builtin", "alternate"]).toContain(m);
  });

  it("query-commands has QEMU's shape and lists every command of the table", async () => {
    const qc = await fetchReturn(emu, "query-commands");
    expect(qc.every((e: Info) => Object.keys(e).join() === "name")).toBe(true);
    const present = new Set(qc.map((e: Info) => e.name));
    for (const n of names) expect(present.has(n)).toBe(true);
  });
});
