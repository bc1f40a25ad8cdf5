/**
 * Job lifecycles through the job layer's API with fake drivers; the
 * expected event orders are those of QEMU 7.2's recorded transcripts
 * (shared/oracle/golden/jobs-*.json) and spec/jobs.md §15.
 */
import { describe, expect, it } from "vitest";
import { ECANCELED, JobFailure } from "../../src/job/index.ts";
import { FakeDriver, PlainDriver, Rig, waitFor } from "./helpers.ts";

const done = (r: Rig, id: string) => waitFor(() => r.log.some((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === "null"));

describe("lifecycle", () => {
  it("auto-finalize/dismiss inside a drained command: created, running, paused | running … null (golden jobs-backup-lifecycle-auto)", async () => {
    const r = new Rig();
    const drv = new FakeDriver();
    r.jobs.drainBegin();
    const job = r.jobs.create({ id: "j", driver: drv });
    r.jobs.start(job);
    expect(r.take()).toEqual(["j:created", "j:running", "j:paused"]);
    r.jobs.drainEnd();
    expect(r.take()).toEqual(["j:running"]);
    await done(r, "j");
    const all = r.takeFull();
    expect(all.map((e) => (e.event === "JOB_STATUS_CHANGE" ? `j:${e.data!.status}` : e.event))).toEqual([
      "j:waiting", "j:pending", "BLOCK_JOB_COMPLETED", "j:concluded", "j:null",
    ]);
    expect(all[2]!.data).toEqual({ device: "j", len: 262144, offset: 262144, speed: 0, type: "backup" });
    expect(Object.keys(all[2]!.data!)).toEqual(["device", "len", "offset", "speed", "type"]);
    expect(drv.calls).toEqual(["run", "prepare", "commit", "clean", "free"]);
    expect(r.jobs.list()).toEqual([]);
  });

  it("manual finalize and dismiss (golden jobs-backup-lifecycle-manual)", async () => {
    const r = new Rig();
    const drv = new FakeDriver();
    const job = r.jobs.create({ id: "j", driver: drv, autoFinalize: false, autoDismiss: false });
    r.jobs.start(job);
    await waitFor(() => job.status === "pending");
    const ev = r.takeFull();
    expect(ev.map((e) => (e.event === "JOB_STATUS_CHANGE" ? `${e.data!.status}` : e.event))).toEqual([
      "created", "running", "waiting", "pending", "BLOCK_JOB_PENDING",
    ]);
    expect(ev[4]!.data).toEqual({ type: "backup", id: "j" });
    expect(drv.calls).toEqual(["run"]);
    await job.finalize();
    expect(r.take()).toEqual(["BLOCK_JOB_COMPLETED", "j:concluded"]);
    expect(job.status).toBe("concluded");
    expect(() => job.finalize()).toThrow("Job 'j' in state 'concluded' cannot accept command verb 'finalize'");
    job.dismiss();
    expect(r.take()).toEqual(["j:null"]);
    expect(r.jobs.find("j")).toBeUndefined();
  });

  it("a plain (non-block) job emits only JOB_STATUS_CHANGE; a failure is kept in concluded", async () => {
    const r = new Rig();
    const ok = r.jobs.create({ id: "c1", driver: new PlainDriver(), autoDismiss: false });
    r.jobs.start(ok);
    await waitFor(() => ok.status === "concluded");
    expect(r.take()).toEqual(["c1:created", "c1:running", "c1:waiting", "c1:pending", "c1:concluded"]);
    expect([ok.progress.current, ok.progress.total, ok.error]).toEqual([1, 1, undefined]);
    const bad = r.jobs.create({ id: "e3", driver: new PlainDriver("Image size must be a multiple of 512 bytes"), autoDismiss: false });
    r.jobs.start(bad);
    await waitFor(() => bad.status === "concluded");
    expect(r.take()).toEqual(["e3:created", "e3:running", "e3:aborting", "e3:concluded"]);
    expect(bad.error).toBe("Image size must be a multiple of 512 bytes");
    expect(r.jobs.list().map((j) => j.id)).toEqual(["e3", "c1"]);
    expect(r.jobs.blockJobs()).toEqual([]);
  });

  it("mirror: ready, complete → waiting, pending, COMPLETED, concluded, null", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "m", driver: new FakeDriver({ mirror: true }) });
    r.jobs.start(job);
    await waitFor(() => job.status === "ready");
    const ev = r.takeFull();
    expect(ev.map((e) => e.event === "JOB_STATUS_CHANGE" ? e.data!.status : e.event)).toEqual(["created", "running", "ready", "BLOCK_JOB_READY"]);
    expect(ev[3]!.data).toEqual({ device: "m", len: 262144, offset: 262144, speed: 0, type: "mirror" });
    job.complete();
    job.complete(); // accepted again while still ready (spec §10)
    await done(r, "m");
    expect(r.take()).toEqual(["m:waiting", "m:pending", "BLOCK_JOB_COMPLETED", "m:concluded", "m:null"]);
  });

  it("mirror: soft cancel in ready finishes successfully, force cancel is a cancellation (golden jobs-mirror-ready-cancel)", async () => {
    const r = new Rig();
    const m2 = r.jobs.create({ id: "m2", driver: new FakeDriver({ mirror: true }) });
    r.jobs.start(m2);
    await waitFor(() => m2.status === "ready");
    r.take();
    await m2.userCancel(false);
    expect(() => m2.complete()).toThrow(); // verb or "cannot be completed"
    await done(r, "m2");
    expect(r.take()).toEqual(["m2:waiting", "m2:pending", "BLOCK_JOB_COMPLETED", "m2:concluded", "m2:null"]);
    expect(m2.error).toBeUndefined();

    const m3 = r.jobs.create({ id: "m3", driver: new FakeDriver({ mirror: true }), autoDismiss: false });
    r.jobs.start(m3);
    await waitFor(() => m3.status === "ready");
    r.take();
    await m3.userCancel(true);
    await waitFor(() => m3.status === "concluded");
    expect(r.take()).toEqual(["m3:aborting", "BLOCK_JOB_CANCELLED", "m3:concluded"]);
    expect([m3.error, m3.ret]).toEqual(["Operation canceled", -ECANCELED]);
  });

  it("complete after a soft cancel request: 'cannot be completed'", async () => {
    const r = new Rig();
    const drv = new FakeDriver({ mirror: true });
    const job = r.jobs.create({ id: "m", driver: drv });
    r.jobs.start(job);
    await waitFor(() => job.status === "ready");
    job.userPause();
    await job.userCancel(false); // drops the user pause; soft: mirror finishes without pivot
    expect(() => job.complete()).toThrow("The active block job 'm' cannot be completed");
    await done(r, "m");
  });
});

