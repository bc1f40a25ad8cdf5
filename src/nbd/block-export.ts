/**
 * Block exports (QEMU's block/export layer) for the NBD server: each export
 * is an unnamed BlockBackend on a node, holding consistent-read (and write
 * when writable) and sharing everything but resize (NBD), served by NbdServer
 * under its export name. Deleting an export drops it from the server at
 * once; BLOCK_EXPORT_DELETED goes out when its last client has gone.
 */
import { STRERROR, strerror } from "../core/errno.ts";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { genericError } from "../core/error.ts";
import type { EventSink } from "../core/events.ts";
import { BlockBackend, type BlockLayer, type BlockNode, Perm, PERM_ALL, permProse } from "../block/index.ts";
import { isWellFormedId } from "../block/options.ts";
import type { BdrvChild } from "../block/node.ts";
import { NbdServer, type NbdAddress, type NbdExport } from "./server.ts";

/** NBD_MAX_STRING_SIZE. */
const MAX_STRING = 4096;

/** BlockExportType. Only nbd is served; fuse and vhost-user-blk exports are held (listed, deletable) but inert. */
export type ExportType = "nbd" | "vhost-user-blk" | "fuse" | "vduse-blk";

export interface ExportOptions {
  type: ExportType;
  id: string;
  nodeName: string;
  writable: boolean;
  writethrough: boolean;
  name?: string;
  description?: string;
  bitmaps?: readonly (string | { node: string; name: string })[];
  /** fuse */
  mountpoint?: string;
  /** vhost-user-blk on a unix socket */
  socketPath?: string;
}

export class BlockExport implements NbdExport {
  shuttingDown = false;
  private readonly fixedSize: number;

  /** Released when the export goes (the vhost-user socket). */
  onDelete?: () => Promise<void>;

  constructor(
    readonly type: ExportType,
    readonly id: string,
    readonly name: string,
    readonly description: string | undefined,
    readonly writable: boolean,
    private readonly writethrough: boolean,
    readonly blk: BlockBackend,
    readonly edge: BdrvChild,
  ) {
    // QEMU fixes the export size when the export is created.
    this.fixedSize = edge.node.size();
  }

  private get node(): BlockNode {
    return this.edge.node;
  }

  size(): number {
    return this.fixedSize;
  }

  read(buf: Uint8Array, offset: number): Promise<void> {
    return this.node.read(buf, offset);
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    await this.node.write(data, offset);
    if (this.writethrough) await this.node.flush();
  }

  async writeZeroes(offset: number, length: number, unmap: boolean): Promise<void> {
    await this.node.writeZeroes(offset, length, { unmap });
    if (this.writethrough) await this.node.flush();
  }

  discard(offset: number, length: number): Promise<void> {
    return this.node.discard(offset, length);
  }

  flush(): Promise<void> {
    return this.node.flush();
  }

  /** base:allocation over the whole backing chain (bdrv_block_status_above). */
  async status(offset: number, length: number): Promise<{ length: number; hole: boolean; zero: boolean }> {
    let layer: BlockNode | undefined = this.node;
    let n = length;
    while (layer) {
      if (offset >= layer.size()) return { length: n, hole: true, zero: true };
      const e = await layer.blockStatus(offset, Math.min(n, layer.size() - offset));
      n = Math.max(1, Math.min(n, e.length));
      if (e.allocated || e.data || e.zero) return { length: n, hole: !e.data, zero: e.zero };
      layer = layer.cowOrFiltered;
    }
    return { length: n, hole: true, zero: true };
  }
}

export class BlockExports {
  /** Newest first, like QEMU's export list. */
  readonly exports: BlockExport[] = [];
  private server: NbdServer | null = null;

  constructor(
    private readonly layer: BlockLayer,
    private readonly events: EventSink,
  ) {}

  get running(): boolean {
    return this.server !== null;
  }

  /** The TCP port the server listens on (tests bind to port 0). */
  get port(): number | undefined {
    return this.server?.port;
  }

