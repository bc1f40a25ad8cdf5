import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { planQcow2Create, resizeTarget } from "../../src/block/jobs/create-qcow2-options.ts";
import { createFile } from "../../src/block/jobs/create-file.ts";

// Texts and precedence recorded from qemu-system-x86_64 7.2 (jobs with several bad options at once).
const cases: [Record<string, unknown>, string][] = [
  [{ size: 1000, "cluster-size": 3, version: "v2", "lazy-refcounts": true }, "Image size must be a multiple of 512 bytes"],
  [{ size: 1024, "cluster-size": 3, version: "v2", "lazy-refcounts": true, "backing-fmt": "raw", "refcount-bits": 3 }, "Cluster size must be a power of two between 512 and 2048k"],
  [{ size: 1024, "cluster-size": 4194304 }, "Cluster size must be a power of two between 512 and 2048k"],
  [{ size: 1024, version: "v2", "lazy-refcounts": true, "backing-fmt": "raw", "refcount-bits": 3 }, "Backing format cannot be used without backing file"],
  [{ size: 1024, version: "v2", "lazy-refcounts": true, "refcount-bits": 3 }, "Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)"],
  [{ size: 1024, version: "v2", "refcount-bits": 3 }, "Refcount width must be a power of two and may not exceed 64 bits"],
  [{ size: 1024, version: "v2", "refcount-bits": 32 }, "Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)"],
  [{ size: 1024, "backing-file": "/x", preallocation: "metadata" }, "Backing file and preallocation can only be used at the same time if extended_l2 is on"],
  [{ size: 1024, preallocation: "falloc", version: "v2", "compression-type": "zstd", "refcount-bits": 32 }, "Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)"],
  [{ size: 1048576, version: "v2", "compression-type": "zstd" }, "Non-zlib compression type is only supported with compatibility level 1.1 and above (use version=v3 or greater)"],
  [{ size: 1048576, "extended-l2": true, version: "v2", "cluster-size": 3 }, "Extended L2 entries are only supported with compatibility level 1.1 and above (use version=v3 or greater)"],
  [{ size: 1048576, "extended-l2": true, "cluster-size": 8192 }, "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes"],
  [{ size: 1048576, "data-file-raw": true, "data-file": "d", "backing-file": "/x" }, "Backing file and data-file-raw cannot be used at the same time"],
  [{ size: 18446744073709551615n }, "Image size must be a multiple of 512 bytes"],
  [{ size: 1024, "cluster-size": 512, version: "v2", "data-file": "fa" }, "External data files are only supported with compatibility level 1.1 and above (use version=v3 or greater)"],
  [{ size: 1024, "data-file-raw": true }, "data-file-raw requires data-file"],
];

describe("blockdev-create qcow2 option checks", () => {
  it.each(cases)("case %# → %s", (opts, text) => {
    expect(() => planQcow2Create(opts as never)).toThrow(text);
  });
  it("fills QEMU's defaults", () => {
    expect(planQcow2Create({ size: 1 << 20 })).toEqual({
      size: 1048576n, version: 3, clusterSize: 65536, refcountBits: 16, lazyRefcounts: false,
      backingFile: undefined, backingFormat: undefined, preallocation: "off",
    });
    expect(planQcow2Create({ size: 33554432, version: "v2", "cluster-size": 4096, "refcount-bits": 16 }).version).toBe(2);
  });
});

describe("blockdev-create qcow2 sizes QEMU only refuses when it resizes the image", () => {
  it.each([
    [-512n, "Could not resize image: Image size cannot be negative"],
    [18446744073709551104n, "Could not resize image: Image size cannot be negative"],
    [9223372036854775296n, "Could not resize image: offset(9223372036854775296) exceeds maximum(9223372035781033984)"],
  ])("%s → %s", (size, text) => {
    expect(() => resizeTarget(size)).toThrow(text);
  });
  it("looks the data file up after the data-file-raw checks", () => {
    const seen: unknown[] = [];
    planQcow2Create({ size: 1024, "data-file": "d" }, (ref) => seen.push(ref));
    expect(seen).toEqual(["d"]);
  });
});

describe("blockdev-create file", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "h6-create-"));
  it("creates, truncates and preallocates", async () => {
    const f = path.join(dir, "a");
    fs.writeFileSync(f, "old content");
    await createFile({ filename: f, size: 0 });
    expect(fs.statSync(f).size).toBe(0);
    await createFile({ filename: f, size: 1048576, preallocation: "full" });
    expect(fs.statSync(f).size).toBe(1048576);
    expect(fs.statSync(f).blocks * 512).toBeGreaterThanOrEqual(1048576);
  });
  it("reports QEMU's errors", async () => {
    await expect(createFile({ filename: path.join(dir, "nodir/x.qcow2"), size: 0 })).rejects.toThrow(
      `Could not create '${path.join(dir, "nodir/x.qcow2")}': No such file or directory`,
    );
    await expect(createFile({ filename: path.join(dir, "neg"), size: -1 })).rejects.toThrow("Could not resize file: Invalid argument");
    await expect(createFile({ filename: path.join(dir, "pre"), size: 1000, preallocation: "metadata" })).rejects.toThrow(
      "Unsupported preallocation mode: metadata",
    );
  });
});
