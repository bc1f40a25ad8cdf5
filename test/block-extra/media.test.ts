/**
 * Removable media against QEMU 7.2 (qemu-system-x86_64 -M none): eject,
 * trays, blockdev-change-medium and its read-only modes, op blockers, what
 * other commands answer for a drive without medium, HMP eject/change; and
 * the new commands' query-qmp-schema entries.
 */
import { describe, expect, it } from "vitest";
import { commands as mediaCommands, events as mediaEvents } from "../../src/commands/block-media.ts";
import { differential, hasQemuSystem, type Scenario, type SideResult } from "../block/helpers.ts";
import { haveQemu } from "../protocol/harness.ts";
import { bothSchemas, entity } from "../protocol/schema-view.ts";

const IMAGES = [
  "qemu-img create -q -f qcow2 a.qcow2 16M",
  "qemu-img create -q -f qcow2 b.qcow2 8M",
  "qemu-img create -q -f qcow2 c.qcow2 4M",
  "qemu-img create -q -f raw r.raw 1M",
];

/** Sizes on disk depend on qcow2 allocation details that are not the subject here. */
function masked(r: SideResult): SideResult {
  return JSON.parse(JSON.stringify(r).replace(/"actual-size":\d+/g, '"actual-size":0'));
}

async function expectSame(sc: Scenario & { ignoreEvents?: boolean }) {
  const { ours, theirs } = await differential({ setup: IMAGES, ...sc });
  if (sc.ignoreEvents) ours.events = theirs.events = [];
  expect(masked(ours)).toEqual(masked(theirs));
}

const DRIVES = ["if=none,id=drive0,file={dir}/a.qcow2", "if=none,id=empty"];

