/**
 * `throttle`: a filter that holds reads and writes back until the
 * throttle-group it names lets them through. The group (a QOM object the
 * block layer reaches only through a lookup function the composition root
 * passes in) owns the budget: six leaky buckets shared by every throttle
 * node on it, served round-robin, one direction (read / write) at a time.
 *
 * The model follows QEMU 7.2's util/throttle.c and block/throttle-groups.c:
 * a request is admitted when no bucket it fills is over its size, then its
 * bytes and operations are poured in; buckets leak at their average rate
 * on the emulator's Clock, so a VirtualClock (qtest) decides when held
 * requests go. Flush, block status and size pass straight through.
 */
import { genericError } from "../../core/error.ts";
import type { Clock } from "../../core/clock.ts";
import type { DriverDef, NodeDriver } from "../driver.ts";
import { serialize } from "../../json/writer.ts";
import { fullOptions } from "./raw.ts";

/** What the block layer needs of a throttle-group object. */
export interface ThrottleGroupRef {
  /** Stable identity of the group object: nodes naming the same object share one budget. */
  readonly key: object;
  /** Current limits, keyed by ThrottleLimits member name (iops-total, bps-read-max, iops-size, ...). */
  limits(): Readonly<Record<string, number>>;
  /** Marks the group in use (object-del refuses it) until the returned function runs. */
  hold(): () => void;
  /** Replaces every limit (block_set_io_throttle on a backend in the group); already validated. */
  setLimits?(limits: Readonly<Record<string, number>>): void;
}

/** Finds the throttle-group object with this id; undefined when there is none (or it is another type). */
export type ThrottleGroupLookup = (id: string) => ThrottleGroupRef | undefined;

const NS_PER_S = 1e9;
const BUCKETS = ["bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write"] as const;
type BucketName = (typeof BUCKETS)[number];

/** 0: reads, 1: writes (zeroes and discards count as writes). */
type Direction = 0 | 1;

/** Buckets a request of each direction must fit in, and fills. */
const CHECKED: readonly (readonly BucketName[])[] = [
  ["bps-total", "iops-total", "bps-read", "iops-read"],
  ["bps-total", "iops-total", "bps-write", "iops-write"],
];

interface Bucket {
  /** Average rate (units per second); 0: this bucket does not limit. */
  avg: number;
  /** Burst rate; 0: no burst allowed beyond a tenth of a second's worth. */
  max: number;
  /** Seconds a burst at `max` may last. */
  burstLength: number;
  level: number;
  burstLevel: number;
}

function makeBucket(limits: Readonly<Record<string, number>>, name: BucketName): Bucket {
  return {
    avg: limits[name] ?? 0,
    max: limits[`${name}-max`] ?? 0,
    burstLength: limits[`${name}-max-length`] ?? 1,
    level: 0,
    burstLevel: 0,
  };
}

function leak(b: Bucket, deltaNs: number): void {
  b.level = Math.max(b.level - (b.avg * deltaNs) / NS_PER_S, 0);
  // Bursts longer than a second also drain a second bucket at the burst rate, so `max` per second holds.
  if (b.burstLength > 1) b.burstLevel = Math.max(b.burstLevel - (b.max * deltaNs) / NS_PER_S, 0);
}

/** Nanoseconds until `b` has room again (0: a request may go now). */
function waitFor(b: Bucket): number {
  if (!b.avg) return 0;
  // Without a burst rate a tenth of a second's worth may still go at once, so requests are not all spaced out.
  const size = b.max ? b.max * b.burstLength : b.avg / 10;
  const over = b.level - size;
  if (over > 0) return Math.trunc((over * NS_PER_S) / b.avg);
  if (b.burstLength > 1) {
    const burstOver = b.burstLevel - b.max / 10;
    if (burstOver > 0) return Math.trunc((burstOver * NS_PER_S) / b.max);
  }
  return 0;
}

interface Armed {
  cancel(): void;
}

/** One throttle node's place in its group (QEMU's ThrottleGroupMember). */
class Member {
  /** Requests of each direction waiting (counted until they resume, like pending_reqs). */
  readonly pending: [number, number] = [0, 0];
  readonly queues: [(() => void)[], (() => void)[]] = [[], []];
  readonly timers: [Armed | null, Armed | null] = [null, null];
  /** Set while the node drains: its requests go unthrottled, as in QEMU. */
  limitsDisabled = false;
  constructor(readonly group: GroupState) {}
}

/** The shared budget of one throttle-group object (QEMU's ThrottleGroup + ThrottleState). */
class GroupState {
  private buckets = new Map<BucketName, Bucket>();
  private opSize = 0;
  private configKey = "";
  private previousLeak = 0;
  readonly members: Member[] = [];
  /** The member whose turn it is, per direction (round-robin). */
  readonly tokens: [Member | null, Member | null] = [null, null];
  /** A timer of some member of the group is armed for this direction. */
  anyTimerArmed: [boolean, boolean] = [false, false];

