/** qtest's text protocol over the VirtualClock. */
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../src/core/clock.ts";
import { QtestServer, qtestSession } from "../../src/cli/qtest.ts";

describe("qtest protocol", () => {
  it("clock_step / clock_set drive the virtual clock and fire its timers", () => {
    const clock = new VirtualClock();
    const q = new QtestServer(clock);
    const fired: number[] = [];
    clock.setTimer(1_000, () => fired.push(clock.nowNs()));
    clock.setTimer(5_000, () => fired.push(clock.nowNs()));
    expect(q.handle("clock_step")).toBe("OK 1000"); // no argument: to the next deadline
    expect(fired).toEqual([1000]);
    expect(q.handle("clock_step 0x10")).toBe("OK 1016");
    expect(q.handle("clock_set 10000")).toBe("OK 10000");
    expect(fired).toHaveLength(2);
    expect(q.handle("clock_set 5")).toBe("OK 10000"); // never backwards
    expect(clock.nowNs()).toBe(10000);
  });

  it("without the qtest accelerator the clock commands are unknown (as in QEMU)", () => {
    const q = new QtestServer(undefined);
    expect(q.handle("clock_step 100")).toBe("FAIL Unknown command 'clock_step'");
    expect(q.handle("clock_set 100")).toBe("FAIL Unknown command 'clock_set'");
  });

  it("answers the rest like a machine without devices", () => {
    const q = new QtestServer(new VirtualClock());
    const table: [string, string][] = [
      ["endianness", "OK little"],
      ["inb 0x80", "OK 0x00ff"],
      ["inl 0x80", "OK 0xffffffff"],
      ["outb 0x80 1", "OK"],
      ["writel 0x1000 0xdeadbeef", "OK"],
      ["readl 0x1000", "OK 0x00000000deadbeef"],
      ["readb 0x1001", "OK 0x00000000000000be"],
      ["read 0x1000 4", "OK 0xefbeadde"],
      ["b64read 0x1000 4", "OK 776t3g=="],
      ["write 0x2000 2 0xa1b2", "OK"],
      ["readw 0x2000", "OK 0x000000000000b2a1"],
      ["b64write 0x3000 3 AQID", "OK"],
      ["read 0x3000 3", "OK 0x010203"],
      ["memset 0x4000 2 0x41", "OK"],
      ["read 0x4000 3", "OK 0x414100"],
      ["write 0x0 1 0", "ERR invalid argument size"],
      ["irq_intercept_in ioapic", "FAIL Unknown device"],
      ["module_load block foo", "FAIL"],
      ["frobnicate 1", "FAIL Unknown command 'frobnicate'"],
      ["readb zz", "FAIL invalid argument"],
    ];
    for (const [cmd, reply] of table) expect(q.handle(cmd), cmd).toBe(reply);
  });

  it("frames lines across chunk boundaries and logs like QEMU", () => {
    const out: string[] = [];
    const log: string[] = [];
    const s = qtestSession(new QtestServer(new VirtualClock()), { write: (t) => out.push(t) }, (l) => log.push(l));
    s.opened();
    const bytes = Buffer.from("endianness\nclock_step 5\n");
    for (let i = 0; i < bytes.length; i++) s.feed(bytes.subarray(i, i + 1));
    s.closed();
    expect(out).toEqual(["OK little\n", "OK 5\n"]);
    expect(log[0]).toMatch(/^\[I \d+\.\d{6}\] OPENED$/);
    expect(log[1]).toMatch(/^\[R \+\d+\.\d{6}\] endianness$/);
    expect(log[2]).toMatch(/^\[S \+\d+\.\d{6}\] OK little$/);
    expect(log[log.length - 1]).toMatch(/CLOSED$/);
  });
});
