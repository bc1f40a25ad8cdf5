/** Chardev specs; error texts as qemu-system-x86_64 7.2 prints them. */
import { describe, expect, it } from "vitest";
import { parseChardevOption, parseLegacyChardev } from "../../src/cli/chardev.ts";

describe("legacy chardev strings (-qmp, -qtest)", () => {
  const cases: [string, object][] = [
    ["unix:/tmp/q.sock,server=on,wait=off", { backend: "socket", server: true, wait: false, address: { kind: "unix", path: "/tmp/q.sock" } }],
    ["unix:path=/tmp/q.sock", { backend: "socket", server: false, wait: false, address: { kind: "unix", path: "/tmp/q.sock" } }],
    ["unix:/tmp/q.sock,server=on", { server: true, wait: true }],
    ["tcp:127.0.0.1:4444,server=on,wait=off", { server: true, wait: false, address: { kind: "tcp", host: "127.0.0.1", port: 4444 } }],
    ["tcp::4444,server=on,wait=off", { address: { kind: "tcp", host: "0.0.0.0", port: 4444 } }],
    ["tcp:localhost:4444", { server: false, address: { kind: "tcp", host: "localhost", port: 4444 } }],
    ["stdio", { backend: "stdio" }],
    ["mon:stdio", { backend: "stdio" }],
    ["null", { backend: "null" }],
  ];
  it.each(cases)("%s", (spec, expected) => {
    expect(parseLegacyChardev(spec, "compat_monitor0")).toMatchObject({ id: "compat_monitor0", ...expected });
  });

  it("rejects unknown drivers the way QEMU does (two located lines)", () => {
    try {
      parseLegacyChardev("foo:bar", "compat_monitor0");
      expect.unreachable();
    } catch (e) {
      expect((e as { format(p: string): string }).format("P: ")).toBe(
        "P: 'foo:bar' is not a valid char driver\nP: parse error: foo:bar",
      );
    }
  });
});

describe("-chardev", () => {
  it("socket on an inherited fd, connected or listening", () => {
    expect(parseChardevOption("socket,id=m,fd=3")).toEqual({ id: "m", backend: "socket", server: false, wait: false, address: { kind: "fd", fd: 3 } });
    expect(parseChardevOption("socket,id=m,fd=4,server=on,wait=off")).toMatchObject({ server: true, wait: false, address: { kind: "fd", fd: 4 } });
  });

  const bad: [string, string][] = [
    ["socket,id=x", "Unable to parse FD number "],
    ["bogus,id=x", "'bogus' is not a valid char driver name"],
    ["socket,path=/x", "chardev: no id specified"],
    ["socket,id=m,host=localhost,server=on,wait=off", "chardev: socket: no port given"],
    ["socket,id=m,path=/tmp/zz.sock,server=on,wait=off,bogus=1", "Invalid parameter 'bogus'"],
    ["socket,id=m,path=/s,server=maybe", "Parameter 'server' expects 'on' or 'off'"],
  ];
  it.each(bad)("%s → %s", (text, message) => {
    expect(() => parseChardevOption(text)).toThrow(message);
  });
});
