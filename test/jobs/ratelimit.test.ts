/**
 * The slice rate limiter with QEMU's numbers (ratelimit.h, 100 ms slices):
 * quota = max(1, speed * 0.1 s); no delay while a slice has room; after
 * overshooting, wait until slice start + dispatched/quota slices.
 */
import { describe, expect, it } from "vitest";
import { RateLimit, SLICE_NS } from "../../src/job/index.ts";

const MS = 1_000_000;

describe("RateLimit", () => {
  it("is off at speed 0", () => {
    const r = new RateLimit();
    r.setSpeed(0);
    expect(r.enabled).toBe(false);
    expect(r.calculateDelay(5 * MS, 1 << 30)).toBe(0);
  });

  it("1 MiB/s: 64 KiB fits, the second chunk overshoots to 125 ms", () => {
    const r = new RateLimit();
    r.setSpeed(1 << 20); // quota 104857 bytes per 100 ms
    expect(r.calculateDelay(10 * MS, 65536)).toBe(0);
    expect(r.calculateDelay(10 * MS, 65536)).toBe(Math.trunc((131072 / 104857) * SLICE_NS));
    // asking again during the stretched slice: the rest of the wait
    expect(r.calculateDelay(60 * MS, 0)).toBe(10 * MS + Math.trunc((131072 / 104857) * SLICE_NS) - 60 * MS);
    // at its end: no wait, and the next bytes extend the same slice
    const end = 10 * MS + Math.trunc((131072 / 104857) * SLICE_NS);
    expect(r.calculateDelay(end, 0)).toBe(0);
    expect(r.calculateDelay(end, 65536)).toBe(10 * MS + Math.trunc((196608 / 104857) * SLICE_NS) - end);
    // after the slice ended, accounting starts afresh
    expect(r.calculateDelay(end + SLICE_NS * 5, 1000)).toBe(0);
  });

  it("tiny speeds still get a quota of one unit per slice", () => {
    const r = new RateLimit();
    r.setSpeed(1);
    expect(r.calculateDelay(1, 0)).toBe(0);
    expect(r.calculateDelay(1, 3)).toBe(3 * SLICE_NS - 0); // slice started at 1, 3 slices long
  });

  it("a new speed applies to the running slice's accounting", () => {
    const r = new RateLimit();
    r.setSpeed(10); // quota 1
    expect(r.calculateDelay(MS, 2)).toBe(2 * SLICE_NS);
    r.setSpeed(100); // quota 10: 2 dispatched is within it
    expect(r.calculateDelay(2 * MS, 0)).toBe(0);
  });
});
