/**
 * Validator tables. Every expected text below was produced by real
 * qemu-system-x86_64 7.2 for the same arguments on the real command; the
 * schemas here mirror those commands' QAPI definitions.
 */
import { describe, expect, it } from "vitest";
import { JsonFloat, JsonReader } from "../json/reader.ts";
import { commands as machineCommands } from "./machine.ts";
import { alternate, any, array, bool, enumOf, int, nil, optional, str, struct, union } from "./qapi.ts";
import { leftoverOrder, validateArgs } from "./validate.ts";

const BitmapAdd = struct("BlockDirtyBitmapAdd", {
  node: str(),
  name: str(),
  granularity: optional(int("uint32")),
  persistent: optional(bool()),
  disabled: optional(bool()),
});
const DriveBackup = struct("DriveBackup", {
  "job-id": optional(str()),
  device: str(),
  target: str(),
  format: optional(str()),
  sync: enumOf("MirrorSyncMode", ["top", "full", "none", "incremental", "bitmap"]),
});
const Transaction = struct("q_obj_transaction-arg", {
  actions: array(
    union(
      "TransactionAction",
      "type",
      { type: enumOf("TransactionActionKind", ["block-dirty-bitmap-add", "drive-backup"]) },
      { "block-dirty-bitmap-add": { data: BitmapAdd }, "drive-backup": { data: DriveBackup } },
    ),
  ),
});
const FileRef = union("BlockdevOptions", "driver", { driver: enumOf("BlockdevDriver", ["file", "null-co", "qcow2", "raw"]) }, {
  file: { filename: str() },
});
const BlockdevRef = alternate("BlockdevRef", [FileRef, str()]);
const BlockdevRefOrNull = alternate("BlockdevRefOrNull", [FileRef, str(), nil()]);
const BlockdevAdd = union(
  "BlockdevOptions",
  "driver",
  { driver: enumOf("BlockdevDriver", ["file", "null-co", "qcow2", "raw"]), "node-name": optional(str()) },
  {
    "null-co": { size: optional(int()) },
    raw: { file: BlockdevRef },
    qcow2: { file: BlockdevRef, backing: optional(BlockdevRefOrNull) },
  },
);
const Qcow2Create = struct("q_obj_blockdev-create-arg", {
  "job-id": str(),
  options: union("BlockdevCreateOptions", "driver", { driver: enumOf("BlockdevDriver", ["qcow2"]) }, {
    qcow2: {
      file: BlockdevRef,
      size: int("size"),
      version: optional(enumOf("BlockdevQcow2Version", ["v2", "v3"])),
      "cluster-size": optional(int("size")),
    },
  }),
});
const SetSpeed = struct("q_obj_block-job-set-speed-arg", { device: str(), speed: int() });
const Hmp = struct("q_obj_human-monitor-command-arg", { "command-line": str(), "cpu-index": optional(int()) });
const yank = machineCommands.find((c) => c.name === "yank")!.args!;

/** Parse like the monitor does, so 1.0 / big integers arrive as on the wire. */
function json(text: string): Record<string, unknown> {
  const r = new JsonReader();
  r.push(new TextEncoder().encode(text + " "));
  return r.next()!.value as Record<string, unknown>;
}

