/**
 * blockdev-create, blockdev-backup, drive-backup and transaction.
 * The two backup commands are one-action transactions, as in QEMU.
 */
import type { Emulator } from "../emulator.ts";
import { checkCreatableDriver } from "../block/jobs/create.ts";
import { blockJobPort, startCreateJob } from "../block/jobs/job-port.ts";
import { transaction } from "./transactions.ts";
import type { CommandDef } from "./command.ts";
import { defineCommand } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import {
  BlockdevBackup, BlockdevCreateArgs, DriveBackup, TransactionArgs,
} from "./block-jobs-schema.ts";

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