describe("pause and resume", () => {
  it("an idle (rate-limited) job pauses and resumes synchronously (golden jobs-verbs-running)", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1 });
    r.jobs.start(job);
    await waitFor(() => !job.busy && job.timerPending);
    r.take();
    job.userPause();
    expect(r.take()).toEqual(["j:paused"]);
    expect([job.status, job.paused, job.userPaused, job.timerPending]).toEqual(["paused", true, true, false]);
    expect(() => job.userPause()).toThrow("Job is already paused");
    job.userResume();
    expect(r.take()).toEqual(["j:running"]);
    expect(() => job.userResume()).toThrow("Can't resume a job that was not paused");
    await job.userCancel(true);
    await done(r, "j");
    expect(r.take()).toEqual(["j:aborting", "BLOCK_JOB_CANCELLED", "j:concluded", "j:null"]);
  });

  it("a ready job pauses into standby and back", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "m", driver: new FakeDriver({ mirror: true }) });
    r.jobs.start(job);
    await waitFor(() => job.status === "ready" && !job.busy);
    r.take();
    job.userPause();
    expect(r.take()).toEqual(["m:standby"]);
    job.complete(); // accepted in standby, takes effect after resume
    expect(job.status).toBe("standby");
    job.userResume();
    expect(r.take()).toEqual(["m:ready"]);
    await done(r, "m");
    expect(r.take()).toEqual(["m:waiting", "m:pending", "BLOCK_JOB_COMPLETED", "m:concluded", "m:null"]);
  });

  it("a busy job pauses at its next pause point, after the request", async () => {
    const r = new Rig();
    let release!: () => void;
    const io = new Promise<void>((res) => (release = res));
    const job = r.jobs.create({
      id: "j",
      driver: { type: "backup", isBlockJob: true, run: async (j) => { await io; await j.pausePoint(); } },
    });
    r.jobs.start(job);
    expect(job.busy).toBe(true); // awaiting its "I/O": not at a pause point
    job.userPause();
    expect(r.take()).toEqual(["j:created", "j:running"]); // not yet
    release();
    await waitFor(() => job.status === "paused");
    expect(job.busy).toBe(false);
    job.userResume();
    await done(r, "j");
  });

  it("internal pauses nest with the user pause; the job runs again only at zero", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1 });
    r.jobs.start(job);
    await waitFor(() => !job.busy);
    r.take();
    job.pause();
    job.pause();
    expect(r.take()).toEqual(["j:paused"]);
    job.userPause();
    expect(job.pauseCount).toBe(3);
    job.resume();
    job.userResume();
    expect([job.status, job.pauseCount, r.take()]).toEqual(["paused", 1, []]);
    job.resume();
    expect([job.status, r.take()]).toEqual(["running", ["j:running"]]);
    // "resume" of a job that was only internally paused is refused
    job.pause();
    expect(() => job.userResume()).toThrow("Can't resume a job that was not paused");
    job.resume();
    await job.userCancel(true);
    await done(r, "j");
  });

  it("a job created inside a drained section is paused by it (drain-side-effect pairs for existing jobs too)", async () => {
    const r = new Rig();
    const old = r.jobs.create({ id: "j1", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1 });
    r.jobs.start(old);
    await waitFor(() => !old.busy);
    r.take();
    r.jobs.drainBegin();
    const a = r.jobs.create({ id: "a", driver: new FakeDriver() });
    const b = r.jobs.create({ id: "b", driver: new FakeDriver() });
    r.jobs.start(a);
    r.jobs.start(b);
    r.jobs.drainEnd();
    // golden jobs-txn-grouped-fail: all created, then per job running+paused, then per job running
    expect(r.take()).toEqual([
      "j1:paused", "a:created", "b:created", "a:running", "a:paused", "b:running", "b:paused",
      "j1:running", "a:running", "b:running",
    ]);
    await done(r, "b");
    await done(r, "a");
    await old.userCancel(true);
  });

  it("drained sections nest; a job dropped inside one is not resumed by it", async () => {
    const r = new Rig();
    const j = r.jobs.create({ id: "j", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1 });
    r.jobs.start(j);
    await waitFor(() => !j.busy && j.progress.current > 0);
    r.take();
    r.jobs.drainBegin();
    r.jobs.drainBegin();
    const gone = r.jobs.create({ id: "gone", driver: new FakeDriver() });
    expect([j.pauseCount, gone.pauseCount]).toEqual([2, 3]);
    await gone.cancel(true);
    r.jobs.drainEnd();
    expect([j.status, j.pauseCount]).toEqual(["paused", 1]);
    r.jobs.drainEnd();
    expect(r.take()).toEqual(["j:paused", "gone:created", "gone:aborting", "gone:concluded", "gone:null", "j:running"]);
    expect(() => r.jobs.drainEnd()).toThrow("drainEnd without drainBegin");
    await j.userCancel(true);
    await done(r, "j");
  });

  it("drained() waits until busy jobs reached their pause point", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ chunks: 100 }) });
    r.jobs.start(job);
    let seen = "";
    await r.jobs.drained(() => void (seen = `${job.status}/${job.busy}`));
    expect(seen).toBe("paused/false");
    expect(job.status).toBe("running");
    await done(r, "j");
  });
});

