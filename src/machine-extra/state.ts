/**
 * Per-emulator state of the machine-extra commands (QOM tree, migration
 * settings), created on first use so the composition root needs no change.
 */
import { Buffer } from "node:buffer";
import { genericError } from "../core/error.ts";
import type { Emulator } from "../emulator.ts";
import { UserObject } from "../qom/user-types.ts";
import { buildTree, type ChardevInfo, type QomTree } from "../qom/tree.ts";
import { DirtyRate } from "./dirty-rate.ts";
import { MigrationSettings } from "./migration.ts";

export interface ExtraState {
  qom: QomTree;
  migration: MigrationSettings;
  /**
   * QEMU loads every QOM module the first time a command lists all types
   * (qom-list-types); the modules' chardev backends appear from then on.
   */
  modulesLoaded: boolean;
  dirtyRate: DirtyRate;
}

const states = new WeakMap<Emulator, ExtraState>();

/** The monitors' socket chardevs as QEMU names them (compat_monitorN for -qmp). */
export function monitorChardevs(emu: Emulator): (ChardevInfo & { filename: string })[] {
  let compat = 0;
  const out: (ChardevInfo & { filename: string })[] = [];
  for (const spec of emu.options.monitors ?? []) {
    const id = spec.id ?? `compat_monitor${compat++}`;
    const c = spec.chardev;
    if (c.kind === "unix") out.push({ id, addr: { type: "unix", path: c.path }, filename: `unix:${c.path},server=on` });
    else if (c.kind === "tcp") {
      out.push({
        id,
        addr: { type: "inet", host: c.host, port: String(c.port) },
        filename: `disconnected:tcp:${c.host}:${c.port},server=on`,
      });
    }
  }
  return out;
}

export function extraState(emu: Emulator): ExtraState {
  let s = states.get(emu);
  if (!s) {
    s = {
      qom: buildTree(monitorChardevs(emu)),
      migration: new MigrationSettings(),
      modulesLoaded: false,
      // process.hrtime reads CLOCK_MONOTONIC, which is QEMU_CLOCK_REALTIME.
      dirtyRate: new DirtyRate(() => Number(process.hrtime.bigint() / 1_000_000_000n)),
    };
    states.set(emu, s);
  }
  return s;
}

/**
 * The bytes of the secret object `id` (object-add qom-type=secret), for
 * options that name a secret (key-secret, password-secret, ...), with
 * QEMU's errors when there is none.
 */
export function lookupSecret(emu: Emulator, id: string): Buffer {
  const obj = extraState(emu).qom.objects().children.get(id);
  if (!obj) throw genericError(`No secret with id '${id}'`);
  const bytes = obj instanceof UserObject && obj.typename === "secret" ? (obj.state.bytes as (() => Buffer) | undefined) : undefined;
  if (!bytes) throw genericError(`Object with id '${id}' is not a secret`);
  return bytes();
}
