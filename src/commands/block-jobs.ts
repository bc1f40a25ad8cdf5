/**
 * blockdev-create, blockdev-backup, drive-backup and transaction.
 * The two backup commands are one-action transactions, as in QEMU.
 */
import type { Emulator } from "../emulator.ts";
import { blockdevBackupAction, driveBackupAction, type BackupContext } from "../block/jobs/backup.ts";
import { blockActions, type BlockTxnContext } from "../block/jobs/txn-block-actions.ts";
import { runTransaction, type ActionKindDef } from "../block/jobs/transaction.ts";
import { checkCreatableDriver } from "../block/jobs/create.ts";
import { blockJobPort, startCreateJob, transactionDrain } from "../block/jobs/job-port.ts";
import type { CommandDef } from "./command.ts";
import { defineCommand } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import {
  BlockdevBackup, BlockdevCreateArgs, DriveBackup, TransactionArgs,
  type BlockdevBackupArgs, type DriveBackupArgs,
} from "./block-jobs-schema.ts";

type TxnContext = BackupContext & BlockTxnContext;

/** Transaction action kinds: the block layer's, plus the two backups (the only grouped ones). */
const ACTIONS: Record<string, ActionKindDef<TxnContext, any>> = {
  ...blockActions,
  "blockdev-backup": { grouped: true, make: (d: BlockdevBackupArgs, ctx, txn) => blockdevBackupAction(d, ctx, txn) },
  "drive-backup": { grouped: true, make: (d: DriveBackupArgs, ctx, txn) => driveBackupAction(d, ctx, txn) },
};

function txnContext(emu: Emulator): TxnContext {
  return { layer: emu.block, jobs: blockJobPort(emu) };
}

async function transaction(emu: Emulator, actions: { type: string; data: unknown }[], mode: "individual" | "grouped"): Promise<Record<string, never>> {
  if (actions.length === 0) return {};
  await runTransaction(ACTIONS, actions, mode, txnContext(emu), transactionDrain(emu));
  return {};
}

export const commands: CommandDef[] = [
  defineCommand({
    name: "blockdev-backup",
    args: BlockdevBackup,
    handler: (args, { emu }) => transaction(emu, [{ type: "blockdev-backup", data: args }], "individual"),
  }),
  defineCommand({
    name: "drive-backup",
    args: DriveBackup,
    features: ["deprecated"],
    handler: (args, { emu }) => transaction(emu, [{ type: "drive-backup", data: args }], "individual"),
  }),
  defineCommand({
    name: "transaction",
    args: TransactionArgs,
    handler: (args, { emu }) =>
      transaction(emu, args.actions as { type: string; data: unknown }[], args.properties?.["completion-mode"] ?? "individual"),
  }),
  defineCommand({
    name: "blockdev-create",
    args: BlockdevCreateArgs,
    handler(args, { emu }) {
      checkCreatableDriver(args.options.driver);
      startCreateJob(emu, args["job-id"], args.options as { driver: string } & Record<string, unknown>);
      return {};
    },
  }),
];

export const hmpCommands: HmpCommand[] = [];
