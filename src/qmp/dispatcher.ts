/**
 * The single in-band dispatcher shared by every monitor (QEMU's
 * monitor_qmp_dispatcher_co): one request at a time, round robin between
 * sessions with queued requests, replies in request order per session.
 *
 * Flow control follows QEMU 7.2: with OOB on, a session whose queue was full
 * resumes reading as soon as one request is taken out (before it runs), so
 * exec-oob can get through while it executes; with OOB off the session
 * resumes only after the reply is sent (strict lock-step).
 */
import { QUEUE_MAX, type RequestScheduler } from "./session.ts";

/**
 * What the dispatcher needs of a monitor with queued in-band work: QMP
 * sessions, and HMP sessions (src/hmp/session.ts) whose lines share the queue.
 */
export interface InBandQueue<T = unknown> {
  inReadyList: boolean;
  readonly isClosed: boolean;
  readonly queue: T[];
  /** Whether the monitor negotiated OOB (never for HMP). */
  readonly oob: boolean;
  resume(): void;
  runInBand(item: T): void | Promise<void>;
}

/** Requests run back to back before yielding to I/O, so sockets stay serviced. */
const BATCH = 2048;

export class Dispatcher implements RequestScheduler {
  private ready: InBandQueue[] = [];
  private head = 0;
  private running = false;

  enqueue(session: InBandQueue): void {
    if (!session.inReadyList) {
      session.inReadyList = true;
      this.ready.push(session);
    }
    if (!this.running) this.loop();
  }

  /** True while a request is executing or queued anywhere. */
  get busy(): boolean {
    return this.running;
  }

  private take(): InBandQueue | undefined {
    while (this.head < this.ready.length) {
      const s = this.ready[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.ready.length) {
        this.ready = this.ready.slice(this.head);
        this.head = 0;
      }
      s.inReadyList = false;
      if (!s.isClosed && s.queue.length) return s;
    }
    return undefined;
  }

  private loop(): void {
    this.running = true;
    for (let n = 0; n < BATCH; n++) {
      const s = this.take();
      if (!s) {
        this.running = false;
        return;
      }
      const item = s.queue.shift()!;
      if (s.queue.length) {
        s.inReadyList = true;
        this.ready.push(s);
      }
      const oob = s.oob;
      if (oob && s.queue.length === QUEUE_MAX - 1) s.resume();
      const pending = s.runInBand(item);
      if (pending) {
        void pending.then(() => {
          if (!oob) s.resume();
          this.loop();
        });
        return;
      }
      if (!oob) s.resume();
    }
    // Yield to the event loop, then carry on.
    setImmediate(() => this.loop());
  }
}
