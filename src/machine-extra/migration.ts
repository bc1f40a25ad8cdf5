/**
 * Migration settings as QEMU 7.2 keeps them while no migration ever runs:
 * capabilities and parameters, checked with QEMU's rules and texts when
 * set and returned by the query commands.
 */
import { genericError } from "../core/error.ts";

/** MigrationStatus, in QAPI order. */
export const MIGRATION_STATUSES = [
  "none", "setup", "cancelling", "cancelled", "active", "postcopy-active", "postcopy-paused", "postcopy-recover",
  "completed", "failed", "colo", "pre-switchover", "device", "wait-unplug",
] as const;

export const MIGRATION_CAPABILITIES = [
  "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram", "x-colo",
  "release-ram", "block", "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
  "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
] as const;
export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number];

/** What background-snapshot cannot be combined with, in the order QEMU checks. */
const BACKGROUND_SNAPSHOT_INCOMPATIBLE: readonly MigrationCapability[] = [
  "postcopy-ram", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "return-path", "multifd",
  "pause-before-switchover", "auto-converge", "release-ram", "rdma-pin-all", "block", "compress", "xbzrle", "x-colo",
  "validate-uuid", "zero-copy-send",
];

export interface BitmapMapping {
  "node-name": string;
  alias: string;
  bitmaps: { name: string; alias: string; transform?: { persistent?: boolean } }[];
}

/** MigrationParameters in QAPI member order (the order query-migrate-parameters builds them). */
export function defaultParameters(): Record<string, unknown> {
  return {
    "announce-initial": 50,
    "announce-max": 550,
    "announce-rounds": 5,
    "announce-step": 100,
    "compress-level": 1,
    "compress-threads": 8,
    "compress-wait-thread": true,
    "decompress-threads": 2,
    "throttle-trigger-threshold": 50,
    "cpu-throttle-initial": 20,
    "cpu-throttle-increment": 10,
    "cpu-throttle-tailslow": false,
    "tls-creds": "",
    "tls-hostname": "",
    "tls-authz": "",
    "max-bandwidth": 134217728,
    "downtime-limit": 300,
    "x-checkpoint-delay": 20000,
    "block-incremental": false,
    "multifd-channels": 2,
    "xbzrle-cache-size": 67108864,
    "max-postcopy-bandwidth": 0,
    "max-cpu-throttle": 99,
    "multifd-compression": "none",
    "multifd-zlib-level": 1,
    "multifd-zstd-level": 1,
  };
}

/** QEMU 7.2 accepts these in migrate-set-parameters but never stores them (query keeps the defaults). */
const IGNORED_ON_SET = new Set(["multifd-zlib-level", "multifd-zstd-level"]);

/** Values are checked exactly: uint64/size parameters arrive as bigint beyond 2^53. */
type Check = (v: bigint, all: Record<string, unknown>) => string | undefined;

const between = (name: string, lo: number, hi: number): Check => (v) =>
  v < lo || v > hi ? `Parameter '${name}' expects a value between ${lo} and ${hi}` : undefined;
const inRange = (name: string, lo: number, hi: number): Check => (v) =>
  v < lo || v > hi ? `Parameter '${name}' expects an integer in the range of ${lo} to ${hi}` : undefined;

/** migrate_params_check: parameter → check, in the order QEMU runs them. */
const PARAMETER_CHECKS: [string, Check][] = [
  ["compress-level", between("compress_level", 0, 9)],
  ["compress-threads", between("compress_threads", 1, 255)],
  ["decompress-threads", between("decompress_threads", 1, 255)],
  ["throttle-trigger-threshold", inRange("throttle_trigger_threshold", 1, 100)],
  ["cpu-throttle-initial", inRange("cpu_throttle_initial", 1, 99)],
  ["cpu-throttle-increment", inRange("cpu_throttle_increment", 1, 99)],
  ["downtime-limit", (v) => (v > 2000000 ? "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms" : undefined)],
  ["multifd-channels", between("multifd_channels", 1, 255)],
  [
    "xbzrle-cache-size",
    (v) =>
      v < 4096n || (v & (v - 1n)) !== 0n
        ? "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"
        : undefined,
  ],
  [
    "max-cpu-throttle",
    (v, all) =>
      v < BigInt(all["cpu-throttle-initial"] as number) || v > 99
        ? "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"
        : undefined,
  ],
  ["announce-initial", between("announce_initial", 0, 100000)],
  ["announce-max", between("announce_max", 0, 100000)],
  ["announce-rounds", between("announce_rounds", 0, 1000)],
  // QEMU rejects 0 but names the range from 0.
  ["announce-step", (v) => (v < 1 || v > 10000 ? "Parameter 'announce_step' expects a value between 0 and 10000" : undefined)],
];

export class MigrationSettings {
  private readonly caps = new Map<MigrationCapability, boolean>(MIGRATION_CAPABILITIES.map((c) => [c, false]));
  private readonly params = defaultParameters();
  private bitmapMapping: BitmapMapping[] | undefined;

  capabilities(): { capability: MigrationCapability; state: boolean }[] {
    return MIGRATION_CAPABILITIES.map((c) => ({ capability: c, state: this.caps.get(c)! }));
  }

  capability(c: MigrationCapability): boolean {
    return this.caps.get(c)!;
  }

  /** migrate-set-capabilities: all or nothing, checked as a whole like migrate_caps_check. */
  setCapabilities(list: readonly { capability: MigrationCapability; state: boolean }[]): void {
    const next = new Map(this.caps);
    for (const { capability, state } of list) next.set(capability, state);
    const on = (c: MigrationCapability) => next.get(c)!;
    if (on("postcopy-ram") && on("x-ignore-shared")) throw genericError("Postcopy is not compatible with ignore-shared");
    if (on("background-snapshot")) {
      const clash = BACKGROUND_SNAPSHOT_INCOMPATIBLE.find(on);
      if (clash) throw genericError(`Background-snapshot is not compatible with ${clash}`);
    }
    if (on("zero-copy-send") && (!on("multifd") || on("compress") || this.params["multifd-compression"] !== "none" || this.params["tls-creds"] !== "")) {
      throw genericError("Zero copy only available for non-compressed non-TLS multifd migration");
    }
    if (on("multifd") && on("compress")) throw genericError("Multifd is not compatible with compress");
    if (on("postcopy-preempt") && !on("postcopy-ram")) throw genericError("Postcopy preempt requires postcopy-ram");
    for (const [c, s] of next) this.caps.set(c, s);
  }

  parameters(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.params)) {
      out[k] = v;
      // QAPI order: block-bitmap-mapping is the last member, present once set.
    }
    if (this.bitmapMapping) out["block-bitmap-mapping"] = structuredClone(this.bitmapMapping);
    return out;
  }

  /** migrate-set-parameters: checked as a whole against the merged result, then applied. */
  setParameters(args: Record<string, unknown>): void {
    const merged = { ...this.params };
    for (const [k, v] of Object.entries(args)) {
      if (k === "block-bitmap-mapping" || IGNORED_ON_SET.has(k)) continue;
      // StrOrNull: null means "unset", which QEMU stores as "".
      merged[k] = v === null ? "" : v;
    }
    for (const [name, check] of PARAMETER_CHECKS) {
      if (!(name in args)) continue;
      const err = check(BigInt(merged[name] as number | bigint), merged);
      if (err) throw genericError(err);
    }
    Object.assign(this.params, merged);
    if (args["block-bitmap-mapping"] !== undefined) this.bitmapMapping = args["block-bitmap-mapping"] as BitmapMapping[];
  }
}
