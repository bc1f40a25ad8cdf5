/**
 * The job commands through a whole in-process emulator (dispatcher,
 * validation, events on the wire), with fake job drivers: every verb in
 * every reachable state against QEMU's order of checks, the query
 * structures, HMP, and the allow-oob extension.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createEmulator, type Emulator, type InProcessClient } from "../../src/index.ts";
import { allowVerb, type Job } from "../../src/job/index.ts";
import { FakeDriver, PlainDriver, waitFor } from "./helpers.ts";

type Msg = Record<string, unknown>;

let emu: Emulator | undefined;
/** Driver callbacks held open by a test; released before the emulator closes. */
const gates: (() => void)[] = [];
afterEach(async () => {
  for (const open of gates.splice(0)) open();
  await emu?.close();
  emu = undefined;
});

async function boot(): Promise<{ emu: Emulator; c: InProcessClient }> {
  emu = createEmulator({ clock: "virtual" });
  const c = emu.connect();
  await c.next();
  await c.execute("qmp_capabilities", { enable: ["oob"] });
  return { emu, c };
}

/** Runs a command; returns the wire lines it produced (events and reply) in order, short form. */
async function run(c: InProcessClient, name: string, args?: Msg): Promise<{ reply: Msg; lines: string[] }> {
  const mark = c.rawLines.length;
  const reply = await c.execute(name, args);
  const lines = c.rawLines.slice(mark).map((l) => {
    const m = JSON.parse(l) as Msg;
    if (m.event === "JOB_STATUS_CHANGE") {
      const d = m.data as Msg;
      return `${d.id}:${d.status}`;
    }
    if (m.event) return String(m.event);
    return "error" in m ? `ERR ${(m.error as Msg).desc}` : "RET";
  });
  c.drain();
  return { reply, lines };
}

const slow = () => new FakeDriver({ chunkSize: 1 << 20 });
const idle = (j: Job) => !j.busy && j.progress.current > 0;

/** Builds a job in each reachable status (ids unique per call). */
const MAKERS: Record<string, (emu: Emulator, id: string) => Promise<Job>> = {
  async created(emu, id) {
    return emu.jobs.create({ id, driver: new FakeDriver() });
  },
  async running(emu, id) {
    const j = emu.jobs.create({ id, driver: slow(), speed: 1 });
    emu.jobs.start(j);
    await waitFor(() => idle(j));
    return j;
  },
  async paused(emu, id) {
    const j = await MAKERS.running!(emu, id);
    j.userPause();
    return j;
  },
  async ready(emu, id) {
    const j = emu.jobs.create({ id, driver: new FakeDriver({ mirror: true }) });
    emu.jobs.start(j);
    await waitFor(() => j.status === "ready" && !j.busy);
    return j;
  },
  async standby(emu, id) {
    const j = await MAKERS.ready!(emu, id);
    j.userPause();
    return j;
  },
  async waiting(emu, id) {
    const txn = emu.jobs.createTxn();
    const peer = emu.jobs.create({ id: `${id}-peer`, driver: slow(), speed: 1, txn });
    const j = emu.jobs.create({ id, driver: new FakeDriver({ chunks: 1 }), txn });
    emu.jobs.start(peer);
    emu.jobs.start(j);
    await waitFor(() => j.status === "waiting");
    return j;
  },
  async pending(emu, id) {
    const j = emu.jobs.create({ id, driver: new FakeDriver({ chunks: 1 }), autoFinalize: false });
    emu.jobs.start(j);
    await waitFor(() => j.status === "pending");
    return j;
  },
  async aborting(emu, id) {
    const drv = new FakeDriver();
    drv.abort = () => new Promise<void>((res) => gates.push(res)); // an abort callback that does not end yet
    const j = emu.jobs.create({ id, driver: drv, autoFinalize: false });
    emu.jobs.start(j);
    await waitFor(() => j.status === "pending");
    void j.cancel(true);
    await waitFor(() => j.status === "aborting");
    return j;
  },
  async concluded(emu, id) {
    const j = emu.jobs.create({ id, driver: new FakeDriver({ chunks: 1 }), autoDismiss: false });
    emu.jobs.start(j);
    await waitFor(() => j.status === "concluded");
    return j;
  },
};

