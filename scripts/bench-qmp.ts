/**
 * QMP benchmark: qmpemu side by side with qemu-system-x86_64 in the same
 * run, printed as ratios. Not a test; run with `bun scripts/bench-qmp.ts`
 * (options: --quick for smaller counts, --emu "<command>" to choose how our
 * emulator is started; default: dist/qmpemu if built, else bun src/main.ts).
 *
 * Measures: startup to greeting, sequential query-status round trips
 * (p50/p99), pipelined throughput with OOB on, 1000 monitors (connect time,
 * per-command latency vs one monitor), idle RSS, peak RSS during a flood,
 * exec-oob latency while an in-band command runs.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick");
const emuArg = argv.includes("--emu") ? argv[argv.indexOf("--emu") + 1] : undefined;
const ROOT = path.resolve(import.meta.dir ?? path.dirname(new URL(import.meta.url).pathname), "..");
const HAVE_QEMU = spawnSync("which", ["qemu-system-x86_64"]).status === 0;

function emuCommand(): string[] {
  if (emuArg) return emuArg.split(" ");
  const bin = path.join(ROOT, "dist/qmpemu");
  if (fs.existsSync(bin)) return [bin];
  return [process.execPath, path.join(ROOT, "src/main.ts")];
}

type Side = "qemu" | "emu";
const BASE = ["-M", "none", "-nodefaults", "-display", "none"];

interface Server {
  proc: ChildProcess;
  dir: string;
  socks: string[];
  stop(): Promise<void>;
}

async function waitFile(p: string, proc: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const t0 = performance.now();
  while (!fs.existsSync(p)) {
    if (proc.exitCode !== null) throw new Error(`server exited (${proc.exitCode}) before creating ${p}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`timeout waiting for ${p}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function startServer(side: Side, monitors = 1, extra: string[] = []): Server {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${side}-`));
  const socks = Array.from({ length: monitors }, (_, i) => path.join(dir, `m${i}.sock`));
  const args = [...BASE, ...socks.flatMap((s) => ["-qmp", `unix:${s},server=on,wait=off`]), ...extra];
  const cmd = side === "qemu" ? ["qemu-system-x86_64"] : emuCommand();
  const proc = spawn(cmd[0]!, [...cmd.slice(1), ...args], { stdio: ["ignore", "ignore", "inherit"] });
  return {
    proc,
    dir,
    socks,
    stop: async () => {
      if (proc.exitCode === null) {
        proc.kill("SIGKILL");
        await new Promise((r) => proc.once("exit", r));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal QMP client: line splitting and a FIFO of waiters. */
class Client {
  private buf = "";
  private waiters: ((line: string) => void)[] = [];
  private lines: string[] = [];
  received = 0;
  onLine: ((line: string) => void) | undefined;

  constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      const buf = this.buf + d;
      let start = 0;
      let i: number;
      while ((i = buf.indexOf("\n", start)) >= 0) {
        const line = buf.slice(start, i);
        start = i + 1;
        this.received++;
        if (this.onLine) this.onLine(line);
        else {
          const w = this.waiters.shift();
          if (w) w(line);
          else this.lines.push(line);
        }
      }
      this.buf = buf.slice(start);
    });
    sock.on("error", () => {});
  }

  static connect(p: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(p, () => resolve(new Client(s)));
      s.once("error", reject);
    });
  }

  /** Connects, retrying while the file exists but nobody listens yet (bind before listen). */
  static async connectRetry(p: string, timeoutMs = 10_000): Promise<Client> {
    const t0 = performance.now();
    for (;;) {
      try {
        return await Client.connect(p);
      } catch (e) {
        if (performance.now() - t0 > timeoutMs) throw e;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  }

  line(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((r) => this.waiters.push(r));
  }

  /** Next line that is not an event. */
  async reply(): Promise<string> {
    for (;;) {
      const l = await this.line();
      if (!l.startsWith('{"timestamp"')) return l;
    }
  }

  async cmd(text: string): Promise<string> {
    this.sock.write(text);
    return this.reply();
  }

  close(): void {
    this.sock.destroy();
  }
}

async function negotiate(c: Client, oob: boolean): Promise<void> {
  await c.line(); // greeting
  await c.cmd(oob ? '{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}' : '{"execute":"qmp_capabilities"}');
}

function rssKb(pid: number, field = "VmRSS"): number {
  const m = new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Start, connect as soon as the socket exists, and time until the greeting. */
/** One start of `side`, timed from spawn to the greeting line; NaN when QEMU wedged. */
async function oneStartup(side: Side): Promise<number> {
  const t0 = performance.now();
  const s = startServer(side);
  try {
    await waitFile(s.socks[0]!, s.proc);
    // QEMU 7.2 may wedge if a client connects during startup: give up and retry then.
    const c = await Client.connectRetry(s.socks[0]!);
    const got = await Promise.race([c.line().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    c.close();
    return got ? performance.now() - t0 : NaN;
  } finally {
    await s.stop();
  }
}

/**
 * Startup to greeting, p50 of each side: the sides take turns (a few ms of
 * difference drown in this machine's swings otherwise), 15 starts each.
 */
async function startupToGreeting(): Promise<[number, number | undefined]> {
  const emu: number[] = [];
  const qemu: number[] = [];
  for (let i = 0; i < (QUICK ? 5 : 15); i++) {
    emu.push(await oneStartup("emu"));
    if (HAVE_QEMU) qemu.push(await oneStartup("qemu"));
  }
  const p50 = (xs: number[]) => {
    const ok = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    return ok.length ? pct(ok, 50) : NaN;
  };
  return [p50(emu), HAVE_QEMU ? p50(qemu) : undefined];
}

async function withServer<T>(side: Side, monitors: number, fn: (s: Server, clients: Client[]) => Promise<T>, extra: string[] = []): Promise<T> {
  const s = startServer(side, monitors, extra);
  try {
    for (const p of s.socks) await waitFile(p, s.proc);
    // Let QEMU finish starting up (connecting during startup can wedge 7.2).
    await new Promise((r) => setTimeout(r, side === "qemu" ? 150 : 20));
    return await fn(s, []);
  } finally {
    await s.stop();
  }
}

const Q = '{"execute":"query-status"}';

async function roundTrips(side: Side, n: number): Promise<{ p50: number; p99: number; idleRssKb: number }> {
  return withServer(side, 1, async (s) => {
    const c = await Client.connect(s.socks[0]!);
    await negotiate(c, false);
    for (let i = 0; i < 200; i++) await c.cmd(Q); // warm up
    const t: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await c.cmd(Q);
      t.push((performance.now() - t0) * 1000);
    }
    t.sort((a, b) => a - b);
    await new Promise((r) => setTimeout(r, 200));
    const idleRssKb = rssKb(s.proc.pid!);
    c.close();
    return { p50: pct(t, 50), p99: pct(t, 99), idleRssKb };
  });
}

/** Writes n pipelined commands (OOB on, so the server queues 8) and times all replies. */
async function pipelined(side: Side, n: number): Promise<{ perSec: number; peakRssKb: number }> {
  return withServer(side, 1, async (s) => {
    const c = await Client.connect(s.socks[0]!);
    await negotiate(c, true);
    // Warm up (JIT) with a tenth of the load, untimed; QEMU gets the same.
    const warm = Math.floor(n / 10);
    c.sock.write(Q.repeat(warm));
    for (let i = 0; i < warm; i++) await c.reply();
    const pid = s.proc.pid!;
    const baseline = rssKb(pid, "VmHWM");
    let got = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    // Count reply lines on raw bytes: the client must not be the bottleneck.
    c.sock.removeAllListeners("data");
    c.sock.on("data", (d: string) => {
      for (let i = d.indexOf("\n"); i >= 0; i = d.indexOf("\n", i + 1)) got++;
      if (got >= n) resolveDone();
    });
    const chunk = Q.repeat(1000);
    const t0 = performance.now();
    let sent = 0;
    // Write as fast as the socket takes it; the server's backpressure does the rest.
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (sent < n) {
          const k = Math.min(1000, n - sent);
          sent += k;
          if (!c.sock.write(k === 1000 ? chunk : Q.repeat(k))) {
            c.sock.once("drain", pump);
            return;
          }
        }
        resolve();
      };
      pump();
    });
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 20);
    await done;
    clearInterval(sampler);
    const secs = (performance.now() - t0) / 1000;
    peak = Math.max(peak, rssKb(pid, "VmHWM"));
    c.close();
    return { perSec: n / secs, peakRssKb: peak };
  });
}

