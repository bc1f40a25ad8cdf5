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

describe.skipIf(!hasQemuSystem)("no-guest commands against QEMU 7.2", { timeout: 120_000 }, () => {
  it("display, input, memory, migration, replay and debugging commands", async () => {
    const dir = (await import("node:fs")).mkdtempSync("/tmp/qmpemu-noguest-");
    const r = await both([
      ["announce-self", { initial: 50, max: 550, rounds: 5, step: 100 }],
      ["announce-self", { initial: 50, max: 550, rounds: 5, step: 100, interfaces: ["x"], id: "a" }],
      ["screendump", { filename: `${dir}/x.ppm` }],
      ["screendump", { filename: `${dir}/x.png`, format: "png" }],
      ["screendump", { filename: `${dir}/x.ppm`, device: "x" }],
      ["screendump", { filename: `${dir}/x.ppm`, head: 1 }],
      ["send-key", { keys: [{ type: "qcode", data: "a" }] }],
      ["send-key", { keys: [{ type: "number", data: 30 }], "hold-time": 10 }],
      ["send-key", { keys: [{ type: "qcode", data: "nope" }] }],
      ["memsave", { val: 0, size: 4096, filename: `${dir}/m` }],
      ["pmemsave", { val: 0, size: 100, filename: `${dir}/pm` }],
      ["pmemsave", { val: 0, size: 100, filename: `${dir}/nodir/pm` }],
      ["dumpdtb", { filename: `${dir}/dtb` }],
      ["set_password", { protocol: "vnc", password: "x" }],
      ["set_password", { protocol: "vnc", password: "x", connected: "fail" }],
      ["set_password", { protocol: "vnc", password: "x", display: "d" }],
      ["set_password", { protocol: "spice", password: "x" }],
      ["expire_password", { protocol: "vnc", time: "now" }],
      ["expire_password", { protocol: "spice", time: "+10" }],
      ["change-vnc-password", { password: "x" }],
      ["add_client", { protocol: "vnc", fdname: "x" }],
      ["client_migrate_info", { protocol: "spice", hostname: "h" }],
      ["client_migrate_info", { protocol: "vnc", hostname: "h" }],
      ["migrate-incoming", { uri: "tcp:127.0.0.1:0" }],
      ["x-query-irq"],
      ["x-query-numa"],
      ["x-query-opcount"],
      ["x-query-profile"],
      ["x-query-ramblock"],
      ["x-query-rdma"],
      ["x-query-roms"],
      ["x-query-usb"],
      ["x-query-virtio"],
      ["display-update", { type: "vnc", addresses: [] }],
      ["display-reload", { type: "vnc", "tls-certs": true }],
      ["rtc-reset-reinjection"],
      ["set-vcpu-dirty-limit", { "dirty-rate": 10 }],
      ["cancel-vcpu-dirty-limit", { "cpu-index": 3 }],
      ["replay-break", { icount: 1 }],
      ["replay-delete-break"],
      ["replay-seek", { icount: 1 }],
      ["sev-inject-launch-secret", { "packet-header": "x", secret: "y" }],
      ["x-colo-lost-heartbeat"],
      ["x-exit-preconfig"],
      ["xen-colo-do-checkpoint"],
      ["xen-set-global-dirty-log", { enable: true }],
      ["xen-set-replication", { enable: true, primary: true }],
      ["xen-set-replication", { enable: true, primary: true, failover: true }],
    ]);
    expect(r.ours).toEqual(r.theirs);
    // Unassigned memory reads as zeros.
    expect((await import("node:fs")).readFileSync(`${dir}/pm`)).toEqual(Buffer.alloc(100));
  });
});

describe.skipIf(!hasQemuSystem)("trace events against QEMU 7.2", { timeout: 120_000 }, () => {
  it("trace-event-get-state / -set-state: names, patterns, unavailable and vCPU events", async () => {
    const get = (name: string, vcpu?: number): Step => ["trace-event-get-state", vcpu === undefined ? { name } : { name, vcpu }];
    const set = (name: string, enable: boolean, more: Record<string, unknown> = {}): Step => ["trace-event-set-state", { name, enable, ...more }];
    const r = await both([
      get("*"),
      get("qmp_*"),
      get("monitor_qmp_cmd_in_band"),
      get("nonexistent"),
      get("qxl_io_write_vga"),
      get("guest_cpu_*"),
      get("monitor_qmp_*", 0),
      set("monitor_qmp_cmd_in_band", true),
      get("monitor_qmp_*"),
      set("nonexistent", true),
      set("nonexistent*", true),
      set("qxl_io_write_vga", true),
      set("qxl_*", true),
      set("qxl_*", true, { "ignore-unavailable": true }),
      get("qxl_i*"),
      set("monitor_?mp_cmd_in_band", false),
      get("monitor_qmp_cmd_in_band"),
      set("guest_cpu_enter", true, { vcpu: 0 }),
      set("*", true, { "ignore-unavailable": true }),
      get("job_*"),
      set("*", false, { "ignore-unavailable": true }),
      get("job_*"),
    ]);
    expect(r.ours).toEqual(r.theirs);
  });
});
