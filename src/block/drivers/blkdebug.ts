/**
 * `blkdebug`: a filter that fails requests on purpose. Rules wake up when a
 * parent format driver raises a matching event (qcow2/raw raise read_aio
 * before data reads, write_aio before data writes); an active rule then
 * fails every following request of its I/O types (and sector, if given)
 * until a `once` rule has fired.
 */
import { ioError, type Errno } from "../../image/errors.ts";
import { jsonFilename } from "./raw.ts";
import type { DebugEvent, DriverDef, IoType, NodeDriver } from "../driver.ts";

export const BLKDEBUG_EVENTS = [
  "l1_update", "l1_grow_alloc_table", "l1_grow_write_table", "l1_grow_activate_table", "l2_load", "l2_update",
  "l2_update_compressed", "l2_alloc_cow_read", "l2_alloc_write", "read_aio", "read_backing_aio", "read_compressed",
  "write_aio", "write_compressed", "vmstate_load", "vmstate_save", "cow_read", "cow_write", "reftable_load",
  "reftable_grow", "reftable_update", "refblock_load", "refblock_update", "refblock_update_part", "refblock_alloc",
  "refblock_alloc_hookup", "refblock_alloc_write", "refblock_alloc_write_blocks", "refblock_alloc_write_table",
  "refblock_alloc_switch_table", "cluster_alloc", "cluster_alloc_bytes", "cluster_free", "flush_to_os",
  "flush_to_disk", "pwritev_rmw_head", "pwritev_rmw_after_head", "pwritev_rmw_tail", "pwritev_rmw_after_tail",
  "pwritev", "pwritev_zero", "pwritev_done", "empty_image_prepare", "l1_shrink_write_table",
  "l1_shrink_free_l2_clusters", "cor_write", "cluster_alloc_space", "none",
] as const;

const IO_TYPES = ["read", "write", "write-zeroes", "discard", "flush", "block-status"] as const;

/** Linux errno numbers a test may inject, by name. */
const ERRNO_BY_NUMBER: Record<number, Errno> = {
  1: "EPERM", 2: "ENOENT", 5: "EIO", 13: "EACCES", 16: "EBUSY", 22: "EINVAL", 27: "EFBIG", 28: "ENOSPC", 30: "EROFS", 95: "ENOTSUP",
};

interface InjectRule {
  event: string;
  state?: number;
  iotypes: ReadonlySet<IoType>;
  errno: number;
  /** Byte offset that must fall inside the request, or -1 for any. */
  offset: number;
  once: boolean;
}

interface StateRule {
  event: string;
  state?: number;
  newState: number;
}

export const blkdebugDriver: DriverDef = {
  name: "blkdebug",
  kind: "filter",
  strongOptions: ["config", "inject-error", "set-state", "align", "max-transfer"],
  fields: {
    image: { type: "ref", required: true },
    config: { type: "str" },
    align: { type: "int" },
    "max-transfer": { type: "int" },
    "opt-write-zero": { type: "int" },
    "max-write-zero": { type: "int" },
    "opt-discard": { type: "int" },
    "max-discard": { type: "int" },
    "inject-error": {
      type: {
        list: {
          struct: {
            event: { type: { enum: BLKDEBUG_EVENTS }, required: true },
            state: { type: "int" },
            iotype: { type: { enum: IO_TYPES } },
            errno: { type: "int" },
            sector: { type: "int" },
            once: { type: "bool" },
            immediately: { type: "bool" },
          },
        },
      },
    },
    "set-state": {
      type: {
        list: {
          struct: {
            event: { type: { enum: BLKDEBUG_EVENTS }, required: true },
            state: { type: "int" },
            new_state: { type: "int", required: true },
          },
        },
      },
    },
    "take-child-perms": { type: { list: { enum: ["consistent-read", "write", "write-unchanged", "resize"] } } },
    "unshare-child-perms": { type: { list: { enum: ["consistent-read", "write", "write-unchanged", "resize"] } } },
  },
  async open(ctx): Promise<NodeDriver> {
    const edge = (await ctx.openChild("image", "image"))!;
    let rules: InjectRule[] = ((ctx.options["inject-error"] as Record<string, unknown>[] | undefined) ?? []).map((r) => ({
      event: r.event as string,
      state: r.state as number | undefined,
      iotypes: new Set(r.iotype ? [r.iotype as IoType] : IO_TYPES.filter((t) => t !== "block-status")),
      errno: (r.errno as number | undefined) ?? 5,
      offset: r.sector === undefined ? -1 : (r.sector as number) * 512,
      once: (r.once as boolean | undefined) ?? false,
    }));
    const stateRules: StateRule[] = ((ctx.options["set-state"] as Record<string, unknown>[] | undefined) ?? []).map((r) => ({
      event: r.event as string,
      state: r.state as number | undefined,
      newState: r.new_state as number,
    }));
    const hasStrongOptions = (blkdebugDriver.strongOptions ?? []).some((k) => k !== "config" && ctx.options[k] !== undefined);
    let state = 1;
    let active: InjectRule[] = [];
    const child = () => edge.node;
    return {
      size: () => child().size(),
      read: (buf, off) => child().read(buf, off),
      write: (data, off) => child().write(data, off),
      writeZeroes: (off, len, opts) => child().writeZeroes(off, len, opts),
      discard: (off, len) => child().discard(off, len),
      blockStatus: (off, len) => child().blockStatus(off, len),
      flush: () => child().flush(),
      resize: (n) => child().resize(n),
      close: async () => {},
      filename: () => (hasStrongOptions ? jsonFilename(ctx.node) : `blkdebug:${(ctx.options.config as string | undefined) ?? ""}:${child().driver.filename()}`),
      imageInfo: () => ({ format: "blkdebug", "dirty-flag": child().driver.imageInfo?.()["dirty-flag"] }),
      get clusterSize() {
        return child().clusterSize;
      },
      debugEvent(event: DebugEvent) {
        const matching = rules.filter((r) => r.event === event && (r.state === undefined || r.state === state));
        if (matching.length) active = [...matching].reverse();
        let newState = state;
        for (const r of stateRules) if (r.event === event && (r.state === undefined || r.state === state)) newState = r.newState;
        state = newState;
      },
      async checkRequest(iotype, offset, length) {
        const rule = active.find(
          (r) => (r.offset === -1 || (length > 0 && r.offset >= offset && r.offset < offset + length)) && r.iotypes.has(iotype),
        );
        if (!rule || !rule.errno) return;
        if (rule.once) {
          active = active.filter((r) => r !== rule);
          rules = rules.filter((r) => r !== rule);
        }
        throw ioError(ERRNO_BY_NUMBER[rule.errno] ?? "EIO");
      },
    };
  },
};
