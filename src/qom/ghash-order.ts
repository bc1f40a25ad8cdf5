/**
 * The iteration order of a GLib (2.74) string-keyed GHashTable, simulated:
 * QEMU keeps an object's properties (its children among them) in one, so
 * qom-list, query-iothreads and query-memdev list objects in this order
 * (reversed, as they prepend). Only positions are tracked, never values.
 *
 * Model: open addressing over 2^shift slots with quadratic probing; the
 * home slot is (hash * 11) % prime(shift); removed entries leave
 * tombstones; the table is rebuilt in place when it gets too full or too
 * empty, which is what makes the order depend on the history.
 */

/** Largest prime below 2^shift, per shift (GLib's table). */
const PRIME_MOD = [
  1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287,
  1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909, 1073741789,
  2147483647,
];
const MIN_SHIFT = 3;
const UNUSED = 0;
const TOMBSTONE = 1;

/** g_str_hash: djb2 over the bytes taken as signed chars. */
export function gStrHash(key: string): number {
  let h = 5381;
  for (const b of Buffer.from(key, "utf8")) {
    const c = b >= 128 ? b - 256 : b;
    h = (Math.imul(h, 33) + c) >>> 0;
  }
  return h;
}

export class GHashOrder {
  private size = 1 << MIN_SHIFT;
  private mod = PRIME_MOD[MIN_SHIFT]!;
  private mask = this.size - 1;
  private hashes: number[] = new Array(this.size).fill(UNUSED);
  private keys: (string | undefined)[] = new Array(this.size).fill(undefined);
  private nnodes = 0;
  private noccupied = 0;

  private home(hash: number): number {
    // guint arithmetic: the product wraps at 2^32 before the modulo.
    return (Math.imul(hash, 11) >>> 0) % this.mod;
  }

  private static realHash(key: string): number {
    const h = gStrHash(key);
    return h < 2 ? 2 : h;
  }

  /** g_hash_table_lookup_node: the key's slot, or where it would go (first tombstone on the way). */
  private lookup(key: string, hash: number): number {
    let i = this.home(hash);
    let step = 0;
    let tombstone = -1;
    while (this.hashes[i] !== UNUSED) {
      if (this.hashes[i] === hash && this.keys[i] === key) return i;
      if (this.hashes[i] === TOMBSTONE && tombstone < 0) tombstone = i;
      step++;
      i = (i + step) & this.mask;
    }
    return tombstone >= 0 ? tombstone : i;
  }

  has(key: string): boolean {
    const i = this.lookup(key, GHashOrder.realHash(key));
    return this.hashes[i]! >= 2;
  }

  insert(key: string): void {
    const hash = GHashOrder.realHash(key);
    const i = this.lookup(key, hash);
    const old = this.hashes[i]!;
    if (old >= 2) return;
    this.hashes[i] = hash;
    this.keys[i] = key;
    this.nnodes++;
    if (old === UNUSED) {
      this.noccupied++;
      this.maybeResize();
    }
  }

  remove(key: string): void {
    const i = this.lookup(key, GHashOrder.realHash(key));
    if (this.hashes[i]! < 2) return;
    this.hashes[i] = TOMBSTONE;
    this.keys[i] = undefined;
    this.nnodes--;
    this.maybeResize();
  }

  /** Keys in iteration order (slot order). */
  order(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.size; i++) if (this.hashes[i]! >= 2) out.push(this.keys[i]!);
    return out;
  }

  private maybeResize(): void {
    const { size, noccupied } = this;
    if ((size > this.nnodes * 4 && size > 1 << MIN_SHIFT) || size <= noccupied + Math.floor(noccupied / 16)) this.resize();
  }

  private setShiftFromSize(n: number): void {
    let shift = 0;
    while (n) {
      n >>= 1;
      shift++;
    }
    shift = Math.max(shift, MIN_SHIFT);
    this.size = 1 << shift;
    this.mod = PRIME_MOD[shift]!;
    this.mask = this.size - 1;
  }

  /** In-place rehash: entries move in slot order, displacing not-yet-moved ones (GLib's resize_set/map). */
  private resize(): void {
    const oldSize = this.size;
    this.setShiftFromSize(Math.trunc(this.nnodes * 1.333));
    for (let i = oldSize; i < this.size; i++) {
      this.hashes[i] = UNUSED;
      this.keys[i] = undefined;
    }
    const placed = new Array<boolean>(Math.max(this.size, oldSize)).fill(false);
    for (let i = 0; i < oldSize; i++) {
      let hash = this.hashes[i]!;
      if (hash < 2) {
        this.hashes[i] = UNUSED;
        continue;
      }
      if (placed[i]) continue;
      this.hashes[i] = UNUSED;
      let key = this.keys[i];
      this.keys[i] = undefined;
      for (;;) {
        let j = this.home(hash);
        let step = 0;
        while (placed[j]) {
          step++;
          j = (j + step) & this.mask;
        }
        placed[j] = true;
        const replacedHash = this.hashes[j]!;
        const replacedKey = this.keys[j];
        this.hashes[j] = hash;
        this.keys[j] = key;
        if (replacedHash < 2) break;
        hash = replacedHash;
        key = replacedKey;
      }
    }
    this.hashes.length = this.size;
    this.keys.length = this.size;
    this.noccupied = this.nnodes;
  }
}
