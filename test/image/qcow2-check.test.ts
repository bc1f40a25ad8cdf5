import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { checkQcow2, openFileStore, openQcow2 } from "../../src/image/index.ts";
import { hasQemu, qemuCheck, qemuImg, qemuIo, tmpDir } from "./qemu-tools.ts";

const t = tmpDir();
afterAll(() => t.cleanup());

let n = 0;
function image(opts = "cluster_size=65536"): string {
  const file = t.file(`chk${n++}.qcow2`);
  qemuImg("create", "-q", "-f", "qcow2", "-o", opts, file, "8M");
  qemuIo(file, ["write -P 0x11 0 200k", "write -P 0x22 3M 64k", "write -z 5M 64k"]);
  return file;
}

/** Sets the 16-bit refcount of `cluster` in refcount block 0 (at 0x20000 in fresh QEMU images). */
function setRefcount(file: string, cluster: number, value: number) {
  const b = fs.readFileSync(file);
  b.writeUInt16BE(value, 0x20000 + cluster * 2);
  fs.writeFileSync(file, b);
}

async function check(file: string, repair?: "leaks" | "all") {
  const store = openFileStore(file, { readOnly: !repair });
  try {
    return await checkQcow2(store, { repair });
  } finally {
    await store.close();
  }
}

describe.skipIf(!hasQemu)("checkQcow2 agrees with qemu-img check", () => {
  it("clean image: same allocation numbers and image end", async () => {
    const file = image();
    const ours = await check(file);
    const q = qemuCheck(file).json;
    expect(ours.corruptions + ours.leaks).toBe(0);
    expect(ours.imageEndOffset).toBe(q["image-end-offset"]);
    expect(ours.totalClusters).toBe(q["total-clusters"]);
    expect(ours.allocatedClusters).toBe(q["allocated-clusters"]);
    expect(ours.fragmentedClusters).toBe(q["fragmented-clusters"] ?? 0);
  });

  it("compressed image: same counts", async () => {
    const raw = t.file("x.raw");
    fs.writeFileSync(raw, Buffer.alloc(3 << 20, "hello qcow2 "));
    const file = t.file("xc.qcow2");
    qemuImg("convert", "-c", "-O", "qcow2", raw, file);
    const ours = await check(file);
    const q = qemuCheck(file).json;
    expect(ours.corruptions + ours.leaks).toBe(0);
    expect(ours.compressedClusters).toBe(q["compressed-clusters"]);
    expect(ours.allocatedClusters).toBe(q["allocated-clusters"]);
    expect(ours.imageEndOffset).toBe(q["image-end-offset"]);
  });

  it("finds and repairs a leak", async () => {
    const file = image();
    const end = fs.statSync(file).size;
    fs.truncateSync(file, end + 3 * 65536);
    const leaked = Math.ceil(end / 65536) + 1;
    setRefcount(file, leaked, 1); // nothing references it (QEMU ignores refcounts past EOF)
    const ours = await check(file);
    expect(ours.leaks).toBe(1);
    expect(ours.messages).toContain(`Leaked cluster ${leaked} refcount=1 reference=0`);
    const q = qemuCheck(file);
    expect(q.status).toBe(3);
    expect(q.json.leaks).toBe(1);
    expect(q.stderr).toContain(`Leaked cluster ${leaked} refcount=1 reference=0`);
    const fixed = await check(file, "leaks");
    expect(fixed.leaksFixed).toBe(1);
    expect(fixed.leaks).toBe(0);
    expect(qemuCheck(file).status).toBe(0);
  });

  it("finds and repairs a corruption (refcount too low) and wrong COPIED flags", async () => {
    const file = image();
    setRefcount(file, 5, 0); // the first data cluster
    const ours = await check(file);
    const q = qemuCheck(file);
    expect(q.status).toBe(2);
    expect(ours.corruptions).toBe(q.json.corruptions);
    expect(q.stderr).toContain("ERROR cluster 5 refcount=0 reference=1");
    expect(ours.messages).toContain("ERROR cluster 5 refcount=0 reference=1");
    const fixed = await check(file, "all");
    expect(fixed.corruptions).toBe(0);
    expect(fixed.corruptionsFixed).toBeGreaterThan(0);
    const after = qemuCheck(file);
    expect(after.status).toBe(0);
    // and the image still reads right
    qemuIo(file, ["read -P 0x11 0 200k", "read -P 0x22 3M 64k"]);
  });

  it("a dirty image opened read-write gets its refcounts rebuilt", async () => {
    const file = image("lazy_refcounts=on");
    setRefcount(file, 5, 0);
    const b = fs.readFileSync(file);
    b.writeBigUInt64BE(1n, 72); // dirty
    fs.writeFileSync(file, b);
    const img = await openQcow2(openFileStore(file));
    expect(img.dirty).toBe(false);
    await img.close();
    expect(qemuCheck(file).status).toBe(0);
  });
});

describe.skipIf(!hasQemu)("checkQcow2 on garbage", () => {
  it("an L2 entry pointing far past the end is one corruption, found quickly", async () => {
    const file = image();
    const b = fs.readFileSync(file);
    b.writeBigUInt64BE(0x80ff_ffff_ffff_0000n, 0x40000 + 8 * 7); // L2[7] -> ~2^56
    fs.writeFileSync(file, b);
    const t0 = Date.now();
    const ours = await check(file);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ours.corruptions).toBeGreaterThan(0);
    expect(qemuCheck(file).status).toBe(2);
  });
});
