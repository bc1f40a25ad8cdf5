/**
 * -daemonize: the parent starts a detached copy of itself and exits only
 * once that child reports it is ready (sockets listening, pidfile written),
 * with the child's status if startup failed — QEMU's contract, which lets a
 * caller connect right after the parent returns.
 *
 * The child is told it is the daemon by an environment variable and reports
 * on an extra pipe (fd 3): "R" = ready; exit without "R" = failed. Its stdin
 * and stdout are /dev/null; its stderr is relayed by the parent until ready
 * (startup errors are seen), and the daemon is silent afterwards.
 */
import { lazyBuiltin } from "../core/lazy-builtin.ts";

import * as fs from "node:fs";

const childProcess = lazyBuiltin<typeof import("node:child_process")>("node:child_process");

const CHILD_ENV = "QMPEMU_DAEMON_CHILD";
const READY_FD = 3;

export function isDaemonChild(): boolean {
  return process.env[CHILD_ENV] === "1";
}

/**
 * Re-runs this program detached; resolves with the exit status the parent
 * should use. `command` + `args` start the same program with the same options.
 */
export function spawnDaemon(command: string, args: string[], argv0: string): Promise<number> {
  return new Promise((resolve) => {
    // stderr goes through us, so the caller's stderr is released when we exit (QEMU's daemon
    // points its stderr at /dev/null): a caller reading our stderr to EOF is not kept waiting.
    const child = childProcess().spawn(command, args, {
      argv0,
      detached: true,
      stdio: ["ignore", "ignore", "pipe", "pipe"],
      env: { ...process.env, [CHILD_ENV]: "1" },
    });
    const pipe = child.stdio[READY_FD] as (NodeJS.ReadableStream & { destroy(): void }) | null;
    child.stderr?.on("data", (d: Buffer) => process.stderr.write(d));
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      child.unref();
      pipe?.destroy();
      child.stderr?.destroy();
      resolve(code);
    };
    pipe?.on("data", (d: Buffer) => {
      if (d.includes("R")) finish(0);
    });
    child.on("error", () => finish(1));
    // Exit without "ready": startup failed. Its messages come through stderr, so finish
    // once both the exit and the end of stderr were seen (Bun and Node order them differently).
    let exitCode: number | undefined;
    let stderrOpen = child.stderr !== null;
    const maybeFailed = () => {
      if (exitCode !== undefined && !stderrOpen) finish(exitCode || 1);
    };
    child.on("exit", (code) => {
      exitCode = code ?? 1;
      maybeFailed();
    });
    child.stderr?.on("close", () => {
      stderrOpen = false;
      maybeFailed();
    });
  });
}

/** In the daemon child: startup is complete. */
export function signalReady(): void {
  try {
    fs.writeSync(READY_FD, "R");
    fs.closeSync(READY_FD);
  } catch {
    // The parent went away; nothing to tell.
  }
}