const CASES: [string, typeof BitmapAdd | typeof yank, string, string][] = [
  ["bitmap", BitmapAdd, `{"node":"x","name":"b","granularity":-1}`, "Parameter 'granularity' expects uint32_t"],
  ["bitmap", BitmapAdd, `{"node":"x","name":"b","granularity":"x"}`, "Parameter 'granularity' expects uint64"],
  ["bitmap", BitmapAdd, `{"node":"x","name":"b","granularity":1.5}`, "Parameter 'granularity' expects uint64"],
  ["bitmap", BitmapAdd, `{"node":"x","name":"b","granularity":4294967296}`, "Parameter 'granularity' expects uint32_t"],
  ["bitmap", BitmapAdd, `{"node":"x","name":"b","granularity":-9223372036854775809}`, "Parameter 'granularity' expects uint64"],
  ["bitmap", BitmapAdd, `{"node":"x","name":"b","granularity":18446744073709551615}`, "Parameter 'granularity' expects uint32_t"],
  ["bitmap", BitmapAdd, `{"node":"x","granularity":"x"}`, "Parameter 'name' is missing"],
  ["bitmap", BitmapAdd, `{"name":"b","node":"x","zzz":1,"aaa":2}`, "Parameter 'zzz' is unexpected"],
  ["txn", Transaction, `{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"x"}}]}`, "Parameter 'actions[0].data.name' is missing"],
  ["txn", Transaction, `{"actions":[{"type":"bogus"}]}`, "Parameter 'type' does not accept value 'bogus'"],
  ["txn", Transaction, `{"actions":[{"type":"drive-backup","data":{"device":"x","target":"y","sync":"bogus"}}]}`, "Parameter 'sync' does not accept value 'bogus'"],
  ["txn", Transaction, `{"actions":[{"type":"drive-backup","data":{"device":"x","target":"y","sync":3}}]}`, "Invalid parameter type for 'actions[0].data.sync', expected: string"],
  ["txn", Transaction, `{"actions":"x"}`, "Invalid parameter type for 'actions', expected: array"],
  ["txn", Transaction, `{"actions":[1]}`, "Invalid parameter type for 'actions[0]', expected: object"],
  ["txn", Transaction, `{"actions":[{}]}`, "Parameter 'actions[0].type' is missing"],
  ["txn", Transaction, `{"actions":[{"type":"block-dirty-bitmap-add"}]}`, "Parameter 'actions[0].data' is missing"],
  ["txn", Transaction, `{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"x","name":"y","granularity":-5}}]}`, "Parameter 'granularity' expects uint32_t"],
  ["txn", Transaction, `{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"x","name":"y","q":1}}]}`, "Parameter 'actions[0].data.q' is unexpected"],
  ["txn", Transaction, `{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"x","name":"y"},"extra":1}]}`, "Parameter 'actions[0].extra' is unexpected"],
  ["yank", yank, `{"instances":[{"type":"chardev"}]}`, "Parameter 'instances[0].id' is missing"],
  ["yank", yank, `{"instances":[{"type":"chardev","id":1}]}`, "Invalid parameter type for 'instances[0].id', expected: string"],
  ["yank", yank, `{"instances":[{"type":"chardev","id":"x","extra":1}]}`, "Parameter 'instances[0].extra' is unexpected"],
  ["yank", yank, `{"instances":[{"type":"migration","id":"x"}]}`, "Parameter 'instances[0].id' is unexpected"],
  ["blockdev-add", BlockdevAdd, `{"driver":"null-co","node-name":"n","size":"x"}`, "Invalid parameter type for 'size', expected: integer"],
  ["blockdev-add", BlockdevAdd, `{"driver":"raw","node-name":"n","file":5}`, "Invalid parameter type for 'file', expected: BlockdevRef"],
  ["blockdev-add", BlockdevAdd, `{"driver":"raw","node-name":"n","file":null}`, "Invalid parameter type for 'file', expected: BlockdevRef"],
  ["blockdev-add", BlockdevAdd, `{"driver":"qcow2","node-name":"n","file":"x","backing":1}`, "Invalid parameter type for 'backing', expected: BlockdevRefOrNull"],
  ["blockdev-add", BlockdevAdd, `{"driver":"qcow2","node-name":"n","file":{"driver":"file"}}`, "Parameter 'file.filename' is missing"],
  ["blockdev-add", BlockdevAdd, `{"driver":"qcow2","node-name":"n","file":{"driver":"bogus"}}`, "Parameter 'driver' does not accept value 'bogus'"],
  ["blockdev-add", BlockdevAdd, `{"driver":"bogus"}`, "Parameter 'driver' does not accept value 'bogus'"],
  ["blockdev-add", BlockdevAdd, `{"driver":5}`, "Invalid parameter type for 'driver', expected: string"],
  ["blockdev-add", BlockdevAdd, `{"node-name":"n"}`, "Parameter 'driver' is missing"],
  ["create", Qcow2Create, `{"job-id":"j","options":{"driver":"qcow2","file":"x","size":"x"}}`, "Parameter 'options.size' expects uint64"],
  ["create", Qcow2Create, `{"job-id":"j","options":{"driver":"qcow2","file":"x","size":1.5}}`, "Parameter 'options.size' expects uint64"],
  ["create", Qcow2Create, `{"job-id":"j","options":{"driver":"qcow2","file":"x","size":1048576,"cluster-size":"x"}}`, "Parameter 'options.cluster-size' expects uint64"],
  ["create", Qcow2Create, `{"job-id":"j","options":{"driver":"qcow2","file":5,"size":1048576}}`, "Invalid parameter type for 'file', expected: BlockdevRef"],
  ["create", Qcow2Create, `{"job-id":"j","options":{"driver":"qcow2","file":"x","size":1048576,"version":"v9"}}`, "Parameter 'version' does not accept value 'v9'"],
  ["hmp", Hmp, `{"command-line":"x","cpu-index":"x"}`, "Invalid parameter type for 'cpu-index', expected: integer"],
  ["hmp", Hmp, `{"command-line":"x","cpu-index":1.0}`, "Invalid parameter type for 'cpu-index', expected: integer"],
  ["speed", SetSpeed, `{"device":"x","speed":9223372036854775808}`, "Invalid parameter type for 'speed', expected: integer"],
  ["speed", SetSpeed, `{"device":"x","speed":18446744073709551616}`, "Invalid parameter type for 'speed', expected: integer"],
  ["speed", SetSpeed, `{"device":"x","speed":null}`, "Invalid parameter type for 'speed', expected: integer"],
  ["speed", SetSpeed, `{"device":"x"}`, "Parameter 'speed' is missing"],
];

