/**
 * The socket chardev without a frontend, as QEMU 7.2 runs one that
 * chardev-add created: a server listens and takes one client at a time
 * (later ones wait in the backlog), a client connects at once (or keeps
 * retrying with `reconnect`). Nothing reads the data: there is no device.
 *
 * Its filename follows the connection state (char-socket.c):
 * "disconnected:unix:PATH,server=on" while listening, "unix:PATH,server=on"
 * or "tcp:HOST:PORT,server=on <-> PEER:PEERPORT" while connected. Only a
 * HUP ends a connection QEMU is not reading from: a unix peer's close
 * raises one, a TCP peer's FIN does not, so a TCP chardev stays
 * "connected" after its client went away, as QEMU's does.
 */
import * as fs from "node:fs";
import { lazyBuiltin } from "../core/lazy-builtin.ts";
import * as net from "node:net";
import * as nodePath from "node:path";
import { genericError } from "../core/error.ts";
import { strerror } from "../core/errno.ts";

/** Name resolution is loaded the first time a socket needs it (startup is a measured target). */
const dnsPromises = lazyBuiltin<typeof import("node:dns/promises")>("node:dns/promises");

/** SocketAddress, flattened (QAPI's SocketAddressLegacy without its data wrappers). */
export type SocketAddr =
  | { type: "unix"; path: string; abstract?: boolean; tight?: boolean }
  | { type: "inet"; host: string; port: string; numeric?: boolean; to?: number; ipv4?: boolean; ipv6?: boolean; "keep-alive"?: boolean; mptcp?: boolean }
  | { type: "vsock"; cid: string; port: string }
  | { type: "fd"; str: string };

export interface SocketOptions {
  addr: SocketAddr;
  server: boolean;
  wait: boolean;
  telnet: boolean;
  websocket: boolean;
  reconnect: number;
}

const SUN_PATH_MAX = 108;

function protocol(o: SocketOptions): string {
  return o.telnet ? "telnet" : o.websocket ? "websocket" : "tcp";
}

/** qemu_chr_socket_address: the address as the filename spells it. */
function describe(o: SocketOptions, addr: SocketAddr, prefix: string): string {
  const server = o.server ? ",server=on" : "";
  switch (addr.type) {
    case "inet":
      return `${prefix}${protocol(o)}:${addr.host}:${addr.port}${server}`;
    case "unix": {
      const abstract = addr.abstract ? `,abstract=on${addr.tight ? ",tight=on" : ""}` : "";
      return `${prefix}unix:${addr.path}${abstract}${server}`;
    }
    case "fd":
      return `${prefix}fd:${addr.str}${server}`;
    case "vsock":
      return `${prefix}vsock:${addr.cid}:${addr.port}`;
  }
}

/** libuv reports a unix bind into a missing directory as EACCES; bind(2) says ENOENT. */
function bindErrno(e: unknown, path: string): unknown {
  if ((e as NodeJS.ErrnoException).code !== "EACCES") return e;
  try {
    fs.statSync(nodePath.dirname(path));
    return e;
  } catch (missing) {
    return missing;
  }
}

const bracket = (host: string) => (host.includes(":") ? `[${host}]` : host);

export class SocketChardev {
  private server: net.Server | undefined;
  private current: net.Socket | undefined;
  private readonly waiting: net.Socket[] = [];
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  /** Ends the current connection as a HUP would. */
  private hangUp: (() => void) | undefined;
  /** The address as QEMU keeps it: after listening, the bound one (port 0 resolved). */
  addr: SocketAddr;
  filename: string;

  constructor(readonly options: SocketOptions) {
    this.addr = options.addr;
    this.filename = describe(options, this.addr, "disconnected:");
  }

  get connected(): boolean {
    return this.current !== undefined;
  }

  /** Listens or connects; resolves once QEMU's chardev-add would have answered. */
  async open(): Promise<void> {
    const o = this.options;
    if (o.addr.type === "fd") {
      // QEMU looks the name up among the monitor's passed descriptors; none are ever passed here.
      if (o.server && o.addr.str === "") return;
      throw genericError(`File descriptor named '${o.addr.str}' has not been found`);
    }
    if (o.addr.type === "vsock") throw genericError("Failed to bind socket: Cannot assign requested address");
    if (o.server) {
      await this.listen(o.addr);
      if (o.wait) await new Promise<void>((resolve) => this.server!.once("connection", () => resolve()));
    } else if (o.reconnect > 0) {
      void this.connectLoop(o.addr);
    } else {
      this.attach(await this.connect(o.addr));
    }
  }

