/** Helpers for cross-checking the image library against real qemu-img/qemu-io. */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createQcow2, openFileStore, type Qcow2CreateOptions } from "../../src/image/index.ts";

function which(cmd: string): boolean {
  return spawnSync("which", [cmd]).status === 0;
}

export const hasQemu = which("qemu-img") && which("qemu-io");

export function tmpDir(prefix = "qmpemu-img-"): { dir: string; file(name: string): string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name) => path.join(dir, name),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export function qemuImg(...args: string[]): { stdout: string; stderr: string; status: number } {
  const r = spawnSync("qemu-img", args, { encoding: "utf8" });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status ?? -1 };
}

/** Runs qemu-io commands on an image; throws if qemu-io reports a failure. */
export function qemuIo(file: string, cmds: string[], format = "qcow2"): string {
  const args = ["-f", format];
  for (const c of cmds) args.push("-c", c);
  args.push(file);
  const out = execFileSync("qemu-io", args, { encoding: "utf8" });
  if (/error|Pattern verification failed|failed/i.test(out)) throw new Error(`qemu-io: ${out}`);
  return out;
}

export interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

export function qemuMap(file: string): MapEntry[] {
  return JSON.parse(execFileSync("qemu-img", ["map", "--output=json", file], { encoding: "utf8" }));
}

/** The guest content as QEMU sees it (qemu-img convert -O raw). */
export function qemuContent(file: string, scratch: string): Uint8Array {
  execFileSync("qemu-img", ["convert", "-O", "raw", file, scratch]);
  const data = fs.readFileSync(scratch);
  fs.rmSync(scratch);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function qemuCheck(file: string): { status: number; stdout: string; stderr: string; json: Record<string, unknown> } {
  const r = qemuImg("check", "--output=json", file);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* not JSON on hard failures */
  }
  return { ...r, json };
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function rng(seed: number): () => number {
  let x = seed | 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/** First differing offset, or -1. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Writes a new qcow2 image `name` in `dir` with the library itself; returns its path. */
export async function createImage(dir: { file(name: string): string }, name: string, opts: Qcow2CreateOptions): Promise<string> {
  const file = dir.file(name);
  const s = openFileStore(file, { create: true });
  await createQcow2(s, opts);
  await s.close();
  return file;
}
