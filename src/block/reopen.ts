/**
 * blockdev-reopen: a node gets a complete new set of options. What is not
 * given goes back to its default (read-only → false, detect-zeroes → off…);
 * what a driver cannot change at runtime must be repeated unchanged. Child
 * references may point to another node (file) or change the backing link.
 * Entries are checked first, all of them, then applied in order.
 */
import { genericError } from "../core/error.ts";
import type { BlockLayer } from "./index.ts";
import type { BlockNode, BdrvChild } from "./node.ts";
import { visitBlockdevOptions, type CommonOptions, type NodeOptions } from "./options.ts";

/** Driver options a running node accepts new values for (their *_reopen_prepare). */
const MUTABLE_OPTIONS: Record<string, readonly string[]> = {
  qcow2: [
    "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot", "pass-discard-other", "overlap-check",
    "cache-size", "l2-cache-size", "l2-cache-entry-size", "refcount-cache-size", "cache-clean-interval",
  ],
  file: ["drop-cache", "x-check-cache-dropped"],
  raw: ["offset", "size"],
};

interface Plan {
  node: BlockNode;
  opts: NodeOptions;
  /** Child reference changes: edge name → new node (null: drop backing). */
  children: Map<string, BlockNode | null>;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every option name a driver takes as a child reference. */
function childKeys(node: BlockNode): string[] {
  return Object.entries(node.def.fields)
    .filter(([, f]) => f.type === "ref" || f.type === "ref-or-null")
    .map(([k]) => k);
}

function plan(layer: BlockLayer, input: Record<string, unknown>, index: number): Plan {
  const name = input["node-name"];
  if (typeof name !== "string") throw genericError("node-name not specified");
  const node = layer.findNode(name);
  if (!node) throw genericError(`Failed to find node with node-name='${name}'`);
  const refs = childKeys(node);
  const mutable = new Set([...(MUTABLE_OPTIONS[node.driverName] ?? []), ...refs]);
  const old = node.options.specific;
  const declaresBacking = !!node.driver.imageInfo?.()["backing-filename"];
  if (refs.includes("backing") && input.backing === undefined && (node.backing || declaresBacking)) {
    throw genericError(`backing is missing for '${node.nodeName}'`);
  }
  for (const key of Object.keys(old)) {
    if (!mutable.has(key) && input[key] === undefined) throw genericError(`Option '${key}' cannot be reset to its default value`);
  }
  if (input.driver !== node.driverName) throw genericError("Cannot change the option 'driver'");
  const table = new Map([[node.driverName, { fields: node.def.fields }]]);
  const opts = visitBlockdevOptions(`options[${index}]`, input, table, "json");
  if (opts.common.forceShare !== node.common.forceShare) throw genericError("Cannot change the option 'force-share'");
  if (opts.common.detectZeroes === "unmap" && opts.common.discard !== "unmap") {
    throw genericError("setting detect-zeroes to unmap is not allowed without setting discard operation to unmap");
  }

  const children = new Map<string, BlockNode | null>();
  // QEMU parses the backing reference before the file reference.
  for (const key of [...refs].sort((a, b) => Number(b === "backing") - Number(a === "backing"))) {
    const given = opts.specific[key];
    const current = node.child(key)?.node ?? null;
    if (given === undefined) continue;
    if (given !== null && typeof given === "object") {
      // Inline options would open a new node: QEMU sees every inner option as changed.
      throw genericError(`Cannot change the option '${key}.driver'`);
    }
    const target = given === null ? null : layer.lookupNode(undefined, given as string);
    if (target !== current) {
      if (target === null && key !== "backing") throw genericError(`Cannot change the option '${key}'`);
      children.set(key, target);
    }
  }

  for (const [key, value] of Object.entries(opts.specific)) {
    if (!mutable.has(key) && !sameValue(old[key], value)) throw genericError(`Cannot change the option '${key}'`);
  }
  return { node, opts, children };
}

/** The node and the storage children it opened itself (they inherit read-only). */
function inheritingChain(node: BlockNode): BlockNode[] {
  const out = [node];
  const walk = (n: BlockNode) => {
    for (const c of n.children) {
      if (c.name === "backing" || out.includes(c.node) || !c.node.autoNamed || c.node.monitorOwned) continue;
      out.push(c.node);
      walk(c.node);
    }
  };
  walk(node);
  return out;
}

async function apply(layer: BlockLayer, p: Plan): Promise<void> {
  const { node, opts } = p;
  for (const [key, target] of p.children) {
    if (key === "backing") {
      await layer.setBacking(node, target);
      continue;
    }
    const edge = node.child(key) as BdrvChild;
    const old = edge.node;
    layer.graph.retarget([edge], target!);
    await layer.graph.closeIfOrphan(old);
  }

  const readOnly = opts.common.readOnly ?? false;
  const chain = readOnly !== node.readOnly ? inheritingChain(node) : [];
  const before = chain.map((n) => n.readOnly);
  if (readOnly) for (const n of chain) if (!n.readOnly) await n.flush();
  chain.forEach((n) => (n.readOnly = readOnly));
  try {
    layer.graph.refreshPerms();
  } catch (e) {
    chain.forEach((n, i) => (n.readOnly = before[i]!));
    layer.graph.refreshPermsRelaxed();
    throw e;
  }
  for (const n of readOnly ? chain : [...chain].reverse()) await n.driver.reopen?.(readOnly);

  const common = node.options.common as CommonOptions;
  common.readOnly = readOnly;
  common.discard = opts.common.discard;
  common.detectZeroes = opts.common.detectZeroes;
  common.cacheDirect = opts.common.cacheDirect;
  common.cacheNoFlush = opts.common.cacheNoFlush;
  common.autoReadOnly = opts.common.autoReadOnly;
  for (const [k, v] of Object.entries(opts.specific)) {
    if (!p.children.has(k)) node.options.specific[k] = v;
  }
}

export async function blockdevReopen(layer: BlockLayer, list: readonly Record<string, unknown>[]): Promise<void> {
  const plans = list.map((o, i) => plan(layer, o, i));
  for (const p of plans) await apply(layer, p);
}
