/**
 * The transaction engine behind `transaction` and the commands QEMU runs as
 * one-action transactions (blockdev-backup, drive-backup, blockdev-snapshot,
 * blockdev-snapshot-sync): the action table and QEMU's drain around it.
 * Apart from the schema modules on purpose: block.ts uses it, and the
 * schemas import block.ts.
 */
import type { Emulator } from "../emulator.ts";
import { blockdevBackupAction, driveBackupAction, type BackupContext } from "../block/jobs/backup.ts";
import { blockActions, type BlockTxnContext } from "../block/jobs/txn-block-actions.ts";
import { runTransaction, type ActionKindDef } from "../block/jobs/transaction.ts";
import { blockJobPort, transactionDrain } from "../block/jobs/job-port.ts";
import type { BlockdevBackupArgs, DriveBackupArgs } from "./block-jobs-schema.ts";

type TxnContext = BackupContext & BlockTxnContext;

/** Transaction action kinds: the block layer's, plus the two backups (the only grouped ones). */
const ACTIONS: Record<string, ActionKindDef<TxnContext, any>> = {
  ...blockActions,
  "blockdev-backup": { grouped: true, make: (d: BlockdevBackupArgs, ctx, txn) => blockdevBackupAction(d, ctx, txn) },
  "drive-backup": { grouped: true, make: (d: DriveBackupArgs, ctx, txn) => driveBackupAction(d, ctx, txn) },
};

function txnContext(emu: Emulator): TxnContext {
  return {
    layer: emu.block,
    jobs: blockJobPort(emu),
    snapshotMoment: () => {
      const w = emu.clock.wallTime();
      return { realTimeUs: w.seconds * 1e6 + w.microseconds, vmClockNs: Math.floor(emu.machine.vmClockNs()) };
    },
  };
}

export async function transaction(emu: Emulator, actions: { type: string; data: unknown }[], mode: "individual" | "grouped"): Promise<Record<string, never>> {
  if (actions.length === 0) return {};
  await runTransaction(ACTIONS, actions, mode, txnContext(emu), transactionDrain(emu));
  return {};
}

/** blockdev_do_action: a command that QEMU runs as a transaction of one action (with its drain). */
export function runAsTransaction(emu: Emulator, type: string, data: unknown): Promise<Record<string, never>> {
  return transaction(emu, [{ type, data }], "individual");
}
