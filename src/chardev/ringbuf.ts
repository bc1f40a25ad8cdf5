/**
 * The ringbuf (alias memory) chardev's buffer, with QEMU 7.2's semantics:
 * a power-of-two sized ring that keeps the newest bytes (a write larger
 * than the free space drops the oldest), read destructively.
 *
 * Plus the byte conversions ringbuf-write and ringbuf-read do at the QMP
 * boundary: QEMU's strings are C strings in modified UTF-8 (U+0000 is
 * C0 80), and its base64 decoder is glib's, which skips nothing but
 * newlines and quietly drops an incomplete last group.
 */
import { Buffer } from "node:buffer";
import { genericError } from "../core/error.ts";

export const DEFAULT_RINGBUF_SIZE = 65536;

export class RingBuffer {
  private readonly buf: Uint8Array;
  /** Free-running producer and consumer counters, as in char-ringbuf.c. */
  private prod = 0;
  private cons = 0;

  constructor(readonly size: number) {
    this.buf = new Uint8Array(size);
  }

  get count(): number {
    return this.prod - this.cons;
  }

  write(bytes: Uint8Array): void {
    // A ring of size 0 (which QEMU accepts) has no room for anything.
    if (this.size === 0) return;
    const mask = this.size - 1;
    for (const b of bytes) {
      this.buf[this.prod++ & mask] = b;
      if (this.prod - this.cons > this.size) this.cons = this.prod - this.size;
    }
  }

  read(max: number): Uint8Array {
    const n = Math.min(max, this.count);
    const out = new Uint8Array(n);
    const mask = this.size - 1;
    for (let i = 0; i < n; i++) out[i] = this.buf[this.cons++ & mask]!;
    return out;
  }
}

/** QEMU's check: 0 and positive powers of two (a negative size wraps to a huge size_t). */
export function validRingbufSize(size: number): boolean {
  return size >= 0 && (size === 0 || (size & (size - 1)) === 0) && Number.isSafeInteger(size);
}

/** A QMP string as the bytes QEMU holds for it: UTF-8, with U+0000 as C0 80. */
export function qemuStringBytes(s: string): Uint8Array {
  const utf8 = Buffer.from(s, "utf8");
  if (!utf8.includes(0)) return utf8;
  const out: number[] = [];
  for (const b of utf8) b === 0 ? out.push(0xc0, 0x80) : out.push(b);
  return Uint8Array.from(out);
}

const BASE64_VALID = /^[A-Za-z0-9+/=\n]*$/;
const RANK = new Int16Array(256).fill(-1);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => (RANK[c.charCodeAt(0)] = i));
RANK["=".charCodeAt(0)] = 0;

/** qbase64_decode over g_base64_decode: QEMU's error for stray characters, glib's leniency otherwise. */
export function decodeBase64(text: string): Uint8Array {
  if (!BASE64_VALID.test(text)) throw genericError("Base64 data contains invalid characters");
  const out: number[] = [];
  let v = 0;
  let i = 0;
  let last0 = 0;
  let last1 = 0;
  for (let p = 0; p < text.length; p++) {
    const c = text.charCodeAt(p);
    const rank = RANK[c]!;
    if (rank < 0) continue; // newline
    last1 = last0;
    last0 = c;
    v = ((v << 6) | rank) >>> 0;
    if (++i === 4) {
      out.push((v >> 16) & 0xff);
      if (last1 !== 0x3d) out.push((v >> 8) & 0xff);
      if (last0 !== 0x3d) out.push(v & 0xff);
      i = 0;
    }
  }
  return Uint8Array.from(out);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
