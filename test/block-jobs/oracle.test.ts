/**
 * Replays recorded QEMU 7.2 conversations (the shared oracle, ../shared/oracle
 * from the repo root, and our own test/oracle-extra) against the compiled
 * binary and requires the scenarios listed here to match event for event.
 * Skips when the binary, python3, qemu-img or the oracle is missing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const SHARED = path.resolve(ROOT, "../shared/oracle");
const EXTRA = path.join(ROOT, "test/oracle-extra");
const BIN = path.join(ROOT, "dist/qmpemu");
const which = (c: string) => spawnSync("which", [c]).status === 0;
const ready = fs.existsSync(path.join(SHARED, "oracle.py")) && fs.existsSync(BIN) && which("python3") && which("qemu-img");

/** Shared scenarios (block jobs I) that pass; keep this list exact. */
const SHARED_PASSING: string[] = [
  "jobs-backup-compress",
  "jobs-backup-lifecycle-auto",
  "jobs-backup-lifecycle-manual",
  "jobs-backup-sync-modes",
  "jobs-blockdev-create-errors",
  "jobs-blockdev-create-qcow2",
  "jobs-cancel-running",
  "jobs-duplicate-id",
  "jobs-incremental-backup",
  "jobs-ioerror-ignore",
  "jobs-ioerror-report",
  "jobs-legacy-block-job",
  "jobs-node-in-use",
  "jobs-quit-with-running-job",
  "jobs-set-speed-negative",
  "jobs-txn-grouped-fail",
  "jobs-txn-missing-target",
  "jobs-verbs-concluded",
  "jobs-verbs-paused",
  "jobs-verbs-running",
];
/** Our extra recordings that pass. */
const EXTRA_PASSING: string[] = [
  "x-backup-bitmap-modes",
  "x-backup-drive-default-id",
  "x-backup-error-enospc-eio",
  "x-backup-error-stop",
  "x-backup-hmp-info",
  "x-backup-sync-none-cbw",
  "x-backup-validation",
  "x-drive-backup",
  "x-txn-actions",
  "x-txn-snapshot",
];

/** Runs the named scenarios once; returns the diff's FAIL lines for them. */
function replayOnce(scenarios: string, golden: string, names: string[]): string[] {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "h6-oracle-"));
  const oracle = path.join(SHARED, "oracle.py");
  const subset = fs.mkdtempSync(path.join(os.tmpdir(), "h6-scen-"));
  for (const name of names) fs.copyFileSync(path.join(scenarios, `${name}.json`), path.join(subset, `${name}.json`));
  const run = spawnSync("python3", [oracle, "run", "--server", `${BIN} {args}`, "--scenarios", subset, "--out", out, "--jobs", "2"], {
    encoding: "utf8",
    timeout: 240_000,
  });
  expect(run.status, run.stderr).toBe(0);
  const diff = spawnSync("python3", [oracle, "diff", golden, out], { encoding: "utf8", timeout: 60_000 });
  const lines = diff.stdout.split("\n");
  return names
    .filter((n) => !new RegExp(`^PASS ${n}$`, "m").test(diff.stdout))
    .map((n) => lines.find((l) => l.startsWith(`FAIL ${n}:`)) ?? `FAIL ${n}: no result`);
}

/**
 * Event orders between concurrently copying jobs are races in QEMU too (a
 * recording shows one outcome; the scenarios avoid them where they can), so a
 * scenario that fails is replayed once more on its own before it counts.
 */
function replay(scenarios: string, golden: string, names: string[]): void {
  if (!names.length) return;
  const first = replayOnce(scenarios, golden, names);
  const again = names.filter((n) => first.some((l) => l.startsWith(`FAIL ${n}:`)));
  const failures = again.length ? replayOnce(scenarios, golden, again) : [];
  expect(failures.join("\n")).toBe("");
}

describe.skipIf(!ready)("oracle replay (block jobs I)", () => {
  it("passes the shared QEMU 7.2 recordings listed", () => {
    replay(path.join(SHARED, "scenarios"), path.join(SHARED, "golden"), SHARED_PASSING);
  }, 300_000);

  it("passes our extra QEMU 7.2 recordings listed", () => {
    replay(path.join(EXTRA, "scenarios"), path.join(EXTRA, "golden"), EXTRA_PASSING);
  }, 300_000);
});
