/**
 * All monitor sessions of one emulator: creates them on transports, shares
 * the single in-band dispatcher, and broadcasts events (serialised once) to
 * every negotiated session.
 */
import type { EventBus, QmpEvent } from "../core/events.ts";
import { Dispatcher } from "./dispatcher.ts";
import { frame } from "../json/writer.ts";
import { QmpSession, type CommandHost, type GreetingInfo } from "./session.ts";
import type { MonitorOptions, Transport } from "./transport.ts";

export class MonitorHub {
  readonly dispatcher = new Dispatcher();
  private readonly sessions = new Set<QmpSession>();

  constructor(
    private readonly host: CommandHost,
    private readonly greeting: () => GreetingInfo,
    events: EventBus,
  ) {
    events.subscribe((ev) => this.broadcast(ev));
  }

  attach(transport: Transport, opts: MonitorOptions = {}): QmpSession {
    const s = new QmpSession(transport, this.host, this.dispatcher, this.greeting(), opts);
    this.sessions.add(s);
    s.onClose(() => this.sessions.delete(s));
    return s;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Writes out everything pending now (before a shutdown). */
  flushAll(): void {
    for (const s of this.sessions) s.flush();
  }

  closeAll(): void {
    for (const s of [...this.sessions]) s.close();
  }

  private broadcast(ev: QmpEvent): void {
    let line: string | undefined;
    for (const s of this.sessions) {
      if (!s.inCommandMode) continue;
      line ??= frame(ev);
      s.deliverEvent(ev, line);
    }
  }
}
