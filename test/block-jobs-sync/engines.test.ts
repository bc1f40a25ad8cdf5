/**
 * The mirror / stream / commit bodies over the real block graph with a
 * scripted job runtime (no QMP, no job layer): images are then checked with
 * qemu-img check and compared with qemu-img compare against references
 * written by qemu-io.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RealClock } from "../../src/core/clock.ts";
import { EventBus } from "../../src/core/events.ts";
import { BlockLayer, Perm, PERM_ALL, type BlockNode } from "../../src/block/index.ts";
import { BlockBackend } from "../../src/block/backend.ts";
import { MirrorJob, type MirrorParams } from "../../src/block/jobs/mirror.ts";
import { StreamJob } from "../../src/block/jobs/stream.ts";
import { CommitJob, checkCommitNodes } from "../../src/block/jobs/commit.ts";
import type { JobRuntime, OnError } from "../../src/block/jobs/mirror-runtime.ts";

const which = (c: string) => spawnSync("which", [c]).status === 0;
const hasQemu = which("qemu-img") && which("qemu-io");

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "h7-eng-"));
  dirs.push(d);
  return d;
}

const img = (cwd: string, ...a: string[]) => execFileSync("qemu-img", a, { cwd, encoding: "utf8" });
const qio = (cwd: string, fmt: string, file: string, ...cmds: string[]) =>
  execFileSync("qemu-io", ["-f", fmt, ...cmds.flatMap((c) => ["-c", c]), file], { cwd, encoding: "utf8" });

function compare(cwd: string, a: string, b: string, fa = "qcow2", fb = "qcow2"): { rc: number; out: string } {
  const r = spawnSync("qemu-img", ["compare", "-f", fa, "-F", fb, a, b], { cwd, encoding: "utf8" });
  return { rc: r.status ?? -1, out: (r.stdout + r.stderr).trim() };
}

function check(cwd: string, file: string): Record<string, unknown> {
  const r = spawnSync("qemu-img", ["check", "--output=json", file], { cwd, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** A scripted job: never paused, no rate limit; records progress and READY. */
class ScriptedRuntime implements JobRuntime {
  readonly id = "j";
  cancelled = false;
  cancelRequested = false;
  ready = false;
  current = 0;
  total = 0;
  readyAt: { current: number; total: number } | null = null;
  errors: { op: string; policy: string }[] = [];
  private wakers: (() => void)[] = [];
  private readyWaiters: (() => void)[] = [];

  pausePoint = async (): Promise<void> => {};
  setReady(): void {
    this.ready = true;
    this.readyAt = { current: this.current, total: this.total };
    for (const w of this.readyWaiters.splice(0)) w();
  }
  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((r) => this.readyWaiters.push(r));
  }
  workDone(n: number): void {
    this.current += n;
  }
  setRemaining(n: number): void {
    this.total = this.current + n;
  }
  increaseRemaining(n: number): void {
    this.total += n;
  }
  rateLimit = (): Promise<void> => new Promise((r) => setImmediate(r));
  sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      let t: ReturnType<typeof setTimeout> | undefined = undefined;
      const done = () => {
        clearTimeout(t);
        r();
      };
      t = setTimeout(done, ms);
      this.wakers.push(done);
    });
  }
  wake(): void {
    for (const w of this.wakers.splice(0)) w();
  }
  async ioError(op: "read" | "write", policy: OnError, e: unknown): Promise<void> {
    this.errors.push({ op, policy });
    throw e;
  }
  cancel(force: boolean): void {
    this.cancelRequested = true;
    this.cancelled = force;
    this.wake();
  }
}

function newLayer(): BlockLayer {
  const clock = new RealClock();
  return new BlockLayer({ events: new EventBus(() => clock.wallTime()), clock });
}

const qcow2 = (name: string, file: string, extra: Record<string, unknown> = {}) => ({
  driver: "qcow2",
  "node-name": name,
  file: { driver: "file", filename: file },
  ...extra,
});

const job = { id: "j", discard() {} };

function mirrorParams(layer: BlockLayer, source: BlockNode, target: BlockNode, over: Partial<MirrorParams> = {}): MirrorParams {
  return {
    layer,
    type: "mirror",
    source,
    target,
    mode: "full",
    base: null,
    granularity: 0,
    bufSize: 0,
    zeroTarget: true,
    backingMode: "leave",
    onSourceError: "report",
    onTargetError: "report",
    unmap: true,
    copyMode: "background",
    ...over,
  };
}

