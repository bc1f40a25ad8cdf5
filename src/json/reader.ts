/**
 * An incremental reader for QMP's JSON dialect, reproducing QEMU 7.2's
 * lexer / streamer / parser trio (qobject/json-*.c) by behaviour:
 *
 * - input is a byte stream of concatenated JSON texts, no separators needed;
 * - single-quoted strings and the \' escape are accepted;
 * - integers become int64 (number, or bigint beyond 2^53), else uint64
 *   (bigint), else double; a float with an integral value is boxed in
 *   JsonFloat so an integer parameter can still reject `1.0` like QEMU;
 * - per-message limits (nesting 1024, 64 MiB of tokens, 2 Mi tokens);
 * - on any error the message is dropped and one error item is produced;
 *   after a lexical error input is skipped up to a resynchronisation point.
 *
 * Pull style, like pg-protocol's parser: `push(bytes)` appends input and
 * `next()` returns the next complete item or undefined, keeping the rest,
 * so a monitor that stops reading after a message leaves its remainder here.
 */

/** A JSON number written with a fraction or exponent whose value is integral. */
export class JsonFloat {
  constructor(readonly value: number) {}
}

export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonFloat
  | JsonValue[]
  | { [key: string]: JsonValue };

export type ReaderItem = { value: JsonValue; error?: undefined } | { value?: undefined; error: string };

export const JSON_LIMITS = {
  maxNesting: 1024,
  maxTokenBytes: 64 * 1024 * 1024,
  maxTokens: 2 * 1024 * 1024,
} as const;

// Lexer states. Token types are >= 100.
const S_START = 0;
const S_RECOVERY = 1;
const S_DQ = 2;
const S_DQ_ESC = 3;
const S_SQ = 4;
const S_SQ_ESC = 5;
const S_ZERO = 6;
const S_DIGITS = 7;
const S_SIGN = 8;
const S_MANTISSA = 9;
const S_MANTISSA_DIGITS = 10;
const S_EXP_E = 11;
const S_EXP_SIGN = 12;
const S_EXP_DIGITS = 13;
const S_KEYWORD = 14;

const T_LCURLY = 100;
const T_RCURLY = 101;
const T_LSQUARE = 102;
const T_RSQUARE = 103;
const T_COLON = 104;
const T_COMMA = 105;
const T_INTEGER = 106;
const T_FLOAT = 107;
const T_KEYWORD = 108;
const T_STRING = 109;

interface Token {
  type: number;
  /** Text of numbers and keywords; the decoded value of strings. */
  raw?: string;
  /** A string token that does not decode: the parser reports this if it reaches it. */
  bad?: string;
}

const STRUCTURAL: Record<number, number> = {
  0x7b: T_LCURLY,
  0x7d: T_RCURLY,
  0x5b: T_LSQUARE,
  0x5d: T_RSQUARE,
  0x3a: T_COLON,
  0x2c: T_COMMA,
};

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isLower = (c: number) => c >= 0x61 && c <= 0x7a;
const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;

class ParseError {
  constructor(readonly message: string) {}
}

export class JsonReader {
  private chunks: Uint8Array[] = [];
  private chunk: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private state = S_START;
  /** Bytes of the token being lexed. */
  private tok: Buffer = Buffer.allocUnsafe(256);
  private tokLen = 0;
  // streamer state
  private tokens: Token[] = [];
  private tokenBytes = 0;
  private braces = 0;
  private brackets = 0;
  private out: ReaderItem[] = [];

  /** Appends input; nothing is parsed until next() is called. */
  push(bytes: Uint8Array): void {
    if (bytes.length) this.chunks.push(bytes);
  }

