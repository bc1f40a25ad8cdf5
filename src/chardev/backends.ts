/**
 * Character devices created at run time (chardev-add), one table entry per
 * backend kind saying how QEMU 7.2 opens it, what it calls itself in
 * query-chardev, and how it fails. No guest device ever reads from them;
 * what is observable is their bookkeeping (ids, filenames, busy state),
 * the host resources they take (files, sockets, ptys) and the ring buffer.
 */
import * as fs from "node:fs";
import { genericError } from "../core/error.ts";
import { strerror } from "../core/errno.ts";
import { DEFAULT_RINGBUF_SIZE, RingBuffer, validRingbufSize } from "./ringbuf.ts";
import { SocketChardev, type SocketAddr } from "./socket.ts";

/** QAPI's ChardevBackend: `type` and its wrapped `data`. */
export interface ChardevBackend {
  type: string;
  data: Record<string, any>;
}

export interface Chardev {
  readonly id: string;
  /** The backend kind as given ("memory" stays "memory"). */
  readonly kind: string;
  /** The QOM type: chardev-<kind>. */
  readonly typename: string;
  filename(): string;
  /** A frontend has it open (only monitors here). */
  readonly frontendOpen: boolean;
  /** A frontend (monitor or mux) holds it: chardev-remove refuses. */
  busy: boolean;
  /** Its frontend cannot take a new backend (a monitor): chardev-change refuses. */
  readonly pinned: boolean;
  readonly isMux: boolean;
  /** Registers a yank instance (socket chardevs). */
  readonly yankable: boolean;
  readonly ringbuf?: RingBuffer;
  readonly socket?: SocketChardev;
  /** The pty's slave path, for chardev-add's reply. */
  readonly pty?: string;
  close(): Promise<void>;
}

export interface OpenEnv {
  find(id: string): Chardev | undefined;
  /** "missing", "wrong-type" or "ok" for a tls-creds id. */
  tlsCreds(id: string): "missing" | "wrong-type" | "ok";
  stdioInUse(): boolean;
}

/** Kinds the ChardevBackendKind enum has but this QEMU build has no class for. */
export const UNBUILT_KINDS = new Set(["console"]);

const SPICE_SUBTYPES = ["vdagent", "smartcard", "usbredir", "port"];

const O = fs.constants;

function openFile(path: string, flags: number, what = "open"): number {
  try {
    return fs.openSync(path, flags, 0o666);
  } catch (e) {
    throw genericError(`Could not ${what} '${path}': ${strerror(e)}`);
  }
}

/** What a backend kind's opener produces, beyond the common fields. */
interface Opened {
  filename?: () => string;
  fds?: number[];
  ringbuf?: RingBuffer;
  socket?: SocketChardev;
  pty?: string;
  yankable?: boolean;
  isMux?: boolean;
  onClose?: () => void;
}

type Opener = (data: Record<string, any>, env: OpenEnv) => Opened | Promise<Opened>;

const nothing: Opener = () => ({});

function ringbuf(data: Record<string, any>): Opened {
  // int: a bigint beyond 2^53, never a usable size (Number() keeps it unsafe, so refused).
  const size = Number(data.size ?? DEFAULT_RINGBUF_SIZE);
  if (!validRingbufSize(size)) throw genericError("size of ringbuf chardev must be power of two");
  return { ringbuf: new RingBuffer(size) };
}

/** A pty master; the slave's number comes from the master's fdinfo (no ioctl from JavaScript). */
function pty(): Opened {
  const fd = openFile("/dev/ptmx", O.O_RDWR | O.O_NOCTTY);
  const index = /tty-index:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
  const path = `/dev/pts/${index ?? 0}`;
  return { fds: [fd], pty: path, filename: () => `pty:${path}` };
}

function flattenAddress(addr: { type: string; data: Record<string, any> }): SocketAddr {
  return { type: addr.type, ...addr.data } as SocketAddr;
}

/** qmp_chardev_open_socket's checks, in its order, then listen or connect. */
async function socket(data: Record<string, any>, env: OpenEnv): Promise<Opened> {
  const addr = flattenAddress(data.addr);
  const isServer = data.server ?? true;
  if (data["tls-creds"] !== undefined) {
    const creds = env.tlsCreds(data["tls-creds"]);
    if (creds === "missing") throw genericError(`No TLS credentials with id '${data["tls-creds"]}'`);
    if (creds === "wrong-type") throw genericError(`Object with id '${data["tls-creds"]}' is not TLS credentials`);
  }
  const hasTls = data["tls-creds"] !== undefined;
  if (addr.type === "fd") {
    if (data.reconnect !== undefined) throw genericError("'reconnect' option is incompatible with 'fd' address type");
    if (hasTls && data.server !== true) throw genericError("'tls_creds' option is incompatible with 'fd' address type as client");
  } else if ((addr.type === "unix" || addr.type === "vsock") && hasTls) {
    throw genericError(`'tls_creds' option is incompatible with '${addr.type}' address type`);
  }
  if (data["tls-authz"] !== undefined && !hasTls) throw genericError("'tls_authz' option requires 'tls_creds' option");
  if (isServer) {
    if (data.reconnect !== undefined) throw genericError("'reconnect' option is incompatible with socket in server listen mode");
  } else {
    if (data.websocket) throw genericError("Websocket client is not implemented");
    if (data.wait !== undefined) throw genericError("'wait' option is incompatible with socket in client connect mode");
  }
  const s = new SocketChardev({
    addr,
    server: isServer,
    wait: data.wait ?? false,
    telnet: data.telnet ?? false,
    websocket: data.websocket ?? false,
    reconnect: data.reconnect ?? 0,
  });
  try {
    await s.open();
  } catch (e) {
    await s.close();
    throw e;
  }
  return { socket: s, yankable: true, filename: () => s.filename };
}

