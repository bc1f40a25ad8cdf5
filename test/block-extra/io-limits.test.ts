/**
 * block_set_io_throttle, block-latency-histogram-set and change-backing-file
 * against QEMU 7.2 (-M none with -drive backends and -blockdev nodes), the
 * backend limits on a VirtualClock, and the three commands' schemas.
 */
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import type { VirtualClock } from "../../src/core/clock.ts";
import { guestWrite, openIoTarget } from "../../src/block/guest-io.ts";
import { driveOpts, emulator, hasQemuSystem, keyval, normalise, realQemu, runOnVirtualClock, settle, sh, tmpDir, type Session } from "../block/helpers.ts";
import { haveQemu } from "../protocol/harness.ts";
import { bothSchemas, entity } from "../protocol/schema-view.ts";

const MiB = 1 << 20;
const d = tmpDir();
afterAll(() => d.cleanup());

type Conversation = (s: Session, q: (cmd: string, args?: Record<string, unknown>) => Promise<void>) => Promise<void>;

/** Runs `talk` on our emulator and on QEMU with the same command line; both transcripts, normalised. */
async function both(cli: { drive?: string[]; blockdev?: string[] }, talk: Conversation, prepare?: () => void) {
  const run = async (s: Session) => {
    const out: unknown[] = [];
    await talk(s, async (cmd, args) => void out.push([cmd, args, await s.q(cmd, args)]));
    return normalise(out);
  };
  prepare?.();
  const ours = await emulator({ drives: (cli.drive ?? []).map(driveOpts), blockdevs: (cli.blockdev ?? []).map(keyval) });
  let mine: unknown;
  try {
    mine = await run(ours);
  } finally {
    await ours.close();
  }
  prepare?.();
  const qemu = await realQemu([...(cli.drive ?? []).flatMap((x) => ["-drive", x]), ...(cli.blockdev ?? []).flatMap((x) => ["-blockdev", x])]);
  let theirs: unknown;
  try {
    theirs = await run(qemu);
  } finally {
    await qemu.close();
  }
  return { mine, theirs };
}

const ZERO = { bps: 0, bps_rd: 0, bps_wr: 0, iops: 0, iops_rd: 0, iops_wr: 0 };
const hmp = (line: string) => ["human-monitor-command", { "command-line": line }] as const;

