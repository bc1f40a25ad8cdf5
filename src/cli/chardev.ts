/**
 * Character devices as the command line describes them: -chardev's option
 * form and the legacy one-string form that -qmp, -qtest, -serial and
 * -monitor take (`unix:PATH,server=on`, `tcp:HOST:PORT,...`, `stdio`).
 * Only what a monitor or qtest can use is modelled; other backends are
 * accepted and recorded.
 */
import { CliError } from "./errors.ts";
import { checkKeys, optBool, optGet, parseQemuOpts, type QemuOpts } from "./qemu-opts.ts";

export type ChardevAddress =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "fd"; fd: number };

export interface Chardev {
  id: string;
  /** "socket", "stdio", "null", or any other backend name (recorded only). */
  backend: string;
  /** For sockets. */
  address?: ChardevAddress;
  /** server=on: listen (and accept one client at a time); else connect out / use a connected fd. */
  server: boolean;
  /** wait=on (the default with server=on): QEMU waits for a first client before starting. */
  wait: boolean;
  /** The option that created it (`-chardev socket,...`), for error locations. */
  origin?: string;
}

/** Keys -chardev accepts per backend; absent backends take anything. */
const COMMON_KEYS = ["backend", "id", "logfile", "logappend", "mux"] as const;
const BACKEND_KEYS: Record<string, readonly string[]> = {
  socket: [
    ...COMMON_KEYS, "path", "host", "port", "fd", "server", "wait", "to", "ipv4", "ipv6", "nodelay",
    "delay", "reconnect", "telnet", "tn3270", "websocket", "abstract", "tight", "tls-creds", "tls-authz",
  ],
  stdio: [...COMMON_KEYS, "signal"],
  null: [...COMMON_KEYS],
};

/** Backends QEMU 7.2 (x86_64, Linux) knows; anything else is "not a valid char driver name". */
export const CHARDEV_BACKENDS = [
  "socket", "stdio", "null", "file", "pipe", "pty", "serial", "tty", "parallel", "parport", "udp",
  "ringbuf", "memory", "vc", "msmouse", "wctablet", "braille", "testdev", "spicevmc", "spiceport",
  "qemu-vdagent", "dbus",
] as const;

function parsePort(text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new CliError(`chardev: socket: invalid port '${text}'`);
  return port;
}

function parseFd(text: string | undefined): number {
  const fd = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(fd)) throw new CliError(`Unable to parse FD number ${text ?? ""}`);
  return fd;
}

/** Builds a Chardev from QemuOpts that carry `backend` and `id`. */
function fromOpts(opts: QemuOpts): Chardev {
  const backend = optGet(opts, "backend") ?? "";
  if (!(CHARDEV_BACKENDS as readonly string[]).includes(backend)) {
    throw new CliError(`'${backend}' is not a valid char driver name`);
  }
  const keys = BACKEND_KEYS[backend];
  if (keys) checkKeys(opts, keys);
  const id = optGet(opts, "id");
  if (!id) throw new CliError("chardev: no id specified");
  const dev: Chardev = { id, backend, server: false, wait: false };
  if (backend !== "socket") return dev;

  dev.server = optBool(opts, "server", false);
  dev.wait = dev.server && optBool(opts, "wait", true);
  const path = optGet(opts, "path");
  const host = optGet(opts, "host");
  if (path !== undefined) {
    dev.address = { kind: "unix", path };
  } else if (host !== undefined) {
    const port = optGet(opts, "port");
    if (port === undefined) throw new CliError("chardev: socket: no port given");
    dev.address = { kind: "tcp", host, port: parsePort(port) };
  } else {
    // QEMU 7.2 reads `fd` when neither path nor host is given, and says so when it is missing.
    dev.address = { kind: "fd", fd: parseFd(optGet(opts, "fd")) };
  }
  return dev;
}

/** `-chardev backend,id=ID,...` */
export function parseChardevOption(text: string): Chardev {
  return fromOpts(parseQemuOpts(text, "backend"));
}

/**
 * The legacy string form (qemu_chr_parse_compat). `id` is the label QEMU
 * gives the chardev (compat_monitor0, qtest, serial0...).
 */
export function parseLegacyChardev(spec: string, id: string): Chardev {
  let text = spec;
  if (text.startsWith("mon:")) text = text.slice(4); // a muxed monitor: the backend is the rest
  const simple: Record<string, string> = { null: "null", stdio: "stdio", vc: "vc", pty: "pty", msmouse: "msmouse", braille: "braille", none: "null" };
  if (Object.hasOwn(simple, text)) return { id, backend: simple[text], server: false, wait: false };
  const bad = () =>
    new CliError(`'${spec}' is not a valid char driver`, { located: [`parse error: ${spec}`] });
  const opts: QemuOpts = { pairs: [["backend", "socket"], ["id", id]], help: false };
  if (text.startsWith("unix:")) {
    opts.pairs.push(...parseQemuOpts(text.slice(5), "path").pairs);
  } else {
    const m = /^(tcp|telnet|tn3270|websocket):(?:([^:]{1,64}):|:)([^,]{1,32})(?:,(.*))?$/s.exec(text);
    if (!m) {
      const recorded = /^(file|pipe|udp|vc|chardev|serial|tty|parport):|^\/dev\//.exec(text);
      if (!recorded) throw bad();
      return { id, backend: recorded[1] ?? "serial", server: false, wait: false };
    }
    if (m[1] !== "tcp") opts.pairs.push([m[1], "on"]);
    opts.pairs.push(["host", m[2] ?? "0.0.0.0"], ["port", m[3]]);
    if (m[4] !== undefined) opts.pairs.push(...parseQemuOpts(m[4]).pairs);
  }
  return fromOpts(opts);
}

/** QEMU's description of a listening socket in its "waiting for connection" message. */
export function describeListener(dev: Chardev): string {
  const a = dev.address;
  if (!a) return dev.backend;
  const where = a.kind === "unix" ? `unix:${a.path}` : a.kind === "tcp" ? `tcp:${a.host}:${a.port}` : `fd:${a.fd}`;
  return `disconnected:${where},server=on`;
}
