/**
 * The block layer: a graph of nodes (drivers), BlockBackends in front of
 * them, permissions between parents and children, op blockers, dirty
 * bitmaps and the guest I/O path.
 *
 * API for block jobs and other layers (everything async resolves when done):
 *
 *   Lookups
 *     layer.lookupNode(device?, nodeName?)   bdrv_lookup_bs: backend name first, then node-name;
 *                                            "Cannot find device='X' nor node-name='Y'"
 *     layer.findNode(name) / findBackend(name) / backendsOf(node)
 *     layer.deviceOrNodeName(node)           name QEMU prints for a node
 *     layer.isRoot(node)                     only BlockBackends above it (jobs and nodes make it non-root)
 *
 *   Node I/O (BlockNode, ./node.ts) — same shape as image/DiskImage:
 *     node.read(buf, off) · write(data, off) · writeZeroes(off, len, {unmap}) · discard(off, len)
 *     node.writeCompressed(data, off) (supportsCompressedWrites) · blockStatus(off, len) → Extent
 *     node.isAllocatedAbove(base|null, off, len) · flush() · size() · resize(n) · clusterSize
 *     node.drain()  waits for in-flight requests
 *     Writes run the node's write notifiers first (node.addWriteNotifier(fn) → remove fn) and
 *     mark the node's dirty bitmaps after success.
 *
 *   Graph changes (permission-checked; a refused change leaves the graph as it was)
 *     layer.openNode(options, {allowInternal})  open any registered driver (child refs by name)
 *     layer.attachUser(parent, node, childName, perm, shared) → BdrvChild   (jobs holding nodes)
 *     layer.setUserPerms(edge, perm, shared) · layer.detachUser(edge)
 *     layer.insertFilter(filter, below)   filter already has `below` as child; parents move up
 *     layer.removeFilter(filter)          parents move back down, the filter closes
 *     layer.replaceNode(from, to)         every parent of `from` (except below `to`) points to `to`
 *     layer.setBacking(node, backing|null) · layer.changeBackingFile(node, name, fmt)
 *     layer.reopen(node, readOnly)        bdrv_reopen of read-only (node + storage children)
 *     layer.registerDriver(def)           extra drivers (copy-before-write, mirror_top, copy-on-read)
 *     layer.close()                       flush and close everything, parents first
 *
 *   Op blockers
 *     node.blockOps(reason, {except?, only?}) → unblock fn
 *     layer.blockForJob(nodes, jobType) → unblock fn   ("block device is in use by block job: T")
 *     layer.checkOp(node, op)             throws "Node 'X' is busy: <reason>"
 *
 *   Dirty bitmaps: ./bitmap.ts (DirtyBitmap: set/reset/nextDirty/dirtyRanges/merge/clone,
 *   createSuccessor/abdicate/reclaim; attachBitmap(node.bitmaps, bm) lists job-internal anonymous
 *   bitmaps like QEMU) and ./bitmap-ops.ts (command logic returning undo functions, for `transaction`).
 *
 *   Elsewhere: ./snapshot.ts (prepareExternalSnapshot → {commit, abort}, blockResize),
 *   ./guest-io.ts (backend I/O with qemu-io's permission extension), ./qemu-io.ts (HMP qemu-io),
 *   ./query.ts (query-block, query-named-block-nodes, x-debug-query-block-graph, info block),
 *   ./io-limits.ts (backends' throttle groups, block_set_io_throttle), ./backing-file.ts (change-backing-file).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { FileStore } from "../image/file-store.ts";
import { createQcow2 } from "../image/qcow2/create.ts";
import type { Clock } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";
import { genericError } from "../core/error.ts";
import { BlockBackend, DRIVE_BACKEND_PERMS } from "./backend.ts";
import type { ChildRole, DriverDef, OpenContext } from "./driver.ts";
import { Graph } from "./graph.ts";
import { FileLocks } from "./locks.ts";
import { BdrvChild, BlockNode, deviceOrNodeName, type ExternalParent, type OpType } from "./node.ts";
import { isWellFormedId, visitBlockdevOptions, type CommonOptions, type NodeOptions, type Origin } from "./options.ts";
import { PERM_ALL } from "./perms.ts";
import { fileDriver } from "./drivers/file.ts";
import { rawDriver } from "./drivers/raw.ts";
import { nullDriver } from "./drivers/null.ts";
import { blkdebugDriver } from "./drivers/blkdebug.ts";
import { qcow2Driver } from "./drivers/qcow2.ts";
import { throttleDriver, type ThrottleGroupLookup } from "./drivers/throttle.ts";
import { ThrottleGroups } from "./io-limits.ts";

export { BlockNode, BdrvChild, deviceOrNodeName } from "./node.ts";
export type { ExternalParent, OpType, WriteNotifier, WriteKind } from "./node.ts";
export { BlockBackend } from "./backend.ts";
export { DirtyBitmap } from "./bitmap.ts";
export { Perm, PERM_ALL, permProse } from "./perms.ts";
export type { DriverDef, NodeDriver, OpenContext, DriverImageInfo } from "./driver.ts";

export interface BlockLayerDeps {
  readonly events: EventSink;
  readonly clock: Clock;
  /** Finds throttle-group objects for the throttle filter (the composition root reaches QOM). */
  readonly throttleGroups?: ThrottleGroupLookup;
  /** Whether a `secret` object of this id exists (encryption keys named by blockdev-create). */
  readonly secretExists?: (id: string) => boolean;
}

