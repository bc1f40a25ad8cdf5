/** x-qmpemu-guest-io: structured guest I/O through a backend or a node, checked with qemu-io. */
import { afterAll, describe, expect, it } from "vitest";
import { emulator, hasQemuImg, sh, tmpDir } from "./helpers.ts";

const d = tmpDir();
afterAll(() => d.cleanup());

describe.skipIf(!hasQemuImg)("x-qmpemu-guest-io", () => {
  it("writes, verifies, zeroes and reports failures as data", async () => {
    sh("qemu-img create -q -f qcow2 g.qcow2 4M", d.dir);
    const s = await emulator({ drives: [{ if: "none", id: "drive0", file: d.file("g.qcow2"), format: "qcow2", "node-name": "g" }] });
    const io = (a: Record<string, unknown>) => s.q("x-qmpemu-guest-io", a);
    expect(await io({ device: "drive0", op: "write", offset: 0, length: 65536, pattern: 0x5a })).toEqual({ return: { bytes: 65536, ok: true } });
    expect(await io({ device: "drive0", op: "read", offset: 0, length: 65536, pattern: 0x5a })).toEqual({ return: { bytes: 65536, ok: true } });
    expect(await io({ node: "g", op: "read", offset: 4096, length: 65536, pattern: 0x5a })).toEqual({
      return: { bytes: 65536, ok: false, mismatch: { offset: 65536, found: 0 } },
    });
    expect(await io({ device: "drive0", op: "zero", offset: 0, length: 4096 })).toEqual({ return: { bytes: 4096, ok: true } });
    expect(await io({ device: "drive0", op: "write", offset: 4 << 20, length: 512 })).toEqual({
      return: { bytes: 0, ok: false, error: "Input/output error" },
    });
    expect(await io({ device: "drive0", op: "flush" })).toEqual({ return: { bytes: 0, ok: true } });
    expect(await io({ device: "nosuch", op: "flush" })).toEqual({
      error: { class: "GenericError", desc: "Cannot find device='' nor node-name='nosuch'" },
    });
    expect((await io({ node: (await s.q("query-named-block-nodes", { flat: true })).return.at(-1)["node-name"], op: "write", length: 512 })).error.desc).toMatch(
      /^Permission conflict on node '#block\d+': permissions 'write' are both required by an unnamed block device .* and unshared by node 'g' \(uses node '#block\d+' as 'file' child\)\.$/,
    );
    await s.close();
    expect(sh("qemu-io -f qcow2 -c 'read -P 0 0 4k' -c 'read -P 0x5a 4k 60k' -c 'read -P 0 64k 64k' g.qcow2", d.dir)).not.toMatch(/Pattern verification failed/);
    expect(sh("qemu-img check g.qcow2", d.dir)).toMatch(/No errors were found/);
  });
});
