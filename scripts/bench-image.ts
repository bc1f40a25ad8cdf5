/**
 * Image library benchmark (run with bun; not a test):
 *
 *   bun scripts/bench-image.ts [sizeMiB=1024] [runs=3] [dir=/tmp]
 *
 * Side by side in one run, median of `runs`: cp (the physical limit);
 * sequential 64 KiB writes and reads, ours vs `qemu-img bench` (queue depth
 * 1, page cache; the writes and cp take turns round by round); compressed write, ours (2 worker threads) vs `qemu-img
 * convert -c`; compressed reads; and the two raw-deflate codecs. Prints
 * times and ratios (ours / qemu-img; < 1 is faster). Nothing is fsynced, as
 * with cp and qemu-img's defaults.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  bunCodec,
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

/**
 * Each step once per round, in turn, `runs` rounds: this machine's disk and
 * memory speed swing between phases, and taking turns lets a slow phase hit
 * every side alike. Returns each step's times (seconds) in round order.
 */
async function interleaved(steps: Record<string, { setup: () => void; fn: () => void | Promise<void> }>): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(steps).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, step] of Object.entries(steps)) {
      step.setup();
      execFileSync("sync");
      out[name]!.push(await time(step.fn));
    }
  }
  return out;
}

const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const sh = (cmd: string, ...args: string[]): void => {
  execFileSync(cmd, args, { stdio: "ignore" });
};

/** Copies guest content from `src` to `dst` (64 KiB requests; 1 MiB batches when compressing). */
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

/** Sequential 64 KiB writes of the source's content into a fresh image, no flush (like cp). */
async function ourSeqWrite(dstName: string, fmt: "raw" | "qcow2"): Promise<void> {
  const store = openFileStore(f(dstName), { create: true, noFlush: true });
  let img: DiskImage;
  if (fmt === "raw") {
    await createRaw(store, { size: SIZE });
    img = await openRaw(store);
  } else {
    await createQcow2(store, { size: SIZE });
    img = await openQcow2(store);
  }
  for (let pos = 0; pos < SIZE; pos += CHUNK) await img.write(chunks[(pos / CHUNK) % chunks.length]!, pos);
  await img.close();
}

/** Sequential 64 KiB reads of a whole image. */
async function ourSeqRead(name: string): Promise<void> {
  const img = await openQcow2(openFileStore(f(name), { readOnly: true }), { readOnly: true });
  const buf = new Uint8Array(CHUNK);
  for (let pos = 0; pos < img.size; pos += CHUNK) await img.read(buf, pos);
  await img.close();
}

const qemuBench = (name: string, fmt: string, write: boolean) =>
  sh("qemu-img", "bench", ...(write ? ["-w", "--pattern=165"] : []), "-c", String(SIZE / CHUNK), "-s", "64k", "-S", "64k",
    "-d", "1", "-t", "writeback", "-f", fmt, f(name));

let chunks: Uint8Array[] = [];

async function main() {
  console.log(`runtime ${runtime}, ${sizeMiB} MiB, median of ${runs}, in ${dir}`);
  makeSource();
  // 64 MiB of the source, cycled, as the data of the write tests.
  const head = fs.readFileSync(f("src.raw")).subarray(0, Math.min(SIZE, 64 << 20));
  for (let i = 0; i < head.length; i += CHUNK) chunks.push(new Uint8Array(head.subarray(i, i + CHUNK)));
  const line = (name: string, ours: number, qemu: number) =>
    console.log(`${name.padEnd(40)} ours ${ours.toFixed(2)}s  qemu-img ${qemu.toFixed(2)}s  ratio ${(ours / qemu).toFixed(2)}`);

  const w = await interleaved({
    // cp's source read from the page cache, as our writes come from memory: this VM's
    // kernel evicts cached pages within seconds, and a cold read times the disk instead.
    cp: { setup: () => (rm("cp.raw"), sh("cat", f("src.raw"))), fn: () => sh("cp", f("src.raw"), f("cp.raw")) },
    oursRaw: { setup: () => rm("ow.raw"), fn: () => ourSeqWrite("ow.raw", "raw") },
    oursQcow2: { setup: () => rm("ow.qcow2"), fn: () => ourSeqWrite("ow.qcow2", "qcow2") },
    qemuRaw: {
      setup: () => (rm("qw.raw"), sh("qemu-img", "create", "-q", "-f", "raw", f("qw.raw"), String(SIZE))),
      fn: () => qemuBench("qw.raw", "raw", true),
    },
    qemuQcow2: {
      setup: () => (rm("qw.qcow2"), sh("qemu-img", "create", "-q", "-f", "qcow2", f("qw.qcow2"), String(SIZE))),
      fn: () => qemuBench("qw.qcow2", "qcow2", true),
    },
  });
  const cp = mid(w.cp!);
  console.log(`${"cp (physical limit)".padEnd(40)} ${cp.toFixed(2)}s  ${(SIZE / 1e6 / cp).toFixed(0)} MB/s`);
  line("raw: sequential 64k writes", mid(w.oursRaw!), mid(w.qemuRaw!));
  line("qcow2: sequential 64k writes (fresh)", mid(w.oursQcow2!), mid(w.qemuQcow2!));
  const perRound = w.oursQcow2!.map((t, i) => t / w.cp![i]!);
  console.log(
    `  qcow2 sequential write vs cp: ${mid(perRound).toFixed(2)}x, median of the rounds' ratios ` +
      `(${perRound.map((r) => r.toFixed(2)).join(" ")}; raw ${mid(w.oursRaw!.map((t, i) => t / w.cp![i]!)).toFixed(2)}x) (target <= 1.2x)`,
  );

  sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", f("src.raw"), f("q.qcow2"));
  const qR = await median(() => {}, () => qemuBench("q.qcow2", "qcow2", false));
  const oR = await median(() => {}, () => ourSeqRead("q.qcow2"));
  line("qcow2: sequential 64k reads", oR, qR);

  const qC = await median(() => rm("qc.qcow2"), () => sh("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", f("src.raw"), f("qc.qcow2")));
  const oC = await median(() => rm("oc.qcow2"), () => ourConvert("src.raw", "raw", "oc.qcow2", "qcow2", true));
  line("compressed write (convert -c, 2 workers)", oC, qC);
  console.log(`  compressed write speed-up over qemu-img: ${(qC / oC).toFixed(2)}x (target >= 2x)`);

  const qCR = await median(() => {}, () => qemuBench("qc.qcow2", "qcow2", false));
  const oCR = await median(() => {}, () => ourSeqRead("qc.qcow2"));
  line("compressed: sequential 64k reads", oCR, qCR);
  console.log(`  compressed read speed vs qemu-img: ${(qCR / oCR).toFixed(2)}x (target >= 1x)`);

  // Codecs on 64 KiB clusters of the same data.
  // Only clusters qcow2 would store compressed (the others are never inflated).
  const clusters = chunks.filter((c) => compressCluster(c, zlibCodec));
  for (const codec of [zlibCodec, fflateCodec, ...(bunCodec ? [bunCodec] : [])]) {
    codecBench(codec, clusters.slice(0, 64)); // warm up the JIT
    const r = codecBench(codec, clusters);
    console.log(`codec ${codec.name.padEnd(10)} deflate ${r.deflateMBs.toFixed(0)} MB/s, inflate ${r.inflateMBs.toFixed(0)} MB/s`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
