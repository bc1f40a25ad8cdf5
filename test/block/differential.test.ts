/**
 * The same conversations against qmpemu and real QEMU 7.2 (qemu-system-x86_64
 * -M none), compared reply by reply after masking auto node names.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { driveOpts, emulator, hasQemuSystem, keyval, normalise, realQemu, sh, tmpDir } from "./helpers.ts";

type Step = [string, Record<string, unknown>?];

const d = tmpDir();
const F = (n: string) => d.file(n);

beforeAll(() => {
  if (!hasQemuSystem) return;
  sh(`qemu-img create -q -f qcow2 src.qcow2 16M && qemu-io -f qcow2 -c "write -P 0xab 0 4M" -c "write -P 0xcd 8M 1M" src.qcow2 >/dev/null`, d.dir);
  sh(`qemu-img create -q -f qcow2 base.qcow2 16M && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2`, d.dir);
  sh(`qemu-img create -q -f qcow2 -o compat=0.10 old.qcow2 1M && qemu-img create -q -f raw r.raw 1M`, d.dir);
  sh(`qemu-img create -q -f qcow2 -o cluster_size=512 c512.qcow2 1M && qemu-img create -q -f qcow2 -o cluster_size=2M c2m.qcow2 8M`, d.dir);
  sh(`qemu-img create -q -f qcow2 gone.qcow2 1M && qemu-img create -q -f qcow2 -b gone.qcow2 -F qcow2 ovgone.qcow2 && rm gone.qcow2`, d.dir);
  sh(`qemu-img create -q -f qcow2 -b r.raw -F raw ovraw.qcow2`, d.dir);
});
afterAll(() => d.cleanup());

async function both(steps: Step[], cli: { blockdev?: string[]; drive?: string[] } = {}) {
  const args = [...(cli.blockdev ?? []).flatMap((b) => ["-blockdev", b]), ...(cli.drive ?? []).flatMap((x) => ["-drive", x])];
  const emu = await emulator({ blockdevs: (cli.blockdev ?? []).map(keyval), drives: (cli.drive ?? []).map(driveOpts) });
  const ours: unknown[] = [];
  try {
    for (const [cmd, a] of steps) ours.push(cmd.startsWith("hmp ") ? await emu.hmp(cmd.slice(4)) : await emu.q(cmd, a));
  } finally {
    await emu.close();
  }
  const qemu = await realQemu(args);
  const theirs: unknown[] = [];
  try {
    for (const [cmd, a] of steps) theirs.push(cmd.startsWith("hmp ") ? await qemu.hmp(cmd.slice(4)) : await qemu.q(cmd, a));
  } finally {
    await qemu.close();
  }
  return { ours: normalise(ours) as unknown[], theirs: normalise(theirs) as unknown[] };
}

function expectSame(r: { ours: unknown[]; theirs: unknown[] }, steps: Step[]) {
  steps.forEach((s, i) => expect(r.ours[i], `step ${i}: ${JSON.stringify(s)}`).toEqual(r.theirs[i]));
}

describe.skipIf(!hasQemuSystem)("differential against QEMU 7.2", { timeout: 120_000 }, () => {
  it("blockdev-add / blockdev-del errors and node lists", async () => {
    const file = (n: string) => ({ driver: "file", filename: F(n) });
    const steps: Step[] = [
      ["blockdev-add", { driver: "qcow2", "node-name": "a", file: file("src.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "a", file: file("src.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "b", file: file("missing.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "c", file: file("src.qcow2") }],
      ["blockdev-add", { driver: "raw", "node-name": "1bad", file: file("src.qcow2") }],
      ["blockdev-add", { driver: "nosuch", "node-name": "d" }],
      ["blockdev-add", { driver: "null-co", "node-name": "n", size: 1048576 }],
      ["blockdev-add", { driver: "qcow2", "node-name": "e", file: "n" }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", file: { driver: "file" } }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", file: { driver: "file", filename: 5 } }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", file: { driver: "file", filename: F("r.raw"), bogus: 1 } }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", bogus: 1, file: file("r.raw") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", "read-only": "yes", file: file("r.raw") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", file: { driver: "file", filename: F("r.raw"), aio: "bad" } }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", file: 5 }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f" }],
      ["blockdev-add", { driver: "qcow2", file: "x" }],
      ["blockdev-add", { driver: "qcow2", "node-name": "f", file: "nosuch" }],
      ["blockdev-add", { driver: "file", "node-name": "bad name", filename: F("r.raw") }],
      ["blockdev-add", { driver: "file", "node-name": "abcdefghijabcdefghijabcdefghijab", filename: F("r.raw") }],
      ["blockdev-add", { driver: "file", "node-name": "dir", filename: d.dir }],
      ["blockdev-add", { driver: "raw", "node-name": "r7", file: "n", offset: 2000000 }],
      ["blockdev-add", { driver: "raw", "node-name": "r6", file: "n", offset: 512, size: 1048576 }],
      ["blockdev-add", { driver: "raw", "node-name": "r6", file: "n", offset: 512, size: 100 }],
      ["blockdev-add", { driver: "raw", "node-name": "r8", file: "n", offset: 4096, size: 8192 }],
      ["blockdev-add", { driver: "qcow2", "node-name": "g", file: file("ovgone.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "ovr", "read-only": true, file: file("ovraw.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "fs", "force-share": true, file: file("src.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "fs", "force-share": true, "read-only": true, file: file("src.qcow2") }],
      ["blockdev-add", { driver: "qcow2", "node-name": "ro2", "read-only": true, file: file("src.qcow2") }],
      ["query-named-block-nodes", { flat: true }],
      ["query-named-block-nodes"],
      ["x-debug-query-block-graph"],
      ["blockdev-del", { "node-name": "nope" }],
      ["blockdev-del", { "node-name": "n" }],
      ["blockdev-del", { "node-name": "r8" }],
      ["blockdev-del", { "node-name": "a" }],
      ["blockdev-del", { "node-name": "a" }],
      ["blockdev-del", { "node-name": "n" }],
      ["query-named-block-nodes", { flat: true }],
    ];
    expectSame(await both(steps), steps);
  });

  it("-drive backends: query-block, info block, qcow2 v2 and backing chains", async () => {
    const steps: Step[] = [
      ["query-block"],
      ["query-named-block-nodes"],
      ["query-named-block-nodes", { flat: true }],
      ["hmp info block"],
      ["hmp info block drive0"],
      ["hmp info block -n"],
      ["hmp info block -v"],
      ["hmp info block -n -v"],
      ["hmp info block nosuch"],
      ["x-debug-query-block-graph"],
      ["blockdev-del", { "node-name": "src" }],
      ["blockdev-add", { driver: "qcow2", "node-name": "q9", backing: null, file: { driver: "file", filename: F("top.qcow2"), locking: "off" } }],
      ["blockdev-add", { driver: "qcow2", "node-name": "q10", backing: "", file: { driver: "file", filename: F("top.qcow2"), locking: "off" } }],
      ["query-named-block-nodes", { flat: true }],
    ];
    const r = await both(steps, {
      drive: [
        `if=none,id=drive0,file=${F("top.qcow2")},format=qcow2`,
        "if=none,id=empty",
        `if=none,id=d2,file=${F("r.raw")},format=raw,readonly=on,cache=none`,
        `if=none,id=d3,file=${F("src.qcow2")},format=qcow2,node-name=src`,
      ],
      blockdev: [`driver=qcow2,node-name=old,file.driver=file,file.filename=${F("old.qcow2")}`],
    });
    expectSame(r, steps);
  });

  it("qemu-io permission and lookup errors come back in the HMP reply", async () => {
    const steps: Step[] = [
      ["hmp qemu-io f \"write 0 4k\""],
      ["hmp qemu-io rf \"write 0 4k\""],
      ["hmp qemu-io drive0 \"write 0 4k\""],
      ["hmp qemu-io -d drive0 \"write 0 4k\""],
      ["hmp qemu-io nosuch \"read 0 4k\""],
      ["hmp qemu-io q \"read -P 0xab 0 4k\""],
      ["hmp qemu-io q \"write 100M 4k\""],
      ["hmp qemu-io q \"bogus 0 4k\""],
      ["hmp qemu-io q \"write -P 0x12 0 64k\""],
      ["x-debug-query-block-graph"],
    ];
    const r = await both(steps, {
      blockdev: [
        `driver=file,node-name=f,filename=${F("src.qcow2")}`,
        "driver=qcow2,node-name=q,file=f",
        `driver=file,node-name=rf,filename=${F("r.raw")},read-only=on`,
      ],
      drive: [`if=none,id=drive0,file=${F("base.qcow2")},format=qcow2,readonly=on`],
    });
    expectSame(r, steps);
  });

  it("dirty bitmaps: errors, counts and sha256", async () => {
    const steps: Step[] = [
      ["block-dirty-bitmap-add", { node: "drive0", name: "b0" }],
      ["block-dirty-bitmap-add", { node: "drive0", name: "b0" }],
      ["block-dirty-bitmap-add", { node: "drive0", name: "" }],
      ["block-dirty-bitmap-add", { node: "nosuch", name: "x" }],
      ["block-dirty-bitmap-add", { node: "src", name: "g", granularity: 1000 }],
      ["block-dirty-bitmap-add", { node: "src", name: "g", granularity: 256 }],
      ["block-dirty-bitmap-add", { node: "src", name: "g", granularity: 512 }],
      ["block-dirty-bitmap-add", { node: "n", name: "p", persistent: true }],
      ["block-dirty-bitmap-add", { node: "src", name: "p", persistent: true, disabled: true }],
      ["block-dirty-bitmap-add", { node: "n", name: "x".repeat(1024) }],
      ["block-dirty-bitmap-add", { node: "n", name: "nb" }],
      ["block-dirty-bitmap-add", { node: "old", name: "v2", persistent: true }],
      ["block-dirty-bitmap-add", { node: "old", name: "v2", granularity: 4096 }],
      ["block-dirty-bitmap-add", { node: "c512", name: "d" }],
      ["block-dirty-bitmap-add", { node: "c2m", name: "d" }],
      ["block-dirty-bitmap-add", { node: "c2m", name: "p", persistent: true }],
      ["block-dirty-bitmap-add", { node: "rawf", name: "d" }],
      ["block-dirty-bitmap-add", { node: "c512", name: "big", granularity: 2 ** 31 }],
      ["hmp qemu-io drive0 \"write -P 0x11 0 64k\""],
      ["hmp qemu-io src \"write -P 0x22 1M 130k\""],
      ["hmp qemu-io drive0 \"write -z 5M 1k\""],
      ["query-named-block-nodes", { flat: true }],
      ["x-debug-block-dirty-bitmap-sha256", { node: "src", name: "b0" }],
      ["x-debug-block-dirty-bitmap-sha256", { node: "src", name: "g" }],
      ["x-debug-block-dirty-bitmap-sha256", { node: "src", name: "p" }],
      ["x-debug-block-dirty-bitmap-sha256", { node: "src", name: "zz" }],
      ["x-debug-block-dirty-bitmap-sha256", { node: "zz", name: "zz" }],
      ["block-dirty-bitmap-merge", { node: "src", target: "p", bitmaps: ["b0", { node: "src", name: "g" }] }],
      ["block-dirty-bitmap-merge", { node: "src", target: "p", bitmaps: ["nosuch"] }],
      ["block-dirty-bitmap-merge", { node: "src", target: "p", bitmaps: [{ node: "n", name: "nb" }] }],
      ["x-debug-block-dirty-bitmap-sha256", { node: "src", name: "p" }],
      ["block-dirty-bitmap-disable", { node: "src", name: "b0" }],
      ["hmp qemu-io drive0 \"write -P 0x11 8M 64k\""],
      ["block-dirty-bitmap-enable", { node: "src", name: "p" }],
      ["block-dirty-bitmap-clear", { node: "src", name: "g" }],
      ["query-block"],
      ["block-dirty-bitmap-remove", { node: "src", name: "g" }],
      ["block-dirty-bitmap-remove", { node: "src", name: "g" }],
      ["query-named-block-nodes", { flat: true }],
      // Persistent "p" would be stored in src.qcow2 at close, and the second run would find it.
      ["block-dirty-bitmap-remove", { node: "src", name: "p" }],
    ];
    const r = await both(steps, {
      drive: [`if=none,id=drive0,file=${F("src.qcow2")},format=qcow2,node-name=src`],
      blockdev: [
        "driver=null-co,node-name=n,size=4194304",
        `driver=qcow2,node-name=old,file.driver=file,file.filename=${F("old.qcow2")}`,
        `driver=qcow2,node-name=c512,file.driver=file,file.filename=${F("c512.qcow2")}`,
        `driver=qcow2,node-name=c2m,read-only=on,file.driver=file,file.filename=${F("c2m.qcow2")}`,
        `driver=file,node-name=rawf,filename=${F("r.raw")}`,
      ],
    });
    expectSame(r, steps);
  });
});
