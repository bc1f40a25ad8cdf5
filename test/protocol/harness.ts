/**
 * Differential test harness: the same byte-level conversation against real
 * qemu-system-x86_64 (when installed) and against our emulator over a real
 * unix socket, returning the received lines parsed and normalised
 * (timestamps masked, version package masked).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { createEmulator, type Emulator } from "../../src/emulator.ts";

export const QEMU = "qemu-system-x86_64";
export const haveQemu = spawnSync("which", [QEMU]).status === 0;

export class LineClient {
  private buf = "";
  private lines: string[] = [];
  private wake: (() => void) | undefined;
  eof = false;

  constructor(readonly sock: net.Socket) {
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\r\n")) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      this.wake?.();
    });
    sock.on("close", () => {
      this.eof = true;
      this.wake?.();
    });
    sock.on("error", () => {});
  }

  static connect(socketPath: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(new LineClient(s)));
      s.once("error", reject);
    });
  }

  send(data: string | Uint8Array): void {
    this.sock.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
  }

  /** Next raw line (without CRLF), or undefined on EOF / timeout. */
  async line(timeoutMs = 5000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.eof || Date.now() > deadline) return undefined;
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, Math.max(1, deadline - Date.now()));
      });
      this.wake = undefined;
    }
    return this.lines.shift();
  }

  /** Raw lines until (and including) one for which `stop` is true of its parsed form. */
  async rawUntil(stop: (msg: any) => boolean, timeoutMs = 5000): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) return [...out, this.eof ? "<eof>" : "<timeout>"];
      out.push(l);
      if (stop(parseLine(l))) return out;
    }
  }

  /** Lines until (and including) one for which `stop` is true. */
  async until(stop: (msg: any) => boolean, timeoutMs = 5000): Promise<any[]> {
    const out: any[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === undefined) {
        out.push({ eof: this.eof, timeout: !this.eof });
        return out;
      }
      const msg = parseLine(l);
      out.push(msg);
      if (stop(msg)) return out;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Parses one line; QEMU's non-JSON quirks (inf) come back as {raw}. */
export function parseLine(l: string): any {
  try {
    return normalise(JSON.parse(l));
  } catch {
    return { raw: l };
  }
}

export function normalise(m: any): any {
  if (m && typeof m === "object" && !Array.isArray(m)) {
    if (m.timestamp && typeof m.timestamp === "object") m = { ...m, timestamp: "<ts>" };
    if (m.QMP) m = { QMP: { ...m.QMP, version: "<version>" } };
    if (m.return && typeof m.return === "object" && m.return.qemu && "package" in m.return) m = { ...m, return: "<version>" };
  }
  return m;
}

export interface Peer {
  client: LineClient;
  greeting: any;
  stop(): Promise<void>;
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-diff-"));
}

async function waitForFile(p: string, child?: ChildProcess): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (fs.existsSync(p)) return;
    if (child && child.exitCode !== null) throw new Error(`${QEMU} exited early`);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`socket ${p} never appeared`);
}

export async function startQemu(extra: string[] = [], opts: { pretty?: boolean } = {}): Promise<Peer> {
  const dir = tmpdir();
  const sock = path.join(dir, "qmp.sock");
  const monitor = opts.pretty
    ? ["-chardev", `socket,id=mon0,path=${sock},server=on,wait=off`, "-mon", "chardev=mon0,mode=control,pretty=on"]
    : ["-qmp", `unix:${sock},server=on,wait=off`];
  const child = spawn(QEMU, ["-M", "none", "-nodefaults", "-display", "none", ...monitor, ...extra], {
    stdio: ["ignore", "ignore", "ignore"],
  });
  await waitForFile(sock, child);
  // QEMU 7.2 can wedge when a client connects while it is still starting up.
  await new Promise((r) => setTimeout(r, 60));
  const client = await LineClient.connect(sock);
  const greeting = opts.pretty ? await prettyMessage(client) : parseLine((await client.line())!);
  return {
    client,
    greeting,
    stop: async () => {
      client.close();
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startEmu(opts: { startPaused?: boolean; pretty?: boolean } = {}): Promise<Peer & { emu: Emulator }> {
  const dir = tmpdir();
  const sock = path.join(dir, "qmp.sock");
  const emu = createEmulator({ monitors: [{ chardev: { kind: "unix", path: sock }, pretty: opts.pretty }], startPaused: opts.startPaused });
  await emu.listen();
  const client = await LineClient.connect(sock);
  const greeting = opts.pretty ? await prettyMessage(client) : parseLine((await client.line())!);
  return {
    emu,
    client,
    greeting,
    stop: async () => {
      client.close();
      await emu.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

let syncN = 0;

/**
 * Sends each chunk followed by a resynchronising byte (0xFF: always a lexical
 * error, so any half-read message is dropped) and a marker request, and
 * collects everything received up to the marker's reply.
 */
export async function converse(peer: Peer, chunks: (string | Uint8Array)[]): Promise<any[][]> {
  const out: any[][] = [];
  for (const chunk of chunks) {
    const id = `sync-${syncN++}`;
    peer.client.send(chunk);
    peer.client.send(Buffer.concat([Buffer.from([0x0a, 0xff, 0x0a]), Buffer.from(`{"execute":"query-status","id":"${id}"}`)]));
    const got = await peer.client.until((m) => m && m.id === id);
    out.push(got.slice(0, -1));
  }
  return out;
}

/** A raw line with what legitimately differs masked: timestamps, version package. */
export function maskRaw(line: string): string {
  return line
    .replace(/"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}/g, '"timestamp": <ts>')
    .replace(/"package": "(?:[^"\\]|\\.)*"/g, '"package": <pkg>');
}

/**
 * Sends each request (object or raw text) and returns the exact lines
 * received up to its reply (matched by id when it has one; `{"until": n}`
 * entries wait for n lines instead).
 */
export type Step = object | string | { raw: string; untilId: unknown };

export async function exchange(peer: Peer, steps: Step[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const st of steps) {
    const isRaw = typeof st === "object" && st !== null && "raw" in st && "untilId" in st;
    const text = isRaw ? (st as { raw: string }).raw : typeof st === "string" ? st : JSON.stringify(st);
    const id = isRaw
      ? (st as { untilId: unknown }).untilId
      : typeof st === "object" && st && "id" in st
        ? (st as { id: unknown }).id
        : undefined;
    peer.client.send(text + "\n");
    const lines = await peer.client.rawUntil((m) =>
      id === undefined ? m && ("return" in m || "error" in m) : m && JSON.stringify(m.id) === JSON.stringify(id),
    );
    out.push(lines.map(maskRaw));
  }
  return out;
}

/** One pretty-printed message: its lines up to the closing "}" at column 0, joined. */
export async function prettyMessage(c: LineClient): Promise<string> {
  const lines: string[] = [];
  for (;;) {
    const l = await c.line();
    if (l === undefined) return lines.join("\r\n") + "<eof>";
    lines.push(l);
    if (l === "}") return maskRaw(lines.join("\r\n").replace(/"seconds": \d+,\r\n\s+"microseconds": \d+/g, "<ts>"));
  }
}
