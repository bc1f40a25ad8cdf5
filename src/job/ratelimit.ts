/**
 * QEMU's slice-based rate limiter (include/qemu/ratelimit.h): a quota of
 * units per time slice; once a slice's quota is used up the caller waits
 * until the slice, stretched in proportion to what was dispatched, ends.
 * Pure: the caller passes the current time.
 */

/** BLOCK_JOB_SLICE_TIME: 100 ms. */
export const SLICE_NS = 100_000_000;

export class RateLimit {
  private sliceStart = 0;
  private sliceEnd = 0;
  private quota = 0;
  private sliceNs = SLICE_NS;
  private dispatched = 0;

  /** `speed` units per second; 0 turns throttling off. */
  setSpeed(speed: number, sliceNs: number = SLICE_NS): void {
    this.sliceNs = sliceNs;
    this.quota = speed === 0 ? 0 : Math.max(Math.trunc((speed * sliceNs) / 1e9), 1);
  }

  get enabled(): boolean {
    return this.quota !== 0;
  }

  /**
   * Records that `n` units were just sent at time `nowNs` and returns how
   * long (ns) to wait before sending more; 0 when the slice has room left.
   */
  calculateDelay(nowNs: number, n: number): number {
    if (!this.quota) return 0;
    if (this.sliceEnd < nowNs) {
      // The previous (possibly stretched) slice is over: start afresh.
      this.sliceStart = nowNs;
      this.sliceEnd = nowNs + this.sliceNs;
      this.dispatched = 0;
    }
    this.dispatched += n;
    if (this.dispatched < this.quota) return 0;
    const slices = this.dispatched / this.quota;
    this.sliceEnd = this.sliceStart + Math.trunc(slices * this.sliceNs);
    return this.sliceEnd - nowNs;
  }
}
