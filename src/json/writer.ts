/**
 * QEMU's JSON output (qobject/json-writer.c) by behaviour:
 * - ASCII only: other code points as \uXXXX with upper-case hex, astral
 *   ones as surrogate pairs; control chars as \b \f \n \r \t or \u00XX;
 * - compact style `{"a": 1, "b": [1, 2]}`, or QEMU's pretty style (4-space
 *   indent, empty containers as "{\n<indent>}");
 * - integers exact (bigint included), floats with C's %.17g;
 * - object members in QDict iteration order: by hash bucket, and within a
 *   bucket the most recently inserted first — so replies, events and echoed
 *   ids come out in the same member order as real QEMU's.
 * Each message goes on the wire followed by "\r\n" (see frame()).
 */
import { JsonFloat } from "./reader.ts";

const BUCKETS = 512;
const bucketCache = new Map<string, number>();

/** QDict's bucket for a key: tdb_hash(key) % 512 over the UTF-8 bytes. */
export function qdictBucket(key: string): number {
  let b = bucketCache.get(key);
  if (b !== undefined) return b;
  const bytes = Buffer.from(key, "utf8");
  let v = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) v = (v + ((bytes[i]! << ((i * 5) % 24)) >>> 0)) >>> 0;
  b = ((Math.imul(1103515243, v) + 12345) >>> 0) % BUCKETS;
  if (bucketCache.size < 100_000) bucketCache.set(key, b);
  return b;
}

/**
 * Keys in the order QEMU would print them, given insertion order: by QDict
 * bucket, and within a bucket the most recently inserted first. Sorts the
 * given (fresh) array in place: reversed, then a stable insertion sort by
 * bucket, which keeps later-inserted keys first within a bucket.
 */
export function qdictOrder(keys: string[]): string[] {
  const n = keys.length;
  if (n < 2) return keys;
  keys.reverse();
  for (let i = 1; i < n; i++) {
    const k = keys[i]!;
    const b = qdictBucket(k);
    let j = i - 1;
    while (j >= 0 && qdictBucket(keys[j]!) > b) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** The exact decimal digits of a finite positive double and the power of ten of the last digit. */
function exactDecimal(x: number): { digits: string; exp10: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e2: number;
  if (biased === 0) e2 = -1074;
  else {
    mant |= 1n << 52n;
    e2 = biased - 1075;
  }
  if (e2 >= 0) return { digits: (mant << BigInt(e2)).toString(), exp10: 0 };
  // m / 2^k == m * 5^k / 10^k
  return { digits: (mant * 5n ** BigInt(-e2)).toString(), exp10: e2 };
}

/**
 * C's printf("%.17g", x), as QEMU prints every float: exact decimal
 * expansion rounded half-to-even (JS's toFixed/toExponential round ties up).
 */
export function formatG17(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x < 0 ? "-inf" : "inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const sign = x < 0 ? "-" : "";
  const { digits, exp10 } = exactDecimal(Math.abs(x));
  const P = 17;
  let d = digits;
  // Decimal exponent of the leading digit.
  let exp = d.length - 1 + exp10;
  if (d.length > P) {
    const keep = d.slice(0, P);
    const rest = d.slice(P);
    let up = false;
    const first = rest.charCodeAt(0) - 48;
    if (first > 5) up = true;
    else if (first === 5) {
      up = /[1-9]/.test(rest.slice(1)) || (keep.charCodeAt(P - 1) - 48) % 2 === 1;
    }
    let n = BigInt(keep);
    if (up) n += 1n;
    d = n.toString();
    if (d.length > P) {
      d = d.slice(0, P);
      exp += 1;
    }
  }
  d = d.padEnd(P, "0");
  if (exp < -4 || exp >= P) {
    let mant = d[0]! + "." + d.slice(1);
    mant = mant.replace(/0+$/, "").replace(/\.$/, "");
    const abs = Math.abs(exp);
    return `${sign}${mant}e${exp < 0 ? "-" : "+"}${abs < 10 ? "0" : ""}${abs}`;
  }
  let out: string;
  if (exp >= 0) out = d.slice(0, exp + 1) + "." + d.slice(exp + 1);
  else out = "0." + "0".repeat(-exp - 1) + d;
  out = out.replace(/0+$/, "").replace(/\.$/, "");
  return sign + out;
}

const ESCAPES: Record<number, string> = {
  0x22: '\\"', 0x5c: "\\\\", 0x08: "\\b", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t",
};

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

// Printable ASCII except `"` and `\`: the common case, copied as is.
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

export function quoteString(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const esc = ESCAPES[c];
    if (esc) out += esc;
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        // QEMU rejects noncharacters when walking its UTF-8 and prints U+FFFD.
        out += (cp & 0xfffe) === 0xfffe ? "\\uFFFD" : `\\u${hex4(c)}\\u${hex4(lo)}`;
        i++;
      } else out += "\\uFFFD";
    } else if (c >= 0xd800 && c <= 0xdfff) out += "\\uFFFD";
    else if ((c >= 0xfdd0 && c <= 0xfdef) || c >= 0xfffe) out += "\\uFFFD";
    else out += `\\u${hex4(c)}`;
  }
  return out + '"';
}

function writeValue(v: unknown, pretty: boolean, depth: number): string {
  switch (typeof v) {
    case "string":
      return quoteString(v);
    case "number":
      return Number.isInteger(v) && !Object.is(v, -0) ? String(v) : formatG17(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "undefined":
      return "null";
    case "object": {
      if (v === null) return "null";
      if (v instanceof JsonFloat) return formatG17(v.value);
      if (Array.isArray(v)) {
        if (!pretty) {
          let out = "[";
          for (let i = 0; i < v.length; i++) out += (i ? ", " : "") + writeValue(v[i], false, 0);
          return out + "]";
        }
        const inner = "\n" + " ".repeat((depth + 1) * 4);
        let out = "[";
        for (let i = 0; i < v.length; i++) out += (i ? "," : "") + inner + writeValue(v[i], true, depth + 1);
        return out + "\n" + " ".repeat(depth * 4) + "]";
      }
      const obj = v as Record<string, unknown>;
      if (typeof (obj as { toJSON?: unknown }).toJSON === "function") {
        return writeValue((obj as { toJSON(): unknown }).toJSON(), pretty, depth);
      }
      let keys = Object.keys(obj);
      if (keys.length > 1) keys = qdictOrder(keys);
      if (!pretty) {
        let out = "{";
        let first = true;
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i]!;
          const val = obj[k];
          if (val === undefined) continue; // an absent optional member
          out += (first ? "" : ", ") + quoteString(k) + ": " + writeValue(val, false, 0);
          first = false;
        }
        return out + "}";
      }
      const inner = "\n" + " ".repeat((depth + 1) * 4);
      let out = "{";
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const val = obj[k];
        if (val === undefined) continue;
        out += (first ? "" : ",") + inner + quoteString(k) + ": " + writeValue(val, true, depth + 1);
        first = false;
      }
      return out + "\n" + " ".repeat(depth * 4) + "}";
    }
    default:
      return "null";
  }
}

/** One JSON text, QEMU style, without line terminator. */
export function serialize(value: unknown, pretty = false): string {
  return writeValue(value, pretty, 0);
}

/** One message as it goes on the wire: pretty output uses CRLF inside too. */
export function frame(value: unknown, pretty = false): string {
  const text = writeValue(value, pretty, 0);
  return (pretty ? text.replace(/\n/g, "\r\n") : text) + "\r\n";
}
