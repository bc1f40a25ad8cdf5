/**
 * Internal snapshots against QEMU 7.2: blockdev-snapshot-internal-sync and
 * blockdev-snapshot-delete-internal-sync (plain and in transactions), their
 * errors in QEMU's order, what query-block / query-named-block-nodes and HMP
 * `info snapshots` list, and the images qemu-img finds afterwards.
 */
import { describe, expect, it } from "vitest";
import { differential, hasQemuSystem, type Scenario } from "../block/helpers.ts";
import { haveQemu } from "../protocol/harness.ts";
import { bothSchemas, entity } from "../protocol/schema-view.ts";

const SETUP = [
  `qemu-img create -q -f qcow2 a.qcow2 4M`,
  `qemu-io -f qcow2 -c "write -P 0x11 0 1M" -c "write -c -P 0x12 2M 64k" a.qcow2 >/dev/null`,
  `qemu-img create -q -f qcow2 b.qcow2 1M`,
  `qemu-img create -q -f raw r.raw 1M`,
  `qemu-img create -q -f qcow2 ro.qcow2 1M`,
  `qemu-img snapshot -c pre ro.qcow2`,
  `qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M`,
];

/** Dates and guest clocks differ between runs (and between the two sides); so does host allocation. */
function maskTimes(x: unknown[]): unknown[] {
  return JSON.parse(
    JSON.stringify(x)
      .replace(/"(date-sec|date-nsec|vm-clock-sec|vm-clock-nsec|actual-size)":\d+/g, '"$1":0')
      .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/g, "DATE")
      .replace(/\d\d:\d\d:\d\d\.\d{3}/g, "CLOCK")
      // QEMU punches holes where snapshot clusters were freed (pass-discard-snapshot); we do not.
      .replace(/disk size: [^\\]+/g, "disk size: N"),
  ) as unknown[];
}

async function check(sc: Scenario) {
  const { ours, theirs } = await differential(sc);
  const [o, t] = [maskTimes(ours.replies), maskTimes(theirs.replies)];
  sc.steps.forEach((s, i) => expect(o[i], `step ${i}: ${JSON.stringify(s)}`).toEqual(t[i]));
  // How far a rate-limited job got before it was cancelled depends on timing.
  const offsets = (e: unknown[]) => JSON.parse(JSON.stringify(e).replace(/"offset":\d+/g, '"offset":0')) as unknown[];
  expect(offsets(ours.events)).toEqual(offsets(theirs.events));
  const [op, tp] = [maskTimes(ours.post), maskTimes(theirs.post)];
  (sc.post ?? []).forEach((p, i) => expect(op[i], p).toEqual(tp[i]));
}

const snap = (device: string, name: string) => ["blockdev-snapshot-internal-sync", { device, name }] as [string, Record<string, unknown>];
const del = (device: string, a: { id?: string; name?: string }) =>
  ["blockdev-snapshot-delete-internal-sync", { device, ...a }] as [string, Record<string, unknown>];

