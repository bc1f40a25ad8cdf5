import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import {
  createCompressPool,
  createQcow2,
  fflateCodec,
  openFileStore,
  openQcow2,
  zlibCodec,
  compressCluster,
  type ClusterCodec,
} from "../../src/image/index.ts";
import { decodeCompressed } from "../../src/image/qcow2/format.ts";
import { firstDiff, hasQemu, pattern, qemuCheck, qemuContent, qemuImg, tmpDir } from "./qemu-tools.ts";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

const bun = path.resolve("node_modules/.bin/bun");
const hasBun = fs.existsSync(bun) && spawnSync(bun, ["--version"]).status === 0;

const t = tmpDir();
afterAll(() => t.cleanup());
const codecs: ClusterCodec[] = [zlibCodec, fflateCodec];

function mixedData(size: number, cs: number): Uint8Array {
  const d = new Uint8Array(size);
  const text = new TextEncoder().encode("qcow2 compressed cluster test line\n");
  for (let i = 0; i < size; i += cs) {
    const k = (i / cs) % 4;
    if (k === 0) for (let j = 0; j < cs; j++) d[i + j] = text[(i + j) % text.length]!;
    else if (k === 1) d.fill(0x77, i, i + cs / 2);
    else if (k === 2) d.set(pattern(cs / 2, i), i); // half random, half zeros: compresses to ~50%
  }
  return d;
}

/** The raw compressed streams (with QEMU's trailing bytes) of every compressed cluster of a QEMU image. */
function qemuStreams(file: string, cs: number): Array<{ guest: number; stream: Uint8Array }> {
  const buf = new Uint8Array(fs.readFileSync(file));
  const v = new DataView(buf.buffer);
  const l1Off = Number(v.getBigUint64(40));
  const l1Size = v.getUint32(36);
  const bits = Math.log2(cs);
  const out: Array<{ guest: number; stream: Uint8Array }> = [];
  for (let i = 0; i < l1Size; i++) {
    const l2 = Number(v.getBigUint64(l1Off + i * 8) & 0x00fffffffffffe00n);
    if (!l2) continue;
    for (let j = 0; j < cs / 8; j++) {
      const hi = v.getUint32(l2 + j * 8);
      const lo = v.getUint32(l2 + j * 8 + 4);
      if (!(hi & 0x40000000)) continue;
      const { offset, length } = decodeCompressed(hi, lo, bits);
      const stream = new Uint8Array(length);
      stream.set(buf.subarray(offset, Math.min(buf.length, offset + length)));
      out.push({ guest: (i * (cs / 8) + j) * cs, stream });
    }
  }
  return out;
}

