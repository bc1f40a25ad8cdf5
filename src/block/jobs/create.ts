/**
 * blockdev-create: the work of a `create` job. Drivers that can create
 * images are a table; the command refuses the others before any job exists
 * ("Driver does not support blockdev-create"), everything else fails the
 * job with QEMU's text.
 */
import { genericError } from "../../core/error.ts";
import { createQcow2, type ByteStore } from "../../image/index.ts";
import type { BlockLayer, BlockNode } from "../index.ts";
import { createFile, type CreateFileRequest } from "./create-file.ts";
import { planQcow2Create, refuseUnsupportedQcow2, resizeTarget, type Qcow2CreateRequest } from "./create-qcow2-options.ts";

/** A protocol node seen as the ByteStore an image format writes into. */
export function nodeByteStore(node: BlockNode): ByteStore {
  return {
    size: async () => node.driver.size(),
    pread: (buf, offset) => node.read(buf, offset),
    pwrite: (data, offset) => node.write(data, offset),
    truncate: (length) => node.resize(length),
    flush: () => node.flush(),
    close: async () => {},
  };
}

async function createQcow2OnNode(layer: BlockLayer, o: Qcow2CreateRequest & { file: unknown }, firstIo: () => Promise<void>): Promise<void> {
  const file = typeof o.file === "string" ? layer.lookupNode(o.file, o.file) : await layer.openNode(o.file);
  const plan = planQcow2Create(o, (ref) => {
    if (typeof ref === "string") layer.lookupNode(ref, ref);
  });
  await firstIo();
  refuseUnsupportedQcow2(o, (id) => layer.deps.secretExists?.(id) ?? false);
  const size = resizeTarget(plan.size);
  const store = nodeByteStore(file);
  await store.truncate(0);
  await createQcow2(store, {
    size,
    clusterSize: plan.clusterSize,
    version: plan.version,
    backingFile: plan.backingFile ?? null,
    backingFormat: plan.backingFormat ?? null,
    refcountBits: plan.refcountBits,
    lazyRefcounts: plan.lazyRefcounts,
  });
  await store.flush();
}

/** `firstIo` is awaited where QEMU's create coroutine first waits for the disk. */
type Creator = (layer: BlockLayer, options: Record<string, unknown>, firstIo: () => Promise<void>) => Promise<void>;

const CREATORS: Record<string, Creator> = {
  file: (_layer, o, firstIo) => createFile(o as unknown as CreateFileRequest, firstIo),
  qcow2: (layer, o, firstIo) => createQcow2OnNode(layer, o as unknown as Qcow2CreateRequest & { file: unknown }, firstIo),
};

/** The command-time check, before the job is created. */
export function checkCreatableDriver(driver: string): void {
  if (!CREATORS[driver]) throw genericError("Driver does not support blockdev-create");
}

/** The job's run: creates the image or throws with the job's error text. */
export async function runBlockdevCreate(
  layer: BlockLayer,
  options: { driver: string } & Record<string, unknown>,
  firstIo: () => Promise<void> = async () => {},
): Promise<void> {
  const creator = CREATORS[options.driver];
  if (!creator) throw genericError("Driver does not support blockdev-create");
  await creator(layer, options, firstIo);
}
