/**
 * One QMP monitor connection, transport-free: bytes in, lines out.
 *
 * It owns the JSON reader, the negotiation state, the OOB setting and the
 * in-band request queue; a shared Dispatcher (./dispatcher.ts) executes the
 * queued requests of all sessions. What commands mean is not known here: a
 * CommandHost finds and runs them.
 */
import { QmpError } from "../core/error.ts";
import type { QmpEvent } from "../core/events.ts";
import { JsonReader, type JsonValue, type ReaderItem } from "../json/reader.ts";
import { frame, qdictOrder } from "../json/writer.ts";
import type { MonitorOptions, Transport } from "./transport.ts";

/** QMP_REQ_QUEUE_LEN_MAX: in-band requests a monitor queues with OOB on. */
export const QUEUE_MAX = 8;

/** Output bytes gathered in one turn before they are handed to the transport early. */
const OUTPUT_HIGH_WATER = 256 * 1024;

export type JsonObject = { [key: string]: JsonValue };

/** What the protocol needs to know about a command. */
export interface CommandEntry {
  readonly allowOob?: boolean;
}

/** Finds and runs commands; the protocol layer knows nothing more about them. */
export interface CommandHost<C extends CommandEntry = CommandEntry> {
  find(name: string): C | undefined;
  /** Validates the arguments and runs the handler; throws QmpError. */
  run(cmd: C, args: JsonObject, session: QmpSession): unknown;
}

export interface GreetingInfo {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
}

/** Where a session's queued requests go: see Dispatcher. */
export interface RequestScheduler {
  enqueue(session: QmpSession): void;
}

const NEGOTIATION_DESC = "Expecting capabilities negotiation with 'qmp_capabilities'";

let nextSessionId = 1;

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function errorReply(err: QmpError, id: JsonValue | undefined, hasId: boolean): JsonObject {
  const rsp: JsonObject = { error: { class: err.errorClass, desc: err.desc } };
  if (hasId) rsp.id = id as JsonValue;
  return rsp;
}

function toQmpError(e: unknown): QmpError {
  if (e instanceof QmpError) return e;
  // A bug below the dispatcher must not take the monitor down.
  console.error("qmpemu: internal error:", e);
  return new QmpError("GenericError", e instanceof Error ? e.message : String(e));
}