/** The reply QEMU 7.2 gives, from the job's state before the command (job-qmp.c / blockdev.c check order). */
function expected(cmd: string, j: Job): string {
  const verbErr = (verb: Parameters<typeof allowVerb>[0]) =>
    allowVerb(verb, j.status) ? null : `ERR Job '${j.id}' in state '${j.status}' cannot accept command verb '${verb}'`;
  switch (cmd) {
    case "job-pause":
    case "block-job-pause":
      return verbErr("pause") ?? (j.userPaused ? "ERR Job is already paused" : "RET");
    case "job-resume":
    case "block-job-resume":
      if (!j.userPaused) return "ERR Can't resume a job that was not paused";
      return verbErr("resume") ?? "RET";
    case "job-cancel":
    case "block-job-cancel force":
      return verbErr("cancel") ?? "RET";
    case "block-job-cancel":
      if (j.userPaused) return `ERR The block job for device '${j.id}' is currently paused`;
      return verbErr("cancel") ?? "RET";
    case "job-complete":
    case "block-job-complete":
      return verbErr("complete") ?? (j.cancelRequested() ? `ERR The active block job '${j.id}' cannot be completed` : "RET");
    case "job-finalize":
    case "block-job-finalize":
      return verbErr("finalize") ?? "RET";
    case "job-dismiss":
    case "block-job-dismiss":
      return verbErr("dismiss") ?? "RET";
    case "block-job-set-speed":
      return verbErr("set-speed") ?? "RET";
  }
  throw new Error(cmd);
}

function request(cmd: string, id: string): [string, Msg] {
  if (cmd === "block-job-cancel force") return ["block-job-cancel", { device: id, force: true }];
  if (cmd === "block-job-set-speed") return [cmd, { device: id, speed: 5 }];
  if (cmd.startsWith("job-") || cmd === "block-job-finalize" || cmd === "block-job-dismiss") return [cmd, { id }];
  return [cmd, { device: id }];
}

const VERB_COMMANDS = [
  "job-pause", "job-resume", "job-cancel", "job-complete", "job-finalize", "job-dismiss",
  "block-job-pause", "block-job-resume", "block-job-cancel", "block-job-cancel force", "block-job-complete",
  "block-job-finalize", "block-job-dismiss", "block-job-set-speed",
];

describe("every verb command in every reachable state", () => {
  for (const state of Object.keys(MAKERS)) {
    it(state, async () => {
      const { emu, c } = await boot();
      let n = 0;
      for (const cmd of VERB_COMMANDS) {
        const id = `j${n++}`;
        const job = await MAKERS[state]!(emu, id);
        expect(job.status).toBe(state);
        const want = expected(cmd, job);
        const [name, args] = request(cmd, id);
        const { reply } = await run(c, name, args);
        const got = "error" in reply ? `ERR ${(reply.error as Msg).desc}` : "RET";
        expect(got, `${cmd} in ${state}`).toBe(want);
        if (got !== "RET") expect((reply.error as Msg).class).toBe("GenericError");
      }
    });
  }
});

