/**
 * HMP (readline) monitors, byte for byte: the same keystrokes typed into real
 * QEMU 7.2 and into dist/qmpemu (behind a symlink named qemu-system-x86_64,
 * so the banners name the same program), over a unix socket and over stdio
 * with a pipe; the raw transcripts (echo escapes, CRLFs, prompts) must be
 * identical, apart from `info version`'s package string. Plus: `quit` typed
 * on HMP exits with status 0 and a QMP monitor alongside sees SHUTDOWN, while
 * events never show on the HMP monitor. The QEMU halves skip without QEMU.
 */
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BINARY, has, QmpClient, qemuNamedLinks, start, stop, tmpDir, waitFor } from "./helpers.ts";

const haveQemu = has("qemu-system-x86_64");
const ours = qemuNamedLinks().system;
const BASE = ["-M", "none", "-nodefaults", "-display", "none"];
const PROMPT = "(qemu) ";

/** Typed one line per step; each exercises a piece of the line editor or a command. */
const KEYS: string[] = [
  "info status\n",
  "info version\r",
  "info block\r\n", // \r and \n are two Enters: an empty line follows
  "foo\n",
  "stop\n",
  "info status\n",
  "cont\n",
  "info status\n",
  "abx\x7fc\n", // DEL
  "abx\x08c\n", // BS
  "\n",
  "\x1b[A\x1b[A\x1b[B\n", // history up, up, down
  "\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\n",
  "nfo status\x01i\n", // Ctrl-A, insert at the start
  "info statusxy\x1b[D\x1b[3~\x1b[F\x08\n", // left, Delete, CSI F (history up in QEMU 7.2), BS
  "abc\x1b[E\x1b[4~\n", // CSI E (history down), CSI 4~ (end)
  "info xyz  \x17status\x1bOH\x1b[C\x1b[1~\x05\n", // Ctrl-W, SS3 Home, right, CSI 1~, Ctrl-E
  "info na\x0cme\n", // Ctrl-L
  "info name\n",
  "help stop\n",
  "help c\n",
  "info uuid\n",
];

function enters(keys: string): number {
  return [...keys].filter((c) => c === "\r" || c === "\n").length;
}

function count(hay: string, needle: string): number {
  return hay.split(needle).length - 1;
}

/** Versions differ by build: keep the form of `info version`'s answer only. */
function mask(t: string): string {
  return t.replace(/\r\n7\.2\.\d+[^\r\n]*\r\n/g, "\r\n<version>\r\n");
}

/** A raw byte recorder on a socket (latin1 keeps every byte as one char). */
class Recorder {
  text = "";
  ended = false;
  constructor(readonly sock: net.Socket) {
    sock.on("data", (d: Buffer) => (this.text += d.toString("latin1")));
    sock.on("close", () => (this.ended = true));
  }
  static connect(p: string): Promise<Recorder> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(p);
      sock.once("connect", () => resolve(new Recorder(sock)));
      sock.once("error", reject);
    });
  }
  /** Types `keys` and waits for one prompt per Enter. */
  async type(keys: string): Promise<void> {
    const want = count(this.text, PROMPT) + enters(keys);
    this.sock.write(Buffer.from(keys, "latin1"));
    await waitFor(() => count(this.text, PROMPT) >= want && this.text.endsWith(PROMPT));
  }
}

async function connectWhenReady(p: string): Promise<Recorder> {
  for (let i = 0; ; i++) {
    try {
      return await Recorder.connect(p);
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 30));
    }
  }
}

/** The whole unix-socket session on one program: two clients, the second quits. */
async function unixTranscript(program: string): Promise<{ first: string; second: string; code: number | null }> {
  const sock = path.join(tmpDir(), "h.sock");
  const run = start(program, [...BASE, "-monitor", `unix:${sock},server=on,wait=off`]);
  try {
    const a = await connectWhenReady(sock);
    await waitFor(() => a.text.endsWith(PROMPT));
    for (const k of KEYS) await a.type(k);
    a.sock.destroy();
    const b = await connectWhenReady(sock);
    await waitFor(() => b.text.endsWith(PROMPT));
    b.sock.write("quit\n");
    await waitFor(() => b.ended);
    const { code } = await run.exit;
    return { first: mask(a.text), second: mask(b.text), code };
  } finally {
    await stop(run);
  }
}

/** All keystrokes and `quit` piped into -monitor stdio at once; stdout until exit. */
function stdioTranscript(program: string): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...BASE, "-monitor", "stdio"], { stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ out: mask(out), code });
    });
    child.stdin.end(Buffer.from(KEYS.join("") + "quit\n", "latin1"));
  });
}

describe.skipIf(!haveQemu)("HMP monitor vs QEMU 7.2, raw bytes", () => {
  it("over a unix socket: banner, echo, outputs, prompts; a second client gets a fresh banner; quit", async () => {
    const [q, e] = await Promise.all([unixTranscript("qemu-system-x86_64"), unixTranscript(ours)]);
    expect(q.code).toBe(0);
    expect(q.first).toMatch(/^QEMU 7\.2\.\d+ monitor - type 'help' for more information\r\n\(qemu\) /);
    expect(e.first).toBe(q.first);
    expect(e.second).toBe(q.second);
    expect(e.code).toBe(q.code);
  });

  it("over stdio with a pipe", async () => {
    const [q, e] = await Promise.all([stdioTranscript("qemu-system-x86_64"), stdioTranscript(ours)]);
    expect(q.code).toBe(0);
    expect(q.out).toContain("VM status: paused\r\n(qemu) ");
    expect(e.out).toBe(q.out);
    expect(e.code).toBe(0);
  });
});

describe("HMP quit beside a QMP monitor", () => {
  it("exits 0, QMP sees SHUTDOWN, the HMP monitor shows no events", async () => {
    const dir = tmpDir();
    const hmp = path.join(dir, "h.sock");
    const qmp = path.join(dir, "q.sock");
    const run = start(BINARY, [...BASE, "-monitor", `unix:${hmp},server=on,wait=off`, "-qmp", `unix:${qmp},server=on,wait=off`]);
    try {
      const h = await connectWhenReady(hmp);
      await waitFor(() => h.text.endsWith(PROMPT));
      await waitFor(() => {
        try {
          return net.connect(qmp).destroy() !== undefined;
        } catch {
          return false;
        }
      });
      const c = await QmpClient.connect(qmp);
      await c.handshake();
      // A QMP stop emits STOP; the HMP monitor must not show it.
      expect(await c.execute("stop")).toEqual({ return: {} });
      const before = h.text.length;
      await h.type("info status\n");
      expect(h.text.slice(before)).toMatch(/status\x1b\[K\r\nVM status: paused\r\n\(qemu\) $/);
      h.sock.write("quit\n");
      const ev = await c.reader.json();
      expect(ev.event).toBe("SHUTDOWN");
      expect(ev.data).toEqual({ guest: false, reason: "host-qmp-quit" });
      await waitFor(() => h.ended);
      expect(h.text.endsWith("quit\x1b[K\r\n")).toBe(true);
      expect((await run.exit).code).toBe(0);
    } finally {
      await stop(run);
    }
  });
});