export class QmpSession {
  readonly id = nextSessionId++;
  private readonly reader = new JsonReader();
  /** In-band requests (or parse errors) waiting for the dispatcher. */
  readonly queue: ReaderItem[] = [];
  /** Dispatcher bookkeeping: whether this session sits in its ready list. */
  inReadyList = false;
  private negotiated = false;
  private oobEnabled = false;
  private suspended = false;
  /** The transport's output buffer is full: stop reading until it drains. */
  private outputBlocked = false;
  private pumping = false;
  private closed = false;
  /** Output waiting for the end of this turn; always ASCII (the writer escapes). */
  private out = "";
  private outLen = 0;
  private flushScheduled = false;
  private readonly closeListeners: (() => void)[] = [];
  readonly pretty: boolean;
  readonly oobCapable: boolean;
  readonly chardevId: string | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly host: CommandHost,
    private readonly scheduler: RequestScheduler,
    greeting: GreetingInfo,
    opts: MonitorOptions = {},
  ) {
    this.pretty = opts.pretty ?? false;
    this.oobCapable = opts.oobCapable ?? true;
    this.chardevId = opts.chardevId;
    transport.onData((chunk) => this.receive(chunk));
    transport.onClose(() => this.disconnected());
    transport.onDrain?.(() => this.drained());
    this.send({ QMP: { version: greeting.version, capabilities: this.oobCapable ? ["oob"] : [] } });
  }

  /** SessionInfo for commands. */
  get oob(): boolean {
    return this.oobEnabled;
  }

  get inCommandMode(): boolean {
    return this.negotiated;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  /**
   * qmp_capabilities: leave negotiation mode. Throws QEMU's errors; the
   * enable list was already validated against the QMPCapability enum.
   */
  negotiate(enable: readonly string[] = []): void {
    if (this.negotiated) {
      throw new QmpError("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    }
    const unavailable = enable.filter((c) => !(c === "oob" && this.oobCapable));
    if (unavailable.length) throw new QmpError("GenericError", `Capability ${unavailable.join(", ")} not available`);
    this.oobEnabled = enable.includes("oob");
    this.negotiated = true;
  }

  /** Events reach only negotiated sessions; `line` is the pre-framed message. */
  deliverEvent(ev: QmpEvent, compactLine: string): void {
    if (!this.negotiated || this.closed) return;
    this.write(this.pretty ? frame(ev, true) : compactLine);
  }

  // ---- input --------------------------------------------------------------

  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    this.reader.push(chunk);
    this.pump();
  }

  /** Parses buffered input until it runs out or the monitor suspends. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.suspended && !this.outputBlocked && !this.closed) {
        const item = this.reader.next();
        if (!item) break;
        this.accept(item);
        // Bound what one burst of input can pile up before it goes out.
        if (this.outLen > OUTPUT_HIGH_WATER) this.flush();
      }
    } finally {
      this.pumping = false;
    }
  }

  private accept(item: ReaderItem): void {
    const req = item.value;
    // exec-oob without execute bypasses the queue, whether or not OOB is on.
    if (isPlainObject(req) && hasOwn(req, "exec-oob") && !hasOwn(req, "execute")) {
      this.runOutOfBand(req);
      return;
    }
    this.queue.push(item);
    if (!this.oobEnabled || this.queue.length >= QUEUE_MAX) this.suspend();
    this.scheduler.enqueue(this);
  }

  private suspend(): void {
    if (this.suspended) return;
    this.suspended = true;
    if (!this.outputBlocked) this.transport.pause();
  }

  /** Called by the dispatcher when the queue has room again. */
  resume(): void {
    if (!this.suspended || this.closed) return;
    this.suspended = false;
    if (this.outputBlocked) return;
    this.transport.resume();
    this.pump();
  }

  private drained(): void {
    if (!this.outputBlocked || this.closed) return;
    this.outputBlocked = false;
    if (this.suspended) return;
    this.transport.resume();
    this.pump();
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  // ---- execution ----------------------------------------------------------

  private runOutOfBand(req: JsonObject): void {
    const r = this.dispatch(req, this.oobEnabled);
    if (r instanceof Promise) void r.then((rsp) => this.send(rsp));
    else this.send(r);
  }

  /**
   * Runs one dequeued in-band item. Returns a promise only when the command
   * is asynchronous, so the common path stays free of microtasks.
   */
  runInBand(item: ReaderItem): void | Promise<void> {
    if (item.error !== undefined) {
      this.send({ error: { class: "GenericError", desc: item.error } });
      return;
    }
    const r = this.dispatch(item.value, this.oobEnabled);
    if (r instanceof Promise) return r.then((rsp) => this.sendInBand(rsp));
    this.sendInBand(r);
  }

  private sendInBand(rsp: JsonObject): void {
    if (!this.negotiated) {
      const err = rsp.error as JsonObject | undefined;
      // Still negotiating after the request ran: every "not found" becomes the hint.
      if (err && err.class === "CommandNotFound") rsp = { ...rsp, error: { class: "CommandNotFound", desc: NEGOTIATION_DESC } };
    }
    this.send(rsp);
  }

  /** qmp_dispatch: request shape checks in QDict order, lookup, run. */
  private dispatch(req: JsonValue, allowOob: boolean): JsonObject | Promise<JsonObject> {
    if (!isPlainObject(req)) {
      return errorReply(new QmpError("GenericError", "QMP input must be a JSON object"), undefined, false);
    }
    const hasId = hasOwn(req, "id");
    const id = req.id;
    let execKey: string | undefined;
    for (const key of qdictOrder(Object.keys(req))) {
      const val = req[key];
      if (key === "execute" || (key === "exec-oob" && allowOob)) {
        if (typeof val !== "string") return errorReply(new QmpError("GenericError", `QMP input member '${key}' must be a string`), id, hasId);
        if (execKey) return errorReply(new QmpError("GenericError", `QMP input member '${key}' clashes with '${execKey}'`), id, hasId);
        execKey = key;
      } else if (key === "arguments") {
        if (!isPlainObject(val)) return errorReply(new QmpError("GenericError", "QMP input member 'arguments' must be an object"), id, hasId);
      } else if (key !== "id") {
        return errorReply(new QmpError("GenericError", `QMP input member '${key}' is unexpected`), id, hasId);
      }
    }
    if (!execKey) return errorReply(new QmpError("GenericError", "QMP input lacks member 'execute'"), id, hasId);
    const name = req[execKey] as string;
    const oob = execKey === "exec-oob";
    const cmd = this.negotiated || name === "qmp_capabilities" ? this.host.find(name) : undefined;
    if (!cmd) return errorReply(new QmpError("CommandNotFound", `The command ${name} has not been found`), id, hasId);
    if (oob && !cmd.allowOob) return errorReply(new QmpError("GenericError", `The command ${name} does not support OOB`), id, hasId);
    const args = (req.arguments as JsonObject | undefined) ?? {};
    let ret: unknown;
    try {
      ret = this.host.run(cmd, args, this);
    } catch (e) {
      return errorReply(toQmpError(e), id, hasId);
    }
    if (ret instanceof Promise) {
      return ret.then(
        (v) => this.successReply(v, id, hasId),
        (e) => errorReply(toQmpError(e), id, hasId),
      );
    }
    return this.successReply(ret, id, hasId);
  }

  private successReply(ret: unknown, id: JsonValue | undefined, hasId: boolean): JsonObject {
    const rsp: JsonObject = { return: (ret === undefined ? {} : ret) as JsonValue };
    if (hasId) rsp.id = id as JsonValue;
    return rsp;
  }

  // ---- output -------------------------------------------------------------

  send(msg: unknown): void {
    this.write(frame(msg, this.pretty));
  }

  /** Coalesces all lines produced in one turn into a single transport write. */
  private write(line: string): void {
    if (this.closed) return;
    // String concatenation is a cheap rope append; the socket encodes once.
    this.out += line;
    this.outLen += line.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.outLen === 0) return;
    const data = this.out;
    this.out = "";
    this.outLen = 0;
    if (this.transport.write(data) === false && this.transport.onDrain && !this.outputBlocked) {
      this.outputBlocked = true;
      if (!this.suspended) this.transport.pause();
    }
  }

  /** Server side close: flush what is pending, then end the stream. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.transport.close();
    this.disconnected();
  }

  private disconnected(): void {
    if (this.closed) return;
    this.closed = true;
    this.out = "";
    this.outLen = 0;
    this.queue.length = 0;
    this.reader.reset();
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}
