/**
 * block_set_io_throttle, block-latency-histogram-set and change-backing-file
 * against QEMU 7.2 (-M none with -drive backends and -blockdev nodes), the
 * backend limits on a VirtualClock, and the three commands' schemas.
 */
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import type { VirtualClock } from "../../src/core/clock.ts";
import { driveOpts, emulator, hasQemuSystem, keyval, normalise, realQemu, sh, tmpDir, type Session } from "../block/helpers.ts";
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
