import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { demoteThreads, keepRuntimeHelpersInBackground } from "./background-threads.ts";

const linux = process.platform === "linux" && fs.existsSync("/proc/thread-self");
const haveChrt = linux && spawnSync("chrt", ["--version"]).status === 0;
const SCHED_IDLE = 5;

/** nice and scheduling policy of one of this process's threads, from /proc (fields 19 and 41). */
function schedOf(tid: number): { nice: number; policy: number } {
  const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { nice: Number(fields[16]), policy: Number(fields[38]) };
}

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

let worker: Worker | undefined;
afterEach(async () => {
  await worker?.terminate();
  worker = undefined;
});

/** A worker thread that tells its own thread id, then idles. */
async function startWorker(): Promise<number> {
  worker = new Worker(
    `const { parentPort } = require("node:worker_threads");
     parentPort.postMessage(Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop()));
     setInterval(() => {}, 1000);`,
    { eval: true },
  );
  return new Promise((resolve) => worker!.once("message", resolve));
}

describe.skipIf(!linux)("background threads", () => {
  it.skipIf(!haveChrt)("demoteThreads puts a thread at SCHED_IDLE and nice 19, and leaves the others alone", async () => {
    const tid = await startWorker();
    const mainBefore = schedOf(process.pid);
    expect(schedOf(tid).policy).not.toBe(SCHED_IDLE);
    demoteThreads([tid]);
    expect(schedOf(tid).nice).toBe(19); // at once, before chrt has run
    await until(() => schedOf(tid).policy === SCHED_IDLE);
    expect(schedOf(process.pid)).toEqual(mainBefore);
  });

  it("demoteThreads ignores threads that are gone", () => {
    expect(() => demoteThreads([2 ** 22 + 12345])).not.toThrow();
  });

  it.skipIf(!haveChrt)("keepRuntimeHelpersInBackground finds helper threads by name, including ones started later", async () => {
    const keeper = keepRuntimeHelpersInBackground({ names: new Set(["qmpemu-helper"]), everyMs: 20 });
    try {
      const tid = await startWorker();
      // The thread takes a name the scan looks for only now: a helper started after the keeper.
      // (A thread name is at most 15 characters.)
      fs.writeFileSync(`/proc/self/task/${tid}/comm`, "qmpemu-helper");
      await until(() => schedOf(tid).policy === SCHED_IDLE);
      expect(schedOf(process.pid).policy).not.toBe(SCHED_IDLE);
    } finally {
      keeper.stop();
    }
  });
});