describe("verb commands", () => {
  it("unknown ids: Job not found / DeviceNotActive (golden jobs-legacy-block-job)", async () => {
    const { emu, c } = await boot();
    emu.jobs.create({ id: "plain", driver: new PlainDriver() });
    for (const [name, args] of [
      ["block-job-pause", { device: "nope" }], ["block-job-resume", { device: "nope" }],
      ["block-job-set-speed", { device: "nope", speed: -1 }], ["block-job-cancel", { device: "nope" }],
      ["block-job-complete", { device: "nope" }], ["block-job-finalize", { id: "nope" }], ["block-job-dismiss", { id: "nope" }],
    ] as const) {
      expect((await c.execute(name, args)).error).toEqual({ class: "DeviceNotActive", desc: "Block job 'nope' not found" });
    }
    expect((await c.execute("block-job-pause", { device: "plain" })).error).toEqual({ class: "DeviceNotActive", desc: "Block job 'plain' not found" });
    for (const name of ["job-pause", "job-resume", "job-cancel", "job-complete", "job-finalize", "job-dismiss"]) {
      expect((await c.execute(name, { id: "nope" })).error).toEqual({ class: "GenericError", desc: "Job not found" });
    }
  });

  it("pause/resume of an idle job: the event precedes the reply (golden jobs-verbs-running)", async () => {
    const { emu, c } = await boot();
    await MAKERS.running!(emu, "j");
    c.drain();
    expect((await run(c, "job-pause", { id: "j" })).lines).toEqual(["j:paused", "RET"]);
    expect((await run(c, "job-resume", { id: "j" })).lines).toEqual(["j:running", "RET"]);
    expect((await run(c, "block-job-pause", { device: "j" })).lines).toEqual(["j:paused", "RET"]);
    // cancel of a user-paused job: running, then the end, all before the reply
    expect((await run(c, "block-job-cancel", { device: "j", force: true })).lines).toEqual([
      "j:running", "j:aborting", "BLOCK_JOB_CANCELLED", "j:concluded", "j:null", "RET",
    ]);
  });

  it("job-cancel of a sleeping job ends it before the reply (spec §15 e)", async () => {
    const { emu, c } = await boot();
    await MAKERS.running!(emu, "j");
    c.drain();
    expect((await run(c, "job-cancel", { id: "j" })).lines).toEqual(["j:aborting", "BLOCK_JOB_CANCELLED", "j:concluded", "j:null", "RET"]);
  });

  it("finalize and dismiss (golden jobs-backup-lifecycle-manual)", async () => {
    const { emu, c } = await boot();
    const j = emu.jobs.create({ id: "j", driver: new FakeDriver({ chunks: 1 }), autoFinalize: false, autoDismiss: false });
    emu.jobs.start(j);
    await waitFor(() => j.status === "pending");
    c.drain();
    expect((await run(c, "job-finalize", { id: "j" })).lines).toEqual(["BLOCK_JOB_COMPLETED", "j:concluded", "RET"]);
    expect((await run(c, "job-dismiss", { id: "j" })).lines).toEqual(["j:null", "RET"]);
    expect((await run(c, "job-dismiss", { id: "j" })).lines).toEqual(["ERR Job not found"]);
  });

  it("block-job-set-speed: texts for negative and int64-min speeds, then the speed shows (golden jobs-set-speed-negative)", async () => {
    const { emu, c } = await boot();
    await MAKERS.running!(emu, "j");
    expect((await c.execute("block-job-set-speed", { device: "j", speed: -1 })).error).toEqual({
      class: "GenericError", desc: "Parameter 'speed' expects a non-negative value",
    });
    c.sendRaw('{"execute":"block-job-set-speed","arguments":{"device":"j","speed":-9223372036854775808},"id":"big"}');
    expect((await c.next((m) => m.id === "big")).error).toEqual({ class: "GenericError", desc: "Parameter 'speed' expects a non-negative value" });
    expect((await c.execute("block-job-set-speed", { device: "j", speed: 7 })).return).toEqual({});
    const [info] = (await c.execute("query-block-jobs")).return as Msg[];
    expect(info!.speed).toBe(7);
  });

  it("soft block-job-cancel of a ready mirror completes it; of a paused one is refused (golden jobs-job-cancel-paused-mirror)", async () => {
    const { emu, c } = await boot();
    await MAKERS.standby!(emu, "m");
    c.drain();
    expect((await run(c, "block-job-cancel", { device: "m" })).lines).toEqual(["ERR The block job for device 'm' is currently paused"]);
    await run(c, "job-resume", { id: "m" });
    // the job was idle, so it is run to its (successful) end before the reply
    expect((await run(c, "block-job-cancel", { device: "m" })).lines).toEqual([
      "m:waiting", "m:pending", "BLOCK_JOB_COMPLETED", "m:concluded", "m:null", "RET",
    ]);
  });
});

describe("quit", () => {
  it("drains, then cancels every job (golden jobs-quit-with-running-job)", async () => {
    const { emu, c } = await boot();
    await MAKERS.running!(emu, "j");
    c.drain();
    await c.execute("quit");
    await emu.whenQuit;
    const events = c.drain().map((m) => (m.event === "JOB_STATUS_CHANGE" ? `j:${(m.data as Msg).status}` : m.event));
    expect(events).toEqual(["SHUTDOWN", "j:paused", "j:running", "j:aborting", "BLOCK_JOB_CANCELLED", "j:concluded", "j:null"]);
  });
});

