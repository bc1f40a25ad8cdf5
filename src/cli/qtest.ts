/**
 * qtest's text protocol (-qtest CHR): one command per line, one reply line
 * each ("OK ...", "FAIL ..."). Time is the point here: with the qtest
 * accelerator, `clock_step [NS]` and `clock_set NS` drive the emulator's
 * VirtualClock, so job pacing and rate limits advance exactly as a test
 * says. There is no guest: port reads see unassigned I/O (all ones), port
 * writes are accepted, and guest memory is a sparse byte map so that
 * write/read round trips behave.
 *
 * Differences from QEMU 7.2 (which aborts on these): an empty line or a
 * malformed number answers "FAIL ..." instead of crashing.
 */
import type { VirtualClock } from "../core/clock.ts";

type Reply = string;

/** qemu_strtou64 / qemu_strtoi64 with base 0: decimal, 0x hex, 0 octal. */
function parseNumber(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!m) return undefined;
  const body = m[2];
  const n = /^0[xX]/.test(body) ? BigInt(body) : body.length > 1 && body[0] === "0" ? BigInt("0o" + body.slice(1)) : BigInt(body);
  return m[1] === "-" ? -n : n;
}

const IO_WIDTH: Record<string, number> = { b: 1, w: 2, l: 4, q: 8 };

class BadArgument extends Error {}

export class QtestServer {
  /** Guest memory: address → byte; absent bytes read as zero. */
  private readonly memory = new Map<bigint, number>();

  /**
   * `clock` is present only with the qtest accelerator: like QEMU, clock_step
   * and clock_set are unknown commands otherwise.
   */
  constructor(private readonly clock: VirtualClock | undefined) {}

  /** Answers one command line (without its newline); returns the reply line without newline. */
  handle(line: string): Reply {
    const words = line.split(" ");
    try {
      return this.dispatch(words);
    } catch (e) {
      if (e instanceof BadArgument) return "FAIL invalid argument";
      throw e;
    }
  }

  private num(word: string | undefined): bigint {
    const n = parseNumber(word);
    if (n === undefined) throw new BadArgument();
    return n;
  }

  private dispatch(words: string[]): Reply {
    const [cmd] = words;
    const clock = this.clock;
    if (clock && cmd === "clock_step") {
      const ns = words[1] === undefined ? undefined : Number(this.num(words[1]));
      return `OK ${clock.step(ns)}`;
    }
    if (clock && cmd === "clock_set") return `OK ${clock.set(Number(this.num(words[1])))}`;
    switch (cmd) {
      case "endianness":
        return "OK little";
      case "outb":
      case "outw":
      case "outl":
        this.num(words[1]);
        this.num(words[2]);
        return "OK";
      case "inb":
      case "inw":
      case "inl": {
        this.num(words[1]);
        const width = IO_WIDTH[cmd[2]];
        return `OK 0x${((1n << BigInt(8 * width)) - 1n).toString(16).padStart(4, "0")}`;
      }
      case "writeb":
      case "writew":
      case "writel":
      case "writeq":
        this.store(this.num(words[1]), IO_WIDTH[cmd[5]], this.num(words[2]));
        return "OK";
      case "readb":
      case "readw":
      case "readl":
      case "readq":
        return `OK 0x${this.load(this.num(words[1]), IO_WIDTH[cmd[4]]).toString(16).padStart(16, "0")}`;
      case "read":
        return `OK 0x${Buffer.from(this.readBytes(this.num(words[1]), this.num(words[2]))).toString("hex")}`;
      case "b64read":
        return `OK ${Buffer.from(this.readBytes(this.num(words[1]), this.num(words[2]))).toString("base64")}`;
      case "write":
        return this.writeHex(this.num(words[1]), this.num(words[2]), words[3]);
      case "b64write":
        return this.writeB64(this.num(words[1]), this.num(words[2]), words[3]);
      case "memset": {
        const [addr, len, pattern] = [this.num(words[1]), this.num(words[2]), this.num(words[3])];
        for (let i = 0n; i < len; i++) this.memory.set(addr + i, Number(pattern & 0xffn));
        return "OK";
      }
      case "irq_intercept_in":
      case "irq_intercept_out":
      case "set_irq_in":
        return "FAIL Unknown device";
      case "module_load":
        return "FAIL";
      default:
        return `FAIL Unknown command '${cmd}'`;
    }
  }

  private store(addr: bigint, width: number, value: bigint): void {
    for (let i = 0; i < width; i++) this.memory.set(addr + BigInt(i), Number((value >> BigInt(8 * i)) & 0xffn));
  }

  private load(addr: bigint, width: number): bigint {
    let v = 0n;
    for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.memory.get(addr + BigInt(i)) ?? 0);
    return v;
  }

  private readBytes(addr: bigint, len: bigint): Uint8Array {
    if (len <= 0n || len > 64n * 1024n * 1024n) throw new BadArgument();
    const out = new Uint8Array(Number(len));
    for (let i = 0; i < out.length; i++) out[i] = this.memory.get(addr + BigInt(i)) ?? 0;
    return out;
  }

  private writeBytes(addr: bigint, data: Uint8Array): void {
    data.forEach((b, i) => this.memory.set(addr + BigInt(i), b));
  }

  /** `write ADDR LEN 0xHEX`: missing digits are zeros, like QEMU. */
  private writeHex(addr: bigint, len: bigint, data: string | undefined): Reply {
    if (data === undefined || data.length < 3) return "ERR invalid argument size";
    const bytes = new Uint8Array(Number(len));
    for (let i = 0; i < bytes.length; i++) {
      const hex = data.slice(2 + 2 * i, 4 + 2 * i);
      bytes[i] = hex.length === 2 ? parseInt(hex, 16) || 0 : 0;
    }
    this.writeBytes(addr, bytes);
    return "OK";
  }

  private writeB64(addr: bigint, len: bigint, data: string | undefined): Reply {
    if (data === undefined || data.length < 3) return "ERR invalid argument size";
    const decoded = Buffer.from(data, "base64");
    const bytes = new Uint8Array(Number(len));
    bytes.set(decoded.subarray(0, bytes.length));
    this.writeBytes(addr, bytes);
    return "OK";
  }
}

/**
 * Splits a byte stream into command lines and answers each; logs like QEMU's
 * qtest log ("[R +secs] cmd", "[S +secs] reply") when `log` is given.
 */
export function qtestSession(
  server: QtestServer,
  io: { write(text: string): void },
  log?: (line: string) => void,
): { feed(chunk: Uint8Array): void; opened(): void; closed(): void } {
  let buffer = "";
  let start = performance.now();
  const secs = () => ((performance.now() - start) / 1000).toFixed(6);
  return {
    opened() {
      start = performance.now();
      log?.(`[I ${secs()}] OPENED`);
    },
    closed() {
      log?.(`[I +${secs()}] CLOSED`);
    },
    feed(chunk) {
      buffer += Buffer.from(chunk).toString("latin1");
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        log?.(`[R +${secs()}] ${line}`);
        const reply = server.handle(line);
        log?.(`[S +${secs()}] ${reply}`);
        io.write(reply + "\n");
      }
    },
  };
}
