/**
 * HMP block commands against QEMU 7.2: block_resize, commit, drive_backup,
 * drive_mirror, snapshot_blkdev, block_stream and drive_del, from argument
 * parsing (option order, quoting, sizes) to what they do to the images.
 */
import { describe, expect, it } from "vitest";
import { differential, hasQemuSystem, type Scenario } from "../block/helpers.ts";

const CHAIN = [
  `qemu-img create -q -f qcow2 base.qcow2 4M`,
  `qemu-io -f qcow2 -c "write -P 0x11 0 1M" -c "write -P 0x12 2M 64k" base.qcow2 >/dev/null`,
  `qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2`,
  `qemu-io -f qcow2 -c "write -P 0x22 512k 1M" -c "write -z 3M 64k" top.qcow2 >/dev/null`,
];

/**
 * Host allocation is not compared: after a commit QEMU rebuilds an emptied v3
 * image from scratch (make_completely_empty), we unallocate its clusters.
 */
const maskActualSize = (x: unknown[]) => JSON.parse(JSON.stringify(x).replace(/"actual-size":\d+/g, '"actual-size":0')) as unknown[];

/** How far a rate-limited job got before it was cancelled depends on timing. */
const maskOffsets = (x: unknown[]) => JSON.parse(JSON.stringify(x).replace(/"offset":\d+/g, '"offset":0')) as unknown[];

async function check(sc: Scenario) {
  const { ours, theirs } = await differential(sc);
  ours.replies = maskActualSize(ours.replies);
  theirs.replies = maskActualSize(theirs.replies);
  ours.events = maskOffsets(ours.events);
  theirs.events = maskOffsets(theirs.events);
  sc.steps.forEach((s, i) => expect(ours.replies[i], `step ${i}: ${JSON.stringify(s)}`).toEqual(theirs.replies[i]));
  expect(ours.events).toEqual(theirs.events);
  (sc.post ?? []).forEach((p, i) => expect(ours.post[i], p).toEqual(theirs.post[i]));
}