  constructor(
    readonly ref: ThrottleGroupRef,
    readonly clock: Clock,
  ) {
    this.refresh();
  }

  /** Picks up changed limits (qom-set limits): like QEMU, the buckets start empty again. */
  refresh(force = false): void {
    const limits = this.ref.limits();
    const key = JSON.stringify(limits);
    if (key === this.configKey && !force) return;
    this.configKey = key;
    this.buckets = new Map(BUCKETS.map((b) => [b, makeBucket(limits, b)]));
    this.opSize = limits["iops-size"] ?? 0;
    this.previousLeak = this.clock.nowNs();
  }

  /** Leaks for the time passed, then: nanoseconds a request of `dir` must wait. */
  computeWait(dir: Direction): number {
    this.refresh();
    const now = this.clock.nowNs();
    const delta = now - this.previousLeak;
    this.previousLeak = now;
    if (delta > 0) for (const b of this.buckets.values()) leak(b, delta);
    return Math.max(0, ...CHECKED[dir]!.map((n) => waitFor(this.buckets.get(n)!)));
  }

  account(dir: Direction, bytes: number): void {
    this.refresh();
    // A negative size is an unsigned one above any request.
    const units = this.opSize > 0 && bytes > this.opSize ? bytes / this.opSize : 1;
    const pour = (name: BucketName, amount: number) => {
      const b = this.buckets.get(name)!;
      b.level += amount;
      if (b.burstLength > 1) b.burstLevel += amount;
    };
    pour("bps-total", bytes);
    pour("iops-total", units);
    pour(dir ? "bps-write" : "bps-read", bytes);
    pour(dir ? "iops-write" : "iops-read", units);
  }

  next(m: Member): Member {
    const i = this.members.indexOf(m);
    return this.members[(i + 1) % this.members.length]!;
  }
}

/** Throttle state per group object, shared by every node that names it. */
const groups = new WeakMap<object, GroupState>();

/**
 * (Re)arms a member's timer, replacing its deadline; "now" runs on the next
 * turn of the event loop, whatever the clock (a VirtualClock would wait for a step).
 */
function arm(m: Member, dir: Direction, delayNs: number): void {
  m.timers[dir]?.cancel();
  const fire = () => {
    m.timers[dir] = null;
    timerFired(m, dir);
  };
  if (delayNs > 0) {
    m.timers[dir] = m.group.clock.setTimer(delayNs, fire);
  } else {
    const h = setImmediate(fire);
    m.timers[dir] = { cancel: () => clearImmediate(h) };
  }
}

/** The member that should run next in `dir`: round-robin over those with waiting requests. */
function nextToken(m: Member, dir: Direction): Member {
  const g = m.group;
  if (m.pending[dir] && m.limitsDisabled) return m;
  const start = g.tokens[dir] ?? m;
  let token = g.next(start);
  while (token !== start && !token.pending[dir]) token = g.next(token);
  if (token === start && !token.pending[dir]) token = m;
  return token;
}

/** True when `m` must wait; arms its timer if the group has none armed yet. */
function scheduleTimer(m: Member, dir: Direction): boolean {
  const g = m.group;
  if (m.limitsDisabled) return false;
  if (g.anyTimerArmed[dir]) return true;
  const wait = g.computeWait(dir);
  if (!wait) return false;
  if (!m.timers[dir]) arm(m, dir, wait);
  g.tokens[dir] = m;
  g.anyTimerArmed[dir] = true;
  return true;
}

/** Wakes the oldest waiting request of `m` in `dir`, if any. */
function wakeNext(m: Member, dir: Direction): boolean {
  const resume = m.queues[dir].shift();
  resume?.();
  return resume !== undefined;
}

function scheduleNext(m: Member, dir: Direction): void {
  const g = m.group;
  let token = nextToken(m, dir);
  if (!token.pending[dir]) return;
  if (scheduleTimer(token, dir)) return;
  // It may go now: the current member's own waiters first, else the token's on the next turn.
  if (wakeNext(m, dir)) token = m;
  else {
    arm(token, dir, 0);
    g.anyTimerArmed[dir] = true;
  }
  g.tokens[dir] = token;
}

function timerFired(m: Member, dir: Direction): void {
  m.group.anyTimerArmed[dir] = false;
  if (!wakeNext(m, dir)) scheduleNext(m, dir);
}

/** Waits until the group admits a request of `bytes` in `dir`, then charges it. */
async function intercept(m: Member, dir: Direction, bytes: number): Promise<void> {
  const token = nextToken(m, dir);
  const mustWait = scheduleTimer(token, dir);
  if (mustWait || m.pending[dir]) {
    m.pending[dir]++;
    await new Promise<void>((resolve) => m.queues[dir].push(resolve));
    m.pending[dir]--;
    if (m.limitsDisabled && !m.pending[0] && !m.pending[1]) m.limitsDisabled = false;
  }
  m.group.account(dir, bytes);
  scheduleNext(m, dir);
}