async function manyMonitors(side: Side, monitors: number, rounds: number): Promise<{ connectMs: number; p50One: number; p50Many: number }> {
  return withServer(side, monitors, async (s) => {
    const t0 = performance.now();
    const clients = await Promise.all(s.socks.map((p) => Client.connect(p)));
    await Promise.all(clients.map((c) => negotiate(c, false)));
    const connectMs = performance.now() - t0;
    const lat = async (cs: Client[]) => {
      const t: number[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const c of cs) {
          const a = performance.now();
          await c.cmd(Q);
          t.push((performance.now() - a) * 1000);
        }
      }
      t.sort((a, b) => a - b);
      return pct(t, 50);
    };
    const p50One = await lat(Array.from({ length: monitors }, () => clients[0]!));
    const p50Many = await lat(clients);
    for (const c of clients) c.close();
    return { connectMs, p50One, p50Many };
  });
}

/**
 * exec-oob latency while an in-band command is in progress: one exec-oob
 * every 2 ms for as long as the in-band command runs (at most 200), with the
 * first one timed on its own (it meets code the JIT has not seen yet). The
 * in-band command is honest work: HMP qemu-io writing to a null-co drive,
 * 1 GiB for QEMU (its longest request) and 64 GiB for us (our 1 GiB ends
 * within a few ms).
 */
type OobStats = { first: number; p50: number; p99: number; n: number; inbandMs: number };
async function oobDuringInband(side: Side): Promise<OobStats | string> {
  const drive = ["-drive", "if=none,id=drive0,driver=null-co,size=68719476736"];
  const writeSize = side === "qemu" ? "1G" : "64G";
  return withServer(
    side,
    1,
    async (s) => {
      const c = await Client.connect(s.socks[0]!);
      await negotiate(c, true);
      let inbandAt = 0;
      let inbandLine = "";
      const waiting = new Map<string, (t: number) => void>();
      c.onLine = (l) => {
        const t = performance.now();
        const m = /"id": "(oob\d+|inband)"/.exec(l);
        if (m?.[1] === "inband") (inbandAt = t), (inbandLine = l);
        else if (m) waiting.get(m[1]!)?.(t);
      };
      const t0 = performance.now();
      c.sock.write(`{"execute":"human-monitor-command","arguments":{"command-line":"qemu-io drive0 \\"write 0 ${writeSize}\\""},"id":"inband"}`);
      await new Promise((r) => setTimeout(r, 1));
      const rtts: number[] = [];
      for (let i = 0; i < 200 && !inbandAt; i++) {
        const id = `oob${i}`;
        const reply = new Promise<number>((r) => waiting.set(id, r));
        const sent = performance.now();
        c.sock.write(`{"exec-oob":"migrate-pause","id":"${id}"}`);
        const got = await Promise.race([reply, new Promise<number>((r) => setTimeout(() => r(NaN), 5000))]);
        waiting.delete(id);
        if (Number.isNaN(got)) return "no exec-oob reply";
        // A reply that came after the in-band one was not measured during it.
        if (inbandAt && inbandAt < got) break;
        rtts.push(got - sent);
        await new Promise((r) => setTimeout(r, 2));
      }
      const deadline = performance.now() + 60_000;
      while (!inbandAt && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      c.close();
      if (!inbandAt) return "no in-band reply";
      if (inbandLine.includes('"error"') || !inbandLine.includes('"return": ""')) return `in-band command failed: ${inbandLine.slice(0, 120)}`;
      if (!rtts.length) return "in-band ended before the first exec-oob";
      const first = rtts[0]!;
      rtts.sort((x, y) => x - y);
      const pct = (q: number) => rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))]!;
      return { first, p50: pct(0.5), p99: pct(0.99), n: rtts.length, inbandMs: inbandAt - t0 };
    },
    drive,
  );
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "n/a";
}