  private async listen(addr: Extract<SocketAddr, { type: "unix" | "inet" }>): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (sock) => this.incoming(sock));
    server.on("error", () => {});
    if (addr.type === "unix") {
      if (addr.path.length > SUN_PATH_MAX) throw genericError(`UNIX socket path '${addr.path}' is too long`);
      const path = addr.abstract ? `\0${addr.path}` : addr.path;
      if (!addr.abstract) {
        try {
          fs.unlinkSync(addr.path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw genericError(`Failed to unlink socket ${addr.path}: ${strerror(e)}`);
        }
      }
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e) => reject(genericError(`Failed to bind socket to ${addr.path}: ${strerror(bindErrno(e, addr.path))}`)));
        server.listen(path, resolve);
      });
    } else {
      const host = await this.resolve(addr);
      const first = Number(addr.port);
      const last = addr.to ?? first;
      let lastError: unknown;
      for (let port = first; port <= last; port++) {
        try {
          await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen({ host, port, exclusive: true }, () => {
              server.off("error", reject);
              resolve();
            });
          });
          lastError = undefined;
          break;
        } catch (e) {
          lastError = e;
          if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE") throw genericError(`Failed to bind socket: ${strerror(e)}`);
        }
      }
      if (lastError) throw genericError(`Failed to find an available port: ${strerror(lastError)}`);
      const bound = server.address() as net.AddressInfo;
      this.addr = { type: "inet", host: bound.address, port: String(bound.port) };
    }
    this.server = server;
    this.filename = describe(this.options, this.addr, "disconnected:");
  }

  /** getaddrinfo for an inet address: numeric hosts as they are, names through the resolver. */
  private async resolve(addr: Extract<SocketAddr, { type: "inet" }>): Promise<string> {
    const fail = (why: string) => genericError(`address resolution failed for ${addr.host}:${addr.port}: ${why}`);
    if (!/^\d+$/.test(addr.port)) throw fail("Servname not supported for ai_socktype");
    if (addr.host === "") return "0.0.0.0";
    if (net.isIP(addr.host)) return addr.host;
    const family = addr.ipv4 && !addr.ipv6 ? 4 : addr.ipv6 && !addr.ipv4 ? 6 : 0;
    try {
      return (await dnsPromises().lookup(addr.host, { family })).address;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw fail(code === "ENOTFOUND" ? "Name or service not known" : code === "EAI_AGAIN" ? "Temporary failure in name resolution" : String(code));
    }
  }

  private async connect(addr: Extract<SocketAddr, { type: "unix" | "inet" }>): Promise<net.Socket> {
    let sock: net.Socket;
    let where: string;
    if (addr.type === "unix") {
      if (addr.path.length > SUN_PATH_MAX) throw genericError(`UNIX socket path '${addr.path}' is too long`);
      where = addr.path;
      sock = net.connect(addr.abstract ? `\0${addr.path}` : addr.path);
    } else {
      const host = await this.resolve(addr);
      where = `${addr.host}:${addr.port}`;
      sock = net.connect({ host, port: Number(addr.port) });
    }
    return new Promise((resolve, reject) => {
      sock.once("error", (e) => reject(genericError(`Failed to connect to '${where}': ${strerror(e)}`)));
      sock.once("connect", () => {
        sock.removeAllListeners("error");
        resolve(sock);
      });
    });
  }

  /** reconnect=N: try now, then every N seconds while disconnected. */
  private async connectLoop(addr: Extract<SocketAddr, { type: "unix" | "inet" }>): Promise<void> {
    if (this.closed || this.current) return;
    try {
      const sock = await this.connect(addr);
      if (this.closed) sock.destroy();
      else this.attach(sock);
    } catch {
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    const o = this.options;
    if (this.closed || o.server || o.reconnect <= 0 || o.addr.type === "fd" || o.addr.type === "vsock") return;
    const addr = o.addr;
    this.retry = setTimeout(() => void this.connectLoop(addr), o.reconnect * 1000);
    this.retry.unref();
  }

  private incoming(sock: net.Socket): void {
    if (this.closed) return void sock.destroy();
    if (this.current) {
      this.waiting.push(sock);
      sock.on("error", () => {});
      sock.once("close", () => {
        const i = this.waiting.indexOf(sock);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      return;
    }
    this.attach(sock);
  }

  /** tcp_chr_connect: the connection's filename; nothing reads, only a HUP (unix) ends it. */
  private attach(sock: net.Socket): void {
    this.current = sock;
    const server = this.options.server ? ",server=on" : "";
    if (this.addr.type === "unix") {
      // The local address: the path for an accepted connection, unnamed for a client.
      this.filename = `unix:${this.options.server ? this.addr.path : ""}${server}`;
    } else {
      const proto = protocol(this.options);
      this.filename = `${proto}:${bracket(sock.localAddress ?? "")}:${sock.localPort}${server} <-> ${bracket(sock.remoteAddress ?? "")}:${sock.remotePort}`;
    }
    sock.on("error", () => {});
    sock.on("data", () => {});
    const hup = () => {
      if (this.current !== sock) return;
      this.current = undefined;
      this.filename = describe(this.options, this.addr, "disconnected:");
      const next = this.waiting.shift();
      if (next) {
        next.removeAllListeners("close");
        this.attach(next);
      } else this.scheduleReconnect();
    };
    this.hangUp = hup;
    if (this.addr.type === "unix") sock.once("end", hup);
    sock.once("close", (hadError) => hadError && hup());
    sock.resume();
  }

  /** Drops the current client (yank, or the chardev going away). */
  kick(): void {
    this.current?.destroy();
    this.hangUp?.();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    for (const s of this.waiting.splice(0)) s.destroy();
    this.current?.destroy();
    this.current = undefined;
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (this.addr.type === "unix" && !this.addr.abstract) {
        try {
          fs.unlinkSync(this.addr.path);
        } catch {
          // already gone
        }
      }
    }
  }
}
