/**
 * Ordering and flow control of the shared in-band dispatcher, driven through
 * whole in-process sessions. A test-only command ("x-test-gate", added to
 * this emulator's table only) blocks until the test opens its gate, so
 * "a request is executing" is a state the test controls.
 */
import { afterEach, describe, expect, it } from "vitest";
import { defineCommand } from "../commands/command.ts";
import { str, struct } from "../commands/qapi.ts";
import { createEmulator, type Emulator } from "../emulator.ts";
import type { InProcessClient } from "./in-process.ts";

interface Gate {
  open(): void;
  wait: Promise<void>;
}

function gatedEmulator() {
  const emu = createEmulator();
  const gates: Gate[] = [];
  const log: string[] = [];
  const newGate = (): Gate => {
    let open!: () => void;
    const wait = new Promise<void>((r) => (open = r));
    return { open, wait };
  };
  emu.commands.set(
    "x-test-gate",
    defineCommand({
      name: "x-test-gate",
      args: struct("gate-arg", { tag: str() }),
      handler: async ({ tag }) => {
        log.push(`start ${tag}`);
        const g = newGate();
        gates.push(g);
        await g.wait;
        log.push(`end ${tag}`);
        return tag;
      },
    }),
  );
  emu.commands.set(
    "x-test-log",
    defineCommand({ name: "x-test-log", args: struct("log-arg", { tag: str() }), handler: ({ tag }) => void log.push(tag) }),
  );
  return { emu, gates, log };
}

const tick = () => new Promise((r) => setImmediate(r));

async function negotiated(emu: Emulator, oob: boolean): Promise<InProcessClient> {
  const c = emu.connect();
  await c.next((m) => "QMP" in m);
  c.send(oob ? { execute: "qmp_capabilities", arguments: { enable: ["oob"] } } : { execute: "qmp_capabilities" });
  await c.next((m) => "return" in m);
  return c;
}

const gate = (tag: string, id = tag) => JSON.stringify({ execute: "x-test-gate", arguments: { tag }, id });

let current: Emulator | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