describe("cancel", () => {
  it("a user-paused job shows running before aborting (golden jobs-cancel-running 'l')", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "l", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1 });
    r.jobs.start(job);
    await waitFor(() => !job.busy);
    job.userPause();
    r.take();
    await job.userCancel(true);
    await done(r, "l");
    expect(r.take()).toEqual(["l:running", "l:aborting", "BLOCK_JOB_CANCELLED", "l:concluded", "l:null"]);
  });

  it("cancel in pending aborts (BLOCK_JOB_CANCELLED); a concluded job is dismissed by cancel()", async () => {
    const r = new Rig();
    const drv = new FakeDriver();
    const job = r.jobs.create({ id: "j", driver: drv, autoFinalize: false, autoDismiss: false });
    r.jobs.start(job);
    await waitFor(() => job.status === "pending");
    r.take();
    await job.userCancel(true);
    expect(r.take()).toEqual(["j:aborting", "BLOCK_JOB_CANCELLED", "j:concluded"]);
    expect(drv.calls).toEqual(["run", "abort", "clean"]);
    expect(() => job.userCancel(true)).toThrow("Job 'j' in state 'concluded' cannot accept command verb 'cancel'");
    await job.cancel(true); // job_cancel on concluded: dismiss (cancel-all at quit relies on it)
    expect(r.take()).toEqual(["j:null"]);
  });

  it("a never-started job: created, aborting, concluded, null, no BLOCK_JOB_* (golden jobs-txn-missing-target)", async () => {
    const r = new Rig();
    const drv = new FakeDriver();
    const job = r.jobs.create({ id: "a", driver: drv, autoDismiss: false, speed: 1 });
    await job.cancel(true);
    expect(r.take()).toEqual(["a:created", "a:aborting", "a:concluded", "a:null"]);
    expect(drv.calls).toEqual(["abort", "clean", "free"]);
  });

  it("two never-started jobs of one grouped transaction both finish (QEMU 7.2 hangs here)", async () => {
    const r = new Rig();
    const txn = r.jobs.createTxn();
    const a = r.jobs.create({ id: "a", driver: new FakeDriver(), txn });
    const b = r.jobs.create({ id: "b", driver: new FakeDriver(), txn });
    await b.cancel(true);
    expect(r.take()).toEqual(["a:created", "b:created", "b:aborting", "b:concluded", "b:null", "a:aborting", "a:concluded", "a:null"]);
    expect(a.status).toBe("null");
  });

  it("cancelAllSync ends every job, including one waiting for dismiss", async () => {
    const r = new Rig();
    const j = r.jobs.create({ id: "j", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1 });
    const k = r.jobs.create({ id: "k", driver: new FakeDriver(), autoDismiss: false });
    r.jobs.start(j);
    r.jobs.start(k);
    await waitFor(() => k.status === "concluded");
    await r.jobs.cancelAllSync();
    expect(r.jobs.list()).toEqual([]);
  });
});