/** A guest device on `node` (like -drive), writing through whatever is its root now. */
function attachGuest(layer: BlockLayer, node: BlockNode): BlockBackend {
  const guest = new BlockBackend("guest0");
  guest.root = layer.attachUser(guest, node, "root", Perm.CONSISTENT_READ | Perm.WRITE, PERM_ALL);
  return guest;
}

async function guestWrite(guest: BlockBackend, offset: number, length: number, pattern: number): Promise<void> {
  await guest.node!.write(new Uint8Array(length).fill(pattern), offset);
}

async function mirrorSetup() {
  const dir = tmp();
  img(dir, "create", "-q", "-f", "qcow2", "src.qcow2", "16M");
  qio(dir, "qcow2", "src.qcow2", "write -P 0xab 0 4M", "write -P 0xcd 8M 1M");
  img(dir, "create", "-q", "-f", "qcow2", "tgt.qcow2", "16M");
  const layer = newLayer();
  const src = await layer.blockdevAdd(qcow2("src", path.join(dir, "src.qcow2")));
  const tgt = await layer.blockdevAdd(qcow2("tgt", path.join(dir, "tgt.qcow2")));
  const guest = attachGuest(layer, src);
  return { dir, layer, src, tgt, guest };
}

describe.skipIf(!hasQemu)("mirror engine", () => {
  it("full sync: READY with len == offset == disk size, guest writes before and after READY, complete pivots", async () => {
    const { dir, layer, src, tgt, guest } = await mirrorSetup();
    const m = await MirrorJob.start(mirrorParams(layer, src, tgt, { filterNodeName: "mtop" }), () => job);
    expect(guest.node?.nodeName).toBe("mtop");
    expect(layer.isRoot(src)).toBe(false);
    // the target belongs to the job now
    expect(() => layer.attachUser(new BlockBackend(""), tgt, "root", Perm.WRITE, PERM_ALL)).toThrow(/Permission conflict on node 'tgt'/);
    expect(() => layer.checkOp(tgt, "backup-target")).toThrow("Node 'tgt' is busy: block device is in use by block job: mirror");
    const rt = new ScriptedRuntime();
    const running = m.run(rt);
    await guestWrite(guest, 1 << 20, 65536, 0x11); // while copying
    await rt.whenReady();
    expect(rt.readyAt!.current).toBe(rt.readyAt!.total);
    expect(rt.readyAt!.total).toBeGreaterThanOrEqual(16 << 20);
    const atReady = rt.total;
    await guestWrite(guest, 12 << 20, 131072, 0x22); // while ready: copied continuously
    await guestWrite(guest, 0, 512, 0x33);
    m.complete();
    rt.wake();
    await running;
    expect(rt.total).toBe(rt.current);
    expect(rt.total).toBeGreaterThanOrEqual(atReady + 131072 + 65536 - 1);
    await m.exit(false);
    // pivot: the guest now uses the target; filter gone; source back to a root
    expect(guest.node).toBe(tgt);
    expect(layer.findNode("mtop")).toBeUndefined();
    expect(src.bitmaps).toHaveLength(0);
    expect(() => layer.checkOp(tgt, "backup-target")).not.toThrow();
    await layer.close();
    expect(compare(dir, "src.qcow2", "tgt.qcow2")).toEqual({ rc: 0, out: "Images are identical." });
    expect(check(dir, "tgt.qcow2")).toMatchObject({ "check-errors": 0 });
    expect(check(dir, "src.qcow2")).toMatchObject({ "check-errors": 0 });
    expect(qio(dir, "qcow2", "tgt.qcow2", "read -P 0x22 12M 128k", "read -P 0x33 0 512")).not.toMatch(/fail/i);
  });

  it("soft cancel in READY finishes the sync without pivot; force cancel stops at once", async () => {
    const { dir, layer, src, tgt, guest } = await mirrorSetup();
    const m = await MirrorJob.start(mirrorParams(layer, src, tgt), () => job);
    const rt = new ScriptedRuntime();
    const running = m.run(rt);
    await rt.whenReady();
    await guestWrite(guest, 2 << 20, 65536, 0x44);
    expect(m.cancel(false)).toBe(false); // not a real cancel
    rt.cancelRequested = true;
    rt.wake();
    await running;
    await m.exit(false);
    expect(guest.node).toBe(src);
    await layer.close();
    expect(compare(dir, "src.qcow2", "tgt.qcow2").rc).toBe(0);
    expect(check(dir, "tgt.qcow2")).toMatchObject({ "check-errors": 0 });

    // force cancel before READY: the target is left partial but consistent
    const s2 = await mirrorSetup();
    const m2 = await MirrorJob.start(mirrorParams(s2.layer, s2.src, s2.tgt, { bufSize: 1 << 20 }), () => job);
    const rt2 = new ScriptedRuntime();
    rt2.rateLimit = () => new Promise((r) => setTimeout(r, 5));
    const run2 = m2.run(rt2);
    await new Promise((r) => setTimeout(r, 15));
    expect(m2.cancel(false)).toBe(true); // soft before READY = force
    rt2.cancel(true);
    await run2;
    expect(rt2.ready).toBe(false);
    await m2.exit(true);
    expect(s2.guest.node).toBe(s2.src);
    await s2.layer.close();
    expect(check(s2.dir, "tgt.qcow2")).toMatchObject({ "check-errors": 0 });
  });

  it("write-blocking: guest writes reach the target before they complete, progress counts exact bytes", async () => {
    const { dir, layer, src, tgt, guest } = await mirrorSetup();
    const m = await MirrorJob.start(mirrorParams(layer, src, tgt, { mode: "none", zeroTarget: false, copyMode: "write-blocking" }), () => job);
    const rt = new ScriptedRuntime();
    const running = m.run(rt);
    await rt.whenReady();
    await guestWrite(guest, 1 << 20, 65536, 0x55);
    await guestWrite(guest, 3 << 20, 4096, 0x56);
    // already on the target, nothing left dirty (a 4 KiB write does not dirty its 64 KiB granule)
    const back = new Uint8Array(4096);
    await tgt.read(back, 3 << 20);
    expect(back.every((b) => b === 0x56)).toBe(true);
    expect(rt).toMatchObject({ current: 69632, total: 69632 });
    rt.cancelRequested = true; // soft cancel in READY: finish without pivot
    rt.wake();
    await running;
    await m.exit(false);
    expect(rt.current).toBe(69632);
    expect(guest.node).toBe(src);
    await layer.close();
    img(dir, "create", "-q", "-f", "qcow2", "ref.qcow2", "16M");
    qio(dir, "qcow2", "ref.qcow2", "write -P 0x55 1M 64k", "write -P 0x56 3M 4k");
    expect(compare(dir, "tgt.qcow2", "ref.qcow2").rc).toBe(0);
    expect(check(dir, "tgt.qcow2")).toMatchObject({ "check-errors": 0 });
  });

  it("size mismatch fails the run; sync none copies only new writes", async () => {
    const dir = tmp();
    img(dir, "create", "-q", "-f", "qcow2", "src.qcow2", "16M");
    qio(dir, "qcow2", "src.qcow2", "write -P 0xab 0 4M");
    img(dir, "create", "-q", "-f", "qcow2", "small.qcow2", "8M");
    img(dir, "create", "-q", "-f", "qcow2", "tgt.qcow2", "16M");
    const layer = newLayer();
    const src = await layer.blockdevAdd(qcow2("src", path.join(dir, "src.qcow2")));
    const small = await layer.blockdevAdd(qcow2("small", path.join(dir, "small.qcow2")));
    const tgt = await layer.blockdevAdd(qcow2("tgt", path.join(dir, "tgt.qcow2")));
    await expect(MirrorJob.start(mirrorParams(layer, src, src), () => job)).rejects.toThrow("Can't mirror node into itself");
    await expect(MirrorJob.start(mirrorParams(layer, src, tgt, { bufSize: -1 }), () => job)).rejects.toThrow("Invalid parameter 'buf-size'");
    const bad = await MirrorJob.start(mirrorParams(layer, src, small), () => job);
    await expect(bad.run(new ScriptedRuntime())).rejects.toThrow("Source and target image have different sizes");
    await bad.exit(true);
    expect(layer.isRoot(src)).toBe(true);

    const m = await MirrorJob.start(mirrorParams(layer, src, tgt, { mode: "none", zeroTarget: false }), () => job);
    const rt = new ScriptedRuntime();
    const running = m.run(rt);
    await rt.whenReady();
    expect(rt.readyAt).toEqual({ current: 0, total: 0 });
    // a write straight to the source node (not through the filter) is tracked too
    await src.write(new Uint8Array(65536).fill(0x55), 1 << 20);
    m.complete();
    rt.wake();
    await running;
    expect(rt.current).toBe(65536);
    await m.exit(false);
    await layer.close();
    expect(qio(dir, "qcow2", "tgt.qcow2", "read -P 0x55 1M 64k", "read -P 0 0 64k")).not.toMatch(/fail/i);
    expect(check(dir, "tgt.qcow2")).toMatchObject({ "check-errors": 0 });
  });
});

