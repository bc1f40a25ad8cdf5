/**
 * HMP argument scanning as QEMU's monitor does it (monitor_parse_arguments):
 * each command reads its arguments in the order of its args_type, and a
 * failure prints the command's complaint followed by where to find help.
 */
import { QmpError } from "../core/error.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";

/** A parse failure: QEMU prints the message, then where to find help. */
export class HmpSyntaxError extends Error {}

/** A line QEMU's command prints with error_report (no "Error: " prefix), ending the command. */
export class HmpReport extends Error {}

export class HmpArgs {
  private rest: string;

  constructor(
    private readonly command: string,
    line: string,
  ) {
    this.rest = line;
  }

  /**
   * The `-x` options of an args_type like "reuse:-n,full:-f": each may be
   * given once, in that order; a letter that belongs to a later option is
   * left for it, any other is refused.
   */
  flags(letters: string): Set<string> {
    const set = new Set<string>();
    for (let i = 0; i < letters.length; i++) {
      this.rest = this.rest.trimStart();
      if (!this.rest.startsWith("-")) continue;
      const c = this.rest[1] ?? "";
      if (c === letters[i]) {
        set.add(c);
        this.rest = this.rest.slice(2);
      } else if (!c || !letters.slice(i + 1).includes(c)) {
        throw new HmpSyntaxError(`${this.command}: unsupported option -${c}`);
      }
    }
    return set;
  }

  /** One `-x` option. */
  flag(letter: string): boolean {
    return this.flags(letter).has(letter);
  }

  /** A block device name ('B'). */
  device(): string {
    return this.string("block device name expected");
  }

  /** A filename ('F'). */
  filename(): string {
    return this.string("filename expected");
  }

  /** A string argument ('s'). */
  str(): string {
    return this.string("string expected");
  }

  /** An optional string ('s?'): absent only at the end of the line. */
  optionalStr(): string | undefined {
    return this.atEnd() ? undefined : this.str();
  }

  /** A 'b' argument: exactly `on` or `off`. */
  onOff(): boolean {
    const word = this.atEnd() ? undefined : /^\S+/.exec(this.rest)![0];
    if (word !== "on" && word !== "off") throw new HmpSyntaxError("Expected 'on' or 'off'");
    this.rest = this.rest.slice(word.length);
    return word === "on";
  }

  /** A size in bytes, default unit MiB (qemu_strtosz_MiB), at most INT64_MAX ('o'). */
  size(): number {
    this.rest = this.rest.trimStart();
    const parsed = parseSizeMiB(this.rest);
    if (!parsed) throw new HmpSyntaxError("invalid size");
    this.rest = this.rest.slice(parsed.length);
    return parsed.value;
  }

  optionalSize(): number | undefined {
    return this.atEnd() ? undefined : this.size();
  }

  /** An 'i' argument: an expression that must fit in 32 bits. */
  int32(): number {
    const v = this.expression();
    if ((v >> 32n) & 0xffffffffn) throw new HmpSyntaxError(`'${this.command}' has failed: integer is for 32-bit values`);
    return Number(v);
  }

  /** An 'l' argument: an int64 expression. */
  int64(): number {
    return Number(this.expression());
  }

  /** An 'l?' argument: absent only at the end of the line. */
  optionalInt64(): number | undefined {
    return this.atEnd() ? undefined : this.int64();
  }

  /** An 'M' argument: a non-negative expression counted in MiB, returned in bytes. */
  mebibytes(): number {
    const v = this.expression();
    if (v < 0n) throw new HmpSyntaxError("enter a positive value");
    return Number(BigInt.asIntN(64, v << 20n));
  }

  end(): void {
    if (this.rest.trim() !== "") throw new HmpSyntaxError(`${this.command}: extraneous characters at the end of line`);
  }

  /** get_expr: QEMU's monitor arithmetic over int64 (registers do not exist without a CPU). */
  private expression(): bigint {
    const parser = new ExpressionParser(this.rest);
    const v = parser.parse();
    this.rest = parser.rest;
    return v;
  }

  private atEnd(): boolean {
    this.rest = this.rest.trimStart();
    return this.rest === "";
  }

  private string(complaint: string): string {
    this.rest = this.rest.trimStart();
    const got = scanString(this.rest);
    if (!got) throw new HmpSyntaxError(`${this.command}: ${complaint}`);
    this.rest = this.rest.slice(got.length);
    return got.value;
  }
}

/** expr_sum and friends, with int64 wrap-around; errors are HmpSyntaxErrors with QEMU's texts. */
class ExpressionParser {
  private i = 0;

  constructor(private readonly text: string) {}

  get rest(): string {
    return this.text.slice(this.i);
  }

  parse(): bigint {
    this.skipSpace();
    return this.sum();
  }

  private get ch(): string {
    return this.text[this.i] ?? "";
  }

  private skipSpace(): void {
    while (/^\s$/.test(this.ch)) this.i++;
  }

  /** next(): one character, then white space. */
  private next(): void {
    if (this.ch) this.i++;
    this.skipSpace();
  }

  private binary(sub: () => bigint, ops: string, apply: (op: string, a: bigint, b: bigint) => bigint): bigint {
    let v = sub();
    while (this.ch && ops.includes(this.ch)) {
      const op = this.ch;
      this.next();
      v = BigInt.asIntN(64, apply(op, v, sub()));
    }
    return v;
  }

