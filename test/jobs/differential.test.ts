/**
 * Differential: the job commands that need no block device, byte for byte
 * against real QEMU 7.2 (-M none): empty queries, every verb on unknown
 * ids, argument errors, and the HMP block_job_* / info block-jobs texts.
 * Skipped when qemu-system-x86_64 is not installed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { exchange, haveQemu, startEmu, startQemu, type Peer } from "../protocol/harness.ts";

let peers: Peer[] = [];
afterEach(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  peers = [];
});

const q = (execute: string, args?: Record<string, unknown>) => (args === undefined ? { execute } : { execute, arguments: args });
const hmp = (line: string) => q("human-monitor-command", { "command-line": line });

const STEPS = [
  q("qmp_capabilities"),
  q("query-jobs"),
  q("query-block-jobs"),
  ...["job-pause", "job-resume", "job-cancel", "job-complete", "job-finalize", "job-dismiss"].map((n) => q(n, { id: "nope" })),
  ...["block-job-pause", "block-job-resume", "block-job-cancel", "block-job-complete"].map((n) => q(n, { device: "nope" })),
  q("block-job-cancel", { device: "nope", force: true }),
  q("block-job-finalize", { id: "nope" }),
  q("block-job-dismiss", { id: "nope" }),
  q("block-job-set-speed", { device: "nope", speed: -1 }),
  q("block-job-set-speed", { device: "nope", speed: 1 }),
  // argument errors come from the shared validator, but with these commands' schemas
  q("job-pause"),
  q("job-pause", { id: 1 }),
  q("block-job-set-speed", { device: "nope" }),
  q("block-job-set-speed", { device: "nope", speed: "1" }),
  q("block-job-cancel", { device: "nope", force: "yes" }),
  q("block-job-finalize", { device: "nope" }),
  q("query-jobs", { x: 1 }),
  hmp("info block-jobs"),
  hmp("info block-jobs x"),
  hmp("block_job_pause nope"),
  hmp("block_job_pause"),
  hmp("block_job_pause a b"),
  hmp("block_job_resume nope"),
  hmp("block_job_complete nope"),
  hmp('block_job_complete "a b"'),
  hmp("block_job_cancel nope"),
  hmp("block_job_cancel -f nope"),
  hmp("block_job_cancel -x nope"),
  hmp("block_job_cancel nope -f"),
  hmp("block_job_set_speed nope 1"),
  hmp("block_job_set_speed nope 1.5k"),
  hmp("block_job_set_speed nope 0x10"),
  hmp("block_job_set_speed nope -1"),
  hmp("block_job_set_speed nope 8E"),
  hmp("block_job_set_speed nope 1x"),
  hmp("block_job_set_speed nope"),
  ...["+5", "0x1.5", "0x10k", "1.5e3", "1.5b", "1.", "1.5E", "0.5", "2g", "1 2"].map((v) => hmp(`block_job_set_speed nope ${v}`)),
  hmp("help block_job_cancel"),
  hmp("help block_job_complete"),
  hmp("help block_job_pause"),
  hmp("help block_job_resume"),
  hmp("help block_job_set_speed"),
  hmp("help info block-jobs"),
];

describe.skipIf(!haveQemu)("job commands without jobs vs real QEMU 7.2", () => {
  it("same bytes for every step", async () => {
    const [qemu, emu] = await Promise.all([startQemu(), startEmu()]);
    peers = [qemu, emu];
    const [theirs, ours] = [await exchange(qemu, STEPS), await exchange(emu, STEPS)];
    const label = (replies: string[][]) => STEPS.map((st, i) => `${JSON.stringify(st)} -> ${replies[i]!.join(" | ")}`);
    expect(label(ours)).toEqual(label(theirs));
  }, 30000);
});
