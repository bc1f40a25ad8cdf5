import { describe, expect, it } from "vitest";
import { decodeCompressed, encodeCompressed, entryOffset, hex } from "./format.ts";
import { newHeader, parseHeader, serializeHeader } from "./header.ts";

const split = (v: bigint) => ({ hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) });

describe("compressed cluster descriptors (spec §5.3)", () => {
  it.each([
    // [entry, cluster_bits, offset, bytes to read]
    [0x4000000000050000n, 16, 0x50000, 512],
    [0x400000000005004fn, 16, 0x5004f, 512 - 0x4f],
    [0x4040000000050000n, 16, 0x50000, 1024], // one additional sector
    [0x6000000000000200n, 9, 0x200, 1024], // 512 B clusters: 1-bit sector field at bit 61
  ])("%s with cluster_bits %i", (entry, bits, offset, length) => {
    const { hi, lo } = split(entry);
    expect(decodeCompressed(hi, lo, bits)).toEqual({ offset, length });
  });

  it("round-trips offset and length for every cluster size", () => {
    for (let bits = 9; bits <= 21; bits++) {
      for (const [off, len] of [
        [0x12345, 1],
        [0x7fff_ffff_01, 2 ** bits - 1],
        [512, 512],
      ] as const) {
        const e = encodeCompressed(off, len, bits);
        const d = decodeCompressed(e.hi, e.lo, bits);
        expect(d.offset).toBe(off);
        // the descriptor names whole sectors: at least `len` bytes, less than a sector more
        expect(d.length).toBeGreaterThanOrEqual(len);
        expect(d.length - len).toBeLessThan(512);
        expect(e.hi & 0x80000000).toBe(0);
        expect(e.hi & 0x40000000).toBe(0x40000000);
      }
    }
  });
});

describe("entries", () => {
  it("reads offsets from bits 9..55 and ignores flags", () => {
    const { hi, lo } = split(0x8000000000040000n);
    expect(entryOffset(hi, lo)).toBe(0x40000);
    const z = split(0x00ff_ffff_ffff_fe01n);
    expect(entryOffset(z.hi, z.lo)).toBe(0x00ff_ffff_ffff_fe00);
  });

  it("formats like C's %#x", () => {
    expect(hex(0)).toBe("0");
    expect(hex(0x4200)).toBe("0x4200");
  });
});

describe("header", () => {
  it("serialises and parses back, with backing file and format", () => {
    const h = newHeader({ version: 3, clusterBits: 16, size: 1 << 30, refcountOrder: 4, backingFile: "base.qcow2", backingFormat: "qcow2" });
    h.refcountTableOffset = 0x10000;
    h.refcountTableClusters = 1;
    h.l1TableOffset = 0x30000;
    h.l1Size = 2;
    const buf = serializeHeader(h);
    const back = parseHeader(buf, { readWrite: true });
    expect(back).toMatchObject({
      version: 3,
      size: 1 << 30,
      backingFile: "base.qcow2",
      backingFormat: "qcow2",
      headerLength: 112,
      l1Size: 2,
      refcountOrder: 4,
    });
    expect(back.featureTable.map((f) => f.name)).toContain("extended L2 entries");
  });

  it("preserves unknown extensions and header fields", () => {
    const h = newHeader({ version: 3, clusterBits: 16, size: 1 << 20, refcountOrder: 4 });
    h.refcountTableOffset = 0x10000;
    h.refcountTableClusters = 1;
    h.l1TableOffset = 0x30000;
    h.l1Size = 1;
    h.headerLength = 120;
    h.unknownFields = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    h.otherExtensions = [{ type: 0x12345678, data: new Uint8Array([9, 9, 9]) }];
    const back = parseHeader(serializeHeader(h), { readWrite: false });
    expect(back.headerLength).toBe(120);
    expect([...back.unknownFields]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(back.otherExtensions).toEqual([{ type: 0x12345678, data: new Uint8Array([9, 9, 9]) }]);
  });
});
