/**
 * The throttle filter over throttle-group objects: QMP replies and error
 * texts checked against a real QEMU 7.2, and the limits checked on a
 * VirtualClock (time only moves when the test steps it).
 */
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import type { VirtualClock } from "../../src/core/clock.ts";
import { emulator, hasQemuSystem, normalise, realQemu, runOnVirtualClock, settle, tmpDir, type Session } from "./helpers.ts";

const MiB = 1 << 20;
const d = tmpDir();
afterAll(() => d.cleanup());

/** Object, nodes and the error cases, in one conversation both sides answer. */
async function conversation(s: Session): Promise<unknown[]> {
  const out: unknown[] = [];
  const q = async (cmd: string, args?: Record<string, unknown>) => void out.push([cmd, args, await s.q(cmd, args)]);
  await q("object-add", { "qom-type": "throttle-group", id: "tg0", "x-bps-total": MiB });
  await q("blockdev-add", { driver: "null-co", "node-name": "n0", size: 64 * MiB });
  await q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0" });
  await q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0", "throttle-group": "nope" });
  await q("object-add", { "qom-type": "iothread", id: "io0" });
  await q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0", "throttle-group": "io0" });
  await q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0", "throttle-group": "tg0" });
  await q("blockdev-add", { driver: "throttle", "node-name": "t1", file: { driver: "null-co", size: MiB }, "throttle-group": "tg0" });
  await q("query-named-block-nodes");
  await q("query-named-block-nodes", { flat: true });
  await q("query-block");
  await q("x-debug-query-block-graph");
  await q("qom-get", { path: "/objects/tg0", property: "limits" });
  await q("object-del", { id: "tg0" });
  await q("blockdev-del", { "node-name": "t0" });
  await q("object-del", { id: "tg0" });
  await q("blockdev-del", { "node-name": "t1" });
  await q("object-del", { id: "tg0" });
  await q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0", "throttle-group": "tg0" });
  await q("query-named-block-nodes", { flat: true });
  // Over a host file, under a format node: json: names nest, I/O passes through.
  await q("blockdev-add", { driver: "file", "node-name": "f0", filename: d.file("img.raw") });
  await q("blockdev-add", { driver: "throttle", "node-name": "t2", file: "f0", "throttle-group": "tg0" });
  await q("blockdev-add", { driver: "raw", "node-name": "r0", file: "t2" });
  await q("human-monitor-command", { "command-line": 'qemu-io r0 "write -P 0x11 0 64k"' });
  await q("human-monitor-command", { "command-line": 'qemu-io t2 "read -P 0x11 0 64k"' });
  await q("query-named-block-nodes");
  await q("x-debug-query-block-graph");
  await q("human-monitor-command", { "command-line": "info block -n" });
  await q("blockdev-del", { "node-name": "t2" });
  await q("blockdev-del", { "node-name": "r0" });
  await q("blockdev-del", { "node-name": "t2" });
  await q("x-debug-query-block-graph");
  return out;
}

describe.skipIf(!hasQemuSystem)("throttle against QEMU 7.2", () => {
  it("answers queries, blockdev-add/del and object-del like QEMU", async () => {
    fs.writeFileSync(d.file("img.raw"), new Uint8Array(MiB));
    const ours = await emulator();
    const mine = await conversation(ours);
    await ours.close();
    fs.writeFileSync(d.file("img.raw"), new Uint8Array(MiB));
    const qemu = await realQemu();
    const theirs = await conversation(qemu);
    await qemu.close();
    expect(normalise(mine)).toEqual(normalise(theirs));
  }, 30_000);
});

/** Real time (ms) 10 qemu-io writes of 4 KiB take through a group of iops-total=50. */
async function tenWritesMs(s: Session): Promise<number> {
  await s.q("object-add", { "qom-type": "throttle-group", id: "tg", limits: { "iops-total": 50 } });
  await s.q("blockdev-add", { driver: "throttle", "node-name": "t", "throttle-group": "tg", file: { driver: "null-co" } });
  const start = performance.now();
  for (let i = 0; i < 10; i++) await s.hmp(`qemu-io t "write ${i * 4096} 4k"`);
  return performance.now() - start;
}

