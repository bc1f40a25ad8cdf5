/**
 * Replays the shared oracle's block-layer recording (block-blockdev-add-del)
 * in process: same setup, same -blockdev/-drive, every reply compared with
 * what QEMU 7.2 sent (auto node names and the temp dir masked, `pick`
 * records reduced the way oracle.py reduces them).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { driveOpts, emulator, hasQemuImg, keyval, normalise, sh, tmpDir } from "./helpers.ts";

const ORACLE = path.resolve(__dirname, "../../../shared/oracle");
const NAMES = ["block-blockdev-add-del"];

type Json = Record<string, any>;

function reduce(reply: Json, record: Json | undefined): Json {
  if (!record || !("pick" in record) || !("return" in reply)) return reply;
  const pick = (o: Json) => Object.fromEntries(record.pick.filter((k: string) => k in o).map((k: string) => [k, o[k]]));
  const r = reply.return;
  return { ...reply, return: Array.isArray(r) ? r.map(pick) : pick(r) };
}

describe.skipIf(!hasQemuImg || !fs.existsSync(ORACLE))("shared oracle recordings", () => {
  for (const name of NAMES) {
    it(name, async () => {
      const sc = JSON.parse(fs.readFileSync(path.join(ORACLE, "scenarios", `${name}.json`), "utf8"));
      const golden = JSON.parse(fs.readFileSync(path.join(ORACLE, "golden", `${name}.json`), "utf8"));
      const d = tmpDir();
      try {
        const sub = (x: unknown) => JSON.parse(JSON.stringify(x).replaceAll("{dir}", d.dir));
        for (const c of sc.setup ?? []) sh(c, d.dir);
        const s = await emulator({
          blockdevs: (sub(sc.blockdev ?? []) as (string | Json)[]).map((b) => (typeof b === "string" ? keyval(b) : b)),
          drives: (sub(sc.drive ?? []) as string[]).map(driveOpts),
        });
        const recorded = (golden.steps as Json[]).filter((st) => typeof st.step === "object" && st.step.send?.execute !== "qmp_capabilities");
        let i = 0;
        for (const step of sc.steps as Json[]) {
          const reply = reduce(await s.q(step.cmd, sub(step.args)), step.record);
          const ours = JSON.parse(JSON.stringify(normalise(reply)).replaceAll(d.dir, "{dir}"));
          expect(ours, `${name} step ${i}: ${step.cmd}`).toEqual(recorded[i]!.recv[0]);
          i++;
        }
        await s.close();
      } finally {
        d.cleanup();
      }
    });
  }
});
