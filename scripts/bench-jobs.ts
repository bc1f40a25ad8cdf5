/**
 * Backup benchmark (not a test): qmpemu vs qemu-system-x86_64 7.2 on the
 * same files in the same run, plus `cp` as the floor.
 *
 *   bun scripts/bench-jobs.ts [--size-mib 1024] [--dir /tmp/bench-jobs] [--bin dist/qmpemu]
 *                             [--runs 3] [--cases raw,qcow2,compress] [--no-oob]
 *   (--runs 0: only the exec-oob table, one run of each)
 *
 * Cases: blockdev-backup sync=full raw → raw, raw → qcow2, raw → qcow2
 * compress. Time = from sending blockdev-backup to BLOCK_JOB_COMPLETED
 * (targets are flushed before completion in both). Then exec-oob round trips
 * (p50, p99) while a compressed backup runs and an in-band command is queued
 * behind each: job-pause / job-resume on qmpemu, and migrate-pause on both.
 *
 * This machine's disk and memory are shared and noisy (a run can take 3x
 * another), so cp, qmpemu and QEMU take turns, `runs` rounds of each, and
 * every figure is a median.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const SIZE = Number(opt("size-mib", "1024")) * 1024 * 1024;
const DIR = opt("dir", "/tmp/bench-jobs");
const EMU = path.resolve(opt("bin", "dist/qmpemu"));
const RUNS = Number(opt("runs", "3"));
const CASE_KEYS = opt("cases", "raw,qcow2,compress").split(",");
const QEMU = "qemu-system-x86_64";

class Qmp {
  private buf = "";
  private waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  private backlog: any[] = [];
  constructor(private readonly sock: net.Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        const w = this.waiters.findIndex((x) => x.pred(msg));
        if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(msg);
        else this.backlog.push(msg);
      }
    });
  }
  static async connect(sockPath: string): Promise<Qmp> {
    for (let i = 0; i < 500; i++) {
      if (fs.existsSync(sockPath)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 50));
    const sock = net.createConnection(sockPath);
    await new Promise((r, j) => (sock.once("connect", r), sock.once("error", j)));
    const q = new Qmp(sock);
    await q.wait((m) => "QMP" in m);
    await q.cmd("qmp_capabilities", { enable: ["oob"] });
    return q;
  }
  wait(pred: (m: any) => boolean): Promise<any> {
    const i = this.backlog.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.backlog.splice(i, 1)[0]);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
  private seq = 0;
  send(execute: string, args?: unknown, oob = false): string {
    const id = `b${++this.seq}`;
    this.sock.write(JSON.stringify({ [oob ? "exec-oob" : "execute"]: execute, arguments: args ?? {}, id }) + "\n");
    return id;
  }
  async cmd(execute: string, args?: unknown, oob = false): Promise<any> {
    const id = this.send(execute, args, oob);
    const r = await this.wait((m) => m.id === id);
    if (r.error) throw new Error(`${execute}: ${r.error.desc}`);
    return r.return;
  }
  close() {
    this.sock.destroy();
  }
}

function makeSource(file: string): void {
  if (fs.existsSync(file) && fs.statSync(file).size === SIZE) return;
  // Real disk-like content: the host's /usr (binaries, libraries, text) as a tar stream,
  // padded with zeros; compresses about like a system disk (qemu-img convert -c: ~55%).
  execFileSync("sh", ["-c", `tar cf - /usr/lib /usr/share 2>/dev/null | head -c ${SIZE} > '${file}'; truncate -s ${SIZE} '${file}'`]);
}

function startServer(bin: string, sock: string, blockdevs: string[]): ChildProcess {
  if (fs.existsSync(sock)) fs.unlinkSync(sock);
  const argv = ["-M", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`];
  for (const b of blockdevs) argv.push("-blockdev", b);
  return spawn(bin, argv, { stdio: ["ignore", "ignore", "inherit"] });
}

async function stop(p: ChildProcess, q: Qmp) {
  try {
    await q.cmd("quit");
  } catch {}
  q.close();
  await new Promise((r) => (p.exitCode !== null ? r(null) : p.once("exit", r)));
}

type Case = { key: string; name: string; fmt: "raw" | "qcow2"; compress: boolean };
const CASES: Case[] = [
  { key: "raw", name: "raw → raw", fmt: "raw", compress: false },
  { key: "qcow2", name: "raw → qcow2", fmt: "qcow2", compress: false },
  { key: "compress", name: "raw → qcow2 compress", fmt: "qcow2", compress: true },
].filter((c) => CASE_KEYS.includes(c.key)) as Case[];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeBackup(bin: string, c: Case, src: string): Promise<number> {
  const tgt = path.join(DIR, `tgt.${c.fmt}`);
  fs.rmSync(tgt, { force: true });
  execFileSync("qemu-img", ["create", "-q", "-f", c.fmt, tgt, String(SIZE)]);
  const sock = path.join(DIR, "qmp.sock");
  const p = startServer(bin, sock, [
    `driver=raw,node-name=src,file.driver=file,file.filename=${src}`,
    `driver=${c.fmt},node-name=tgt,file.driver=file,file.filename=${tgt}`,
  ]);
  const q = await Qmp.connect(sock);
  const t0 = performance.now();
  await q.cmd("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", compress: c.compress });
  const done = await q.wait((m) => m.event === "BLOCK_JOB_COMPLETED");
  const ms = performance.now() - t0;
  if (done.data.error) throw new Error(`${bin} ${c.name}: ${done.data.error}`);
  await stop(p, q);
  return ms;
}

type OobStats = { p50: number; p99: number; max: number; n: number };

/**
 * exec-oob round trips (`verbs` in turn, then a 5 ms pause) while a
 * compressed backup runs and an in-band query-block-jobs waits behind each.
 */