  /** Bytes pushed but not yet lexed. */
  get buffered(): number {
    let n = this.chunk.length - this.pos;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  /** Forgets everything: buffered input, partial token and message. */
  reset(): void {
    this.chunks = [];
    this.chunk = new Uint8Array(0);
    this.pos = 0;
    this.state = S_START;
    this.tokLen = 0;
    this.dropMessage();
    this.out = [];
  }

  /** The next complete message or error, or undefined when more input is needed. */
  next(): ReaderItem | undefined {
    while (this.out.length === 0) {
      if (this.pos >= this.chunk.length) {
        const c = this.chunks.shift();
        if (!c) return undefined;
        this.chunk = c;
        this.pos = 0;
      }
      const chunk = this.chunk;
      const end = chunk.length;
      while (this.pos < end && this.out.length === 0) {
        if (this.state === S_DQ || this.state === S_SQ) this.scanString(chunk, end);
        if (this.pos < end) this.feedByte(chunk[this.pos++]!);
      }
    }
    return this.out.shift();
  }

  /** Convenience: all items available now. */
  drain(): ReaderItem[] {
    const items: ReaderItem[] = [];
    for (let it = this.next(); it; it = this.next()) items.push(it);
    return items;
  }

  private append(c: number): void {
    if (this.tokLen === this.tok.length) {
      const bigger = Buffer.allocUnsafe(this.tok.length * 2);
      bigger.set(this.tok);
      this.tok = bigger;
    }
    this.tok[this.tokLen++] = c;
  }

  /**
   * Inside a string, copies the run of ordinary bytes in one go; the byte
   * that ends the run (quote, backslash, or one the lexer rejects) is left
   * for feedByte.
   */
  private scanString(chunk: Uint8Array, end: number): void {
    const quote = this.state === S_DQ ? 0x22 : 0x27;
    const start = this.pos;
    // Stop where the per-token limit trips, so the cut falls where QEMU's does.
    const stop = Math.min(end, start + Math.max(0, JSON_LIMITS.maxTokenBytes + 1 - this.tokLen));
    let i = start;
    while (i < stop) {
      const c = chunk[i]!;
      if (c === quote || c === 0x5c || c < 0x20 || c > 0xfd) break;
      i++;
    }
    const n = i - start;
    if (n === 0) return;
    if (this.tokLen + n > this.tok.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.tok.length * 2, this.tokLen + n));
      bigger.set(this.tok.subarray(0, this.tokLen));
      this.tok = bigger;
    }
    this.tok.set(chunk.subarray(start, i), this.tokLen);
    this.tokLen += n;
    this.pos = i;
    this.checkTokenSize();
  }

  private feedByte(c: number): void {
    // Loops only when a transition needs lookahead (the byte is re-lexed).
    for (;;) {
      switch (this.state) {
        case S_START: {
          const structural = STRUCTURAL[c];
          if (structural !== undefined) {
            this.token(structural);
            return;
          }
          if (isWs(c)) return;
          if (c === 0x22) { this.state = S_DQ; this.append(c); return; }
          if (c === 0x27) { this.state = S_SQ; this.append(c); return; }
          if (c === 0x30) { this.state = S_ZERO; this.append(c); return; }
          if (c >= 0x31 && c <= 0x39) { this.state = S_DIGITS; this.append(c); return; }
          if (c === 0x2d) { this.state = S_SIGN; this.append(c); return; }
          if (isLower(c)) { this.state = S_KEYWORD; this.append(c); return; }
          return this.lexError(c);
        }
        case S_RECOVERY:
          // Resynchronise on structural chars, control chars but tab, 0xFE/0xFF.
          if ((c < 0x20 && c !== 0x09) || c >= 0xfe || STRUCTURAL[c] !== undefined) {
            this.state = S_START;
            continue;
          }
          return;
        case S_DQ:
        case S_SQ: {
          if (c < 0x20 || c > 0xfd) return this.lexError(c);
          this.append(c);
          if (c === 0x5c) this.state = this.state === S_DQ ? S_DQ_ESC : S_SQ_ESC;
          else if (c === (this.state === S_DQ ? 0x22 : 0x27)) this.finishToken(T_STRING);
          this.checkTokenSize();
          return;
        }
        case S_DQ_ESC:
        case S_SQ_ESC:
          if (c < 0x20 || c > 0xfd) return this.lexError(c);
          this.append(c);
          this.state = this.state === S_DQ_ESC ? S_DQ : S_SQ;
          return;
        case S_ZERO:
          // QEMU 7.2: a digit after a leading zero is an error; anything else
          // (even 'e' or 'x') just ends the integer 0.
          if (isDigit(c)) return this.lexError(c);
          if (c === 0x2e) { this.append(c); this.state = S_MANTISSA; return; }
          this.finishToken(T_INTEGER);
          continue;
        case S_DIGITS:
          if (isDigit(c)) { this.append(c); this.checkTokenSize(); return; }
          if (c === 0x65 || c === 0x45) { this.append(c); this.state = S_EXP_E; return; }
          if (c === 0x2e) { this.append(c); this.state = S_MANTISSA; return; }
          this.finishToken(T_INTEGER);
          continue;
        case S_SIGN:
          if (c === 0x30) { this.append(c); this.state = S_ZERO; return; }
          if (c >= 0x31 && c <= 0x39) { this.append(c); this.state = S_DIGITS; return; }
          return this.lexError(c);
        case S_MANTISSA:
          if (isDigit(c)) { this.append(c); this.state = S_MANTISSA_DIGITS; return; }
          return this.lexError(c);
        case S_MANTISSA_DIGITS:
          if (isDigit(c)) { this.append(c); this.checkTokenSize(); return; }
          if (c === 0x65 || c === 0x45) { this.append(c); this.state = S_EXP_E; return; }
          this.finishToken(T_FLOAT);
          continue;
        case S_EXP_E:
          if (c === 0x2b || c === 0x2d) { this.append(c); this.state = S_EXP_SIGN; return; }
          if (isDigit(c)) { this.append(c); this.state = S_EXP_DIGITS; return; }
          return this.lexError(c);
        case S_EXP_SIGN:
          if (isDigit(c)) { this.append(c); this.state = S_EXP_DIGITS; return; }
          return this.lexError(c);
        case S_EXP_DIGITS:
          if (isDigit(c)) { this.append(c); this.checkTokenSize(); return; }
          this.finishToken(T_FLOAT);
          continue;
        case S_KEYWORD:
          if (isLower(c)) { this.append(c); this.checkTokenSize(); return; }
          this.finishToken(T_KEYWORD);
          continue;
      }
    }
  }

  private lexError(c: number): void {
    this.append(c);
    const bytes = this.tok.subarray(0, this.tokLen);
    this.tokLen = 0;
    this.state = S_RECOVERY;
    this.emitError(`JSON parse error, stray '${qemuBytesToString(bytes)}'`);
  }

  /** A single token may not grow beyond the per-message byte limit. */
  private checkTokenSize(): void {
    if (this.tokLen > JSON_LIMITS.maxTokenBytes) {
      this.tokLen = 0;
      this.state = S_START;
      this.emitError("JSON token size limit exceeded");
    }
  }

  private finishToken(type: number): void {
    const len = this.tokLen;
    this.tokLen = 0;
    this.state = S_START;
    if (type === T_STRING) {
      // Decoded now (no copy of the bytes); an error is only reported if the
      // parser gets to this token, so error precedence is QEMU's.
      const r = decodeString(this.tok, len);
      this.process(type, r.value, len, r.error);
    } else this.process(type, latin1(this.tok, 0, len), len);
  }

  private token(type: number): void {
    this.process(type, undefined, 1);
  }

  /** The streamer: groups tokens into messages and enforces the limits. */
  private process(type: number, raw: string | undefined, len: number, bad?: string): void {
    switch (type) {
      case T_LCURLY: this.braces++; break;
      case T_RCURLY: this.braces--; break;
      case T_LSQUARE: this.brackets++; break;
      case T_RSQUARE: this.brackets--; break;
    }
    if (this.tokenBytes + len + 1 > JSON_LIMITS.maxTokenBytes) return this.emitError("JSON token size limit exceeded");
    if (this.tokens.length + 1 > JSON_LIMITS.maxTokens) return this.emitError("JSON token count limit exceeded");
    if (this.braces + this.brackets > JSON_LIMITS.maxNesting) return this.emitError("JSON nesting depth limit exceeded");
    this.tokens.push(bad !== undefined ? { type, bad } : raw === undefined ? { type } : { type, raw });
    this.tokenBytes += len;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    const tokens = this.tokens;
    this.dropMessage();
    try {
      this.out.push({ value: new Parser(tokens).parse() });
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      this.out.push({ error: e.message });
    }
  }

  private emitError(message: string): void {
    this.dropMessage();
    this.out.push({ error: message });
  }

  private dropMessage(): void {
    this.tokens = [];
    this.tokenBytes = 0;
    this.braces = 0;
    this.brackets = 0;
  }
}

