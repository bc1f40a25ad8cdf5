/**
 * query-qmp-schema vs real QEMU 7.2 for every command and event of the
 * machine-extra, no-devices, migration, QOM and chardev modules: the SchemaInfo entries must
 * have the same structure once masked type names are resolved.
 */
import { describe, expect, it } from "vitest";
import { commands as extraCommands, events as extraEvents } from "../../src/commands/machine-extra.ts";
import { commands as migrationCommands } from "../../src/commands/migration.ts";
import { commands as noDeviceCommands } from "../../src/commands/no-devices.ts";
import { commands as qomCommands } from "../../src/commands/qom.ts";
import { commands as chardevCommands } from "../../src/commands/chardev.ts";
import { commands as deviceCommands } from "../../src/commands/devices.ts";
import { commands as noGuestCommands } from "../../src/commands/no-guest.ts";
import { commands as traceCommands } from "../../src/commands/trace-events.ts";
import { haveQemu } from "../protocol/harness.ts";
import { bothSchemas, entity, fetchReturn, type Info } from "../protocol/schema-view.ts";


/**
 * Where qmpemu's schema is knowingly narrower than QEMU's: object-add has
 * variants only for the emulated types (checked separately below), and
 * query-pci lacks the recursive pci_bridge member.
 */
const NARROWER = new Set(["object-add", "query-pci"]);

describe.skipIf(!haveQemu)("machine-extra / migration / QOM introspection vs real QEMU", () => {
  const schemas = bothSchemas();

  const names = [...extraCommands, ...noDeviceCommands, ...migrationCommands, ...qomCommands, ...chardevCommands, ...deviceCommands, ...noGuestCommands, ...traceCommands].map((c) => c.name);
  for (const name of names.filter((n) => !NARROWER.has(n))) {
    it(`command ${name}`, () => {
      expect(entity(schemas.ours(), name, { coarse: true })).toEqual(entity(schemas.theirs(), name, { coarse: true }));
    });
  }
  for (const ev of extraEvents) {
    it(`event ${ev.name}`, () => {
      expect(entity(schemas.ours(), ev.name, { coarse: true })).toEqual(entity(schemas.theirs(), ev.name, { coarse: true }));
    });
  }

  it("object-add: QEMU's ObjectType enum; the emulated types' members exactly as QEMU's", () => {
    const o = entity(schemas.ours(), "object-add", { coarse: true }) as Info;
    const t = entity(schemas.theirs(), "object-add", { coarse: true }) as Info;
    expect(o["arg-type"].members).toEqual(t["arg-type"].members);
    for (const v of o["arg-type"].variants) {
      expect(v).toEqual(t["arg-type"].variants.find((x: Info) => x.case === v.case));
    }
  });

  it("query-events stays absent, query-commands lists every new command", async () => {
    expect(entity(schemas.ours(), "query-events", { coarse: true })).toBeUndefined();
    const present = new Set((await fetchReturn(schemas.emu(), "query-commands")).map((e: Info) => e.name));
    for (const n of names) expect(present.has(n)).toBe(true);
  });
});
