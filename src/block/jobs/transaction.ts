/**
 * The `transaction` command: every action is prepared in order; the first
 * failure aborts the prepared ones in reverse order and is the command's
 * error; otherwise every action commits in order, then all are cleaned.
 * Single blockdev-backup / drive-backup commands run as one-action
 * transactions, like QEMU.
 *
 * Actions are a table (kind → factory) so the command module and the
 * single-action commands share one implementation.
 */
import { genericError } from "../../core/error.ts";

export interface TxnAction {
  /** Validates and applies or sets up the change; throws QEMU's error. */
  prepare(): Promise<void>;
  /** The transaction succeeded (backup: start the job). */
  commit?(): void | Promise<void>;
  /** A later action failed: undo what prepare did. */
  abort?(): void | Promise<void>;
  /** Always last, success or not. */
  clean?(): void | Promise<void>;
}

export type CompletionMode = "individual" | "grouped";

export interface ActionKindDef<Ctx, Data> {
  /** Only the backup kinds take part in completion-mode grouped. */
  readonly grouped?: boolean;
  make(data: Data, ctx: Ctx, txn: TxnState): TxnAction;
}

/** Shared by the actions of one transaction command. */
export interface TxnState {
  readonly mode: CompletionMode;
  /** Per-transaction storage for action kinds (e.g. the grouped job txn). */
  readonly shared: Map<string, unknown>;
}

export interface TxnHooks {
  /** Around the whole command: the drain QEMU does (jobs' paused/running pairs). */
  drainBegin?(): void | Promise<void>;
  drainEnd?(): void | Promise<void>;
}

export async function runTransaction<Ctx>(
  table: Record<string, ActionKindDef<Ctx, any>>,
  actions: readonly { type: string; data: unknown }[],
  mode: CompletionMode,
  ctx: Ctx,
  hooks: TxnHooks = {},
): Promise<void> {
  const state: TxnState = { mode, shared: new Map() };
  const prepared: TxnAction[] = [];
  await hooks.drainBegin?.();
  try {
    try {
      for (const a of actions) {
        const kind = table[a.type];
        if (!kind) throw genericError(`Parameter 'type' does not accept value '${a.type}'`);
        if (mode === "grouped" && !kind.grouped) {
          throw genericError(`Action '${a.type}' does not support Transaction property completion-mode = grouped`);
        }
        const action = kind.make(a.data, ctx, state);
        prepared.push(action);
        await action.prepare();
      }
    } catch (e) {
      for (const a of [...prepared].reverse()) await a.abort?.();
      for (const a of prepared) await a.clean?.();
      throw e;
    }
    for (const a of prepared) await a.commit?.();
    for (const a of prepared) await a.clean?.();
  } finally {
    await hooks.drainEnd?.();
  }
}
