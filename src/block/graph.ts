/**
 * The node graph: registration, edges, and the permission system.
 *
 * Every structural change (attach, detach, retarget an edge, change what an
 * external user asks for) recomputes all permissions from the roots down
 * and checks them before anything is committed, so a refused change leaves
 * the graph exactly as it was (QEMU's bdrv_refresh_perms in a transaction).
 */
import * as fs from "node:fs";
import { genericError } from "../core/error.ts";
import { BdrvChild, BlockNode, deviceOrNodeName, type ExternalParent } from "./node.ts";
import { Perm, PERM_ALL, permProse } from "./perms.ts";

export class Graph {
  /** Named nodes, oldest first (name assignment order). */
  readonly nodes: BlockNode[] = [];
  /** Called when a node is closed because nothing references it any more. */
  onNodeClosed?: (node: BlockNode) => void;
  private readonly backingBlockers = new Map<BdrvChild, () => void>();

  register(node: BlockNode): void {
    this.nodes.push(node);
  }

  unregister(node: BlockNode): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }

  findNode(name: string): BlockNode | undefined {
    return this.nodes.find((n) => n.nodeName === name);
  }

  /** Adds an edge; permissions are checked, and a refusal removes it again. */
  attach(parent: BlockNode | ExternalParent, name: string, child: BlockNode, want?: { perm: number; shared: number }): BdrvChild {
    const edge = new BdrvChild(name, parent, child, want?.perm ?? 0, want?.shared ?? PERM_ALL);
    this.link(edge);
    try {
      this.refreshPerms();
    } catch (e) {
      this.unlink(edge);
      throw e;
    }
    return edge;
  }

  /** Adds an edge without checking permissions (caller refreshes). */
  link(edge: BdrvChild): void {
    edge.node.parents.unshift(edge);
    if (edge.parent instanceof BlockNode) {
      edge.parent.children.push(edge);
      if (edge.name === "backing") {
        // bdrv_backing_attach: a backing file may only be committed into, streamed or backed up.
        const reason = `node is used as backing hd of '${deviceOrNodeName(edge.parent)}'`;
        this.backingBlockers.set(edge, edge.node.blockOps(reason, { except: ["commit-target", "stream", "backup-source", "backup-target"] }));
      }
    }
  }

  /** Removes an edge without touching permissions or closing anything. */
  unlink(edge: BdrvChild): void {
    this.backingBlockers.get(edge)?.();
    this.backingBlockers.delete(edge);
    const pi = edge.node.parents.indexOf(edge);
    if (pi >= 0) edge.node.parents.splice(pi, 1);
    if (edge.parent instanceof BlockNode) {
      const ci = edge.parent.children.indexOf(edge);
      if (ci >= 0) edge.parent.children.splice(ci, 1);
    }
  }

  /** Removes an edge; a child left without parents and not monitor-owned is closed. */
  async detach(edge: BdrvChild): Promise<void> {
    this.unlink(edge);
    this.refreshPermsRelaxed();
    await this.closeIfOrphan(edge.node);
  }

  /** Points `edge` at `to` instead (pivot, filter insertion); reverted when refused. */
  retarget(edges: BdrvChild[], to: BlockNode): void {
    const old = edges.map((e) => e.node);
    for (const e of edges) {
      this.unlink(e);
      e.node = to;
      this.link(e);
    }
    try {
      this.refreshPerms();
    } catch (e) {
      edges.forEach((edge, i) => {
        this.unlink(edge);
        edge.node = old[i]!;
        this.link(edge);
      });
      this.refreshPermsRelaxed();
      throw e;
    }
  }

  /** Changes what an external parent asks for; reverted when refused. */
  setWanted(edge: BdrvChild, perm: number, shared: number): void {
    const [op, os] = [edge.wantPerm, edge.wantShared];
    edge.wantPerm = perm;
    edge.wantShared = shared;
    try {
      this.refreshPerms();
    } catch (e) {
      edge.wantPerm = op;
      edge.wantShared = os;
      throw e;
    }
  }

  async closeIfOrphan(node: BlockNode): Promise<void> {
    if (node.parents.length > 0 || node.monitorOwned || node.closed) return;
    await this.close(node);
  }

  /** Closes a node and drops its edges (children may follow). */
  async close(node: BlockNode): Promise<void> {
    if (node.closed) return;
    await node.drain();
    try {
      await node.driver?.flush();
    } catch {
      // Closing must not fail; QEMU ignores flush errors on close as well.
    }
    node.closed = true;
    this.unregister(node);
    node.driver?.setPerm?.(0, PERM_ALL);
    try {
      await node.driver?.close();
    } catch {
      // A failing final flush (blkdebug, full disk) must not keep the node open.
    }
    if (node.deleteOnClose) fs.rmSync(node.deleteOnClose, { force: true });
    this.onNodeClosed?.(node);
    for (const c of [...node.children]) {
      this.unlink(c);
      await this.closeIfOrphan(c.node);
    }
    this.refreshPermsRelaxed();
  }

  /** Closes every node, parents before children (formats flush through still-open files). */
  async closeAll(): Promise<void> {
    for (const n of this.topoOrder()) {
      n.monitorOwned = false;
      await this.close(n);
    }
  }

  /** Nodes reachable from the registry plus anything hanging off them, parents before children. */
  topoOrder(): BlockNode[] {
    const all = new Set<BlockNode>();
    const visit = (n: BlockNode) => {
      if (all.has(n)) return;
      all.add(n);
      for (const c of n.children) visit(c.node);
      for (const p of n.parents) if (p.parentNode) visit(p.parentNode);
    };
    for (const n of this.nodes) visit(n);
    const pending = new Map<BlockNode, number>();
    for (const n of all) pending.set(n, n.parents.filter((p) => p.parentNode).length);
    const order: BlockNode[] = [];
    const ready = [...all].filter((n) => pending.get(n) === 0);
    while (ready.length) {
      const n = ready.shift()!;
      order.push(n);
      for (const c of n.children) {
        const left = pending.get(c.node)! - 1;
        pending.set(c.node, left);
        if (left === 0) ready.push(c.node);
      }
    }
    return order;
  }

  /** Computes and checks every edge's permissions; commits only when all pass. */
  refreshPerms(): void {
    const plan = this.plan(true);
    this.commit(plan);
  }

  /** After removals nothing new is required; commit without refusing. */
  refreshPermsRelaxed(): void {
    this.commit(this.plan(false));
  }

  private plan(check: boolean): { edges: Map<BdrvChild, [number, number]>; cumulative: Map<BlockNode, [number, number]> } {
    const edges = new Map<BdrvChild, [number, number]>();
    const cumulative = new Map<BlockNode, [number, number]>();
    const permsOf = (e: BdrvChild): [number, number] => edges.get(e) ?? [e.wantPerm, e.wantShared];
    for (const node of this.topoOrder()) {
      let perm = 0;
      let shared = PERM_ALL;
      for (const e of node.parents) {
        const [p, s] = permsOf(e);
        perm |= p;
        shared &= s;
      }
      if (check) this.checkNode(node, perm, shared, permsOf);
      cumulative.set(node, [perm, shared]);
      for (const c of node.children) {
        const [p, s] = node.childPerms(c, perm, shared);
        // bdrv_child_perm: a force-share child lets everyone in.
        edges.set(c, [p, c.node.common.forceShare ? PERM_ALL : s]);
      }
    }
    return { edges, cumulative };
  }

  private checkNode(node: BlockNode, perm: number, shared: number, permsOf: (e: BdrvChild) => [number, number]): void {
    if (perm & (Perm.WRITE | Perm.WRITE_UNCHANGED) && node.readOnly) throw genericError("Block node is read-only");
    for (const a of node.parents) {
      for (const b of node.parents) {
        if (a === b) continue;
        const [, aShared] = permsOf(a);
        const [bPerm] = permsOf(b);
        const missing = bPerm & ~aShared;
        if (missing) {
          const name = node.nodeName;
          throw genericError(
            `Permission conflict on node '${name}': permissions '${permProse(missing)}' are both required by ` +
              `${b.describeParent()} (uses node '${name}' as '${b.name}' child) and unshared by ` +
              `${a.describeParent()} (uses node '${name}' as '${a.name}' child).`,
          );
        }
      }
    }
    node.driver?.checkPerm?.(perm, shared);
  }

  private commit(plan: { edges: Map<BdrvChild, [number, number]>; cumulative: Map<BlockNode, [number, number]> }): void {
    for (const [node, [perm, shared]] of plan.cumulative) {
      for (const e of node.parents) {
        const [p, s] = plan.edges.get(e) ?? [e.wantPerm, e.wantShared];
        e.perm = p;
        e.shared = s;
      }
      node.driver?.setPerm?.(perm, shared);
    }
  }
}
