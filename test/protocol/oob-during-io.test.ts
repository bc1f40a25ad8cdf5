/**
 * exec-oob is answered while a long in-band command is still running: the
 * block layer's I/O gives the event loop turns, so the monitor keeps reading.
 * (QEMU answers from its monitor I/O thread; we have one thread, so this is
 * what would break if some layer blocked the loop for the whole command.)
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { createEmulator, type Emulator } from "../../src/emulator.ts";
import { LineClient } from "./harness.ts";

let emu: Emulator | undefined;
let dir: string | undefined;
afterEach(async () => {
  await emu?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it("answers exec-oob before an in-band qemu-io write of 256 GiB finishes", async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-oob-"));
  const sock = path.join(dir, "qmp.sock");
  emu = createEmulator({
    monitors: [{ chardev: { kind: "unix", path: sock } }],
    drives: [{ if: "none", id: "drive0", driver: "null-co", size: String(256 * 2 ** 30) }],
  });
  await emu.listen();
  const c = await LineClient.connect(sock);
  await c.line();
  c.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}');
  expect(await c.line()).toBe('{"return": {}}');

  c.send('{"execute":"human-monitor-command","arguments":{"command-line":"qemu-io drive0 \\"write 0 256G\\""},"id":"inband"}');
  await new Promise((r) => setTimeout(r, 20));
  c.send('{"exec-oob":"query-jobs","id":"oob"}');

  const seen = await c.until((m) => m?.id === "inband", 60_000);
  const ids = seen.map((m) => m?.id);
  expect(seen.at(-1)).toEqual({ return: "", id: "inband" });
  expect(ids).toContain("oob");
  expect(ids.indexOf("oob")).toBeLessThan(ids.indexOf("inband"));
});