describe.skipIf(!hasQemuSystem)("HMP block commands against QEMU 7.2", { timeout: 120_000 }, () => {
  it("argument errors: missing and extra words, options out of order, bad sizes and quotes", async () => {
    await check({
      setup: CHAIN,
      drive: ["if=none,id=drive0,file={dir}/top.qcow2,format=qcow2,node-name=top"],
      blockdev: ["driver=null-co,node-name=nul"],
      steps: [
        ["hmp block_resize"],
        ["hmp block_resize drive0"],
        ["hmp block_resize drive0 1x"],
        ["hmp block_resize nosuch 2M"],
        ["hmp block_resize top 2M"],
        ["hmp commit"],
        ["hmp commit nosuch"],
        ["hmp commit top"],
        ["hmp drive_backup drive0"],
        ["hmp drive_backup -x drive0 {dir}/b.qcow2"],
        ["hmp drive_backup -f -n drive0 {dir}/b.qcow2"],
        ["hmp drive_backup -n -c -f drive0 {dir}/b.qcow2"],
        ["hmp drive_backup -n -f -c drive0 {dir}/missing.qcow2"],
        ['hmp drive_backup drive0 "{dir}/unterminated'],
        ['hmp drive_backup drive0 "{dir}/bad\\x.qcow2"'],
        ["hmp drive_mirror drive0"],
        ["hmp drive_mirror -c drive0 {dir}/m.qcow2"],
        ["hmp snapshot_blkdev drive0"],
        ["hmp snapshot_blkdev drive0 {dir}/s.raw raw"],
        ["hmp snapshot_blkdev -n drive0 {dir}/missing.qcow2"],
        ["hmp block_stream"],
        ["hmp block_stream nosuch"],
        ["hmp block_stream drive0 0 {dir}/nosuch.qcow2"],
        ["hmp drive_del"],
        ["hmp drive_del nosuch"],
        ["hmp help commit"],
        ["hmp help drive_backup"],
        ["hmp help drive_del"],
      ],
    });
  });

  it("block_resize and commit change the images as QEMU's do", async () => {
    await check({
      setup: CHAIN,
      drive: ["if=none,id=drive0,file={dir}/top.qcow2,format=qcow2,node-name=top", "if=none,id=drive1,driver=null-co"],
      steps: [
        ["hmp commit drive1"],
        ["hmp commit drive0"],
        ["hmp commit drive0"],
        ["hmp block_resize drive0 8M"],
        ["hmp qemu-io drive0 \"write -P 0x33 6M 64k\""],
        ["hmp commit all"],
        ["query-block"],
      ],
      post: [
        "qemu-img check -q top.qcow2 && qemu-img check -q base.qcow2",
        "qemu-img map --output=json top.qcow2",
        "qemu-img info --output=json base.qcow2 | grep virtual-size",
        `qemu-io -f qcow2 -c "read -P 0x11 0 512k" -c "read -P 0x22 512k 1M" -c "read -P 0x12 2M 64k" -c "read -P 0 3M 64k" -c "read -P 0x33 6M 64k" base.qcow2 | grep -v ops`,
      ],
    });
  });

  it("drive_del: a backend with its nodes, a node, one that a job holds", async () => {
    await check({
      setup: CHAIN,
      drive: ["if=none,id=drive0,file={dir}/top.qcow2,format=qcow2,node-name=top", "if=none,id=drive1,driver=null-co"],
      blockdev: ["driver=null-co,node-name=nul"],
      steps: [
        ["block-stream", { "job-id": "s", device: "top", speed: 1 }],
        ["hmp drive_del drive0"],
        ["block-job-cancel", { device: "s", force: true }],
        ["hmp drive_del drive1"],
        ["hmp drive_del nul"],
        ["hmp drive_del drive1"],
        ["query-block"],
        ["hmp info block -n"],
      ],
    });
  });

  it("blockdev-snapshot-sync drains like QEMU's one-action transaction; image creation refusals", async () => {
    await check({
      setup: CHAIN,
      drive: ["if=none,id=drive0,file={dir}/top.qcow2,format=qcow2", "if=none,id=drive1,driver=null-co"],
      steps: [
        ["drive-backup", { device: "drive1", target: "{dir}/b1.raw", sync: "full", format: "raw", speed: 1 }],
        ["drive-backup", { device: "drive0", target: "{dir}/b0.qcow2", sync: "full", speed: 1 }],
        ["blockdev-snapshot-sync", { device: "drive0", "snapshot-file": "{dir}/s.qcow2" }],
        ["blockdev-snapshot-sync", { device: "drive1", "snapshot-file": "{dir}/s.raw", format: "raw" }],
        ["blockdev-snapshot-sync", { device: "drive1", "snapshot-file": "{dir}/s.vdi", format: "nosuch" }],
        ["drive-mirror", { device: "drive1", target: "{dir}/m.qcow2", sync: "full" }],
        ["drive-backup", { device: "drive1", "job-id": "x", target: "{dir}/x.qcow2", sync: "full" }],
        ["drive-backup", { device: "drive0", "job-id": "y", target: "{dir}/y.raw", sync: "top", format: "raw" }],
        ["block-job-cancel", { device: "drive0", force: true }],
        ["block-job-cancel", { device: "drive1", force: true }],
      ],
    });
  });

  it("drive_add: backends, node trees (-n), duplicates, interfaces that need a device", async () => {
    await check({
      setup: [...CHAIN, "cp base.qcow2 d1.qcow2", "cp base.qcow2 d2.qcow2", "cp base.qcow2 d3.qcow2"],
      steps: [
        ["hmp drive_add"],
        ["hmp drive_add 0"],
        ["hmp drive_add 0 id=x1,file={dir}/d1.qcow2"],
        ["hmp drive_add 0 id=x1,file={dir}/d2.qcow2"],
        ["hmp drive_add 0 if=virtio,id=x2,file={dir}/d2.qcow2"],
        ["hmp drive_add 0 if=none,id=x3,file={dir}/d3.qcow2,format=raw"],
        ["hmp drive_add 0 if=none,id=x4,file={dir}/nosuch.qcow2"],
        ["hmp drive_add 0 if=none,id=x5,driver=null-co,bogus=1"],
        ["hmp drive_add 0 if=none,id=x6,driver=null-co,node-name=x3"],
        ["hmp drive_add 0 if=none,id=x7,driver=null-co,,x"],
        ["hmp drive_add -n 0 driver=null-co"],
        ["hmp drive_add -n 0 driver=null-co,node-name=n1"],
        ["hmp drive_add -n 0 driver=null-co,node-name=n1"],
        ["hmp drive_add -n 0 driver=qcow2,node-name=n2,file.driver=file,file.filename={dir}/d2.qcow2"],
        ["hmp drive_add -n 0 if=none,driver=null-co,node-name=n3"],
        ["query-block"],
        ["hmp drive_del x1"],
        ["hmp drive_del n1"],
        ["hmp info block -n"],
      ],
    });
  });
});
