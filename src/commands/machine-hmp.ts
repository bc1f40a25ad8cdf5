/**
 * HMP commands over the machine, device and fd QMP commands that -M none
 * answers (set_link, netdev_del, device_del, getfd, closefd, balloon,
 * system_wakeup, nmi, watchdog_action), plus the few that exist only in HMP
 * and have nothing to act on without a CPU (cpu, boot_set, stopcapture, sum).
 */
import { genericError } from "../core/error.ts";
import type { CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { hmpVerb, runQmp } from "./hmp-args.ts";


const WATCHDOG_ACTIONS = ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"];

export const commands: CommandDef[] = [];

export const hmpCommands: HmpCommand[] = [
  hmpVerb("set_link", (a, ctx) => {
    const name = a.str();
    const up = a.onOff();
    a.end();
    runQmp(ctx, "set_link", { name, up });
  }),
  hmpVerb("netdev_del", (a, ctx) => {
    const id = a.str();
    a.end();
    runQmp(ctx, "netdev_del", { id });
  }),
  hmpVerb("device_del", (a, ctx) => {
    const id = a.str();
    a.end();
    runQmp(ctx, "device_del", { id });
  }),
  hmpVerb("getfd", (a, ctx) => {
    const fdname = a.str();
    a.end();
    runQmp(ctx, "getfd", { fdname });
  }),
  hmpVerb("closefd", (a, ctx) => {
    const fdname = a.str();
    a.end();
    runQmp(ctx, "closefd", { fdname });
  }),
  hmpVerb("balloon", (a, ctx) => {
    const value = a.mebibytes();
    a.end();
    runQmp(ctx, "balloon", { value });
  }),
  hmpVerb("system_wakeup", (a, ctx) => {
    a.end();
    runQmp(ctx, "system_wakeup");
  }),
  hmpVerb("nmi", (a, ctx) => {
    a.end();
    runQmp(ctx, "inject-nmi");
  }),
  hmpVerb("watchdog_action", (a, ctx) => {
    const action = a.str();
    a.end();
    if (!WATCHDOG_ACTIONS.includes(action)) throw genericError(`invalid parameter value: ${action}`);
    runQmp(ctx, "watchdog-set-action", { action });
  }),
  hmpVerb("calc_dirty_rate", (a, ctx) => {
    const f = a.flags("rb");
    const seconds = a.int64();
    const samplePages = a.optionalInt64();
    a.end();
    if (!seconds) return "Incorrect period length specified!\n";
    if (f.has("r") && f.has("b")) return "Either dirty ring or dirty bitmap can be specified!\n";
    const mode = f.has("b") ? "dirty-bitmap" : f.has("r") ? "dirty-ring" : "page-sampling";
    runQmp(ctx, "calc-dirty-rate", { "calc-time": seconds, ...(samplePages === undefined ? {} : { "sample-pages": samplePages }), mode });
    return `Starting dirty rate measurement with period ${seconds} seconds\n[Please use 'info dirty_rate' to check results]\n`;
  }),
  hmpVerb("cpu", (a) => {
    a.int32();
    a.end();
    return "invalid CPU index\n";
  }),
  hmpVerb("boot_set", (a) => {
    a.str();
    a.end();
    return "no function defined to set boot device list for this architecture\n";
  }),
  hmpVerb("stopcapture", (a) => {
    a.int32();
    a.end();
  }),
  hmpVerb("sum", (a) => {
    a.int32();
    a.int32();
    a.end();
    // No RAM: every byte reads as zero, so the BSD checksum stays zero.
    return "00000\n";
  }),
];
