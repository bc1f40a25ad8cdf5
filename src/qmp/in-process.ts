/**
 * An in-process monitor connection for tests and embedders: a Transport on
 * the server side and a client that sends JSON (or raw bytes) and receives
 * parsed messages, with no socket in between.
 */
import { JsonReader, type JsonValue } from "../json/reader.ts";
import type { Transport } from "./transport.ts";

type Msg = Record<string, JsonValue>;

export class InProcessClient {
  private readonly reader = new JsonReader();
  private readonly inbox: Msg[] = [];
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void; reject: (e: Error) => void }[] = [];
  private nextId = 1;
  private dataCb: ((chunk: Uint8Array) => void) | undefined;
  private closeCbs: (() => void)[] = [];
  private paused = false;
  private pending: Uint8Array[] = [];
  private ended = false;
  private readonly encoder = new TextEncoder();
  /** Every raw line received, for tests that check bytes. */
  readonly rawLines: string[] = [];
  private partial = "";

  /** The server side: hand this to Emulator.attachTransport. */
  readonly transport: Transport = {
    write: (data) => this.fromServer(typeof data === "string" ? data : new TextDecoder().decode(data)),
    pause: () => void (this.paused = true),
    resume: () => {
      this.paused = false;
      while (!this.paused && this.pending.length) this.dataCb?.(this.pending.shift()!);
    },
    close: () => this.end(),
    onData: (cb) => void (this.dataCb = cb),
    onClose: (cb) => void this.closeCbs.push(cb),
  };

  /** Whether the server side has stopped reading (monitor suspended). */
  get serverPaused(): boolean {
    return this.paused;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Sends raw bytes (JSON text, broken JSON, anything). */
  sendRaw(data: string | Uint8Array): void {
    if (this.ended) throw new Error("connection closed");
    const bytes = typeof data === "string" ? this.encoder.encode(data) : data;
    if (this.paused || this.pending.length) this.pending.push(bytes);
    else this.dataCb?.(bytes);
  }

  send(msg: unknown): void {
    this.sendRaw(JSON.stringify(msg));
  }

  /** Sends `{"execute": name, "arguments": args, "id": n}` and resolves with the reply. */
  async execute(name: string, args?: Record<string, unknown>): Promise<Msg> {
    const id = `c${this.nextId++}`;
    const reply = this.next((m) => m.id === id && ("return" in m || "error" in m));
    this.send(args === undefined ? { execute: name, id } : { execute: name, arguments: args, id });
    return reply;
  }

  /** The next received message matching `pred` (default: any), waiting if needed. */
  next(pred: (m: Msg) => boolean = () => true, timeoutMs = 10_000): Promise<Msg> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error("timeout waiting for a QMP message"));
      }, timeoutMs);
      w.resolve = (m) => {
        clearTimeout(t);
        resolve(m);
      };
      this.waiters.push(w);
    });
  }

  /** Messages received and not yet taken. */
  drain(): Msg[] {
    return this.inbox.splice(0);
  }

  /** Client side disconnect. */
  close(): void {
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const cb of this.closeCbs.splice(0)) cb();
  }

  private fromServer(text: string): void {
    const all = this.partial + text;
    const lines = all.split("\r\n");
    this.partial = lines.pop()!;
    for (const l of lines) if (l) this.rawLines.push(l);
    this.reader.push(this.encoder.encode(text));
    for (let it = this.reader.next(); it; it = this.reader.next()) {
      if (it.error !== undefined) throw new Error(`server sent bad JSON: ${it.error}`);
      const msg = it.value as Msg;
      const w = this.waiters.find((x) => x.pred(msg));
      if (w) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(msg);
      } else this.inbox.push(msg);
    }
  }
}
