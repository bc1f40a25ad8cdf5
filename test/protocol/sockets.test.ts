/**
 * Socket monitors: one client at a time per socket (later ones wait for the
 * greeting), fresh greeting and negotiation on reconnect, stale unix socket
 * files replaced, files removed on close, tcp, quit ending the connection.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createEmulator, type Emulator } from "../../src/emulator.ts";
import { LineClient } from "./harness.ts";

let emu: Emulator | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await emu?.close();
  emu = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-sock-"));
  dirs.push(d);
  return d;
}

async function cmd(c: LineClient, msg: { id: unknown; [k: string]: unknown }): Promise<any> {
  c.send(JSON.stringify(msg));
  const lines = await c.until((m) => m && m.id === msg.id);
  return lines.at(-1);
}

describe("socket monitors", () => {
  it("serves one client at a time; the next gets its greeting when the first leaves", async () => {
    const sock = path.join(tmp(), "qmp.sock");
    fs.writeFileSync(sock, "stale"); // a leftover file is replaced, like QEMU
    emu = createEmulator({ monitors: [{ chardev: { kind: "unix", path: sock } }] });
    await emu.listen();
    const a = await LineClient.connect(sock);
    expect(JSON.parse((await a.line())!)).toHaveProperty("QMP.capabilities", ["oob"]);
    const b = await LineClient.connect(sock);
    b.send('{"execute":"qmp_capabilities","id":"b"}');
    expect(await b.line(200)).toBeUndefined();
    expect((await cmd(a, { execute: "qmp_capabilities", id: "a" })).return).toEqual({});
    a.close();
    // b: greeting, then the request it sent while waiting is answered.
    expect(JSON.parse((await b.line())!)).toHaveProperty("QMP");
    expect(JSON.parse((await b.line())!)).toEqual({ return: {}, id: "b" });
    b.close();
    // Reconnect: fresh greeting, negotiation again.
    const c = await LineClient.connect(sock);
    expect(JSON.parse((await c.line())!)).toHaveProperty("QMP");
    expect((await cmd(c, { execute: "query-status", id: 1 })).error.desc).toBe(
      "Expecting capabilities negotiation with 'qmp_capabilities'",
    );
    c.close();
    await emu.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  it("keeps monitors independent and broadcasts events to negotiated ones", async () => {
    const d = tmp();
    emu = createEmulator({
      monitors: [
        { chardev: { kind: "unix", path: path.join(d, "a.sock") } },
        { chardev: { kind: "tcp", host: "127.0.0.1", port: 0 } },
        { chardev: { kind: "unix", path: path.join(d, "c.sock") }, pretty: true },
      ],
    });
    await emu.listen();
    const a = await LineClient.connect(path.join(d, "a.sock"));
    const tcp = net.connect(emu.tcpPorts[0]!, "127.0.0.1");
    await new Promise((r) => tcp.once("connect", r));
    const b = new LineClient(tcp);
    const c = await LineClient.connect(path.join(d, "c.sock"));
    await a.line();
    await b.line();
    expect(await c.line()).toBe("{");
    await cmd(a, { execute: "qmp_capabilities", id: 1 });
    await cmd(b, { execute: "qmp_capabilities", arguments: { enable: ["oob"] }, id: 1 });
    expect((await cmd(a, { execute: "query-yank", id: 2 })).return).toEqual([
      { type: "chardev", id: "compat_monitor0" },
      { type: "chardev", id: "compat_monitor1" },
      { type: "chardev", id: "compat_monitor2" },
    ]);
    await cmd(a, { execute: "stop", id: 3 });
    const ev = await b.until((m) => m && m.event === "STOP");
    expect(ev.at(-1)).toEqual({ event: "STOP", timestamp: "<ts>" });
    // b negotiated OOB, a did not.
    b.send('{"exec-oob":"migrate-pause","id":4}');
    expect((await b.until((m) => m && m.id === 4)).at(-1).error.desc).toMatch(/postcopy-active/);
    a.send('{"exec-oob":"migrate-pause","id":4}');
    expect((await a.until((m) => m && m.id === 4)).at(-1).error.desc).toBe("QMP input member 'exec-oob' is unexpected");
    for (const x of [a, b, c]) x.close();
  });

  it("quit: SHUTDOWN, reply (QEMU 7.2's order), then the connection ends and whenQuit resolves", async () => {
    const sock = path.join(tmp(), "q.sock");
    emu = createEmulator({ monitors: [{ chardev: { kind: "unix", path: sock } }] });
    await emu.listen();
    const a = await LineClient.connect(sock);
    await a.line();
    await cmd(a, { execute: "qmp_capabilities", id: 0 });
    a.send('{"execute":"quit","id":"bye"}');
    expect(JSON.parse((await a.line())!)).toMatchObject({ event: "SHUTDOWN", data: { guest: false, reason: "host-qmp-quit" } });
    expect(JSON.parse((await a.line())!)).toEqual({ return: {}, id: "bye" });
    expect(await a.line()).toBeUndefined();
    expect(a.eof).toBe(true);
    expect(await emu.whenQuit).toBe("host-qmp-quit");
    expect(fs.existsSync(sock)).toBe(false);
  });
});