export interface OpenNodeOptions {
  /** Prefix for option error paths ("file" → "Parameter 'file.filename' is missing"). */
  path?: string;
  origin?: Origin;
  /** Defaults inherited from the parent node (read-only, cache, discard). */
  inherited?: Partial<CommonOptions>;
  /** Allow drivers that blockdev-add refuses (mirror_top & co). */
  allowInternal?: boolean;
  /** Do not open the backing file the image names (snapshot overlays). */
  noBacking?: boolean;
}

const join = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);

export class BlockLayer {
  readonly graph = new Graph();
  readonly locks = new FileLocks();
  readonly backends: BlockBackend[] = [];
  private readonly drivers = new Map<string, DriverDef>();
  private idCounter = 0;
  /** Throttle groups by name (object-add'ed and backends' own) and backends' I/O limits. */
  readonly throttleGroups: ThrottleGroups;

  constructor(readonly deps: BlockLayerDeps) {
    this.throttleGroups = new ThrottleGroups(deps.clock, deps.throttleGroups);
    for (const d of [fileDriver(this.locks), rawDriver, qcow2Driver, nullDriver("null-co"), nullDriver("null-aio"), blkdebugDriver, throttleDriver(deps.clock, this.throttleGroups.lookup)]) {
      this.registerDriver(d);
    }
  }

  registerDriver(def: DriverDef): void {
    this.drivers.set(def.name, def);
  }

  driver(name: string): DriverDef | undefined {
    return this.drivers.get(name);
  }

  /** Every named node, oldest first. */
  get nodes(): readonly BlockNode[] {
    return this.graph.nodes;
  }

  // ---- Lookups --------------------------------------------------------------

  findNode(name: string): BlockNode | undefined {
    return this.graph.findNode(name);
  }

  findBackend(name: string): BlockBackend | undefined {
    return name ? this.backends.find((b) => b.name === name) : undefined;
  }

  /** bdrv_lookup_bs. */
  lookupNode(device: string | undefined, nodeName: string | undefined): BlockNode {
    if (device !== undefined) {
      const blk = this.findBackend(device);
      if (blk) {
        if (!blk.node) throw genericError(`Device '${device}' has no medium`);
        return blk.node;
      }
    }
    if (nodeName !== undefined) {
      const n = this.findNode(nodeName);
      if (n) return n;
    }
    throw genericError(`Cannot find device='${device ?? ""}' nor node-name='${nodeName ?? ""}'`);
  }

  /** A "device" argument: backend name or node-name. */
  lookupDeviceOrNode(name: string): BlockNode {
    return this.lookupNode(name, name);
  }

  backendsOf(node: BlockNode): BlockBackend[] {
    return node.parents.map((p) => p.parent).filter((p): p is BlockBackend => p instanceof BlockBackend);
  }

  deviceOrNodeName(node: BlockNode): string {
    return deviceOrNodeName(node);
  }

