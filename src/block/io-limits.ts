/**
 * I/O limits on BlockBackends (block_set_io_throttle): a backend joins a
 * throttle group by name and its guest requests wait for the group's
 * budget, with the same leaky buckets and round-robin as throttle filter
 * nodes (./drivers/throttle.ts).
 *
 * QEMU keeps one namespace of groups: those made by object-add, and the
 * ones a backend creates on the fly when no group of that name exists (not
 * under /objects, freed when the last backend leaves). Setting a backend's
 * limits replaces the whole group's limits, whoever else is in it.
 */
import type { Clock } from "../core/clock.ts";
import type { BlockBackend } from "./backend.ts";
import { joinGroup, type GroupMembership, type ThrottleGroupLookup, type ThrottleGroupRef } from "./drivers/throttle.ts";

/** Limit values keyed by ThrottleLimits member name (bps-total, bps-read-max, iops-size, ...). */
export type ThrottleLimits = Readonly<Record<string, number>>;

const BUCKETS = ["bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write"] as const;

/** throttle_config_init: no limits, bursts of one second. */
export function defaultLimits(): Record<string, number> {
  const c: Record<string, number> = { "iops-size": 0 };
  for (const b of BUCKETS) Object.assign(c, { [b]: 0, [`${b}-max`]: 0, [`${b}-max-length`]: 1 });
  return c;
}

/** throttle_enabled: some bucket has an average rate. */
export function limitsEnabled(limits: ThrottleLimits): boolean {
  return BUCKETS.some((b) => (limits[b] ?? 0) > 0);
}

interface Membership {
  /** The group's name, as query-block's `group` shows it. */
  readonly group: string;
  readonly ref: ThrottleGroupRef;
  readonly member: GroupMembership;
  readonly release: () => void;
}

/** Throttling per backend, for the guest I/O path (backends belong to one emulator each). */
const membershipOf = new WeakMap<BlockBackend, Membership>();

/**
 * Waits for the backend's throttle group to admit a request, or undefined
 * when the backend has no limits (the common case stays synchronous).
 * Discards and flushes are not throttled (blk_co_do_pdiscard/flush).
 */
export function admitBackendIo(blk: BlockBackend, write: boolean, bytes: number): Promise<void> | undefined {
  return membershipOf.get(blk)?.member.admit(write, bytes);
}

/** A backend's group and that group's current limits; undefined without limits. */
export function backendLimits(blk: BlockBackend): { group: string; limits: ThrottleLimits } | undefined {
  const m = membershipOf.get(blk);
  return m && { group: m.group, limits: m.ref.limits() };
}

/** A group created by a backend: not a QOM object, alive while backends use it. */
interface AnonymousGroup {
  readonly ref: ThrottleGroupRef;
  users: number;
}

/** The throttle group namespace of one block layer, and backends' membership in it. */
export class ThrottleGroups {
  private readonly anonymous = new Map<string, AnonymousGroup>();

  constructor(
    private readonly clock: Clock,
    private readonly objects: ThrottleGroupLookup | undefined,
  ) {}

  /** throttle_group_by_name: an object-add'ed group, else one a backend made. */
  readonly lookup: ThrottleGroupLookup = (name) => this.objects?.(name) ?? this.anonymous.get(name)?.ref;

  /** Whether a backend made a group of this name (object-add then refuses the name). */
  madeByBackend(name: string): boolean {
    return this.anonymous.has(name);
  }

  /** throttle_group_incref: the named group, created empty when there is none. */
  private incref(name: string): ThrottleGroupRef {
    const found = this.lookup(name);
    if (found) return found;
    let limits: ThrottleLimits = defaultLimits();
    const entry: AnonymousGroup = {
      users: 0,
      ref: {
        key: {},
        limits: () => limits,
        setLimits: (next) => void (limits = { ...next }),
        hold: () => {
          entry.users++;
          let held = true;
          return () => {
            if (!held) return;
            held = false;
            if (--entry.users === 0) this.anonymous.delete(name);
          };
        },
      },
    };
    this.anonymous.set(name, entry);
    return entry.ref;
  }

  /**
   * blk_io_limits_enable / blk_io_limits_update_group, then blk_set_io_limits:
   * the backend joins `group` (its current one when undefined) and the group
   * gets `limits`, its buckets emptied.
   */
  async set(blk: BlockBackend, group: string, limits: ThrottleLimits, changeGroup: boolean): Promise<void> {
    let m = membershipOf.get(blk);
    if (m && changeGroup && m.group !== group) {
      await this.disable(blk);
      m = undefined;
    }
    if (!m) {
      const ref = this.incref(group);
      m = { group, ref, member: joinGroup(ref, this.clock), release: ref.hold() };
      membershipOf.set(blk, m);
    }
    m.ref.setLimits?.(limits);
    m.member.configured();
  }

  /** blk_io_limits_disable: held requests go at once, the backend leaves its group. */
  async disable(blk: BlockBackend): Promise<void> {
    const m = membershipOf.get(blk);
    if (!m) return;
    membershipOf.delete(blk);
    await m.member.leave();
    m.release();
  }

  isThrottled(blk: BlockBackend): boolean {
    return membershipOf.has(blk);
  }
}

/** BlockDeviceInfo's names for the six buckets, in QAPI order. */
const INFO_NAMES: readonly (readonly [string, (typeof BUCKETS)[number]])[] = [
  ["bps", "bps-total"], ["bps_rd", "bps-read"], ["bps_wr", "bps-write"],
  ["iops", "iops-total"], ["iops_rd", "iops-read"], ["iops_wr", "iops-write"],
];

/**
 * What bdrv_block_device_info shows of a backend's limits: the six rates
 * (zero without limits), and with limits the burst rates and lengths of the
 * buckets that have a burst rate, iops_size when set, and the group name.
 */
export function throttleInfo(blk: BlockBackend | undefined): { rates: Record<string, number>; rest: Record<string, unknown> } {
  const cur = blk && backendLimits(blk);
  const l = cur?.limits ?? {};
  const rates = Object.fromEntries(INFO_NAMES.map(([info, b]) => [info, l[b] ?? 0]));
  const rest: Record<string, unknown> = {};
  if (!cur) return { rates, rest };
  for (const [info, b] of INFO_NAMES) if (l[`${b}-max`]) rest[`${info}_max`] = l[`${b}-max`];
  for (const [info, b] of INFO_NAMES) if (l[`${b}-max`]) rest[`${info}_max_length`] = l[`${b}-max-length`];
  if (l["iops-size"]) rest.iops_size = l["iops-size"];
  rest.group = cur.group;
  return { rates, rest };
}
