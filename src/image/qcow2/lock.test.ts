import { describe, expect, it } from "vitest";
import { AsyncLock } from "./lock.ts";

describe("AsyncLock", () => {
  it("runs one operation at a time, in call order, whether or not the lock was free", async () => {
    const lock = new AsyncLock();
    const log: string[] = [];
    const op = (name: string, ticks: number) => async () => {
      log.push(`${name} start`);
      for (let i = 0; i < ticks; i++) await Promise.resolve();
      log.push(`${name} end`);
      return name;
    };
    const a = lock.run(op("a", 5));
    const b = lock.run(op("b", 1));
    const c = lock.run(op("c", 0));
    expect(await Promise.all([a, b, c])).toEqual(["a", "b", "c"]);
    expect(log).toEqual(["a start", "a end", "b start", "b end", "c start", "c end"]);
    // Free again: the next one starts at once.
    const d = lock.run(op("d", 0));
    expect(log.at(-1)).toBe("d end");
    await d;
  });

  it("a failed operation rejects its caller and frees the lock; a synchronous throw too", async () => {
    const lock = new AsyncLock();
    await expect(lock.run(async () => { throw new Error("boom"); })).rejects.toThrow("boom");
    await expect(lock.run((() => { throw new Error("sync"); }) as () => Promise<void>)).rejects.toThrow("sync");
    await expect(lock.run(async () => 7)).resolves.toBe(7);
  });
});
