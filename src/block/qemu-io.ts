/**
 * The qemu-io command language that test suites send through HMP
 * (`qemu-io [-d] DEVICE "write -P 0x11 0 64k"`). As in QEMU 7.2, the
 * command's own report ("wrote 65536/65536 bytes at offset 0", "Pattern
 * verification failed ...", "write failed: ...") goes to the process's
 * output — here the `log` callback — while only errors that stop the
 * command before any I/O (lookup, permissions) come back to the monitor.
 */
import type { BlockLayer } from "./index.ts";
import {
  ensurePerm, errorText, guestAdmitWrite, guestDiscard, guestFlush, guestRead, guestWrite, guestWriteCompressed, guestWriteZeroes,
  openIoTarget, RESIZE_PERM, WRITE_PERM, type IoTarget,
} from "./guest-io.ts";
import { isQmpError } from "../core/error.ts";

const SUFFIX = "kmgtpe";

/** qemu-io's cvtnum (qemu_strtosz): decimal, hex, or a decimal fraction with a binary suffix; null when unparsable. */
export function cvtnum(s: string): number | null {
  const m = /^(0x[0-9a-f]+|\d+(?:\.\d+)?)([bkmgtpe]?)$/i.exec(s);
  if (!m) return null;
  const hex = m[1]!.toLowerCase().startsWith("0x");
  const suf = m[2]!.toLowerCase();
  if (m[1]!.includes(".") && (suf === "" || suf === "b")) return null;
  const base = hex ? parseInt(m[1]!, 16) : Number(m[1]);
  const mul = suf === "" || suf === "b" ? 1 : 2 ** (10 * (SUFFIX.indexOf(suf) + 1));
  return Math.floor(base * mul);
}

/** qemu-io's cvtstr: "4 MiB", "1.938 MiB", "512 bytes". */
export function cvtstr(value: number): string {
  const units = [" EiB", " PiB", " TiB", " GiB", " MiB", " KiB"];
  let suffix = " bytes";
  for (let i = 0; i < units.length; i++) {
    const scale = 2 ** (10 * (6 - i));
    if (value >= scale) {
      value /= scale;
      suffix = units[i]!;
      break;
    }
  }
  // printf's %.3f: exact ties round to even (5.0625 → "5.062").
  const scaled = value * 1000;
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  const rounded = diff > 0.5 || (diff === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  const s = (rounded / 1000).toFixed(3);
  return s.endsWith(".000") ? s.slice(0, -4) + suffix : s + suffix;
}

/** strtol(arg, &end, 0) that must consume everything, in 0..255. */
function parsePattern(s: string): number | null {
  let v: number;
  if (/^0x[0-9a-f]+$/i.test(s)) v = parseInt(s, 16);
  else if (/^0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[1-9]\d*$/.test(s)) v = Number(s);
  else return null;
  return v <= 255 ? v : null;
}

/** getopt over a word list: returns flags, option values and the rest. */
function getopt(args: string[], spec: string): { flags: Map<string, string | true>; rest: string[] } | string {
  const flags = new Map<string, string | true>();
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a.length < 2 || /^-\d/.test(a)) break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      const at = spec.indexOf(c);
      if (at < 0) return `invalid option -- '${c}'`;
      if (spec[at + 1] === ":") {
        const val = a.slice(j + 1) || args[++i];
        if (val === undefined) return `option requires an argument -- '${c}'`;
        flags.set(c, val);
        break;
      }
      flags.set(c, true);
    }
  }
  return { flags, rest: args.slice(i) };
}

function report(verb: string, bytes: number, offset: number): string {
  return `${verb} ${bytes}/${bytes} bytes at offset ${offset}\n${cvtstr(bytes)}, 1 ops; 00.00 sec\n`;
}

interface CmdDef {
  minArgs: number;
  maxArgs: number; // -1: unlimited
  opts: string;
  /** Permissions the command extends the backend with (qemu-io's cmdinfo_t.perm). */
  perm?: number;
  /** Resolves to text for the monitor (qemu-io's error_report), if any; the rest goes to `log`. */
  run(t: IoTarget, flags: Map<string, string | true>, args: string[], log: (s: string) => void, layer: BlockLayer): Promise<void | string>;
}

const pendingAio = new WeakMap<BlockLayer, Set<Promise<void>>>();