type Latin1Slicer = { latin1Slice?: (start: number, end: number) => string };

/** Bytes (ASCII in practice) as a string; Buffer's native slice is the fast path. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const fast = (bytes as Latin1Slicer).latin1Slice;
  if (fast) return fast.call(bytes, start, end);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1", start, end);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Recursive descent over one message's tokens; the first error wins. */
class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): JsonValue {
    return this.value();
  }

  private fail(msg: string): never {
    throw new ParseError(`JSON parse error, ${msg}`);
  }

  private peek(): Token {
    const t = this.tokens[this.i];
    if (!t) this.fail("premature EOI");
    return t;
  }

  private pop(): Token {
    const t = this.tokens[this.i++];
    if (!t) this.fail("premature EOI");
    return t;
  }

  private value(): JsonValue {
    const t = this.peek();
    switch (t.type) {
      case T_LCURLY: return this.object();
      case T_LSQUARE: return this.array();
      case T_INTEGER: this.i++; return integerValue(t.raw!);
      case T_FLOAT: this.i++; return floatValue(t.raw!);
      case T_STRING:
        this.i++;
        if (t.bad !== undefined) this.fail(t.bad);
        return t.raw!;
      case T_KEYWORD: {
        this.i++;
        const kw = t.raw as string;
        if (kw === "true") return true;
        if (kw === "false") return false;
        if (kw === "null") return null;
        return this.fail(`invalid keyword '${kw}'`);
      }
      default:
        return this.fail("expecting value");
    }
  }

  private object(): JsonValue {
    this.i++;
    const obj: { [key: string]: JsonValue } = {};
    if (this.peek().type === T_RCURLY) {
      this.i++;
      return obj;
    }
    for (;;) {
      const keyTok = this.peek();
      const key = this.value();
      if (typeof key !== "string") this.fail("key is not a string in object");
      void keyTok;
      if (this.pop().type !== T_COLON) this.fail("missing : in object pair");
      const val = this.value();
      if (Object.prototype.hasOwnProperty.call(obj, key)) this.fail("duplicate key");
      if (key === "__proto__") Object.defineProperty(obj, key, { value: val, enumerable: true, writable: true, configurable: true });
      else obj[key] = val;
      const sep = this.pop();
      if (sep.type === T_RCURLY) return obj;
      if (sep.type !== T_COMMA) this.fail("expected separator in dict");
    }
  }

  private array(): JsonValue {
    this.i++;
    const list: JsonValue[] = [];
    if (this.peek().type === T_RSQUARE) {
      this.i++;
      return list;
    }
    for (;;) {
      list.push(this.value());
      const sep = this.pop();
      if (sep.type === T_RSQUARE) return list;
      if (sep.type !== T_COMMA) this.fail("expected separator in list");
    }
  }
}

