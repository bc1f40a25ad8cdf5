/**
 * A job's progress: (current, total) in a unit the driver chooses (bytes for
 * block jobs). `current` only grows; `total` is an estimate and may move
 * either way, like QEMU's ProgressMeter.
 */
export class ProgressMeter {
  private done = 0;
  private estimate = 0;

  get current(): number {
    return this.done;
  }

  get total(): number {
    return this.estimate;
  }

  /** `n` more units are done. */
  workDone(n: number): void {
    if (n > 0) this.done += n;
  }

  /** `remaining` units are left: total = current + remaining. */
  setRemaining(remaining: number): void {
    this.estimate = this.done + Math.max(0, remaining);
  }

  /** The work grew (or shrank, with a negative `delta`) by `delta` units. */
  increaseRemaining(delta: number): void {
    this.estimate += delta;
  }
}
