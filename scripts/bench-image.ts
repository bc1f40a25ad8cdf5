/**
 * Image library benchmark (run with bun; not a test):
 *
 *   bun scripts/bench-image.ts [sizeMiB=1024] [runs=3] [dir=/tmp]
 *
 * Side by side in one run, median of `runs`: cp (the physical limit),
 * qemu-img convert (raw, qcow2, qcow2 -c) and the same copies done by this
 * library (64 KiB sequential requests), plus the raw-deflate codecs. Prints
 * times and ratios (ours / qemu-img; < 1 is faster).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  compressCluster,
  createCompressPool,
  createQcow2,
  createRaw,
  fflateCodec,
  openFileStore,
  openQcow2,
  openRaw,
  zlibCodec,
  type ClusterCodec,
  type DiskImage,
} from "../src/image/index.ts";

const sizeMiB = Number(process.argv[2] ?? 1024);
const runs = Number(process.argv[3] ?? 3);
const dir = fs.mkdtempSync(path.join(process.argv[4] ?? "/tmp", "qmpemu-bench-"));
const SIZE = sizeMiB << 20;
const CHUNK = 64 << 10;
const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "node";

const f = (name: string) => path.join(dir, name);
const rm = (...names: string[]) => names.forEach((n) => fs.rmSync(f(n), { force: true }));

/** Test data: a quarter random, a half text-like, a quarter zeros (per 1 MiB). */
function makeSource(): void {
  const fd = fs.openSync(f("src.raw"), "w");
  const mib = new Uint8Array(1 << 20);
  let x = 12345;
  const text = new TextEncoder().encode("The quick brown fox jumps over the lazy qcow2 cluster. 0123456789\n");
  for (let m = 0; m < sizeMiB; m++) {
    for (let i = 0; i < 1 << 18; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      mib[i] = x & 0xff;
    }
    for (let i = 1 << 18; i < 3 << 18; i++) mib[i] = text[(i + m) % text.length]!;
    mib.fill(0, 3 << 18);
    fs.writeSync(fd, mib);
  }
  fs.closeSync(fd);
}

function time(fn: () => void | Promise<void>): Promise<number> {
  const t0 = performance.now();
  return Promise.resolve(fn()).then(() => (performance.now() - t0) / 1000);
}

async function median(setup: () => void, fn: () => void | Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    setup();
    // Start each run without dirty pages of the previous one in the way.
    execFileSync("sync");
    times.push(await time(fn));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { stdio: "ignore" });

/** Copies guest content from `src` to `dst` in 64 KiB sequential requests. */
async function copy(src: DiskImage, dst: DiskImage, compressed = false): Promise<void> {
  const batch = compressed ? 16 * CHUNK : CHUNK;
  const buf = new Uint8Array(batch);
  for (let pos = 0; pos < src.size; pos += batch) {
    const n = Math.min(batch, src.size - pos);
    await src.read(buf.subarray(0, n), pos);
    if (compressed) await dst.writeCompressed!(buf.subarray(0, n), pos);
    else await dst.write(buf.subarray(0, n), pos);
  }
  await dst.flush();
}

async function ourConvert(srcName: string, srcFmt: "raw" | "qcow2", dstName: string, dstFmt: "raw" | "qcow2", compress = false) {
  const srcStore = openFileStore(f(srcName), { readOnly: true });
  const src = srcFmt === "raw" ? await openRaw(srcStore, { readOnly: true }) : await openQcow2(srcStore, { readOnly: true });
  // No fsync at the end, like qemu-img convert's default cache mode (unsafe) and cp.
  const dstStore = openFileStore(f(dstName), { create: true, noFlush: true });
  const pool = compress ? createCompressPool(2) : null;
  let dst: DiskImage;
  if (dstFmt === "raw") {
    await createRaw(dstStore, { size: src.size });
    dst = await openRaw(dstStore);
  } else {
    await createQcow2(dstStore, { size: src.size });
    dst = await openQcow2(dstStore, { compressor: pool ? (c) => pool.compress(c) : undefined });
  }
  await copy(src, dst, compress);
  await dst.close();
  await src.close();
  await pool?.close();
}

