/**
 * Character devices against QEMU 7.2 (qemu-system-x86_64 -M none), reply by
 * reply: chardev-add for each backend kind and its errors, chardev-change /
 * -remove / -send-break, the ring buffer (wrap-around, split UTF-8, NULs,
 * base64), sockets as servers and clients with their filenames, and the
 * HMP commands. Both sides have one QMP monitor on a unix socket
 * (compat_monitor0), whose path and ephemeral ports are masked.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { emulator, hasQemuSystem, realQemu, tmpDir, type Session } from "../block/helpers.ts";
import { RingBuffer, decodeBase64, qemuStringBytes } from "../../src/chardev/ringbuf.ts";

type Step = [string, Record<string, unknown>?] | ((s: Session) => Promise<unknown>);

const d = tmpDir();
afterAll(() => d.cleanup());

const add = (id: string, type: string, data: Record<string, unknown> = {}): Step => ["chardev-add", { id, backend: { type, data } }];
const unix = (p: string) => ({ type: "unix", data: { path: p } });
const inet = (host: string, port: string) => ({ type: "inet", data: { host, port } });

/** Runs the steps on both sides, each in a fresh directory, and masks what differs by nature. */
async function both(steps: (dir: string) => Step[]) {
  const run = async (s: Session, dir: string, monitor: string) => {
    const out: unknown[] = [];
    for (const st of steps(dir)) {
      out.push(typeof st === "function" ? await st(s) : st[0].startsWith("hmp ") ? await s.hmp(st[0].slice(4)) : await s.q(st[0], st[1]));
    }
    return JSON.parse(
      JSON.stringify(out)
        .replaceAll(monitor, "MONITOR")
        .replaceAll(dir, "DIR")
        .replace(/(127\.0\.0\.1|\[::1\]):\d{4,5}/g, "$1:PORT")
        .replace(/\/dev\/pts\/\d+/g, "/dev/pts/N"),
    ) as unknown[];
  };
  const ourDir = fs.mkdtempSync(path.join(d.dir, "ours-"));
  const ourMon = path.join(ourDir, "mon.sock");
  const emu = await emulator({ monitors: [{ chardev: { kind: "unix", path: ourMon } }] });
  let ours: unknown[];
  try {
    await emu.emu.listen(); // compat_monitor0's yank instance
    ours = await run(emu, ourDir, ourMon);
  } finally {
    await emu.close();
  }
  const theirDir = fs.mkdtempSync(path.join(d.dir, "theirs-"));
  const qemu = await realQemu();
  let theirs: unknown[];
  try {
    const mon = ((await qemu.q("query-chardev")).return as { label: string; filename: string }[])
      .find((c) => c.label === "compat_monitor0")!.filename.replace(/^unix:(.*),server=on$/, "$1");
    theirs = await run(qemu, theirDir, mon);
  } finally {
    await qemu.close();
  }
  return { ours, theirs };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasQemuSystem)("chardevs against QEMU 7.2", { timeout: 120_000 }, () => {
  it("chardev-add per backend kind, its errors, query-chardev and qom-list /chardevs", async () => {
    const r = await both((dir) => [
      add("n0", "null"),
      add("n0", "null"),
      add("r0", "ringbuf", { size: 8 }),
      add("r1", "ringbuf", { size: 7 }),
      add("r2", "ringbuf", { size: -8 }),
      add("r3", "ringbuf"),
      add("m0", "memory", { size: 16 }),
      add("f0", "file", { out: `${dir}/f0.out` }),
      add("f1", "file", { out: `${dir}/f1.out`, append: true, in: `${dir}/f0.out` }),
      add("f2", "file", { out: `${dir}/nodir/x` }),
      add("f3", "file", { out: `${dir}/f3.out`, in: `${dir}/missing` }),
      add("l0", "null", { logfile: `${dir}/nodir/log` }),
      add("l1", "ringbuf", { logfile: `${dir}/l1.log`, size: 4 }),
      add("pi", "pipe", { device: `${dir}/nopipe` }),
      add("se", "serial", { device: "/dev/null" }),
      add("se2", "serial", { device: `${dir}/missing` }),
      add("pa", "parallel", { device: "/dev/null" }),
      add("co", "console"),
      add("vc", "vc", { width: 10 }),
      add("ms", "msmouse"),
      add("te", "testdev"),
      add("wc", "wctablet"),
      add("br", "braille"),
      add("va", "qemu-vdagent"),
      add("sp", "spiceport", { fqdn: "x" }),
      add("mx", "mux", { chardev: "n0" }),
      add("mx2", "mux", { chardev: "nope" }),
      add("mx3", "mux", { chardev: "compat_monitor0" }),
      add("", "null"),
      add("a/b", "null"),
      ["chardev-add", { id: "n9", backend: { type: "null" } }],
      ["chardev-add", { id: "n9", backend: { type: "bogus", data: {} } }],
      ["query-chardev"],
      ["qom-list", { path: "/chardevs" }],
      ["qom-list", { path: "/chardevs/r0" }],
    ]);
    expect(r.ours).toEqual(r.theirs);
  });

  it("chardev-remove, -change and -send-break: unknown ids, busy monitors and muxes, replacing a free chardev", async () => {
    const r = await both(() => [
      ["chardev-remove", { id: "compat_monitor0" }],
      ["chardev-remove", { id: "nope" }],
      ["chardev-send-break", { id: "nope" }],
      ["chardev-send-break", { id: "compat_monitor0" }],
      ["chardev-change", { id: "nope", backend: { type: "null", data: {} } }],
      ["chardev-change", { id: "compat_monitor0", backend: { type: "null", data: {} } }],
      ["chardev-change", { id: "compat_monitor0", backend: { type: "console", data: {} } }],
      add("r0", "ringbuf", { size: 8 }),
      add("mx", "mux", { chardev: "r0" }),
      ["chardev-remove", { id: "r0" }],
      ["chardev-remove", { id: "mx" }],
      ["chardev-change", { id: "mx", backend: { type: "null", data: {} } }],
      ["chardev-change", { id: "r0", backend: { type: "null", data: {} } }],
      add("r1", "ringbuf", { size: 8 }),
      ["ringbuf-write", { device: "r1", data: "abc" }],
      ["chardev-change", { id: "r1", backend: { type: "ringbuf", data: { size: 4 } } }],
      ["ringbuf-read", { device: "r1", size: 10 }],
      // A failing new backend leaves nothing behind: QEMU removed the old one first.
      ["chardev-change", { id: "r1", backend: { type: "ringbuf", data: { size: 3 } } }],
      ["chardev-send-break", { id: "r1" }],
      add("n1", "null"),
      ["chardev-remove", { id: "n1" }],
      ["chardev-remove", { id: "n1" }],
      ["query-chardev"],
    ]);
    expect(r.ours).toEqual(r.theirs);
  });

  it("ringbuf-write / ringbuf-read: wrap-around, sizes, split UTF-8, NUL, base64", async () => {
    const rw = (data: string, format?: string): Step => ["ringbuf-write", { device: "r0", data, ...(format ? { format } : {}) }];
    const rr = (size: number, format?: string): Step => ["ringbuf-read", { device: "r0", size, ...(format ? { format } : {}) }];
    const r = await both(() => [
      add("r0", "ringbuf", { size: 8 }),
      rw("abcdefghij"),
      rr(3),
      rr(100),
      rr(100),
      rr(0),
      rr(-1),
      ["ringbuf-read", { device: "nope", size: 1 }],
      ["ringbuf-read", { device: "compat_monitor0", size: 1 }],
      ["ringbuf-write", { device: "compat_monitor0", data: "x" }],
      ["ringbuf-write", { device: "nope", data: "x" }],
      rw("é€x"),
      rr(2),
      rr(2, "base64"),
      rr(5),
      rw("a\u0000b"),
      rr(5),
      rw("QUJD", "base64"),
      rw("QQ==QQ", "base64"),
      rw("Q!", "base64"),
      rw("Q\nQ\n==", "base64"),
      rw("AP8A/w==", "base64"),
      rr(20, "base64"),
      rw("AP8A/w==", "base64"),
      rr(20),
      rw("/wA=", "base64"),
      rr(20),
      rr(20, "base64"),
      rw(""),
      rw("x", "utf8"),
      rr(20, "utf8"),
      add("m0", "memory", { size: 4 }),
      ["ringbuf-write", { device: "m0", data: "\u{1F600}z" }],
      ["ringbuf-read", { device: "m0", size: 4 }],
      add("big", "ringbuf"),
      ["ringbuf-write", { device: "big", data: "x".repeat(70000) }],
      async (s) => ((await s.q("ringbuf-read", { device: "big", size: 100000 })).return as string).length,
    ]);
    expect(r.ours).toEqual(r.theirs);
  });

  it("socket chardevs: servers (unix, tcp, telnet, port 0), clients, connections coming and going, yank", async () => {
    const connect = (to: string | number, keep: net.Socket[]) => async () => {
      const c = typeof to === "number" ? net.connect(to, "127.0.0.1") : net.connect(to);
      await new Promise((res) => c.once("connect", res));
      keep.push(c);
      await pause(150);
      return "connected";
    };
    const port = async (s: Session, id: string) =>
      Number(/:(\d+),server=on$/.exec(((await s.q("query-chardev")).return as { label: string; filename: string }[]).find((c) => c.label === id)!.filename)![1]);
    const r = await both((dir) => {
      const keep: net.Socket[] = [];
      const sock = `${dir}/u.sock`;
      return [
        ["chardev-add", { id: "u", backend: { type: "socket", data: { addr: unix(sock), wait: false } } }],
        ["chardev-add", { id: "t", backend: { type: "socket", data: { addr: inet("127.0.0.1", "0"), wait: false } } }],
        ["chardev-add", { id: "tn", backend: { type: "socket", data: { addr: inet("127.0.0.1", "0"), telnet: true } } }],
        ["chardev-add", { id: "ub", backend: { type: "socket", data: { addr: unix(`${dir}/nodir/u.sock`) } } }],
        ["chardev-add", { id: "c0", backend: { type: "socket", data: { addr: unix(`${dir}/none.sock`), server: false } } }],
        ["chardev-add", { id: "c1", backend: { type: "socket", data: { addr: inet("127.0.0.1", "1"), server: false } } }],
        ["chardev-add", { id: "c2", backend: { type: "socket", data: { addr: unix(`${dir}/none.sock`), server: false, reconnect: 1 } } }],
        ["chardev-add", { id: "c3", backend: { type: "socket", data: { addr: unix(sock), server: false, wait: false } } }],
        ["chardev-add", { id: "c4", backend: { type: "socket", data: { addr: unix(sock), reconnect: 5 } } }],
        ["chardev-add", { id: "c5", backend: { type: "socket", data: { addr: unix(sock), "tls-creds": "x" } } }],
        ["chardev-add", { id: "c6", backend: { type: "socket", data: { addr: { type: "fd", data: { str: "x" } } } } }],
        ["chardev-add", { id: "c7", backend: { type: "socket", data: { addr: inet("127.0.0.1", "0"), server: false, websocket: true } } }],
        ["chardev-add", { id: "c8", backend: { type: "socket", data: { addr: inet("nonexistent.invalid", "0") } } }],
        ["chardev-add", { id: "c9", backend: { type: "socket", data: { addr: unix(sock), "tls-authz": "x" } } }],
        ["query-chardev"],
        connect(sock, keep),
        async (s) => ((await s.q("chardev-add", { id: "ct", backend: { type: "socket", data: { addr: inet("127.0.0.1", String(await port(s, "t"))), server: false } } })) as unknown),
        ["chardev-add", { id: "cu", backend: { type: "socket", data: { addr: unix(sock), server: false } } }],
        ["query-chardev"],
        ["qom-get", { path: "/chardevs/u", property: "connected" }],
        ["qom-get", { path: "/chardevs/u", property: "addr" }],
        ["query-yank"],
        async () => {
          keep[0]!.destroy();
          await pause(200);
          return "closed";
        },
        ["query-chardev"],
        ["yank", { instances: [{ type: "chardev", id: "u" }] }],
        ["chardev-remove", { id: "cu" }],
        ["chardev-remove", { id: "ct" }],
        async () => pause(200),
        ["query-chardev"],
        ["chardev-remove", { id: "u" }],
        async () => fs.existsSync(sock),
        ["query-yank"],
        async () => keep.forEach((c) => c.destroy()),
      ];
    });
    expect(r.ours).toEqual(r.theirs);
  });

  it("pty: the slave's path in the reply and the filename", async () => {
    const r = await both(() => [add("p0", "pty"), ["query-chardev"], ["chardev-remove", { id: "p0" }]]);
    expect(r.ours).toEqual(r.theirs);
  });

  it("HMP: chardev-add in -chardev syntax, chardev-change, ringbuf_write / ringbuf_read, info chardev", async () => {
    const r = await both((dir) => [
      ["hmp chardev-add null,id=h0"],
      ["hmp chardev-add null,id=h0"],
      ["hmp chardev-add ringbuf,id=h1,size=4"],
      ["hmp chardev-add ringbuf,id=h2,size=3"],
      ["hmp chardev-add bogus,id=h3"],
      ["hmp chardev-add null"],
      ["hmp chardev-add null,id=h4,foo=bar"],
      ["hmp chardev-add ringbuf,id=h12,size=abc"],
      ["hmp chardev-add ringbuf,id=h13,server=maybe"],
      [`hmp chardev-add socket,id=h6,path=${dir}/h6.sock,server=on,wait=off`],
      [`hmp chardev-add socket,id=h7,path=${dir}/h6.sock`],
      ["hmp chardev-add socket,id=h10,host=127.0.0.1,port=0,server=on,wait=off,telnet"],
      [`hmp chardev-add socket,id=h11,path=${dir}/h11.sock,server=off,wait=on`],
      ["hmp chardev-add socket,id=h16"],
      ["hmp chardev-add socket,id=h17,host=x"],
      [`hmp chardev-add file,id=h8,path=${dir}/h8.out`],
      ["hmp chardev-add file,id=h9"],
      ["hmp chardev-add tty,id=h14,path=/dev/null"],
      ["hmp ringbuf_write h1 hello"],
      ["hmp ringbuf_read h1 10"],
      ["hmp ringbuf_write h1 a\\x01b"],
      ["hmp ringbuf_read h1 10"],
      ['hmp ringbuf_write h1 "a\\\\b\\nc"'],
      ["hmp ringbuf_read h1 10"],
      ["ringbuf-write", { device: "h1", data: "\u0001\u007f" }],
      ["hmp ringbuf_read h1 10"],
      ["hmp ringbuf_read nope 10"],
      ["hmp ringbuf_read h1 0"],
      ["hmp ringbuf_read h1"],
      ["hmp ringbuf_write nope x"],
      ["hmp chardev-remove nope"],
      ["hmp chardev-remove compat_monitor0"],
      ["hmp chardev-remove h0"],
      ["hmp chardev-send-break nope"],
      ["hmp chardev-change h1 ringbuf,size=2,id=x"],
      ["hmp chardev-change h1 ringbuf,size=2"],
      ["hmp chardev-change nope null"],
      ["hmp chardev-add"],
      ["hmp info chardev"],
    ]);
    expect(r.ours).toEqual(r.theirs);
  });
});

describe("ring buffer and byte conversions", () => {
  it("keeps the newest bytes of a power-of-two ring", () => {
    const r = new RingBuffer(4);
    r.write(Uint8Array.from([1, 2, 3, 4, 5, 6]));
    expect([...r.read(3)]).toEqual([3, 4, 5]);
    r.write(Uint8Array.from([7, 8, 9]));
    expect([...r.read(10)]).toEqual([6, 7, 8, 9]);
    expect(r.count).toBe(0);
  });

  it("glib's base64: padding counts, an incomplete group is dropped, newlines skipped", () => {
    expect([...decodeBase64("QQ==QQ")]).toEqual([0x41]);
    expect([...decodeBase64("QU\nJD")]).toEqual([0x41, 0x42, 0x43]);
    expect(() => decodeBase64("Q!")).toThrow("Base64 data contains invalid characters");
  });

  it("QEMU holds U+0000 as C0 80", () => {
    expect([...qemuStringBytes("a\u0000")]).toEqual([0x61, 0xc0, 0x80]);
  });
});
