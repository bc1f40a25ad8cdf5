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
import type { ActionKindDef, TxnAction } from "./transaction.ts";

export interface BlockTxnContext {
  readonly layer: BlockLayer;
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

function snapshotAction(layer: BlockLayer, a: SnapshotAction): TxnAction {
  let prepared: PreparedAction | null = null;
  return {
    async prepare() {
      prepared = await prepareExternalSnapshot(layer, a);
    },
    async commit() {
      await prepared?.commit();
    },
    async abort() {
      await prepared?.abort();
      prepared = null;
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
    make: (d: Omit<Extract<SnapshotAction, { type: "blockdev-snapshot-sync" }>, "type">, { layer }) =>
      snapshotAction(layer, { type: "blockdev-snapshot-sync", ...d }),
  },
  "blockdev-snapshot": {
    make: (d: { node: string; overlay: string }, { layer }) => snapshotAction(layer, { type: "blockdev-snapshot", ...d }),
  },
  "blockdev-snapshot-internal-sync": {
    make: (d: { device: string; name: string }, { layer }) => ({
      async prepare() {
        const node = layer.lookupDeviceOrNode(d.device);
        layer.checkOp(node, "internal-snapshot");
        throw genericError(`Block format '${node.driverName}' used by device '${d.device}' does not support internal snapshots`);
      },
    }),
  },
};
