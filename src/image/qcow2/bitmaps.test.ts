import { describe, expect, it } from "vitest";
import type { ByteStore } from "../types.ts";
import { parseDirectory, readBitmapBits, serializeDirectory, type StoredBitmap } from "./bitmaps.ts";

/** Just enough of a ByteStore for the bitmap readers. */
function memStore(bytes: Uint8Array): ByteStore {
  return {
    async pread(buf: Uint8Array, offset: number) {
      buf.fill(0);
      buf.set(bytes.subarray(offset, Math.min(bytes.length, offset + buf.length)));
    },
  } as unknown as ByteStore;
}

describe("qcow2 persistent bitmap structures", () => {
  it("reads all-ones, all-zeros and data table entries (QEMU writes only the last two)", async () => {
    const cs = 512;
    const g = 16; // 64 KiB granules: one 512-byte cluster of bits covers 4096 of them
    const size = 3 * 4096 * 2 ** g - 3 * 2 ** g; // the last cluster's last 3 bits lie past the end
    const file = new Uint8Array(8 * cs);
    const table = new DataView(file.buffer, 2 * cs, 24);
    table.setUint32(4, 1); // entry 0: offset 0, bit 0 set = every bit set
    table.setUint32(12, 0); // entry 1: all zeros
    table.setUint32(20, 4 * cs); // entry 2: a data cluster
    file.fill(0xf7, 4 * cs, 5 * cs);
    const bm: StoredBitmap = { name: "b", granularityBits: g, flags: 0, tableOffset: 2 * cs, tableSize: 3, extra: new Uint8Array() };
    const bits = await readBitmapBits(memStore(file), bm, size, cs);
    expect(bits.length).toBe(cs * 3);
    expect(bits.subarray(0, cs).every((b) => b === 0xff)).toBe(true);
    expect(bits.subarray(cs, 2 * cs).every((b) => b === 0)).toBe(true);
    expect(bits.subarray(2 * cs, 3 * cs - 1).every((b) => b === 0xf7)).toBe(true);
    expect(bits[3 * cs - 1]).toBe(0x17); // the 3 bits past the end cleared
    // a table whose size does not fit the disk is refused with QEMU's text
    await expect(readBitmapBits(memStore(file), { ...bm, tableSize: 2 }, size, cs)).rejects.toThrow("Bitmap 'b' doesn't satisfy the constraints");
  });

  it("keeps a directory entry's extra data verbatim through parse and serialise", () => {
    const extra = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const entries: StoredBitmap[] = [
      { name: "with-extra", granularityBits: 16, flags: 2, tableOffset: 0x30000, tableSize: 1, extra },
      { name: "plain", granularityBits: 20, flags: 0, tableOffset: 0x40000, tableSize: 2, extra: new Uint8Array() },
    ];
    const dir = serializeDirectory(entries);
    expect(dir.length % 8).toBe(0);
    const back = parseDirectory(dir, 2);
    expect(back.map((b) => ({ ...b, extra: [...b.extra] }))).toEqual(entries.map((b) => ({ ...b, extra: [...b.extra] })));
  });
});