describe("queries", () => {
  it("query-jobs and query-block-jobs: QEMU's members and order, newest first", async () => {
    const { emu, c } = await boot();
    const k = emu.jobs.create({ id: "k", driver: new FakeDriver({ failChunk: 0, failures: 1 }), autoDismiss: false });
    emu.jobs.start(k);
    await waitFor(() => k.status === "concluded");
    await MAKERS.standby!(emu, "m");
    const create = emu.jobs.create({ id: "c1", driver: new PlainDriver(), autoDismiss: false });
    emu.jobs.start(create);
    await waitFor(() => create.status === "concluded");

    const jobs = (await c.execute("query-jobs")).return as Msg[];
    expect(jobs).toEqual([
      { "current-progress": 1, status: "concluded", "total-progress": 1, type: "create", id: "c1" },
      { "current-progress": 262144, status: "standby", "total-progress": 262144, type: "mirror", id: "m" },
      { "current-progress": 0, status: "concluded", "total-progress": 262144, type: "backup", id: "k", error: "Input/output error" },
    ]);
    expect(Object.keys(jobs[2]!)).toEqual(["current-progress", "status", "total-progress", "type", "id", "error"]);

    const block = (await c.execute("query-block-jobs")).return as Msg[];
    expect(block).toEqual([
      {
        "auto-finalize": true, "io-status": "ok", device: "m", "auto-dismiss": true, busy: false, len: 262144, offset: 262144,
        status: "standby", paused: true, speed: 0, ready: true, type: "mirror",
      },
      {
        "auto-finalize": true, "io-status": "ok", device: "k", "auto-dismiss": false, busy: false, len: 262144, offset: 0,
        status: "concluded", paused: false, speed: 0, ready: false, type: "backup", error: "Input/output error",
      },
    ]);
    expect(Object.keys(block[0]!)).toEqual([
      "auto-finalize", "io-status", "device", "auto-dismiss", "busy", "len", "offset", "status", "paused", "speed", "ready", "type",
    ]);
  });

  it("a stopped job shows io-status failed and paused", async () => {
    const { emu, c } = await boot();
    const j = emu.jobs.create({ id: "j", driver: new FakeDriver({ failChunk: 1, failures: 1, onError: "stop" }) });
    emu.jobs.start(j);
    await waitFor(() => j.status === "paused");
    const [info] = (await c.execute("query-block-jobs")).return as Msg[];
    expect([info!["io-status"], info!.paused, info!.status]).toEqual(["failed", true, "paused"]);
    await c.execute("block-job-resume", { device: "j" });
    expect(j.ioStatus).toBe("ok");
  });
});

