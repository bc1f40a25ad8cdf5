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
import { planQcow2Create, type Qcow2CreateRequest } from "./create-qcow2-options.ts";

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

async function createQcow2OnNode(layer: BlockLayer, o: Qcow2CreateRequest & { file: unknown }): Promise<void> {
  const file = typeof o.file === "string" ? layer.lookupNode(o.file, o.file) : await layer.openNode(o.file);
  const plan = planQcow2Create(o);
  const store = nodeByteStore(file);
  await store.truncate(0);
  await createQcow2(store, {
    size: plan.size,
    clusterSize: plan.clusterSize,
    version: plan.version,
    backingFile: plan.backingFile ?? null,
    backingFormat: plan.backingFormat ?? null,
    refcountBits: plan.refcountBits,
    lazyRefcounts: plan.lazyRefcounts,
  });
  await store.flush();
}

type Creator = (layer: BlockLayer, options: Record<string, unknown>) => Promise<void>;

const CREATORS: Record<string, Creator> = {
  file: (_layer, o) => createFile(o as unknown as CreateFileRequest),
  qcow2: (layer, o) => createQcow2OnNode(layer, o as unknown as Qcow2CreateRequest & { file: unknown }),
};

/** The command-time check, before the job is created. */
export function checkCreatableDriver(driver: string): void {
  if (!CREATORS[driver]) throw genericError("Driver does not support blockdev-create");
}

/** The job's run: creates the image or throws with the job's error text. */
export async function runBlockdevCreate(layer: BlockLayer, options: { driver: string } & Record<string, unknown>): Promise<void> {
  const creator = CREATORS[options.driver];
  if (!creator) throw genericError("Driver does not support blockdev-create");
  await creator(layer, options);
}