function integerValue(text: string): JsonValue {
  if (text.length <= 15) return Number(text) || 0; // `|| 0` turns -0 into 0
  const big = BigInt(text);
  if (big >= INT64_MIN && big <= UINT64_MAX) {
    return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
  }
  return floatValue(text);
}

function floatValue(text: string): JsonValue {
  const v = Number(text);
  return Number.isInteger(v) ? new JsonFloat(v) : v;
}

/** True for the int64 range (QEMU's QNUM_I64). */
export function isInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

// ---- strings -------------------------------------------------------------

function isValidCodepoint(cp: number): boolean {
  if (cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  return true;
}

const MIN_CP = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * QEMU's modified-UTF-8 decoder: one code point at `p`, or -1 for an invalid
 * sequence (overlong forms except C0 80, surrogates, noncharacters).
 * Returns [codepoint, next offset].
 */
function modUtf8Codepoint(s: Uint8Array, p: number, end: number): [number, number] {
  let byte = s[p++]!;
  if (byte < 0x80) return [byte, p];
  if (byte >= 0xfe || (byte & 0x40) === 0) return [-1, p];
  let len = 0;
  let mask = 0x80;
  for (; byte & mask; mask >>= 1) len++;
  let cp = byte & (mask - 1);
  for (let i = 1; i < len; i++) {
    byte = p < end ? s[p]! : 0;
    if ((byte & 0xc0) !== 0x80) return [-1, p];
    p++;
    cp = (cp << 6) | (byte & 0x3f);
  }
  if (!isValidCodepoint(cp)) return [-1, p];
  if (cp < MIN_CP[len - 2]! && !(cp === 0 && len === 2)) return [-1, p];
  return [cp, p];
}

/** Raw bytes as QEMU would print them: up to the first NUL, bad sequences as U+FFFD. */
export function qemuBytesToString(bytes: Uint8Array): string {
  let end = bytes.indexOf(0);
  if (end < 0) end = bytes.length;
  let out = "";
  for (let p = 0; p < end; ) {
    const [cp, next] = modUtf8Codepoint(bytes, p, end);
    out += String.fromCodePoint(cp < 0 ? 0xfffd : cp);
    p = next;
  }
  return out;
}

function hex4(s: Uint8Array, p: number, end: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = p + i < end ? s[p + i]! : 0;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    cp = (cp << 4) | d;
  }
  return cp;
}

