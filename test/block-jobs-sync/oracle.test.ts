/**
 * Replays recorded QEMU 7.2 conversations for mirror / stream / commit
 * (the shared oracle at ../shared/oracle from the repo root, and our own
 * test/oracle-extra/sync) against the compiled binary; every scenario listed
 * must match QEMU event for event, including the qemu-img checks of the
 * images afterwards. Skips when the binary, python3, qemu-img or the oracle
 * is missing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const SHARED = path.resolve(ROOT, "../shared/oracle");
const EXTRA = path.join(ROOT, "test/oracle-extra/sync");
const BIN = path.join(ROOT, "dist/qmpemu");
const which = (c: string) => spawnSync("which", [c]).status === 0;
const ready = fs.existsSync(path.join(SHARED, "oracle.py")) && fs.existsSync(BIN) && which("python3") && which("qemu-img");

/** Shared recordings of block jobs II (mirror, stream, commit). */
const SHARED_SCENARIOS = [
  "jobs-commit-active",
  "jobs-commit-intermediate",
  "jobs-job-cancel-paused-mirror",
  "jobs-mirror-ready-cancel",
  "jobs-mirror-ready-complete",
  "jobs-stream-full",
  "jobs-stream-intermediate",
  "jobs-verbs-ready",
  // mirror/stream parts next to running backups (drained-section pairs included)
  "jobs-duplicate-id",
  "jobs-node-in-use",
  "jobs-set-speed-negative",
];

const EXTRA_SCENARIOS = fs.existsSync(path.join(EXTRA, "scenarios"))
  ? fs
      .readdirSync(path.join(EXTRA, "scenarios"))
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -5))
      .sort()
  : [];

function replay(scenarios: string, golden: string, names: string[]): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "h7-oracle-"));
  const oracle = path.join(SHARED, "oracle.py");
  const only = names.flatMap((n) => ["--only", n]);
  const run = spawnSync("python3", [oracle, "run", "--server", `${BIN} {args}`, "--scenarios", scenarios, "--out", out, "--jobs", "2", ...only], {
    encoding: "utf8",
    timeout: 240_000,
  });
  expect(run.status, run.stderr).toBe(0);
  const diff = spawnSync("python3", [oracle, "diff", golden, out], { encoding: "utf8", timeout: 60_000 });
  fs.rmSync(out, { recursive: true, force: true });
  return diff.stdout;
}

function failuresOf(diff: string, names: string[]): string {
  const lines = diff.split("\n");
  const out: string[] = [];
  for (const n of names) {
    if (new RegExp(`^PASS ${n}$`, "m").test(diff)) continue;
    const i = lines.findIndex((l) => l.startsWith(`FAIL ${n}:`) || l.startsWith(`FAIL ${n} `));
    out.push(i >= 0 ? lines.slice(i, i + 3).join("\n") : `${n}: no verdict`);
  }
  return out.join("\n");
}

describe.skipIf(!ready)("oracle replay (block jobs II: mirror, stream, commit)", () => {
  it("matches the shared QEMU 7.2 recordings", () => {
    const diff = replay(path.join(SHARED, "scenarios"), path.join(SHARED, "golden"), SHARED_SCENARIOS);
    expect(failuresOf(diff, SHARED_SCENARIOS)).toBe("");
  }, 300_000);

  it("matches our extra QEMU 7.2 recordings (test/oracle-extra/sync)", () => {
    expect(EXTRA_SCENARIOS.length).toBeGreaterThan(10);
    const diff = replay(path.join(EXTRA, "scenarios"), path.join(EXTRA, "golden"), EXTRA_SCENARIOS);
    expect(failuresOf(diff, EXTRA_SCENARIOS)).toBe("");
  }, 300_000);
});