describe.skipIf(!hasQemuSystem)("block_set_io_throttle against QEMU 7.2", { timeout: 60_000 }, () => {
  const DRIVES = { drive: ["if=none,id=drive0,driver=null-co", "if=none,id=drive1", "if=none,id=drive2,driver=null-co"], blockdev: ["driver=null-co,node-name=n0"] };

  it("lookup and validation errors, in QEMU's order and words", async () => {
    const r = await both(DRIVES, async (_s, q) => {
      const t = (args: Record<string, unknown>) => q("block_set_io_throttle", { device: "drive0", ...ZERO, ...args });
      await t({ id: "x" });
      await q("block_set_io_throttle", { ...ZERO, bps: 1 });
      await q("block_set_io_throttle", { ...ZERO, id: "x", bps: 1 });
      await q("block_set_io_throttle", { ...ZERO, id: "/machine", bps: 1 });
      await q("block_set_io_throttle", { ...ZERO, id: "/machine/nothing", bps: 1 });
      await t({ device: "nope" });
      await t({ device: "n0", bps: 1 });
      await t({ device: "drive1", bps: -1 });
      await t({ bps: -1 });
      await t({ iops_wr: 1000000000000001 });
      await t({ bps: 1000000000000000 });
      await t({ bps: 1, bps_rd: 1 });
      await t({ iops: 1, iops_wr: 1 });
      await t({ iops_max: 5, iops_rd_max: 6, iops: 1 });
      await t({ bps_max: 5 });
      await t({ bps: 10, bps_max: 5 });
      await t({ bps: 10, bps_max_length: 5 });
      await t({ bps: 10, bps_max_length: 0 });
      await t({ bps: 10, bps_max: 20, bps_max_length: -1 });
      await t({ bps: 10, bps_max: 20, bps_max_length: 50000000000000 });
      await t({ bps: 10, iops_size: 512 });
      await t({ iops_size: 512 });
      await t({ iops: 1, iops_size: -1 });
      await q("query-block");
    });
    expect(r.mine).toEqual(r.theirs);
  });

  it("query-block, query-named-block-nodes and info block show the limits; groups are shared; zeros disable", async () => {
    const r = await both(DRIVES, async (_s, q) => {
      const t = (args: Record<string, unknown>) => q("block_set_io_throttle", { ...ZERO, ...args });
      await t({ device: "drive0", bps: 100, iops: 5, bps_max: 200, iops_size: 4096 });
      await t({ device: "drive2", bps_rd: 7, bps_wr: 8, iops_rd: 1, iops_wr: 2, bps_rd_max: 14, bps_rd_max_length: 3, iops_wr_max: 3, group: "g2" });
      await q("query-block");
      await q("query-named-block-nodes");
      await q(...hmp("info block"));
      // drive0 joins g2: one group, the last limits set win for both.
      await t({ device: "drive0", iops: 7, group: "g2" });
      await q(...hmp("info block"));
      await q("object-add", { "qom-type": "throttle-group", id: "g2" });
      // Without a group a later call keeps the current one.
      await t({ device: "drive2", bps: 9 });
      await q(...hmp("info block"));
      // A group made by object-add: the backend's limits become the object's.
      await q("object-add", { "qom-type": "throttle-group", id: "tg0", limits: { "bps-total": 5000 } });
      await t({ device: "drive2", iops: 9, group: "tg0" });
      await q("qom-get", { path: "/objects/tg0", property: "limits" });
      await q("object-del", { id: "tg0" });
      await q(...hmp("info block"));
      await t({ device: "drive2" });
      await q("object-del", { id: "tg0" });
      await t({ device: "drive0", group: "g2" });
      await q("object-add", { "qom-type": "throttle-group", id: "g2" });
      await q("query-block");
      await q(...hmp("info block"));
    });
    expect(r.mine).toEqual(r.theirs);
  });

  it("HMP block_set_io_throttle: expressions, errors, device name or id", async () => {
    const r = await both(DRIVES, async (_s, q) => {
      for (const line of [
        "block_set_io_throttle drive0 0 1 2 3 4 5",
        "block_set_io_throttle drive0 1 0 0 4 0 0",
        "info block drive0",
        "block_set_io_throttle drive0 (1+2)*3 0 0 0x10-1 0 0",
        "info block drive0",
        "block_set_io_throttle nope 1 0 0 4 0 0",
        "block_set_io_throttle /machine 1 0 0 4 0 0",
        "block_set_io_throttle drive1 1 0 0 4 0 0",
        "block_set_io_throttle drive0 -1 0 0 4 0 0",
        "block_set_io_throttle drive0 1k 0 0 4 0 0",
        "block_set_io_throttle drive0 1 0 0 4 0",
        "block_set_io_throttle drive0 1 0 0 4 0 0 7",
        "block_set_io_throttle drive0",
        "block_set_io_throttle drive0 0 0 0 0 0 0",
        "info block drive0",
      ]) {
        await q(...hmp(line));
      }
    });
    expect(r.mine).toEqual(r.theirs);
  });
});

