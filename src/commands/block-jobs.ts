/**
 * blockdev-create, blockdev-backup, drive-backup and transaction.
 * The two backup commands are one-action transactions, as in QEMU.
 */
import { genericError } from "../core/error.ts";
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

/**
 * QCryptoBlockCreateOptions' discriminator, which QEMU's input visitor
 * checks (the rest of encrypt stays opaque here: images are never encrypted).
 */
function checkEncryptFormat(options: Record<string, unknown>): void {
  const encrypt = options.encrypt as Record<string, unknown> | undefined;
  if (options.driver !== "qcow2" || !encrypt || typeof encrypt !== "object") return;
  if (!("format" in encrypt)) throw genericError("Parameter 'format' is missing");
  if (encrypt.format !== "qcow" && encrypt.format !== "luks") {
    throw genericError(`Parameter 'format' does not accept value '${String(encrypt.format)}'`);
  }
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
    async handler(args, { emu }) {
      checkCreatableDriver(args.options.driver);
      checkEncryptFormat(args.options as Record<string, unknown>);
      await startCreateJob(emu, args["job-id"], args.options as { driver: string } & Record<string, unknown>);
      return {};
    },
  }),
];

export const hmpCommands: HmpCommand[] = [];
