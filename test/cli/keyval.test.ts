/**
 * QEMU's keyval and QemuOpts syntaxes. Expected values and error texts were
 * taken from qemu-system-x86_64 7.2 (-blockdev / -name / -chardev runs).
 */
import { describe, expect, it } from "vitest";
import { parseBlockdevArg, parseKeyval } from "../../src/cli/keyval.ts";
import { parseQemuOpts, splitOptItems } from "../../src/cli/qemu-opts.ts";

describe("keyval (-blockdev)", () => {
  const ok: [string, unknown][] = [
    ["driver=qcow2,node-name=n0", { driver: "qcow2", "node-name": "n0" }],
    ["qcow2,node-name=n0", { driver: "qcow2", "node-name": "n0" }],
    ["driver=qcow2,file.driver=file,file.filename=/a.img", { driver: "qcow2", file: { driver: "file", filename: "/a.img" } }],
    ["driver=file,filename=a,,b.img", { driver: "file", filename: "a,b.img" }],
    ["null-co,,x,node-name=n", { driver: "null-co,x", "node-name": "n" }],
    ["driver=null-co,node-name=n,node-name=m", { driver: "null-co", "node-name": "m" }],
    ["driver=null-co,node-name=n,", { driver: "null-co", "node-name": "n" }],
    ["driver=quorum,children.0=a,children.1=b", { driver: "quorum", children: ["a", "b"] }],
    ["driver=x,c.0.driver=file,c.0.filename=f", { driver: "x", c: [{ driver: "file", filename: "f" }] }],
    ["driver=raw,read-only=on,size=1024", { driver: "raw", "read-only": "on", size: "1024" }],
    ["a=", { a: "" }],
  ];
  it.each(ok)("%s", (text, expected) => {
    expect(parseBlockdevArg(text)).toEqual(expected);
  });

  const bad: [string, string][] = [
    ["driver=null-co,node-name=n,=x", "Invalid parameter ''"],
    ["driver=null-co,node-name", "Expected '=' after parameter 'node-name'"],
    ["driver=null-co,a.b=1,a=2", "Parameters 'a.*' used inconsistently"],
    ["driver=null-co,a=2,a.b=1", "Parameters 'a.*' used inconsistently"],
    ["driver=null-co,x.1=a", "Parameter 'x.0' missing"],
    ["driver=null-co,x.0=a,x.b=c", "Parameters 'x.*' used inconsistently"],
    ["driver=null-co,a..b=1", "Invalid parameter 'a..b'"],
    ["driver=null-co,a.=1", "Invalid parameter 'a.'"],
    ["driver=null-co,1a=1", "Invalid parameter '1a'"],
    ["driver=null-co,bad key=1", "Invalid parameter 'bad key'"],
    ['{"driver":"null-co"', "JSON parse error, premature EOI"],
  ];
  it.each(bad)("%s → %s", (text, message) => {
    expect(() => parseBlockdevArg(text)).toThrow(message);
  });

  it("keeps JSON types in the JSON form", () => {
    expect(parseBlockdevArg('{"driver":"null-co","size":1024,"read-only":true}')).toEqual({
      driver: "null-co",
      size: 1024,
      "read-only": true,
    });
  });

  it("takes an implied key only for the first item", () => {
    expect(() => parseKeyval("chardev=a,b", "chardev")).toThrow("Expected '=' after parameter 'b'");
    expect(parseKeyval("mon0,pretty=on", "chardev")).toEqual({ chardev: "mon0", pretty: "on" });
  });
});

describe("QemuOpts (-chardev, -mon, -drive...)", () => {
  it("splits at single commas, ',,' is a comma", () => {
    expect(splitOptItems("a=1,b=x,,y,c")).toEqual(["a=1", "b=x,y", "c"]);
  });

  const cases: [string, string | undefined, [string, string][], boolean][] = [
    ["socket,id=m,path=/s,server=on", "backend", [["backend", "socket"], ["id", "m"], ["path", "/s"], ["server", "on"]], false],
    ["foo,debug-threads", "guest", [["guest", "foo"], ["debug-threads", "on"]], false],
    ["chardev=c,nopretty", "chardev", [["chardev", "c"], ["pretty", "off"]], false],
    ["help", "type", [], true],
    ["none,?", "type", [["type", "none"]], true],
    ["file=a,,b,if=none", undefined, [["file", "a,b"], ["if", "none"]], false],
  ];
  it.each(cases)("%s", (text, implied, pairs, help) => {
    expect(parseQemuOpts(text, implied)).toEqual({ pairs, help });
  });
});
