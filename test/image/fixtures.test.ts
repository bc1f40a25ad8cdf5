/** The committed fixture images (images/) behave as images/odd/README.md says. */
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { checkQcow2, openFileStore, openImageChain, openQcow2, type CorruptionInfo } from "../../src/image/index.ts";
import { tmpDir } from "./qemu-tools.ts";

const odd = (name: string) => path.resolve("images/odd", name);
const t = tmpDir();
afterAll(() => t.cleanup());

async function openRO(name: string) {
  return openQcow2(openFileStore(odd(name), { readOnly: true }), { readOnly: true });
}

async function read(name: string, offset: number, length: number): Promise<Uint8Array> {
  const img = await openRO(name);
  const buf = new Uint8Array(length);
  await img.read(buf, offset);
  await img.close();
  return buf;
}

const all = (b: Uint8Array, v: number) => b.every((x) => x === v);

describe("fixture images", () => {
  it("the demo disk opens and has its boot signature", async () => {
    const img = await openQcow2(openFileStore(path.resolve("images/demo.qcow2"), { readOnly: true }), { readOnly: true });
    expect(img.size).toBe(64 << 20);
    const b = new Uint8Array(512);
    await img.read(b, 0);
    expect([b[510], b[511]]).toEqual([0x55, 0xaa]);
    const text = new Uint8Array(16);
    await img.read(text, 65536);
    expect(new TextDecoder().decode(text)).toBe("qmpemu demo disk");
    const c = new Uint8Array(65536);
    await img.read(c, 4 << 20);
    expect(all(c, 0x61)).toBe(true);
    expect((await img.blockStatus(4 << 20, 65536)).compressed).toBe(true);
    await img.close();
  });

  for (const name of ["v3.qcow2", "v2.qcow2", "refcount1.qcow2"]) {
    it(`${name} reads its data`, async () => {
      expect(all(await read(name, 0, 8192), 0x11)).toBe(true);
      expect(all(await read(name, 1 << 20, 4096), 0x22)).toBe(true);
      expect(all(await read(name, 8192, 4096), 0)).toBe(true);
    });
  }

  it("zero clusters read as zeros", async () => {
    expect(all(await read("zero-clusters.qcow2", 0, 8192), 0)).toBe(true);
    expect(all(await read("zero-clusters.qcow2", 1 << 20, 4096), 0)).toBe(true);
  });

  const refusals: Array<[string, string]> = [
    ["bad-magic.qcow2", "Image is not in qcow2 format"],
    ["bad-version.qcow2", "Unsupported qcow2 version 4"],
    ["bad-cluster-bits.qcow2", "Unsupported cluster size: 2^22"],
    ["unknown-incompat.qcow2", "Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000000"],
    ["extended-l2.qcow2", "Unsupported qcow2 feature(s): Unknown incompatible feature: 10"],
    ["huge-l1.qcow2", "Active L1 table too large"],
    ["l1-too-small.qcow2", "L1 table is too small"],
  ];
  for (const [name, msg] of refusals) {
    it(`${name} is refused: ${msg}`, async () => {
      await expect(openRO(name)).rejects.toThrow(msg);
    });
  }

  it("corrupt-bit.qcow2 opens read-only only", async () => {
    expect(all(await read("corrupt-bit.qcow2", 0, 4096), 0x11)).toBe(true);
    await expect(openQcow2(openFileStore(odd("corrupt-bit.qcow2"), { readOnly: true }), { readOnly: false })).rejects.toThrow(
      "qcow2: Image is corrupt; cannot be opened read/write",
    );
  });

  it("l2-unaligned.qcow2 fails the read and reports the corruption", async () => {
    const seen: CorruptionInfo[] = [];
    const img = await openQcow2(openFileStore(odd("l2-unaligned.qcow2"), { readOnly: true }), {
      readOnly: true,
      onCorruption: (i) => seen.push(i),
    });
    await expect(img.read(new Uint8Array(512), 0)).rejects.toMatchObject({ desc: "Input/output error" });
    expect(seen[0]).toMatchObject({ msg: "L2 table offset 0x4200 unaligned (L1 index: 0)", fatal: false });
    await img.close();
  });

  it("truncated images read zeros past EOF", async () => {
    const a = await read("truncated.qcow2", 0, 8192);
    expect(all(a.subarray(0, 1000), 0x11)).toBe(true);
    expect(all(a.subarray(1000), 0)).toBe(true);
    expect(all(await read("l2-past-eof.qcow2", 0, 8192), 0)).toBe(true);
  });

  it("compressed clusters: good ones inflate, garbage is an I/O error", async () => {
    expect(all(await read("compressed.qcow2", 0, 65536), "q".charCodeAt(0))).toBe(true);
    await expect(read("compressed-garbage.qcow2", 0, 512)).rejects.toMatchObject({ errno: "EIO" });
  });

  it("the checker sees the leak and the low refcount", async () => {
    const leaked = await checkQcow2(openFileStore(odd("leaked.qcow2"), { readOnly: true }));
    expect([leaked.leaks, leaked.corruptions]).toEqual([1, 0]);
    const low = await checkQcow2(openFileStore(odd("refcount-too-low.qcow2"), { readOnly: true }));
    expect(low.messages).toContain("ERROR cluster 5 refcount=0 reference=1");
    const clean = await checkQcow2(openFileStore(odd("snapshot.qcow2"), { readOnly: true }));
    expect([clean.leaks, clean.corruptions]).toEqual([0, 0]);
  });

  it("dirty-bit.qcow2 is repaired on read-write open (on a copy)", async () => {
    const copy = t.file("dirty.qcow2");
    fs.copyFileSync(odd("dirty-bit.qcow2"), copy);
    const img = await openQcow2(openFileStore(copy));
    expect(img.dirty).toBe(false);
    await img.close();
    const c = await checkQcow2(openFileStore(copy, { readOnly: true }));
    expect([c.leaks, c.corruptions]).toEqual([0, 0]);
  });

  it("backing chain reads through; a looping chain is refused at once", async () => {
    const chain = await openImageChain(odd("backing-top.qcow2"));
    const b = new Uint8Array(8192);
    await chain.top.read(b, 0);
    expect(all(b.subarray(0, 1000), 0x44)).toBe(true);
    expect(all(b.subarray(1000, 4000), 0x55)).toBe(true);
    expect(all(b.subarray(4000), 0x44)).toBe(true);
    await chain.close();
    await expect(openImageChain(odd("loop-a.qcow2"))).rejects.toThrow("creates an infinite loop");
  });
});
