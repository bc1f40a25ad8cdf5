/**
 * HMP's chardev commands (monitor/hmp-cmds.c): chardev-add and
 * chardev-change take -chardev's option syntax (QemuOpts of the "chardev"
 * group, backend implied first), turned into a QAPI ChardevBackend the way
 * each backend's parse hook does; ringbuf_read escapes what it prints.
 */
import { genericError, isQmpError } from "../core/error.ts";
import { KEYVAL_FALSE, KEYVAL_TRUE, parseKeyvalNumber } from "../core/keyval-scalars.ts";
import type { ChardevBackend } from "../chardev/backends.ts";
import { openChardevNamed, ringbufRead, ringbufWrite } from "./chardev.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { runQmp } from "./hmp-args.ts";

/** The "chardev" option group's keys (qemu_chardev_opts), by QemuOpts type. */
const BOOL_KEYS = new Set([
  "abstract", "tight", "clipboard", "mouse", "logappend", "append", "signal", "mux", "websocket", "tn3270", "telnet",
  "nodelay", "delay", "server", "wait", "ipv6", "ipv4",
]);
const NUMBER_KEYS = new Set(["debug", "rows", "cols", "height", "width", "reconnect", "to"]);
const STRING_KEYS = new Set(["tls-authz", "tls-creds", "chardev", "logfile", "name", "localport", "localaddr", "fd", "port", "host", "path", "backend", "id"]);

/** -chardev's backend aliases (chardev_alias_translate). */
const ALIASES: Record<string, string> = { tty: "serial", parport: "parallel" };

class Opts {
  constructor(readonly values: Map<string, string>) {}
  get(k: string): string | undefined {
    return this.values.get(k);
  }
  has(k: string): boolean {
    return this.values.has(k);
  }
  bool(k: string, dflt: boolean): boolean {
    const v = this.values.get(k);
    return v === undefined ? dflt : KEYVAL_TRUE.has(v);
  }
  num(k: string): number | undefined {
    const v = this.values.get(k);
    return v === undefined ? undefined : parseKeyvalNumber(v, k === "size");
  }
}

/** What went wrong while parsing, printed before "Error: Parsing chardev args failed". */
class ParseFailure {
  constructor(readonly text: string) {}
}

/** qemu_opts_parse_noisily for the chardev group: later duplicates win, types checked. */
function parseOpts(text: string, warnings: string[]): Opts {
  const items: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "," && text[i + 1] === ",") (cur += ","), i++;
    else if (text[i] === ",") items.push(cur), (cur = "");
    else cur += text[i];
  }
  items.push(cur);
  if (items.length > 1 && items[items.length - 1] === "") items.pop();
  const values = new Map<string, string>();
  items.forEach((item, i) => {
    const eq = item.indexOf("=");
    let key = eq < 0 ? item : item.slice(0, eq);
    let value = eq < 0 ? undefined : item.slice(eq + 1);
    if (value === undefined && i === 0) [key, value] = ["backend", key];
    else if (value === undefined) {
      const off = key.startsWith("no") && key.length > 2;
      const name = off ? key.slice(2) : key;
      warnings.push(`warning: short-form boolean option '${key}' deprecated\nPlease use ${name}=${off ? "off" : "on"} instead\n`);
      [key, value] = [name, off ? "off" : "on"];
    }
    if (key !== "id" && !BOOL_KEYS.has(key) && !NUMBER_KEYS.has(key) && !STRING_KEYS.has(key) && key !== "size") {
      throw new ParseFailure(`Invalid parameter '${key}'\n`);
    }
    if (BOOL_KEYS.has(key) && !KEYVAL_TRUE.has(value) && !KEYVAL_FALSE.has(value)) {
      throw new ParseFailure(`Parameter '${key}' expects 'on' or 'off'\n`);
    }
    if (NUMBER_KEYS.has(key) && parseKeyvalNumber(value, false) === undefined) throw new ParseFailure(`Parameter '${key}' expects a number\n`);
    if (key === "size" && parseKeyvalNumber(value, true) === undefined) {
      throw new ParseFailure(
        `Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n`,
      );
    }
    values.set(key, value);
  });
  return new Opts(values);
}

const common = (o: Opts) => ({ ...(o.has("logfile") ? { logfile: o.get("logfile") } : {}), logappend: o.bool("logappend", false) });

