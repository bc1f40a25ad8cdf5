/**
 * Transaction actions that are not jobs: abort, the dirty-bitmap family and
 * external snapshots. Each applies in prepare and undoes in abort, using
 * the block layer's undoable operations.
 */
import { genericError } from "../../core/error.ts";
import {
  bitmapAdd, bitmapClear, bitmapDisable, bitmapEnable, bitmapMerge, bitmapRemove, type BitmapAddArgs, type BitmapRef, type Undo,
} from "../bitmap-ops.ts";
import type { BlockLayer } from "../index.ts";
import { prepareExternalSnapshot, type PreparedAction, type SnapshotAction } from "../snapshot.ts";
import { dropTakenSnapshot, takeInternalSnapshot, type SnapshotMoment, type TakenSnapshot } from "../internal-snapshot.ts";
import type { BlockJobPort, DrainedSection } from "./common.ts";
import type { ActionKindDef, TxnAction } from "./transaction.ts";

export interface BlockTxnContext {
  readonly layer: BlockLayer;
  /** Drained sections pause the jobs above a node (external snapshots hold one from prepare to clean). */
  readonly jobs?: Pick<BlockJobPort, "drain">;
  /** Wall and guest clocks for internal snapshots (default: wall clock, guest clock 0). */
  readonly snapshotMoment?: () => SnapshotMoment;
}

type BitmapName = { node: string; name: string };

/** An action whose prepare returns its own undo. */
function undoable(apply: () => Undo | Promise<Undo>): TxnAction {
  let undo: Undo | null = null;
  return {
    async prepare() {
      undo = await apply();
    },
    abort() {
      undo?.();
      undo = null;
    },
  };
}

function snapshotAction(ctx: BlockTxnContext, a: SnapshotAction): TxnAction {
  let prepared: PreparedAction | null = null;
  // external_snapshot_prepare's drained_begin on the old node, paired with clean (failure or not).
  let drained: DrainedSection | null = null;
  return {
    async prepare() {
      prepared = await prepareExternalSnapshot(ctx.layer, a, (node) => {
        drained = ctx.jobs?.drain(node) ?? null;
      });
    },
    async commit() {
      await prepared?.commit();
    },
    async abort() {
      await prepared?.abort();
      prepared = null;
    },
    clean() {
      drained?.end();
      drained = null;
    },
  };
}

/** internal_snapshot_prepare / _abort / _clean: abort deletes the snapshot prepare took. */
function internalSnapshotAction(ctx: BlockTxnContext, d: { device: string; name: string }): TxnAction {
  let taken: TakenSnapshot | null = null;
  let drained: DrainedSection | null = null;
  const moment = ctx.snapshotMoment ?? (() => ({ realTimeUs: Date.now() * 1000, vmClockNs: 0 }));
  return {
    async prepare() {
      taken = await takeInternalSnapshot(ctx.layer, d.device, d.name, moment, (node) => {
        drained = ctx.jobs?.drain(node) ?? null;
      });
    },
    async abort() {
      if (taken) await dropTakenSnapshot(taken);
      taken = null;
    },
    clean() {
      drained?.end();
      drained = null;
    },
  };
}

export const blockActions: Record<string, ActionKindDef<BlockTxnContext, any>> = {
  abort: {
    make: () => ({
      async prepare() {
        throw genericError("Transaction aborted using Abort action");
      },
    }),
  },
  "block-dirty-bitmap-add": {
    make: (d: BitmapAddArgs, { layer }) => undoable(() => bitmapAdd(layer, d)),
  },
  "block-dirty-bitmap-remove": {
    make: (d: BitmapName, { layer }) => undoable(() => bitmapRemove(layer, d.node, d.name)),
  },
  "block-dirty-bitmap-clear": {
    make: (d: BitmapName, { layer }) => undoable(() => bitmapClear(layer, d.node, d.name)),
  },
  "block-dirty-bitmap-enable": {
    make: (d: BitmapName, { layer }) => undoable(() => bitmapEnable(layer, d.node, d.name)),
  },
  "block-dirty-bitmap-disable": {
    make: (d: BitmapName, { layer }) => undoable(() => bitmapDisable(layer, d.node, d.name)),
  },
  "block-dirty-bitmap-merge": {
    make: (d: { node: string; target: string; bitmaps: BitmapRef[] }, { layer }) =>
      undoable(() => bitmapMerge(layer, d.node, d.target, d.bitmaps)),
  },
  "blockdev-snapshot-sync": {
    make: (d: Omit<Extract<SnapshotAction, { type: "blockdev-snapshot-sync" }>, "type">, ctx) =>
      snapshotAction(ctx, { type: "blockdev-snapshot-sync", ...d }),
  },
  "blockdev-snapshot": {
    make: (d: { node: string; overlay: string }, ctx) => snapshotAction(ctx, { type: "blockdev-snapshot", ...d }),
  },
  "blockdev-snapshot-internal-sync": {
    make: (d: { device: string; name: string }, ctx) => internalSnapshotAction(ctx, d),
  },
};