function join(ref: ThrottleGroupRef, clock: Clock): Member {
  let g = groups.get(ref.key);
  if (!g) groups.set(ref.key, (g = new GroupState(ref, clock)));
  const m = new Member(g);
  g.members.push(m);
  return m;
}

function leave(m: Member): void {
  const g = m.group;
  for (const dir of [0, 1] as const) {
    m.timers[dir]?.cancel();
    m.timers[dir] = null;
    if (g.tokens[dir] === m) {
      const other = g.next(m);
      g.tokens[dir] = other === m ? null : other;
    }
  }
  g.members.splice(g.members.indexOf(m), 1);
  // A timer of the leaving member may have been the group's armed one.
  g.anyTimerArmed = [g.members.some((x) => x.timers[0]), g.members.some((x) => x.timers[1])];
}

/** Lets every held request go at once, unthrottled (QEMU disables the limits while a node drains). */
function releaseAll(m: Member): void {
  // Switched back on once the released requests have resumed (see intercept).
  if (!m.pending[0] && !m.pending[1]) return;
  m.limitsDisabled = true;
  for (const dir of [0, 1] as const) while (wakeNext(m, dir));
}

/**
 * A BlockBackend's membership of a group (block_set_io_throttle): the same
 * budget and round-robin as throttle nodes, entered by name in QEMU.
 */
export interface GroupMembership {
  /** Waits until the group admits a request of `bytes` (reads: write=false), then charges it. */
  admit(write: boolean, bytes: number): Promise<void>;
  /**
   * New limits were written to the group (throttle_group_config): the buckets
   * start empty and a held request of this member is looked at again now.
   */
  configured(): void;
  /** Leaves the group once its held requests went (at once, unthrottled, as in a drained section). */
  leave(): Promise<void>;
}

export function joinGroup(ref: ThrottleGroupRef, clock: Clock): GroupMembership {
  const m = join(ref, clock);
  return {
    admit: (write, bytes) => intercept(m, write ? 1 : 0, bytes),
    configured() {
      m.group.refresh(true);
      for (const dir of [0, 1] as const) {
        if (m.timers[dir]) {
          m.timers[dir]!.cancel();
          m.timers[dir] = null;
          timerFired(m, dir);
        } else if (m.pending[dir]) {
          scheduleNext(m, dir);
        }
      }
    },
    async leave() {
      releaseAll(m);
      while (m.pending[0] || m.pending[1]) await new Promise((r) => setImmediate(r));
      leave(m);
    },
  };
}

/** The throttle filter, reading time from `clock` and groups through `lookup`. */
export function throttleDriver(clock: Clock, lookup: ThrottleGroupLookup | undefined): DriverDef {
  return {
    name: "throttle",
    kind: "filter",
    strongOptions: ["throttle-group"],
    primaryChild: { key: "file", role: "file" },
    fields: {
      "throttle-group": { type: "str", required: true },
      file: { type: "ref", required: true },
    },
    async open(ctx): Promise<NodeDriver> {
      const name = ctx.options["throttle-group"] as string;
      const ref = lookup?.(name);
      if (!ref) throw genericError(`Throttle group '${name}' does not exist`);
      const edge = (await ctx.openChild("file", "file"))!;
      const child = () => edge.node;
      const member = join(ref, clock);
      const release = ref.hold();
      const admitted = (dir: Direction, bytes: number) => intercept(member, dir, bytes);
      return {
        size: () => child().size(),
        async read(buf, off) {
          await admitted(0, buf.length);
          await child().read(buf, off);
        },
        async write(data, off) {
          await admitted(1, data.length);
          await child().write(data, off);
        },
        async writeZeroes(off, len, opts) {
          await admitted(1, len);
          await child().writeZeroes(off, len, opts);
        },
        async discard(off, len) {
          await admitted(1, len);
          await child().discard(off, len);
        },
        async writeCompressed(data, off) {
          await admitted(1, data.length);
          await child().writeCompressed(data, off);
        },
        blockStatus: (off, len) => child().blockStatus(off, len),
        flush: () => child().flush(),
        resize: (n) => child().resize(n),
        drainBegin: () => releaseAll(member),
        async close() {
          releaseAll(member);
          leave(member);
          release();
        },
        // throttle-group is a strong option, so QEMU always names the node with a json: filename.
        filename: () => "json:" + serialize({ "throttle-group": name, driver: "throttle", file: fullOptions(child()) }),
        imageInfo: () => ({ format: "throttle" }),
        actualSize: () => child().driver.actualSize?.(),
        get clusterSize() {
          return child().clusterSize;
        },
      };
    },
  };
}
