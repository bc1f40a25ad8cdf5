/**
 * One human monitor (HMP, QEMU's "readline" mode) connection, transport-free
 * like the QMP session: a banner and the "(qemu) " prompt, every keystroke
 * echoed by the line editor, and each entered line run by an HmpHost.
 *
 * Lines go through the shared in-band dispatcher (src/qmp/dispatcher.ts) so
 * they are serialised with QMP commands. While one runs the monitor reads
 * nothing more (QEMU suspends the monitor and reads an HMP chardev a byte at
 * a time), so keystrokes typed ahead are echoed after the command's output
 * and the new prompt, as QEMU shows them. Events are not shown here.
 */
import type { InBandQueue } from "../qmp/dispatcher.ts";
import type { Transport } from "../qmp/transport.ts";
import { LineEditor } from "./line-editor.ts";

const PROMPT = "(qemu) ";

/** What an HMP monitor needs from the emulator. */
export interface HmpHost {
  /** The banner's version, e.g. "7.2.0". */
  version(): string;
  /** Runs one command line; resolves with its output (CRLF line ends). */
  run(line: string, session: HmpSession): Promise<string>;
  /** True once the emulator is going down: no new prompt then (QEMU's quit suspends the monitor). */
  quitting(): boolean;
}

/** Where entered lines wait to run: the shared Dispatcher. */
export interface LineScheduler {
  enqueue(session: HmpSession): void;
}

let nextHmpId = 1_000_000;

export class HmpSession implements InBandQueue<string> {
  /** For commands that ask who called (SessionInfo); HMP has no OOB. */
  readonly id = nextHmpId++;
  readonly oob = false;
  /** Entered lines waiting for the dispatcher (at most one). */
  readonly queue: string[] = [];
  inReadyList = false;
  private readonly editor = new LineEditor(PROMPT);
  /** Received bytes not yet fed to the editor. */
  private pending: Uint8Array[] = [];
  private waitingForCommand = false;
  private closed = false;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly host: HmpHost,
    private readonly scheduler: LineScheduler,
  ) {
    transport.onData((chunk) => this.receive(chunk));
    transport.onClose(() => this.disconnected());
    transport.write(`QEMU ${host.version()} monitor - type 'help' for more information\r\n${PROMPT}`);
    this.editor.promptShown();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    this.pending.push(chunk);
    this.pump();
  }

  /** Feeds buffered bytes to the editor until a line is entered. */
  private pump(): void {
    let echo = "";
    while (!this.waitingForCommand && !this.closed && this.pending.length) {
      const chunk = this.pending[0]!;
      let i = 0;
      for (; i < chunk.length && !this.waitingForCommand; i++) {
        const r = this.editor.key(chunk[i]!);
        echo += r.echo;
        if (r.line !== undefined) this.enter(r.line);
      }
      if (i < chunk.length) this.pending[0] = chunk.subarray(i);
      else this.pending.shift();
    }
    if (echo) this.transport.write(Buffer.from(echo, "latin1"));
  }

  private enter(line: string): void {
    this.waitingForCommand = true;
    this.transport.pause();
    this.queue.push(line);
    this.scheduler.enqueue(this);
  }

  /** Runs the entered line (called by the dispatcher); output, then a fresh prompt. */
  runInBand(line: string): Promise<void> {
    return this.host.run(line, this).then(
      (out) => this.finish(out),
      (e: unknown) => this.finish(`${(e as { desc?: string }).desc ?? (e instanceof Error ? e.message : String(e))}\r\n`),
    );
  }

  private finish(out: string): void {
    if (this.closed) return;
    if (this.host.quitting()) {
      if (out) this.transport.write(out);
      return;
    }
    this.transport.write(out + PROMPT);
    this.editor.promptShown();
  }

  /** Called by the dispatcher after the line ran: read on. */
  resume(): void {
    if (this.closed || !this.waitingForCommand || this.host.quitting()) return;
    this.waitingForCommand = false;
    this.transport.resume();
    this.pump();
  }

  /** Server side close: ends the stream after what was written. */
  close(): void {
    if (this.closed) return;
    this.transport.close();
    this.disconnected();
  }

  private disconnected(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.queue.length = 0;
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}
