// Placeholder until the job layer lands (issue 4).
import type { Clock } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";

export interface JobManagerDeps {
  readonly events: EventSink;
  readonly clock: Clock;
}

export class JobManager {
  constructor(readonly deps: JobManagerDeps) {}
}