  private sum(): bigint {
    return this.binary(() => this.logic(), "+-", (op, a, b) => (op === "+" ? a + b : a - b));
  }

  private logic(): bigint {
    return this.binary(() => this.prod(), "&|^", (op, a, b) => (op === "&" ? a & b : op === "|" ? a | b : a ^ b));
  }

  private prod(): bigint {
    return this.binary(() => this.unary(), "*/%", (op, a, b) => {
      if (op === "*") return a * b;
      if (b === 0n) throw new HmpSyntaxError("division by zero");
      return op === "/" ? a / b : a % b;
    });
  }

  private unary(): bigint {
    const c = this.ch;
    if (c === "+" || c === "-" || c === "~") {
      this.next();
      const v = this.unary();
      return BigInt.asIntN(64, c === "+" ? v : c === "-" ? -v : ~v);
    }
    if (c === "(") {
      this.next();
      const v = this.sum();
      if (this.ch !== ")") throw new HmpSyntaxError("')' expected");
      this.next();
      return v;
    }
    if (c === "'") {
      const k = this.text[this.i + 1];
      if (!k) throw new HmpSyntaxError("character constant expected");
      if (this.text[this.i + 2] !== "'") throw new HmpSyntaxError("missing terminating ' character");
      this.i += 2;
      this.next();
      return BigInt(k.charCodeAt(0));
    }
    if (c === "$") throw new HmpSyntaxError("unknown register");
    if (c === "") throw new HmpSyntaxError("unexpected end of expression");
    // strtoull with base 0.
    const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)/.exec(this.rest);
    if (!m) throw new HmpSyntaxError(`invalid char '${c}' in expression`);
    const digits = m[1]!;
    const v = /^0[0-7]+$/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
    if (v >= 1n << 64n) throw new HmpSyntaxError("number too large");
    this.i += digits.length;
    this.skipSpace();
    return BigInt.asIntN(64, v);
  }
}

/** get_str: a word up to white space, or a double-quoted string with \n \r \\ \' \" escapes. */
function scanString(text: string): { value: string; length: number } | null {
  if (!text) return null;
  if (text[0] !== '"') {
    const word = /^\S+/.exec(text)![0];
    return { value: word, length: word.length };
  }
  let value = "";
  let i = 1;
  for (; i < text.length && text[i] !== '"'; i++) {
    if (text[i] !== "\\") {
      value += text[i];
      continue;
    }
    const esc = ({ n: "\n", r: "\r", "\\": "\\", "'": "'", '"': '"' } as Record<string, string>)[text[++i] ?? ""];
    if (esc === undefined) return null;
    value += esc;
  }
  return i < text.length ? { value, length: i + 1 } : null;
}

const SUFFIX_SHIFT: Record<string, number> = { b: 0, k: 10, m: 20, g: 30, t: 40, p: 50, e: 60 };

/** qemu_strtosz with MiB as the default unit: decimal (with fraction) or 0x hex, optional B/K/M/G/T/P/E. */
export function parseSizeMiB(text: string): { value: number; length: number } | null {
  const m = /^\+?(?:0[xX]([0-9a-fA-F]+)|(\d+)(\.\d*)?)([bBkKmMgGtTpPeE])?/.exec(text);
  if (!m) return null;
  const [whole, hex, int, frac, suffix] = m;
  const next = text[whole!.length] ?? "";
  // Hex takes a suffix (in 7.2) but no fraction.
  if (hex !== undefined && next === ".") return null;
  // strtod would read "1.5e3" as an exponent, which QEMU refuses.
  if (frac !== undefined && /^[eE]$/.test(suffix ?? "") && /^[-+\d]/.test(next)) return null;
  const shift = suffix !== undefined ? SUFFIX_SHIFT[suffix.toLowerCase()]! : 20;
  const fraction = frac !== undefined && frac.length > 1 ? Number(`0${frac}`) : 0;
  if (fraction && shift === 0) return null; // a fraction needs a unit above bytes
  const base = hex !== undefined ? BigInt(`0x${hex}`) : BigInt(int!);
  const value = (base << BigInt(shift)) + BigInt(Math.trunc(fraction * 2 ** shift));
  if (value > 0x7fffffffffffffffn) return null;
  return { value: Number(value), length: whole!.length };
}

/** Runs a QMP command's handler for an HMP command (arguments already in QMP's shape). */
export function runQmp(ctx: CommandContext, name: string, args: Record<string, unknown> = {}): unknown {
  return (ctx.emu.commands.get(name) as CommandDef).handler(args, ctx);
}

/**
 * An HMP command over a QMP-style action. Syntax errors print with the help
 * hint, QMP errors as hmp_handle_error ("Error: ..."), HmpReport lines as
 * error_report prints them; otherwise the action's own text, if any.
 */
export function hmpVerb(name: string, run: (args: HmpArgs, ctx: CommandContext) => void | string | Promise<void | string>): HmpCommand {
  return {
    name,
    async run(line, ctx) {
      try {
        return (await run(new HmpArgs(name, line), ctx)) ?? "";
      } catch (e) {
        if (e instanceof HmpSyntaxError) return `${e.message}\nTry "help ${name}" for more information\n`;
        if (e instanceof HmpReport) return `${e.message}\n`;
        if (e instanceof QmpError) return `Error: ${e.desc}\n`;
        throw e;
      }
    },
  };
}
