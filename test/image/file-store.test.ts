import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openFileStore } from "../../src/image/index.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-store-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Bytes that differ at every offset, so a misplaced piece shows. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 9) + seed) & 0xff;
  return b;
}

describe("FileStore", () => {
  it("reads large ranges in the thread pool with the same bytes as small synchronous reads, zeros past EOF", async () => {
    const file = path.join(dir, "a.img");
    const data = pattern(3 << 20, 7);
    fs.writeFileSync(file, data);
    const store = openFileStore(file, { readOnly: true });
    const big = new Uint8Array(1 << 20).fill(0xee);
    await store.pread(big, 123_456);
    expect(Buffer.compare(big, data.subarray(123_456, 123_456 + (1 << 20)))).toBe(0);
    // a large read that runs past the end of the file ends in zeros
    const tail = new Uint8Array(512 << 10).fill(0xee);
    await store.pread(tail, (3 << 20) - 4096);
    expect(Buffer.compare(tail.subarray(0, 4096), data.subarray((3 << 20) - 4096))).toBe(0);
    expect(tail.subarray(4096).every((b) => b === 0)).toBe(true);
    const small = new Uint8Array(4096);
    await store.pread(small, 123_456);
    expect(Buffer.compare(small, data.subarray(123_456, 123_456 + 4096))).toBe(0);
    await store.close();
  });

  it("close waits for reads still in the thread pool, and later reads fail cleanly", async () => {
    const file = path.join(dir, "b.img");
    const data = pattern(8 << 20, 3);
    fs.writeFileSync(file, data);
    const store = openFileStore(file, { readOnly: true });
    const bufs = Array.from({ length: 8 }, () => new Uint8Array(1 << 20));
    const reads = bufs.map((b, i) => store.pread(b, i << 20));
    await store.close();
    await Promise.all(reads);
    bufs.forEach((b, i) => expect(Buffer.compare(b, data.subarray(i << 20, (i + 1) << 20))).toBe(0));
    await expect(store.pread(new Uint8Array(1 << 20), 0)).rejects.toThrow();
  });

  it("writes and flushes many MiB with syncs running behind the writer", async () => {
    const file = path.join(dir, "c.img");
    const store = openFileStore(file, { create: true });
    const chunk = pattern(1 << 20, 1);
    // past the write-behind threshold twice, with a flush in the middle
    for (let i = 0; i < 80; i++) {
      await store.pwrite(chunk, i << 20);
      if (i === 40) await store.flush();
    }
    await store.flush();
    await store.close();
    const back = fs.readFileSync(file);
    expect(back.length).toBe(80 << 20);
    for (let i = 0; i < 80; i += 13) expect(Buffer.compare(back.subarray(i << 20, (i + 1) << 20), chunk)).toBe(0);
  });

  it("leaves a file alone when truncated to the size it has", async () => {
    const file = path.join(dir, "d.img");
    fs.writeFileSync(file, pattern(4096, 9));
    const before = fs.statSync(file).mtimeMs;
    const store = openFileStore(file);
    await new Promise((r) => setTimeout(r, 20));
    await store.truncate(4096);
    expect(fs.statSync(file).mtimeMs).toBe(before);
    await store.truncate(0);
    expect(fs.statSync(file).size).toBe(0);
    await store.close();
  });
});
