/**
 * Runs once before the whole suite: makes sure dist/qmpemu exists and is
 * newer than every source file, building it (npm run build) otherwise, so
 * end-to-end tests always talk to the code under test.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
export const BINARY = path.join(root, "dist", "qmpemu");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const built = fs.existsSync(BINARY) ? fs.statSync(BINARY).mtimeMs : 0;
  if (built > newestSource(path.join(root, "src"))) return;
  const bun = path.join(root, "node_modules", ".bin", "bun");
  const r = spawnSync(bun, [path.join(root, "scripts", "build.ts")], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`building dist/qmpemu failed (status ${r.status})`);
}
