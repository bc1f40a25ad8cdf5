/**
 * Test helpers for the block layer: an in-process emulator with a QMP
 * client, temp dirs, and a real QEMU 7.2 to run the same conversation
 * against (differential tests), with the outputs normalised alike.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createEmulator, type Emulator, type EmulatorOptions } from "../../src/index.ts";
import { setQemuIoLog } from "../../src/commands/block.ts";

export const which = (cmd: string) => spawnSync("which", [cmd]).status === 0;
export const hasQemuImg = which("qemu-img") && which("qemu-io");
export const hasQemuSystem = which("qemu-system-x86_64") && hasQemuImg;

type Msg = Record<string, any>;

export interface Session {
  /** Runs a command; returns the whole reply ({return} or {error}). */
  q(cmd: string, args?: Record<string, unknown>): Promise<Msg>;
  /** HMP command line → the "return" string. */
  hmp(line: string): Promise<string>;
  close(): Promise<void>;
}

/** qemu-io reports collected from the emulator (QEMU prints them on stdout). */
export const qemuIoOutput: string[] = [];
setQemuIoLog((s) => void qemuIoOutput.push(s));

export async function emulator(opts: EmulatorOptions = {}): Promise<Session & { emu: Emulator; events: unknown[] }> {
  const emu = createEmulator(opts);
  const events: unknown[] = [];
  emu.events.subscribe((e) => events.push(e.data === undefined ? { event: e.event } : { event: e.event, data: e.data }));
  await emu.blockReady;
  const c = emu.connect();
  await c.next();
  await c.execute("qmp_capabilities");
  const q = async (cmd: string, args?: Record<string, unknown>) => {
    const r = (await c.execute(cmd, args)) as Msg;
    delete r.id;
    return r;
  };
  return {
    emu,
    events,
    q,
    hmp: async (line) => (await q("human-monitor-command", { "command-line": line })).return,
    close: () => emu.close(),
  };
}

