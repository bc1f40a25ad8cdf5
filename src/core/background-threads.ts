/**
 * Background threads give way to the monitor at once.
 *
 * On a small machine the event loop and the client waiting for its reply
 * compete for a CPU with threads that work for us in the background: the
 * compression pool, and the JS engine's own JIT compiler and GC helpers.
 * Measured on 2 cores with Linux's EEVDF scheduler, a woken thread waited up
 * to a scheduler tick (4 ms) behind them, at any nice value: only a thread
 * running SCHED_IDLE is preempted the moment a normal thread wakes. So those
 * threads run SCHED_IDLE (nice 19 where that cannot be set); they still use
 * every CPU nobody else wants.
 *
 * Linux only; elsewhere every call is a no-op.
 */
import { lazyBuiltin } from "./lazy-builtin.ts";
import * as fs from "node:fs";
import * as os from "node:os";

const childProcess = lazyBuiltin<typeof import("node:child_process")>("node:child_process");

/** The engine's helper threads, by the names Bun (JavaScriptCore, mimalloc) gives them. */
const RUNTIME_HELPERS = new Set(["JITWorker", "HeapHelper", "JSCWarmUp", "mi-scavenger"]);

let chrtMissing = false;

/**
 * Puts threads `tids` (of this process) in the background. There is no node:
 * API for a scheduling policy, so util-linux's `chrt` sets it, all threads
 * from one shell (a spawn costs the event loop about a ms); nice 19 is the
 * fallback and is set first, so a thread is demoted even while chrt starts.
 */
export function demoteThreads(tids: number[]): void {
  const live = tids.filter((tid) => {
    try {
      os.setPriority(tid, 19);
      return true;
    } catch {
      return false; // the thread is gone, or this is not Linux
    }
  });
  if (chrtMissing || live.length === 0) return;
  // 127 only when chrt is missing: a thread that ended meanwhile is no reason to stop using it.
  const script = 'command -v chrt >/dev/null || exit 127; for t do chrt --idle -p 0 "$t" 2>/dev/null; done; exit 0';
  const argv = ["sh", "-c", script, "sh", ...live.map(String)];
  const exited = (code: number | null) => void (code === 127 && (chrtMissing = true));
  try {
    // Bun's own spawn holds the event loop ~0.3 ms, node:child_process's ~1 ms and more.
    if (typeof Bun !== "undefined") {
      const child = Bun.spawn(argv, { stdio: ["ignore", "ignore", "ignore"] });
      child.unref();
      void child.exited.then(exited);
    } else {
      const child = childProcess().spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
      child.on("error", () => (chrtMissing = true));
      child.on("exit", exited);
      child.unref();
    }
  } catch {
    chrtMissing = true;
  }
}

/**
 * Keeps the runtime's helper threads in the background. The engine starts
 * them on demand and retires them when idle, so new ones are looked for every
 * `everyMs`: a scan lists /proc/self/task and reads the name of each thread
 * it has not seen.
 */
export function keepRuntimeHelpersInBackground({ names = RUNTIME_HELPERS, everyMs = 100 }: { names?: ReadonlySet<string>; everyMs?: number } = {}): { stop(): void } {
  const done = new Set<number>();
  const scan = () => {
    let tids: string[];
    try {
      tids = fs.readdirSync("/proc/self/task");
    } catch {
      return false;
    }
    const alive = new Set<number>();
    const found: number[] = [];
    for (const t of tids) {
      const tid = Number(t);
      alive.add(tid);
      if (done.has(tid)) continue;
      let name = "";
      try {
        name = fs.readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim();
      } catch {
        continue;
      }
      if (!names.has(name)) continue;
      done.add(tid);
      found.push(tid);
    }
    if (found.length) demoteThreads(found);
    for (const tid of done) if (!alive.has(tid)) done.delete(tid);
    return true;
  };
  // The first scan right after the caller's current work (the engine's JIT
  // threads exist by the time the monitors listen, and a client's first
  // requests meet them), then every `everyMs` for helpers started later.
  const timer = setInterval(() => void (scan() || clearInterval(timer)), everyMs);
  timer.unref?.();
  const first = setImmediate(() => void (scan() || clearInterval(timer)));
  first.unref?.();
  return {
    stop: () => {
      clearImmediate(first);
      clearInterval(timer);
    },
  };
}
