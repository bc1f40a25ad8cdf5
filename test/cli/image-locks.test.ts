/**
 * Image locks between processes: the compiled binary takes QEMU's OFD byte
 * locks, so it and real QEMU (qemu-storage-daemon, qemu-img, qemu-io) keep
 * each other from writing one image, with QEMU's texts on both sides.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { BINARY, QmpClient, has, qemuNamedLinks, runSync, start, stop, tmpDir, waitFor, type Run } from "./helpers.ts";

const ready = has("qemu-storage-daemon") && has("qemu-img") && has("qemu-io") && has("qemu-system-x86_64") && process.platform === "linux";
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const running: Run[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await stop(r);
});

function image(name: string): string {
  const file = path.join(dir, name);
  runSync("qemu-img", ["create", "-q", "-f", "qcow2", file, "1M"]);
  return file;
}

const blockdevs = (file: string, extra = "") => [
  "-blockdev", `driver=file,node-name=f,filename=${file}${extra}`,
  "-blockdev", `driver=qcow2,node-name=q,file=f${extra}`,
];

/** A program holding `file` open with a QMP monitor, once its socket is up. */
async function holder(program: string, args: string[]): Promise<QmpClient> {
  const sock = path.join(dir, `m${running.length}-${Math.random().toString(36).slice(2)}.sock`);
  const monitor = program.endsWith("qemu-storage-daemon")
    ? ["--chardev", `socket,id=m,path=${sock},server=on,wait=off`, "--monitor", "m"]
    : ["-M", "none", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`];
  const daemonArgs = program.endsWith("qemu-storage-daemon") ? args.map((a) => a.replace(/^-(?=[a-z])/, "--")) : args;
  const run = start(program, [...monitor, ...daemonArgs]);
  running.push(run);
  await waitFor(() => fs.existsSync(sock) || run.child.exitCode !== null);
  if (run.child.exitCode !== null) throw new Error(`${program} exited: ${run.stderr()}`);
  const c = await QmpClient.connect(sock);
  await c.handshake();
  return c;
}

describe.skipIf(!ready)("image locks between processes", () => {
  it("an image QEMU writes is refused on qmpemu's command line, in QEMU's words", async () => {
    const file = image("held-by-qemu.qcow2");
    await holder("qemu-storage-daemon", blockdevs(file));
    const links = qemuNamedLinks();
    const ours = runSync(links.system, ["-M", "none", "-display", "none", ...blockdevs(file)]);
    const theirs = runSync("qemu-system-x86_64", ["-M", "none", "-display", "none", ...blockdevs(file)]);
    expect(ours.status).toBe(1);
    expect(theirs.status).toBe(1);
    expect(ours.stderr).toBe(theirs.stderr);
    expect(ours.stderr).toContain(`Failed to get "write" lock\nIs another process using the image [${file}]?\n`);
  });

  it("blockdev-add over QMP gets QEMU's answer, and force-share reads it anyway", async () => {
    const file = image("held-by-qemu-qmp.qcow2");
    await holder("qemu-storage-daemon", blockdevs(file));
    const ours = await holder(BINARY, []);
    const theirs = await holder("qemu-storage-daemon", []);
    const add = { driver: "qcow2", "node-name": "q2", file: { driver: "file", filename: file } };
    const answer = await theirs.execute("blockdev-add", add);
    expect(answer).toEqual({ error: { class: "GenericError", desc: 'Failed to get "write" lock' } });
    expect(await ours.execute("blockdev-add", add)).toEqual(answer);
    const shared = { ...add, "read-only": true, "force-share": true, file: { ...add.file, "read-only": true, "force-share": true } };
    expect(await ours.execute("blockdev-add", shared)).toEqual({ return: {} });
  });

  it("an image qmpemu writes is refused to qemu-img and qemu-io until qmpemu lets it go", async () => {
    const file = image("held-by-qmpemu.qcow2");
    const ours = await holder(BINARY, blockdevs(file));
    const info = runSync("qemu-img", ["info", file]);
    expect(info.status).toBe(1);
    expect(info.stderr).toBe(`qemu-img: Could not open '${file}': Failed to get shared "write" lock\nIs another process using the image [${file}]?\n`);
    expect(runSync("qemu-img", ["info", "-U", file]).status).toBe(0); // -U: share everything, as QEMU allows
    expect(runSync("qemu-io", ["-c", "write 0 4k", file]).stderr).toContain('Failed to get "write" lock');
    expect(await ours.execute("blockdev-del", { "node-name": "q" })).toEqual({ return: {} });
    expect(await ours.execute("blockdev-del", { "node-name": "f" })).toEqual({ return: {} });
    const write = runSync("qemu-io", ["-c", "write 0 4k", file]);
    expect(write.stderr).toBe("");
    expect(write.stdout).toMatch(/^wrote 4096\/4096 bytes at offset 0/);
  });

  it("a read-only user leaves readers alone but keeps writers out, as QEMU's does", async () => {
    const file = image("read-only.qcow2");
    await holder(BINARY, blockdevs(file, ",read-only=on"));
    expect(runSync("qemu-io", ["-r", "-c", "read 0 4k", file]).status).toBe(0);
    const links = qemuNamedLinks();
    const daemonArgs = blockdevs(file).map((a) => a.replace(/^-(?=[a-z])/, "--"));
    const ours = runSync(links.storageDaemon, daemonArgs);
    const theirs = runSync("qemu-storage-daemon", daemonArgs);
    expect(theirs.status).toBe(1);
    expect(ours.status).toBe(1);
    expect(ours.stderr).toBe(theirs.stderr);
  });
});