/** Real QEMU: qemu-system-x86_64 -M none with the same -blockdev/-drive options. */
export async function realQemu(extra: string[] = []): Promise<Session & { stdout: () => string; events: unknown[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-qemu-"));
  const sock = path.join(dir, "qmp.sock");
  const proc: ChildProcess = spawn(
    "qemu-system-x86_64",
    // wait=on: QEMU accepts our one client before starting its main loop, so no accept race later.
    ["-M", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${sock},server=on,wait=on`, ...extra],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  // Never leave a QEMU behind, whatever happens to the test.
  const reap = () => proc.kill("SIGKILL");
  process.once("exit", reap);
  proc.once("exit", () => process.removeListener("exit", reap));
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  // A loaded machine can take a while to start QEMU.
  for (let i = 0; i < 800 && !fs.existsSync(sock); i++) {
    if (proc.exitCode !== null) throw new Error(`qemu exited: ${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!fs.existsSync(sock)) {
    proc.kill("SIGKILL");
    throw new Error("QEMU did not create its QMP socket");
  }
  // The socket file appears at bind(), a moment before listen(): retry refused connects.
  let s: net.Socket | undefined;
  for (let attempt = 0; !s; attempt++) {
    s = await new Promise<net.Socket | undefined>((resolve, reject) => {
      const c = net.connect(sock);
      c.once("connect", () => resolve(c));
      c.once("error", (e) => (attempt < 100 ? resolve(undefined) : reject(e)));
    });
    if (!s) await new Promise((r) => setTimeout(r, 50));
  }
  let broken: Error | null = null;
  s.on("error", (e) => {
    broken = e;
    wake?.();
  });
  s.on("close", () => {
    broken ??= new Error("QMP connection closed");
    wake?.();
  });
  let buf = "";
  const inbox: Msg[] = [];
  const events: unknown[] = [];
  let wake: (() => void) | null = null;
  s.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const m = JSON.parse(line);
      if ("event" in m) events.push(m.data === undefined ? { event: m.event } : { event: m.event, data: m.data });
      else inbox.push(m);
    }
    wake?.();
  });
  const next = async (): Promise<Msg> => {
    for (;;) {
      const i = inbox.findIndex((m) => !("event" in m));
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      if (broken) throw broken;
      await new Promise<void>((r) => (wake = r));
    }
  };
  await next(); // greeting
  const q = async (cmd: string, args?: Record<string, unknown>) => {
    s.write(JSON.stringify(args ? { execute: cmd, arguments: args } : { execute: cmd }) + "\n");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`QEMU did not answer ${cmd} ${JSON.stringify(args)}; stderr: ${err}`)), 30_000);
    });
    try {
      return await Promise.race([next(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  await q("qmp_capabilities");
  return {
    q,
    events,
    hmp: async (line) => (await q("human-monitor-command", { "command-line": line })).return,
    stdout: () => out,
    close: async () => {
      const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise((r) => proc.once("exit", r));
      s.write(JSON.stringify({ execute: "quit" }) + "\n");
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
      s.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function tmpDir(): { dir: string; file(n: string): string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-block-"));
  return { dir, file: (n) => path.join(dir, n), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export function sh(cmd: string, cwd?: string): string {
  const r = spawnSync("sh", ["-c", cmd], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** Masks what legitimately differs between runs: auto node names. */
export function normalise(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x).replace(/#block\d+/g, "#block<N>").replace(/\/vl\.[A-Za-z0-9]{6}/g, "/vl.XXXXXX"));
}

/** Turns -blockdev keyval strings into the dictionaries the CLI hands the emulator. */
export function keyval(s: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of s.split(",")) {
    const eq = part.indexOf("=");
    const keys = part.slice(0, eq).split(".");
    let cur = out;
    for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
    cur[keys[keys.length - 1]!] = part.slice(eq + 1);
  }
  return out;
}

export function driveOpts(s: string): Record<string, string> {
  return Object.fromEntries(s.split(",").map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
}

export type Step = [string, Record<string, unknown>?];

export interface Scenario {
  /** Shell commands run in a fresh directory before each side starts. */
  setup?: string[];
  blockdev?: string[];
  drive?: string[];
  steps: Step[];
  /** Shell commands run in the directory after the server quit; their output is compared too. */
  post?: string[];
}

export interface SideResult {
  replies: unknown[];
  /** QMP events (timestamps dropped) in emission order. */
  events: unknown[];
  /** qemu-io reports without timing lines. */
  qemuIo: string;
  post: string[];
}

const subst = (x: unknown, dir: string): any => JSON.parse(JSON.stringify(x).replaceAll("{dir}", dir));

function stripTiming(s: string): string {
  return s
    .split("\n")
    .filter((l) => !/ ops; /.test(l) && !/^Formatting '/.test(l))
    .join("\n");
}

async function runSide(kind: "emu" | "qemu", sc: Scenario): Promise<SideResult> {
  const d = tmpDir();
  try {
    for (const c of sc.setup ?? []) sh(c, d.dir);
    const blockdev = subst(sc.blockdev ?? [], d.dir) as string[];
    const drive = subst(sc.drive ?? [], d.dir) as string[];
    const replies: unknown[] = [];
    let events: unknown[] = [];
    let qemuIo = "";
    if (kind === "emu") {
      qemuIoOutput.length = 0;
      const s = await emulator({ blockdevs: blockdev.map(keyval), drives: drive.map(driveOpts) });
      try {
        for (const [cmd, a] of subst(sc.steps, d.dir) as Step[]) replies.push(cmd.startsWith("hmp ") ? await s.hmp(cmd.slice(4)) : await s.q(cmd, a));
      } finally {
        await s.close();
      }
      events = s.events;
      qemuIo = qemuIoOutput.join("");
    } else {
      const s = await realQemu([...blockdev.flatMap((b) => ["-blockdev", b]), ...drive.flatMap((x) => ["-drive", x])]);
      try {
        for (const [cmd, a] of subst(sc.steps, d.dir) as Step[]) replies.push(cmd.startsWith("hmp ") ? await s.hmp(cmd.slice(4)) : await s.q(cmd, a));
      } finally {
        await s.close();
      }
      events = s.events.filter((e) => (e as { event: string }).event !== "SHUTDOWN");
      qemuIo = s.stdout();
    }
    const post = (sc.post ?? []).map((c) => {
      const r = spawnSync("sh", ["-c", c], { cwd: d.dir, encoding: "utf8" });
      return `rc=${r.status}\n${r.stdout}`;
    });
    const mask = (x: unknown) => JSON.parse(JSON.stringify(normalise(x)).replaceAll(d.dir, "{dir}"));
    events = events.filter((e) => (e as { event: string }).event !== "SHUTDOWN");
    return { replies: mask(replies), events: mask(events), qemuIo: stripTiming(qemuIo).replaceAll(d.dir, "{dir}"), post: mask(post) };
  } finally {
    d.cleanup();
  }
}

/** Runs a scenario on qmpemu and on QEMU 7.2, each in its own fresh directory. */
export async function differential(sc: Scenario): Promise<{ ours: SideResult; theirs: SideResult }> {
  return { ours: await runSide("emu", sc), theirs: await runSide("qemu", sc) };
}

/** Lets queued I/O callbacks run (a few event-loop turns). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r));
}

/** Steps a virtual clock 10 ms at a time until `p` settles (at most 20 s of virtual time). */
export async function runOnVirtualClock<T>(s: { clock: { nowNs(): number; step(ns: number): void } }, p: Promise<T>): Promise<T> {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await settle();
  while (!done) {
    if (s.clock.nowNs() > 20e9) throw new Error("I/O still held after 20 s of virtual time");
    s.clock.step(10e6);
    await settle();
  }
  return p;
}
