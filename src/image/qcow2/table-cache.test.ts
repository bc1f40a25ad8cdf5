import { describe, expect, it } from "vitest";
import type { ByteStore } from "../types.ts";
import { TableCache } from "./table-cache.ts";

function memoryStore(): ByteStore & { reads: number } {
  const bytes = new Uint8Array(1 << 20);
  return {
    reads: 0,
    async size() { return bytes.length; },
    async pread(buf, off) { this.reads++; buf.set(bytes.subarray(off, off + buf.length)); },
    async pwrite(d, off) { bytes.set(d, off); },
    async truncate() {},
    async flush() {},
    async close() {},
  };
}

describe("TableCache", () => {
  it("hit() answers from the cache only, and forgets dropped and trimmed tables", async () => {
    const store = memoryStore();
    const cache = new TableCache(store, 4096, 1);
    expect(cache.hit(0)).toBeUndefined();
    const a = await cache.get(0);
    expect(store.reads).toBe(1);
    expect(cache.hit(0)).toBe(a);
    expect(await cache.get(0)).toBe(a);
    expect(store.reads).toBe(1);
    cache.drop(0);
    expect(cache.hit(0)).toBeUndefined();
    const b = await cache.get(4096);
    const c = await cache.get(8192);
    cache.trim(); // capacity 1: the least recently used clean table goes
    expect(cache.hit(4096)).toBeUndefined();
    expect(cache.hit(8192)).toBe(c);
    expect(b).not.toBe(c);
  });

  it("keeps least-recently-used order when the most recent table is hit again", async () => {
    const cache = new TableCache(memoryStore(), 4096, 2);
    await cache.get(0);
    await cache.get(4096);
    cache.hit(0); // 0 is now the most recent
    cache.hit(0);
    await cache.get(8192);
    cache.trim();
    expect(cache.hit(4096)).toBeUndefined();
    expect(cache.hit(0)).toBeDefined();
  });
});