describe("creation", () => {
  it("id rules and texts", () => {
    const r = new Rig();
    const drv = new FakeDriver();
    for (const bad of ["", "1bad", "a b", "_x", "é"]) {
      expect(() => r.jobs.create({ id: bad, driver: drv })).toThrow(`Invalid job ID '${bad}'`);
    }
    expect(() => r.jobs.create({ driver: drv })).toThrow("An explicit job ID is required");
    r.jobs.create({ id: "A-1.b_c", driver: drv });
    expect(() => r.jobs.create({ id: "A-1.b_c", driver: drv })).toThrow("Job ID 'A-1.b_c' already in use");
    expect(r.take()).toEqual(["A-1.b_c:created"]);
  });

  it("negative speed: created, null, then the error (golden jobs-set-speed-negative)", () => {
    const r = new Rig();
    const drv = new FakeDriver();
    expect(() => r.jobs.create({ id: "neg", driver: drv, speed: -1 })).toThrow("Parameter 'speed' expects a non-negative value");
    expect(() => r.jobs.create({ id: "big", driver: drv, speed: -(2n ** 63n) })).toThrow("Parameter 'speed' expects a non-negative value");
    expect(r.take()).toEqual(["neg:created", "neg:null", "big:created", "big:null"]);
    expect(r.jobs.list()).toEqual([]);
  });

  it("internal jobs are never listed and emit nothing", async () => {
    const r = new Rig();
    const job = r.jobs.create({ internal: true, driver: new FakeDriver() });
    r.jobs.start(job);
    expect(r.jobs.list()).toEqual([]);
    await waitFor(() => job.status === "null");
    expect(r.take()).toEqual([]);
  });

  it("lists newest first", () => {
    const r = new Rig();
    for (const id of ["a", "b", "c"]) r.jobs.create({ id, driver: new FakeDriver() });
    r.jobs.create({ id: "p", driver: new PlainDriver() });
    expect(r.jobs.list().map((j) => j.id)).toEqual(["p", "c", "b", "a"]);
    expect(r.jobs.blockJobs().map((j) => j.id)).toEqual(["c", "b", "a"]);
  });
});

