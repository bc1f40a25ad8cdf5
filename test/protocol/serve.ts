/**
 * A minimal stand-in launcher for running the oracle (oracle.py --server
 * 'bun test/protocol/serve.ts {args}') before/independently of the real CLI:
 * understands only `-qmp unix:PATH,server=on,wait=off` and `-S`; other
 * arguments are ignored.
 */
import { createEmulator } from "../../src/index.ts";
import type { MonitorSpec } from "../../src/emulator.ts";

const argv = process.argv.slice(2);
const monitors: MonitorSpec[] = [];
let startPaused = false;
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "-qmp") {
    const spec = argv[++i]!;
    const m = /^unix:([^,]+)/.exec(spec);
    if (m) monitors.push({ chardev: { kind: "unix", path: m[1]! } });
  } else if (argv[i] === "-S") startPaused = true;
}
const emu = createEmulator({ monitors, startPaused });
await emu.listen();
process.on("SIGTERM", () => void emu.close().then(() => process.exit(0)));
await emu.whenQuit;
process.exit(0);
