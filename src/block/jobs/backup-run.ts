/**
 * The backup job's body, over a small runtime interface so it does not
 * depend on how the job layer spells pause points, progress and error
 * policies (the adapter lives in ./backup.ts).
 */
import { BlockCopy, CopyFailure } from "./block-copy.ts";
import type { SyncMode } from "./backup-bitmap.ts";

export type OnError = "report" | "ignore" | "enospc" | "stop" | "auto";

/** What the backup loop needs from its job. */
export interface BackupRuntime {
  /** Parks while paused; returns at once otherwise. */
  pausePoint(): Promise<void>;
  readonly cancelled: boolean;
  /** Resolves when the job is cancelled (sync none waits for this). */
  whenCancelled(): Promise<void>;
  workDone(bytes: number): void;
  setRemaining(bytes: number): void;
  /** Sleeps as the job's speed demands after `bytes` were issued. */
  rateLimit(bytes: number): Promise<void>;
  /**
   * BLOCK_JOB_ERROR and the policy: resolves to retry (ignore; stop once
   * resumed), throws to fail the job (report).
   */
  ioError(op: "read" | "write", policy: OnError, failure: CopyFailure): Promise<void>;
}

export interface BackupPlan {
  sync: Exclude<SyncMode, "incremental">;
  onSourceError: OnError;
  onTargetError: OnError;
}

/** Yield to the event loop this often so monitors stay responsive (bytes). */
const YIELD_EVERY = 4 << 20;
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

export async function runBackup(rt: BackupRuntime, bc: BlockCopy, plan: BackupPlan): Promise<void> {
  bc.onProgress = (n) => rt.workDone(n);
  if (plan.sync === "none") {
    // Only copy-before-write copies; the job ends by cancel.
    await rt.whenCancelled();
    return;
  }
  if (plan.sync === "top") {
    await bc.resetUnallocated(yieldToLoop);
    rt.setRemaining(bc.remainingBytes());
  }
  let sinceYield = 0;
  for (;;) {
    await rt.pausePoint();
    if (rt.cancelled) return;
    let n: number;
    try {
      n = await bc.copyNext();
    } catch (e) {
      if (!(e instanceof CopyFailure)) throw e;
      await rt.ioError(e.op, e.op === "read" ? plan.onSourceError : plan.onTargetError, e);
      continue;
    }
    if (n === 0) break;
    sinceYield += n;
    await rt.rateLimit(n);
    if (sinceYield >= YIELD_EVERY) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
  // The target must be durable before the job can report success.
  for (;;) {
    try {
      await bc.flushTarget();
      return;
    } catch (e) {
      if (!(e instanceof CopyFailure)) throw e;
      await rt.ioError("write", plan.onTargetError, e);
    }
  }
}