async function main(): Promise<void> {
  console.log(`qmpemu: ${emuCommand().join(" ")}`);
  console.log(`qemu:   ${HAVE_QEMU ? "qemu-system-x86_64" : "(not installed: our numbers only)"}\n`);
  const rows: [string, string, string, string][] = [];
  const both = async <T>(f: (side: Side) => Promise<T>): Promise<[T, T | undefined]> => [await f("emu"), HAVE_QEMU ? await f("qemu") : undefined];

  const [sE, sQ] = await startupToGreeting();
  rows.push(["startup → greeting (ms, p50)", fmt(sE), fmt(sQ ?? NaN), fmt(sE / (sQ ?? NaN), 2) + "x"]);

  const N = QUICK ? 1000 : 5000;
  const [rE, rQ] = await both((s) => roundTrips(s, N));
  rows.push(["round trip p50 (µs)", fmt(rE.p50), fmt(rQ?.p50 ?? NaN), fmt(rE.p50 / (rQ?.p50 ?? NaN), 2) + "x"]);
  rows.push(["round trip p99 (µs)", fmt(rE.p99), fmt(rQ?.p99 ?? NaN), fmt(rE.p99 / (rQ?.p99 ?? NaN), 2) + "x"]);
  rows.push(["idle RSS (MiB)", fmt(rE.idleRssKb / 1024), fmt((rQ?.idleRssKb ?? NaN) / 1024), fmt(rE.idleRssKb / (rQ?.idleRssKb ?? NaN), 2) + "x"]);

  const PIPE_EMU = QUICK ? 100_000 : 500_000;
  const PIPE_QEMU = QUICK ? 10_000 : 30_000;
  const pE = await pipelined("emu", PIPE_EMU);
  const pQ = HAVE_QEMU ? await pipelined("qemu", PIPE_QEMU) : undefined;
  rows.push([`pipelined, OOB on, warmed up (cmds/s; ${PIPE_EMU / 1000}k vs ${PIPE_QEMU / 1000}k)`, fmt(pE.perSec, 0), fmt(pQ?.perSec ?? NaN, 0), fmt(pE.perSec / (pQ?.perSec ?? NaN), 1) + "x"]);
  rows.push(["peak RSS during that flood (MiB)", fmt(pE.peakRssKb / 1024), fmt((pQ?.peakRssKb ?? NaN) / 1024), fmt(pE.peakRssKb / (pQ?.peakRssKb ?? NaN), 2) + "x"]);

  const M = QUICK ? 200 : 1000;
  const [mE, mQ] = await both((s) => manyMonitors(s, M, QUICK ? 2 : 3));
  rows.push([`${M} monitors: connect + negotiate all (ms)`, fmt(mE.connectMs), fmt(mQ?.connectMs ?? NaN), fmt(mE.connectMs / (mQ?.connectMs ?? NaN), 2) + "x"]);
  rows.push([`${M} monitors: p50 µs, 1 monitor busy`, fmt(mE.p50One), fmt(mQ?.p50One ?? NaN), fmt(mE.p50One / (mQ?.p50One ?? NaN), 2) + "x"]);
  rows.push([`${M} monitors: p50 µs, round robin all`, fmt(mE.p50Many), fmt(mQ?.p50Many ?? NaN), fmt(mE.p50Many / (mQ?.p50Many ?? NaN), 2) + "x"]);

  const [oE, oQ] = await both(oobDuringInband);
  const oob = (o: OobStats | string | undefined, k: "first" | "p50" | "p99") => (o === undefined ? "n/a" : typeof o === "string" ? o : fmt(o[k], 2));
  const oobRatio = (k: "first" | "p50" | "p99") =>
    typeof oE === "object" && typeof oQ === "object" ? fmt(oE[k] / oQ[k], 2) + "x" : "";
  const n = (o: OobStats | string | undefined) => (typeof o === "object" ? `${o.n} in ${fmt(o.inbandMs, 0)} ms` : "");
  rows.push([`exec-oob during in-band qemu-io: samples`, n(oE), n(oQ), ""]);
  for (const k of ["first", "p50", "p99"] as const) rows.push([`exec-oob during in-band qemu-io: ${k} (ms)`, oob(oE, k), oob(oQ, k), oobRatio(k)]);

  const w = [Math.max(...rows.map((r) => r[0].length)), 14, 14, 8];
  console.log(["metric".padEnd(w[0]!), "qmpemu".padStart(w[1]!), "qemu".padStart(w[2]!), "ratio".padStart(w[3]!)].join("  "));
  for (const r of rows) console.log([r[0].padEnd(w[0]!), r[1].padStart(w[1]!), r[2].padStart(w[2]!), r[3].padStart(w[3]!)].join("  "));
}

await main();
process.exit(0);