function codecBench(codec: ClusterCodec, clusters: Uint8Array[]): { deflateMBs: number; inflateMBs: number } {
  const t0 = performance.now();
  const out = clusters.map((c) => codec.deflate(c));
  const t1 = performance.now();
  for (const o of out) codec.inflate(o, CHUNK);
  const t2 = performance.now();
  const mb = (clusters.length * CHUNK) / 1e6;
  return { deflateMBs: mb / ((t1 - t0) / 1000), inflateMBs: mb / ((t2 - t1) / 1000) };
}

async function main() {
  console.log(`runtime ${runtime}, ${sizeMiB} MiB, median of ${runs}, in ${dir}`);
  makeSource();
  const rows: Array<[string, number, number | null]> = [];
  const line = (name: string, ours: number, qemu: number | null) => {
    rows.push([name, ours, qemu]);
    const ratio = qemu ? ` ratio ${(ours / qemu).toFixed(2)}` : "";
    console.log(`${name.padEnd(34)} ours ${ours.toFixed(2)}s${qemu !== null ? `  qemu-img ${qemu.toFixed(2)}s` : ""}${ratio}`);
  };

  const cp = await median(() => rm("cp.raw"), () => sh("cp", f("src.raw"), f("cp.raw")));
  console.log(`cp (physical limit)                ${cp.toFixed(2)}s  ${((SIZE / 1e6) / cp).toFixed(0)} MB/s`);

  const qRaw = await median(() => rm("q.raw"), () => sh("qemu-img", "convert", "-f", "raw", "-O", "raw", f("src.raw"), f("q.raw")));
  const oRaw = await median(() => rm("o.raw"), () => ourConvert("src.raw", "raw", "o.raw", "raw"));
  line("raw -> raw (seq read+write)", oRaw, qRaw);

  const qQ = await median(() => rm("q.qcow2"), () => sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", f("src.raw"), f("q.qcow2")));
  const oQ = await median(() => rm("o.qcow2"), () => ourConvert("src.raw", "raw", "o.qcow2", "qcow2"));
  line("raw -> qcow2 (seq qcow2 write)", oQ, qQ);
  console.log(`  qcow2 write vs cp: ${(oQ / cp).toFixed(2)}x`);

  const qR = await median(() => rm("qr.raw"), () => sh("qemu-img", "convert", "-f", "qcow2", "-O", "raw", f("q.qcow2"), f("qr.raw")));
  const oR = await median(() => rm("or.raw"), () => ourConvert("q.qcow2", "qcow2", "or.raw", "raw"));
  line("qcow2 -> raw (seq qcow2 read)", oR, qR);

  const qC = await median(() => rm("qc.qcow2"), () => sh("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", f("src.raw"), f("qc.qcow2")));
  const oC = await median(() => rm("oc.qcow2"), () => ourConvert("src.raw", "raw", "oc.qcow2", "qcow2", true));
  line("raw -> qcow2 -c (compressed write)", oC, qC);
  console.log(`  compressed write speed-up over qemu-img: ${(qC / oC).toFixed(2)}x`);

  const qCR = await median(() => rm("qcr.raw"), () => sh("qemu-img", "convert", "-f", "qcow2", "-O", "raw", f("qc.qcow2"), f("qcr.raw")));
  const oCR = await median(() => rm("ocr.raw"), () => ourConvert("qc.qcow2", "qcow2", "ocr.raw", "raw"));
  line("qcow2 -c -> raw (compressed read)", oCR, qCR);

  // Codecs on 64 KiB clusters of the same data.
  // Only clusters qcow2 would store compressed (the others are never inflated).
  const src = fs.readFileSync(f("src.raw")).subarray(0, Math.min(SIZE, 64 << 20));
  const clusters: Uint8Array[] = [];
  for (let i = 0; i < src.length; i += CHUNK) {
    const c = new Uint8Array(src.subarray(i, i + CHUNK));
    if (compressCluster(c, zlibCodec)) clusters.push(c);
  }
  for (const codec of [zlibCodec, fflateCodec]) {
    codecBench(codec, clusters.slice(0, 64)); // warm up the JIT
    const r = codecBench(codec, clusters);
    console.log(`codec ${codec.name.padEnd(10)} deflate ${r.deflateMBs.toFixed(0)} MB/s, inflate ${r.inflateMBs.toFixed(0)} MB/s`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
