/**
 * The NBD server end to end with QEMU 7.2's own clients: qemu-img info /
 * compare / map and qemu-io reads and writes over nbd://, on exports of
 * qcow2 and raw nodes; BLOCK_EXPORT_DELETED and hard removal with a client.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockExports } from "../../src/commands/block-extra.ts";
import { emulator, hasQemuImg, hasQemuSystem, keyval, realQemu, sh, tmpDir, which } from "../block/helpers.ts";

const d = tmpDir();

beforeAll(() => {
  if (!hasQemuImg) return;
  sh(`qemu-img create -q -f qcow2 src.qcow2 4M && qemu-io -f qcow2 -c "write -P 0xab 0 64k" -c "write -P 0xcd 1M 4k" src.qcow2 >/dev/null`, d.dir);
  sh(`qemu-img create -q -f raw w.raw 1M`, d.dir);
});
afterAll(() => d.cleanup());

/** Runs a client without blocking the event loop (the server lives in this process). */
function run(cmd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn("sh", ["-c", cmd], { cwd: d.dir });
    let out = "";
    p.stdout.on("data", (b) => (out += b));
    p.stderr.on("data", (b) => (out += b));
    p.on("close", (code) => resolve({ code: code ?? -1, out }));
  });
}

async function withServer<T>(fn: (s: Awaited<ReturnType<typeof emulator>>, url: (name: string) => string) => Promise<T>): Promise<T> {
  const s = await emulator({
    blockdevs: [
      { driver: "qcow2", "node-name": "q", file: { driver: "file", filename: d.file("src.qcow2") } },
      { driver: "raw", "node-name": "w", file: { driver: "file", filename: d.file("w.raw") } },
    ],
  });
  try {
    expect(await s.q("nbd-server-start", { addr: { type: "inet", data: { host: "127.0.0.1", port: "0" } } })).toEqual({ return: {} });
    const port = blockExports(s.emu).port!;
    return await fn(s, (name) => `nbd://127.0.0.1:${port}/${name}`);
  } finally {
    await s.close();
  }
}

