/**
 * The adapter between block-job code (./common.ts BlockJobPort) and the
 * job layer (src/job). Placeholder until the job layer lands.
 */
import { genericError } from "../../core/error.ts";
import type { Emulator } from "../../emulator.ts";
import type { BlockJobPort } from "./common.ts";
import type { TxnHooks } from "./transaction.ts";

export function blockJobPort(_emu: Emulator): BlockJobPort {
  return {
    create() {
      throw genericError("The job layer is not available");
    },
  };
}

export function startCreateJob(_emu: Emulator, _id: string, _options: { driver: string } & Record<string, unknown>): void {
  throw genericError("The job layer is not available");
}

export function transactionDrain(_emu: Emulator, _actions: readonly { type: string; data: unknown }[]): TxnHooks {
  return {};
}
