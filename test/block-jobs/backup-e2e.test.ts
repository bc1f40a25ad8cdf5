/**
 * blockdev-backup / drive-backup / transaction / blockdev-create through
 * QMP on an in-process emulator, images checked with qemu-img.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createEmulator, type Emulator } from "../../src/index.ts";

const which = (c: string) => spawnSync("which", [c]).status === 0;
const hasQemuImg = which("qemu-img") && which("qemu-io");
type Msg = Record<string, any>;

const img = (...a: string[]) => execFileSync("qemu-img", a, { encoding: "utf8" });
const check = (f: string) => JSON.parse(img("check", "--output=json", f));
const same = (a: string, b: string) => spawnSync("qemu-img", ["compare", "-q", a, b]).status === 0;

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(dir: string, blockdevs: Record<string, unknown>[]) {
  emu = createEmulator({ blockdevs });
  await emu.blockReady;
  const c = emu.connect();
  await c.next();
  await c.execute("qmp_capabilities");
  const events: Msg[] = [];
  const waiters: { pred: (e: Msg) => boolean; resolve: () => void }[] = [];
  emu.events.subscribe((e) => {
    events.push(e as Msg);
    for (const w of [...waiters]) if (w.pred(e as Msg)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  });
  const q = async (cmd: string, args?: Record<string, unknown>) => {
    const r = (await c.execute(cmd, args)) as Msg;
    delete r.id;
    return r;
  };
  const until = (pred: (e: Msg) => boolean) =>
    events.some(pred) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve }));
  const status = (id: string, s: string) => (e: Msg) => e.event === "JOB_STATUS_CHANGE" && e.data.id === id && e.data.status === s;
  const trail = (id: string) =>
    events.filter((e) => e.data?.id === id || e.data?.device === id).map((e) => (e.event === "JOB_STATUS_CHANGE" ? e.data.status : e.event));
  return { q, until, status, trail, events, file: (n: string) => path.join(dir, n) };
}

const qcow2 = (dir: string, name: string, file: string) => ({
  driver: "qcow2",
  "node-name": name,
  file: { driver: "file", filename: path.join(dir, file) },
});

function images(dir: string, size = "16M") {
  img("create", "-q", "-f", "qcow2", path.join(dir, "src.qcow2"), size);
  execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 4M", "-c", "write -P 0xcd 8M 1M", path.join(dir, "src.qcow2")]);
  img("create", "-q", "-f", "qcow2", path.join(dir, "tgt.qcow2"), size);
  img("create", "-q", "-f", "qcow2", path.join(dir, "tgt2.qcow2"), size);
}

describe.skipIf(!hasQemuImg)("backup end to end", () => {
  it("takes a point-in-time copy while the guest keeps writing", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-e2e-"));
    images(dir);
    fs.copyFileSync(path.join(dir, "src.qcow2"), path.join(dir, "start.qcow2"));
    const t = await start(dir, [qcow2(dir, "src", "src.qcow2"), qcow2(dir, "tgt", "tgt.qcow2")]);
    // slow enough that the guest's writes land while most clusters are still to copy
    expect(await t.q("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: 4 << 20, "filter-node-name": "f" })).toEqual({ return: {} });
    for (let i = 0; i < 16; i++) {
      const r = await t.q("x-qmpemu-guest-io", { node: "f", op: "write", offset: i * (1 << 20) + 4096, length: 70000, pattern: 0x40 + i });
      expect(r.return?.ok).toBe(true);
    }
    // the source below the filter cannot be written directly
    const direct = await t.q("x-qmpemu-guest-io", { node: "src", op: "write", offset: 0, length: 512 });
    expect(direct.error?.desc).toMatch(/^Permission conflict on node 'src': permissions 'write' are both required by .* and unshared by node 'f'/);
    await t.q("block-job-set-speed", { device: "j", speed: 0 });
    await t.until(t.status("j", "null"));
    expect(t.trail("j")).toEqual(["created", "running", "paused", "running", "waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"]);
    const done = t.events.find((e) => e.event === "BLOCK_JOB_COMPLETED")!;
    expect(done.data).toEqual({ device: "j", len: 16 << 20, offset: 16 << 20, speed: 0, type: "backup" });
    await emu!.close();
    emu = undefined;
    expect(same(t.file("start.qcow2"), t.file("tgt.qcow2"))).toBe(true);
    expect(same(t.file("start.qcow2"), t.file("src.qcow2"))).toBe(false);
    expect(check(t.file("tgt.qcow2"))["check-errors"]).toBe(0);
    expect(check(t.file("src.qcow2"))["check-errors"]).toBe(0);
  });

  it("writes compressed clusters and refuses targets that cannot take them", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-e2e-"));
    images(dir);
    img("create", "-q", "-f", "raw", path.join(dir, "tgt.raw"), "16M");
    const t = await start(dir, [
      qcow2(dir, "src", "src.qcow2"),
      qcow2(dir, "tgt", "tgt.qcow2"),
      { driver: "raw", "node-name": "traw", file: { driver: "file", filename: path.join(dir, "tgt.raw") } },
    ]);
    expect(await t.q("blockdev-backup", { "job-id": "r", device: "src", target: "traw", sync: "full", compress: true })).toEqual({
      error: { class: "GenericError", desc: "Compression is not supported for this drive " },
    });
    await t.q("blockdev-backup", { "job-id": "c", device: "src", target: "tgt", sync: "full", compress: true });
    await t.until(t.status("c", "null"));
    await emu!.close();
    emu = undefined;
    const c = check(t.file("tgt.qcow2"));
    expect(c["check-errors"]).toBe(0);
    expect(c["compressed-clusters"]).toBe(80);
    expect(same(t.file("src.qcow2"), t.file("tgt.qcow2"))).toBe(true);
  });

  it("stops on a source error with on-source-error=stop and finishes after resume", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-e2e-"));
    img("create", "-q", "-f", "qcow2", path.join(dir, "bad.qcow2"), "1M");
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 0 1M", path.join(dir, "bad.qcow2")]);
    img("create", "-q", "-f", "qcow2", path.join(dir, "badtgt.qcow2"), "1M");
    const t = await start(dir, [
      {
        driver: "qcow2",
        "node-name": "bad",
        file: {
          driver: "blkdebug",
          image: { driver: "file", filename: path.join(dir, "bad.qcow2") },
          "inject-error": [{ event: "read_aio", errno: 5, once: true }],
        },
      },
      qcow2(dir, "badtgt", "badtgt.qcow2"),
    ]);
    await t.q("blockdev-backup", { "job-id": "j", device: "bad", target: "badtgt", sync: "full", "on-source-error": "stop" });
    await t.until(t.status("j", "paused"));
    await t.until((e) => e.event === "BLOCK_JOB_ERROR");
    const info = (await t.q("query-block-jobs")).return[0];
    expect([info["io-status"], info.paused, info.status]).toEqual(["failed", true, "paused"]);
    expect((await t.q("block-job-cancel", { device: "j" })).error.desc).toBe("The block job for device 'j' is currently paused");
    await t.q("job-resume", { id: "j" });
    await t.until(t.status("j", "null"));
    expect(t.trail("j")).toEqual([
      "created", "running", "paused", "running", "BLOCK_JOB_ERROR", "paused", "running", "waiting", "pending",
      "BLOCK_JOB_COMPLETED", "concluded", "null",
    ]);
    await emu!.close();
    emu = undefined;
    expect(same(t.file("bad.qcow2"), t.file("badtgt.qcow2"))).toBe(true);
  });

  it("fails a grouped transaction as a whole and leaves no job behind", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-e2e-"));
    images(dir);
    const t = await start(dir, [qcow2(dir, "src", "src.qcow2"), qcow2(dir, "tgt", "tgt.qcow2"), qcow2(dir, "tgt2", "tgt2.qcow2")]);
    const r = await t.q("transaction", {
      actions: [
        { type: "blockdev-backup", data: { "job-id": "a", device: "src", target: "tgt", sync: "full", speed: 1 } },
        { type: "block-dirty-bitmap-add", data: { node: "src", name: "b0" } },
        { type: "blockdev-backup", data: { "job-id": "b", device: "src", target: "tgt", sync: "full" } },
      ],
    });
    expect(r.error.desc).toBe("Node 'tgt' is busy: block device is in use by block job: backup");
    expect(t.trail("a")).toEqual(["created", "aborting", "concluded", "null"]);
    expect((await t.q("query-jobs")).return).toEqual([]);
    const nodes = (await t.q("query-named-block-nodes", { flat: true })).return as Msg[];
    const srcNode = nodes.find((n) => n["node-name"] === "src");
    expect(srcNode).toBeDefined();
    expect(srcNode!["dirty-bitmaps"]).toBeUndefined();
    expect(nodes.some((n) => n.drv === "copy-before-write")).toBe(false);
    // the graph is usable again: a grouped pair with manual finalisation
    await t.q("transaction", {
      actions: [
        { type: "blockdev-backup", data: { "job-id": "g1", device: "src", target: "tgt", sync: "full", "auto-finalize": false } },
        { type: "blockdev-backup", data: { "job-id": "g2", device: "src", target: "tgt2", sync: "full", "auto-finalize": false } },
      ],
      properties: { "completion-mode": "grouped" },
    });
    await t.until((e) => e.event === "BLOCK_JOB_PENDING" && e.data.id === "g1");
    await t.q("job-finalize", { id: "g2" });
    await t.until(t.status("g1", "null"));
    const completed = t.events.filter((e) => e.event === "BLOCK_JOB_COMPLETED").map((e) => e.data.device);
    expect(completed).toEqual(["g2", "g1"]);
  });

  it("creates images with blockdev-create and backs up into a new drive-backup target", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-e2e-"));
    images(dir);
    const t = await start(dir, [qcow2(dir, "src", "src.qcow2")]);
    expect((await t.q("blockdev-create", { "job-id": "n", options: { driver: "null-co" } })).error.desc).toBe("Driver does not support blockdev-create");
    await t.q("blockdev-create", { "job-id": "c1", options: { driver: "file", filename: t.file("new.qcow2"), size: 0 } });
    await t.until(t.status("c1", "concluded"));
    await t.q("job-dismiss", { id: "c1" });
    await t.q("blockdev-add", { driver: "file", "node-name": "nf", filename: t.file("new.qcow2") });
    await t.q("blockdev-create", { "job-id": "c2", options: { driver: "qcow2", file: "nf", size: 16 << 20, "cluster-size": 4096, "lazy-refcounts": true } });
    await t.until(t.status("c2", "concluded"));
    const jobs = (await t.q("query-jobs")).return;
    expect(jobs).toEqual([{ id: "c2", type: "create", status: "concluded", "current-progress": 1, "total-progress": 1 }]);
    await t.q("job-dismiss", { id: "c2" });
    await t.q("drive-backup", { "job-id": "d", device: "src", target: t.file("db.qcow2"), sync: "full", format: "qcow2" });
    await t.until(t.status("d", "null"));
    await emu!.close();
    emu = undefined;
    const info = JSON.parse(img("info", "--output=json", t.file("new.qcow2")));
    expect([info["cluster-size"], info["virtual-size"], info["format-specific"].data["lazy-refcounts"]]).toEqual([4096, 16 << 20, true]);
    expect(check(t.file("new.qcow2"))["check-errors"]).toBe(0);
    expect(check(t.file("db.qcow2"))["check-errors"]).toBe(0);
    expect(same(t.file("src.qcow2"), t.file("db.qcow2"))).toBe(true);
  });
});