describe("errors during the run", () => {
  it("report: BLOCK_JOB_ERROR, aborting, COMPLETED with error (golden jobs-ioerror-report)", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ failChunk: 1, failures: 1, onError: "report" }), autoDismiss: false });
    r.jobs.start(job);
    await waitFor(() => job.status === "concluded");
    const ev = r.takeFull();
    expect(ev.map((e) => e.event === "JOB_STATUS_CHANGE" ? e.data!.status : e.event)).toEqual([
      "created", "running", "BLOCK_JOB_ERROR", "aborting", "BLOCK_JOB_COMPLETED", "concluded",
    ]);
    expect(ev[2]!.data).toEqual({ device: "j", operation: "read", action: "report" });
    expect(ev[4]!.data).toEqual({ device: "j", len: 262144, offset: 65536, speed: 0, type: "backup", error: "Input/output error" });
    expect([job.error, job.ret, job.ioStatus]).toEqual(["Input/output error", -5, "ok"]);
  });

  it("ignore: the error is reported and the chunk retried (golden jobs-ioerror-ignore)", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ failChunk: 0, failures: 2, onError: "ignore" }) });
    r.jobs.start(job);
    await done(r, "j");
    expect(r.take()).toEqual([
      "j:created", "j:running", "BLOCK_JOB_ERROR", "BLOCK_JOB_ERROR", "j:waiting", "j:pending", "BLOCK_JOB_COMPLETED", "j:concluded", "j:null",
    ]);
  });

  it("stop: paused with io-status failed; resume clears it and retries (spec §15 f')", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ failChunk: 2, failures: 1, onError: "stop" }) });
    r.jobs.start(job);
    await waitFor(() => job.status === "paused");
    expect(r.take()).toEqual(["j:created", "j:running", "BLOCK_JOB_ERROR", "j:paused"]);
    expect([job.ioStatus, job.paused, job.userPaused]).toEqual(["failed", true, true]);
    job.userResume();
    expect([job.ioStatus, r.take()]).toEqual(["ok", ["j:running"]]);
    await done(r, "j");
    expect(r.take()).toEqual(["j:waiting", "j:pending", "BLOCK_JOB_COMPLETED", "j:concluded", "j:null"]);
  });

  it("enospc policy: stop (io-status nospace) for ENOSPC, report otherwise", () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver() });
    expect(job.handleIoError("write", "enospc", 28)).toBe("stop");
    expect([job.ioStatus, job.userPaused]).toEqual(["nospace", true]);
    expect(job.handleIoError("write", "auto", 5)).toBe("report");
    expect(r.takeFull().slice(1).map((e) => e.data)).toEqual([
      { device: "j", operation: "write", action: "stop" },
      { device: "j", operation: "write", action: "report" },
    ]);
  });

  it("a JobFailure's text and errno become the job's error", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: { type: "stream", isBlockJob: true, run: async () => { throw new JobFailure("Node name 'x' not found", 1); } }, autoDismiss: false });
    r.jobs.start(job);
    await waitFor(() => job.status === "concluded");
    expect([job.error, job.ret]).toEqual(["Node name 'x' not found", -1]);
  });

  it("a failing prepare aborts the transaction", async () => {
    const r = new Rig();
    const drv = new FakeDriver({ prepareFails: "boom" });
    const job = r.jobs.create({ id: "j", driver: drv, autoDismiss: false });
    r.jobs.start(job);
    await waitFor(() => job.status === "concluded");
    expect(r.take()).toEqual(["j:created", "j:running", "j:waiting", "j:pending", "j:aborting", "BLOCK_JOB_COMPLETED", "j:concluded"]);
    expect(drv.calls).toEqual(["run", "prepare", "abort", "clean"]);
    expect(job.error).toBe("boom");
  });
});

