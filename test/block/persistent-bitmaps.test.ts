/**
 * Persistent dirty bitmaps in qcow2: stored at blockdev-del / close exactly
 * as QEMU 7.2 stores them (qemu-img info, qemu-img check), marked in use
 * while open read-write, loaded back with the same bits, and bitmaps
 * written by qemu-img read.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { emulator, hasQemuSystem, realQemu, type Session } from "./helpers.ts";

const img = (...a: string[]) => execFileSync("qemu-img", a, { encoding: "utf8" });
const info = (f: string) => JSON.parse(img("info", "--force-share", "--output=json", f))["format-specific"].data;
const checkExit = (f: string) => spawnSync("qemu-img", ["check", f]).status;

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-pbm-"));
}

const blockdev = (file: string) => ({
  driver: "qcow2",
  "node-name": "fmt",
  file: { driver: "file", filename: file, "node-name": "proto" },
});

/** The same conversation for QEMU and qmpemu: two bitmaps, guest writes, blockdev-del. */
async function scenario(s: Session, file: string): Promise<{ sums: string[]; counts: Record<string, number> }> {
  expect((await s.q("blockdev-add", blockdev(file))).return).toEqual({});
  await s.q("block-dirty-bitmap-add", { node: "fmt", name: "b0", persistent: true });
  await s.q("block-dirty-bitmap-add", { node: "fmt", name: "b1", persistent: true, granularity: 4096, disabled: true });
  await s.q("block-dirty-bitmap-add", { node: "fmt", name: "gone", persistent: true });
  await s.q("block-dirty-bitmap-add", { node: "fmt", name: "volatile" });
  await s.hmp('qemu-io fmt "write -P 0x5a 0 64k"');
  await s.hmp('qemu-io fmt "write -P 0x11 3M 200k"');
  await s.q("block-dirty-bitmap-enable", { node: "fmt", name: "b1" });
  await s.hmp('qemu-io fmt "write 9M 4k"');
  await s.q("block-dirty-bitmap-remove", { node: "fmt", name: "gone" });
  const sums: string[] = [];
  const counts: Record<string, number> = {};
  for (const name of ["b0", "b1"]) {
    sums.push((await s.q("x-debug-block-dirty-bitmap-sha256", { node: "fmt", name })).return.sha256);
  }
  const nodes = (await s.q("query-named-block-nodes", { flat: true })).return as any[];
  for (const b of nodes.find((n) => n["node-name"] === "fmt")["dirty-bitmaps"]) if (b.persistent) counts[b.name] = b.count;
  // While open read-write the stored bitmaps are marked in use (none stored yet here).
  expect((await s.q("blockdev-del", { "node-name": "fmt" })).return).toEqual({});
  return { sums, counts };
}