describe.skipIf(!hasQemuSystem)("removable media against QEMU 7.2", { timeout: 120_000 }, () => {
  it("eject, trays, remove/insert-medium: device names, qdev ids, argument checks", async () => {
    await expectSame({
      drive: DRIVES,
      steps: [
        ["query-block"],
        ["eject", { device: "drive0" }],
        ["query-block"],
        ["eject", { device: "drive0" }],
        ["eject", { device: "empty", force: true }],
        ["eject", { id: "drive0" }],
        ["eject", { device: "nope" }],
        ["eject", {}],
        ["eject", { device: "drive0", id: "x" }],
        ["blockdev-open-tray", { device: "empty" }],
        ["blockdev-open-tray", { device: "empty", force: true }],
        ["blockdev-close-tray", { device: "empty" }],
        ["blockdev-open-tray", { id: "empty" }],
        ["blockdev-close-tray", {}],
        ["blockdev-open-tray", { device: "nope" }],
        ["blockdev-remove-medium", { id: "empty" }],
        ["blockdev-insert-medium", { id: "empty", "node-name": "x" }],
        ["query-named-block-nodes"],
        ["x-debug-query-block-graph"],
        ["hmp info block"],
      ],
    });
  });

  it("change-medium: root state (read-only, cache, detect-zeroes), read-only modes, open errors, locks", async () => {
    await expectSame({
      drive: [
        "if=none,id=rw,file={dir}/a.qcow2,cache=none",
        "if=none,id=ro,file={dir}/r.raw,format=raw,readonly=on",
        "if=none,id=emptyro,readonly=on,detect-zeroes=on",
        "if=none,id=empty",
        "if=none,id=cd,media=cdrom,werror=stop,rerror=stop,cache.writeback=off,aio=threads",
      ],
      steps: [
        ["blockdev-change-medium", { device: "cd", filename: "{dir}/r.raw", format: "raw" }],
        ["blockdev-change-medium", { device: "emptyro", filename: "{dir}/b.qcow2" }],
        ["blockdev-change-medium", { device: "ro", filename: "{dir}/c.qcow2", "read-only-mode": "read-write" }],
        ["query-block"],
        ["blockdev-change-medium", { device: "empty", filename: "{dir}/c.qcow2" }],
        ["blockdev-change-medium", { device: "empty", filename: "{dir}/nonexist" }],
        ["blockdev-change-medium", { device: "empty", filename: "{dir}/r.raw", format: "qcow2" }],
        ["blockdev-change-medium", { device: "empty", filename: "{dir}/r.raw", format: "bogus" }],
        ["blockdev-change-medium", { device: "nope", filename: "{dir}/nonexist" }],
        ["blockdev-change-medium", { id: "empty", filename: "{dir}/r.raw" }],
        ["blockdev-change-medium", { filename: "{dir}/r.raw" }],
        ["blockdev-change-medium", { device: "empty", filename: "{dir}/r.raw", "read-only-mode": "retain" }],
        ["blockdev-change-medium", { device: "rw", filename: "{dir}/a.qcow2", "read-only-mode": "read-only" }],
        ["query-block"],
        ["blockdev-change-medium", { device: "rw", filename: "{dir}/a.qcow2", force: true }],
        ["query-block"],
        ["query-named-block-nodes"],
        ["x-debug-query-block-graph"],
        ["hmp info block"],
      ],
      post: ["qemu-img check a.qcow2 && qemu-img check b.qcow2 && qemu-img check c.qcow2"],
    });
  });

  it("a backend keeps what qemu-io made it ask for: a writer cannot take a read-only medium", async () => {
    await expectSame({
      drive: DRIVES,
      steps: [
        ["hmp qemu-io drive0 \"write -q 0 512\""],
        ["blockdev-change-medium", { device: "drive0", filename: "{dir}/b.qcow2", "read-only-mode": "read-only" }],
        ["query-block"],
        ["query-named-block-nodes"],
        ["blockdev-change-medium", { device: "drive0", filename: "{dir}/b.qcow2", "read-only-mode": "read-write" }],
        ["blockdev-change-medium", { device: "empty", filename: "{dir}/c.qcow2", format: "raw" }],
        ["x-debug-query-block-graph"],
        ["hmp qemu-io empty \"write -q 0 512\""],
        ["x-debug-query-block-graph"],
      ],
    });
  });

  it("a block job on the medium blocks eject and change-medium, not the trays", async () => {
    await expectSame({
      setup: [...IMAGES, "qemu-io -f qcow2 -c 'write 0 8M' a.qcow2 >/dev/null"],
      drive: DRIVES,
      blockdev: ["driver=null-co,node-name=t,size=16777216"],
      steps: [
        ["blockdev-backup", { "job-id": "j", device: "drive0", target: "t", sync: "full", speed: 1024 }],
        ["eject", { device: "drive0" }],
        ["eject", { device: "drive0", force: true }],
        ["hmp eject drive0"],
        ["blockdev-change-medium", { device: "drive0", filename: "{dir}/b.qcow2" }],
        ["blockdev-change-medium", { device: "drive0", filename: "{dir}/nonexist" }],
        ["blockdev-open-tray", { device: "drive0" }],
        ["blockdev-close-tray", { device: "drive0" }],
        ["query-named-block-nodes", { flat: true }],
        ["query-block"],
      ],
      // The job's pause/resume events around drained sections depend on where its
      // (rate-limited) loop happens to be; the replies are the subject here.
      ignoreEvents: true,
    });
  });

  it("other commands on a drive without medium", async () => {
    await expectSame({
      drive: DRIVES,
      blockdev: ["driver=null-co,node-name=x"],
      steps: [
        ["eject", { device: "drive0" }],
        ["query-blockstats"],
        ["query-blockstats", { "query-nodes": true }],
        ["block_resize", { device: "drive0", size: 1048576 }],
        ["block_resize", { device: "empty", size: 1048576 }],
        ["blockdev-backup", { device: "empty", target: "x", sync: "full" }],
        ["drive-backup", { device: "empty", target: "{dir}/t.qcow2", sync: "full" }],
        ["drive-mirror", { device: "empty", target: "{dir}/t.qcow2", sync: "full" }],
        ["blockdev-mirror", { device: "empty", target: "x", sync: "full" }],
        ["blockdev-mirror", { "job-id": "j", device: "x", target: "empty", sync: "full" }],
        ["blockdev-backup", { "job-id": "j", device: "x", target: "empty", sync: "full" }],
        ["block-stream", { device: "empty" }],
        ["block-commit", { device: "empty" }],
        ["block-dirty-bitmap-add", { node: "empty", name: "b" }],
        ["block-dirty-bitmap-remove", { node: "empty", name: "b" }],
        ["blockdev-snapshot-sync", { device: "empty", "snapshot-file": "{dir}/s.qcow2" }],
        ["blockdev-snapshot", { node: "empty", overlay: "x" }],
        ["block-set-write-threshold", { "node-name": "empty", "write-threshold": 1 }],
        ["block-export-add", { type: "nbd", id: "e", "node-name": "empty" }],
        ["blockdev-del", { "node-name": "empty" }],
        ["x-blockdev-change", { parent: "empty", node: "x" }],
        ["transaction", { actions: [{ type: "blockdev-snapshot-sync", data: { device: "empty", "snapshot-file": "{dir}/s.qcow2" } }] }],
        ["transaction", { actions: [{ type: "block-dirty-bitmap-add", data: { node: "empty", name: "b" } }] }],
        ["transaction", { actions: [{ type: "drive-backup", data: { device: "empty", target: "{dir}/t.qcow2", sync: "full" } }] }],
        ["x-debug-query-block-graph"],
        ["hmp info block"],
        ["hmp info block -v empty"],
        ["hmp info block empty"],
        ["hmp info block x"],
        ["hmp info blockstats"],
        ["hmp qemu-io -d empty \"read 0 512\""],
        ["hmp qemu-io empty \"read 0 512\""],
        ["hmp qemu-io empty \"write 0 512\""],
        ["hmp qemu-io empty \"write -z 0 512\""],
        ["hmp qemu-io empty \"readv 0 512\""],
        ["hmp qemu-io empty \"writev 0 512\""],
        ["hmp qemu-io empty \"aio_write 0 512\""],
        ["hmp qemu-io empty \"aio_read 0 512\""],
        ["hmp qemu-io empty \"aio_flush\""],
        ["hmp qemu-io empty \"discard 0 512\""],
        ["hmp qemu-io empty \"flush\""],
        ["hmp qemu-io empty \"length\""],
        ["hmp qemu-io empty \"map\""],
        ["hmp qemu-io empty \"truncate 512\""],
      ],
    });
  });

  it("HMP eject and change", async () => {
    await expectSame({
      drive: DRIVES,
      steps: [
        ["hmp change empty {dir}/b.qcow2"],
        ["hmp change drive0 {dir}/c.qcow2 qcow2 read-only"],
        ["hmp change drive0 {dir}/c.qcow2 qcow2 bogus"],
        ["hmp change drive0 {dir}/nonexist"],
        ["hmp change nope {dir}/c.qcow2"],
        ["hmp change drive0 -f {dir}/r.raw raw read-write"],
        ["hmp change drive0"],
        ["hmp change"],
        ["hmp change drive0 -x {dir}/r.raw"],
        ["hmp change drive0 {dir}/r.raw raw retain extra"],
        ["hmp change vnc password secret"],
        ["hmp change vnc passwd"],
        ["hmp change vnc x"],
        ["hmp change vnc password x read-only"],
        ["query-block"],
        ["hmp eject drive0"],
        ["hmp eject -f empty"],
        ["hmp eject nope"],
        ["hmp eject"],
        ["hmp eject -x drive0"],
        ["hmp eject drive0 extra"],
        ["hmp info block"],
      ],
    });
  });
});

describe.skipIf(!haveQemu)("removable media introspection vs real QEMU", () => {
  const schemas = bothSchemas();
  for (const { name } of [...mediaCommands, ...mediaEvents]) {
    it(name, () => {
      const ours = entity(schemas.ours(), name, { coarse: true });
      expect(ours).toBeDefined();
      expect(ours).toEqual(entity(schemas.theirs(), name, { coarse: true }));
    });
  }
});