  async startServer(addr: NbdAddress, maxConnections: number): Promise<void> {
    if (this.server) throw genericError("NBD server already running");
    const server = new NbdServer({ maxConnections, onConnectionClosed: () => this.reapClosed() });
    try {
      await server.listen(addr);
    } catch (e) {
      throw listenError(addr, e);
    }
    this.server = server;
  }

  async stopServer(): Promise<void> {
    if (!this.server) throw genericError("NBD server not running");
    // Oldest first, as QEMU's deletions complete.
    for (const exp of [...this.exports].reverse()) if (exp.type === "nbd") await this.remove(exp, "hard");
    const s = this.server;
    this.server = null;
    await s.close();
  }

  /** Clients in transmission on an export. */
  clientCount(exp: BlockExport): number {
    return this.server?.clientsOf(exp).length ?? 0;
  }

  find(id: string): BlockExport | undefined {
    return this.exports.find((e) => e.id === id);
  }

  async add(o: ExportOptions): Promise<BlockExport> {
    if (!isWellFormedId(o.id)) throw genericError("Invalid block export id");
    if (this.find(o.id)) throw genericError(`Block export id '${o.id}' is already in use`);
    const node = this.layer.lookupNode(undefined, o.nodeName);
    if (o.writable && node.readOnly) throw genericError("Cannot export read-only node as writable");
    if (o.type === "nbd") this.checkNbd(o, node);
    else await EXPORT_CREATE_CHECKS[o.type](o);
    const name = o.name ?? o.nodeName;
    const perm = Perm.CONSISTENT_READ | (o.writable ? Perm.WRITE : 0);
    checkNewUser(node, perm);
    const blk = new BlockBackend("");
    // NBD fixes the export size, so it forbids resizing; the other types share everything.
    const shared = o.type === "nbd" ? PERM_ALL & ~Perm.RESIZE : PERM_ALL;
    const edge = this.layer.attachUser(blk, node, "root", perm, shared);
    blk.root = edge;
    // Unnamed, so only the graph dump shows it (QEMU lists every BlockBackend there).
    this.layer.backends.push(blk);
    const exp = new BlockExport(o.type, o.id, name, o.description, o.writable, o.writethrough, blk, edge);
    this.exports.unshift(exp);
    if (o.type === "nbd") this.server!.exports.set(name, exp);
    if (o.type === "vhost-user-blk" && o.socketPath) exp.onDelete = await holdUnixSocket(o.socketPath);
    return exp;
  }

  private checkNbd(o: ExportOptions, node: BlockNode): void {
    if (!this.server) throw genericError("NBD server not running");
    const name = o.name ?? o.nodeName;
    if (name.length > MAX_STRING) throw genericError(`export name '${name}' too long`);
    if (o.description && o.description.length > MAX_STRING) throw genericError(`description '${o.description}' too long`);
    if (this.server.findExport(name)) throw genericError(`NBD server already has export named '${name}'`);
    for (const b of o.bitmaps ?? []) {
      const bitmapName = typeof b === "string" ? b : b.name;
      const owner = typeof b === "string" ? node : this.layer.lookupNode(b.node, b.node);
      let found = false;
      for (let n: BlockNode | undefined = owner; n && !found; n = n.cowOrFiltered) {
        found = n.bitmaps.some((bm) => bm.name === bitmapName);
      }
      if (!found) throw genericError(`Bitmap '${bitmapName}' is not found`);
    }
  }

  /** block-export-del / nbd-server-remove. */
  async remove(exp: BlockExport, mode: "safe" | "hard"): Promise<void> {
    if (exp.shuttingDown) throw genericError(`Block export '${exp.id}' is already shutting down`);
    const clients = this.server?.clientsOf(exp) ?? [];
    if (mode === "safe" && clients.length) {
      throw genericError(`export '${exp.id}' still in use`);
    }
    exp.shuttingDown = true;
    if (this.server?.exports.get(exp.name) === exp) this.server.exports.delete(exp.name);
    if (!clients.length) return this.finish(exp);
    // Clients are dropped in the background: the event follows the command's return.
    void this.server!.disconnect(exp).then(() => this.finish(exp));
  }