async function oobLatency(bin: string, src: string, verbs: string[]): Promise<OobStats> {
  const tgt = path.join(DIR, "tgt-oob.qcow2");
  fs.rmSync(tgt, { force: true });
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", tgt, String(SIZE)]);
  const sock = path.join(DIR, "qmp-oob.sock");
  const p = startServer(bin, sock, [
    `driver=raw,node-name=src,file.driver=file,file.filename=${src}`,
    `driver=qcow2,node-name=tgt,file.driver=file,file.filename=${tgt}`,
  ]);
  const q = await Qmp.connect(sock);
  await q.cmd("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", compress: true });
  const rtts: number[] = [];
  let finished = false;
  void q.wait((m) => m.event === "BLOCK_JOB_COMPLETED" || m.event === "BLOCK_JOB_CANCELLED").then(() => (finished = true));
  for (let i = 0; i < 200 && !finished; i++) {
    q.send("query-block-jobs");
    for (const verb of verbs) {
      const t0 = performance.now();
      const id = q.send(verb, verb.startsWith("job-") ? { id: "j" } : {}, true);
      const r = await q.wait((m) => m.id === id);
      rtts.push(performance.now() - t0);
      if (r.error && verb.startsWith("job-")) finished = true;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  try {
    await q.cmd("job-cancel", { id: "j" });
  } catch {}
  await stop(p, q);
  rtts.sort((a, b) => a - b);
  const pct = (x: number) => rtts[Math.min(rtts.length - 1, Math.floor(x * rtts.length))] ?? NaN;
  return { p50: pct(0.5), p99: pct(0.99), max: rtts[rtts.length - 1] ?? NaN, n: rtts.length };
}

/**
 * QEMU 7.2 runs no job verb out of band (that is our extension), so the
 * side-by-side figure uses a command both allow out of band: migrate-pause
 * (an error reply outside postcopy, which is all a round trip needs).
 */
async function printOobTable(src: string): Promise<void> {
  const runs = Math.max(1, RUNS);
  const rows: [string, string, string[]][] = [
    ["qmpemu job-pause/job-resume", EMU, ["job-pause", "job-resume"]],
    ["qmpemu migrate-pause", EMU, ["migrate-pause", "migrate-pause"]],
    ["qemu   migrate-pause", QEMU, ["migrate-pause", "migrate-pause"]],
  ];
  const results = rows.map(() => [] as OobStats[]);
  for (let run = 0; run < runs; run++) {
    for (const [i, [, bin, verbs]] of rows.entries()) results[i]!.push(await oobLatency(bin, src, verbs));
  }
  console.log(`exec-oob round trips during a compressed backup (ms, median of ${runs} runs of ~400):`);
  console.log("".padEnd(30), "p50".padStart(8), "p99".padStart(8), "max".padStart(8));
  for (const [i, [name]] of rows.entries()) {
    const m = (k: keyof OobStats) => median(results[i]!.map((r) => r[k])).toFixed(3).padStart(8);
    console.log(name.padEnd(30), m("p50"), m("p99"), m("max"));
  }
}

async function main() {
  fs.mkdirSync(DIR, { recursive: true });
  const src = path.join(DIR, "src.raw");
  makeSource(src);
  const cpOnce = () => {
    const t0 = performance.now();
    execFileSync("cp", ["--sparse=never", src, path.join(DIR, "cp.raw")]);
    execFileSync("sync", [path.join(DIR, "cp.raw")]);
    const ms = performance.now() - t0;
    fs.rmSync(path.join(DIR, "cp.raw"));
    return ms;
  };
  const cpTimes: number[] = [];
  const rows = CASES.map((c) => ({ c, emu: [] as number[], qemu: [] as number[] }));
  for (let run = 0; run < RUNS; run++) {
    execFileSync("sync");
    cpTimes.push(cpOnce());
    for (const r of rows) {
      execFileSync("sync");
      r.emu.push(await timeBackup(EMU, r.c, src));
      execFileSync("sync");
      r.qemu.push(await timeBackup(QEMU, r.c, src));
    }
  }
  if (RUNS > 0) printTable(cpTimes, rows);
  if (!args.includes("--no-oob")) await printOobTable(src);
}

function printTable(cpTimes: number[], rows: { c: { name: string }; emu: number[]; qemu: number[] }[]) {
  const cpMs = median(cpTimes);
  // Other processes skew every ratio on a small machine: print the load with the numbers.
  console.log(`source: ${SIZE / 1048576} MiB raw; cp + sync: ${cpMs.toFixed(0)} ms (median of ${RUNS}: ${cpTimes.map((t) => t.toFixed(0)).join(" ")}); load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} on ${os.cpus().length} CPUs`);
  // Medians, and the best run of each side: noise here only ever adds time.
  console.log("case".padEnd(24), "qmpemu ms".padStart(10), "qemu ms".padStart(10), "emu/cp".padStart(8), "qemu/emu".padStart(9), "best q/e".padStart(9), "  runs (emu | qemu)");
  for (const r of rows) {
    const emu = median(r.emu);
    const qemu = median(r.qemu);
    console.log(
      r.c.name.padEnd(24),
      emu.toFixed(0).padStart(10),
      qemu.toFixed(0).padStart(10),
      (emu / cpMs).toFixed(2).padStart(8),
      (qemu / emu).toFixed(2).padStart(9),
      (Math.min(...r.qemu) / Math.min(...r.emu)).toFixed(2).padStart(9),
      `  ${r.emu.map((t) => t.toFixed(0)).join(" ")} | ${r.qemu.map((t) => t.toFixed(0)).join(" ")}`,
    );
  }
}

await main();