const SIMPLE_ESCAPES: Record<number, string> = {
  0x22: '"', 0x27: "'", 0x5c: "\\", 0x2f: "/", 0x62: "\b", 0x66: "\f", 0x6e: "\n", 0x72: "\r", 0x74: "\t",
};

const INTERN_MAX_LEN = 48;
const internTable = new Map<number, string>();

function intern(bytes: Uint8Array, start: number, end: number, hash: number): string {
  const key = (hash ^ Math.imul(end - start, 0x9e3779b1)) | 0;
  const hit = internTable.get(key);
  if (hit !== undefined && hit.length === end - start) {
    let same = true;
    for (let i = 0; i < hit.length; i++) {
      if (hit.charCodeAt(i) !== bytes[start + i]) { same = false; break; }
    }
    if (same) return hit;
  }
  const s = latin1(bytes, start, end);
  if (internTable.size >= 4096) internTable.clear();
  internTable.set(key, s);
  return s;
}

class StringError {
  constructor(readonly message: string) {}
}

/** A string token (quotes included) to its value, or QEMU's error text for it. */
function decodeString(tok: Uint8Array, len: number): { value?: string; error?: string } {
  try {
    return { value: decodeStringOrThrow(tok, len) };
  } catch (e) {
    if (e instanceof StringError) return { error: e.message };
    throw e;
  }
}

function decodeStringOrThrow(tok: Uint8Array, end: number): string {
  const fail = (msg: string): never => {
    throw new StringError(msg);
  };
  const quote = tok[0]!;
  // Fast path: printable ASCII without escapes; short ones are interned
  // (command names and member names repeat in every request).
  let simple = true;
  let hash = 0;
  for (let i = 1; i < end - 1; i++) {
    const c = tok[i]!;
    if (c === 0x5c || c >= 0x80) { simple = false; break; }
    hash = (Math.imul(hash, 31) + c) | 0;
  }
  if (simple) return end - 2 <= INTERN_MAX_LEN ? intern(tok, 1, end - 1, hash) : latin1(tok, 1, end - 1);

  const parts: number[] = [];
  let out = "";
  const flush = () => {
    out += String.fromCodePoint(...parts);
    parts.length = 0;
  };
  let p = 1;
  while (p < end && tok[p] !== quote) {
    if (parts.length > 4096) flush();
    const c = tok[p]!;
    if (c === 0x5c) {
      const beg = p;
      const e = tok[p + 1]!;
      p += 2;
      const simpleEsc = SIMPLE_ESCAPES[e];
      if (simpleEsc !== undefined) {
        parts.push(simpleEsc.charCodeAt(0));
        continue;
      }
      if (e !== 0x75) fail("invalid escape sequence in string");
      let cp = hex4(tok, p, end);
      p += 4;
      if (cp >= 0xd800 && cp <= 0xdbff && tok[p] === 0x5c && tok[p + 1] === 0x75) {
        const trailing = hex4(tok, p + 2, end);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
          p += 6;
        } else {
          cp = -1;
        }
      }
      if (cp < 0 || !isValidCodepoint(cp)) {
        fail(`${qemuBytesToString(tok.subarray(beg, Math.min(p, end)))} is not a valid Unicode character`);
      }
      parts.push(cp);
      continue;
    }
    const [cp, next] = modUtf8Codepoint(tok, p, end);
    if (cp < 0) fail("invalid UTF-8 sequence in string");
    parts.push(cp);
    p = next;
  }
  flush();
  return out;
}