describe.skipIf(!hasQemuSystem)("block-latency-histogram-set and change-backing-file against QEMU 7.2", { timeout: 60_000 }, () => {
  it("block-latency-histogram-set: -M none has no device to name", async () => {
    const r = await both({ drive: ["if=none,id=drive0,driver=null-co"] }, async (_s, q) => {
      await q("block-latency-histogram-set", { id: "drive0" });
      await q("block-latency-histogram-set", { id: "drive0", boundaries: [10, 5] });
      await q("block-latency-histogram-set", { id: "/machine" });
      await q("block-latency-histogram-set", { id: "/machine/unattached/sysbus", "boundaries-read": [1] });
      await q("block-latency-histogram-set", { id: "/nope" });
      await q("query-blockstats");
    });
    expect(r.mine).toEqual(r.theirs);
  });

  it("change-backing-file: errors, backing-file names in the header and in the queries", async () => {
    const prepare = () => {
      for (const f of fs.readdirSync(d.dir)) fs.rmSync(d.file(f));
      sh(
        "qemu-img create -q -f raw base.raw 16M && qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2 && " +
          "qemu-img create -q -f qcow2 -b ov.qcow2 -F qcow2 top.qcow2 && qemu-img create -q -f qcow2 other.qcow2 16M",
        d.dir,
      );
    };
    const blockdev = [
      `driver=file,filename=${d.file("base.raw")},node-name=bf`, "driver=raw,file=bf,node-name=base",
      `driver=file,filename=${d.file("ov.qcow2")},node-name=of`, "driver=qcow2,file=of,node-name=ov,backing=base",
      `driver=file,filename=${d.file("top.qcow2")},node-name=tf`, "driver=qcow2,file=tf,node-name=top,backing=ov",
      `driver=file,filename=${d.file("other.qcow2")},node-name=xf`, "driver=qcow2,file=xf,node-name=other",
    ];
    const headers: string[] = [];
    const r = await both({ blockdev, drive: ["if=none,id=drive1"] }, async (_s, q) => {
      const c = (device: string, node: string, file: string) => q("change-backing-file", { device, "image-node-name": node, "backing-file": file });
      await c("nope", "ov", "x");
      await c("drive1", "ov", "x");
      await c("ov", "ov", "x");
      await c("top", "nope", "x");
      await c("top", "base", "x");
      await c("top", "other", "x");
      await c("other", "ov", "x");
      await c("top", "tf", "x");
      await c("top", "ov", "y".repeat(1024));
      await c("top", "ov", "y".repeat(1023));
      await q("query-named-block-nodes", { flat: true });
      await c("top", "ov", d.file("new-base.raw"));
      await c("top", "top", "renamed-ov.qcow2");
      await q("query-named-block-nodes");
      await q("query-block");
      headers.push(sh(`qemu-img info -U ov.qcow2 | grep backing; qemu-img info -U top.qcow2 | grep backing`, d.dir));
    }, prepare);
    expect(r.mine).toEqual(r.theirs);
    expect(headers[0]).toEqual(headers[1]);
    expect(headers[0]).toContain("renamed-ov.qcow2");
    // The image is still sound after its header changed.
    const check = (f: string) => `qemu-img check -q 'json:{"driver":"qcow2","backing":null,"file":{"driver":"file","filename":"${f}"}}'`;
    expect(sh(`${check("top.qcow2")} && ${check("ov.qcow2")} && echo clean`, d.dir).trim()).toBe("clean");
  });

  it("change-backing-file on a -drive chain reopens the read-only backing image read-write and back", async () => {
    const prepare = () => {
      for (const f of fs.readdirSync(d.dir)) fs.rmSync(d.file(f));
      sh("qemu-img create -q -f raw base.raw 16M && qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2 && qemu-img create -q -f qcow2 -b ov.qcow2 -F qcow2 top.qcow2", d.dir);
    };
    const headers: string[] = [];
    const r = await both({ drive: [`if=none,id=drive0,file=${d.file("top.qcow2")},node-name=top`] }, async (s, q) => {
      const nodes = (await s.q("query-named-block-nodes")).return as { "node-name": string; file: string; drv: string }[];
      const ov = nodes.find((n) => n.file.endsWith("ov.qcow2") && n.drv === "qcow2")!["node-name"];
      await q("change-backing-file", { device: "drive0", "image-node-name": ov, "backing-file": "base-renamed.raw" });
      await q("query-block");
      await q(...hmp("qemu-io drive0 \"read 0 64k\""));
      headers.push(sh("qemu-img info -U ov.qcow2 | grep backing", d.dir));
    }, prepare);
    expect(r.mine).toEqual(r.theirs);
    expect(headers[0]).toEqual(headers[1]);
  });
});

// ---- Backend limits on a virtual clock ---------------------------------------------------------

type VEmu = Awaited<ReturnType<typeof emulator>> & { clock: VirtualClock };

async function drives(names: string[]): Promise<VEmu> {
  const s = await emulator({ clock: "virtual", drives: names.map((n) => driveOpts(`if=none,id=${n},driver=null-co`)) });
  return Object.assign(s, { clock: s.emu.clock as VirtualClock });
}

/** Guest requests one after another on backend `device`: completion times in seconds (two decimals). */
async function sequence(s: VEmu, device: string, op: string, count: number, length: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const r = await s.q("x-qmpemu-guest-io", { device, op, offset: i * length, length });
    expect(r).toEqual({ return: { bytes: length, ok: true } });
    times.push(Math.round(s.clock.nowNs() / 1e7) / 100);
  }
  return times;
}