describe.skipIf(!hasQemuSystem)("throttle timing on the real clock", () => {
  it("paces like QEMU: a tenth of a second's worth (5 ops) plus one at once, then one per 20 ms (80 ms)", async () => {
    const qemu = await realQemu();
    const theirs = await tenWritesMs(qemu);
    await qemu.close();
    const ours = await emulator();
    const mine = await tenWritesMs(ours);
    await ours.close();
    for (const ms of [theirs, mine]) {
      expect(ms).toBeGreaterThanOrEqual(78);
      expect(ms).toBeLessThan(400);
    }
  }, 30_000);
});

// ---- Behaviour on a virtual clock --------------------------------------------------------

type Emu = Awaited<ReturnType<typeof emulator>>;

async function withGroup(limits: Record<string, number>, nodes = ["t0"]): Promise<Emu & { clock: VirtualClock }> {
  const s = await emulator({ clock: "virtual" });
  expect(await s.q("object-add", { "qom-type": "throttle-group", id: "tg0", limits })).toEqual({ return: {} });
  for (const [i, name] of nodes.entries()) {
    await s.q("blockdev-add", { driver: "null-co", "node-name": `n${i}`, size: 64 * MiB });
    expect(await s.q("blockdev-add", { driver: "throttle", "node-name": name, file: `n${i}`, "throttle-group": "tg0" })).toEqual({ return: {} });
  }
  return Object.assign(s, { clock: s.emu.clock as VirtualClock });
}

/** Starts guest I/O on `node`; resolves with the virtual time (ns) it completed at. */
function io(s: Emu & { clock: VirtualClock }, node: string, op: string, offset: number, length: number): Promise<number> {
  return s.q("x-qmpemu-guest-io", { node, op, offset, length }).then((r) => {
    expect(r).toEqual({ return: { bytes: length, ok: true } });
    return s.clock.nowNs();
  });
}

/** Requests one after another on `node`: completion times. */
async function sequence(s: Emu & { clock: VirtualClock }, node: string, op: string, count: number, length: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(await io(s, node, op, i * length, length));
  return times;
}

const seconds = (ns: number) => ns / 1e9;