describe("grouped transactions", () => {
  it("one member fails: it finishes first, then the peer is cancelled (golden jobs-txn-grouped-fail)", async () => {
    const r = new Rig();
    const txn = r.jobs.createTxn();
    r.jobs.drainBegin();
    const good = r.jobs.create({ id: "good", driver: new FakeDriver({ chunkSize: 1 << 20 }), speed: 1, txn });
    const bad = r.jobs.create({ id: "bad", driver: new FakeDriver({ failChunk: 0, failures: 1 }), txn });
    r.jobs.start(good);
    r.jobs.start(bad);
    r.jobs.drainEnd();
    await done(r, "good");
    expect(r.take()).toEqual([
      "good:created", "bad:created", "good:running", "good:paused", "bad:running", "bad:paused", "good:running", "bad:running",
      "BLOCK_JOB_ERROR", "bad:aborting", "BLOCK_JOB_COMPLETED", "bad:concluded", "bad:null",
      "good:aborting", "BLOCK_JOB_CANCELLED", "good:concluded", "good:null",
    ]);
  });

  it("a finished member waits for its peers; a peer's failure cancels it from waiting", async () => {
    const r = new Rig();
    const txn = r.jobs.createTxn();
    const g1 = r.jobs.create({ id: "g1", driver: new FakeDriver({ chunks: 1 }), txn });
    const g2 = r.jobs.create({ id: "g2", driver: new FakeDriver({ chunks: 3, failChunk: 2, failures: 1 }), txn });
    r.jobs.start(g1);
    r.jobs.start(g2);
    await done(r, "g1");
    expect(r.take().slice(4)).toEqual([
      "g1:waiting", "BLOCK_JOB_ERROR", "g2:aborting", "BLOCK_JOB_COMPLETED", "g2:concluded", "g2:null",
      "g1:aborting", "BLOCK_JOB_CANCELLED", "g1:concluded", "g1:null",
    ]);
    expect(g2.error).toBe("Input/output error");
  });

  it("manual finalize of a group: pending newest first, one job-finalize finalises all (spec §15)", async () => {
    const r = new Rig();
    const txn = r.jobs.createTxn();
    const d1 = new FakeDriver({ chunks: 1 });
    const d2 = new FakeDriver({ chunks: 3 });
    const g1 = r.jobs.create({ id: "g1", driver: d1, txn, autoFinalize: false });
    const g2 = r.jobs.create({ id: "g2", driver: d2, txn, autoFinalize: false });
    r.jobs.start(g1);
    r.jobs.start(g2);
    await waitFor(() => g1.status === "pending");
    expect(r.take().slice(4)).toEqual([
      "g1:waiting", "g2:waiting", "g2:pending", "BLOCK_JOB_PENDING", "g1:pending", "BLOCK_JOB_PENDING",
    ]);
    await g2.finalize();
    expect(r.take()).toEqual([
      "BLOCK_JOB_COMPLETED", "g2:concluded", "g2:null", "BLOCK_JOB_COMPLETED", "g1:concluded", "g1:null",
    ]);
    expect(d2.calls).toEqual(["run", "prepare", "commit", "clean", "free"]);
  });
});