const throttle = (s: Session, device: string, args: Record<string, unknown>) => s.q("block_set_io_throttle", { device, ...ZERO, ...args });

describe("backend I/O limits on a virtual clock", () => {
  it("bps=1 MiB/s: 1 MiB writes go at 0, 0.9, 1.9, 2.9 s; without limits at once", async () => {
    const s = await drives(["drive0", "drive1"]);
    expect(await throttle(s, "drive0", { bps: MiB })).toEqual({ return: {} });
    expect(await runOnVirtualClock(s, sequence(s, "drive0", "write", 4, MiB))).toEqual([0, 0.9, 1.9, 2.9]);
    // The other backend is not limited.
    expect(await sequence(s, "drive1", "write", 4, MiB)).toEqual([2.9, 2.9, 2.9, 2.9]);
    await s.close();
  });

  it("read and write limits apply to their direction; discards and flushes are not throttled", async () => {
    const s = await drives(["drive0"]);
    await throttle(s, "drive0", { bps_rd: MiB });
    expect(await runOnVirtualClock(s, sequence(s, "drive0", "write", 3, MiB))).toEqual([0, 0, 0]);
    expect(await runOnVirtualClock(s, sequence(s, "drive0", "read", 3, MiB))).toEqual([0, 0.9, 1.9]);
    await throttle(s, "drive0", { bps_wr: MiB });
    const t0 = s.clock.nowNs() / 1e9;
    const zeroes = await runOnVirtualClock(s, sequence(s, "drive0", "zero", 3, MiB));
    expect(zeroes.map((t) => Math.round((t - t0) * 100) / 100)).toEqual([0, 0.9, 1.9]);
    const t1 = s.clock.nowNs() / 1e9;
    expect((await runOnVirtualClock(s, sequence(s, "drive0", "discard", 4, MiB))).every((t) => t === Math.round(t1 * 100) / 100)).toBe(true);
    await s.close();
  });

  it("qemu-io through a throttled backend waits too; iops counts a long write once", async () => {
    const s = await drives(["drive0"]);
    await throttle(s, "drive0", { iops: 10 });
    const started = s.clock.nowNs();
    // 1 MiB goes down in 256 KiB pieces but is one request: twenty of them take 1.8 s, not 7.8 s.
    const all = (async () => {
      for (let i = 0; i < 20; i++) await s.hmp(`qemu-io drive0 "write ${i * MiB} 1M"`);
    })();
    await runOnVirtualClock(s, all);
    expect(Math.round((s.clock.nowNs() - started) / 1e8) / 10).toBe(1.8);
    await s.close();
  });

  it("two backends in one group share its budget; a throttle node on an object-add'ed group shares it too", async () => {
    const s = await drives(["drive0", "drive2"]);
    await throttle(s, "drive0", { bps: MiB, group: "g" });
    await throttle(s, "drive2", { bps: MiB, group: "g" });
    const [a, b] = await runOnVirtualClock(s, Promise.all([sequence(s, "drive0", "write", 2, MiB), sequence(s, "drive2", "write", 2, MiB)]));
    expect([...a!, ...b!].sort((x, y) => x - y)).toEqual([0, 0.9, 1.9, 2.9]);
    await s.close();

    const t = await drives(["drive0"]);
    await t.q("object-add", { "qom-type": "throttle-group", id: "tg0", limits: { "bps-total": 5 * MiB } });
    await t.q("blockdev-add", { driver: "throttle", "node-name": "t0", "throttle-group": "tg0", file: { driver: "null-co" } });
    // The backend's limits replace the group's: 1 MiB/s for the node too.
    await throttle(t, "drive0", { bps: MiB, group: "tg0" });
    const node = (async () => {
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        await t.q("x-qmpemu-guest-io", { node: "t0", op: "write", offset: i * MiB, length: MiB });
        times.push(Math.round(t.clock.nowNs() / 1e7) / 100);
      }
      return times;
    })();
    const [c, e] = await runOnVirtualClock(t, Promise.all([sequence(t, "drive0", "write", 2, MiB), node]));
    expect([...c!, ...e!].sort((x, y) => x - y)).toEqual([0, 0.9, 1.9, 2.9]);
    await t.close();
  });

  it("all zeros disable the limits and let a held request go at once", async () => {
    const s = await drives(["drive0"]);
    await throttle(s, "drive0", { bps: MiB });
    await sequence(s, "drive0", "write", 1, MiB);
    let done = false;
    // A guest request straight on the block layer (a QMP command would hold the monitor's queue meanwhile).
    const target = openIoTarget(s.emu.block, "drive0");
    const held = guestWrite(target, new Uint8Array(MiB), 0).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    expect(await throttle(s, "drive0", {})).toEqual({ return: {} });
    await settle();
    await held;
    expect(s.clock.nowNs()).toBe(0);
    expect(await sequence(s, "drive0", "write", 3, MiB)).toEqual([0, 0, 0]);
    await s.close();
  });
});

