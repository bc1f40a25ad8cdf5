/**
 * Whole conversations run against qmpemu and QEMU 7.2, each on fresh copies
 * of the same images: replies, qemu-io's own reports (QEMU's stdout) and the
 * images afterwards (qemu-img check / compare / map / info) must agree.
 */
import { describe, expect, it } from "vitest";
import { differential, hasQemuSystem, type Scenario } from "./helpers.ts";

const SRC = [
  `qemu-img create -q -f qcow2 src.qcow2 16M`,
  `qemu-io -f qcow2 -c "write -P 0xab 0 4M" -c "write -P 0xcd 8M 1M" src.qcow2 >/dev/null`,
];

/** Compressed clusters differ in size between zlib settings: host allocation is not compared. */
const maskActualSize = (x: unknown) => JSON.parse(JSON.stringify(x).replace(/"actual-size":\d+/g, '"actual-size":0'));

async function check(sc: Scenario, opts: { maskActualSize?: boolean } = {}) {
  const { ours, theirs } = await differential(sc);
  if (opts.maskActualSize) {
    ours.replies = maskActualSize(ours.replies);
    theirs.replies = maskActualSize(theirs.replies);
  }
  sc.steps.forEach((s, i) => expect(ours.replies[i], `step ${i}: ${JSON.stringify(s)}`).toEqual(theirs.replies[i]));
  expect(ours.qemuIo).toEqual(theirs.qemuIo);
  expect(ours.events).toEqual(theirs.events);
  (sc.post ?? []).forEach((p, i) => expect(ours.post[i], p).toEqual(theirs.post[i]));
}

