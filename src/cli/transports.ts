/**
 * Byte streams a monitor can run on besides listening sockets: stdio, an
 * inherited connected socket (fd=N), an inherited listening socket
 * (fd=N,server=on) and an outgoing connection (a socket chardev without
 * server=on connects to its address, as QEMU's Python harness expects).
 */
import * as net from "node:net";
import { socketTransport } from "../qmp/server.ts";
import type { Transport } from "../qmp/transport.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

/**
 * A net.Socket on an inherited, already connected descriptor. Node wraps the
 * fd with `new Socket({fd})`; Bun's Socket constructor refuses a connected
 * socketpair end (it reports "Socket is closed" on the first write), but
 * Bun's `net.connect({fd})` adopts it. Node's net.connect insists on a
 * path or port, hence the split.
 */
export function socketFromFd(fd: number): net.Socket {
  if (isBun) return net.connect({ fd } as unknown as net.NetConnectOpts);
  return new net.Socket({ fd, readable: true, writable: true });
}

/** Monitor on stdin/stdout. stdin's end does not stop the emulator (QEMU keeps running). */
export function stdioTransport(): Transport {
  const stdin = process.stdin;
  const stdout = process.stdout;
  let closeCb: (() => void) | undefined;
  let closed = false;
  const closeOnce = () => {
    if (closed) return;
    closed = true;
    closeCb?.();
  };
  stdin.on("end", closeOnce);
  stdin.on("error", closeOnce);
  stdout.on("error", closeOnce);
  return {
    write: (data) => void (closed || stdout.write(data)),
    pause: () => void stdin.pause(),
    resume: () => void stdin.resume(),
    close: () => {
      stdin.pause();
      closeOnce();
    },
    onData: (cb) => void stdin.on("data", (chunk: Buffer) => cb(chunk)),
    onClose: (cb) => void (closeCb = cb),
  };
}

/** A transport over an inherited connected socket. */
export function fdTransport(fd: number): Transport {
  return socketTransport(socketFromFd(fd));
}

/** Connects out to a unix or tcp address (a socket chardev with server=off). */
export function connectOut(address: { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = address.kind === "unix" ? net.connect(address.path) : net.connect(address.port, address.host);
    sock.once("connect", () => {
      sock.off("error", reject);
      resolve(sock);
    });
    sock.once("error", reject);
  });
}

/**
 * An inherited listening socket: each accepted connection becomes a monitor
 * session, one client at a time like QEMU's socket chardev (later clients
 * wait, unread, until the current one leaves).
 */
export class FdListener {
  private server: net.Server | undefined;
  private busy = false;
  private readonly waiting: net.Socket[] = [];

  constructor(
    private readonly fd: number,
    private readonly serve: (sock: net.Socket, done: () => void) => void,
  ) {}

  listen(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (sock) => this.incoming(sock));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ fd: this.fd }, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  private incoming(sock: net.Socket): void {
    if (this.busy) {
      sock.on("error", () => sock.destroy());
      this.waiting.push(sock);
      sock.on("close", () => {
        const i = this.waiting.indexOf(sock);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      return;
    }
    this.busy = true;
    sock.resume();
    this.serve(sock, () => {
      this.busy = false;
      const next = this.waiting.shift();
      if (next) {
        next.removeAllListeners("close");
        next.removeAllListeners("error");
        this.incoming(next);
      }
    });
  }

  close(): void {
    for (const s of this.waiting.splice(0)) s.destroy();
    this.server?.close();
  }
}