describe("throttle limits on a virtual clock", () => {
  it("bps-total=1 MiB/s: 4 MiB in 1 MiB writes takes ~2.9 s (a tenth of a second's worth goes at once)", async () => {
    const s = await withGroup({ "bps-total": MiB });
    const times = await runOnVirtualClock(s, sequence(s, "t0", "write", 4, MiB));
    // Admitted when the bucket is down to 0.1 MiB: 0, 0.9, 1.9, 2.9 s.
    expect(times.map(seconds).map((t) => Math.round(t * 100) / 100)).toEqual([0, 0.9, 1.9, 2.9]);
    await s.close();
  });

  it("without limits I/O passes at once", async () => {
    const s = await withGroup({});
    const start = s.clock.nowNs();
    await settle();
    const times = await sequence(s, "t0", "write", 4, MiB);
    expect(times).toEqual([start, start, start, start]);
    await s.close();
  });

  it("two nodes on one group share its budget, round-robin", async () => {
    const s = await withGroup({ "bps-total": MiB }, ["t0", "t1"]);
    const [a, b] = await runOnVirtualClock(s, Promise.all([sequence(s, "t0", "write", 2, MiB), sequence(s, "t1", "write", 2, MiB)]));
    const all = [...a!, ...b!].sort((x, y) => x - y).map(seconds);
    // 4 MiB through one 1 MiB/s budget, not two: the last write goes at 2.9 s, not 0.9 s.
    expect(all.map((t) => Math.round(t * 100) / 100)).toEqual([0, 0.9, 1.9, 2.9]);
    // Neither node waits for the other to finish everything.
    expect(Math.min(seconds(a![1]!), seconds(b![1]!))).toBeGreaterThan(1.5);
    await s.close();
  });

  it("read and write limits apply to their direction only; zeroes and discards are writes", async () => {
    const s = await withGroup({ "bps-read": MiB });
    expect(await runOnVirtualClock(s, sequence(s, "t0", "write", 4, MiB))).toEqual([0, 0, 0, 0]);
    expect(await runOnVirtualClock(s, sequence(s, "t0", "zero", 2, MiB))).toEqual([0, 0]);
    const reads = await runOnVirtualClock(s, sequence(s, "t0", "read", 3, MiB));
    expect(reads.map((t) => Math.round(seconds(t) * 100) / 100)).toEqual([0, 0.9, 1.9]);
    await s.close();
    const w = await withGroup({ "bps-write": MiB });
    const zeroes = await runOnVirtualClock(w, sequence(w, "t0", "zero", 3, MiB));
    expect(zeroes.map((t) => Math.round(seconds(t) * 100) / 100)).toEqual([0, 0.9, 1.9]);
    await w.close();
  });

  it("iops-total counts operations; iops-size counts large requests as several", async () => {
    const s = await withGroup({ "iops-total": 10 });
    const times = await runOnVirtualClock(s, sequence(s, "t0", "write", 20, 4096));
    // One operation's worth of bucket: two go at once, then one every 100 ms.
    expect(Math.round(seconds(times.at(-1)!) * 100) / 100).toBe(1.8);
    await s.close();
    const big = await withGroup({ "iops-total": 10, "iops-size": 4096 });
    // 64 KiB = 16 operations of 4 KiB each.
    const t = await runOnVirtualClock(big, sequence(big, "t0", "write", 2, 65536));
    expect(t.map((x) => Math.round(seconds(x) * 100) / 100)).toEqual([0, 1.5]);
    await big.close();
  });

  it("a burst rate lets max * max-length through before the average applies", async () => {
    const s = await withGroup({ "bps-total": MiB, "bps-total-max": 4 * MiB });
    const times = await runOnVirtualClock(s, sequence(s, "t0", "write", 6, MiB));
    expect(times.map((t) => Math.round(seconds(t) * 100) / 100)).toEqual([0, 0, 0, 0, 0, 1]);
    await s.close();
  });

  it("new limits set with qom-set apply to the next requests", async () => {
    const s = await withGroup({ "bps-total": MiB });
    await runOnVirtualClock(s, sequence(s, "t0", "write", 2, MiB));
    const t0 = s.clock.nowNs();
    expect(await s.q("qom-set", { path: "/objects/tg0", property: "limits", value: { "bps-total": 0 } })).toEqual({ return: {} });
    expect(await runOnVirtualClock(s, sequence(s, "t0", "write", 3, MiB))).toEqual([t0, t0, t0]);
    await s.q("qom-set", { path: "/objects/tg0", property: "limits", value: { "bps-total": 2 * MiB } });
    const times = await runOnVirtualClock(s, sequence(s, "t0", "write", 3, MiB));
    // The buckets start empty again: 0, then (1 - 0.2) / 2 s, then 0.5 s more.
    expect(times.map((t) => Math.round(seconds(t - t0) * 100) / 100)).toEqual([0, 0.4, 0.9]);
    await s.close();
  });

  it("held requests are let go when the node drains (close), and object-del waits for the last node", async () => {
    const s = await withGroup({ "bps-total": MiB });
    const t0 = s.emu.block.findNode("t0")!;
    const held = [4 * MiB, MiB, MiB].map((n) => t0.write(new Uint8Array(n), 0).then(() => s.clock.nowNs()));
    let done = 0;
    for (const p of held) void p.then(() => done++);
    await settle();
    expect(done).toBe(1);
    expect(await s.q("object-del", { id: "tg0" })).toEqual({ error: { class: "GenericError", desc: "object 'tg0' is in use, can not be deleted" } });
    await s.close();
    expect(await Promise.all(held)).toEqual([0, 0, 0]);
  });

  it("is refused without a usable group, with QEMU's texts", async () => {
    const s = await emulator({ clock: "virtual" });
    await s.q("blockdev-add", { driver: "null-co", "node-name": "n0" });
    expect((await s.q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0" })).error.desc).toBe("Parameter 'throttle-group' is missing");
    expect((await s.q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "n0", "throttle-group": "g" })).error.desc).toBe(
      "Throttle group 'g' does not exist",
    );
    // A failed open leaves no hold on the group.
    await s.q("object-add", { "qom-type": "throttle-group", id: "g" });
    await s.q("blockdev-add", { driver: "throttle", "node-name": "t0", file: "nope", "throttle-group": "g" });
    expect(await s.q("object-del", { id: "g" })).toEqual({ return: {} });
    await s.close();
  });
});
