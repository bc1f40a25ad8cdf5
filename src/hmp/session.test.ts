/**
 * The HMP session on an in-process transport (no QEMU needed): banner,
 * type-ahead run one line at a time with the transport paused meanwhile,
 * events never shown, and quit ending the emulator without a new prompt.
 * Byte-for-byte agreement with QEMU is checked in test/cli/hmp-vs-qemu.test.ts.
 */
import { describe, expect, it } from "vitest";
import { createEmulator } from "../emulator.ts";
import type { Transport } from "../qmp/transport.ts";

function fakeTransport() {
  const t = {
    out: "",
    paused: false,
    closed: false,
    pausedDuringCommand: false,
    data: undefined as ((c: Uint8Array) => void) | undefined,
    type(keys: string) {
      t.data!(Buffer.from(keys, "latin1"));
    },
  };
  const transport: Transport = {
    write: (d) => void (t.out += typeof d === "string" ? d : Buffer.from(d).toString("latin1")),
    pause: () => void (t.paused = true),
    resume: () => void (t.paused = false),
    close: () => void (t.closed = true),
    onData: (cb) => void (t.data = cb),
    onClose: () => {},
  };
  return { t, transport };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
const BANNER = "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ";
/** What QEMU's readline echoes for a word typed at an empty prompt. */
function echoOf(word: string): string {
  let out = "";
  for (let i = 1; i <= word.length; i++) out += "\x1b[D".repeat(i - 1) + word.slice(0, i) + "\x1b[K";
  return out;
}

describe("HmpSession", () => {
  it("greets, runs type-ahead one line at a time, in order", async () => {
    const emu = createEmulator();
    const { t, transport } = fakeTransport();
    emu.attachHmp(transport);
    expect(t.out).toBe(BANNER);
    t.type("stop\ninfo status\n");
    // The first line is queued: the monitor stops reading until it has run.
    expect(t.paused).toBe(true);
    expect(t.out).toBe(BANNER + echoOf("stop") + "\r\n");
    await settle();
    expect(t.paused).toBe(false);
    expect(t.out).toBe(BANNER + echoOf("stop") + "\r\n(qemu) " + echoOf("info status") + "\r\nVM status: paused\r\n(qemu) ");
    await emu.close();
    expect(t.closed).toBe(true);
  });

  it("shows no events; quit ends the emulator without a prompt", async () => {
    const emu = createEmulator();
    const { t, transport } = fakeTransport();
    emu.attachHmp(transport);
    const qmp = emu.connect();
    await qmp.execute("qmp_capabilities");
    await qmp.execute("stop");
    await settle();
    expect(t.out).toBe(BANNER);
    t.type("quit\n");
    expect(await emu.whenQuit).toBe("host-qmp-quit");
    expect(t.out).toBe(BANNER + echoOf("quit") + "\r\n");
    expect(t.closed).toBe(true);
  });
});