describe.skipIf(!hasQemuSystem)("scenarios against QEMU 7.2", { timeout: 120_000 }, () => {
  it("qemu-io writes, reads, verification and maps land in the image like QEMU's", async () => {
    await check({
      setup: SRC,
      drive: ["if=none,id=drive0,file={dir}/src.qcow2,format=qcow2,node-name=src"],
      steps: [
        ['hmp qemu-io drive0 "write -P 0x11 0 64k"'],
        ['hmp qemu-io drive0 "read -P 0x11 0 64k"'],
        ['hmp qemu-io drive0 "read -P 0x12 0 64k"'],
        ['hmp qemu-io src "write -P 0x22 1M 130k"'],
        ['hmp qemu-io drive0 "write -z 2M 64k"'],
        ['hmp qemu-io drive0 "write -c 3M 64k"'],
        ['hmp qemu-io drive0 "write -c 3M 4k"'],
        ['hmp qemu-io drive0 "writev -P 0x33 5M 4k 8k"'],
        ['hmp qemu-io drive0 "aio_write -P 0x44 6M 64k"'],
        ['hmp qemu-io drive0 "aio_flush"'],
        ['hmp qemu-io drive0 "discard 8M 64k"'],
        ['hmp qemu-io drive0 "write 16M 512"'],
        ['hmp qemu-io drive0 "read 15M 2M"'],
        ['hmp qemu-io drive0 "flush"'],
        ['hmp qemu-io drive0 "map"'],
        ['hmp qemu-io drive0 "alloc 0 1M"'],
        ['hmp qemu-io drive0 "write x 5"'],
        ['hmp qemu-io drive0 "read -v 0 32"'],
        ['hmp qemu-io drive0 "write -P 0x1ab 0 512"'],
        ['hmp qemu-io drive0 "write -P 010 7M 1.5k"'],
        ['hmp qemu-io drive0 "read -P 8 7M 0x600"'],
        ['hmp qemu-io drive0 "write -P -1 0 512"'],
        ["hmp qemu-io drive0 write 0 4k"],
        ["hmp qemu-io drive0 'write 0 4k'"],
        ['hmp qemu-io drive0 "write -P 0x11 0 \\"4k\\""'],
        ["hmp qemu-io drive0 flush"],
        ["hmp qemu-io drive0"],
        ["hmp qemu-io"],
        ["hmp qemu-io -d"],
        ['hmp qemu-io  drive0   "read 0 4k"   '],
        ['hmp qemu-io drive0 "truncate 20M"'],
        ['hmp qemu-io drive0 "length"'],
        ["x-debug-query-block-graph"],
        ["query-named-block-nodes", { flat: true }],
      ],
      post: [
        "qemu-img check --output=json src.qcow2 | grep -v image-end-offset",
        "qemu-img map --output=json src.qcow2 | sed 's/, \"offset\": [0-9]*//'",
        "qemu-io -f qcow2 -c 'read -P 0x22 1M 130k' -c 'read -P 0x33 5M 12k' -c 'read -P 0x44 6M 64k' src.qcow2 | grep -c Pattern || true",
      ],
    }, { maskActualSize: true });
  });

  it("blkdebug fails reads after read_aio, once or always", async () => {
    await check({
      setup: [...SRC, "cp src.qcow2 bad.qcow2", "qemu-img create -q -f qcow2 wbad.qcow2 1M"],
      blockdev: [
        "driver=qcow2,node-name=wbad,file.driver=blkdebug,file.image.driver=file,file.image.filename={dir}/wbad.qcow2,file.inject-error.0.event=write_aio,file.inject-error.0.errno=28,file.inject-error.0.once=on",
        "driver=qcow2,node-name=once,file.driver=blkdebug,file.image.driver=file,file.image.filename={dir}/src.qcow2,file.inject-error.0.event=read_aio,file.inject-error.0.errno=5,file.inject-error.0.once=on",
        "driver=qcow2,node-name=always,file.driver=blkdebug,file.image.driver=file,file.image.filename={dir}/bad.qcow2,file.inject-error.0.event=read_aio,file.inject-error.0.errno=28",
      ],
      steps: [
        ['hmp qemu-io once "read 0 64k"'],
        ['hmp qemu-io once "read 0 64k"'],
        ['hmp qemu-io once "read 12M 64k"'],
        ['hmp qemu-io always "read 12M 64k"'],
        ['hmp qemu-io always "read 0 64k"'],
        ['hmp qemu-io always "read 0 64k"'],
        ['hmp qemu-io wbad "write -P 0x5a 0 64k"'],
        ['hmp qemu-io wbad "write -P 0x5b 64k 64k"'],
        ['hmp qemu-io wbad "read -P 0x5b 64k 64k"'],
        ["query-named-block-nodes", { flat: true }],
        ["x-debug-query-block-graph"],
      ],
      // QEMU pre-zeroes newly allocated clusters (fallocate), so failed writes still take host blocks there.
    }, { maskActualSize: true });
  });

  it("external snapshots build backing chains", async () => {
    await check({
      setup: [...SRC, "qemu-img create -q -f qcow2 ov.qcow2 16M", "qemu-img create -q -f qcow2 ov2.qcow2 16M"],
      drive: ["if=none,id=drive0,file={dir}/src.qcow2,format=qcow2,node-name=src"],
      blockdev: ["driver=qcow2,node-name=ov,backing=,file.driver=file,file.filename={dir}/ov.qcow2".replace("backing=,", "")],
      steps: [
        ["blockdev-snapshot-sync", { "node-name": "src", "snapshot-file": "{dir}/s1.qcow2" }],
        ["blockdev-snapshot-sync", { device: "nosuch", "snapshot-file": "{dir}/s1.qcow2" }],
        ["blockdev-snapshot-sync", { device: "drive0", "snapshot-file": "{dir}/s1.qcow2", "snapshot-node-name": "src" }],
        ["blockdev-snapshot-sync", { device: "drive0", "snapshot-file": "{dir}/s1.qcow2", "snapshot-node-name": "s1" }],
        ['hmp qemu-io drive0 "write -P 0x55 0 64k"'],
        ["blockdev-snapshot-sync", { "node-name": "src", "snapshot-file": "{dir}/s2.qcow2", "snapshot-node-name": "s2" }],
        ["blockdev-snapshot", { node: "drive0", overlay: "ov" }],
        ["blockdev-snapshot", { node: "s1", overlay: "nosuch" }],
        ["query-block"],
        ["query-named-block-nodes", { flat: true }],
        ['hmp qemu-io drive0 "write -P 0x66 64k 64k"'],
        ['hmp qemu-io drive0 "read -P 0x55 0 64k"'],
        ['hmp qemu-io drive0 "read -P 0xab 128k 64k"'],
        ["hmp info block"],
      ],
      post: [
        "qemu-img info --output=json s1.qcow2 | grep -v -e actual-size -e '\"filename\"'",
        "qemu-img check s1.qcow2 >/dev/null; echo $?",
        "qemu-img map --output=json src.qcow2 | sed 's/, \"offset\": [0-9]*//'",
      ],
    });
  });

  it("blockdev-snapshot overlay checks", async () => {
    await check({
      setup: [
        ...SRC,
        "qemu-img create -q -f qcow2 ov.qcow2 16M",
        "qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 hasb.qcow2",
        "qemu-img create -q -f raw r.raw 16M",
      ],
      blockdev: [
        "driver=qcow2,node-name=src,file.driver=file,file.filename={dir}/src.qcow2",
        "driver=qcow2,node-name=ov,file.driver=file,file.filename={dir}/ov.qcow2",
        "driver=raw,node-name=raw,file.driver=file,file.filename={dir}/r.raw",
        "driver=blkdebug,node-name=flt,image=ov",
      ],
      steps: [
        ["blockdev-snapshot", { node: "src", overlay: "raw" }],
        ["blockdev-snapshot", { node: "src", overlay: "flt" }],
        ["blockdev-add", { driver: "qcow2", "node-name": "hb", "read-only": true, file: { driver: "file", filename: "{dir}/hasb.qcow2" } }],
        ["blockdev-snapshot", { node: "src", overlay: "hb" }],
        ["blockdev-snapshot", { node: "hb", overlay: "ov" }],
        ["x-debug-query-block-graph"],
        ["blockdev-del", { "node-name": "src" }],
        ["blockdev-del", { "node-name": "hb" }],
      ],
    });
  });

  it("block_resize", async () => {
    await check({
      setup: [...SRC, "qemu-img create -q -f raw r.raw 1M"],
      drive: ["if=none,id=drive0,file={dir}/src.qcow2,format=qcow2,node-name=src"],
      blockdev: ["driver=raw,node-name=raw,file.driver=file,file.filename={dir}/r.raw"],
      steps: [
        ["block_resize", { device: "drive0", size: 32 * 1024 * 1024 }],
        ["block_resize", { "node-name": "raw", size: 2 * 1024 * 1024 }],
        ["block_resize", { device: "nosuch", size: 1024 }],
        ["block_resize", { "node-name": "src", size: -1 }],
        ['hmp qemu-io drive0 "write -P 0x77 30M 64k"'],
        ["block-dirty-bitmap-add", { node: "raw", name: "b" }],
        ['hmp qemu-io raw "write -P 0x77 1536k 64k"'],
        ["block_resize", { "node-name": "raw", size: 4 * 1024 * 1024 }],
        ["block_resize", { "node-name": "raw", size: 3 * 1024 * 1024 + 100 }],
        ["query-named-block-nodes", { flat: true }],
        // Shrinking: the image library keeps the host file's tail, so queries after this differ in file size.
        ["block_resize", { device: "drive0", size: 8 * 1024 * 1024 }],
        ["block_resize", { device: "drive0", size: 8 * 1024 * 1024 + 100 }],
      ],
      post: [
        "qemu-img info --output=json src.qcow2 | grep virtual-size",
        "ls -l r.raw | awk '{print $5}'",
        "qemu-img check src.qcow2 >/dev/null; echo $?",
        "qemu-img map --output=json src.qcow2 | sed 's/, \"offset\": [0-9]*//'",
      ],
    });
  });

  it("empty drives, detect-zeroes and discard options", async () => {
    await check({
      setup: [...SRC, "qemu-img create -q -f raw z.raw 1M"],
      drive: ["if=none,id=d1", "if=none,id=d2,file={dir}/src.qcow2,format=qcow2,discard=unmap,detect-zeroes=unmap"],
      steps: [
        ['hmp qemu-io d1 "write 0 4k"'],
        ['hmp qemu-io d1 "read 0 4k"'],
        ["blockdev-add", { driver: "null-co", "node-name": "z", "detect-zeroes": "unmap" }],
        ["blockdev-add", { driver: "null-co", "node-name": "z", "detect-zeroes": "unmap", discard: "unmap" }],
        ["blockdev-snapshot-sync", { device: "d1", "snapshot-file": "{dir}/xx.qcow2" }],
        ["block-dirty-bitmap-add", { node: "d1", name: "x" }],
        ['hmp qemu-io d2 "write -P 0 0 64k"'],
        ['hmp qemu-io d2 "discard 8M 64k"'],
        ['hmp qemu-io d2 "map"'],
        ["query-block"],
      ],
      post: ["qemu-img map --output=json src.qcow2 | sed 's/, \"offset\": [0-9]*//'", "qemu-img check src.qcow2 >/dev/null; echo $?"],
      // node:fs cannot punch holes, so discarded clusters keep their host blocks.
    }, { maskActualSize: true });
  });

  it("-drive snapshot=on writes into a temporary overlay", async () => {
    await check({
      setup: [...SRC, "cp src.qcow2 orig.qcow2"],
      drive: ["if=none,id=drive0,file={dir}/src.qcow2,format=qcow2,snapshot=on"],
      steps: [
        ['hmp qemu-io drive0 "write -P 0x99 0 1M"'],
        ['hmp qemu-io drive0 "read -P 0x99 0 1M"'],
        ['hmp qemu-io drive0 "read -P 0xcd 8M 1M"'],
        ["query-named-block-nodes", { flat: true }],
        ["x-debug-query-block-graph"],
        ["query-block"],
      ],
      post: ["qemu-img compare -f qcow2 -F qcow2 src.qcow2 orig.qcow2"],
    }, { maskActualSize: true });
  });

  it("fatal qcow2 corruption: BLOCK_IMAGE_CORRUPTED, then the node is unusable", async () => {
    // L1[0] moved off cluster alignment (QEMU: "L2 table offset 0x40200 unaligned (L1 index: 0)").
    const patch = `python3 -c "
import struct
f=open('cor.qcow2','r+b'); h=f.read(104); l1=struct.unpack('>Q',h[40:48])[0]
f.seek(l1); e=struct.unpack('>Q',f.read(8))[0]; f.seek(l1); f.write(struct.pack('>Q',e+0x200))"`;
    const { ours, theirs } = await differential({
      setup: ["qemu-img create -q -f qcow2 cor.qcow2 16M", 'qemu-io -f qcow2 -c "write -P 0x11 0 64k" cor.qcow2 >/dev/null', patch],
      drive: ["if=none,id=drive0,file={dir}/cor.qcow2,format=qcow2,node-name=c"],
      steps: [
        ['hmp qemu-io drive0 "read 0 4k"'],
        ['hmp qemu-io drive0 "read 0 4k"'],
        ["query-named-block-nodes", { flat: true }],
        ["query-block"],
        ["hmp info block"],
        ["hmp info block -n"],
        ["x-debug-query-block-graph"],
      ],
      post: ["qemu-img check cor.qcow2 >/dev/null 2>&1; echo $?", "qemu-img info cor.qcow2 | grep corrupt"],
    });
    expect(ours.replies).toEqual(theirs.replies);
    expect(ours.qemuIo).toEqual(theirs.qemuIo);
    expect(ours.post).toEqual(theirs.post);
    // QEMU omits offset/size for this check; the message, node and fatality must agree.
    const strip = (e: any) => ({ ...e, data: { ...e.data, offset: undefined, size: undefined } });
    expect(ours.events.map(strip)).toEqual(theirs.events.map(strip));
  });
});