describe.skipIf(!hasQemuImg)("NBD server with qemu-img / qemu-io", { timeout: 60_000 }, () => {
  it("serves a qcow2 node read-only: info, compare against the image, reads, refused writes", async () => {
    await withServer(async (s, url) => {
      expect(await s.q("block-export-add", { type: "nbd", id: "e0", "node-name": "q", name: "disk" })).toEqual({ return: {} });
      const info = await run(`qemu-img info --output=json ${url("disk")}`);
      expect(info.code).toBe(0);
      expect(JSON.parse(info.out)["virtual-size"]).toBe(4 * 1024 * 1024);
      const cmp = await run(`qemu-img compare -f raw -F qcow2 ${url("disk")} src.qcow2`);
      expect(cmp.out).toContain("Images are identical.");
      const rd = await run(`qemu-io -r -f raw -c "read -P 0xab 0 64k" -c "read -P 0xcd 1M 4k" -c "read -P 0 2M 4k" ${url("disk")}`);
      expect(rd.out).not.toMatch(/Pattern verification failed|error/i);
      expect(rd.out).toContain("read 4096/4096 bytes at offset 1048576");
      const wr = await run(`qemu-io -f raw -c "write 0 512" ${url("disk")}`);
      expect(wr.out).toContain("Could not open image: Permission denied");
      // Allocation seen through base:allocation: data at 0 and 1M, a hole elsewhere.
      const map = await run(`qemu-img map --output=json -f raw ${url("disk")}`);
      const extents = JSON.parse(map.out) as { start: number; length: number; data: boolean }[];
      const direct = JSON.parse((await run("qemu-img map --output=json -f qcow2 src.qcow2")).out) as typeof extents;
      const dataRuns = (x: typeof extents) => x.filter((e) => e.data).map((e) => [e.start, e.length]);
      expect(dataRuns(extents)).toEqual(dataRuns(direct));
      expect(dataRuns(extents)).toEqual([[0, 65536], [1048576, 65536]]);
      const unknown = await run(`qemu-img info ${url("nosuch")}`);
      expect(unknown.code).not.toBe(0);
      expect(unknown.out).toContain("export 'nosuch' not present");
    });
  });

  it("writable export: qemu-io writes reach the image; write threshold and stats see them", async () => {
    await withServer(async (s, url) => {
      expect(await s.q("block-set-write-threshold", { "node-name": "w", "write-threshold": 65536 })).toEqual({ return: {} });
      expect(await s.q("block-export-add", { type: "nbd", id: "e1", "node-name": "w", writable: true })).toEqual({ return: {} });
      const wr = await run(`qemu-io -f raw -c "write -P 0x5a 64k 64k" -c "write -z 512k 4k" -c "flush" -c "read -P 0x5a 64k 64k" ${url("w")}`);
      expect(wr.out).not.toMatch(/failed|error/i);
      expect(s.events).toContainEqual({
        event: "BLOCK_WRITE_THRESHOLD",
        data: { "node-name": "w", "amount-exceeded": 65536, "write-threshold": 65536 },
      });
      const nodes = (await s.q("query-blockstats", { "query-nodes": true })).return as { "node-name": string; stats: { wr_highest_offset: number } }[];
      expect(nodes.find((n) => n["node-name"] === "w")!.stats.wr_highest_offset).toBe(512 * 1024 + 4096);
      expect((await s.q("query-named-block-nodes")).return.find((n: { "node-name": string }) => n["node-name"] === "w").write_threshold).toBe(0);
      expect(await s.q("query-block-exports")).toEqual({ return: [{ id: "e1", type: "nbd", "node-name": "w", "shutting-down": false }] });
      // qemu-img convert: fast zeroes (refused, so it falls back), block status, writes, flushes.
      const cv = await run(`qemu-img create -q -f qcow2 small.qcow2 1M && qemu-io -f qcow2 -c "write -P 0x77 4k 8k" small.qcow2 >/dev/null && qemu-img convert -n -f qcow2 -O raw small.qcow2 ${url("w")}`);
      expect(cv.code, cv.out).toBe(0);
      expect((await run(`qemu-img compare -f qcow2 -F raw small.qcow2 ${url("w")}`)).out).toContain("Images are identical.");
      expect(await s.q("block-export-del", { id: "e1" })).toEqual({ return: {} });
      expect(s.events).toContainEqual({ event: "BLOCK_EXPORT_DELETED", data: { id: "e1" } });
      await s.close();
      expect((await run(`qemu-img compare -f qcow2 -F raw small.qcow2 w.raw`)).out).toContain("Images are identical.");
    });
  });

  it("a connected client: safe delete refuses, hard delete drops it, the node is free again", async () => {
    await withServer(async (s, url) => {
      await s.q("block-export-add", { type: "nbd", id: "e2", "node-name": "w", writable: true });
      expect(await s.q("blockdev-del", { "node-name": "w" })).toEqual({ error: { class: "GenericError", desc: "Node w is in use" } });
      // qemu-io's "sleep" holds the connection open for a moment.
      const client = run(`qemu-io -f raw -c "sleep 1000" ${url("w")}`);
      const ex = blockExports(s.emu);
      for (let i = 0; i < 500 && !ex.clientCount(ex.find("e2")!); i++) await new Promise((r) => setTimeout(r, 10));
      expect(await s.q("block-export-del", { id: "e2" })).toEqual({ error: { class: "GenericError", desc: "export 'e2' still in use" } });
      expect(await s.q("block-export-del", { id: "e2", mode: "hard" })).toEqual({ return: {} });
      // Like QEMU, the event follows the return, once the client is gone.
      expect(s.events).not.toContainEqual({ event: "BLOCK_EXPORT_DELETED", data: { id: "e2" } });
      await client;
      expect(s.events).toContainEqual({ event: "BLOCK_EXPORT_DELETED", data: { id: "e2" } });
      expect(await s.q("query-block-exports")).toEqual({ return: [] });
      expect(await s.q("blockdev-del", { "node-name": "w" })).toEqual({ return: {} });
    });
  });
});