function needPath(o: Opts, message: string): string {
  const p = o.get("path");
  if (p === undefined) throw genericError(message);
  return p;
}

/** Each backend's parse hook (cc->parse); kinds without one take only the common members. */
const PARSERS: Record<string, (o: Opts) => Record<string, unknown>> = {
  file: (o) => ({ ...common(o), out: needPath(o, "chardev: file: no filename given"), append: o.bool("append", false) }),
  pipe: (o) => ({ ...common(o), device: needPath(o, "chardev: pipe: no device path given") }),
  serial: (o) => ({ ...common(o), device: needPath(o, "chardev: serial/tty: no device path given") }),
  parallel: (o) => ({ ...common(o), device: needPath(o, "chardev: parallel: no device path given") }),
  ringbuf: (o) => ({ ...common(o), ...(o.num("size") ? { size: o.num("size") } : {}) }),
  memory: (o) => ({ ...common(o), ...(o.num("size") ? { size: o.num("size") } : {}) }),
  stdio: (o) => ({ ...common(o), signal: o.bool("signal", true) }),
  mux: (o) => {
    const chardev = o.get("chardev");
    if (chardev === undefined) throw genericError("chardev: mux: no chardev given");
    return { ...common(o), chardev };
  },
  socket: (o) => {
    const [path, host, port, fd] = ["path", "host", "port", "fd"].map((k) => o.get(k));
    if (Number(path !== undefined) + Number(fd !== undefined) + Number(host !== undefined) > 1) {
      throw genericError("None or one of 'path', 'fd' or 'host' option required.");
    }
    if (host !== undefined && port === undefined) throw genericError("chardev: socket: no port given");
    if (o.has("delay") && o.has("nodelay")) throw genericError("'delay' and 'nodelay' are mutually exclusive");
    const server = o.bool("server", false);
    const data: Record<string, unknown> = { ...common(o), server };
    if (o.has("delay") || o.has("nodelay")) data.nodelay = !o.bool("delay", true) || o.bool("nodelay", false);
    for (const k of ["telnet", "tn3270", "websocket"]) if (o.has(k)) data[k] = o.bool(k, false);
    if (o.has("wait") || server) data.wait = o.bool("wait", true);
    if (o.has("reconnect")) data.reconnect = o.num("reconnect");
    for (const k of ["tls-creds", "tls-authz"]) if (o.has(k)) data[k] = o.get(k);
    if (path !== undefined) {
      data.addr = { type: "unix", data: { path, tight: o.bool("tight", true), abstract: o.bool("abstract", false) } };
    } else if (host !== undefined) {
      const inet: Record<string, unknown> = { host, port };
      if (o.has("to")) inet.to = o.num("to");
      for (const k of ["ipv4", "ipv6"]) if (o.has(k)) inet[k] = o.bool(k, false);
      data.addr = { type: "inet", data: inet };
    } else {
      data.addr = { type: "fd", data: { str: fd ?? "" } };
    }
    return data;
  },
};

/** Kinds -chardev knows (the chardev classes of this build). */
const KINDS = new Set([
  "file", "serial", "parallel", "pipe", "socket", "udp", "pty", "null", "mux", "msmouse", "wctablet", "braille", "testdev",
  "stdio", "spicevmc", "spiceport", "qemu-vdagent", "dbus", "vc", "ringbuf", "memory",
]);

/** qemu_chr_parse_opts. */
function backendFrom(o: Opts, id: string | undefined, warnings: string[]): ChardevBackend {
  const given = o.get("backend");
  if (given === undefined) throw genericError(`chardev: "${id}" missing backend`);
  const kind = ALIASES[given] ?? given;
  if (kind !== given) warnings.push(`warning: The alias '${given}' is deprecated, use '${kind}' instead\n`);
  if (!KINDS.has(kind)) throw genericError(`'${kind}' is not a valid char driver name`);
  if (kind === "udp" || kind === "spicevmc" || kind === "spiceport" || kind === "dbus" || kind === "qemu-vdagent" || kind === "vc") {
    throw genericError(`qmpemu does not parse -chardev ${kind} options`);
  }
  return { type: kind, data: (PARSERS[kind] ?? common)(o) };
}

type Run = (args: string, ctx: CommandContext) => Promise<string>;