describe.skipIf(!hasQemu)("raw-deflate codecs against qemu-img convert -c", () => {
  for (const cs of [4096, 65536]) {
    it(`both codecs inflate QEMU's streams (${cs} B clusters, including the padding up to the sector)`, async () => {
      const data = mixedData(1 << 20, cs);
      const raw = t.file(`m${cs}.raw`);
      fs.writeFileSync(raw, data);
      const file = t.file(`m${cs}.qcow2`);
      qemuImg("convert", "-c", "-O", "qcow2", "-o", `cluster_size=${cs}`, raw, file);
      const streams = qemuStreams(file, cs);
      expect(streams.length).toBeGreaterThan(10);
      for (const codec of codecs) {
        for (const { guest, stream } of streams) {
          const out = codec.inflate(stream, cs);
          expect(firstDiff(out, data.subarray(guest, guest + cs)), `${codec.name} @${guest}`).toBe(-1);
        }
      }
    });

    it(`QEMU reads clusters deflated by either codec (${cs} B clusters)`, async () => {
      const data = mixedData(1 << 20, cs);
      for (const codec of codecs) {
        const file = t.file(`ours-${codec.name.replace(/\W/g, "")}-${cs}.qcow2`);
        const s = openFileStore(file, { create: true });
        await createQcow2(s, { size: data.length, clusterSize: cs });
        const img = await openQcow2(s, {
          compressor: async (clusters) => clusters.map((c) => compressCluster(c, codec)),
        });
        await img.writeCompressed(data, 0);
        await img.close();
        const c = qemuCheck(file);
        expect(c.status).toBe(0);
        expect(Number(c.json["compressed-clusters"])).toBeGreaterThan(0);
        expect(firstDiff(qemuContent(file, t.file("scratch.raw")), data)).toBe(-1);
      }
    });
  }

  it("inflate fails cleanly on garbage and on short output", () => {
    for (const codec of codecs) {
      expect(() => codec.inflate(new Uint8Array(100).fill(0xff), 4096)).toThrow("Input/output error");
      const short = zlibCodec.deflate(new Uint8Array(1000).fill(1));
      expect(() => codec.inflate(short, 4096)).toThrow("Input/output error");
    }
  });

  it("the worker pool compresses like the inline path, in order", async () => {
    const pool = createCompressPool(2);
    try {
      expect(pool.threads).toBe(2);
      const cs = 65536;
      const data = mixedData(40 * cs, cs);
      const clusters = Array.from({ length: 40 }, (_, i) => data.subarray(i * cs, (i + 1) * cs));
      const out = await pool.compress(clusters);
      expect(out.length).toBe(40);
      out.forEach((o, i) => {
        const inline = compressCluster(clusters[i]!);
        expect(o === null, `cluster ${i}`).toBe(inline === null);
        if (o) expect(firstDiff(zlibCodec.inflate(o, cs), clusters[i]!)).toBe(-1);
      });
      // and an image written through the pool passes qemu-img check
      const file = t.file("pool.qcow2");
      const s = openFileStore(file, { create: true });
      await createQcow2(s, { size: data.length });
      const img = await openQcow2(s, { compressor: (c) => pool.compress(c) });
      await Promise.all([img.writeCompressed(data.subarray(0, 20 * cs), 0), img.writeCompressed(data.subarray(20 * cs), 20 * cs)]);
      await img.close();
      expect(qemuCheck(file).status).toBe(0);
      expect(firstDiff(qemuContent(file, t.file("scratch.raw")), data)).toBe(-1);
    } finally {
      await pool.close();
    }
  });

  it.skipIf(!schedIdleSettable)("runs its workers at SCHED_IDLE, below the event loop", async () => {
    const before = threadsAtSchedIdle();
    const pool = createCompressPool(2);
    try {
      const cs = 65536;
      await pool.compress([mixedData(cs, cs), mixedData(cs, cs)]);
      const end = Date.now() + 3000;
      while (threadsAtSchedIdle() < before + 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(threadsAtSchedIdle()).toBe(before + 2);
      expect(policyOf(String(process.pid))).toBe(0); // the main thread stays SCHED_OTHER
    } finally {
      await pool.close();
    }
  });
});

const schedIdleSettable = process.platform === "linux" && spawnSync("chrt", ["--version"]).status === 0;
/** Scheduling policy (field 41 of /proc/.../stat) of one of this process's threads. */
function policyOf(tid: string): number {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
}
function threadsAtSchedIdle(): number {
  return fs.readdirSync("/proc/self/task").filter((t) => {
    try {
      return policyOf(t) === 5;
    } catch {
      return false;
    }
  }).length;
}

describe.skipIf(!hasQemu || !hasBun)("the Bun codec (used by the compiled binary)", () => {
  it("inflates QEMU's streams and deflates streams QEMU reads", () => {
    const cs = 65536;
    const data = mixedData(2 << 20, cs);
    const raw = t.file("bun-src.raw");
    fs.writeFileSync(raw, data);
    const qimg = t.file("bun-q.qcow2");
    qemuImg("convert", "-c", "-O", "qcow2", raw, qimg);
    const ours = t.file("bun-ours.qcow2");
    const r = spawnSync(bun, [path.resolve("test/image/bun-codec-child.ts"), qimg, raw, ours], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ deflate: "Bun zlib", inflate: "Bun zlib", readBackSame: true });
    const c = qemuCheck(ours);
    expect(c.status).toBe(0);
    expect(Number(c.json["compressed-clusters"])).toBeGreaterThan(0);
    expect(firstDiff(qemuContent(ours, t.file("scratch.raw")), data)).toBe(-1);
  });
});