const hasQemuNbd = hasQemuSystem && which("qemu-nbd");

/** `qemu-nbd --list` against a server: what the handshake advertises. */
async function listExports(sock: string): Promise<string> {
  return (await run(`qemu-nbd --list -k ${sock}`)).out;
}

describe.skipIf(!hasQemuImg)("NBD max-connections", { timeout: 60_000 }, () => {
  it("a client beyond the limit waits for a free slot instead of being refused", async () => {
    const s = await emulator({ blockdevs: [keyval("driver=null-co,node-name=n0,size=1048576")] });
    try {
      const sock = d.file("max.sock");
      expect(await s.q("nbd-server-start", { addr: { type: "unix", data: { path: sock } }, "max-connections": 1 })).toEqual({ return: {} });
      await s.q("block-export-add", { type: "nbd", id: "e0", "node-name": "n0" });
      const url = `nbd+unix:///n0?socket=${sock}`;
      const first = run(`qemu-io -r -f raw -c "sleep 600" '${url}'`);
      const ex = blockExports(s.emu);
      for (let i = 0; i < 500 && !ex.clientCount(ex.find("e0")!); i++) await new Promise((r) => setTimeout(r, 10));
      const firstConnected = Date.now();
      // The server must never hold two clients; the second gets in once the first
      // (connected for its 600 ms sleep) has gone. The first process's exit may be
      // seen after the second's, so the server's count is what is checked.
      let most = 0;
      const watch = setInterval(() => (most = Math.max(most, ex.clientCount(ex.find("e0")!))), 2);
      const second = await run(`qemu-img info --output=json '${url}'`);
      clearInterval(watch);
      expect(second.code, second.out).toBe(0);
      expect(most).toBe(1);
      expect(Date.now() - firstConnected).toBeGreaterThanOrEqual(400);
      await first;
    } finally {
      await s.close();
    }
  });
});

describe.skipIf(!hasQemuNbd)("NBD handshake as QEMU 7.2 advertises it", { timeout: 60_000 }, () => {
  it("qemu-nbd --list: names, descriptions, sizes, flags, block sizes, meta contexts", async () => {
    const setup = async (s: { q(c: string, a?: Record<string, unknown>): Promise<unknown> }, sock: string) => {
      await s.q("nbd-server-start", { addr: { type: "unix", data: { path: sock } } });
      await s.q("block-export-add", { type: "nbd", id: "e0", "node-name": "q", description: "a qcow2 image" });
      await s.q("block-export-add", { type: "nbd", id: "e1", "node-name": "w", name: "rw", writable: true });
    };
    const blockdev = [`driver=qcow2,node-name=q,file.driver=file,file.filename=${d.file("src.qcow2")}`, `driver=raw,node-name=w,file.driver=file,file.filename=${d.file("w.raw")}`];
    const ours = await emulator({ blockdevs: blockdev.map(keyval) });
    let mine: string;
    try {
      await setup(ours, d.file("ours.sock"));
      mine = await listExports(d.file("ours.sock"));
    } finally {
      await ours.close();
    }
    const qemu = await realQemu(blockdev.flatMap((b) => ["-blockdev", b]));
    let theirs: string;
    try {
      await setup(qemu, d.file("qemu.sock"));
      theirs = await listExports(d.file("qemu.sock"));
    } finally {
      await qemu.close();
    }
    expect(mine).toContain("export: 'rw'");
    expect(mine).toBe(theirs);
  });

  it("quit deletes the exports after SHUTDOWN, like QEMU", async () => {
    const s = await emulator({ blockdevs: [keyval("driver=null-co,node-name=n0,size=1048576")] });
    await s.q("nbd-server-start", { addr: { type: "unix", data: { path: d.file("quit.sock") } } });
    await s.q("block-export-add", { type: "nbd", id: "e0", "node-name": "n0" });
    await s.q("quit");
    await s.emu.whenQuit;
    expect(s.events.map((e) => (e as { event: string }).event)).toEqual(["SHUTDOWN", "BLOCK_EXPORT_DELETED"]);
  });
});