describe("latency histograms from guest I/O accounting", () => {
  it("counts each request's latency into its bin; read/write/flush separately; no arguments clear them", async () => {
    const s = await drives(["drive0"]);
    // -M none has no guest device; give the backend one so the command can name it.
    s.emu.block.findBackend("drive0")!.attachedDevice = "dev0";
    expect(await s.q("block-latency-histogram-set", { id: "dev0", boundaries: [0, 1] })).toEqual({
      error: { class: "GenericError", desc: "Device 'dev0' set read boundaries fail" },
    });
    expect((await s.q("block-latency-histogram-set", { id: "dev0", boundaries: [100e6, 500e6], "boundaries-write": [5, 5] })).error.desc).toBe(
      "Device 'dev0' set write boundaries fail",
    );
    // Throttled writes take measurable virtual time: 0, 0.9 and 1.9 s after they were issued.
    await throttle(s, "drive0", { bps_wr: MiB });
    expect(await s.q("block-latency-histogram-set", { id: "dev0", boundaries: [100e6, 500e6], "boundaries-flush": [1] })).toEqual({ return: {} });
    await runOnVirtualClock(s, sequence(s, "drive0", "write", 3, MiB));
    await sequence(s, "drive0", "read", 2, 4096);
    await sequence(s, "drive0", "flush", 1, 0);
    const stats = (await s.q("query-blockstats")).return[0].stats;
    expect(stats.wr_latency_histogram).toEqual({ boundaries: [100e6, 500e6], bins: [1, 0, 2] });
    expect(stats.rd_latency_histogram).toEqual({ boundaries: [100e6, 500e6], bins: [2, 0, 0] });
    expect(stats.flush_latency_histogram).toEqual({ boundaries: [1], bins: [1, 0] });
    expect(await s.q("block-latency-histogram-set", { id: "dev0" })).toEqual({ return: {} });
    const cleared = (await s.q("query-blockstats")).return[0].stats;
    expect(Object.keys(cleared).filter((k) => k.includes("histogram"))).toEqual([]);
    await s.close();
  });
});

describe.skipIf(!hasQemuSystem)("backend throttling on the real clock, like QEMU", () => {
  /** Real time (ms) 10 qemu-io writes of 4 KiB take through a backend limited to iops=50. */
  async function tenWritesMs(s: Session): Promise<number> {
    expect(await throttle(s, "drive0", { iops: 50 })).toEqual({ return: {} });
    const start = performance.now();
    for (let i = 0; i < 10; i++) await s.hmp(`qemu-io drive0 "write ${i * 4096} 4k"`);
    return performance.now() - start;
  }

  it("a tenth of a second's worth (5 ops) plus one at once, then one per 20 ms", async () => {
    const qemu = await realQemu(["-drive", "if=none,id=drive0,driver=null-co"]);
    const theirs = await tenWritesMs(qemu);
    await qemu.close();
    const ours = await emulator({ drives: [driveOpts("if=none,id=drive0,driver=null-co")] });
    const mine = await tenWritesMs(ours);
    await ours.close();
    for (const ms of [theirs, mine]) {
      expect(ms).toBeGreaterThanOrEqual(78);
      expect(ms).toBeLessThan(400);
    }
  }, 30_000);
});

describe.skipIf(!haveQemu)("introspection of the new commands vs real QEMU", () => {
  const schemas = bothSchemas();
  for (const name of ["block_set_io_throttle", "block-latency-histogram-set", "change-backing-file"]) {
    it(name, () => {
      expect(entity(schemas.ours(), name, { coarse: true })).toBeDefined();
      expect(entity(schemas.ours(), name, { coarse: true })).toEqual(entity(schemas.theirs(), name, { coarse: true }));
    });
  }
});
