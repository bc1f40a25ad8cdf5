/**
 * One clock object that everything time-based reads (rate limits, job pacing,
 * event timestamps), so tests and qtest's clock_step can drive time instead of
 * sleeping.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic nanoseconds since the emulator started. */
  nowNs(): number;
  /** Wall clock for event timestamps. */
  wallTime(): { seconds: number; microseconds: number };
  /** Run `fn` once `delayNs` nanoseconds of this clock have passed. */
  setTimer(delayNs: number, fn: () => void): Timer;
  /** A promise that resolves after `delayNs` nanoseconds of this clock. */
  sleep(delayNs: number): Promise<void>;
}

function wallFromMs(ms: number): { seconds: number; microseconds: number } {
  const us = Math.floor(ms * 1000);
  return { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 };
}

export class RealClock implements Clock {
  private readonly origin = performance.now();

  nowNs(): number {
    return Math.round((performance.now() - this.origin) * 1e6);
  }

  wallTime() {
    return wallFromMs(performance.timeOrigin + performance.now());
  }

  setTimer(delayNs: number, fn: () => void): Timer {
    const handle = setTimeout(fn, Math.max(0, delayNs / 1e6));
    return { cancel: () => clearTimeout(handle) };
  }

  sleep(delayNs: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(delayNs, resolve));
  }
}

interface PendingTimer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to (qtest's clock_step / clock_set).
 * Wall time still comes from the host so event timestamps stay plausible.
 */
export class VirtualClock implements Clock {
  private now = 0;
  private seq = 0;
  private timers: PendingTimer[] = [];

  nowNs(): number {
    return this.now;
  }

  wallTime() {
    return wallFromMs(Date.now());
  }

  setTimer(delayNs: number, fn: () => void): Timer {
    const t: PendingTimer = { due: this.now + Math.max(0, delayNs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(t);
    return { cancel: () => void (t.cancelled = true) };
  }

  sleep(delayNs: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(delayNs, resolve));
  }

  /** Advance by `ns` (or to the next deadline when omitted); returns the new time. */
  step(ns?: number): number {
    const live = this.timers.filter((t) => !t.cancelled);
    const target = ns ?? (live.length ? Math.min(...live.map((t) => t.due)) - this.now : 0);
    return this.set(this.now + Math.max(0, target));
  }

  /** Move to absolute time `ns` (never backwards), firing due timers in order. */
  set(ns: number): number {
    if (ns < this.now) return this.now;
    this.now = ns;
    const due = this.timers
      .filter((t) => !t.cancelled && t.due <= ns)
      .sort((a, b) => a.due - b.due || a.seq - b.seq);
    this.timers = this.timers.filter((t) => !t.cancelled && t.due > ns);
    for (const t of due) t.fn();
    return this.now;
  }
}