  /**
   * bdrv_is_root_node: only BlockBackends above it. A parent node or a job
   * holding the node (e.g. a backup target) makes it a non-root.
   */
  isRoot(node: BlockNode): boolean {
    return node.parents.every((p) => p.parent instanceof BlockBackend);
  }

  checkOp(node: BlockNode, op: OpType): void {
    const reason = node.opBlockedReason(op);
    if (reason) throw genericError(`Node '${this.deviceOrNodeName(node)}' is busy: ${reason}`);
  }

  /** block_job_add_bdrv's blocker on every node a job holds. */
  blockForJob(nodes: readonly BlockNode[], jobType: string): () => void {
    const undo = nodes.map((n) => n.blockOps(`block device is in use by block job: ${jobType}`));
    return () => undo.forEach((u) => u());
  }

  // ---- Opening nodes --------------------------------------------------------

  private driverTable(allowInternal: boolean): ReadonlyMap<string, DriverDef> {
    if (allowInternal) return new Map([...this.drivers].map(([k, d]) => [k, { ...d, internal: false }]));
    return this.drivers;
  }

  /** Validates a whole BlockdevOptions tree in QAPI member order before anything opens. */
  validateTree(input: unknown, prefix = "", origin: Origin = "json", allowInternal = false): void {
    if (!input || typeof input !== "object" || Array.isArray(input)) {
      throw genericError(`Invalid parameter type for '${prefix || "options"}', expected: object`);
    }
    const opts = visitBlockdevOptions(prefix, input as Record<string, unknown>, this.driverTable(allowInternal), origin);
    const def = this.drivers.get(opts.driver)!;
    for (const [name, f] of Object.entries(def.fields)) {
      const v = opts.specific[name];
      if ((f.type === "ref" || f.type === "ref-or-null") && v && typeof v === "object") {
        this.validateTree(v, join(prefix, name), origin);
      }
    }
  }

  /** Opens a child reference: an existing node's name (device names too), or inline options. */
  async openNode(ref: unknown, o: OpenNodeOptions = {}): Promise<BlockNode> {
    if (typeof ref === "string") return this.lookupNode(ref, ref);
    const origin = o.origin ?? "json";
    const opts = visitBlockdevOptions(o.path ?? "", ref as Record<string, unknown>, this.driverTable(!!o.allowInternal), origin, o.inherited);
    if (o.noBacking) opts.noBacking = true;
    return this.openFromOptions(opts, o.path ?? "", origin);
  }

  private async openFromOptions(opts: NodeOptions, prefix: string, origin: Origin): Promise<BlockNode> {
    const def = this.drivers.get(opts.driver)!;
    const node = new BlockNode(def, opts);
    const childDefaults: Partial<CommonOptions> = {
      readOnly: node.readOnly,
      cacheDirect: opts.common.cacheDirect,
      cacheNoFlush: opts.common.cacheNoFlush,
      autoReadOnly: opts.common.autoReadOnly,
      forceShare: opts.common.forceShare,
      // Lower layers get discard=unmap: the format above decides what to pass down.
      discard: "unmap",
    };
    const openRef = (key: string, ref: unknown, readOnly = node.readOnly) =>
      this.openNode(ref, { path: join(prefix, key), origin, inherited: { ...childDefaults, readOnly } });

    let primary: BlockNode | null = null;
    let primaryEdge: BdrvChild | null = null;
    let registered = false;
    try {
      if (def.primaryChild) primary = await openRef(def.primaryChild.key, opts.specific[def.primaryChild.key]);
      this.assignName(node, opts.common.nodeName);
      if (opts.common.forceShare && !node.readOnly) throw genericError("force-share=on can only be used with read-only images");
      if (opts.common.detectZeroes === "unmap" && opts.common.discard !== "unmap") {
        throw genericError("setting detect-zeroes to unmap is not allowed without setting discard operation to unmap");
      }
      this.graph.register(node);
      registered = true;
      if (primary && def.primaryChild) {
        primaryEdge = new BdrvChild(def.primaryChild.role, node, primary);
        this.graph.link(primaryEdge);
        this.graph.refreshPerms();
      }
      const ctx: OpenContext = {
        node,
        options: opts.specific,
        primary,
        emit: (event, data) => this.deps.events.emit(event, data),
        openChild: async (key: string, role: ChildRole) => {
          if (primaryEdge && def.primaryChild?.key === key) return primaryEdge;
          const ref = opts.specific[key];
          if (ref === undefined || ref === null) return null;
          const child = await openRef(key, ref, role === "backing" ? true : node.readOnly);
          const edge = new BdrvChild(role, node, child);
          this.graph.link(edge);
          return edge;
        },
        openChildByFilename: async (filename: string, format: string | undefined, role: ChildRole, readOnly: boolean) => {
          const child = await this.openNode(
            { driver: format ?? probeFormat(filename), file: { driver: "file", filename } },
            { path: join(prefix, role), inherited: { ...childDefaults, readOnly } },
          );
          const edge = new BdrvChild(role, node, child);
          this.graph.link(edge);
          return edge;
        },
      };
      node.driver = await def.open(ctx);
      this.graph.refreshPerms();
      return node;
    } catch (e) {
      await this.abandon(node, registered, primary);
      throw e;
    }
  }

