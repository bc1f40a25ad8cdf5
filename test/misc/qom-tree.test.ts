/**
 * The QOM tree and migration settings without QEMU: path resolution rules,
 * the lazily created /objects, and all-or-nothing settings updates.
 */
import { describe, expect, it } from "vitest";
import { createEmulator } from "../../src/emulator.ts";
import { MigrationSettings } from "../../src/machine-extra/migration.ts";
import { extraState, lookupSecret } from "../../src/machine-extra/state.ts";
import { GHashOrder, gStrHash } from "../../src/qom/ghash-order.ts";
import { resolvePath } from "../../src/qom/object.ts";
import { buildTree } from "../../src/qom/tree.ts";
import { USER_TYPES } from "../../src/qom/user-types.ts";

describe("QOM paths", () => {
  const tree = () => buildTree([{ id: "mon0", addr: { type: "unix", path: "/x.sock" } }]);

  it("resolves absolute paths with empty components and unique partial paths", () => {
    const t = tree();
    expect(resolvePath(t.root, "//machine/").typename).toBe("none-machine");
    expect(resolvePath(t.root, "unattached/sysbus").typename).toBe("System");
    expect(resolvePath(t.root, "mon0").path).toBe("/chardevs/mon0");
    expect(() => resolvePath(t.root, "")).toThrow("Path '' is ambiguous");
    expect(() => resolvePath(t.root, "/machine/nope")).toThrow("Device '/machine/nope' not found");
  });

  it("creates /objects on first use, listed before machine", () => {
    const t = tree();
    expect(t.root.properties().map((p) => p.name)).toEqual(["type", "machine", "chardevs"]);
    t.objects().addChild("io0", USER_TYPES.get("iothread")!.create({}, "io0"));
    expect(t.root.properties().map((p) => p.name)).toEqual(["type", "objects", "machine", "chardevs"]);
    expect(resolvePath(t.root, "io0").getProperty("poll-max-ns")).toBe(32768);
    expect(() => t.objects().addChild("io0", USER_TYPES.get("iothread")!.create({}, "io0"))).toThrow(
      "attempt to add duplicate property 'io0' to object (type 'container')",
    );
  });

  it("checks property values with QEMU's visitor texts", () => {
    const io = USER_TYPES.get("iothread")!.create({}, "io");
    expect(() => io.setProperty("poll-grow", "x")).toThrow("Invalid parameter type for 'poll-grow', expected: integer");
    expect(() => io.setProperty("poll-grow", -1)).toThrow("poll-grow value must be in range [0, 9223372036854775807]");
    expect(() => io.setProperty("type", "x")).toThrow("Property 'iothread.type' is not writable");
    io.setProperty("poll-grow", 3);
    expect(io.getProperty("poll-grow")).toBe(3);
  });
});

describe("GLib hash-table order", () => {
  const listing = (ops: string[]) => {
    const t = new GHashOrder();
    for (const op of ops) op.startsWith("-") ? t.remove(op.slice(1)) : t.insert(op);
    return t.order().reverse();
  };

  it("g_str_hash is djb2 over signed chars", () => {
    expect(gStrHash("")).toBe(5381);
    expect(gStrHash("a")).toBe(5381 * 33 + 97);
    expect(gStrHash("\u00e9")).toBe(((5381 * 33 - 61) * 33 - 87) >>> 0);
  });

  // qom-list /objects answers recorded from QEMU 7.2 after these object-add / failed completions.
  it.each([
    [["io0", "m0", "a0", "s0"], ["io0", "s0", "m0", "a0"]],
    [["ml", "r0", "r1", "t0", "t1", "tc", "mf", "-mf"], ["t1", "r0", "ml", "tc", "t0", "r1"]],
    [
      ["io0", "io1", "s0", "s1", "-s1", "s2", "m0", "t0", "r0", "a0", "tls0"],
      ["tls0", "m0", "a0", "r0", "io0", "s0", "t0", "io1", "s2"],
    ],
  ])("%j lists as QEMU did", (ops, expected) => {
    expect(listing(ops)).toEqual(expected);
  });
});

describe("secrets for other layers", () => {
  it("hands out a secret's bytes, with QEMU's errors otherwise", async () => {
    const emu = createEmulator();
    const objects = extraState(emu).qom.objects();
    objects.addChild("s0", USER_TYPES.get("secret")!.create({ data: "aGVsbG8=", format: "base64" }, "s0"));
    objects.addChild("io0", USER_TYPES.get("iothread")!.create({}, "io0"));
    expect(lookupSecret(emu, "s0").toString()).toBe("hello");
    expect(() => lookupSecret(emu, "nope")).toThrow("No secret with id 'nope'");
    expect(() => lookupSecret(emu, "io0")).toThrow("Object with id 'io0' is not a secret");
    await emu.close();
  });
});

describe("migration settings", () => {
  it("rejects a capability set as a whole and keeps the old state", () => {
    const m = new MigrationSettings();
    m.setCapabilities([{ capability: "xbzrle", state: true }]);
    expect(() => m.setCapabilities([{ capability: "background-snapshot", state: true }])).toThrow(
      "Background-snapshot is not compatible with xbzrle",
    );
    expect(m.capability("background-snapshot")).toBe(false);
    expect(m.capability("xbzrle")).toBe(true);
  });

  it("stores parameters, maps null TLS strings to empty, and leaves failed updates unapplied", () => {
    const m = new MigrationSettings();
    m.setParameters({ "tls-creds": "c", "downtime-limit": 10 });
    m.setParameters({ "tls-creds": null });
    expect(() => m.setParameters({ "max-bandwidth": 5, "compress-level": 10 })).toThrow(
      "Parameter 'compress_level' expects a value between 0 and 9",
    );
    const p = m.parameters();
    expect([p["tls-creds"], p["downtime-limit"], p["max-bandwidth"]]).toEqual(["", 10, 134217728]);
  });
});
