/**
 * Commands that need a guest, against QEMU 7.2's -M none: device_add's
 * refusals for typical and odd requests (aliases, bus, id, non-string
 * driver), in QMP and HMP.
 */
import { describe, expect, it } from "vitest";
import { emulator, hasQemuSystem, realQemu, type Session } from "../block/helpers.ts";

type Step = [string, Record<string, unknown>?];

async function both(steps: Step[]) {
  const run = async (s: Session) => {
    const out: unknown[] = [];
    for (const [cmd, a] of steps) out.push(cmd.startsWith("hmp ") ? await s.hmp(cmd.slice(4)) : await s.q(cmd, a));
    return out;
  };
  const emu = await emulator();
  let ours: unknown[];
  try {
    ours = await run(emu);
  } finally {
    await emu.close();
  }
  const qemu = await realQemu();
  let theirs: unknown[];
  try {
    theirs = await run(qemu);
  } finally {
    await qemu.close();
  }
  return { ours, theirs };
}

describe.skipIf(!hasQemuSystem)("commands without a guest, against QEMU 7.2", { timeout: 120_000 }, () => {
  it("device_add", async () => {
    const dev = (a: Record<string, unknown>): Step => ["device_add", a];
    const r = await both([
      dev({ driver: "x" }),
      dev({}),
      dev({ driver: "virtio-net-pci", id: "net0", netdev: "n0", mac: "52:54:00:12:34:56" }),
      dev({ driver: "virtio-net" }),
      dev({ driver: "e1000-82540em" }),
      dev({ driver: "usb-tablet" }),
      dev({ driver: "virtio-serial-device" }),
      dev({ driver: "isa-serial" }),
      dev({ driver: "pc-dimm", id: "d0" }),
      dev({ driver: "pc-dimm", bus: "x" }),
      dev({ driver: "scsi-hd", drive: "x" }),
      dev({ driver: "virtio-blk-pci", bus: "pci.0", addr: "0x5" }),
      dev({ driver: "vmcoreinfo", bus: "pci.0" }),
      dev({ driver: "help" }),
      dev({ driver: "x", id: "1bad" }),
      dev({ driver: "x", id: 5 }),
      dev({ driver: 1 }),
      dev({ driver: true }),
      dev({ driver: { a: 1 } }),
      dev({ driver: "cpu" }),
      dev({ driver: "device" }),
      dev({ driver: "qemu64-x86_64-cpu" }),
      dev({ driver: "virtconsole" }),
      dev({ driver: "nvme-ns" }),
      ["hmp device_add x"],
      ["hmp device_add virtio-net-pci,id=n1"],
      ["hmp device_add usb-tablet,bus=usb.0"],
    ]);
    expect(r.ours).toEqual(r.theirs);
  });
});