  private async finish(exp: BlockExport): Promise<void> {
    const i = this.exports.indexOf(exp);
    if (i < 0) return;
    this.exports.splice(i, 1);
    const bi = this.layer.backends.indexOf(exp.blk);
    if (bi >= 0) this.layer.backends.splice(bi, 1);
    await this.layer.detachUser(exp.edge);
    await exp.onDelete?.();
    this.events.emit("BLOCK_EXPORT_DELETED", { id: exp.id });
  }

  private reapClosed(): void {
    // Exports whose deletion waits for clients are finished in remove(); nothing to do.
  }

  /** Emulator shutdown: every export goes (with its event, as QEMU's quit shows), then the listener. */
  async close(): Promise<void> {
    for (const exp of [...this.exports].reverse()) {
      exp.shuttingDown = true;
      this.server?.exports.delete(exp.name);
      await this.server?.disconnect(exp);
      await this.finish(exp);
    }
    const s = this.server;
    this.server = null;
    await s?.close();
  }

  query(): Record<string, unknown>[] {
    return this.exports.map((e) => ({
      id: e.id,
      type: e.type,
      "node-name": e.edge.node.nodeName,
      "shutting-down": e.shuttingDown,
    }));
  }
}

/**
 * QEMU checks the new backend's wishes against what the node's parents share
 * before the reverse, so a writable export's 'write' conflict is the one reported.
 */
function checkNewUser(node: BlockNode, perm: number): void {
  for (const p of node.parents) {
    const clash = perm & ~p.shared;
    if (!clash) continue;
    throw genericError(
      `Permission conflict on node '${node.nodeName}': permissions '${permProse(clash)}' are both required by an unnamed block device ` +
        `(uses node '${node.nodeName}' as 'root' child) and unshared by ${p.describeParent()} (uses node '${node.nodeName}' as '${p.name}' child).`,
    );
  }
}

function listenError(addr: NbdAddress, e: unknown): Error {
  const code = (e as { code?: string }).code;
  if (addr.type === "unix" && code === "EACCES" && !fs.existsSync(path.dirname(addr.path))) {
    return genericError(`Failed to bind socket to ${addr.path}: ${STRERROR.ENOENT}`);
  }
  if (addr.type === "unix") return genericError(`Failed to bind socket to ${addr.path}: ${strerror(e)}`);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return genericError(`address resolution failed for ${addr.host}:${addr.port}: Name or service not known`);
  }
  return genericError(`Failed to find an available port: ${strerror(e)}`);
}

/** Checks QEMU makes when creating the export types we hold but do not serve. */
const EXPORT_CREATE_CHECKS: Record<Exclude<ExportType, "nbd">, (o: ExportOptions) => Promise<void> | void> = {
  fuse: (o) => {
    try {
      fs.statSync(o.mountpoint!);
    } catch (e) {
      const text = (e as { code?: string }).code === "EACCES" ? STRERROR.EACCES : STRERROR.ENOENT;
      throw genericError(`Failed to stat '${o.mountpoint}': ${text}`);
    }
  },
  "vhost-user-blk": () => {},
  "vduse-blk": () => {
    process.stderr.write("Failed to open /dev/vduse/control: No such file or directory\n");
    throw genericError("failed to create vduse device");
  },
};

/** vhost-user-blk listens on its socket; clients get no protocol from us, but the path exists. */
async function holdUnixSocket(socketPath: string): Promise<() => Promise<void>> {
  const srv = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(socketPath, () => resolve());
  }).catch((e) => {
    throw genericError(`Failed to bind socket to ${socketPath}: ${(e as { code?: string }).code === "EADDRINUSE" ? STRERROR.EADDRINUSE : STRERROR.ENOENT}`);
  });
  return () => new Promise<void>((r) => srv.close(() => r()));
}
