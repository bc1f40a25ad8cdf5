/**
 * throttle-group objects: a named set of I/O limits (six leaky buckets and
 * an I/O size), checked with QEMU's rules and texts. The block layer's
 * throttle filter (block/drivers/throttle.ts) reads them through
 * throttleGroupRef and does the throttling.
 */
import { genericError } from "../core/error.ts";
import { TYPE_PROPERTIES } from "../machine-extra/data/recorded.ts";
import { visitScalar, type QomProperty } from "./object.ts";
import { UserObject, completeError, type UserType } from "./user-types-base.ts";

const BUCKETS = ["bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write"] as const;
type Bucket = (typeof BUCKETS)[number];
const VALUE_MAX = 1000000000000000;

/** ThrottleLimits members, in QAPI order. */
export const THROTTLE_LIMIT_NAMES = [
  "iops-total", "iops-total-max", "iops-total-max-length", "iops-read", "iops-read-max", "iops-read-max-length",
  "iops-write", "iops-write-max", "iops-write-max-length", "bps-total", "bps-total-max", "bps-total-max-length",
  "bps-read", "bps-read-max", "bps-read-max-length", "bps-write", "bps-write-max", "bps-write-max-length", "iops-size",
] as const;

/** Limit values, keyed by ThrottleLimits member name; QEMU keeps them unsigned. */
type Config = Record<string, number>;

function defaults(): Config {
  const c: Config = { "iops-size": 0 };
  for (const b of BUCKETS) Object.assign(c, { [b]: 0, [`${b}-max`]: 0, [`${b}-max-length`]: 1 });
  return c;
}

/** As QEMU stores them: unsigned 64-bit, so negative input wraps to a huge value. */
function unsigned(v: number | bigint): number {
  return Number(BigInt.asUintN(64, BigInt(v)));
}

const UINT_MAX = 4294967295;

/** throttle_is_valid, check for check (block_set_io_throttle uses it too); the error text, if any. */
export function throttleLimitsError(c: Config): string | undefined {
  const clash = (kind: "bps" | "iops", suffix: "" | "-max") =>
    c[`${kind}-total${suffix}`]! !== 0 && (c[`${kind}-read${suffix}`]! !== 0 || c[`${kind}-write${suffix}`]! !== 0);
  if (clash("bps", "") || clash("iops", "") || clash("bps", "-max") || clash("iops", "-max")) {
    return "bps/iops/max total values and read/write values cannot be used at the same time";
  }
  if (c["iops-size"] && !c["iops-total"] && !c["iops-read"] && !c["iops-write"]) {
    return "iops size requires an iops value to be set";
  }
  for (const b of BUCKETS as readonly Bucket[]) {
    const avg = c[b]!;
    const max = c[`${b}-max`]!;
    const burst = c[`${b}-max-length`]!;
    if (avg > VALUE_MAX || max > VALUE_MAX) return `bps/iops/max values must be within [0, ${VALUE_MAX}]`;
    if (!burst) return "the burst length cannot be 0";
    if (burst > 1 && !max) return "burst length set without burst rate";
    if (max && burst > VALUE_MAX / max) return "burst length too high for this burst rate";
    if (max && !avg) return "bps_max/iops_max require corresponding bps/iops values";
    if (max && max < avg) return "bps_max/iops_max cannot be lower than bps/iops";
  }
  return undefined;
}

function applyLimits(target: Config, limits: Record<string, unknown>, name = "limits"): void {
  for (const [k, v] of Object.entries(limits)) {
    if (!(THROTTLE_LIMIT_NAMES as readonly string[]).includes(k)) throw genericError(`Parameter '${name}.${k}' is unexpected`);
    target[k] = unsigned(visitScalar(k, "int", v) as number | bigint);
  }
  // throttle_limits_to_config: burst lengths must fit an unsigned int (negatives wrapped already).
  for (const b of BUCKETS) {
    const k = `${b}-max-length`;
    const v = limits[k] as number | bigint | undefined;
    if (v !== undefined && v > UINT_MAX) throw genericError(`${k} value must be in the range [0, ${UINT_MAX}]`);
  }
}

export const throttleGroup: UserType = {
  name: "throttle-group",
  parent: "object",
  create(args, id, _siblings, env) {
    const config = defaults();
    // The x-* properties are the same limits one by one; they are set before "limits".
    for (const n of THROTTLE_LIMIT_NAMES) {
      const v = args[`x-${n}`];
      if (v === undefined) continue;
      // throttle_group_set_limits' property setter; its text lacks a space ("in the" "range").
      if ((v as number | bigint) < 0) throw genericError("Property values cannot be negative");
      if (n.endsWith("-max-length") && (v as number | bigint) > UINT_MAX) throw genericError(`x-${n} value must be in therange [0, ${UINT_MAX}]`);
      config[n] = unsigned(v as number | bigint);
    }
    if (args.limits !== undefined) applyLimits(config, args.limits as Record<string, unknown>);
    if (env?.throttleGroupExists?.(id)) throw completeError("A group with this name already exists");
    const bad = throttleLimitsError(config);
    if (bad) throw completeError(bad);
    const limitsProp: QomProperty = {
      name: "limits",
      type: "ThrottleLimits",
      get: () => Object.fromEntries(THROTTLE_LIMIT_NAMES.map((n) => [n, config[n]])),
      set: (value) => {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          throw genericError("Invalid parameter type for 'limits', expected: object");
        }
        const next = { ...config };
        applyLimits(next, value as Record<string, unknown>);
        const err = throttleLimitsError(next);
        if (err) throw genericError(err);
        Object.assign(config, next);
      },
    };
    const byName = new Map<string, QomProperty>([["limits", limitsProp]]);
    for (const n of THROTTLE_LIMIT_NAMES) {
      byName.set(`x-${n}`, {
        name: `x-${n}`,
        type: "int",
        get: () => config[n],
        set: () => {
          throw genericError("Property cannot be set after initialization");
        },
      });
    }
    // qom-list order as QEMU 7.2 prints it.
    const order = (TYPE_PROPERTIES()["throttle-group"] ?? []).map((p) => p.name).filter((n) => byName.has(n));
    return new UserObject("throttle-group", order.map((n) => byName.get(n)!), {
      limits: () => ({ ...config }),
      // block_set_io_throttle on a backend in this group (checked by the caller).
      setLimits: (l: Readonly<Record<string, number>>) => Object.assign(config, l),
    });
  },
};

/**
 * The block layer's view of object `obj` if it is a throttle-group (the
 * throttle filter's ThrottleGroupRef): its live limits, and a hold that
 * makes object-del refuse it while a node uses it.
 */
export function throttleGroupRef(obj: unknown):
  | { key: object; limits(): Record<string, number>; hold(): () => void; setLimits(l: Readonly<Record<string, number>>): void }
  | undefined {
  if (!(obj instanceof UserObject) || obj.typename !== "throttle-group") return undefined;
  const limits = obj.state.limits as () => Record<string, number>;
  const setLimits = obj.state.setLimits as (l: Readonly<Record<string, number>>) => void;
  return {
    key: obj,
    limits,
    setLimits,
    hold() {
      obj.users++;
      let held = true;
      return () => {
        if (held) obj.users--;
        held = false;
      };
    },
  };
}
