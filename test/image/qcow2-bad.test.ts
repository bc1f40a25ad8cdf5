import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { openFileStore, openQcow2, type CorruptionInfo } from "../../src/image/index.ts";
import { hasQemu, qemuImg, qemuIo, tmpDir } from "./qemu-tools.ts";
import { spawnSync } from "node:child_process";

const t = tmpDir();
afterAll(() => t.cleanup());

let n = 0;
/** A fresh 64 KiB-cluster image with some data, patched by `patch`. */
function image(patch: (buf: Buffer) => unknown, opts = "cluster_size=65536"): string {
  const file = t.file(`bad${n++}.qcow2`);
  qemuImg("create", "-q", "-f", "qcow2", "-o", opts, file, "4M");
  qemuIo(file, ["write -P 0x11 0 128k", "write -P 0x22 1M 64k"]);
  const buf = fs.readFileSync(file);
  const patched = patch(buf);
  fs.writeFileSync(file, Buffer.isBuffer(patched) ? patched : buf);
  return file;
}

async function openError(file: string, readOnly = true): Promise<string> {
  try {
    const img = await openQcow2(openFileStore(file, { readOnly }), { readOnly });
    await img.close();
    return "";
  } catch (e) {
    return (e as Error).message;
  }
}

function qemuOpenError(file: string, readOnly = true): string {
  const args = ["-f", "qcow2", ...(readOnly ? ["-r"] : []), "-c", "read 0 512", file];
  const r = spawnSync("qemu-io", args, { encoding: "utf8" });
  return r.stderr + r.stdout;
}