describe("rate limiting (VirtualClock)", () => {
  it("sleeps per 100 ms slice: 1 MiB/s in 64 KiB chunks", async () => {
    const r = new Rig();
    const chunk = 65536;
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ chunks: 8, chunkSize: chunk }), speed: 1 << 20 });
    r.jobs.start(job);
    // quota per slice = 104857 bytes: the first chunk fits, the second
    // overshoots, then the job sleeps until 2*64K/quota slices have passed.
    await waitFor(() => !job.busy && job.progress.current === 2 * chunk);
    expect([job.timerPending, r.clock.nowNs()]).toEqual([true, 0]);
    const wakeups: number[] = [];
    while (job.status !== "null") {
      if (job.timerPending && job.progress.current < 8 * chunk) {
        r.clock.step();
        wakeups.push(r.clock.nowNs());
      }
      await new Promise((res) => setImmediate(res));
    }
    // 2..7 chunks issued: each wake-up at slice start + dispatched/quota * 100 ms
    expect(wakeups.filter((t, i) => wakeups.indexOf(t) === i)).toEqual(
      [2, 3, 4, 5, 6, 7].map((n) => Math.trunc(((n * chunk) / 104857) * 1e8)),
    );
    expect(job.progress.current).toBe(8 * chunk);
  });

  it("raising the speed wakes a sleeping job; lowering it does not", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver({ chunks: 4, chunkSize: 1 << 20 }), speed: 1 });
    r.jobs.start(job);
    await waitFor(() => !job.busy && job.progress.current > 0);
    const at = job.progress.current;
    expect(job.timerPending).toBe(true);
    job.setSpeed(0.5 as number); // lower: stays asleep
    expect([job.busy, job.timerPending]).toEqual([false, true]);
    job.setSpeed(2);
    expect(job.busy).toBe(true); // woken; it re-computes its delay and sleeps again
    await waitFor(() => !job.busy);
    expect(job.progress.current).toBe(at);
    job.setSpeed(0); // unlimited: wakes and runs to the end
    await done(r, "j");
    expect(job.progress.current).toBe(4 << 20);
    expect(r.take().filter((e) => e.startsWith("BLOCK"))).toEqual(["BLOCK_JOB_COMPLETED"]);
  });

  it("set-speed: verb check first, then the sign", async () => {
    const r = new Rig();
    const job = r.jobs.create({ id: "j", driver: new FakeDriver(), autoDismiss: false });
    expect(() => job.setSpeed(-1)).toThrow("Parameter 'speed' expects a non-negative value");
    r.jobs.start(job);
    await waitFor(() => job.status === "concluded");
    expect(() => job.setSpeed(-1)).toThrow("Job 'j' in state 'concluded' cannot accept command verb 'set-speed'");
  });
});

describe("progress", () => {
  it("current only grows; total follows set/increase", () => {
    const r = new Rig();
    const p = r.jobs.create({ id: "j", driver: new FakeDriver() }).progress;
    p.setRemaining(100);
    p.workDone(40);
    p.workDone(-5);
    p.setRemaining(10);
    expect([p.current, p.total]).toEqual([40, 50]);
    p.increaseRemaining(25);
    expect([p.current, p.total]).toEqual([40, 75]);
  });
});
