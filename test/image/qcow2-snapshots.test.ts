/**
 * Internal snapshots written by the image library, checked with qemu-img:
 * `check` stays clean after every step, `snapshot -l` / `info` list what the
 * library stored, and each snapshot reads back the data of its moment while
 * later writes change only the active image.
 */
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { createQcow2, openFileStore, openQcow2, type Qcow2CreateOptions, type Qcow2Image } from "../../src/image/index.ts";
import { firstDiff, hasQemu, pattern, qemuCheck, qemuContent, qemuImg, rng, tmpDir, createImage } from "./qemu-tools.ts";

const t = tmpDir("qmpemu-snap-");
afterAll(() => t.cleanup());

const create = (name: string, opts: Qcow2CreateOptions) => createImage(t, name, opts);

const open = (file: string) => openQcow2(openFileStore(file), { metadataCache: "writeback" });
const pool = pattern(4 << 20, 11);

async function scribble(img: Qcow2Image, shadow: Uint8Array, seed: number, ops: number): Promise<void> {
  const r = rng(seed);
  const cs = img.clusterSize;
  for (let i = 0; i < ops; i++) {
    const kind = r();
    const len = 1 + Math.floor(r() * cs * 3);
    const off = Math.floor(r() * (img.size - len));
    if (kind < 0.6) {
      const d = pool.slice(off % 1000, (off % 1000) + len);
      await img.write(d, off);
      shadow.set(d, off);
    } else if (kind < 0.75) {
      const c = Math.floor(r() * (img.size / cs - 2));
      if ((await img.blockStatus(c * cs, cs)).allocated) continue;
      const d = new Uint8Array(cs).fill(c & 0xff);
      await img.writeCompressed(d, c * cs);
      shadow.set(d, c * cs);
    } else if (kind < 0.9) {
      await img.writeZeroes(off, len, { unmap: r() < 0.5 });
      shadow.fill(0, off, off + len);
    } else {
      await img.discard(off, len);
      const start = Math.ceil(off / cs) * cs;
      const end = Math.floor((off + len) / cs) * cs;
      if (end > start) shadow.fill(0, start, end);
    }
  }
}

function expectClean(file: string): void {
  const c = qemuCheck(file);
  expect(c.stdout + c.stderr).not.toMatch(/ERROR|Leaked/);
  expect(c.status).toBe(0);
}

function snapshotContent(file: string, name: string): Uint8Array {
  const out = t.file(`snap-${name}.raw`);
  qemuImg("convert", "-l", `snapshot.name=${name}`, "-O", "raw", file, out);
  const data = fs.readFileSync(out);
  fs.rmSync(out);
  return new Uint8Array(data);
}

function qemuSnapshots(file: string): Array<Record<string, unknown>> {
  const info = JSON.parse(qemuImg("info", "--output=json", file).stdout);
  return info.snapshots ?? [];
}

