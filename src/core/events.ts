/**
 * Events flow from the domain (jobs, block layer, machine state) to whatever
 * transport is listening. The domain only knows EventSink.
 */
export interface EventSink {
  emit(event: string, data?: Record<string, unknown>): void;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export type EventListener = (ev: QmpEvent) => void;

export class EventBus implements EventSink {
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly wallTime: () => { seconds: number; microseconds: number }) {}

  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(event: string, data?: Record<string, unknown>): void {
    const ev: QmpEvent = data === undefined
      ? { event, timestamp: this.wallTime() }
      : { event, data, timestamp: this.wallTime() };
    for (const fn of [...this.listeners]) fn(ev);
  }
}
