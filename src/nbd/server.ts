/**
 * An NBD server (fixed newstyle) on node:net: option haggling (EXPORT_NAME,
 * INFO, GO, LIST, ABORT, STRUCTURED_REPLY, LIST/SET_META_CONTEXT with
 * base:allocation) and transmission (READ, WRITE, FLUSH, TRIM, CACHE,
 * WRITE_ZEROES, BLOCK_STATUS, DISC). It serves NbdExport objects and knows
 * nothing of the block layer behind them.
 */
import * as net from "node:net";
import * as fs from "node:fs";
import {
  BASE_ALLOCATION, BASE_ALLOCATION_ID, Cmd, CmdFlag, Errno, HandshakeFlag, IHAVEOPT, Info, MAX_REQUEST, MIN_BLOCK,
  NBDMAGIC, Opt, OPTION_REPLY_MAGIC, PREFERRED_BLOCK, Rep, ReplyFlag, ReplyType, REQUEST_MAGIC, SIMPLE_REPLY_MAGIC,
  State, STRUCTURED_REPLY_MAGIC, TransmissionFlag,
} from "./protocol.ts";

/** What the server needs from an exported disk. Methods may throw errors with an `errno` name. */
export interface NbdExport {
  readonly name: string;
  readonly description?: string;
  readonly writable: boolean;
  size(): number;
  read(buf: Uint8Array, offset: number): Promise<void>;
  write(data: Uint8Array, offset: number): Promise<void>;
  writeZeroes(offset: number, length: number, unmap: boolean): Promise<void>;
  discard(offset: number, length: number): Promise<void>;
  flush(): Promise<void>;
  /** Allocation of the leading run at `offset` (at most `length` bytes). */
  status(offset: number, length: number): Promise<{ length: number; hole: boolean; zero: boolean }>;
}

export type NbdAddress = { type: "inet"; host: string; port: number } | { type: "unix"; path: string };

