/**
 * Built-in modules loaded on first use. Startup is a measured target (time
 * to the QMP greeting, against QEMU's), and node:zlib, node:worker_threads,
 * node:child_process and node:crypto together cost several ms to load in
 * the compiled binary while most runs never touch them.
 */
import { createRequire } from "node:module";

const requireBuiltin = createRequire(import.meta.url);

/** A getter that loads the built-in module `name` the first time it is called. */
export function lazyBuiltin<T>(name: string): () => T {
  let mod: T | undefined;
  return () => (mod ??= requireBuiltin(name) as T);
}
