/**
 * HMP argument scanning as QEMU's monitor does it (monitor_parse_arguments):
 * each command reads its arguments in the order of its args_type, and a
 * failure prints the command's complaint followed by where to find help.
 */
import { QmpError } from "../core/error.ts";
import type { CommandContext } from "./command.ts";
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

  end(): void {
    if (this.rest.trim() !== "") throw new HmpSyntaxError(`${this.command}: extraneous characters at the end of line`);
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
