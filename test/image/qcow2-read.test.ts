import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { openFileStore, openQcow2, openImageChain, type DiskImage, type Extent } from "../../src/image/index.ts";
import { firstDiff, hasQemu, pattern, qemuContent, qemuImg, qemuIo, qemuMap, tmpDir } from "./qemu-tools.ts";

const t = tmpDir();
afterAll(() => t.cleanup());

async function readAll(img: DiskImage): Promise<Uint8Array> {
  const out = new Uint8Array(img.size);
  // Odd chunk size, so requests straddle clusters and L2 tables.
  const chunk = 300_000;
  for (let pos = 0; pos < img.size; pos += chunk) await img.read(out.subarray(pos, Math.min(img.size, pos + chunk)), pos);
  return out;
}

async function ourMap(img: DiskImage): Promise<Extent[]> {
  const out: Extent[] = [];
  for (let pos = 0; pos < img.size; ) {
    const e = await img.blockStatus(pos, img.size - pos);
    expect(e.length).toBeGreaterThan(0);
    const last = out[out.length - 1];
    // qemu-img map merges neighbours with equal status and contiguous host offsets.
    if (
      last &&
      last.allocated === e.allocated &&
      last.zero === e.zero &&
      last.data === e.data &&
      (last.hostOffset === undefined) === (e.hostOffset === undefined) &&
      (last.hostOffset === undefined || last.hostOffset + last.length === e.hostOffset)
    ) {
      last.length += e.length;
    } else {
      out.push({ ...e });
    }
    pos += e.length;
  }
  return out;
}

function normaliseQemuMap(file: string) {
  return qemuMap(file).map((m) => ({
    start: m.start,
    length: m.length,
    present: m.present,
    zero: m.zero,
    data: m.data,
    offset: m.offset,
  }));
}

function normaliseOurs(ext: Extent[]) {
  return ext.map((e) => ({
    start: e.offset,
    length: e.length,
    present: e.allocated,
    zero: e.zero,
    data: e.data,
    offset: e.hostOffset,
  }));
}

/** Writes a mix of data, zeroes and discards with qemu-io. */
function scribble(file: string, size: number, cs: number) {
  const cmds = [
    `write -P 0x11 0 ${cs * 3}`,
    `write -P 0x22 ${cs * 5 + 100} 7000`,
    `write -P 0x33 ${size - cs * 2} ${cs * 2}`,
    `write -P 0x44 ${Math.floor(size / 2)} ${cs * 4}`,
    `write -z ${cs} ${cs}`,
    `write -z -u ${Math.floor(size / 2) + cs} ${cs}`,
    `discard ${Math.floor(size / 2) + 2 * cs} ${cs}`,
    `write -z ${cs * 20} ${cs * 2}`,
  ];
  qemuIo(file, cmds);
}

const configs = [
  { name: "v3 64k", opts: "cluster_size=65536", size: 8 << 20 },
  { name: "v2 64k", opts: "cluster_size=65536,compat=0.10", size: 8 << 20 },
  { name: "v3 512", opts: "cluster_size=512", size: 1 << 20 },
  { name: "v3 2M", opts: "cluster_size=2097152", size: 64 << 20 },
  { name: "v3 4k refcount_bits=1", opts: "cluster_size=4096,refcount_bits=1", size: 4 << 20 },
  { name: "v3 64k refcount_bits=64, odd size", opts: "cluster_size=65536,refcount_bits=64", size: (5 << 20) + 512 * 3 },
];

describe.skipIf(!hasQemu)("reading images written by QEMU", () => {
  for (const c of configs) {
    it(`${c.name}: content and map match qemu-img`, async () => {
      const file = t.file(`${c.name.replace(/\W+/g, "_")}.qcow2`);
      qemuImg("create", "-q", "-f", "qcow2", "-o", c.opts, file, String(c.size));
      const cs = Number(/cluster_size=(\d+)/.exec(c.opts)![1]);
      scribble(file, c.size, cs);
      const img = await openQcow2(openFileStore(file, { readOnly: true }), { readOnly: true });
      const ours = await readAll(img);
      const theirs = qemuContent(file, t.file("scratch.raw"));
      expect(firstDiff(ours, theirs)).toBe(-1);
      expect(normaliseOurs(await ourMap(img))).toEqual(normaliseQemuMap(file));
      await img.close();
    });
  }

  it("compressed images from qemu-img convert -c (with QEMU's packing and padding)", async () => {
    const raw = t.file("src.raw");
    const size = 3 * 1024 * 1024 + 4096; // last cluster partial
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) {
      const kind = (i / 4096) % 5;
      if (kind === 0) data.set(pattern(4096, i + 1), i); // incompressible
      else if (kind === 1) data.fill(0x41 + (i % 26), i, i + 4096);
      else if (kind === 2) data.set(new TextEncoder().encode(`line ${i} `.repeat(400)).subarray(0, 4096), i);
      // kinds 3, 4: zeros
    }
    fs.writeFileSync(raw, data);
    for (const cs of [512, 4096, 65536, 2097152]) {
      const file = t.file(`c${cs}.qcow2`);
      qemuImg("convert", "-c", "-O", "qcow2", "-o", `cluster_size=${cs}`, raw, file);
      const img = await openQcow2(openFileStore(file, { readOnly: true }), { readOnly: true });
      const ours = await readAll(img);
      expect(firstDiff(ours, data.subarray(0, img.size))).toBe(-1);
      const m = await ourMap(img);
      expect(m.some((e) => e.data)).toBe(true);
      expect(normaliseOurs(m)).toEqual(normaliseQemuMap(file));
      await img.close();
    }
  });

  it("backing chains: overlay over qcow2 over raw, partial overwrites", async () => {
    const base = t.file("base.raw");
    fs.writeFileSync(base, pattern(4 << 20, 7));
    const mid = t.file("mid.qcow2");
    const top = t.file("top.qcow2");
    qemuImg("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid);
    qemuIo(mid, ["write -P 0x55 65000 70000", "write -z 1M 64k", "discard 2M 64k"]);
    qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2", top, "6M");
    qemuIo(top, ["write -P 0x66 100 5000", "write -z -u 3M 8k", `write -P 0x77 ${5 << 20} 4096`]);
    const chain = await openImageChain(top);
    expect(chain.layers.map((l) => l.format)).toEqual(["qcow2", "qcow2", "raw"]);
    const ours = await readAll(chain.top);
    expect(firstDiff(ours, qemuContent(top, t.file("scratch.raw")))).toBe(-1);
    // This layer's own status: allocated ranges as qemu-img map shows them at depth 0.
    const own = normaliseQemuMap(top).filter((m) => m.present && qemuMap(top).find((q) => q.start === m.start)!.depth === 0);
    expect(normaliseOurs(await ourMap(chain.top)).filter((e) => e.present)).toEqual(own);
    await chain.close();
  });

  it("refuses a backing chain that loops", async () => {
    const a = t.file("la.qcow2");
    const b = t.file("lb.qcow2");
    qemuImg("create", "-q", "-f", "qcow2", a, "1M");
    qemuImg("create", "-q", "-f", "qcow2", "-b", "la.qcow2", "-F", "qcow2", b);
    qemuImg("rebase", "-u", "-b", "lb.qcow2", "-F", "qcow2", a);
    await expect(openImageChain(b)).rejects.toThrow("creates an infinite loop");
  });
});