/** base ← mid ← top with the golden scenarios' data, and the same data in ref.raw. */
function makeChain(dir: string): void {
  img(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M");
  qio(dir, "qcow2", "base.qcow2", "write -P 0x11 0 1M", "write -P 0x12 3M 512k");
  img(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2");
  qio(dir, "qcow2", "mid.qcow2", "write -P 0x22 1M 1M", "write -P 0x23 0 64k");
  img(dir, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2");
  qio(dir, "qcow2", "top.qcow2", "write -P 0x33 2M 512k", "write -P 0x34 1M 64k");
  img(dir, "create", "-q", "-f", "raw", "ref.raw", "4M");
  qio(dir, "raw", "ref.raw", "write -P 0x11 0 1M", "write -P 0x12 3M 512k", "write -P 0x22 1M 1M", "write -P 0x23 0 64k", "write -P 0x33 2M 512k", "write -P 0x34 1M 64k");
}

async function openChain(dir: string) {
  const layer = newLayer();
  const base = await layer.blockdevAdd(qcow2("base", path.join(dir, "base.qcow2")));
  const mid = await layer.blockdevAdd(qcow2("mid", path.join(dir, "mid.qcow2"), { backing: "base" }));
  const top = await layer.blockdevAdd(qcow2("top", path.join(dir, "top.qcow2"), { backing: "mid" }));
  return { layer, base, mid, top };
}

const info = (dir: string, f: string) => JSON.parse(img(dir, "info", "--output=json", f)) as Record<string, unknown>;

describe.skipIf(!hasQemu)("stream engine", () => {
  it("streams the whole chain: top keeps its data, loses its backing (header too)", async () => {
    const dir = tmp();
    makeChain(dir);
    const { layer, top } = await openChain(dir);
    const s = await StreamJob.start({ layer, device: top, base: null, onError: "report" }, () => job);
    expect(top.parents.some((p) => p.parentNode?.driverName === "copy-on-read")).toBe(true);
    const rt = new ScriptedRuntime();
    await s.run(rt);
    expect(rt).toMatchObject({ current: 4 << 20, total: 4 << 20 });
    await s.prepare();
    await s.clean();
    expect(top.backing).toBeUndefined();
    expect(layer.isRoot(top)).toBe(true);
    await layer.close();
    expect(compare(dir, "top.qcow2", "ref.raw", "qcow2", "raw").rc).toBe(0);
    expect(info(dir, "top.qcow2")["backing-filename"]).toBeUndefined();
    expect(check(dir, "top.qcow2")).toMatchObject({ "check-errors": 0 });
  });

  it("streams down to a base: backing re-pointed and recorded as base's file name", async () => {
    const dir = tmp();
    makeChain(dir);
    const { layer, top, base } = await openChain(dir);
    const s = await StreamJob.start({ layer, device: top, base, onError: "report" }, () => job);
    await s.run(new ScriptedRuntime());
    await s.prepare();
    await s.clean();
    expect(top.backing?.node).toBe(base);
    await layer.close();
    expect(info(dir, "top.qcow2")).toMatchObject({ "backing-filename": path.join(dir, "base.qcow2"), "backing-filename-format": "qcow2" });
    expect(compare(dir, "top.qcow2", "ref.raw", "qcow2", "raw").rc).toBe(0);
    expect(check(dir, "top.qcow2")).toMatchObject({ "check-errors": 0 });
    // mid's data now lives in top: 0-64k (0x23) and 1M+64k..2M (0x22)
    const map = JSON.parse(img(dir, "map", "--output=json", "top.qcow2")) as { start: number; depth: number }[];
    expect(map.find((e) => e.start === 0)?.depth).toBe(0);
  });

  it("a cancelled stream leaves the chain as it was", async () => {
    const dir = tmp();
    makeChain(dir);
    const { layer, top, mid } = await openChain(dir);
    const s = await StreamJob.start({ layer, device: top, base: null, onError: "report" }, () => job);
    const rt = new ScriptedRuntime();
    rt.cancel(true);
    await s.run(rt);
    await s.clean();
    expect(top.backing?.node).toBe(mid);
    await layer.close();
    expect(info(dir, "top.qcow2")["backing-filename"]).toBe("mid.qcow2");
  });
});

describe.skipIf(!hasQemu)("commit engines", () => {
  it("intermediate commit: mid into base, top re-pointed to base", async () => {
    const dir = tmp();
    makeChain(dir);
    const { layer, top, mid, base } = await openChain(dir);
    const nodes = checkCommitNodes(layer, top, { topNode: "mid", baseNode: "base" }, () => null);
    expect(nodes).toMatchObject({ top: mid, base, active: false });
    const c = await CommitJob.start({ layer, device: top, top: mid, base, onError: "report" }, () => job);
    expect(top.backing?.node.driverName).toBe("commit_top");
    const rt = new ScriptedRuntime();
    await c.run(rt);
    expect(rt).toMatchObject({ current: 4 << 20, total: 4 << 20 });
    await c.prepare();
    await c.clean();
    expect(top.backing?.node).toBe(base);
    await layer.close();
    expect(compare(dir, "top.qcow2", "ref.raw", "qcow2", "raw").rc).toBe(0);
    expect(info(dir, "top.qcow2")).toMatchObject({ "backing-filename": path.join(dir, "base.qcow2"), "backing-filename-format": "qcow2" });
    for (const f of ["top.qcow2", "mid.qcow2", "base.qcow2"]) expect(check(dir, f)).toMatchObject({ "check-errors": 0 });
  });

  it("active commit: READY at the allocated size above base, complete puts base in top's place", async () => {
    const dir = tmp();
    makeChain(dir);
    const { layer, top, base } = await openChain(dir);
    const guest = attachGuest(layer, top);
    const nodes = checkCommitNodes(layer, top, { baseNode: "base" }, () => null);
    expect(nodes.active).toBe(true);
    const m = await MirrorJob.start(
      { ...mirrorParams(layer, top, base), type: "commit", mode: "top", base, zeroTarget: false },
      () => job,
    );
    const rt = new ScriptedRuntime();
    const running = m.run(rt);
    await rt.whenReady();
    expect(rt.readyAt).toEqual({ current: 1638400, total: 1638400 });
    await guestWrite(guest, 3 << 20, 4096, 0x77);
    m.complete();
    rt.wake();
    await running;
    await m.exit(false);
    expect(guest.node).toBe(base);
    await layer.close();
    qio(dir, "raw", "ref.raw", "write -P 0x77 3M 4k");
    expect(compare(dir, "base.qcow2", "ref.raw", "qcow2", "raw").rc).toBe(0);
    expect(check(dir, "base.qcow2")).toMatchObject({ "check-errors": 0 });
  });

  it("checks in QEMU's order", async () => {
    const dir = tmp();
    makeChain(dir);
    const { layer, top } = await openChain(dir);
    const chk = (a: Parameters<typeof checkCommitNodes>[2]) => () => checkCommitNodes(layer, top, a, () => null);
    expect(chk({ top: "a", topNode: "b" })).toThrow("'top-node' and 'top' are mutually exclusive");
    expect(chk({ top: "nosuch.qcow2" })).toThrow("Top image file nosuch.qcow2 not found");
    expect(chk({ baseNode: "top" })).toThrow("cannot commit an image into itself");
    expect(chk({ topNode: "mid", baseNode: "top" })).toThrow("'top' is not in this backing file chain");
    expect(chk({ base: "nosuch.qcow2" })).toThrow("Can't find 'nosuch.qcow2' in the backing chain");
    expect(chk({ backingFile: "x" })).toThrow("'backing-file' specified, but 'top' is the active layer");
    await layer.close();
  });
});
