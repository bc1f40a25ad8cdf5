/**
 * The NBD server at the byte level, with a minimal client over TCP: fixed
 * newstyle haggling (LIST, INFO errors, GO), simple replies, errors past the
 * end and on read-only exports, FUA, and disconnect. Runs without QEMU.
 */
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { NbdServer, type NbdExport } from "./server.ts";
import { Cmd, CmdFlag, Errno, IHAVEOPT, Opt, Rep } from "./protocol.ts";

function memExport(name: string, size: number, writable: boolean): NbdExport & { data: Uint8Array; flushes: number } {
  const data = new Uint8Array(size);
  return {
    name, description: "mem", writable, data, flushes: 0,
    size: () => size,
    async read(buf, off) { buf.set(data.subarray(off, off + buf.length)); },
    async write(d, off) { data.set(d, off); },
    async writeZeroes(off, len) { data.fill(0, off, off + len); },
    async discard() {},
    async flush() { this.flushes++; },
    async status(_off, len) { return { length: len, hole: false, zero: false }; },
  };
}

/** A byte-stream client with exact reads. */
class Client {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.on("data", (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake?.(); });
    sock.on("close", () => { this.closed = true; this.wake?.(); });
  }
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error("closed");
      await new Promise<void>((r) => (this.wake = r));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  option(opt: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(data.length, 12);
    this.sock.write(Buffer.concat([h, data]));
  }
  async reply(): Promise<{ opt: number; type: number; data: Buffer }> {
    const h = await this.read(20);
    return { opt: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.read(h.readUInt32BE(16)) };
  }
  request(type: number, offset: number, length: number, flags = 0, payload?: Buffer): void {
    const r = Buffer.alloc(28);
    r.writeUInt32BE(0x25609513, 0);
    r.writeUInt16BE(flags, 4);
    r.writeUInt16BE(type, 6);
    r.writeBigUInt64BE(7n, 8);
    r.writeBigUInt64BE(BigInt(offset), 16);
    r.writeUInt32BE(length, 24);
    this.sock.write(payload ? Buffer.concat([r, payload]) : r);
  }
  async simple(dataLen = 0): Promise<{ error: number; data: Buffer }> {
    const h = await this.read(16);
    expect(h.readUInt32BE(0)).toBe(0x67446698);
    const error = h.readUInt32BE(4);
    return { error, data: error ? Buffer.alloc(0) : await this.read(dataLen) };
  }
}

const goData = (name: string) => {
  const b = Buffer.alloc(4 + name.length + 2);
  b.writeUInt32BE(name.length, 0);
  b.write(name, 4);
  return b;
};

let server: NbdServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function connect(exports: NbdExport[]): Promise<Client> {
  server = new NbdServer({ maxConnections: 0 });
  for (const e of exports) server.exports.set(e.name, e);
  await server.listen({ type: "inet", host: "127.0.0.1", port: 0 });
  const sock = net.connect(server.port!, "127.0.0.1");
  await new Promise((r) => sock.once("connect", r));
  const c = new Client(sock);
  const hello = await c.read(18);
  expect(hello.subarray(0, 16).toString("latin1")).toBe("NBDMAGICIHAVEOPT");
  expect(hello.readUInt16BE(16)).toBe(3); // fixed newstyle, no zeroes
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(3);
  sock.write(flags);
  return c;
}

describe("NBD server protocol", () => {
  it("lists exports, refuses unknown names and options, then serves reads and writes", async () => {
    const rw = memExport("rw", 8192, true);
    const c = await connect([memExport("ro", 4096, false), rw]);
    c.option(Opt.LIST);
    const listed: string[] = [];
    for (let r = await c.reply(); r.type !== Rep.ACK; r = await c.reply()) {
      expect(r.type).toBe(Rep.SERVER);
      listed.push(r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString());
    }
    expect(listed.sort()).toEqual(["ro", "rw"]);
    c.option(Opt.INFO, goData("nope"));
    const unknown = await c.reply();
    expect(unknown.type).toBe(Rep.ERR_UNKNOWN);
    expect(unknown.data.toString()).toBe("export 'nope' not present");
    c.option(99);
    expect((await c.reply()).type).toBe(Rep.ERR_UNSUP);
    c.option(Opt.GO, goData("rw"));
    const infos: number[] = [];
    for (let r = await c.reply(); r.type !== Rep.ACK; r = await c.reply()) {
      infos.push(r.data.readUInt16BE(0));
      if (r.data.readUInt16BE(0) === 0) expect(Number(r.data.readBigUInt64BE(2))).toBe(8192);
    }
    expect(infos).toEqual([3, 0]); // block sizes, then the export itself

    c.request(Cmd.WRITE, 100, 4, CmdFlag.FUA, Buffer.from([1, 2, 3, 4]));
    expect((await c.simple()).error).toBe(0);
    expect(rw.flushes).toBe(1);
    c.request(Cmd.READ, 98, 8);
    expect([...(await c.simple(8)).data]).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
    c.request(Cmd.WRITE, 8190, 4, 0, Buffer.alloc(4));
    expect((await c.simple()).error).toBe(Errno.ENOSPC);
    c.request(Cmd.READ, 8190, 4);
    expect((await c.simple()).error).toBe(Errno.EINVAL);
    c.request(Cmd.WRITE_ZEROES, 100, 2);
    expect((await c.simple()).error).toBe(0);
    expect([...rw.data.subarray(100, 104)]).toEqual([0, 0, 3, 4]);
    c.request(Cmd.DISC, 0, 0);
    await c.read(1).catch(() => {});
    expect(c.closed).toBe(true);
  });

  it("a read-only export refuses writes with EPERM", async () => {
    const c = await connect([memExport("ro", 4096, false)]);
    c.option(Opt.GO, goData("ro"));
    while ((await c.reply()).type !== Rep.ACK);
    c.request(Cmd.WRITE, 0, 2, 0, Buffer.from([9, 9]));
    expect((await c.simple()).error).toBe(Errno.EPERM);
    c.request(Cmd.TRIM, 0, 512);
    expect((await c.simple()).error).toBe(Errno.EPERM);
    c.request(Cmd.FLUSH, 0, 0);
    expect((await c.simple()).error).toBe(0);
  });
});
