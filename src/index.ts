/**
 * The embedding API.
 *
 *   const emu = createEmulator({ monitors: [{ chardev: { kind: "unix", path } }] });
 *   await emu.listen();
 *   const c = emu.connect();            // in-process QMP client
 *   await c.next();                     // greeting
 *   await c.execute("qmp_capabilities");
 *   await emu.close();
 */
export { createEmulator, Emulator } from "./emulator.ts";
export type { EmulatorOptions, MonitorSpec, ChardevSpec } from "./emulator.ts";
export { InProcessClient } from "./qmp/in-process.ts";
export type { HmpSession } from "./hmp/session.ts";
export type { Transport, MonitorOptions } from "./qmp/transport.ts";
export { socketTransport } from "./qmp/transport.ts";
export { QmpError } from "./core/error.ts";
export { JsonReader, JsonFloat } from "./json/reader.ts";
export { serialize } from "./json/writer.ts";