const OPENERS: Record<string, Opener> = {
  null: nothing,
  vc: nothing,
  msmouse: nothing,
  wctablet: nothing,
  testdev: nothing,
  "qemu-vdagent": nothing,
  ringbuf,
  memory: ringbuf,
  file: (d) => {
    const out = openFile(d.out, O.O_WRONLY | O.O_CREAT | (d.append ? O.O_APPEND : O.O_TRUNC));
    if (d.in === undefined) return { fds: [out] };
    try {
      return { fds: [out, openFile(d.in, O.O_RDONLY)] };
    } catch (e) {
      fs.closeSync(out);
      throw e;
    }
  },
  pipe: (d) => {
    const tryOpen = (p: string) => {
      try {
        return fs.openSync(p, O.O_RDWR);
      } catch {
        return -1;
      }
    };
    const fdIn = tryOpen(`${d.device}.in`);
    const fdOut = tryOpen(`${d.device}.out`);
    if (fdIn >= 0 && fdOut >= 0) return { fds: [fdIn, fdOut] };
    for (const fd of [fdIn, fdOut]) if (fd >= 0) fs.closeSync(fd);
    return { fds: [openFile(d.device, O.O_RDWR)] };
  },
  serial: (d) => ({ fds: [openFile(d.device, O.O_RDWR | O.O_NONBLOCK)] }),
  parallel: (d) => {
    fs.closeSync(openFile(d.device, O.O_RDWR));
    // The PPCLAIM ioctl fails on anything but a parallel port, and there is none to claim here.
    throw genericError("not a parallel port: Inappropriate ioctl for device");
  },
  pty,
  socket,
  udp: nothing,
  mux: (d, env) => {
    const base = env.find(d.chardev);
    if (!base) throw genericError(`mux: base chardev ${d.chardev} not found`);
    if (base.busy && !base.isMux) throw genericError(`Device '${base.id}' is in use`);
    base.busy = true;
    return { isMux: true };
  },
  stdio: (_d, env) => {
    if (env.stdioInUse()) throw genericError("cannot use stdio by multiple character devices");
    return {};
  },
  braille: () => {
    throw genericError("brlapi__openConnection: connect: No such file or directory");
  },
  spicevmc: (d) => {
    if (!SPICE_SUBTYPES.includes(d.type)) throw genericError(`unsupported type name: ${d.type}`);
    return {};
  },
  spiceport: () => {
    throw genericError("spice not enabled");
  },
  // A socket chardev on an empty descriptor name: registered, never listening.
  dbus: () => ({ yankable: true, filename: () => "disconnected:fd:,server=on" }),
};

/**
 * qemu_char_open: the log file first (created even if the backend then
 * fails, as QEMU leaves it), then the backend. Errors carry QEMU's text
 * without the "Failed to add chardev" prefix the command adds.
 */
export async function openChardev(id: string, backend: ChardevBackend, env: OpenEnv): Promise<Chardev> {
  const data = backend.data;
  const fds: number[] = [];
  if (data.logfile !== undefined) {
    fds.push(openFile(data.logfile, O.O_WRONLY | O.O_CREAT | (data.logappend ? O.O_APPEND : O.O_TRUNC), "create"));
  }
  let opened: Opened;
  try {
    opened = await OPENERS[backend.type]!(data, env);
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    throw e;
  }
  fds.push(...(opened.fds ?? []));
  const kind = backend.type;
  const filename = opened.filename ?? (() => kind);
  return {
    id,
    kind,
    typename: `chardev-${kind}`,
    filename,
    frontendOpen: false,
    busy: kind === "mux",
    pinned: false,
    isMux: opened.isMux ?? false,
    yankable: opened.yankable ?? false,
    ringbuf: opened.ringbuf,
    socket: opened.socket,
    pty: opened.pty,
    async close() {
      for (const fd of fds.splice(0)) fs.closeSync(fd);
      await opened.socket?.close();
    },
  };
}