describe.skipIf(!hasQemu)("bad images: QEMU's verdicts and texts", () => {
  const headerCases: Array<[string, (b: Buffer) => void, string]> = [
    ["bad magic", (b) => b.writeUInt32BE(0x12345678, 0), "Image is not in qcow2 format"],
    ["version 4", (b) => b.writeUInt32BE(4, 4), "Unsupported qcow2 version 4"],
    ["cluster bits 22", (b) => b.writeUInt32BE(22, 20), "Unsupported cluster size: 2^22"],
    ["cluster bits 8", (b) => b.writeUInt32BE(8, 20), "Unsupported cluster size: 2^8"],
    ["unknown incompatible bit", (b) => b.writeBigUInt64BE(1n << 40n, 72), "Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000000"],
    ["refcount order 7", (b) => b.writeUInt32BE(7, 96), "Reference count entry width too large; may not exceed 64 bits"],
    ["header length 100", (b) => b.writeUInt32BE(100, 100), "qcow2 header too short"],
    ["huge L1", (b) => b.writeUInt32BE(0x1000000, 36), "Active L1 table too large"],
    ["L1 too small", (b) => b.writeUInt32BE(0, 36), "L1 table is too small"],
    ["misaligned L1", (b) => b.writeUInt32BE(0x30008, 44), "Active L1 table offset invalid"],
    ["no refcount table", (b) => b.writeUInt32BE(0, 56), "Image does not contain a reference count table"],
    ["compression type without bit", (b) => (b[104] = 1), "qcow2: Compression type incompatible feature bit must be set"],
    ["unknown compression type", (b) => (b[104] = 9), "qcow2: unknown compression type: 9"],
    ["backing offset past cluster", (b) => b.writeBigUInt64BE(0x20000n, 8), "Invalid backing file offset"],
  ];
  for (const [name, patch, msg] of headerCases) {
    it(`${name}: "${msg}"`, async () => {
      const file = image(patch);
      expect(await openError(file)).toBe(msg);
      expect(qemuOpenError(file)).toContain(msg);
    });
  }

  it("names known incompatible features from the image's feature table", async () => {
    const file = image((b) => b.writeBigUInt64BE(0x14n | (1n << 33n), 72));
    const msg = "Unsupported qcow2 feature(s): external data file, extended L2 entries, Unknown incompatible feature: 200000000";
    expect(await openError(file)).toBe(msg);
  });

  it("corrupt bit: read-only open works, read-write is refused", async () => {
    const file = image((b) => b.writeBigUInt64BE(2n, 72));
    expect(await openError(file, true)).toBe("");
    const msg = "qcow2: Image is corrupt; cannot be opened read/write";
    expect(await openError(file, false)).toBe(msg);
    expect(qemuOpenError(file, false)).toContain(msg);
  });

  it("a compressed cluster that does not inflate fails the read with EIO", async () => {
    const raw = t.file("c.raw");
    fs.writeFileSync(raw, Buffer.alloc(256 << 10, "abc"));
    const file = t.file("garbage.qcow2");
    qemuImg("convert", "-c", "-O", "qcow2", raw, file);
    const buf = fs.readFileSync(file);
    // the first compressed stream is the first byte after the L2 table (cluster 5)
    buf.fill(0xff, 5 * 65536, 5 * 65536 + 40);
    fs.writeFileSync(file, buf);
    const img = await openQcow2(openFileStore(file, { readOnly: true }), { readOnly: true });
    await expect(img.read(new Uint8Array(512), 0)).rejects.toMatchObject({ errno: "EIO", desc: "Input/output error" });
    expect(qemuOpenError(file)).toContain("Input/output error");
    await img.close();
  });

  it("tables and data past EOF read as zeros (truncated image)", async () => {
    const file = image((b) => b.subarray(0, 5 * 65536 + 1000)); // data of cluster 0 partly, rest gone
    const img = await openQcow2(openFileStore(file, { readOnly: true }), { readOnly: true });
    const buf = new Uint8Array(4 << 20).fill(9);
    await img.read(buf, 0);
    expect(buf.subarray(0, 1000).every((x) => x === 0x11)).toBe(true);
    expect(buf.subarray(1000).every((x) => x === 0)).toBe(true);
    expect(qemuOpenError(file)).not.toContain("error");
    await img.close();
    // L2 table itself beyond EOF
    const file2 = image((b) => b.subarray(0, 4 * 65536 - 4096));
    const img2 = await openQcow2(openFileStore(file2, { readOnly: true }), { readOnly: true });
    await img2.read(buf, 0);
    expect(buf.every((x) => x === 0)).toBe(true);
    await img2.close();
  });

  it("misaligned L2 offset: EIO, corruption reported and marked (read-write)", async () => {
    const file = image((b) => b.writeUInt32BE(0x40200, 0x30004));
    const seen: CorruptionInfo[] = [];
    const img = await openQcow2(openFileStore(file), { onCorruption: (i) => seen.push(i) });
    await expect(img.read(new Uint8Array(512), 0)).rejects.toMatchObject({ errno: "EIO" });
    expect(seen).toEqual([{ msg: "L2 table offset 0x40200 unaligned (L1 index: 0)", offset: 0x40200, size: 65536, fatal: true }]);
    expect(img.corrupt).toBe(true);
    expect(spawnSync("qemu-io", ["-r", "-f", "qcow2", "-c", "read 0 512", file], { encoding: "utf8" }).stderr).toContain(
      "L2 table offset 0x40200 unaligned (L1 index: 0)",
    );
    await img.close();
    expect(fs.readFileSync(file).readBigUInt64BE(72) & 2n).toBe(2n);
  });

  it("misaligned data cluster: read and write fail, QEMU's message", async () => {
    const file = image((b) => b.writeBigUInt64BE(0x8000000000050200n, 0x40000));
    const msg = "Cluster allocation offset 0x50200 unaligned (L2 offset: 0x40000, L2 index: 0)";
    expect(spawnSync("qemu-io", ["-r", "-f", "qcow2", "-c", "read 0 512", file], { encoding: "utf8" }).stderr).toContain(msg);
    const seen: string[] = [];
    const img = await openQcow2(openFileStore(file), { onCorruption: (i) => seen.push(i.msg) });
    await expect(img.read(new Uint8Array(512), 0)).rejects.toMatchObject({ errno: "EIO" });
    await expect(img.write(new Uint8Array(512), 0)).rejects.toMatchObject({ errno: "EIO" });
    expect(seen[0]).toBe(msg);
    await img.close();
  });
});
