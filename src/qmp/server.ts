/**
 * Socket listeners for monitors (QEMU's socket chardev with server=on):
 * unix and tcp. Like QEMU, one client at a time per socket: a further
 * connection is accepted by the kernel but waits, unread and without a
 * greeting, until the current client goes away. A stale unix socket file is
 * removed before binding, and ours is removed on close.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { socketTransport, type MonitorOptions } from "./transport.ts";

export type ListenAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** A monitor session on an accepted socket (QMP, or HMP from src/hmp). */
export interface MonitorConnection {
  onClose(fn: () => void): void;
  close(): void;
}

export type SessionFactory = (sock: net.Socket, opts: MonitorOptions) => MonitorConnection;

export class MonitorListener {
  private server: net.Server | undefined;
  private current: { sock: net.Socket; session: MonitorConnection } | undefined;
  private readonly waiting: net.Socket[] = [];
  private closed = false;

  constructor(
    readonly address: ListenAddress,
    private readonly start: SessionFactory,
    readonly opts: MonitorOptions,
  ) {}

  async listen(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (sock) => this.incoming(sock));
    this.server = server;
    if (this.address.kind === "unix") {
      try {
        fs.unlinkSync(this.address.path);
      } catch {
        // not there: fine
      }
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const done = () => {
        server.off("error", reject);
        resolve();
      };
      if (this.address.kind === "unix") server.listen(this.address.path, done);
      else server.listen(this.address.port, this.address.host, done);
    });
  }

  /** The bound port (useful with port 0). */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  /** Disconnects the current client (yank), letting the next one in. */
  kick(): void {
    this.current?.sock.destroy();
  }

  private incoming(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    if (this.current) {
      sock.on("error", () => sock.destroy());
      sock.on("close", () => {
        const i = this.waiting.indexOf(sock);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      this.waiting.push(sock);
      return;
    }
    const session = this.start(sock, this.opts);
    this.current = { sock, session };
    sock.resume();
    session.onClose(() => {
      if (this.current?.session === session) this.current = undefined;
      if (!sock.destroyed) sock.end(() => sock.destroy());
      const next = this.waiting.shift();
      if (next && !this.closed) {
        next.removeAllListeners("close");
        next.removeAllListeners("error");
        this.incoming(next);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.waiting.splice(0)) s.destroy();
    this.current?.session.close();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.address.kind === "unix") {
      try {
        fs.unlinkSync(this.address.path);
      } catch {
        // already gone
      }
    }
  }
}

export { socketTransport };
