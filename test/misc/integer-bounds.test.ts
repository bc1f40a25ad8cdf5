/**
 * Integer arguments at their bounds (-1, 2^31, 2^32, 2^53+1, 2^63-1, 2^63,
 * 2^64-1) against QEMU 7.2: the same raw JSON text goes to both (JSON.stringify
 * cannot write integers beyond 2^53), replies are read with qmpemu's own JSON
 * reader so integers stay exact, and compared reply by reply.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createEmulator } from "../../src/index.ts";
import { JsonReader, type JsonValue } from "../../src/json/reader.ts";
import { serialize } from "../../src/json/writer.ts";
import { hasQemuSystem, sh } from "../block/helpers.ts";

/** A step: command name, arguments as JSON text (so big integers pass unchanged), and what of the reply to keep. */
type Step = [cmd: string, args?: string, pick?: (reply: any) => unknown];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qmpemu-ints-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const BLOCKDEVS = [
  "driver=null-co,node-name=src,size=1048576",
  "driver=null-co,node-name=dst,size=1048576",
];

function keyval(s: string): Record<string, string> {
  return Object.fromEntries(s.split(",").map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
}

const text = (steps: Step[]) => steps.map(([cmd, args], i) => `{"execute":"${cmd}"${args ? `,"arguments":${args}` : ""},"id":${i}}`);

async function runEmulator(steps: Step[], file: string): Promise<unknown[]> {
  const emu = createEmulator({ blockdevs: [...BLOCKDEVS, `driver=file,node-name=file0,filename=${file}`].map(keyval) });
  await emu.blockReady;
  const c = emu.connect();
  await c.next();
  await c.execute("qmp_capabilities");
  const out: unknown[] = [];
  try {
    for (const [i, line] of text(steps).entries()) {
      const reply = c.next((m) => m.id === i && ("return" in m || "error" in m));
      c.sendRaw(line);
      const r = (await reply) as Record<string, JsonValue>;
      delete r.id;
      out.push(steps[i]![2] ? steps[i]![2]!(r) : r);
    }
  } finally {
    await emu.close();
  }
  return out;
}

async function runQemu(steps: Step[], file: string): Promise<unknown[]> {
  const args = [...BLOCKDEVS, `driver=file,node-name=file0,filename=${file}`].flatMap((b) => ["-blockdev", b]);
  const proc = spawn("qemu-system-x86_64", ["-M", "none", "-nodefaults", "-display", "none", "-qmp", "stdio", ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const reader = new JsonReader();
  const inbox: Record<string, JsonValue>[] = [];
  let wake: (() => void) | undefined;
  proc.stdout!.on("data", (d: Buffer) => {
    reader.push(new Uint8Array(d));
    for (let it = reader.next(); it; it = reader.next()) if (it.value) inbox.push(it.value as Record<string, JsonValue>);
    wake?.();
  });
  const next = async () => {
    for (;;) {
      const i = inbox.findIndex((m) => "return" in m || "error" in m || "QMP" in m);
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      if (proc.exitCode !== null) throw new Error("QEMU exited");
      await new Promise<void>((r) => (wake = r));
    }
  };
  const out: unknown[] = [];
  try {
    await next(); // greeting
    proc.stdin!.write('{"execute":"qmp_capabilities"}\n');
    await next();
    for (const [i, line] of text(steps).entries()) {
      proc.stdin!.write(line + "\n");
      const r = await next();
      delete r.id;
      out.push(steps[i]![2] ? steps[i]![2]!(r) : r);
    }
  } finally {
    proc.kill("SIGKILL");
  }
  return out;
}

/** Serialised with qmpemu's writer, which prints bigints digit for digit. */
const exact = (x: unknown[]) => x.map((r) => serialize(r));

async function expectSame(name: string, steps: Step[]) {
  const file = path.join(dir, `${name}.raw`);
  sh(`qemu-img create -q -f raw ${file} 1M`);
  const ours = exact(await runEmulator(steps, file));
  sh(`qemu-img create -q -f raw ${file} 1M`);
  const theirs = exact(await runQemu(steps, file));
  expect(ours).toEqual(theirs);
}

const BIG = ["-1", "0", "2147483648", "4294967296", "9007199254740993", "9223372036854775807", "9223372036854775808", "18446744073709551615", "1.5"];
const threshold = (r: any) => r.return?.find((n: any) => n["node-name"] === "src")?.write_threshold ?? r;

describe.skipIf(!hasQemuSystem)("integer arguments at their bounds, against QEMU 7.2", () => {
  it("block jobs: mirror buf-size and backup x-perf beyond 2^53 (each on a fresh monitor)", async () => {
    const starts: Step[] = [
      ["blockdev-mirror", '{"job-id":"m1","device":"src","target":"dst","sync":"full","speed":1,"buf-size":9007199254740993}'],
      ["blockdev-mirror", '{"job-id":"m2","device":"src","target":"dst","sync":"full","buf-size":-1}'],
      ["blockdev-backup", '{"job-id":"b1","device":"src","target":"dst","sync":"none","x-perf":{"max-chunk":9223372036854775807}}'],
      ["blockdev-backup", '{"job-id":"b2","device":"src","target":"dst","sync":"none","x-perf":{"max-workers":9007199254740993}}'],
    ];
    for (const [i, step] of starts.entries()) await expectSame(`job${i}`, [step]);
  });

  it("block-set-write-threshold echoes uint64 as QEMU's int64 view", async () => {
    const steps: Step[] = [];
    for (const v of BIG) {
      steps.push(["block-set-write-threshold", `{"node-name":"src","write-threshold":${v}}`]);
      steps.push(["query-named-block-nodes", '{"flat":true}', threshold]);
    }
    await expectSame("threshold", steps);
  });

  it("block_resize: QEMU's limits beyond 2^53", async () => {
    const steps: Step[] = [];
    for (const v of ["-1", "9007199254740993", "9223372036854775807", "9223372036854775808"]) {
      steps.push(["block_resize", `{"node-name":"file0","size":${v}}`]);
    }
    await expectSame("resize", steps);
  });

  it("migrate-set-parameters keeps sizes exact and checks them exactly", async () => {
    const steps: Step[] = [];
    for (const p of ["max-bandwidth", "xbzrle-cache-size", "max-postcopy-bandwidth", "downtime-limit"]) {
      for (const v of BIG) {
        steps.push(["migrate-set-parameters", `{"${p}":${v}}`]);
        steps.push(["query-migrate-parameters", undefined, (r: any) => r.return?.[p]]);
      }
    }
    await expectSame("migrate", steps);
  });

  it("object-add: iothread pool sizes, throttle-group burst lengths and x- limits", async () => {
    const steps: Step[] = [];
    let n = 0;
    for (const v of ["-1", "2147483648", "4294967296", "9223372036854775807"]) {
      for (const p of ["thread-pool-min", "thread-pool-max", "poll-max-ns"]) {
        steps.push(["object-add", `{"qom-type":"iothread","id":"io${++n}","${p}":${v}}`], ["object-del", `{"id":"io${n}"}`]);
      }
      for (const p of ['"limits":{"bps-total":1,"bps-total-max":2,"bps-total-max-length":V}', '"x-bps-total":V', '"x-iops-read-max-length":V']) {
        steps.push(["object-add", `{"qom-type":"throttle-group","id":"tg${++n}",${p.replace("V", v)}}`], ["object-del", `{"id":"tg${n}"}`]);
      }
    }
    await expectSame("objects", steps);
  });

  it("chardev ringbuf sizes and trace-event vCPU indexes", async () => {
    const steps: Step[] = [];
    let n = 0;
    for (const v of BIG) {
      steps.push(["chardev-add", `{"id":"c${++n}","backend":{"type":"ringbuf","data":{"size":${v}}}}`], ["chardev-remove", `{"id":"c${n}"}`]);
      steps.push(["trace-event-get-state", `{"name":"x","vcpu":${v}}`]);
    }
    await expectSame("chardev", steps);
  });
});