describe("dispatcher", () => {
  it("OOB off: one request queued at a time, the rest waits unread", async () => {
    const { emu, gates } = gatedEmulator();
    current = emu;
    const c = await negotiated(emu, false);
    c.sendRaw(gate("a") + gate("b") + gate("c"));
    await tick();
    expect(gates).toHaveLength(1);
    expect(c.serverPaused).toBe(true);
    gates[0]!.open();
    expect(await c.next((m) => m.id === "a")).toEqual({ return: "a", id: "a" });
    await tick();
    expect(gates).toHaveLength(2);
    expect(c.serverPaused).toBe(true);
    gates[1]!.open();
    await tick();
    gates[2]!.open();
    expect(await c.next((m) => m.id === "c")).toEqual({ return: "c", id: "c" });
  });

  it("OOB on: exec-oob is answered while an in-band command runs, and overtakes queued replies", async () => {
    const { emu, gates } = gatedEmulator();
    current = emu;
    const c = await negotiated(emu, true);
    c.sendRaw(gate("a") + gate("b") + JSON.stringify({ "exec-oob": "query-yank", id: "oob" }));
    const oob = await c.next((m) => m.id === "oob");
    expect(oob).toEqual({ return: [], id: "oob" });
    expect(gates).toHaveLength(1); // "a" still running, "b" queued
    gates[0]!.open();
    await c.next((m) => m.id === "a");
    await tick();
    gates[1]!.open();
    await c.next((m) => m.id === "b");
    expect(c.rawLines.slice(1).map((l) => JSON.parse(l).id)).toEqual([undefined, "oob", "a", "b"]);
  });

  it("OOB on: at most 8 queued; then the monitor stops reading and exec-oob waits its turn", async () => {
    const { emu, gates } = gatedEmulator();
    current = emu;
    const c = await negotiated(emu, true);
    // 1 running + 8 queued; the 10th in-band request and the exec-oob stay unread.
    let input = "";
    for (let i = 0; i < 10; i++) input += gate(`g${i}`);
    input += JSON.stringify({ "exec-oob": "query-yank", id: "oob" });
    c.sendRaw(input);
    await tick();
    expect(gates).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(c.drain().some((m) => m.id === "oob")).toBe(false);
    // Taking g1 out of the queue frees a slot: g9 is read, the queue is full again.
    gates[0]!.open();
    await c.next((m) => m.id === "g0");
    await tick();
    expect(c.drain().some((m) => m.id === "oob")).toBe(false);
    // Draining one more lets the reader reach the exec-oob, before g2 finishes.
    gates[1]!.open();
    await c.next((m) => m.id === "g1");
    const oob = await c.next((m) => m.id === "oob");
    expect(oob.return).toEqual([]);
    for (let i = 2; i < 10; i++) {
      await tick();
      gates[i]!.open();
      await c.next((m) => m.id === `g${i}`);
    }
    // Nothing was dropped.
    expect(gates).toHaveLength(10);
  });

  it("runs synchronous commands as soon as they are read", async () => {
    const { emu, log } = gatedEmulator();
    current = emu;
    const [a, b] = await Promise.all([negotiated(emu, true), negotiated(emu, true)]);
    const logReq = (tag: string) => JSON.stringify({ execute: "x-test-log", arguments: { tag }, id: tag });
    a.sendRaw(logReq("a1") + logReq("a2") + logReq("a3"));
    b.sendRaw(logReq("b1") + logReq("b2") + logReq("b3"));
    await a.next((m) => m.id === "a3");
    await b.next((m) => m.id === "b3");
    // a's requests were parsed first and ran synchronously; b joined the rotation after.
    expect(log).toEqual(["a1", "a2", "a3", "b1", "b2", "b3"]);
  });

  it("round robin while the dispatcher is busy", async () => {
    const { emu, log, gates } = gatedEmulator();
    current = emu;
    const [a, b, z] = await Promise.all([negotiated(emu, true), negotiated(emu, true), negotiated(emu, true)]);
    z.sendRaw(gate("hold"));
    await tick();
    const logReq = (tag: string) => JSON.stringify({ execute: "x-test-log", arguments: { tag }, id: tag });
    a.sendRaw(logReq("a1") + logReq("a2") + logReq("a3"));
    b.sendRaw(logReq("b1") + logReq("b2") + logReq("b3"));
    gates[0]!.open();
    await a.next((m) => m.id === "a3");
    await b.next((m) => m.id === "b3");
    expect(log).toEqual(["start hold", "end hold", "a1", "b1", "a2", "b2", "a3", "b3"]);
  });

  it("keeps parse errors in position among in-band replies", async () => {
    const { emu } = gatedEmulator();
    current = emu;
    const c = await negotiated(emu, true);
    c.sendRaw('{"execute":"query-status","id":1}{"id":TRUE}{"execute":"query-name","id":2}');
    await c.next((m) => m.id === 2);
    expect(c.rawLines.slice(2)).toEqual([
      '{"return": {"status": "running", "singlestep": false, "running": true}, "id": 1}',
      '{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'T\'"}}',
      '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}',
      '{"return": {}, "id": 2}',
    ]);
  });

  it("on disconnect: queued requests are dropped, a running one completes without a reply", async () => {
    const { emu, gates, log } = gatedEmulator();
    current = emu;
    const c = await negotiated(emu, true);
    c.sendRaw(gate("run") + JSON.stringify({ execute: "x-test-log", arguments: { tag: "never" } }));
    await tick();
    c.close();
    gates[0]!.open();
    await tick();
    await tick();
    expect(log).toEqual(["start run", "end run"]);
    expect(c.rawLines.some((l) => l.includes('"run"'))).toBe(false);
    // The emulator carries on for the next client, which gets a fresh greeting.
    const d = emu.connect();
    expect(await d.next()).toHaveProperty("QMP");
    d.send({ execute: "query-status", id: 1 });
    expect(await d.next()).toHaveProperty("error.desc", "Expecting capabilities negotiation with 'qmp_capabilities'");
  });

  it("delivers events only to negotiated monitors, between whole lines", async () => {
    const { emu } = gatedEmulator();
    current = emu;
    const neg = await negotiated(emu, false);
    const raw = emu.connect();
    await raw.next((m) => "QMP" in m);
    neg.send({ execute: "stop", id: "s" });
    await neg.next((m) => m.id === "s");
    expect(neg.rawLines.at(-2)).toMatch(/^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "STOP"\}$/);
    expect(raw.drain()).toEqual([]);
  });
});