function nums(args: string[], log: (s: string) => void): number[] | null {
  const out: number[] = [];
  for (const a of args) {
    const n = cvtnum(a);
    if (n === null) {
      log(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${a}\n`);
      return null;
    }
    out.push(n);
  }
  return out;
}

function pattern(flags: Map<string, string | true>, def: number, log: (s: string) => void): number | null {
  const p = flags.get("P");
  if (p === undefined) return def;
  const v = parsePattern(p as string);
  if (v === null) log(`${p} is not a valid pattern byte\n`);
  return v;
}

/**
 * Large pattern writes go down in pieces with an event-loop turn between them:
 * the monitor keeps answering exec-oob meanwhile (QEMU answers it from its
 * monitor thread), and one small buffer serves a request of any size. A piece
 * is small enough to allocate, fill and write well inside the 1 ms an exec-oob
 * reply may take.
 */
const WRITE_PIECE = 256 << 10;

const nextTurn = (resolve: () => void): void => void setImmediate(resolve);

async function writePattern(t: IoTarget, pat: number, offset: number, len: number): Promise<void> {
  const piece = new Uint8Array(Math.min(len, WRITE_PIECE)).fill(pat);
  const whole = len > piece.length;
  if (whole) await guestAdmitWrite(t, offset, len);
  for (let done = 0; done < len; done += piece.length) {
    if (done) await new Promise<void>(nextTurn);
    await guestWrite(t, len - done >= piece.length ? piece : piece.subarray(0, len - done), offset + done, whole);
  }
}

/** `what` names the failure as the command's own printf does ("aio_write failed: ..."). */
async function doWrite(t: IoTarget, flags: Map<string, string | true>, offset: number, len: number, log: (s: string) => void, what = "write"): Promise<void> {
  try {
    if (flags.has("z")) await guestWriteZeroes(t, offset, len, flags.has("u"));
    else {
      const pat = pattern(flags, 0xcd, log);
      if (pat === null) return;
      if (flags.has("c")) await guestWriteCompressed(t, new Uint8Array(len).fill(pat), offset);
      else await writePattern(t, pat, offset, len);
    }
    if (!flags.has("q")) log(report("wrote", len, offset));
  } catch (e) {
    log(`${what} failed: ${errorText(e)}\n`);
  }
}

async function doRead(t: IoTarget, flags: Map<string, string | true>, offset: number, len: number, log: (s: string) => void, what = "read"): Promise<void> {
  const buf = new Uint8Array(len);
  try {
    await guestRead(t, buf, offset);
  } catch (e) {
    log(`${what} failed: ${errorText(e)}\n`);
    return;
  }
  if (flags.has("P")) {
    const pat = pattern(flags, 0, log);
    if (pat === null) return;
    const pOff = flags.has("s") ? (cvtnum(flags.get("s") as string) ?? 0) : 0;
    const pLen = flags.has("l") ? (cvtnum(flags.get("l") as string) ?? len) : len - pOff;
    for (let i = pOff; i < pOff + pLen; i++) {
      if (buf[i] !== pat) {
        log(`Pattern verification failed at offset ${offset + pOff}, ${pLen} bytes\n`);
        break;
      }
    }
  }
  if (flags.has("v")) log(hexdump(buf, offset));
  if (!flags.has("q")) log(report("read", len, offset));
}

function hexdump(buf: Uint8Array, offset: number): string {
  let s = "";
  for (let i = 0; i < buf.length; i += 16) {
    const row = [...buf.subarray(i, i + 16)];
    s += `${(offset + i).toString(16).padStart(8, "0")}:  ${row.map((b) => b.toString(16).padStart(2, "0")).join(" ")}  ${row
      .map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "."))
      .join("")}\n`;
  }
  return s;
}

const COMMANDS: Record<string, CmdDef> = {
  write: {
    minArgs: 2, maxArgs: 2, opts: "bcCfnpP:quz", perm: WRITE_PERM,
    async run(t, flags, args, log) {
      const n = nums(args, log);
      if (n) await doWrite(t, flags, n[0]!, n[1]!, log);
    },
  },
  read: {
    minArgs: 2, maxArgs: 2, opts: "bCl:pP:qs:v",
    async run(t, flags, args, log) {
      const n = nums(args, log);
      if (n) await doRead(t, flags, n[0]!, n[1]!, log);
    },
  },
  writev: {
    minArgs: 2, maxArgs: -1, opts: "CfqP:", perm: WRITE_PERM,
    async run(t, flags, args, log) {
      const n = nums(args, log);
      if (!n) return;
      const total = n.slice(1).reduce((a, b) => a + b, 0);
      await doWrite(t, flags, n[0]!, total, log, "writev");
    },
  },
  readv: {
    minArgs: 2, maxArgs: -1, opts: "CP:qv",
    async run(t, flags, args, log) {
      const n = nums(args, log);
      if (n) await doRead(t, flags, n[0]!, n.slice(1).reduce((a, b) => a + b, 0), log, "readv");
    },
  },
  aio_write: {
    minArgs: 2, maxArgs: -1, opts: "CfiqP:uz", perm: WRITE_PERM,
    async run(t, flags, args, log, layer) {
      const n = nums(args, log);
      if (!n) return;
      const total = n.slice(1).reduce((a, b) => a + b, 0);
      track(layer, doWrite(t, flags, n[0]!, total, log, "aio_write"));
    },
  },
  aio_read: {
    minArgs: 2, maxArgs: -1, opts: "CP:iqv",
    async run(t, flags, args, log, layer) {
      const n = nums(args, log);
      if (n) track(layer, doRead(t, flags, n[0]!, n.slice(1).reduce((a, b) => a + b, 0), log, "readv"));
    },
  },
  aio_flush: {
    minArgs: 0, maxArgs: 0, opts: "",
    async run(_t, _f, _a, _l, layer) {
      const set = pendingAio.get(layer);
      while (set && set.size) await Promise.all([...set]);
    },
  },
  flush: {
    minArgs: 0, maxArgs: 0, opts: "",
    async run(t) {
      try {
        await guestFlush(t);
      } catch {
        // flush_f returns the error code and prints nothing.
      }
    },
  },
  discard: {
    minArgs: 2, maxArgs: 2, opts: "Cq", perm: WRITE_PERM,
    async run(t, flags, args, log) {
      const n = nums(args, log);
      if (!n) return;
      try {
        await guestDiscard(t, n[0]!, n[1]!);
        if (!flags.has("q")) log(report("discard", n[1]!, n[0]!));
      } catch (e) {
        log(`discard failed: ${errorText(e)}\n`);
      }
    },
  },
  alloc: {
    minArgs: 1, maxArgs: 2, opts: "",
    async run(t, _f, args, log) {
      const n = nums(args, log);
      if (!n) return;
      const [offset, count = 512] = n;
      const node = t.blk.node;
      if (!node) return log("alloc failed: No medium found\n");
      let allocated = 0;
      for (let pos = offset!; pos < offset! + count; ) {
        const r = await node.isAllocatedAbove(null, pos, offset! + count - pos);
        if (r.allocated) allocated += r.length;
        pos += r.length;
      }
      log(`${allocated}/${count} bytes allocated at offset ${cvtstr(offset!)}\n`);
    },
  },
  map: {
    minArgs: 0, maxArgs: 0, opts: "",
    async run(t, _f, _a, log) {
      const node = t.blk.node;
      if (!node) return "Failed to query image length: No medium found\n";
      const size = node.size();
      for (let pos = 0; pos < size; ) {
        // Runs with the same answer are merged (map_is_allocated).
        const first = await node.isAllocatedAbove(null, pos, size - pos);
        let len = first.length;
        while (pos + len < size) {
          const r = await node.isAllocatedAbove(null, pos + len, size - pos - len);
          if (r.allocated !== first.allocated) break;
          len += r.length;
        }
        log(`${cvtstr(len)} (0x${len.toString(16)}) bytes ${first.allocated ? "   " : "not"} allocated at offset ${cvtstr(pos)} (0x${pos.toString(16)})\n`);
        pos += len;
      }
    },
  },
  truncate: {
    minArgs: 1, maxArgs: 1, opts: "m:", perm: RESIZE_PERM,
    async run(t, _f, args, log) {
      const n = nums(args, log);
      if (!n) return;
      // blk_truncate's complaint goes to the monitor (error_report_err).
      if (!t.blk.node) return "No medium inserted\n";
      try {
        await t.blk.node.resize(n[0]!);
      } catch (e) {
        log(`truncate: ${errorText(e)}\n`);
      }
    },
  },
  length: {
    minArgs: 0, maxArgs: 0, opts: "",
    async run(t, _f, _a, log) {
      if (!t.blk.node) return log("getlength: No medium found\n");
      log(`${cvtstr(t.blk.node.size())}\n`);
    },
  },
};
COMMANDS.w = COMMANDS.write!;
COMMANDS.r = COMMANDS.read!;

function track(layer: BlockLayer, p: Promise<void>): void {
  let set = pendingAio.get(layer);
  if (!set) pendingAio.set(layer, (set = new Set()));
  const s = set;
  const q = p.finally(() => s.delete(q));
  s.add(q);
}

/**
 * Runs one qemu-io command line on `target`; returns the text for the
 * monitor (empty unless the command could not start), logs the rest.
 */
export async function qemuIoCommand(layer: BlockLayer, t: IoTarget, line: string, log: (s: string) => void): Promise<string> {
  const words = line.trim().split(/\s+/).filter(Boolean);
  if (!words.length) return "";
  const [name, ...args] = words;
  const cmd = COMMANDS[name!];
  if (!cmd) {
    log(`command "${name}" not found\n`);
    return "";
  }
  const parsed = getopt(args, cmd.opts);
  if (typeof parsed === "string") {
    log(`${name}: ${parsed}\n`);
    return "";
  }
  const n = parsed.rest.length;
  if (n < cmd.minArgs || (cmd.maxArgs >= 0 && n > cmd.maxArgs)) {
    log(
      cmd.maxArgs === cmd.minArgs
        ? `bad argument count ${n} to ${name}, expected ${cmd.minArgs} arguments\n`
        : `bad argument count ${n} to ${name}, expected at least ${cmd.minArgs} arguments\n`,
    );
    return "";
  }
  if (cmd.perm) {
    try {
      ensurePerm(layer, t, cmd.perm);
    } catch (e) {
      if (isQmpError(e)) return `${e.desc}\n`;
      throw e;
    }
  }
  return (await cmd.run(t, parsed.flags, parsed.rest, log, layer)) ?? "";
}

/**
 * The HMP argument parser for "qdev:-d,device:B,command:s": an optional
 * -d, a word, then a word or a double-quoted string with backslash escapes.
 * Returns the parts, or QEMU's complaint.
 */
export function parseQemuIoHmpArgs(argLine: string): { qdev: boolean; device: string; command: string } | { error: string } {
  let i = 0;
  const skip = () => {
    while (i < argLine.length && /\s/.test(argLine[i]!)) i++;
  };
  const word = () => {
    const start = i;
    while (i < argLine.length && !/\s/.test(argLine[i]!)) i++;
    return argLine.slice(start, i);
  };
  skip();
  let qdev = false;
  if (argLine.startsWith("-d", i) && (i + 2 === argLine.length || /\s/.test(argLine[i + 2]!))) {
    qdev = true;
    i += 2;
    skip();
  }
  const device = word();
  if (!device) return { error: "block device name expected" };
  skip();
  let command = "";
  if (argLine[i] === '"') {
    i++;
    const escapes: Record<string, string> = { n: "\n", r: "\r", "\\": "\\", "'": "'", '"': '"' };
    for (;;) {
      const c = argLine[i];
      if (c === undefined) return { error: "unterminated string" };
      i++;
      if (c === '"') break;
      if (c === "\\") {
        const e = escapes[argLine[i] ?? ""];
        if (e === undefined) return { error: `unsupported escape code: '\\${argLine[i] ?? ""}'` };
        command += e;
        i++;
      } else command += c;
    }
  } else {
    command = word();
    if (!command) return { error: "string expected" };
  }
  skip();
  if (i < argLine.length) return { error: "extraneous characters at the end of line" };
  return { qdev, device, command };
}

/** HMP `qemu-io`: lookup, run, and QEMU's "Error: ..." for lookup failures. */
export async function hmpQemuIo(layer: BlockLayer, argLine: string, log: (s: string) => void): Promise<string> {
  const a = parseQemuIoHmpArgs(argLine);
  if ("error" in a) return `qemu-io: ${a.error}\nTry "help qemu-io" for more information\n`;
  let t: IoTarget;
  try {
    t = openIoTarget(layer, a.device, { qdev: a.qdev });
  } catch (e) {
    if (isQmpError(e)) return `Error: ${e.desc}\n`;
    throw e;
  }
  try {
    return await qemuIoCommand(layer, t, a.command, log);
  } finally {
    await t.release();
  }
}
