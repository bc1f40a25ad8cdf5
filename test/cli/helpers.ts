/** Helpers for end-to-end tests that run dist/qmpemu as a process. */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";

export const ROOT = path.resolve(import.meta.dirname, "..", "..");
export const BINARY = path.join(ROOT, "dist", "qmpemu");

export function has(cmd: string): boolean {
  return spawnSync("which", [cmd]).status === 0;
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-cli-"));
}

/** A directory holding symlinks to the binary named like QEMU's programs. */
export function qemuNamedLinks(): { system: string; storageDaemon: string } {
  const dir = tmpDir();
  const system = path.join(dir, "qemu-system-x86_64");
  const storageDaemon = path.join(dir, "qemu-storage-daemon");
  fs.symlinkSync(BINARY, system);
  fs.symlinkSync(BINARY, storageDaemon);
  return { system, storageDaemon };
}

/** Reads CRLF/LF-terminated lines from a stream, one at a time. */
export class LineReader {
  private buf = "";
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  constructor(stream: Readable) {
    stream.on("data", (d: Buffer) => {
      this.buf += d.toString("utf8");
      let i: number;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        this.lines.push(this.buf.slice(0, i).replace(/\r$/, ""));
        this.buf = this.buf.slice(i + 1);
      }
      this.waiter?.();
    });
    stream.on("close", () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  async next(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.length) {
      if (this.ended) throw new Error("stream ended");
      if (Date.now() > deadline) throw new Error("timed out waiting for a line");
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.lines.shift()!;
  }

  async json(timeoutMs?: number): Promise<Record<string, unknown>> {
    return JSON.parse(await this.next(timeoutMs));
  }

  /** Skips lines until one has `key` (e.g. "return"), returning it. */
  async until(key: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    for (;;) {
      const msg = await this.json(timeoutMs);
      if (key in msg) return msg;
    }
  }
}

/** A QMP client over a connected socket. */
export class QmpClient {
  readonly reader: LineReader;
  constructor(readonly sock: net.Socket) {
    this.reader = new LineReader(sock);
  }

  static connect(target: string | { host: string; port: number }): Promise<QmpClient> {
    return new Promise((resolve, reject) => {
      const sock = typeof target === "string" ? net.connect(target) : net.connect(target.port, target.host);
      sock.once("connect", () => resolve(new QmpClient(sock)));
      sock.once("error", reject);
    });
  }

  send(msg: object): void {
    this.sock.write(JSON.stringify(msg));
  }

  async execute(command: string, args?: object): Promise<Record<string, unknown>> {
    this.send(args ? { execute: command, arguments: args } : { execute: command });
    for (;;) {
      const msg = await this.reader.json();
      if ("return" in msg || "error" in msg) return msg;
    }
  }

  /** Reads the greeting and negotiates. */
  async handshake(): Promise<Record<string, unknown>> {
    const greeting = await this.reader.json();
    expectReturn(await this.execute("qmp_capabilities"));
    return greeting;
  }

  close(): void {
    this.sock.destroy();
  }
}

function expectReturn(msg: Record<string, unknown>): void {
  if (!("return" in msg)) throw new Error(`expected a return: ${JSON.stringify(msg)}`);
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function exists(p: string): boolean {
  return fs.existsSync(p);
}

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface Run {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a program, collecting stderr; remember to kill it (see `stop`). */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): Run {
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], ...opts });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => err, exit };
}

export async function stop(run: Run): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
  await run.exit;
}

/** Runs to completion; returns status and output. */
export function runSync(cmd: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout: 10_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