  /** Undo a half-opened node: drop its edges, close what only it referenced. */
  private async abandon(node: BlockNode, registered: boolean, primary: BlockNode | null): Promise<void> {
    const children = node.children.map((c) => c.node);
    for (const c of [...node.children]) this.graph.unlink(c);
    if (registered) this.graph.unregister(node);
    node.closed = true;
    try {
      await node.driver?.close();
    } catch {
      // already failing
    }
    for (const c of new Set([...children, ...(primary ? [primary] : [])])) await this.graph.closeIfOrphan(c);
    this.graph.refreshPermsRelaxed();
  }

  private assignName(node: BlockNode, name: string | undefined): void {
    if (name === undefined) {
      const n = this.idCounter++;
      node.nodeName = `#block${n}${String(Math.floor(Math.random() * 100)).padStart(2, "0")}`;
      node.autoNamed = true;
      return;
    }
    if (!isWellFormedId(name)) throw genericError(`Invalid node-name: '${name}'`);
    if (this.findBackend(name)) throw genericError(`node-name=${name} is conflicting with a device id`);
    if (this.findNode(name)) throw genericError(`Duplicate nodes with node-name='${name}'`);
    if (name.length >= 32) throw genericError("Node name too long");
    node.nodeName = name;
  }

  // ---- blockdev-add / blockdev-del -------------------------------------------

  async blockdevAdd(input: Record<string, unknown>, origin: Origin = "json"): Promise<BlockNode> {
    this.validateTree(input, "", origin);
    if (input["node-name"] === undefined) throw genericError("'node-name' must be specified for the root node");
    const node = await this.openNode(input, { origin });
    node.monitorOwned = true;
    return node;
  }

  /**
   * HMP drive_del on a BlockBackend: its medium goes (unless a job blocks
   * that), the name disappears, and nodes nobody else holds are closed.
   */
  async deleteDrive(id: string): Promise<void> {
    const blk = this.findBackend(id);
    if (!blk) throw genericError(`Device '${id}' not found`);
    if (blk.root) {
      this.checkOp(blk.root.node, "drive-del");
      const root = blk.root;
      blk.root = null;
      await this.graph.detach(root);
    }
    await this.throttleGroups.disable(blk);
    this.backends.splice(this.backends.indexOf(blk), 1);
  }

  async blockdevDel(nodeName: string): Promise<void> {
    const node = this.findNode(nodeName);
    if (!node) throw genericError(`Failed to find node with node-name='${nodeName}'`);
    if (this.backendsOf(node).length) throw genericError(`Node ${nodeName} is in use`);
    this.checkOp(node, "drive-del");
    if (!node.monitorOwned) throw genericError(`Node ${nodeName} is not owned by the monitor`);
    if (node.parents.length) throw genericError(`Block device ${this.deviceOrNodeName(node)} is in use`);
    node.monitorOwned = false;
    await this.graph.close(node);
  }

  // ---- -drive -----------------------------------------------------------------