/** One whitespace-separated word or a quoted string, as HMP's 's' arguments read. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /\s*("((?:[^"\\]|\\.)*)"|\S+)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) {
    out.push(m[2] !== undefined ? m[2].replace(/\\(.)/g, (_s, c: string) => (c === "n" ? "\n" : c === "r" ? "\r" : c)) : m[1]!);
  }
  return out;
}

const usage = (name: string, problem: string) => `${name}: ${problem}\nTry "help ${name}" for more information\n`;

/** An HMP command over `n` string arguments, with HMP's complaints about their number. */
function withStrings(name: string, n: number, run: (args: string[], ctx: CommandContext) => Promise<string> | string): HmpCommand {
  const wrapped: Run = async (line, ctx) => {
    const args = words(line);
    if (args.length < n) return usage(name, "string expected");
    if (args.length > n) return usage(name, "extraneous characters at the end of line");
    try {
      return await run(args, ctx);
    } catch (e) {
      if (isQmpError(e)) return `Error: ${e.desc}\n`;
      throw e;
    }
  };
  return { name, run: wrapped };
}


/** Opts parsing: warnings first, then either its failure or the work's output. */
async function withOpts(text: string, work: (o: Opts, warnings: string[]) => Promise<string>): Promise<string> {
  const warnings: string[] = [];
  let out: string;
  try {
    const o = parseOpts(text, warnings);
    out = await work(o, warnings);
  } catch (e) {
    if (e instanceof ParseFailure) out = `${e.text}Error: Parsing chardev args failed\n`;
    else throw e;
  }
  return warnings.join("") + out;
}

/** hmp_ringbuf_read's printing: backslashes doubled, control characters as \uXXXX. */
function escapeRead(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    // U+0000 stands for the bytes C0 80, which QEMU prints as they are.
    if (c === 0) out += ch;
    else if (ch === "\\") out += "\\\\";
    else if ((c < 0x20 && ch !== "\n" && ch !== "\t") || c === 0x7f) out += `\\u${c.toString(16).toUpperCase().padStart(4, "0")}`;
    else out += ch;
  }
  return out;
}

export const hmpCommands: HmpCommand[] = [
  withStrings("chardev-add", 1, ([args], ctx) =>
    withOpts(args!, async (o, warnings) => {
      // qemu_chr_new_from_opts: the id first, then the backend, then the QOM name (a duplicate fails only there).
      const id = o.get("id");
      if (id === undefined) throw genericError("chardev: no id specified");
      const backend = backendFrom(o, id, warnings);
      const { pty } = await openChardevNamed(ctx.emu, id, backend);
      return pty === undefined ? "" : `char device redirected to ${pty} (label ${id})\n`;
    }),
  ),
  withStrings("chardev-change", 2, ([id, args], ctx) =>
    withOpts(args!, async (o, warnings) => {
      if (o.has("id")) throw genericError("Unexpected 'id' parameter");
      const backend = backendFrom(o, undefined, warnings);
      const { pty } = (await runQmp(ctx, "chardev-change", { id, backend })) as { pty?: string };
      return pty === undefined ? "" : `char device redirected to ${pty} (label ${id})\n`;
    }),
  ),
  withStrings("chardev-remove", 1, async ([id], ctx) => (await runQmp(ctx, "chardev-remove", { id }), "")),
  withStrings("chardev-send-break", 1, async ([id], ctx) => (await runQmp(ctx, "chardev-send-break", { id }), "")),
  withStrings("ringbuf_write", 2, ([device, data], ctx) => (ringbufWrite(ctx.emu, device!, data!), "")),
  {
    name: "ringbuf_read",
    run: async (line, ctx) => {
      const [device, size, extra] = words(line);
      if (device === undefined) return usage("ringbuf_read", "string expected");
      if (size === undefined) return `unexpected end of expression\nTry "help ringbuf_read" for more information\n`;
      const n = parseKeyvalNumber(size, false);
      if (n === undefined) return `invalid char in expression\nTry "help ringbuf_read" for more information\n`;
      if (extra !== undefined) return usage("ringbuf_read", "extraneous characters at the end of line");
      try {
        // The size is read into a uint32_t.
        return `${escapeRead(ringbufRead(ctx.emu, device, n >>> 0))}\n`;
      } catch (e) {
        if (isQmpError(e)) return `Error: ${e.desc}\n`;
        throw e;
      }
    },
  },
];
