/**
 * The qmpemu binary: a thin shell over src/cli/run.ts (and so over
 * createEmulator). Works as `bun build --compile` output, and as a script
 * under Bun or Node.
 */
import { run } from "./cli/run.ts";

/** A compiled Bun binary sees its own code at /$bunfs/... in argv[1]. */
const compiled = (process.argv[1] ?? "").startsWith("/$bunfs/");

/**
 * The name we were called by: a symlink named qemu-system-x86_64 or
 * qemu-storage-daemon makes messages (and the personality) read like QEMU.
 * Compiled, that is process.argv0; as a script, the script's path.
 */
const invokedName = compiled ? process.argv0 : (process.argv[1] ?? "qmpemu");
const args = process.argv.slice(2);
/** How to start this same program again (for -daemonize). */
const self = { command: process.execPath, args: compiled ? args : [...process.execArgv, process.argv[1], ...args] };

const code = await run(invokedName, args, {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
}, self);
// Let buffered output (a stdio monitor's last reply, help text, error messages) reach the pipes first.
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write("", () => resolve()))));
process.exit(code);
