/**
 * kill -9 of the compiled binary: right after BLOCK_JOB_COMPLETED the
 * target is complete (it was flushed before the job reported success);
 * in the middle of a backup the images are free of corruption.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const BIN = path.join(ROOT, "dist/qmpemu");
const which = (c: string) => spawnSync("which", [c]).status === 0;
const ready = fs.existsSync(BIN) && which("qemu-img") && which("qemu-io");
const img = (...a: string[]) => execFileSync("qemu-img", a, { encoding: "utf8" });

async function backupThenKill(dir: string, killWhen: "completed" | "midway"): Promise<void> {
  const sock = path.join(dir, "qmp.sock");
  const p = spawn(BIN, [
    "-M", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`,
    "-blockdev", `driver=qcow2,node-name=src,file.driver=file,file.filename=${dir}/src.qcow2`,
    "-blockdev", `driver=qcow2,node-name=tgt,file.driver=file,file.filename=${dir}/tgt.qcow2`,
  ], { stdio: "ignore" });
  try {
    for (let i = 0; i < 500 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
    const s = net.createConnection(sock);
    let buf = "";
    const lines: Record<string, any>[] = [];
    let wake: () => void = () => {};
    s.on("data", (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        wake();
      }
    });
    const waitFor = async (pred: (m: Record<string, any>) => boolean) => {
      while (!lines.some(pred)) await new Promise<void>((r) => (wake = r));
    };
    await waitFor((m) => "QMP" in m);
    s.write('{"execute":"qmp_capabilities"}\n');
    const speed = killWhen === "midway" ? 8 << 20 : 0;
    s.write(`{"execute":"blockdev-backup","arguments":{"job-id":"j","device":"src","target":"tgt","sync":"full","speed":${speed}}}\n`);
    if (killWhen === "completed") await waitFor((m) => m.event === "BLOCK_JOB_COMPLETED");
    else await new Promise((r) => setTimeout(r, 1500));
    p.kill("SIGKILL");
    s.destroy();
  } finally {
    if (p.exitCode === null) p.kill("SIGKILL");
    await new Promise((r) => (p.exitCode !== null || p.signalCode ? r(null) : p.once("exit", r)));
  }
}

describe.skipIf(!ready)("kill -9 during and after a backup", () => {
  for (const when of ["completed", "midway"] as const) {
    it(`leaves ${when === "completed" ? "a complete" : "an uncorrupted"} target`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-kill-"));
      img("create", "-q", "-f", "qcow2", path.join(dir, "src.qcow2"), "64M");
      execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 24M", "-c", "write -P 0xcd 40M 8M", path.join(dir, "src.qcow2")]);
      img("create", "-q", "-f", "qcow2", path.join(dir, "tgt.qcow2"), "64M");
      await backupThenKill(dir, when);
      const chk = spawnSync("qemu-img", ["check", path.join(dir, "tgt.qcow2")]);
      // 0: clean, 3: leaked clusters only — never corruption (2)
      expect([0, 3]).toContain(chk.status);
      if (when === "completed") {
        expect(spawnSync("qemu-img", ["compare", "-q", path.join(dir, "src.qcow2"), path.join(dir, "tgt.qcow2")]).status).toBe(0);
      }
    }, 30_000);
  }
});
