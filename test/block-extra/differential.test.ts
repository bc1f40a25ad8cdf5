/**
 * block-extra commands against QEMU 7.2 (qemu-system-x86_64 -M none), reply
 * by reply and event by event: query-blockstats, write thresholds,
 * blockdev-reopen, x-blockdev-change, NBD server and export management.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { driveOpts, emulator, hasQemuSystem, keyval, normalise, realQemu, sh, tmpDir } from "../block/helpers.ts";

type Step = [string, Record<string, unknown>?];

const d = tmpDir();
const F = (n: string) => d.file(n);

beforeAll(() => {
  if (!hasQemuSystem) return;
  sh(`qemu-img create -q -f qcow2 a.qcow2 16M && qemu-img create -q -f raw r.raw 1M`, d.dir);
});
afterAll(() => d.cleanup());

/** Events without timestamps. */
const strip = (evs: unknown[]) => evs.filter((e) => (e as { event: string }).event !== "SHUTDOWN");

async function both(steps: Step[], cli: { blockdev?: string[]; drive?: string[] }) {
  const args = [...(cli.blockdev ?? []).flatMap((b) => ["-blockdev", b]), ...(cli.drive ?? []).flatMap((x) => ["-drive", x])];
  const run = async (s: { q(c: string, a?: Record<string, unknown>): Promise<unknown>; hmp(l: string): Promise<string>; events: unknown[] }) => {
    const out: unknown[] = [];
    for (const [cmd, a] of steps) {
      const before = s.events.length;
      out.push(cmd.startsWith("hmp ") ? await s.hmp(cmd.slice(4)) : await s.q(cmd, a));
      const evs = strip(s.events.slice(before));
      if (evs.length) out.push({ events: evs });
    }
    return normalise(out) as unknown[];
  };
  const emu = await emulator({ blockdevs: (cli.blockdev ?? []).map(keyval), drives: (cli.drive ?? []).map(driveOpts) });
  let ours: unknown[];
  try {
    ours = await run(emu);
  } finally {
    await emu.close();
  }
  const qemu = await realQemu(args);
  let theirs: unknown[];
  try {
    theirs = await run(qemu);
  } finally {
    await qemu.close();
  }
  return { ours, theirs };
}

function expectSame(r: { ours: unknown[]; theirs: unknown[] }) {
  expect(r.ours).toEqual(r.theirs);
}

/** Image sizes and metadata offsets depend on qcow2 allocation details that are not the subject here. */
function withoutSizes(r: { ours: unknown[]; theirs: unknown[] }, offsets = false) {
  const mask = (x: unknown[]) => {
    let t = JSON.stringify(x).replace(/"(actual|virtual)-size":\d+/g, '"$1-size":0');
    if (offsets) t = t.replace(/"wr_highest_offset":\d+/g, '"wr_highest_offset":0');
    return JSON.parse(t) as unknown[];
  };
  return { ours: mask(r.ours), theirs: mask(r.theirs) };
}

const NODES = () => ({
  blockdev: [`driver=null-co,node-name=n0,size=1048576`, `driver=file,filename=${F("a.qcow2")},node-name=f0`, `driver=qcow2,file=f0,node-name=fmt`],
});