describe("validateArgs (texts from QEMU 7.2)", () => {
  for (const [label, schema, args, desc] of CASES) {
    it(`${label}: ${args}`, () => {
      expect(() => validateArgs(schema, json(args))).toThrow(desc);
      try {
        validateArgs(schema, json(args));
      } catch (e) {
        expect((e as { desc: string }).desc).toBe(desc);
        expect((e as { errorClass: string }).errorClass).toBe("GenericError");
      }
    });
  }

  it("accepts valid arguments and normalises numbers per member type", () => {
    expect(validateArgs(Qcow2Create, json(`{"job-id":"j","options":{"driver":"qcow2","file":"x","size":-1}}`))).toEqual({
      "job-id": "j",
      options: { driver: "qcow2", file: "x", size: 18446744073709551615n },
    });
    expect(validateArgs(SetSpeed, json(`{"device":"x","speed":-9223372036854775808}`))).toEqual({ device: "x", speed: -9223372036854775808n });
    expect(validateArgs(BlockdevAdd, json(`{"driver":"qcow2","file":{"driver":"file","filename":"a"},"backing":null}`))).toEqual({
      driver: "qcow2",
      file: { driver: "file", filename: "a" },
      backing: null,
    });
    expect(validateArgs(struct("n", { x: optional(int()) }), {})).toEqual({});
    // An alternate picks its member by JSON type; 2.0 is a number, so the int member rejects it.
    expect(() => validateArgs(struct("f", { x: optional(alternate("A", [str(), int()])) }), { x: new JsonFloat(2) })).toThrow(
      "Invalid parameter type for 'x', expected: integer",
    );
  });

  it("lets an alternate's 'any' member take values no other member claims", () => {
    const Ref = alternate("BlockdevRef", [str(), any()]);
    const S = struct("s", { file: Ref });
    expect(validateArgs(S, { file: { driver: "file", filename: "x" } })).toEqual({ file: { driver: "file", filename: "x" } });
    expect(validateArgs(S, { file: "node0" })).toEqual({ file: "node0" });
  });

  it("reports every member of a command without arguments as unexpected, in QEMU's order", () => {
    // QEMU: {"a":1,"b":2,"zz":3} → 'b'.
    expect(() => validateArgs(undefined, json(`{"a":1,"b":2,"zz":3}`))).toThrow("Parameter 'b' is unexpected");
  });

  it("finds leftover members in the order QEMU's GHashTable yields them", () => {
    // First key reported by QEMU 7.2 for these argument sets of query-status.
    const seen: [string[], string][] = [
      [["cfe", "vhap", "ija"], "vhap"],
      [["rltskew", "o", "mmmdpum"], "rltskew"],
      [["c", "tmeu", "ltlpd", "_p", "ppjcedxk", "p-wfq"], "p-wfq"],
      [["ovs-qn", "req", "_", "yftayzef", "ptx", "rb", "vqqrpz"], "yftayzef"],
      [["vpr-mqj", "hkg-"], "vpr-mqj"],
      [["p", "slevq", "cihm", "uonj_-_"], "p"],
    ];
    for (const [keys, first] of seen) expect(leftoverOrder(keys)[0]).toBe(first);
  });
});
