/**
 * HMP (human-monitor-command) counterparts of the machine, QOM and
 * migration commands, with QEMU 7.2's texts. Each reads the same state as
 * its QMP command (often by running it), so the two cannot disagree.
 */
import { genericError, isQmpError } from "../core/error.ts";
import { extraState } from "../machine-extra/state.ts";
import { MIGRATION_CAPABILITIES } from "../machine-extra/migration.ts";
import { resolvePath, type QomObject } from "../qom/object.ts";
import { serialize } from "../json/writer.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import { runQmp } from "./hmp-args.ts";

type Run = (args: string, ctx: CommandContext) => string | Promise<string>;

/** QMP errors become "Error: <desc>" lines, as hmp_handle_error prints them. */
function reportingErrors(run: Run): Run {
  return async (args, ctx) => {
    try {
      return await run(args, ctx);
    } catch (e) {
      if (isQmpError(e)) return `Error: ${e.desc}\n`;
      throw e;
    }
  };
}


/** QEMU's argument-parser complaint: the command's own name, then where to get help. */
const usage = (name: string, problem: string, helpTopic = name) =>
  `${name}: ${problem}\nTry "help ${helpTopic}" for more information\n`;

/** An `info` command without arguments: anything after it is an error. */
function info(name: string, run: Run): HmpCommand {
  return {
    name: `info ${name}`,
    run: (args, ctx) =>
      args.trim() ? usage(name, "extraneous characters at the end of line", `info ${name}`) : reportingErrors(run)(args, ctx),
  };
}

const fixed = (name: string, text: string) => info(name, () => text);

const onOff = (b: unknown) => (b ? "on" : "off");

/** hmp_info_migrate_parameters: its own order and units. */
function formatParameters(p: Record<string, any>): string {
  const lines = [
    `announce-initial: ${p["announce-initial"]} ms`,
    `announce-max: ${p["announce-max"]} ms`,
    `announce-rounds: ${p["announce-rounds"]}`,
    `announce-step: ${p["announce-step"]} ms`,
    `compress-level: ${p["compress-level"]}`,
    `compress-threads: ${p["compress-threads"]}`,
    `compress-wait-thread: ${onOff(p["compress-wait-thread"])}`,
    `decompress-threads: ${p["decompress-threads"]}`,
    `throttle-trigger-threshold: ${p["throttle-trigger-threshold"]}`,
    `cpu-throttle-initial: ${p["cpu-throttle-initial"]}`,
    `cpu-throttle-increment: ${p["cpu-throttle-increment"]}`,
    `cpu-throttle-tailslow: ${onOff(p["cpu-throttle-tailslow"])}`,
    `max-cpu-throttle: ${p["max-cpu-throttle"]}`,
    `tls-creds: '${p["tls-creds"]}'`,
    `tls-hostname: '${p["tls-hostname"]}'`,
    `max-bandwidth: ${p["max-bandwidth"]} bytes/second`,
    `downtime-limit: ${p["downtime-limit"]} ms`,
    `x-checkpoint-delay: ${p["x-checkpoint-delay"]} ms`,
    `block-incremental: ${onOff(p["block-incremental"])}`,
    `multifd-channels: ${p["multifd-channels"]}`,
    `multifd-compression: ${p["multifd-compression"]}`,
    `xbzrle-cache-size: ${p["xbzrle-cache-size"]} bytes`,
    `max-postcopy-bandwidth: ${p["max-postcopy-bandwidth"]}`,
    `tls-authz: '${p["tls-authz"]}'`,
  ];
  if (p["block-bitmap-mapping"]) {
    lines.push("block-bitmap-mapping:");
    for (const node of p["block-bitmap-mapping"]) {
      lines.push(`  '${node["node-name"]}' -> '${node.alias}'`);
      for (const b of node.bitmaps) lines.push(`    '${b.name}' -> '${b.alias}'`);
    }
  }
  return lines.map((l) => `${l}\n`).join("");
}

