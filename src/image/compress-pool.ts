/**
 * A small pool of worker threads that deflate qcow2 clusters, so compressed
 * writes use more than one core and the main thread stays responsive.
 *
 * The worker is an eval'd CommonJS snippet using node:zlib (works on Node and
 * Bun, and needs no extra file in the compiled binary). When workers cannot
 * be started, compression runs inline.
 */
import type { Worker } from "node:worker_threads";
import * as os from "node:os";
import { compressCluster } from "./codec.ts";
import { demoteThreads } from "../core/background-threads.ts";
import { lazyBuiltin } from "../core/lazy-builtin.ts";

const workerThreads = lazyBuiltin<typeof import("node:worker_threads")>("node:worker_threads");

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const zlib = require("node:zlib");
// The pool puts this thread in the background (background-threads.ts): it
// needs the thread's own id, which only the thread can read.
try { parentPort.postMessage({ tid: Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop()) }); } catch {}
// Same sampling test as looksIncompressible() in codec.ts.
function looksIncompressible(c) {
  if (c.length < 4096) return false;
  const sample = new Uint8Array(1024);
  const step = c.length / 4;
  for (let i = 0; i < 4; i++) sample.set(c.subarray(i * step, i * step + 256), i * 256);
  return zlib.deflateRawSync(sample, { level: 1 }).length >= 1000;
}
// Bun's own binding is ~3x faster than node:zlib's (see codec.ts).
const deflate = typeof Bun !== "undefined" && Bun.deflateSync
  ? (c) => Bun.deflateSync(c, { windowBits: -12, level: 6, memLevel: 9 })
  : (c) => zlib.deflateRawSync(c, { windowBits: 12, memLevel: 9, level: 6 });
// A 20 µs sleep between clusters: Linux's EEVDF scheduler may pick even a
// SCHED_IDLE thread over a main thread that has used more than its share, and
// then lets it run to the next tick (4 ms); sleeping hands the CPU over.
// Measured: exec-oob p99 during a compressed backup 3.4-4.2 ms with it,
// 4.9-6.3 ms without, for ~4% of the compression rate.
const nap = new Int32Array(new SharedArrayBuffer(4));
parentPort.on("message", (m) => {
  const input = new Uint8Array(m.buf);
  const out = [];
  const transfer = [];
  for (let off = 0; off < input.length; off += m.clusterSize) {
    if (off) Atomics.wait(nap, 0, 0, 0.02);
    const cluster = input.subarray(off, off + m.clusterSize);
    const c = looksIncompressible(cluster) ? cluster : deflate(cluster);
    if (c.length < m.clusterSize) {
      const copy = new Uint8Array(c.length);
      copy.set(c);
      out.push(copy);
      transfer.push(copy.buffer);
    } else out.push(null);
  }
  parentPort.postMessage({ id: m.id, out }, transfer);
});
`;

export interface CompressPool {
  /** Compressed stream per cluster (null when it does not shrink), in order. */
  compress(clusters: Uint8Array[]): Promise<Array<Uint8Array | null>>;
  readonly threads: number;
  close(): Promise<void>;
}

type Pending = { resolve: (out: Array<Uint8Array | null>) => void; reject: (e: unknown) => void };

export function createCompressPool(threads = Math.min(2, Math.max(1, os.cpus().length))): CompressPool {
  const workers: Worker[] = [];
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let rr = 0;
  try {
    for (let i = 0; i < threads; i++) {
      const w = new (workerThreads().Worker)(WORKER_SOURCE, { eval: true });
      w.unref();
      w.on("message", (m: { id: number; out: Array<Uint8Array | null> } | { tid: number }) => {
        if ("tid" in m) return demoteThreads([m.tid]);
        const p = pending.get(m.id);
        pending.delete(m.id);
        p?.resolve(m.out.map((o) => (o ? new Uint8Array(o.buffer, o.byteOffset, o.byteLength) : null)));
      });
      w.on("error", (e) => {
        for (const p of pending.values()) p.reject(e);
        pending.clear();
      });
      workers.push(w);
    }
  } catch {
    for (const w of workers) void w.terminate();
    workers.length = 0;
  }

  const runOn = (w: Worker, clusters: Uint8Array[]): Promise<Array<Uint8Array | null>> => {
    const cs = clusters[0]!.length;
    const buf = new Uint8Array(cs * clusters.length);
    clusters.forEach((c, i) => buf.set(c, i * cs));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      w.postMessage({ id, buf: buf.buffer, clusterSize: cs }, [buf.buffer]);
    });
  };

  return {
    threads: workers.length,
    async compress(clusters) {
      if (clusters.length === 0) return [];
      if (workers.length === 0) return clusters.map((c) => compressCluster(c));
      // Split into one contiguous share per worker.
      const share = Math.ceil(clusters.length / workers.length);
      const parts: Promise<Array<Uint8Array | null>>[] = [];
      for (let i = 0; i < clusters.length; i += share) {
        parts.push(runOn(workers[rr++ % workers.length]!, clusters.slice(i, i + share)));
      }
      return (await Promise.all(parts)).flat();
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

let shared: CompressPool | null = null;
let inFlight = 0;
let idleTimer: ReturnType<typeof setTimeout> | undefined;
/** Idle workers are stopped: Bun keeps a process alive while eval'd workers exist, unref or not. */
const IDLE_MS = 1000;

/** One process-wide pool (2 threads at most), started on demand and stopped when idle. */
export function sharedCompressPool(): CompressPool {
  return {
    get threads() {
      return shared?.threads ?? 0;
    },
    async compress(clusters) {
      clearTimeout(idleTimer);
      shared ??= createCompressPool();
      inFlight++;
      try {
        return await shared.compress(clusters);
      } finally {
        if (--inFlight === 0) {
          idleTimer = setTimeout(() => {
            const pool = shared;
            shared = null;
            void pool?.close();
          }, IDLE_MS);
          idleTimer.unref?.();
        }
      }
    },
    async close() {
      clearTimeout(idleTimer);
      const pool = shared;
      shared = null;
      await pool?.close();
    },
  };
}