describe.skipIf(!hasQemuSystem)("persistent bitmaps in qcow2", () => {
  it("are stored like QEMU 7.2 stores them, and load back with the same bits", async () => {
    const dir = tmp();
    const ours = path.join(dir, "ours.qcow2");
    const theirs = path.join(dir, "theirs.qcow2");
    for (const f of [ours, theirs]) img("create", "-f", "qcow2", f, "16M");

    const qemu = await realQemu();
    const want = await scenario(qemu, theirs);
    await qemu.close();
    const emu = await emulator();
    const got = await scenario(emu, ours);

    expect(info(ours)).toEqual(info(theirs));
    expect(info(ours).bitmaps).toEqual([
      { flags: ["auto"], name: "b1", granularity: 4096 },
      { flags: ["auto"], name: "b0", granularity: 65536 },
    ]);
    expect(checkExit(ours)).toBe(0);
    expect(got).toEqual(want);

    // Reopen in qmpemu: same bitmaps, same bits; in use on disk while open.
    expect((await emu.q("blockdev-add", blockdev(ours))).return).toEqual({});
    expect(info(ours).bitmaps.map((b: any) => b.flags)).toEqual([["in-use", "auto"], ["in-use", "auto"]]);
    for (const [i, name] of ["b0", "b1"].entries()) {
      expect((await emu.q("x-debug-block-dirty-bitmap-sha256", { node: "fmt", name })).return.sha256).toBe(want.sums[i]);
    }
    await emu.hmp('qemu-io fmt "write 12M 4k"');
    await emu.close();
    expect(info(ours).bitmaps.map((b: any) => b.flags)).toEqual([["auto"], ["auto"]]);
    expect(checkExit(ours)).toBe(0);

    // QEMU reads what we stored back: b0 grew by one granule.
    const q2 = await realQemu();
    await q2.q("blockdev-add", blockdev(ours));
    const nodes = (await q2.q("query-named-block-nodes", { flat: true })).return as any[];
    const bms = nodes.find((n) => n["node-name"] === "fmt")["dirty-bitmaps"];
    expect(bms.find((b: any) => b.name === "b0").count).toBe(want.counts.b0! + 65536);
    expect(want.counts).toEqual({ b0: 6 * 65536, b1: 4096 });
    await q2.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("reads a bitmap qemu-img wrote, and deletes persistent bitmaps from the image", async () => {
    const dir = tmp();
    const f = path.join(dir, "a.qcow2");
    img("create", "-f", "qcow2", f, "8M");
    img("bitmap", "--add", "-g", "8192", f, "qi");
    img("bitmap", "--add", "--disable", f, "off");
    // Dirty some of "qi" by merging from a written copy: qemu-io with the bitmap recording.
    execFileSync("qemu-io", ["-c", "write 1M 20k", f]);
    expect(info(f).bitmaps).toEqual([
      { flags: ["auto"], name: "qi", granularity: 8192 },
      { flags: [], name: "off", granularity: 65536 },
    ]);
    const q = await realQemu();
    await q.q("blockdev-add", { ...blockdev(f), "read-only": true });
    const want = (await q.q("query-named-block-nodes", { flat: true })).return.find((n: any) => n["node-name"] === "fmt")["dirty-bitmaps"];
    const wantSum = (await q.q("x-debug-block-dirty-bitmap-sha256", { node: "fmt", name: "qi" })).return.sha256;
    await q.close();

    const emu = await emulator();
    await emu.q("blockdev-add", blockdev(f));
    const nodes = (await emu.q("query-named-block-nodes", { flat: true })).return as any[];
    expect(nodes.find((n) => n["node-name"] === "fmt")["dirty-bitmaps"]).toEqual(want);
    expect(want.find((b: any) => b.name === "qi").count).toBe(24576);
    expect((await emu.q("x-debug-block-dirty-bitmap-sha256", { node: "fmt", name: "qi" })).return.sha256).toBe(wantSum);
    await emu.q("block-dirty-bitmap-remove", { node: "fmt", name: "qi" });
    // The delete reaches the image asynchronously, after the command returns.
    for (let i = 0; i < 100 && info(f).bitmaps.length > 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(info(f).bitmaps).toEqual([{ flags: ["in-use"], name: "off", granularity: 65536 }]);
    await emu.q("block-dirty-bitmap-remove", { node: "fmt", name: "off" });
    await emu.close();
    expect(info(f).bitmaps).toBeUndefined();
    expect(checkExit(f)).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("a bitmap left in use (not stored back) loads as inconsistent, like QEMU", async () => {
    const dir = tmp();
    const f = path.join(dir, "a.qcow2");
    img("create", "-f", "qcow2", f, "8M");
    img("bitmap", "--add", f, "left");
    const { openQcow2 } = await import("../../src/image/qcow2/index.ts");
    const { openFileStore } = await import("../../src/image/file-store.ts");
    const raw = await openQcow2(openFileStore(f));
    await raw.close(); // the library alone marks bitmaps in use and never stores them
    expect(info(f).bitmaps).toEqual([{ flags: ["in-use", "auto"], name: "left", granularity: 65536 }]);
    const dirty = async (s: Session) => {
      await s.q("blockdev-add", { ...blockdev(f), "read-only": true });
      const n = (await s.q("query-named-block-nodes", { flat: true })).return.find((x: any) => x["node-name"] === "fmt");
      return [n["dirty-bitmaps"], await s.q("block-dirty-bitmap-clear", { node: "fmt", name: "left" })];
    };
    const q = await realQemu();
    const want = await dirty(q);
    await q.close();
    const emu = await emulator();
    expect(await dirty(emu)).toEqual(want);
    await emu.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
