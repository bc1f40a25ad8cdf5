// Placeholder until the block layer lands (issue 3); the composition root
// builds one BlockLayer per emulator.
import type { Clock } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";

export interface BlockLayerDeps {
  readonly events: EventSink;
  readonly clock: Clock;
}

export class BlockLayer {
  constructor(readonly deps: BlockLayerDeps) {}
  async close(): Promise<void> {}
}