  /** -drive: a BlockBackend named `id` over a format node over a protocol node. */
  async addDrive(flat: Record<string, string>): Promise<BlockBackend> {
    const o = { ...flat };
    const take = (k: string) => {
      const v = o[k];
      delete o[k];
      return v;
    };
    const iface = take("if") ?? "none";
    const id = take("id") ?? `${iface}${this.backends.length}`;
    if (this.findBackend(id)) throw genericError(`drive with bus=0, unit=0 (index=0) exists`);
    if (this.findNode(id)) throw genericError(`Device name '${id}' conflicts with an existing node name`);
    const file = take("file") || undefined; // file= (empty) is no file
    const [formatOpt, driverOpt] = [take("format"), take("driver")];
    if (formatOpt !== undefined && driverOpt !== undefined) throw genericError("Cannot specify both 'driver' and 'format'");
    const format = formatOpt ?? driverOpt;
    // blockdev_init reads detect-zeroes itself, with its own complaint.
    const detectZeroes = o["detect-zeroes"];
    if (detectZeroes !== undefined && !["off", "on", "unmap"].includes(detectZeroes)) throw genericError(`invalid parameter value: ${detectZeroes}`);
    const readonly = take("readonly");
    const cache = take("cache");
    const werror = take("werror");
    const rerror = take("rerror");
    const snapshot = take("snapshot");
    // media=cdrom implies read-only (drive_new).
    const cdrom = take("media") === "cdrom";
    for (const k of ["index", "bus", "unit", "serial", "copy-on-read", "aio"]) take(k);
    const isOn = (v: string | undefined) => v !== undefined && ["on", "yes", "true", "y"].includes(v);
    const blk = new BlockBackend(id);
    if (werror) blk.werror = werror;
    if (rerror) blk.rerror = rerror;
    const cacheModes: Record<string, { direct: string; noFlush: string; writeback: boolean }> = {
      writeback: { direct: "off", noFlush: "off", writeback: true },
      none: { direct: "on", noFlush: "off", writeback: true },
      writethrough: { direct: "off", noFlush: "off", writeback: false },
      directsync: { direct: "on", noFlush: "off", writeback: false },
      unsafe: { direct: "off", noFlush: "on", writeback: true },
    };
    const mode = cacheModes[cache ?? "writeback"];
    if (!mode) throw genericError(`invalid cache option`);
    // cache.writeback= wins over cache= (drive_new: specific options take precedence).
    const writeback = take("cache.writeback");
    blk.writeback = writeback === undefined ? mode.writeback : isOn(writeback);
    this.backends.push(blk);
    if (file === undefined && format === undefined) {
      // An empty drive: what a medium inserted later will be opened with.
      const detectZeroes = o["detect-zeroes"];
      blk.rootState = {
        readOnly: cdrom || isOn(readonly),
        cacheDirect: false,
        cacheNoFlush: false,
        discard: "ignore",
        detectZeroes: detectZeroes !== undefined && detectZeroes !== "off",
      };
      return blk;
    }
    try {
      const keyval: Record<string, unknown> = { ...o };
      keyval.driver = format ?? probeFormat(file!);
      const temporary = snapshot !== undefined && ["on", "yes", "true"].includes(snapshot);
      if (readonly !== undefined) keyval["read-only"] = readonly;
      if (cdrom) keyval["read-only"] = "on";
      // snapshot=on: the image stays untouched under a throw-away overlay.
      if (temporary) keyval["read-only"] = "on";
      // cache= sets the defaults; cache.direct= / cache.no-flush= given alongside win.
      keyval["cache.direct"] ??= mode.direct;
      keyval["cache.no-flush"] ??= mode.noFlush;
      if (file !== undefined) {
        if (this.drivers.get(keyval.driver as string)?.kind === "protocol") {
          keyval.filename = file;
        } else {
          if (!Object.keys(o).includes("file.driver")) keyval["file.driver"] = "file";
          keyval["file.filename"] = file;
        }
      }
      const tree = nestKeyval(keyval);
      let node = await this.openNode(tree, { origin: "drive" });
      if (temporary) node = await this.appendTempSnapshot(node);
      blk.readOnly = node.readOnly;
      blk.root = this.graph.attach(blk, "root", node, DRIVE_BACKEND_PERMS);
      [blk.perm, blk.shared] = [DRIVE_BACKEND_PERMS.perm, DRIVE_BACKEND_PERMS.shared];
      return blk;
    } catch (e) {
      this.backends.splice(this.backends.indexOf(blk), 1);
      throw e;
    }
  }