describe.skipIf(!hasQemuSystem)("block-extra against QEMU 7.2", { timeout: 120_000 }, () => {
  it("query-blockstats: devices, nodes, wr_highest_offset after writes", async () => {
    const steps: Step[] = [
      ["query-blockstats"],
      ["query-blockstats", { "query-nodes": true }],
      ["hmp qemu-io d0 \"write 0 4096\""],
      ["hmp qemu-io n0 \"write 8192 512\""],
      ["hmp qemu-io d0 \"discard 0 4096\""],
      ["query-blockstats"],
      ["query-blockstats", { "query-nodes": true }],
      ["query-blockstats", { "query-nodes": false }],
    ];
    expectSame(await both(steps, {
      blockdev: [`driver=null-co,node-name=n0,size=1048576`],
      drive: [`if=none,id=d0,file=${F("r.raw")},format=raw,node-name=fmt,discard=unmap`, `if=none,id=empty`],
    }));
  });

  it("block-set-write-threshold: errors, query, one-shot event", async () => {
    const steps: Step[] = [
      ["block-set-write-threshold", { "node-name": "nope", "write-threshold": 100 }],
      ["block-set-write-threshold", { "node-name": "d0", "write-threshold": 100 }],
      ["block-set-write-threshold", { "node-name": "fmt", "write-threshold": 1000000 }],
      ["query-named-block-nodes", { flat: true }],
      ["hmp qemu-io d0 \"write 0 4096\""],
      ["hmp qemu-io d0 \"write 1048576 4096\""],
      ["hmp qemu-io d0 \"write 1048576 4096\""],
      ["query-named-block-nodes", { flat: true }],
      ["block-set-write-threshold", { "node-name": "n0", "write-threshold": 10 }],
      ["block-set-write-threshold", { "node-name": "n0", "write-threshold": 0 }],
      ["hmp qemu-io n0 \"write 0 4096\""],
      ["block-set-write-threshold", { "node-name": "n0", "write-threshold": 5000 }],
      ["hmp qemu-io n0 \"discard 0 8192\""],
      ["hmp qemu-io n0 \"write -z 4096 4096\""],
    ];
    expectSame(withoutSizes(await both(steps, {
      blockdev: [`driver=null-co,node-name=n0,size=1048576`],
      drive: [`if=none,id=d0,file=${F("a.qcow2")},node-name=fmt`],
    })));
  });

  it("blockdev-reopen: what may change, what may not", async () => {
    const steps: Step[] = [
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "nope" }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", size: 5 }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "zz", size: 5 }] }],
      ["blockdev-reopen", { options: [{ driver: "raw", "node-name": "fmt", file: "f0" }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "fmt", "read-only": true, file: "f0" }] }],
      ["query-named-block-nodes", { flat: true }],
      ["hmp qemu-io fmt \"write 0 512\""],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "fmt", file: "f0" }] }],
      ["hmp qemu-io fmt \"write 0 512\""],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "fmt", file: { driver: "file", filename: F("a.qcow2") } }] }],
      ["blockdev-reopen", { options: [{ driver: "file", "node-name": "f0", filename: F("r.raw") }] }],
      ["blockdev-reopen", { options: [{ driver: "file", "node-name": "f0", filename: F("a.qcow2"), locking: "off" }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 5 }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0" }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 1048576, "latency-ns": 5 }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 1048576, "force-share": true }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 1048576, "detect-zeroes": "unmap" }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 1048576, "detect-zeroes": "on", cache: { direct: true } }] }],
      ["query-named-block-nodes", { flat: true }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 1048576, "read-only": true }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "fmt", file: "f0", backing: "n0" }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "fmt", file: "f0", "lazy-refcounts": true }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "fmt", file: "f0", backing: null }] }],
      ["blockdev-reopen", { options: [{ driver: "null-co", "node-name": "n0", size: 1048576, "read-only": true }] }],
      ["query-named-block-nodes", { flat: true }],
    ];
    expectSame(await both(steps, NODES()));
  });

  it("query-blockstats and blockdev-reopen over a backing chain opened by -drive", async () => {
    sh(`qemu-img create -q -f qcow2 base.qcow2 1M && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 && cp top.qcow2 top2.qcow2`, d.dir);
    const steps: Step[] = [
      ["query-blockstats"],
      ["query-blockstats", { "query-nodes": true }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "top", "read-only": true }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "top", file: "nope" }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "nb", file: "nf" }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "nb", file: "nf", "read-only": true }, { driver: "raw", "node-name": "nf", file: "x" }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "nb", file: "nf", "read-only": true }, { driver: "file", "node-name": "nf", filename: F("base.qcow2"), "read-only": true }] }],
      ["query-named-block-nodes", { flat: true }],
      ["hmp qemu-io nb \"write 0 512\""],
      ["blockdev-reopen", { options: [{ driver: "file", "node-name": "nf", filename: F("base.qcow2") }, { driver: "qcow2", "node-name": "nb", file: "nf" }] }],
      ["hmp qemu-io nb \"write 0 512\""],
      ["query-blockstats", { "query-nodes": true }],
      // An image that names a backing file needs "backing" even when opened without one.
      ["blockdev-add", { driver: "qcow2", "node-name": "nb2", file: { driver: "file", filename: F("top2.qcow2") }, backing: null }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "nb2", file: "nope" }] }],
      ["blockdev-reopen", { options: [{ driver: "qcow2", "node-name": "nb2", backing: null, file: "nope" }] }],
    ];
    expectSame(withoutSizes(await both(steps, {
      blockdev: [`driver=file,node-name=nf,filename=${F("base.qcow2")}`, `driver=qcow2,node-name=nb,file=nf`],
      drive: [`if=none,id=d0,file=${F("top.qcow2")},node-name=top,backing=nb`],
    }), true));
  });

  it("HMP: info blockstats and the nbd_server_* commands", async () => {
    const steps: Step[] = [
      ["hmp info blockstats"],
      ["hmp help nbd_server_start"],
      ["hmp help nbd_server_add"],
      ["hmp help nbd_server_remove"],
      ["hmp help nbd_server_stop"],
      ["hmp help info blockstats"],
      ["hmp nbd_server_stop"],
      ["hmp nbd_server_add d0"],
      ["hmp nbd_server_start bad"],
      ["hmp nbd_server_start 127.0.0.1:0"],
      ["hmp nbd_server_start 127.0.0.1:0"],
      ["hmp nbd_server_add d0"],
      ["hmp nbd_server_add -w n0 foo"],
      ["hmp nbd_server_add nope"],
      ["query-block-exports"],
      ["hmp nbd_server_remove nope"],
      ["hmp nbd_server_remove -f foo"],
      ["hmp nbd_server_stop"],
      ["hmp nbd_server_start -a -w 127.0.0.1:0"],
      ["query-block-exports"],
      ["hmp nbd_server_stop"],
    ];
    expectSame(await both(steps, {
      blockdev: [`driver=null-co,node-name=n0,size=1048576`],
      drive: [`if=none,id=d0,file=${F("r.raw")},format=raw`, `if=none,id=empty`],
    }));
  });

  it("x-blockdev-change without quorum: its errors", async () => {
    const steps: Step[] = [
      ["x-blockdev-change", { parent: "nope" }],
      ["x-blockdev-change", { parent: "n0" }],
      ["x-blockdev-change", { parent: "n0", child: "x" }],
      ["x-blockdev-change", { parent: "fmt", child: "file" }],
      ["x-blockdev-change", { parent: "n0", node: "fmt" }],
      ["x-blockdev-change", { parent: "n0", node: "nope" }],
      ["x-blockdev-change", { parent: "n0", child: "x", node: "fmt" }],
    ];
    expectSame(await both(steps, NODES()));
  });

  it("NBD server and exports: lifecycle, errors, events, permissions", async () => {
    const inet = { type: "inet", data: { host: "127.0.0.1", port: "0" } };
    const steps: Step[] = [
      ["nbd-server-stop"],
      ["block-export-add", { type: "nbd", id: "e0", "node-name": "fmt" }],
      ["nbd-server-add", { device: "fmt" }],
      ["nbd-server-start", { addr: inet, "tls-creds": "nope" }],
      ["object-add", { "qom-type": "secret", id: "sec", data: "x" }],
      ["nbd-server-start", { addr: inet, "tls-creds": "sec" }],
      ["object-add", { "qom-type": "tls-creds-anon", id: "tlsc", endpoint: "client" }],
      ["nbd-server-start", { addr: inet, "tls-creds": "tlsc" }],
      ["nbd-server-start", { addr: { type: "fd", data: { str: "3" } } }],
      ["nbd-server-start", { addr: { type: "inet", data: { host: "127.0.0.1", port: "abc" } } }],
      ["nbd-server-start", { addr: { type: "unix", data: { path: "/nonexistent-dir/x.sock" } } }],
      ["nbd-server-start", { addr: inet }],
      ["nbd-server-start", { addr: inet }],
      ["query-block-exports"],
      ["block-export-add", { type: "nbd", id: "e0", "node-name": "nope" }],
      ["block-export-add", { type: "nbd", id: "1bad", "node-name": "fmt" }],
      ["block-export-add", { type: "nbd", id: "e0", "node-name": "fmt" }],
      ["block-export-add", { type: "nbd", id: "e0", "node-name": "n0" }],
      ["block-export-add", { type: "nbd", id: "e1", "node-name": "n0", name: "fmt" }],
      ["block-export-add", { type: "nbd", id: "e1", "node-name": "n0", name: "x", bitmaps: ["b"] }],
      ["block-export-add", { type: "nbd", id: "e1", "node-name": "ro", writable: true }],
      ["block-export-add", { type: "nbd", id: "e1", "node-name": "n0", name: "x", writable: true, description: "hello" }],
      ["block-export-add", { type: "fuse", id: "e2", "node-name": "n0" }],
      ["block-export-add", { type: "fuse", id: "e2", "node-name": "n0", mountpoint: "/nonexistent/x" }],
      ["block-export-add", { type: "vduse-blk", id: "e2", "node-name": "n0", name: "x" }],
      ["block-export-add", { type: "nbd", id: "e2", "node-name": "n0", iothread: "nope" }],
      ["block-export-add", { type: "nbd", id: "e2", "node-name": "n0", iothread: "sec" }],
      ["block-export-add", { type: "vhost-user-blk", id: "vu", "node-name": "n0", addr: { type: "unix", path: F("vu.sock") } }],
      ["nbd-server-add", { device: "f0" }],
      ["nbd-server-add", { device: "f0", name: "ff", writable: true }],
      ["nbd-server-add", { device: "nope" }],
      ["nbd-server-add", { device: "ro", writable: true }],
      ["query-block-exports"],
      ["x-debug-query-block-graph"],
      ["query-block"],
      ["query-blockstats"],
      ["blockdev-del", { "node-name": "n0" }],
      ["nbd-server-remove", { name: "nope" }],
      ["nbd-server-remove", { name: "ro" }],
      ["block-export-del", { id: "nope" }],
      ["block-export-del", { id: "e1", mode: "hard" }],
      ["block-export-del", { id: "e1" }],
      ["query-block-exports"],
      ["blockdev-del", { "node-name": "n0" }],
      ["block-export-del", { id: "vu" }],
      ["blockdev-del", { "node-name": "n0" }],
      ["nbd-server-stop"],
      ["query-block-exports"],
      ["nbd-server-stop"],
      ["nbd-server-remove", { name: "e0" }],
    ];
    expectSame(await both(steps, { blockdev: [...NODES().blockdev, `driver=null-co,node-name=nro,size=4096`, `driver=raw,node-name=ro,read-only=on,file=nro`] }));
  });
});
