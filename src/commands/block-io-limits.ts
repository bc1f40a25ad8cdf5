/**
 * Per-backend I/O settings and chain maintenance: block_set_io_throttle
 * (QMP and HMP), block-latency-histogram-set and change-backing-file.
 */
import { QmpError, genericError } from "../core/error.ts";
import type { Emulator } from "../emulator.ts";
import { extraState } from "../machine-extra/state.ts";
import { resolvePath } from "../qom/object.ts";
import { throttleLimitsError } from "../qom/throttle-group.ts";
import type { BlockBackend } from "../block/backend.ts";
import { changeBackingFile } from "../block/backing-file.ts";
import { defaultLimits, limitsEnabled } from "../block/io-limits.ts";
import { clearLatencyHistograms, setLatencyHistogram } from "../block/stats.ts";
import { defineCommand, type CommandContext, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { array, int, intNumber, optional, str, struct, withFeatures, type Infer } from "./qapi.ts";

/**
 * blk_by_qdev_id: the backend of the guest device `id`. -M none has no
 * devices, so this mostly finds the errors: an absolute QOM path names an
 * object that is no device, anything else names nothing.
 */
function backendOfDevice(emu: Emulator, id: string): BlockBackend {
  const blk = emu.block.backends.find((b) => b.attachedDevice === id);
  if (blk) return blk;
  if (id.startsWith("/")) {
    let found = true;
    try {
      resolvePath(extraState(emu).qom.root, id);
    } catch {
      found = false;
    }
    if (found) throw genericError(`${id} is not a hotpluggable device`);
  }
  throw new QmpError("DeviceNotFound", `Device '${id}' not found`);
}

/** qmp_get_blk: exactly one of a backend name (deprecated) and a device id. */
function backendByNameOrId(emu: Emulator, device: string | undefined, id: string | undefined): BlockBackend {
  if ((device === undefined) === (id === undefined)) throw genericError("Need exactly one of 'device' and 'id'");
  if (id !== undefined) return backendOfDevice(emu, id);
  const blk = emu.block.findBackend(device!);
  if (!blk) throw new QmpError("DeviceNotFound", `Device '${device}' not found`);
  return blk;
}

// ---- block_set_io_throttle ----------------------------------------------------------

const BlockIOThrottle = struct("BlockIOThrottle", {
  device: withFeatures(optional(str()), ["deprecated"]),
  id: optional(str()),
  bps: int(),
  bps_rd: int(),
  bps_wr: int(),
  iops: int(),
  iops_rd: int(),
  iops_wr: int(),
  bps_max: optional(int()),
  bps_rd_max: optional(int()),
  bps_wr_max: optional(int()),
  iops_max: optional(int()),
  iops_rd_max: optional(int()),
  iops_wr_max: optional(int()),
  bps_max_length: optional(int()),
  bps_rd_max_length: optional(int()),
  bps_wr_max_length: optional(int()),
  iops_max_length: optional(int()),
  iops_rd_max_length: optional(int()),
  iops_wr_max_length: optional(int()),
  iops_size: optional(int()),
  group: optional(str()),
});
type BlockIOThrottleArgs = Infer<typeof BlockIOThrottle>;

/** BlockIOThrottle's bucket prefixes and the ThrottleLimits bucket each sets. */
const BUCKET_OF = {
  bps: "bps-total", bps_rd: "bps-read", bps_wr: "bps-write",
  iops: "iops-total", iops_rd: "iops-read", iops_wr: "iops-write",
} as const;

/** QEMU keeps the values unsigned: a negative one is a huge one. */
const unsigned = (v: number) => (v < 0 ? 2 ** 64 + v : v);

/** The ThrottleConfig qmp_block_set_io_throttle builds: unset members keep throttle_config_init's values. */
function limitsFrom(a: BlockIOThrottleArgs): Record<string, number> {
  const limits = defaultLimits();
  for (const [arg, bucket] of Object.entries(BUCKET_OF)) {
    const at = (suffix: string) => (a as unknown as Record<string, number | undefined>)[`${arg}${suffix}`];
    limits[bucket] = unsigned(at("")!);
    if (at("_max") !== undefined) limits[`${bucket}-max`] = unsigned(at("_max")!);
    if (at("_max_length") !== undefined) limits[`${bucket}-max-length`] = unsigned(at("_max_length")!);
  }
  // op_size has no upper bound: a negative one stays as given (queries print it back as such).
  if (a.iops_size !== undefined) limits["iops-size"] = intNumber(a.iops_size);
  return limits;
}

async function setIoThrottle(emu: Emulator, a: BlockIOThrottleArgs): Promise<void> {
  const blk = backendByNameOrId(emu, a.device, a.id);
  if (!blk.node) throw genericError("Device has no medium");
  const limits = limitsFrom(a);
  const bad = throttleLimitsError(limits);
  if (bad) throw genericError(bad);
  const groups = emu.block.throttleGroups;
  if (limitsEnabled(limits)) {
    // A backend joins the named group, else one named after itself; later calls switch only when a group is given.
    const group = a.group ?? (groups.isThrottled(blk) ? "" : (a.device ?? a.id!));
    await groups.set(blk, group, limits, a.group !== undefined);
  } else {
    await groups.disable(blk);
  }
}

// ---- HMP ------------------------------------------------------------------------------

class HmpSyntax extends Error {}

/**
 * The monitor's integer expressions ('l' arguments): C-like + - * / % & | ^ ~,
 * parentheses, numbers in any strtoull base, in 64-bit arithmetic.
 * Returns the value and the rest of the line.
 */
export function hmpExpression(text: string): { value: bigint; rest: string } {
  let p = text.replace(/^\s+/, "");
  const skip = () => void (p = p.slice(1).replace(/^\s+/, ""));
  const wrap = (v: bigint) => BigInt.asIntN(64, v);
  const unary = (): bigint => {
    const c = p[0];
    if (c === "+") return skip(), unary();
    if (c === "-") return skip(), wrap(-unary());
    if (c === "~") return skip(), wrap(~unary());
    if (c === "(") {
      skip();
      const v = sum();
      if (p[0] !== ")") throw new HmpSyntax("')' expected");
      skip();
      return v;
    }
    if (c === undefined) throw new HmpSyntax("unexpected end of expression");
    const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(p);
    if (!m) throw new HmpSyntax(`invalid char '${c}' in expression`);
    const v = BigInt(m[1]!.length > 1 && m[1]![0] === "0" && !/^0[xX]/.test(m[1]!) ? `0o${m[1]!.slice(1)}` : m[1]!);
    if (v > 0xffffffffffffffffn) throw new HmpSyntax("number too large");
    p = p.slice(m[1]!.length).replace(/^\s+/, "");
    return wrap(v);
  };
  const binary = (next: () => bigint, ops: string, apply: (op: string, a: bigint, b: bigint) => bigint) => (): bigint => {
    let v = next();
    while (p[0] !== undefined && ops.includes(p[0])) {
      const op = p[0];
      skip();
      v = wrap(apply(op, v, next()));
    }
    return v;
  };
  const prod = binary(unary, "*/%", (op, a, b) => {
    if (op === "*") return a * b;
    if (b === 0n) throw new HmpSyntax("division by zero");
    return op === "/" ? a / b : a % b;
  });
  const logic = binary(prod, "&|^", (op, a, b) => (op === "&" ? a & b : op === "|" ? a | b : a ^ b));
  const sum = binary(logic, "+-", (op, a, b) => (op === "+" ? a + b : a - b));
  const value = sum();
  return { value, rest: p };
}

const HMP_NUMBERS = ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"] as const;

async function hmpSetIoThrottle(line: string, { emu }: CommandContext): Promise<string> {
  const name = "block_set_io_throttle";
  const usage = (problem: string) => `${problem}\nTry "help ${name}" for more information\n`;
  const word = /^\s*(\S+)/.exec(line);
  if (!word) return usage(`${name}: block device name expected`);
  let rest = line.slice(word[0].length);
  const values: Record<string, number> = {};
  try {
    for (const n of HMP_NUMBERS) {
      const e = hmpExpression(rest);
      values[n] = Number(e.value);
      rest = e.rest;
    }
  } catch (e) {
    if (e instanceof HmpSyntax) return usage(e.message);
    throw e;
  }
  if (rest.trim()) return usage(`${name}: extraneous characters at the end of line`);
  // One name for both: a backend name if there is such a backend, else a device id.
  const device = word[1]!;
  const target = emu.block.findBackend(device) ? { device } : { id: device };
  try {
    await setIoThrottle(emu, { ...target, ...values } as BlockIOThrottleArgs);
  } catch (e) {
    if (e instanceof QmpError) return `Error: ${e.desc}\n`;
    throw e;
  }
  return "";
}

// ---- Commands ---------------------------------------------------------------------------

const boundaries = () => optional(array(int("uint64")));

export const commands: CommandDef[] = [
  defineCommand({
    name: "block_set_io_throttle",
    args: BlockIOThrottle,
    handler: async (a, { emu }) => {
      await setIoThrottle(emu, a);
      return {};
    },
  }),
  defineCommand({
    name: "block-latency-histogram-set",
    args: struct("q_obj_block-latency-histogram-set-arg", {
      id: str(),
      boundaries: boundaries(),
      "boundaries-read": boundaries(),
      "boundaries-write": boundaries(),
      "boundaries-flush": boundaries(),
    }),
    handler: (a, { emu }) => {
      const blk = backendOfDevice(emu, a.id);
      const perType = { read: a["boundaries-read"], write: a["boundaries-write"], flush: a["boundaries-flush"] } as const;
      if (!a.boundaries && !perType.read && !perType.write && !perType.flush) {
        clearLatencyHistograms(blk);
        return {};
      }
      // Applied in turn: an invalid later list leaves the earlier ones set, as in QEMU.
      for (const type of ["read", "write", "flush"] as const) {
        const list = perType[type] ?? a.boundaries;
        if (list && !setLatencyHistogram(blk, type, list)) throw genericError(`Device '${a.id}' set ${type} boundaries fail`);
      }
      return {};
    },
  }),
  defineCommand({
    name: "change-backing-file",
    args: struct("q_obj_change-backing-file-arg", { device: str(), "image-node-name": str(), "backing-file": str() }),
    handler: async (a, { emu }) => {
      await changeBackingFile(emu.block, a.device, a["image-node-name"], a["backing-file"]);
      return {};
    },
  }),
];

export const hmpCommands: HmpCommand[] = [{ name: "block_set_io_throttle", run: hmpSetIoThrottle }];