/** info qom-tree: the subtree, children sorted by name, two spaces per level. */
function qomTree(o: QomObject, depth: number): string {
  const name = o.parent ? `/${o.name}` : "/";
  let out = `${"  ".repeat(depth)}${name} (${o.typename})\n`;
  const children = [...o.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const c of children) out += qomTree(c, depth + 1);
  return out;
}

/** The string input visitor qom-set uses without -j: the text read as the property's type. */
function fromText(name: string, type: string, text: string): unknown {
  if (type === "bool") {
    if (["on", "yes", "true"].includes(text)) return true;
    if (["off", "no", "false"].includes(text)) return false;
    throw genericError(`Parameter '${name}' expects 'on' or 'off'`);
  }
  if (type === "int") {
    const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
    if (!m) throw genericError(`Parameter '${name}' expects int64`);
    const digits = m[2]!;
    const n = digits.startsWith("0x") || digits.startsWith("0X") ? parseInt(digits, 16) : digits.length > 1 && digits.startsWith("0") ? parseInt(digits, 8) : parseInt(digits, 10);
    return m[1] === "-" ? -n : n;
  }
  return text;
}

function words(args: string): string[] {
  return args.trim().split(/\s+/).filter(Boolean);
}

export const hmpCommands: HmpCommand[] = [
  info("iothreads", (_a, ctx) =>
    (runQmp(ctx, "query-iothreads") as Record<string, number | string>[])
      .map(
        (t) =>
          `${t.id}:\n  thread_id=${t["thread-id"]}\n  poll-max-ns=${t["poll-max-ns"]}\n  poll-grow=${t["poll-grow"]}\n  poll-shrink=${t["poll-shrink"]}\n  aio-max-batch=${t["aio-max-batch"]}\n`,
      )
      .join(""),
  ),
  info("chardev", (_a, ctx) =>
    (runQmp(ctx, "query-chardev") as { label: string; filename: string }[]).map((c) => `${c.label}: filename=${c.filename}\n`).join(""),
  ),
  fixed(
    "migrate",
    "globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\nsend-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n",
  ),
  info("migrate_capabilities", (_a, ctx) =>
    MIGRATION_CAPABILITIES.map((c) => `${c}: ${onOff(extraState(ctx.emu).migration.capability(c))}\n`).join(""),
  ),
  info("migrate_parameters", (_a, ctx) => formatParameters(extraState(ctx.emu).migration.parameters())),
  {
    name: "info qom-tree",
    run: (args, ctx) => {
      const w = words(args);
      if (w.length > 1) return usage("qom-tree", "extraneous characters at the end of line", "info qom-tree");
      const path = w[0] ?? "/machine";
      let o: QomObject;
      try {
        o = resolvePath(extraState(ctx.emu).qom.root, path);
      } catch {
        return `Path '${path}' could not be resolved.\n`;
      }
      return qomTree(o, 0);
    },
  },
  info("memdev", (_a, ctx) =>
    (runQmp(ctx, "query-memdev") as Record<string, any>[])
      .map(
        (m) =>
          `memory backend: ${m.id}\n  size:  ${m.size}\n  merge: ${m.merge}\n  dump: ${m.dump}\n  prealloc: ${m.prealloc}\n  share: ${m.share}\n` +
          (m.reserve === undefined ? "" : `  reserve: ${m.reserve}\n`) +
          `  policy: ${m.policy}\n  host nodes: ${m["host-nodes"].join(",")}\n`,
      )
      .join("") + "\n",
  ),
  info("balloon", (_a, ctx) => String(runQmp(ctx, "query-balloon"))),
  info("hotpluggable-cpus", (_a, ctx) => String(runQmp(ctx, "query-hotpluggable-cpus"))),
  fixed("cpus", ""),
  // What -M none answers: no CPUs, buses, interrupts, ROMs or network.
  {
    // The address spaces of -M none; -f shows their flat views instead.
    name: "info mtree",
    run: (args) =>
      /(^|\s)-f/.test(args)
        ? 'FlatView #0\n AS "memory", root: system\n Root memory region: (none)\n  No rendered FlatView\n\nFlatView #1\n AS "I/O", root: io\n Root memory region: io\n  0000000000000000-000000000000ffff (prio 0, i/o): io\n\n'
        : "address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n\naddress-space: I/O\n  0000000000000000-000000000000ffff (prio 0, i/o): io\n\n",
  },
  fixed("qtree", "bus: main-system-bus\n  type System\n"),
  fixed("registers", "No CPU available\n"),
  fixed("lapic", "No CPU available\n"),
  fixed("tlb", "No CPU available\n"),
  fixed("mem", "No CPU available\n"),
  fixed("usb", "Error: USB support not enabled\n"),
  fixed("numa", "0 nodes\n"),
  fixed("roms", ""),
  fixed("irq", ""),
  fixed("pic", ""),
  fixed("history", ""),
  fixed("network", ""),
  fixed("capture", ""),
  fixed("usernet", ""),
  fixed("rdma", ""),
  fixed("virtio", "No VirtIO devices\n"),
  fixed("vcpu_dirty_limit", "Dirty page limit not enabled!\n"),
  fixed("vm-generation-id", "Error: VM Generation ID device not found\n"),
  info("dirty_rate", (_a, ctx) => extraState(ctx.emu).dirtyRate.report()),
  fixed("profile", "Error: Internal profiler not compiled\n"),
  fixed("opcount", "[TCG profiler not compiled]\n"),
  fixed("ramblock", "              Block Name    PSize              Offset               Used              Total\n"),
  fixed(
    "sync-profile",
    "Type               Object  Call site  Wait Time (s)         Count  Average (us)\n" + "-".repeat(79) + "\n" + "-".repeat(79) + "\n",
  ),
  fixed("mice", "No mouse devices connected\n"),
  fixed("tpm", ""),
  fixed("pci", ""),
  fixed("memory-devices", ""),
  fixed("vnc", "None\n"),
  fixed("spice", "Server: disabled\n"),
  fixed("dump", "Status: none\n"),
  fixed("replay", "Record/replay is not active\n"),
  fixed("sev", "SEV is not enabled\n"),
  fixed("sgx", "SGX is only supported on PC machines\n"),
  fixed("memory_size_summary", "base memory: 0\nplugged memory: 0\n"),
  {
    name: "qom-list",
    run: reportingErrors((args, ctx) => {
      const [path] = words(args);
      if (path === undefined) return "/\n";
      return resolvePath(extraState(ctx.emu).qom.root, path)
        .properties()
        .map((p) => `${p.name} (${p.type})\n`)
        .join("");
    }),
  },
  {
    name: "qom-get",
    run: reportingErrors((args, ctx) => {
      const w = words(args);
      if (w.length < 2) return usage("qom-get", "string expected");
      const value = resolvePath(extraState(ctx.emu).qom.root, w[0]!).getProperty(w[1]!);
      return `${serialize(value, true)}\n`;
    }),
  },
  {
    name: "qom-set",
    run: reportingErrors((args, ctx) => {
      const m = /^\s*(-j\s+)?(\S+)\s+(\S+)\s+(.*?)\s*$/s.exec(args);
      if (!m || m[4] === "") return usage("qom-set", "string expected");
      const [, json, path, property, text] = m as unknown as [string, string | undefined, string, string, string];
      const obj = resolvePath(extraState(ctx.emu).qom.root, path);
      let value: unknown;
      if (json) {
        try {
          value = JSON.parse(text);
        } catch {
          return `Error: JSON parse error, invalid keyword '${text}'\n`;
        }
      } else {
        const prop = obj.property(property);
        value = prop ? fromText(property, prop.type, text) : text;
      }
      obj.setProperty(property, value);
      return "";
    }),
  },
  {
    name: "object_del",
    run: reportingErrors((args, ctx) => {
      const [id] = words(args);
      if (id === undefined) return usage("object_del", "string expected");
      runQmp(ctx, "object-del", { id });
      return "";
    }),
  },
  { name: "system_reset", run: reportingErrors((_a, ctx) => (runQmp(ctx, "system_reset"), "")) },
  { name: "system_powerdown", run: reportingErrors((_a, ctx) => (runQmp(ctx, "system_powerdown"), "")) },
];