describe.skipIf(!hasQemuSystem)("internal snapshots against QEMU 7.2", { timeout: 120_000 }, () => {
  it("refusals in QEMU's order", async () => {
    await check({
      setup: SETUP,
      drive: [
        "if=none,id=drive0,file={dir}/a.qcow2,format=qcow2",
        "if=none,id=raw0,file={dir}/r.raw,format=raw",
        "if=none,id=empty0",
        "if=none,id=ro0,file={dir}/ro.qcow2,format=qcow2,readonly=on",
        "if=none,id=v2,file={dir}/v2.qcow2,format=qcow2",
      ],
      blockdev: ["driver=qcow2,node-name=n0,file.driver=file,file.filename={dir}/b.qcow2,file.node-name=f0"],
      steps: [
        snap("nope", "x"),
        snap("empty0", "x"),
        snap("raw0", "x"),
        snap("ro0", "x"),
        snap("f0", "x"),
        snap("drive0", ""),
        snap("drive0", "s1"),
        snap("drive0", "s1"),
        del("drive0", {}),
        del("nope", { name: "s1" }),
        del("f0", { name: "s1" }),
        del("empty0", { id: "1" }),
        del("raw0", { id: "1" }),
        del("drive0", { name: "zz" }),
        del("drive0", { id: "9", name: "zz" }),
        del("drive0", { id: "1", name: "s2" }),
        del("ro0", { name: "pre" }),
        ["transaction", { actions: [{ type: "blockdev-snapshot-internal-sync", data: { device: "n0", name: "y" } }], properties: { "completion-mode": "grouped" } }],
        ["query-named-block-nodes", { flat: true }],
        ["block_resize", { device: "v2", size: 2097152 }],
        snap("v2", "s"),
        ["block_resize", { device: "v2", size: 4194304 }],
        ["hmp info snapshots"],
      ],
      post: ["qemu-img check v2.qcow2", "qemu-img snapshot -l v2.qcow2", "qemu-img check a.qcow2", "qemu-img snapshot -l a.qcow2", "qemu-img snapshot -l b.qcow2"],
    });
  });

  it("snapshots keep their data; deleting and aborting leave clean images", async () => {
    await check({
      setup: SETUP,
      drive: ["if=none,id=drive0,file={dir}/a.qcow2,format=qcow2"],
      blockdev: ["driver=qcow2,node-name=n0,file.driver=file,file.filename={dir}/b.qcow2"],
      steps: [
        ["hmp info snapshots"],
        snap("drive0", "s1"),
        ['hmp qemu-io drive0 "write -P 0x21 64k 128k"'],
        ['hmp qemu-io drive0 "write -P 0x22 2M 4k"'],
        snap("drive0", "s2"),
        ['hmp qemu-io drive0 "write -z 0 64k"'],
        snap("n0", "s1"),
        ["query-block"],
        ["hmp info snapshots"],
        ["transaction", { actions: [{ type: "blockdev-snapshot-internal-sync", data: { device: "drive0", name: "t" } }, { type: "abort", data: {} }] }],
        ["transaction", { actions: [{ type: "blockdev-snapshot-internal-sync", data: { device: "n0", name: "t" } }, { type: "blockdev-snapshot-internal-sync", data: { device: "drive0", name: "t" } }] }],
        ["hmp info snapshots"],
        del("drive0", { id: "1" }),
        ["hmp snapshot_blkdev_internal drive0 h"],
        ["hmp snapshot_blkdev_internal drive0 h"],
        ["hmp snapshot_blkdev_internal drive0"],
        ["hmp snapshot_delete_blkdev_internal drive0 t 3"],
        ["hmp snapshot_delete_blkdev_internal drive0 nope"],
        ["hmp snapshot_delete_blkdev_internal drive0"],
        ["hmp help snapshot_blkdev_internal"],
        ["hmp help snapshot_delete_blkdev_internal"],
        ["hmp info snapshots"],
        ["hmp info block -v"],
        ["query-named-block-nodes"],
      ],
      post: [
        "qemu-img check a.qcow2",
        "qemu-img check b.qcow2",
        "qemu-img snapshot -l a.qcow2",
        "qemu-img snapshot -l b.qcow2",
        "qemu-img convert -l snapshot.name=s2 -O raw a.qcow2 s2.raw && md5sum < s2.raw",
        "qemu-img convert -l snapshot.name=h -O raw a.qcow2 h.raw && md5sum < h.raw",
        "qemu-img convert -O raw a.qcow2 now.raw && md5sum < now.raw",
      ],
    });
  });

  it("a block job on the node blocks both commands", async () => {
    await check({
      setup: [
        `qemu-img create -q -f qcow2 base.qcow2 4M`,
        `qemu-io -f qcow2 -c "write -P 0x11 0 4M" base.qcow2 >/dev/null`,
        `qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2`,
        `qemu-img snapshot -c pre top.qcow2`,
      ],
      drive: ["if=none,id=drive0,file={dir}/top.qcow2,format=qcow2"],
      steps: [
        ["block-stream", { device: "drive0", "job-id": "j", speed: 1 }],
        snap("drive0", "x"),
        del("drive0", { name: "pre" }),
        ["hmp snapshot_blkdev_internal drive0 x"],
        ["block-job-cancel", { device: "j" }],
      ],
    });
  });
});

describe.skipIf(!haveQemu)("internal snapshot commands in query-qmp-schema vs QEMU 7.2", () => {
  const schemas = bothSchemas();
  for (const name of ["blockdev-snapshot-internal-sync", "blockdev-snapshot-delete-internal-sync"]) {
    it(`command ${name}`, () => {
      expect(entity(schemas.ours(), name, { coarse: true })).toEqual(entity(schemas.theirs(), name, { coarse: true }));
    });
  }
});
