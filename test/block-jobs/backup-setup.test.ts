import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { RealClock } from "../../src/core/clock.ts";
import { EventBus } from "../../src/core/events.ts";
import { BlockLayer, Perm, PERM_ALL } from "../../src/block/index.ts";
import { BlockBackend } from "../../src/block/backend.ts";
import { setupBackup } from "../../src/block/jobs/backup-setup.ts";
import { runBackup, type BackupRuntime } from "../../src/block/jobs/backup-run.ts";

const which = (c: string) => spawnSync("which", [c]).status === 0;
const hasQemuImg = which("qemu-img") && which("qemu-io");
const img = (...a: string[]) => execFileSync("qemu-img", a, { encoding: "utf8" });
const qio = (file: string, ...cmds: string[]) => execFileSync("qemu-io", ["-f", "qcow2", ...cmds.flatMap((c) => ["-c", c]), file]);

function freeRuntime(): BackupRuntime & { done: number } {
  return {
    done: 0,
    cancelled: false,
    pausePoint: async () => {},
    whenCancelled: () => new Promise(() => {}),
    workDone(n) {
      this.done += n;
    },
    setRemaining() {},
    rateLimit: () => new Promise((r) => setImmediate(r)),
    ioError: async (_op, _p, f) => {
      throw f;
    },
  };
}

async function setup(dir: string) {
  img("create", "-q", "-f", "qcow2", path.join(dir, "src.qcow2"), "16M");
  qio(path.join(dir, "src.qcow2"), "write -P 0xab 0 4M", "write -P 0xcd 8M 1M");
  img("create", "-q", "-f", "qcow2", path.join(dir, "tgt.qcow2"), "16M");
  fs.copyFileSync(path.join(dir, "src.qcow2"), path.join(dir, "start.qcow2"));
  const clock = new RealClock();
  const layer = new BlockLayer({ events: new EventBus(() => clock.wallTime()), clock });
  await layer.blockdevAdd({ driver: "qcow2", "node-name": "src", file: { driver: "file", filename: path.join(dir, "src.qcow2") } });
  await layer.blockdevAdd({ driver: "qcow2", "node-name": "tgt", file: { driver: "file", filename: path.join(dir, "tgt.qcow2") } });
  return layer;
}

describe.skipIf(!hasQemuImg)("backup setup + run over the block graph", () => {
  it("keeps the point-in-time image under concurrent guest writes, and cleans up", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-bk-"));
    const layer = await setup(dir);
    const src = layer.findNode("src")!;
    const tgt = layer.findNode("tgt")!;
    // a guest device on the source, like -drive
    const guest = new BlockBackend("guest0");
    layer.attachUser(guest, src, "root", Perm.CONSISTENT_READ | Perm.WRITE, PERM_ALL);
    const s = await setupBackup(layer, src, tgt, { device: "src", sync: "full", "filter-node-name": "flt" });
    expect(s.filter.nodeName).toBe("flt");
    expect(s.filter.parents.some((e) => e.parent === guest)).toBe(true);
    // writing the source directly is now a permission conflict
    expect(() => layer.attachUser(new BlockBackend(""), src, "root", Perm.WRITE, PERM_ALL)).toThrow(
      /Permission conflict on node 'src': permissions 'write' are both required by .* and unshared by node 'flt' \(uses node 'src' as 'file' child\)\./,
    );
    const rt = freeRuntime();
    const job = runBackup(rt, s.copy, { sync: "full", onSourceError: "report", onTargetError: "report" });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const off = ((i * 7919) % 256) * 65536 + (i % 3) * 512;
      writes.push(s.filter.write(new Uint8Array(4096 + (i % 5) * 65536).fill(i + 1), off));
    }
    await Promise.all(writes);
    await job;
    expect(rt.done).toBe(16 << 20);
    await s.removeFilter();
    expect(layer.findNode("flt")).toBeUndefined();
    expect(src.parents.some((e) => e.parent === guest)).toBe(true);
    await layer.close();
    expect(img("compare", "-f", "qcow2", "-F", "qcow2", path.join(dir, "start.qcow2"), path.join(dir, "tgt.qcow2"))).toContain("Images are identical");
    // ...while the guest's writes did land on the source
    expect(spawnSync("qemu-img", ["compare", "-q", path.join(dir, "start.qcow2"), path.join(dir, "src.qcow2")]).status).toBe(1);
    for (const f of ["src.qcow2", "tgt.qcow2"]) expect(JSON.parse(img("check", "--output=json", path.join(dir, f)))["check-errors"]).toBe(0);
    // zero runs of the source became zero clusters, as QEMU's backup leaves them
    const map = JSON.parse(img("map", "--output=json", path.join(dir, "tgt.qcow2")));
    expect(map.some((e: any) => e.zero && e.present && !e.data)).toBe(true);
  });

  it("refuses name clashes for the filter like QEMU and leaves the graph alone", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-bk-"));
    const layer = await setup(dir);
    const src = layer.findNode("src")!;
    const tgt = layer.findNode("tgt")!;
    await expect(setupBackup(layer, src, tgt, { device: "src", sync: "full", "filter-node-name": "src" })).rejects.toThrow(
      "Could not create node: Duplicate nodes with node-name='src'",
    );
    await expect(setupBackup(layer, src, tgt, { device: "src", sync: "full", "filter-node-name": "9x" })).rejects.toThrow(
      "Could not create node: Invalid node-name: '9x'",
    );
    expect(src.parents.length).toBe(0);
    await layer.close();
  });
});
