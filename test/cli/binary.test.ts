/**
 * End-to-end: the compiled binary (dist/qmpemu, built by the global setup)
 * started the ways management tools and QEMU's own test harnesses start
 * QEMU, talked to over real sockets, pipes and inherited descriptors.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { BINARY, LineReader, QmpClient, exists, freePort, has, qemuNamedLinks, runSync, start, stop, tmpDir, waitFor, type Run } from "./helpers.ts";

const running: Run[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await stop(r);
});

function launch(args: string[], opts = {}): Run {
  const r = start(BINARY, args, opts);
  running.push(r);
  return r;
}

describe("socket monitors", () => {
  it("-qmp unix and tcp, plus -chardev/-mon pretty: each greets and negotiates on its own; quit exits 0 and removes sockets", async () => {
    const dir = tmpDir();
    const port = await freePort();
    const [a, b] = [path.join(dir, "a.sock"), path.join(dir, "b.sock")];
    const r = launch([
      "-M", "none", "-nodefaults", "-display", "none",
      "-qmp", `unix:${a},server=on,wait=off`,
      "-qmp", `tcp:127.0.0.1:${port},server=on,wait=off`,
      "-chardev", `socket,id=mon1,path=${b},server=on,wait=off`, "-mon", "chardev=mon1,mode=control,pretty=on",
    ]);
    await waitFor(() => exists(a) && exists(b));
    const qa = await QmpClient.connect(a);
    const qt = await QmpClient.connect({ host: "127.0.0.1", port });
    expect((await qa.handshake()).QMP).toMatchObject({ version: { qemu: { major: 7, minor: 2 } }, capabilities: ["oob"] });
    await qt.handshake();
    // The pretty monitor writes multi-line JSON.
    const pretty = await QmpClient.connect(b);
    const first = await pretty.reader.next();
    expect(first).toBe("{");
    expect(await qt.execute("query-status")).toMatchObject({ return: { status: "running", running: true } });
    qa.send({ execute: "quit" });
    expect(await r.exit).toEqual({ code: 0, signal: null });
    expect(exists(a) || exists(b)).toBe(false);
    for (const c of [qa, qt, pretty]) c.close();
  });

  it("a socket chardev without server=on connects out (QEMU's Python harness and libqtest listen themselves)", async () => {
    const dir = tmpDir();
    const sockPath = path.join(dir, "harness.sock");
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(sockPath, r));
    const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
    launch(["-M", "none", "-display", "none", "-qmp", `unix:${sockPath}`, "-S"]);
    const client = new QmpClient(await accepted);
    await client.handshake();
    expect(await client.execute("query-status")).toMatchObject({ return: { status: "prelaunch" } });
    client.close();
    server.close();
  });

  it("startup failures exit 1 with QEMU's message", async () => {
    const r = runSync(BINARY, ["-qmp", "unix:/proc/nonexistent/x.sock,server=on,wait=off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("qmpemu: -qmp unix:/proc/nonexistent/x.sock,server=on,wait=off: Failed to bind socket to /proc/nonexistent/x.sock: No such file or directory\n");
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as net.AddressInfo).port;
    const t = runSync(BINARY, ["-qmp", `tcp:127.0.0.1:${port},server=on,wait=off`]);
    busy.close();
    expect(t.status).toBe(1);
    expect(t.stderr).toBe(`qmpemu: -qmp tcp:127.0.0.1:${port},server=on,wait=off: Failed to find an available port: Address already in use\n`);
    const c = runSync(BINARY, ["-qmp", "unix:/proc/nonexistent/y.sock"]);
    expect(c.status).toBe(1);
    expect(c.stderr).toBe("qmpemu: -qmp unix:/proc/nonexistent/y.sock: Failed to connect to '/proc/nonexistent/y.sock': No such file or directory\n");
  });
});

describe("stdio monitor", () => {
  it("-qmp stdio speaks QMP on stdin/stdout; -S and -name are visible; quit exits 0", async () => {
    const child = spawn(BINARY, ["-qmp", "stdio", "-S", "-name", "guest=vm7", "-display", "none"], { stdio: ["pipe", "pipe", "pipe"] });
    const out = new LineReader(child.stdout);
    const exit = new Promise<number | null>((r) => child.on("exit", r));
    expect(await out.json()).toHaveProperty("QMP");
    child.stdin.write('{"execute":"qmp_capabilities"}');
    expect(await out.json()).toEqual({ return: {} });
    child.stdin.write('{"execute":"query-name"}{"execute":"query-status"}');
    expect(await out.json()).toEqual({ return: { name: "vm7" } });
    expect(await out.json()).toMatchObject({ return: { status: "prelaunch", running: false } });
    child.stdin.write('{"execute":"quit"}');
    expect(await out.until("return")).toEqual({ return: {} });
    expect(await exit).toBe(0);
  });

  it("-chardev stdio + --monitor under the storage-daemon personality", async () => {
    const { storageDaemon } = qemuNamedLinks();
    const child = spawn(storageDaemon, ["--chardev", "stdio,id=m0", "--monitor", "chardev=m0"], { stdio: ["pipe", "pipe", "pipe"] });
    const out = new LineReader(child.stdout);
    const exit = new Promise<number | null>((r) => child.on("exit", r));
    expect(await out.json()).toHaveProperty("QMP");
    child.stdin.write('{"execute":"qmp_capabilities"}{"execute":"quit"}');
    expect(await out.until("return")).toEqual({ return: {} });
    expect(await exit).toBe(0);
  });
});

describe("block devices from the command line", () => {
  it("-blockdev (keyval and JSON) and -drive are open before the monitor greets", async () => {
    const child = spawn(BINARY, [
      "-display", "none", "-qmp", "stdio",
      "-blockdev", "null-co,node-name=n0,size=1048576,read-only=on",
      "-blockdev", '{"driver":"null-co","node-name":"n1","size":4096}',
      "-drive", "driver=null-co,if=none,id=drive0,node-name=n2",
    ], { stdio: ["pipe", "pipe", "pipe"] });
    const out = new LineReader(child.stdout);
    const exit = new Promise<number | null>((r) => child.on("exit", r));
    await out.json();
    child.stdin.write('{"execute":"qmp_capabilities"}{"execute":"query-named-block-nodes","arguments":{"flat":true}}');
    await out.json();
    const nodes = (await out.json()).return as { "node-name": string; ro: boolean; image: { "virtual-size": number } }[];
    const byName = Object.fromEntries(nodes.map((n) => [n["node-name"], n]));
    expect(byName.n0).toMatchObject({ ro: true, image: { "virtual-size": 1048576 } });
    expect(byName.n1).toMatchObject({ ro: false, image: { "virtual-size": 4096 } });
    expect(byName.n2).toBeDefined();
    child.stdin.write('{"execute":"query-block"}');
    const devices = ((await out.json()).return as { device: string }[]).map((d) => d.device);
    expect(devices).toContain("drive0");
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  });
});

describe("inherited descriptors", () => {
  it("fd=N on a connected socketpair end from a Node parent (libuv's 'pipe' is a socketpair)", async () => {
    const child = spawn(BINARY, ["-M", "none", "-display", "none", "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"], {
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    });
    const exit = new Promise<number | null>((r) => child.on("exit", r));
    const chan = child.stdio[3] as Duplex;
    const reader = new LineReader(chan);
    expect(await reader.json()).toHaveProperty("QMP");
    chan.write('{"execute":"qmp_capabilities"}{"execute":"query-status","id":1}');
    expect(await reader.json()).toEqual({ return: {} });
    expect(await reader.json()).toMatchObject({ return: { status: "running" }, id: 1 });
    child.kill("SIGTERM");
    expect(await reader.json()).toMatchObject({ event: "SHUTDOWN", data: { guest: false, reason: "host-signal" } });
    expect(await exit).toBe(0);
  });

  it.skipIf(!has("python3"))("fd=N from a python parent (socket.socketpair + pass_fds, as QEMU's machine.py does)", () => {
    const script = `
import socket, subprocess, sys, json
a, b = socket.socketpair()
p = subprocess.Popen([sys.argv[1], '-M', 'none', '-display', 'none', '-nodefaults',
    '-chardev', 'socket,id=mon,fd=%d' % b.fileno(), '-mon', 'chardev=mon,mode=control'],
    pass_fds=[b.fileno()], stderr=subprocess.DEVNULL)
b.close()
a.settimeout(5)
f = a.makefile('rb')
out = [json.loads(f.readline())]
a.sendall(b'{"execute":"qmp_capabilities"}{"execute":"query-version"}{"execute":"quit"}')
for _ in range(2): out.append(json.loads(f.readline()))
out.append(p.wait(timeout=5))
print(json.dumps(out))
`;
    const r = runSync("python3", ["-c", script, BINARY]);
    expect(r.status, r.stderr).toBe(0);
    const [greeting, caps, version, code] = JSON.parse(r.stdout);
    expect(greeting).toHaveProperty("QMP.capabilities");
    expect(caps).toEqual({ return: {} });
    expect(version).toMatchObject({ return: { qemu: { major: 7, minor: 2 } } });
    expect(code).toBe(0);
  });

  it.skipIf(!has("python3"))("fd=N,server=on on an inherited listening socket: one client at a time, next one after a disconnect", () => {
    const dir = tmpDir();
    const script = `
import socket, subprocess, sys, json
l = socket.socket(socket.AF_UNIX); l.bind(sys.argv[2]); l.listen(4)
p = subprocess.Popen([sys.argv[1], '-M', 'none', '-display', 'none',
    '-chardev', 'socket,id=mon,fd=%d,server=on,wait=off' % l.fileno(), '-mon', 'chardev=mon,mode=control'],
    pass_fds=[l.fileno()], stderr=subprocess.DEVNULL)
l.close()
def client():
    c = socket.socket(socket.AF_UNIX); c.settimeout(5); c.connect(sys.argv[2]); return c
def line(c):
    buf = b''
    while not buf.endswith(b'\\n'):
        buf += c.recv(1)
    return json.loads(buf)
try:
    c1 = client()
    g1 = line(c1)
    c2 = client()
    c2.settimeout(0.3)
    try:
        early = c2.recv(100).decode()
    except socket.timeout:
        early = ''
    c1.close()
    c2.settimeout(5)
    g2 = line(c2)
    c2.sendall(b'{"execute":"qmp_capabilities"}{"execute":"quit"}')
    r = line(c2)
    print(json.dumps([g1, early, g2, r, p.wait(timeout=5)]))
finally:
    p.kill()
`;
    const r = runSync("python3", ["-c", script, BINARY, path.join(dir, "listen.sock")]);
    expect(r.status, r.stderr).toBe(0);
    const [g1, early, g2, reply, code] = JSON.parse(r.stdout);
    expect(g1).toHaveProperty("QMP");
    expect(early).toBe(""); // the second client waits without a greeting
    expect(g2).toHaveProperty("QMP");
    expect(reply).toEqual({ return: {} });
    expect(code).toBe(0);
  });
});

describe("process lifecycle", () => {
  it("-daemonize: the parent exits 0 once the socket listens; pidfile names the daemon; quit removes both", async () => {
    const dir = tmpDir();
    const [sock, pidfile] = [path.join(dir, "d.sock"), path.join(dir, "d.pid")];
    const r = runSync(BINARY, ["-daemonize", "-pidfile", pidfile, "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`]);
    expect(r.status, r.stderr).toBe(0);
    // Ready means ready: no waiting needed.
    expect(exists(sock)).toBe(true);
    const pid = Number(fs.readFileSync(pidfile, "utf8").trim());
    expect(fs.readFileSync(pidfile, "utf8")).toBe(`${pid}\n`);
    expect(() => process.kill(pid, 0)).not.toThrow();
    const q = await QmpClient.connect(sock);
    await q.handshake();
    q.send({ execute: "quit" });
    await waitFor(() => !exists(sock) && !exists(pidfile));
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    q.close();
  });

  it("-daemonize: a startup failure makes the parent fail with the child's message", () => {
    const r = runSync(BINARY, ["-daemonize", "-qmp", "unix:/proc/nonexistent/x.sock,server=on,wait=off"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Failed to bind socket to /proc/nonexistent/x.sock");
  });

  it("SIGTERM: SHUTDOWN (host-signal) to clients, exit 0, unix socket and pidfile removed", async () => {
    const dir = tmpDir();
    const [sock, pidfile] = [path.join(dir, "t.sock"), path.join(dir, "t.pid")];
    const r = launch(["-pidfile", pidfile, "-qmp", `unix:${sock},server=on,wait=off`]);
    await waitFor(() => exists(pidfile));
    expect(fs.readFileSync(pidfile, "utf8")).toBe(`${r.child.pid}\n`);
    const q = await QmpClient.connect(sock);
    await q.handshake();
    r.child.kill("SIGTERM");
    expect(await q.reader.json()).toMatchObject({ event: "SHUTDOWN", data: { guest: false, reason: "host-signal" } });
    expect(await r.exit).toEqual({ code: 0, signal: null });
    expect(r.stderr()).toBe("qmpemu: terminating on signal 15\n");
    expect(exists(sock) || exists(pidfile)).toBe(false);
    q.close();
  });
});

describe("qtest", () => {
  for (const accel of [["-accel", "qtest"], ["-machine", "none,accel=qtest"]]) {
    it(`${accel.join(" ")}: clock_step / clock_set answer with the virtual clock`, async () => {
      const dir = tmpDir();
      const qtestPath = path.join(dir, "qtest.sock");
      const logPath = path.join(dir, "qtest.log");
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(qtestPath, r));
      const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
      launch(["-M", "none", "-display", "none", ...accel, "-qtest", `unix:path=${qtestPath}`, "-qtest-log", logPath]);
      const sock = await accepted;
      const reader = new LineReader(sock);
      sock.write("clock_step 100\nclock_step\nclock_set 5000\nclock_set 10\nendianness\nbogus\n");
      expect([await reader.next(), await reader.next(), await reader.next(), await reader.next(), await reader.next(), await reader.next()]).toEqual([
        "OK 100", "OK 100", "OK 5000", "OK 5000", "OK little", "FAIL Unknown command 'bogus'",
      ]);
      expect(fs.readFileSync(logPath, "utf8")).toMatch(/\[R \+\d+\.\d{6}\] clock_step 100\n\[S \+\d+\.\d{6}\] OK 100\n/);
      sock.destroy();
      server.close();
    });
  }

  it("cannot reach the qtest socket: exits 1 like QEMU", () => {
    const r = runSync(BINARY, ["-accel", "qtest", "-qtest", "unix:/proc/nonexistent/q"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "qmpemu: Failed to connect to '/proc/nonexistent/q': No such file or directory\nqmpemu: Failed to initialize device for qtest: \"unix:/proc/nonexistent/q\"\n",
    );
  });
});