/** Buffered exact-length reads from a socket. */
class SocketReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiter: (() => void) | null = null;
  private ended = false;

  constructor(sock: net.Socket) {
    sock.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      this.waiter?.();
    });
    const end = () => {
      this.ended = true;
      this.waiter?.();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  async read(n: number): Promise<Buffer> {
    while (this.have < n) {
      if (this.ended) throw new Error("NBD client went away");
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.have = rest.length;
    return out;
  }
}

const NBD_ERRNO: Record<string, number> = {
  EPERM: Errno.EPERM, EROFS: Errno.EPERM, EACCES: Errno.EPERM, EIO: Errno.EIO, ENOMEM: Errno.ENOMEM,
  EINVAL: Errno.EINVAL, ENOSPC: Errno.ENOSPC, EFBIG: Errno.ENOSPC, ENOTSUP: Errno.ENOTSUP,
};

function errnoOf(e: unknown): number {
  const name = (e as { errno?: unknown })?.errno;
  return (typeof name === "string" && NBD_ERRNO[name]) || Errno.EIO;
}

class ProtocolEnd extends Error {}

/** One client connection, from handshake to disconnect. */
export class NbdConnection {
  exp: NbdExport | null = null;
  private structured = false;
  private baseAllocation = false;
  private noZeroes = false;
  private readonly reader: SocketReader;

  constructor(
    private readonly server: NbdServer,
    readonly sock: net.Socket,
  ) {
    this.reader = new SocketReader(sock);
  }

  close(): void {
    this.sock.destroy();
  }

  async run(): Promise<void> {
    try {
      await this.handshake();
      if (this.exp) await this.transmission();
    } catch {
      // Protocol violations and vanished clients just end the connection.
    } finally {
      this.sock.destroy();
    }
  }

  private send(b: Buffer): void {
    if (!this.sock.destroyed) this.sock.write(b);
  }

  private flags(exp: NbdExport): number {
    let f = TransmissionFlag.HAS_FLAGS | TransmissionFlag.SEND_FLUSH | TransmissionFlag.SEND_FUA |
      TransmissionFlag.SEND_CACHE | TransmissionFlag.CAN_MULTI_CONN;
    f |= exp.writable
      ? TransmissionFlag.SEND_TRIM | TransmissionFlag.SEND_WRITE_ZEROES | TransmissionFlag.SEND_FAST_ZERO
      : TransmissionFlag.READ_ONLY;
    if (this.structured) f |= TransmissionFlag.SEND_DF;
    return f;
  }

  private optReply(opt: number, type: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(20);
    h.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(type, 12);
    h.writeUInt32BE(data.length, 16);
    this.send(Buffer.concat([h, data]));
  }

  private optError(opt: number, type: number, msg: string): void {
    this.optReply(opt, type, Buffer.from(msg));
  }

  private async handshake(): Promise<void> {
    const hello = Buffer.alloc(18);
    hello.writeBigUInt64BE(NBDMAGIC, 0);
    hello.writeBigUInt64BE(IHAVEOPT, 8);
    hello.writeUInt16BE(HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES, 16);
    this.send(hello);
    const clientFlags = (await this.reader.read(4)).readUInt32BE(0);
    if (!(clientFlags & HandshakeFlag.FIXED_NEWSTYLE)) throw new ProtocolEnd("client is not fixed newstyle");
    this.noZeroes = !!(clientFlags & HandshakeFlag.NO_ZEROES);
    for (;;) {
      const h = await this.reader.read(16);
      if (h.readBigUInt64BE(0) !== IHAVEOPT) throw new ProtocolEnd("bad option magic");
      const opt = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      if (len > 65536) throw new ProtocolEnd("option too long");
      const data = await this.reader.read(len);
      if (await this.option(opt, data)) return;
    }
  }

  /** Handles one option; true when haggling is over (transmission or abort). */
  private async option(opt: number, data: Buffer): Promise<boolean> {
    switch (opt) {
      case Opt.EXPORT_NAME: {
        const exp = this.server.findExport(data.toString());
        if (!exp) throw new ProtocolEnd("unknown export");
        const b = Buffer.alloc(this.noZeroes ? 10 : 134);
        b.writeBigUInt64BE(BigInt(exp.size()), 0);
        b.writeUInt16BE(this.flags(exp), 8);
        this.send(b);
        this.attach(exp);
        return true;
      }
      case Opt.ABORT:
        this.optReply(opt, Rep.ACK);
        return true;
      case Opt.LIST:
        if (data.length) {
          this.optError(opt, Rep.ERR_INVALID, "request length invalid");
          return false;
        }
        for (const exp of this.server.exports.values()) {
          const name = Buffer.from(exp.name);
          const len = Buffer.alloc(4);
          len.writeUInt32BE(name.length);
          this.optReply(opt, Rep.SERVER, Buffer.concat([len, name, Buffer.from(exp.description ?? "")]));
        }
        this.optReply(opt, Rep.ACK);
        return false;
      case Opt.INFO:
      case Opt.GO:
        return this.infoOrGo(opt, data);
      case Opt.STRUCTURED_REPLY:
        if (data.length) this.optError(opt, Rep.ERR_INVALID, "request length invalid");
        else if (this.structured) this.optError(opt, Rep.ERR_INVALID, "structured reply already negotiated");
        else {
          this.structured = true;
          this.optReply(opt, Rep.ACK);
        }
        return false;
      case Opt.LIST_META_CONTEXT:
      case Opt.SET_META_CONTEXT:
        this.metaContext(opt, data);
        return false;
      case Opt.STARTTLS:
        this.optError(opt, Rep.ERR_POLICY, "TLS not configured");
        return false;
      default:
        this.optError(opt, Rep.ERR_UNSUP, `Unsupported option ${opt}`);
        return false;
    }
  }

  private infoOrGo(opt: number, data: Buffer): boolean {
    if (data.length < 6) {
      this.optError(opt, Rep.ERR_INVALID, "request data too short");
      return false;
    }
    const nameLen = data.readUInt32BE(0);
    const reqCountAt = 4 + nameLen;
    if (reqCountAt + 2 > data.length || reqCountAt + 2 + 2 * data.readUInt16BE(reqCountAt) !== data.length) {
      this.optError(opt, Rep.ERR_INVALID, "request data length mismatch");
      return false;
    }
    const name = data.subarray(4, reqCountAt).toString();
    const requests = new Set<number>();
    for (let i = reqCountAt + 2; i < data.length; i += 2) requests.add(data.readUInt16BE(i));
    const exp = this.server.findExport(name);
    if (!exp) {
      this.optError(opt, Rep.ERR_UNKNOWN, `export '${name}' not present`);
      return false;
    }
    const info = (type: number, body: Buffer) => {
      const t = Buffer.alloc(2);
      t.writeUInt16BE(type);
      this.optReply(opt, Rep.INFO, Buffer.concat([t, body]));
    };
    if (requests.has(Info.NAME)) info(Info.NAME, Buffer.from(exp.name));
    if (requests.has(Info.DESCRIPTION) && exp.description) info(Info.DESCRIPTION, Buffer.from(exp.description));
    const sizes = Buffer.alloc(12);
    sizes.writeUInt32BE(MIN_BLOCK, 0);
    sizes.writeUInt32BE(PREFERRED_BLOCK, 4);
    sizes.writeUInt32BE(MAX_REQUEST, 8);
    info(Info.BLOCK_SIZE, sizes);
    const ex = Buffer.alloc(10);
    ex.writeBigUInt64BE(BigInt(exp.size()), 0);
    ex.writeUInt16BE(this.flags(exp), 8);
    info(Info.EXPORT, ex);
    this.optReply(opt, Rep.ACK);
    if (opt === Opt.INFO) return false;
    this.attach(exp);
    return true;
  }

  private metaContext(opt: number, data: Buffer): void {
    if (!this.structured) {
      this.optError(opt, Rep.ERR_INVALID, "requested metadata context without structured replies");
      return;
    }
    try {
      let at = 0;
      const u32 = () => {
        if (at + 4 > data.length) throw new ProtocolEnd();
        const v = data.readUInt32BE(at);
        at += 4;
        return v;
      };
      const text = (n: number) => {
        if (at + n > data.length) throw new ProtocolEnd();
        const s = data.subarray(at, at + n).toString();
        at += n;
        return s;
      };
      const name = text(u32());
      const queries = Array.from({ length: u32() }, () => text(u32()));
      if (at !== data.length) throw new ProtocolEnd();
      const exp = this.server.findExport(name);
      if (!exp) {
        this.optError(opt, Rep.ERR_UNKNOWN, `export '${name}' not present`);
        return;
      }
      const wanted = opt === Opt.LIST_META_CONTEXT && queries.length === 0
        ? true
        : queries.some((q) => q === BASE_ALLOCATION || (opt === Opt.LIST_META_CONTEXT && q === "base:"));
      if (opt === Opt.SET_META_CONTEXT) this.baseAllocation = wanted;
      if (wanted) {
        const id = Buffer.alloc(4);
        id.writeUInt32BE(BASE_ALLOCATION_ID);
        this.optReply(opt, Rep.META_CONTEXT, Buffer.concat([id, Buffer.from(BASE_ALLOCATION)]));
      }
      this.optReply(opt, Rep.ACK);
    } catch {
      this.optError(opt, Rep.ERR_INVALID, "invalid request");
    }
  }

  private attach(exp: NbdExport): void {
    this.exp = exp;
    this.server.connectionAttached(this);
  }

  // ---- Transmission ----------------------------------------------------------

  private simpleReply(handle: Buffer, error: number, data?: Uint8Array): void {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
    h.writeUInt32BE(error, 4);
    handle.copy(h, 8);
    this.send(data ? Buffer.concat([h, data]) : h);
  }

  private chunk(handle: Buffer, flags: number, type: number, payload: Buffer): void {
    const h = Buffer.alloc(20);
    h.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    handle.copy(h, 8);
    h.writeUInt32BE(payload.length, 16);
    this.send(Buffer.concat([h, payload]));
  }

  private errorReply(handle: Buffer, errno: number, structured: boolean): void {
    if (!structured) return this.simpleReply(handle, errno);
    const p = Buffer.alloc(6);
    p.writeUInt32BE(errno, 0);
    p.writeUInt16BE(0, 4);
    this.chunk(handle, ReplyFlag.DONE, ReplyType.ERROR, p);
  }

  private async transmission(): Promise<void> {
    for (;;) {
      const r = await this.reader.read(28);
      if (r.readUInt32BE(0) !== REQUEST_MAGIC) throw new ProtocolEnd("bad request magic");
      const flags = r.readUInt16BE(4);
      const type = r.readUInt16BE(6);
      const handle = Buffer.from(r.subarray(8, 16));
      const offset = Number(r.readBigUInt64BE(16));
      const length = r.readUInt32BE(24);
      if (type === Cmd.DISC) return;
      let payload: Buffer | undefined;
      if (type === Cmd.WRITE) {
        if (length > MAX_REQUEST) throw new ProtocolEnd("write too large");
        payload = await this.reader.read(length);
      }
      await this.request(type, flags, handle, offset, length, payload);
    }
  }

  private async request(type: number, flags: number, handle: Buffer, offset: number, length: number, payload?: Buffer): Promise<void> {
    const exp = this.exp!;
    const structuredRead = this.structured && (type === Cmd.READ || type === Cmd.BLOCK_STATUS);
    const fail = (errno: number) => this.errorReply(handle, errno, structuredRead);
    const writes = type === Cmd.WRITE || type === Cmd.TRIM || type === Cmd.WRITE_ZEROES;
    if (writes && !exp.writable) return fail(Errno.EPERM);
    const ranged = type !== Cmd.FLUSH;
    // Past the end: writes report no space, everything else an invalid request.
    if (ranged && (offset > exp.size() || length > exp.size() - offset)) {
      return fail(type === Cmd.WRITE || type === Cmd.WRITE_ZEROES ? Errno.ENOSPC : Errno.EINVAL);
    }
    if ((type === Cmd.READ || type === Cmd.CACHE) && length > MAX_REQUEST) return fail(Errno.EINVAL);
    try {
      switch (type) {
        case Cmd.READ: {
          const buf = new Uint8Array(length);
          if (length) await exp.read(buf, offset);
          if (!this.structured) return this.simpleReply(handle, 0, buf);
          const off = Buffer.alloc(8);
          off.writeBigUInt64BE(BigInt(offset));
          return this.chunk(handle, ReplyFlag.DONE, ReplyType.OFFSET_DATA, Buffer.concat([off, buf]));
        }
        case Cmd.WRITE:
          await exp.write(payload!, offset);
          break;
        case Cmd.WRITE_ZEROES:
          if (flags & CmdFlag.FAST_ZERO) return fail(Errno.ENOTSUP);
          await exp.writeZeroes(offset, length, !(flags & CmdFlag.NO_HOLE));
          break;
        case Cmd.TRIM:
          await exp.discard(offset, length);
          break;
        case Cmd.FLUSH:
          await exp.flush();
          break;
        case Cmd.CACHE:
          break;
        case Cmd.BLOCK_STATUS:
          if (!this.structured || !this.baseAllocation) return fail(Errno.EINVAL);
          return this.chunk(handle, ReplyFlag.DONE, ReplyType.BLOCK_STATUS, await this.extents(exp, offset, length, !!(flags & CmdFlag.REQ_ONE)));
        default:
          return fail(Errno.EINVAL);
      }
      if (flags & CmdFlag.FUA && writes) await exp.flush();
      this.simpleReply(handle, 0);
    } catch (e) {
      fail(errnoOf(e));
    }
  }

  private async extents(exp: NbdExport, offset: number, length: number, one: boolean): Promise<Buffer> {
    const parts: Buffer[] = [];
    const id = Buffer.alloc(4);
    id.writeUInt32BE(BASE_ALLOCATION_ID);
    parts.push(id);
    const end = offset + length;
    let at = offset;
    let last: Buffer | null = null;
    let lastFlags = -1;
    while (at < end) {
      const s = await exp.status(at, end - at);
      const n = Math.max(1, Math.min(s.length, end - at));
      const flags = (s.hole ? State.HOLE : 0) | (s.zero ? State.ZERO : 0);
      if (last && flags === lastFlags) {
        last.writeUInt32BE(last.readUInt32BE(0) + n, 0);
      } else {
        last = Buffer.alloc(8);
        last.writeUInt32BE(n, 0);
        last.writeUInt32BE(flags, 4);
        parts.push(last);
        lastFlags = flags;
        if (one && parts.length > 1 && at > offset) break;
      }
      at += n;
      if (one) break;
    }
    return Buffer.concat(parts);
  }
}

/** The listening server: exports by name and the connections serving them. */
export class NbdServer {
  readonly exports = new Map<string, NbdExport>();
  readonly connections = new Set<NbdConnection>();
  private listener: net.Server | null = null;
  private unixPath: string | null = null;

  constructor(
    private readonly opts: { maxConnections: number; onConnectionClosed?: (exp: NbdExport | null) => void },
  ) {}

  /** Binds and listens; rejects with the OS error text. */
  async listen(addr: NbdAddress): Promise<void> {
    const srv = net.createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      if (addr.type === "unix") {
        srv.listen(addr.path, () => resolve());
        this.unixPath = addr.path;
      } else {
        srv.listen(addr.port, addr.host, () => resolve());
      }
    });
    this.listener = srv;
  }

  get port(): number | undefined {
    const a = this.listener?.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  /**
   * At max-connections QEMU stops accepting: later clients wait (in the
   * backlog) without a greeting until a slot frees. Held sockets do the same.
   */
  private readonly waiting: net.Socket[] = [];

  private accept(sock: net.Socket): void {
    if (this.opts.maxConnections > 0 && this.connections.size >= this.opts.maxConnections) {
      this.waiting.push(sock);
      sock.once("close", () => {
        const i = this.waiting.indexOf(sock);
        if (i >= 0) this.waiting.splice(i, 1);
      });
      return;
    }
    sock.setNoDelay(true);
    const c = new NbdConnection(this, sock);
    this.connections.add(c);
    void c.run().finally(() => {
      this.connections.delete(c);
      this.opts.onConnectionClosed?.(c.exp);
      const next = this.waiting.shift();
      if (next && this.listener) this.accept(next);
    });
  }

  findExport(name: string): NbdExport | undefined {
    return this.exports.get(name);
  }

  /** Called when a connection enters transmission on an export. */
  connectionAttached(_c: NbdConnection): void {}

  clientsOf(exp: NbdExport): NbdConnection[] {
    return [...this.connections].filter((c) => c.exp === exp);
  }

  /** Resolves once every client of `exp` has gone (after dropping them). */
  async disconnect(exp: NbdExport): Promise<void> {
    const clients = this.clientsOf(exp);
    await Promise.all(clients.map((c) => new Promise<void>((r) => {
      if (c.sock.destroyed) return r();
      c.sock.once("close", () => r());
      c.close();
    })));
  }

  async close(): Promise<void> {
    const srv = this.listener;
    this.listener = null;
    for (const c of this.connections) c.close();
    for (const w of this.waiting.splice(0)) w.destroy();
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
    if (this.unixPath) {
      try {
        fs.unlinkSync(this.unixPath);
      } catch {
        // already gone
      }
    }
  }
}