describe("HMP", () => {
  const hmp = async (c: InProcessClient, line: string) =>
    (await c.execute("human-monitor-command", { "command-line": line })).return;

  it("info block-jobs (QEMU 7.2 text)", async () => {
    const { emu, c } = await boot();
    expect(await hmp(c, "info block-jobs")).toBe("No active jobs\r\n");
    await MAKERS.running!(emu, "j");
    const s = emu.jobs.create({ id: "s", driver: new FakeDriver({ type: "stream" }) });
    s.progress.setRemaining(4096);
    emu.jobs.create({ id: "c1", driver: new PlainDriver() });
    expect(await hmp(c, "info block-jobs")).toBe(
      "Streaming device s: Completed 0 of 4096 bytes, speed limit 0 bytes/s\r\n" +
        "Type backup, device j: Completed 1048576 of 4194304 bytes, speed limit 1 bytes/s\r\n",
    );
    expect(await hmp(c, "info block-jobs x")).toBe(
      'block-jobs: extraneous characters at the end of line\r\nTry "help info block-jobs" for more information\r\n',
    );
  });

  it("help texts of the block_job_* commands (QEMU 7.2)", async () => {
    const { c } = await boot();
    expect(await hmp(c, "help block_job_cancel")).toBe(
      "block_job_cancel [-f] device -- stop an active background block operation (use -f\r\n\t\t\t if you want to abort the operation immediately\r\n\t\t\t instead of keep running until data is in sync)\r\n",
    );
    expect(await hmp(c, "help block_job_set_speed")).toBe("block_job_set_speed device speed -- set maximum speed for a background block operation\r\n");
    expect(await hmp(c, "help block_job_resume")).toBe("block_job_resume device -- resume a paused background block operation\r\n");
  });

  it("block_job_* commands and their parse errors, as QEMU 7.2 prints them", async () => {
    const { emu, c } = await boot();
    const j = await MAKERS.running!(emu, "j");
    expect(await hmp(c, "block_job_pause j")).toBe("");
    expect(j.userPaused).toBe(true);
    expect(await hmp(c, "block_job_pause j")).toBe("Error: Job is already paused\r\n");
    expect(await hmp(c, "block_job_cancel j")).toBe("Error: The block job for device 'j' is currently paused\r\n");
    expect(await hmp(c, "block_job_resume j")).toBe("");
    expect(await hmp(c, "block_job_resume j")).toBe("Error: Can't resume a job that was not paused\r\n");
    expect(await hmp(c, "block_job_complete j")).toBe("Error: Job 'j' in state 'running' cannot accept command verb 'complete'\r\n");
    expect(await hmp(c, "block_job_set_speed nope 2")).toBe("Error: Block job 'nope' not found\r\n");
    expect(await hmp(c, 'block_job_complete "a b"')).toBe("Error: Block job 'a b' not found\r\n");
    for (const [arg, speed] of [["2", 2 << 20], ["1k", 1024], ["1.5", 1572864], ["0x10", 16 << 20], ["1b", 1]] as const) {
      expect(await hmp(c, `block_job_set_speed j ${arg}`)).toBe("");
      expect(j.speed).toBe(speed);
    }
    const tryHelp = (cmd: string) => `\r\nTry "help ${cmd}" for more information\r\n`;
    expect(await hmp(c, "block_job_set_speed j -1")).toBe("invalid size" + tryHelp("block_job_set_speed"));
    expect(await hmp(c, "block_job_set_speed j 8E")).toBe("invalid size" + tryHelp("block_job_set_speed"));
    expect(await hmp(c, "block_job_set_speed j")).toBe("invalid size" + tryHelp("block_job_set_speed"));
    expect(await hmp(c, "block_job_set_speed j 1x")).toBe("block_job_set_speed: extraneous characters at the end of line" + tryHelp("block_job_set_speed"));
    expect(await hmp(c, "block_job_pause")).toBe("block_job_pause: block device name expected" + tryHelp("block_job_pause"));
    expect(await hmp(c, "block_job_pause a b")).toBe("block_job_pause: extraneous characters at the end of line" + tryHelp("block_job_pause"));
    expect(await hmp(c, "block_job_cancel -x a")).toBe("block_job_cancel: unsupported option -x" + tryHelp("block_job_cancel"));
    expect(await hmp(c, "block_job_cancel a -f")).toBe("block_job_cancel: extraneous characters at the end of line" + tryHelp("block_job_cancel"));
    expect(await hmp(c, "block_job_cancel -f j")).toBe("");
    expect(emu.jobs.find("j")).toBeUndefined();
  });
});

describe("out-of-band extension", () => {
  it("pause/resume/cancel and the queries are allow-oob; the rest are not", async () => {
    const { emu, c } = await boot();
    const oob = [...emu.commands.values()].filter((d) => /^(query-)?(block-)?jobs?(-|$)/.test(d.name) && d.allowOob).map((d) => d.name).sort();
    expect(oob).toEqual(["block-job-cancel", "block-job-pause", "block-job-resume", "job-cancel", "job-pause", "job-resume", "query-block-jobs", "query-jobs"]);
    await MAKERS.running!(emu, "j");
    c.send({ "exec-oob": "job-pause", arguments: { id: "j" }, id: "o1" });
    expect(await c.next((m) => m.id === "o1")).toEqual({ return: {}, id: "o1" });
    c.send({ "exec-oob": "query-jobs", id: "o2" });
    expect(((await c.next((m) => m.id === "o2")).return as Msg[])[0]!.status).toBe("paused");
    c.send({ "exec-oob": "job-complete", arguments: { id: "j" }, id: "o3" });
    expect((await c.next((m) => m.id === "o3")).error).toEqual({ class: "GenericError", desc: "The command job-complete does not support OOB" });
  });
});
