import { describe, expect, it, beforeEach, afterEach } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openFileStore, openRaw, createRaw, isImageIoError } from "../../src/image/index.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-raw-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("raw image", () => {
  it("reads, writes, zeroes, discards, resizes", async () => {
    const file = path.join(dir, "a.raw");
    const store = openFileStore(file, { create: true });
    await createRaw(store, { size: 1 << 20 });
    const img = await openRaw(store);
    expect(img.size).toBe(1 << 20);
    await img.write(new Uint8Array(4096).fill(0xaa), 8192);
    const buf = new Uint8Array(3 * 4096);
    await img.read(buf, 4096);
    expect(buf.subarray(0, 4096).every((b) => b === 0)).toBe(true);
    expect(buf.subarray(4096, 8192).every((b) => b === 0xaa)).toBe(true);
    await img.writeZeroes(8192 + 100, 100);
    await img.read(buf, 8192);
    expect(buf[99]).toBe(0xaa);
    expect(buf[100]).toBe(0);
    expect(buf[200]).toBe(0xaa);
    await img.discard(8192, 4096);
    await img.read(buf, 8192);
    expect(buf.subarray(0, 4096).every((b) => b === 0)).toBe(true);
    await img.resize(2 << 20);
    expect(img.size).toBe(2 << 20);
    expect(fs.statSync(file).size).toBe(2 << 20);
    // reads past the end are zeros
    const tail = new Uint8Array(8192).fill(1);
    await img.read(tail, (2 << 20) - 4096);
    expect(tail.every((b) => b === 0)).toBe(true);
    await expect(img.write(new Uint8Array(1), 2 << 20)).rejects.toSatisfy(isImageIoError);
    expect(await img.blockStatus(0, 1 << 30)).toEqual({ offset: 0, length: 2 << 20, allocated: true, zero: false, data: true });
    await img.close();
  });

  it("refuses writes when read-only", async () => {
    const file = path.join(dir, "b.raw");
    fs.writeFileSync(file, new Uint8Array(4096).fill(7));
    const img = await openRaw(openFileStore(file, { readOnly: true }), { readOnly: true });
    await expect(img.write(new Uint8Array(1), 0)).rejects.toMatchObject({ errno: "EPERM" });
    const b = new Uint8Array(2);
    await img.read(b, 4095);
    expect([...b]).toEqual([7, 0]);
    await img.close();
  });

  it("reports a missing file by errno", () => {
    expect(() => openFileStore(path.join(dir, "nope"))).toThrow("No such file or directory");
  });
});