  /**
   * bdrv_append_temp_snapshot: a qcow2 overlay in $TMPDIR (default /var/tmp)
   * named vl.XXXXXX, with no backing name in its header, cache=unsafe, and
   * deleted when closed.
   */
  private async appendTempSnapshot(base: BlockNode): Promise<BlockNode> {
    const dir = process.env.TMPDIR || "/var/tmp";
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const name = Array.from({ length: 6 }, () => chars[Math.floor(Math.random() * chars.length)]).join("");
    const tmp = path.join(dir, `vl.${name}`);
    const store = FileStore.open(tmp, { create: true });
    try {
      await createQcow2(store, { size: base.size() });
    } finally {
      await store.close();
    }
    const overlay = await this.openNode(
      { driver: "qcow2", cache: { "no-flush": true }, file: { driver: "file", filename: tmp } },
      { noBacking: true },
    );
    overlay.deleteOnClose = tmp;
    await this.setBacking(overlay, base);
    return overlay;
  }

  /** Opens the -blockdev and -drive options of the command line, in QEMU's order. */
  async startup(opts: { blockdevs?: Record<string, unknown>[]; drives?: Record<string, string>[] }): Promise<void> {
    // A failure names its option (`blockOption`), so the CLI can print "-blockdev ...: <desc>" like QEMU.
    const tag = (e: unknown, kind: "blockdev" | "drive", index: number) => {
      if (e && typeof e === "object") Object.assign(e, { blockOption: { kind, index } });
      return e;
    };
    for (const [i, b] of (opts.blockdevs ?? []).entries()) {
      await this.blockdevAdd(b, allStringLeaves(b) ? "keyval" : "json").catch((e) => Promise.reject(tag(e, "blockdev", i)));
    }
    for (const [i, d] of (opts.drives ?? []).entries()) {
      await this.addDrive(d).catch((e) => Promise.reject(tag(e, "drive", i)));
    }
  }

  // ---- Graph changes for jobs and snapshots -----------------------------------

  attachUser(parent: ExternalParent, node: BlockNode, childName: string, perm: number, shared: number): BdrvChild {
    const edge = this.graph.attach(parent, childName, node, { perm, shared });
    if (parent.kind === "block-job" && !this.jobParents.includes(parent)) this.jobParents.push(parent);
    return edge;
  }

  /** Jobs holding nodes, in the order they first attached (QEMU lists jobs by creation). */
  readonly jobParents: ExternalParent[] = [];

  setUserPerms(edge: BdrvChild, perm: number, shared: number): void {
    this.graph.setWanted(edge, perm, shared);
  }

  async detachUser(edge: BdrvChild): Promise<void> {
    await this.graph.detach(edge);
    const p = edge.parent as ExternalParent;
    if (p.kind === "block-job" && !this.graph.topoOrder().some((n) => n.parents.some((e) => e.parent === p))) {
      this.jobParents.splice(this.jobParents.indexOf(p), 1);
    }
  }

  /** Parent edges of `from` that may move to `to` without making a cycle. */
  private movableParents(from: BlockNode, to: BlockNode): BdrvChild[] {
    const below = new Set<BlockNode>();
    const walk = (n: BlockNode) => {
      if (below.has(n)) return;
      below.add(n);
      for (const c of n.children) walk(c.node);
    };
    walk(to);
    return from.parents.filter((e) => {
      if (e.parentNode) return !below.has(e.parentNode);
      // Jobs hold their nodes where they are (child_job's stay_at_node); backends move.
      return (e.parent as ExternalParent).kind !== "block-job";
    });
  }

  /** Every parent of `from` now uses `to` (bdrv_replace_node). */
  replaceNode(from: BlockNode, to: BlockNode): void {
    this.graph.retarget(this.movableParents(from, to), to);
  }

  /** `filter` was opened with `below` as its child: move below's parents onto the filter. */
  insertFilter(filter: BlockNode, below: BlockNode): void {
    this.replaceNode(below, filter);
  }

  /** Undo insertFilter: parents (but jobs) go back to the filtered node; the filter closes once unused. */
  async removeFilter(filter: BlockNode): Promise<void> {
    const child = filter.filtered?.node;
    if (child) this.replaceNode(filter, child);
    filter.monitorOwned = false;
    // A job still holding the filter keeps it alive; it closes when the job lets go.
    await this.graph.closeIfOrphan(filter);
  }

