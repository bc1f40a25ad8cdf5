import { afterAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import * as fs from "node:fs";
import { createQcow2, openFileStore, openQcow2 } from "../../src/image/index.ts";
import { hasQemu, qemuCheck, rng, tmpDir } from "./qemu-tools.ts";

const bun = path.resolve("node_modules/.bin/bun");
const hasBun = fs.existsSync(bun) && spawnSync(bun, ["--version"]).status === 0;
const t = tmpDir();
afterAll(() => t.cleanup());

function runAndKill(file: string, seed: number, mode: string, afterMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bun, [path.resolve("test/image/crash-writer.ts"), file, String(seed), mode], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.once("data", () => setTimeout(() => child.kill("SIGKILL"), afterMs));
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve();
      else reject(new Error(`writer exited on its own (${code}): ${err}`));
    });
  });
}

describe.skipIf(!hasQemu || !hasBun)("crash safety: kill -9 while writing", () => {
  it("leaves at most leaked clusters (qemu-img check exit 0 or 3), and the image stays usable", async () => {
    const r = rng(2024);
    for (let round = 0; round < 6; round++) {
      const file = t.file(`crash${round}.qcow2`);
      const s = openFileStore(file, { create: true });
      await createQcow2(s, { size: 8 << 20, clusterSize: round % 2 ? 4096 : 512, refcountBits: [16, 1, 64][Math.floor(round / 2) % 3] });
      await s.close();
      const mode = ["writethrough", "deferred", "writeback"][round % 3]!;
      // Kill a few times in a row on the same image, at random moments.
      for (let k = 0; k < 2; k++) {
        await runAndKill(file, round * 10 + k + 1, mode, 20 + Math.floor(r() * 300));
        const c = qemuCheck(file);
        expect([0, 3], `round ${round}/${k} (${mode}): ${c.stdout}${c.stderr}`).toContain(c.status);
        expect(c.json.corruptions ?? 0).toBe(0);
      }
      // Our library keeps working on the survivor.
      const img = await openQcow2(openFileStore(file));
      await img.write(new Uint8Array(70_000).fill(0xee), 1000);
      await img.close();
      const c = qemuCheck(file);
      expect([0, 3]).toContain(c.status);
    }
  }, 120_000);
});
