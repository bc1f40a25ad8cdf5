/**
 * -daemonize: the parent starts a detached copy of itself and exits only
 * once that child reports it is ready (sockets listening, pidfile written),
 * with the child's status if startup failed — QEMU's contract, which lets a
 * caller connect right after the parent returns.
 *
 * The child is told it is the daemon by an environment variable and reports
 * on an extra pipe (fd 3): "R" = ready; EOF without "R" = failed. Its stdin
 * and stdout are /dev/null; stderr stays the caller's until ready, so
 * startup errors are seen, and the daemon is silent afterwards.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";

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
    const child = spawn(command, args, {
      argv0,
      detached: true,
      stdio: ["ignore", "ignore", "inherit", "pipe"],
      env: { ...process.env, [CHILD_ENV]: "1" },
    });
    let ready = false;
    const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream | null;
    pipe?.on("data", (d: Buffer) => {
      if (d.includes("R")) ready = true;
    });
    const finish = (code: number) => {
      child.unref();
      (pipe as unknown as { destroy?: () => void })?.destroy?.();
      resolve(code);
    };
    pipe?.on("end", () => {
      if (ready) finish(0);
    });
    child.on("error", () => finish(1));
    child.on("exit", (code) => {
      if (!ready) finish(code || 1);
    });
    pipe?.on("close", () => {
      if (ready) finish(0);
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
