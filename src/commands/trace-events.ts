/**
 * trace-event-get-state / trace-event-set-state over QEMU 7.2's list of
 * trace events (recorded in ./data/trace-events.ts). Nothing is traced:
 * the commands keep each event's enabled flag, as QEMU's dynamic state,
 * per emulator. Patterns are glib's simple globs (`*` and `?`); a name is
 * a pattern only when it contains `*`, as in trace/control.c.
 */
import { Buffer } from "node:buffer";
import { genericError } from "../core/error.ts";
import { lazyBuiltin } from "../core/lazy-builtin.ts";
import type { Emulator } from "../emulator.ts";
import { TRACE_EVENTS_GZ, UNAVAILABLE_TRACE_EVENTS, VCPU_TRACE_EVENTS } from "./data/trace-events.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { array, asUint32, bool, enumOf, int, optional, str, struct } from "./qapi.ts";

/** node:zlib on first use: the list is decoded only when a trace command asks (startup is a measured target). */
const zlib = lazyBuiltin<typeof import("node:zlib")>("node:zlib");

let names: string[] | undefined;

/** The events in trace-event-get-state's order (decoded on first use: 4000-odd names). */
function allEvents(): string[] {
  if (names) return names;
  const lines = zlib().gunzipSync(Buffer.from(TRACE_EVENTS_GZ, "base64")).toString("utf8").split("\n");
  let prev = "";
  names = lines.map((line) => (prev = prev.slice(0, line.charCodeAt(0) - 48) + line.slice(1)));
  return names;
}

const unavailable = new Set(UNAVAILABLE_TRACE_EVENTS);
const vcpuEvents = new Set(VCPU_TRACE_EVENTS);

/** g_pattern_match_simple. */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "s");
}

const enabledByEmu = new WeakMap<Emulator, Set<string>>();
const enabled = (emu: Emulator) => {
  let s = enabledByEmu.get(emu);
  if (!s) enabledByEmu.set(emu, (s = new Set()));
  return s;
};

/** get_cpu and check_events: QEMU's checks before anything is read or changed. */
function matching(name: string, vcpu: number | bigint | undefined, ignoreUnavailable: boolean): string[] {
  // -M none has no vCPUs.
  // QEMU passes the int64 on as an unsigned int.
  if (vcpu !== undefined) throw genericError(`invalid vCPU index ${asUint32(vcpu)}`);
  const re = glob(name);
  const found = allEvents().filter((n) => re.test(n));
  if (!name.includes("*")) {
    if (!allEvents().includes(name)) throw genericError(`unknown event "${name}"`);
  }
  if (!ignoreUnavailable) {
    // QEMU walks in its own order, the reverse of the listing, and names the first it meets.
    const off = [...found].reverse().find((n) => unavailable.has(n));
    if (off) throw genericError(`event "${off}" is disabled`);
  }
  return found;
}

const TraceEventState = enumOf("TraceEventState", ["unavailable", "disabled", "enabled"]);

export const commands: CommandDef[] = [
  defineCommand({
    name: "trace-event-get-state",
    args: struct("q_obj_trace-event-get-state-arg", { name: str(), vcpu: optional(int()) }),
    returns: array(struct("TraceEventInfo", { name: str(), state: TraceEventState, vcpu: bool() })),
    handler: ({ name, vcpu }, { emu }) => {
      const on = enabled(emu);
      return matching(name, vcpu, true).map((n) => ({
        name: n,
        vcpu: vcpuEvents.has(n),
        state: unavailable.has(n) ? "unavailable" : on.has(n) ? "enabled" : "disabled",
      }));
    },
  }),
  defineCommand({
    name: "trace-event-set-state",
    args: struct("q_obj_trace-event-set-state-arg", {
      name: str(),
      enable: bool(),
      "ignore-unavailable": optional(bool()),
      vcpu: optional(int()),
    }),
    handler: ({ name, enable, "ignore-unavailable": ignore, vcpu }, { emu }) => {
      const on = enabled(emu);
      for (const n of matching(name, vcpu, ignore ?? false)) {
        if (unavailable.has(n)) continue;
        if (enable) on.add(n);
        else on.delete(n);
      }
    },
  }),
];

export const hmpCommands: HmpCommand[] = [];