  /** Makes `backing` the backing child of `node` (null: none). */
  async setBacking(node: BlockNode, backing: BlockNode | null): Promise<void> {
    const old = node.backing;
    if (old?.node === backing) return;
    if (backing && reaches(backing, node)) {
      throw genericError(`Making '${backing.nodeName}' a backing child of '${node.nodeName}' would create a cycle`);
    }
    if (old) this.graph.unlink(old);
    let edge: BdrvChild | null = null;
    if (backing) {
      edge = new BdrvChild("backing", node, backing);
      this.graph.link(edge);
    }
    try {
      this.graph.refreshPerms();
    } catch (e) {
      if (edge) this.graph.unlink(edge);
      if (old) this.graph.link(old);
      this.graph.refreshPermsRelaxed();
      throw e;
    }
    node.driver.backingChanged?.();
    if (old) await this.graph.closeIfOrphan(old.node);
  }

  /**
   * bdrv_reopen with read-only changed: the node and its storage children
   * (not its backing chain) switch mode; permissions are re-checked.
   */
  async reopen(node: BlockNode, readOnly: boolean): Promise<void> {
    const chain: BlockNode[] = [];
    const walk = (n: BlockNode) => {
      chain.push(n);
      for (const c of n.children) if (c.name !== "backing" && !chain.includes(c.node)) walk(c.node);
    };
    walk(node);
    const old = chain.map((n) => n.readOnly);
    // Cached metadata must reach the file while it is still writable.
    if (readOnly) for (const n of chain) if (!n.readOnly) await n.flush();
    chain.forEach((n) => (n.readOnly = readOnly));
    try {
      this.graph.refreshPerms();
    } catch (e) {
      chain.forEach((n, i) => (n.readOnly = old[i]!));
      throw e;
    }
    // Storage first when becoming writable, format first when becoming read-only.
    const order = readOnly ? chain : [...chain].reverse();
    for (const n of order) await n.driver.reopen?.(readOnly);
  }

  /** Rewrites the backing file name recorded in the image (commit/stream). */
  async changeBackingFile(node: BlockNode, filename: string | null, format: string | null): Promise<void> {
    await node.driver.changeBackingFile?.(filename, format);
  }

  /** Flushes and closes everything (quit). */
  async close(): Promise<void> {
    for (const b of this.backends) if (b.root) this.graph.unlink(b.root);
    await this.graph.closeAll();
  }

  /** Flushes every node (e.g. before an external snapshot reads the files). */
  async flushAll(): Promise<void> {
    for (const n of this.graph.nodes) await n.flush().catch(() => {});
  }

  /** A permissive user for one-off I/O (qemu-io on a node-name, x-qmpemu-guest-io). */
  temporaryBackend(): BlockBackend {
    return new BlockBackend("");
  }

  get permAll(): number {
    return PERM_ALL;
  }
}

/** qcow2 magic → qcow2, anything else → raw (QEMU probes the same way for these two). */
export function probeFormat(filename: string): string {
  try {
    const fd = fs.openSync(filename, "r");
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 0);
    fs.closeSync(fd);
    return b.readUInt32BE(0) === 0x514649fb ? "qcow2" : "raw";
  } catch {
    return "raw";
  }
}

/** Turns {"file.filename": "x"} into {file: {filename: "x"}}. */
/** bdrv_recurse_has_child: `to` is `from` or somewhere below it. */
function reaches(from: BlockNode, to: BlockNode, seen = new Set<BlockNode>()): boolean {
  if (from === to) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  return from.children.some((c) => reaches(c.node, to, seen));
}

export function nestKeyval(flat: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split(".");
    let cur = out;
    for (const p of parts.slice(0, -1)) {
      if (typeof cur[p] !== "object" || cur[p] === null) cur[p] = {};
      cur = cur[p] as Record<string, unknown>;
    }
    cur[parts[parts.length - 1]!] = v;
  }
  return out;
}

function allStringLeaves(v: unknown): boolean {
  if (typeof v === "string") return true;
  if (v && typeof v === "object") return Object.values(v).every(allStringLeaves);
  return false;
}

export { resolveBackingPath } from "./paths.ts";
