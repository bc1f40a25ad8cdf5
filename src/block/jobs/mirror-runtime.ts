/**
 * What the mirror, stream and commit job bodies need from their job, and
 * small graph helpers they share. The bodies are written against this
 * interface only; ../../commands/block-jobs-sync.ts adapts the job layer's
 * Job to it, so the copy loops stay testable without QMP.
 */
import type { BlockNode } from "../index.ts";

export type OnError = "report" | "ignore" | "enospc" | "stop" | "auto";

export interface JobRuntime {
  readonly id: string;
  /** Parks while paused (user or internal); returns at once otherwise. */
  pausePoint(): Promise<void>;
  /** A force cancel (QEMU's job_is_cancelled): stop at the next check. */
  readonly cancelled: boolean;
  /** Any cancel, soft too (job_cancel_requested). */
  readonly cancelRequested: boolean;
  readonly ready: boolean;
  /** Status → ready, BLOCK_JOB_READY. */
  setReady(): void;
  workDone(bytes: number): void;
  setRemaining(bytes: number): void;
  increaseRemaining(bytes: number): void;
  /** Sleeps as the speed demands after `bytes` were issued (may return at once). */
  rateLimit(bytes: number): Promise<void>;
  /** Sleeps up to `ms` (0 = just yield); complete/cancel/resume wake it early. */
  sleep(ms: number): Promise<void>;
  /**
   * An I/O error under `policy`: BLOCK_JOB_ERROR, then resolves to retry
   * (ignore; stop once resumed) or throws the error to fail the job (report).
   */
  ioError(op: "read" | "write", policy: OnError, error: unknown): Promise<void>;
}

/** QEMU's BLOCK_JOB_SLICE_TIME: how long a ready mirror sleeps between dirty checks. */
export const SLICE_MS = 100;

/** Yield to the event loop at least this often while copying (bytes). */
export const YIELD_EVERY = 4 << 20;

export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

import { skipFilters } from "../node.ts";
export { skipFilters };

/** bdrv_backing_chain_next: the next non-filter layer below `node`'s own COW child. */
export function backingChainNext(node: BlockNode): BlockNode | null {
  const b = skipFilters(node).backing?.node;
  return b ? skipFilters(b) : null;
}

/** bdrv_chain_contains: `node` or any layer below it (filters included) is `other`. */
export function chainContains(node: BlockNode, other: BlockNode): boolean {
  for (let n: BlockNode | undefined = node; n; n = n.cowOrFiltered) if (n === other) return true;
  return false;
}

/** bdrv_find_overlay: the layer whose COW/filtered child is `base` (null: the bottom layer). */
export function findOverlay(top: BlockNode, base: BlockNode | null): BlockNode | null {
  let n: BlockNode | undefined = top;
  while (n && n.cowOrFiltered !== (base ?? undefined)) n = n.cowOrFiltered;
  return n ?? null;
}

/**
 * bdrv_block_status_above(node, NULL): what the whole chain has at `offset`
 * — `data` when some layer holds data, `zero` when it reads as zeros
 * without data. The run is at most `length` bytes.
 */
export async function chainStatus(node: BlockNode, offset: number, length: number): Promise<{ data: boolean; zero: boolean; length: number }> {
  let n = length;
  for (let layer: BlockNode | undefined = node; layer; layer = layer.cowOrFiltered) {
    if (layer.isFilter) continue;
    const size = layer.size();
    if (offset >= size) return { data: false, zero: true, length: n };
    const ext = await layer.blockStatus(offset, Math.min(n, size - offset));
    const len = Math.max(1, Math.min(n, ext.length));
    if (ext.allocated) return { data: ext.data, zero: ext.zero && !ext.data, length: len };
    n = len;
  }
  return { data: false, zero: true, length: n };
}

/** QEMU's bdrv_find_backing_image: a layer below `top` named by a file name as the user wrote it. */
export function findBackingImage(top: BlockNode, name: string, resolve: (overlay: BlockNode, name: string) => string | null): BlockNode | null {
  for (let cur: BlockNode | undefined = top; cur; ) {
    const next = backingChainNext(cur);
    if (!next) return null;
    const fn = next.driver.filename();
    if (fn === name) return next;
    const resolved = resolve(skipFilters(cur), name);
    if (resolved !== null && resolved === fn) return next;
    cur = next;
  }
  return null;
}