describe.skipIf(!hasQemu)("qcow2 internal snapshots against qemu-img", () => {
  for (const opts of [
    { name: "v3 64k", size: 8 << 20, clusterSize: 65536 },
    { name: "v2 4k refcount16", size: 3 << 20, clusterSize: 4096, version: 2 as const },
    { name: "v3 512 refcount8", size: 1 << 20, clusterSize: 512, refcountBits: 8 },
  ]) {
    it(`create, write, snapshot, write, delete (${opts.name})`, async () => {
      const file = await create(`a-${opts.clusterSize}.qcow2`, {
        size: opts.size,
        clusterSize: opts.clusterSize,
        version: opts.version,
        refcountBits: opts.refcountBits,
      } as Qcow2CreateOptions);
      const shadow = new Uint8Array(opts.size);
      const taken = new Map<string, Uint8Array>();
      let img = await open(file);
      await scribble(img, shadow, 1, 60);
      const s1 = await img.createSnapshot({ name: "one", dateSec: 1700000000, dateNsec: 5000, vmClockNsec: 0 });
      expect(s1.id).toBe("1");
      taken.set("one", shadow.slice());
      await scribble(img, shadow, 2, 60);
      await img.createSnapshot({ name: "two", dateSec: 1700000001, dateNsec: 0, vmClockNsec: 1_500_000_000 });
      taken.set("two", shadow.slice());
      await scribble(img, shadow, 3, 60);
      await img.close();
      expectClean(file);
      const listed = qemuSnapshots(file);
      expect(listed.map((s) => [s.id, s.name, s["date-sec"], s["date-nsec"], s["vm-clock-sec"], s["vm-clock-nsec"], s["vm-state-size"]])).toEqual([
        ["1", "one", 1700000000, 5000, 0, 0, 0],
        ["2", "two", 1700000001, 0, 1, 500000000, 0],
      ]);
      expect(listed.every((s) => s.icount === undefined)).toBe(true);
      expect(firstDiff(qemuContent(file, t.file("act.raw")), shadow)).toBe(-1);
      for (const [name, data] of taken) expect(firstDiff(snapshotContent(file, name), data)).toBe(-1);

      img = await open(file);
      expect(img.snapshots().map((s) => s.name)).toEqual(["one", "two"]);
      expect(await img.deleteSnapshot(null, "one")).toMatchObject({ id: "1", name: "one" });
      expect(await img.deleteSnapshot("9", null)).toBeNull();
      await scribble(img, shadow, 4, 40);
      await img.close();
      expectClean(file);
      expect(qemuSnapshots(file).map((s) => s.name)).toEqual(["two"]);
      expect(firstDiff(snapshotContent(file, "two"), taken.get("two")!)).toBe(-1);
      expect(firstDiff(qemuContent(file, t.file("act.raw")), shadow)).toBe(-1);

      img = await open(file);
      const s3 = await img.createSnapshot({ name: "three", dateSec: 1, dateNsec: 2, vmClockNsec: 3 });
      expect(s3.id).toBe("3");
      await img.deleteSnapshot("2", "two");
      await img.deleteSnapshot("3", null);
      await scribble(img, shadow, 5, 20);
      await img.close();
      expectClean(file);
      expect(qemuSnapshots(file)).toEqual([]);
      // With every snapshot gone, the active clusters are owned again: COPIED set where qemu-img expects it.
      const c = qemuImg("check", "-r", "all", file);
      expect(c.stdout).not.toMatch(/OFLAG_COPIED|Repairing/);
      expect(firstDiff(qemuContent(file, t.file("act.raw")), shadow)).toBe(-1);
    });
  }

  it("reads and deletes a snapshot qemu-img made", async () => {
    const file = await create("q.qcow2", { size: 2 << 20, clusterSize: 65536 });
    const shadow = new Uint8Array(2 << 20);
    let img = await open(file);
    await scribble(img, shadow, 7, 30);
    await img.close();
    qemuImg("snapshot", "-c", "made-by-qemu", file);
    img = await open(file);
    const [s] = img.snapshots();
    const q = qemuSnapshots(file)[0]!;
    expect([s!.id, s!.name, s!.dateSec, s!.dateNsec, s!.vmStateSize, s!.diskSize]).toEqual([q.id, q.name, q["date-sec"], q["date-nsec"], 0, 2 << 20]);
    const before = shadow.slice();
    await scribble(img, shadow, 8, 30);
    await img.createSnapshot({ name: "mine", dateSec: 0, dateNsec: 0, vmClockNsec: 0 });
    await img.close();
    expectClean(file);
    expect(firstDiff(snapshotContent(file, "made-by-qemu"), before)).toBe(-1);
    expect(firstDiff(snapshotContent(file, "mine"), shadow)).toBe(-1);
    img = await open(file);
    await img.deleteSnapshot(null, "made-by-qemu");
    await img.close();
    expectClean(file);
    expect(qemuImg("snapshot", "-l", file).stdout).toMatch(/^2\s+mine\s/m);
  });
});
