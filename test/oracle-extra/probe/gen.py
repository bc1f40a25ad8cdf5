import json, os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
os.makedirs(OUT, exist_ok=True)
SETUP = ["qemu-img create -q -f qcow2 src.qcow2 16M",
         "qemu-io -f qcow2 -c \"write -P 0xab 0 4M\" -c \"write -P 0xcd 8M 1M\" src.qcow2",
         "qemu-img create -q -f qcow2 tgt.qcow2 16M",
         "qemu-img create -q -f qcow2 tgt2.qcow2 16M"]
BD = ["driver=qcow2,node-name=src,file.driver=file,file.filename={dir}/src.qcow2",
      "driver=qcow2,node-name=tgt,file.driver=file,file.filename={dir}/tgt.qcow2",
      "driver=qcow2,node-name=tgt2,file.driver=file,file.filename={dir}/tgt2.qcow2"]
def C(cmd, args=None, **kw):
    d = {"cmd": cmd}
    if args is not None: d["args"] = args
    d.update(kw); return d
def ev(name, **match):
    e = {"event": name}
    if match: e["match"] = match
    return e
def st(status, jid): return ev("JOB_STATUS_CHANGE", status=status, id=jid)
def hmp(line, **kw): return C("human-monitor-command", {"command-line": line}, **kw)
def W(name, steps, setup=SETUP, blockdev=BD, post=None, **extra):
    d = {}
    if setup: d["setup"] = setup
    if blockdev: d["blockdev"] = blockdev
    d["steps"] = steps
    if post: d["post"] = post
    d.update(extra)
    d["name"] = name
    json.dump(d, open(os.path.join(OUT, name + ".json"), "w"), indent=1)
NQ = lambda: C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "ro", "file", "backing_file", "backing_file_depth", "image", "dirty-bitmaps", "detect_zeroes", "write_threshold", "cache", "encrypted", "bps"]})

# ---------------- batch 1: job states ----------------
VERBS = lambda j: [
    C("job-pause", {"id": j}), C("job-resume", {"id": j}), C("job-complete", {"id": j}),
    C("job-finalize", {"id": j}), C("job-dismiss", {"id": j}),
    C("block-job-pause", {"device": j}), C("block-job-resume", {"device": j}),
    C("block-job-complete", {"device": j}), C("block-job-finalize", {"id": j}),
    C("block-job-dismiss", {"id": j}), C("block-job-set-speed", {"device": j, "speed": 1000}),
    C("query-jobs"), C("query-block-jobs")]

W("p-verbs-pending", [
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "full",
                          "auto-finalize": False, "auto-dismiss": False},
      until=[ev("BLOCK_JOB_PENDING")]),
] + VERBS("j") + [
    C("job-cancel", {"id": "j"}, until=[st("concluded", "j")]),
    C("query-jobs"), C("query-block-jobs"),
    C("job-cancel", {"id": "j"}),
    C("job-dismiss", {"id": "j"}, until=[st("null", "j")]),
])

W("p-verbs-standby", [
    C("blockdev-mirror", {"job-id": "m", "device": "src", "target": "tgt", "sync": "full"},
      until=[st("ready", "m"), ev("BLOCK_JOB_READY")]),
    C("job-pause", {"id": "m"}, until=[st("standby", "m")]),
] + VERBS("m")[2:] + [
    C("job-pause", {"id": "m"}),
    C("job-resume", {"id": "m"}, until=[st("ready", "m")]),
    C("job-complete", {"id": "m"}, until=[st("null", "m")]),
    C("query-jobs"),
])

W("p-verbs-waiting", [
    C("transaction", {"actions": [
        {"type": "blockdev-backup", "data": {"job-id": "fast", "device": "src", "target": "tgt", "sync": "full"}},
        {"type": "blockdev-backup", "data": {"job-id": "slow", "device": "src", "target": "tgt2", "sync": "full", "speed": 1}}],
        "properties": {"completion-mode": "grouped"}},
      until=[st("waiting", "fast")]),
] + VERBS("fast") + [
    C("job-cancel", {"id": "fast"}, until=[st("null", "fast"), st("null", "slow")]),
    C("query-jobs"),
])

W("p-grouped-cancel", [
    C("transaction", {"actions": [
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "full", "speed": 1}},
        {"type": "blockdev-backup", "data": {"job-id": "b", "device": "src", "target": "tgt2", "sync": "full", "speed": 1}}],
        "properties": {"completion-mode": "grouped"}}),
    {"wait_job": "a", "status": "running"},
    {"wait_job": "b", "status": "running"},
    C("block-job-cancel", {"device": "b"}, until=[st("null", "a"), st("null", "b")]),
    C("query-jobs"),
])

W("p-grouped-finalize-member", [
    {"unordered": [C("transaction", {"actions": [
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "full", "auto-finalize": False}},
        {"type": "blockdev-backup", "data": {"job-id": "b", "device": "src", "target": "tgt2", "sync": "full", "auto-finalize": False, "auto-dismiss": False}}],
        "properties": {"completion-mode": "grouped"}}),
    {"wait_event": "JOB_STATUS_CHANGE", "match": {"status": "pending", "id": "a"}},
    {"wait_event": "JOB_STATUS_CHANGE", "match": {"status": "pending", "id": "b"}}]},
    C("query-jobs"),
    C("job-finalize", {"id": "b"}, until=[st("null", "a"), st("concluded", "b")]),
    C("query-jobs"),
    C("job-dismiss", {"id": "b"}, until=[st("null", "b")]),
], post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2", "qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt2.qcow2"])

W("p-grouped-cancel-pending", [
    {"unordered": [C("transaction", {"actions": [
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "full", "auto-finalize": False, "auto-dismiss": False}},
        {"type": "blockdev-backup", "data": {"job-id": "b", "device": "src", "target": "tgt2", "sync": "full", "auto-finalize": False}}],
        "properties": {"completion-mode": "grouped"}}),
    {"wait_event": "JOB_STATUS_CHANGE", "match": {"status": "pending", "id": "a"}},
    {"wait_event": "JOB_STATUS_CHANGE", "match": {"status": "pending", "id": "b"}}]},
    C("job-cancel", {"id": "a"}, until=[st("concluded", "a"), st("null", "b")]),
    C("query-jobs"),
    C("job-dismiss", {"id": "a"}, until=[st("null", "a")]),
])

W("p-mirror-manual-cancel-ready", [
    C("blockdev-mirror", {"job-id": "m", "device": "src", "target": "tgt", "sync": "full",
                          "auto-finalize": False, "auto-dismiss": False},
      until=[st("ready", "m")]),
    C("block-job-cancel", {"device": "m"}, until=[st("pending", "m"), ev("BLOCK_JOB_PENDING")]),
    C("query-jobs"), C("query-block-jobs"),
    C("job-finalize", {"id": "m"}, until=[st("concluded", "m")]),
    C("query-block-jobs"),
    C("job-dismiss", {"id": "m"}, until=[st("null", "m")]),
])

W("p-mirror-force-cancel-ready-manual", [
    C("blockdev-mirror", {"job-id": "m", "device": "src", "target": "tgt", "sync": "full",
                          "auto-finalize": False, "auto-dismiss": False},
      until=[st("ready", "m")]),
    C("block-job-cancel", {"device": "m", "force": True}, until=[st("concluded", "m")]),
    C("query-jobs"),
    C("job-dismiss", {"id": "m"}, until=[st("null", "m")]),
])

SETUP_CHAIN = ["qemu-img create -q -f qcow2 base.qcow2 16M",
               "qemu-io -f qcow2 -c \"write -P 0x11 0 2M\" base.qcow2",
               "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2",
               "qemu-io -f qcow2 -c \"write -P 0x22 2M 2M\" mid.qcow2",
               "qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2",
               "qemu-io -f qcow2 -c \"write -P 0x33 4M 1M\" top.qcow2"]
BD_CHAIN = ["driver=qcow2,node-name=top,file.driver=file,file.filename={dir}/top.qcow2,backing.driver=qcow2,backing.node-name=mid,backing.file.driver=file,backing.file.filename={dir}/mid.qcow2,backing.backing.driver=qcow2,backing.backing.node-name=base,backing.backing.file.driver=file,backing.backing.file.filename={dir}/base.qcow2"]

W("p-stream-manual", [
    C("block-stream", {"job-id": "s", "device": "top", "auto-finalize": False, "auto-dismiss": False},
      until=[st("pending", "s")]),
    C("query-jobs"), C("query-block-jobs"),
    C("job-finalize", {"id": "s"}, until=[st("concluded", "s"), ev("BLOCK_JOB_COMPLETED")]),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth"]}),
    C("job-dismiss", {"id": "s"}, until=[st("null", "s")]),
], setup=SETUP_CHAIN, blockdev=BD_CHAIN)

W("p-commit-intermediate-manual", [
    C("block-commit", {"job-id": "c", "device": "top", "top-node": "mid", "base-node": "base", "auto-finalize": False, "auto-dismiss": False},
      until=[st("pending", "c")]),
    C("query-block-jobs"),
    C("job-cancel", {"id": "c"}, until=[st("concluded", "c")]),
    C("query-jobs"),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth"]}),
    C("job-dismiss", {"id": "c"}, until=[st("null", "c")]),
], setup=SETUP_CHAIN, blockdev=BD_CHAIN)

W("p-commit-active-manual", [
    C("block-commit", {"job-id": "c", "device": "top", "auto-finalize": False, "auto-dismiss": False},
      until=[st("ready", "c"), ev("BLOCK_JOB_READY")]),
    C("query-block-jobs"),
    C("job-complete", {"id": "c"}, until=[st("pending", "c")]),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth"]}),
    C("job-finalize", {"id": "c"}, until=[st("concluded", "c")]),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth"]}),
    C("query-block-jobs"),
    C("job-dismiss", {"id": "c"}, until=[st("null", "c")]),
], setup=SETUP_CHAIN, blockdev=BD_CHAIN)

W("p-set-speed-various", [
    C("blockdev-backup", {"job-id": "b", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    {"wait_job": "b", "status": "running"},
    C("block-job-set-speed", {"device": "b", "speed": 0}),
    C("block-job-set-speed", {"device": "b", "speed": 1}),
    C("block-job-set-speed", {"device": "b", "speed": -5}),
    C("block-job-set-speed", {"device": "b", "speed": 9223372036854775807}),
    C("block-job-set-speed", {"device": "b", "speed": 9223372036854775808}),
    C("block-job-set-speed", {"device": "b", "speed": "10"}),
    C("block-job-set-speed", {"device": "b"}),
    C("block-job-set-speed", {"device": "nope", "speed": 1}),
    C("block-job-set-speed", {"device": "src", "speed": 1}),
    C("block-job-set-speed", {"device": "b", "speed": 1, "extra": 1}),
    C("query-block-jobs", record={"pick": ["device", "speed", "type", "status"]}),
    C("block-job-set-speed", {"device": "b", "speed": 1}),
    C("job-cancel", {"id": "b"}, until=[st("null", "b")]),
])
W("p-set-speed-max", [
    C("blockdev-backup", {"job-id": "b", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    {"wait_job": "b", "status": "running"},
    C("job-pause", {"id": "b"}),
    {"wait_job": "b", "status": "paused"},
    C("block-job-set-speed", {"device": "b", "speed": 9223372036854775807}),
    C("query-block-jobs", record={"pick": ["device", "speed", "status"]}),
    C("block-job-set-speed", {"device": "b", "speed": 9007199254740993}),
    C("query-block-jobs", record={"pick": ["device", "speed", "status"]}),
    C("block-job-set-speed", {"device": "b", "speed": 9223372036854775807}),
    C("job-resume", {"id": "b"}, until=[st("null", "b")]),
])
W("p-standby-complete-resume", [
    C("blockdev-mirror", {"job-id": "m", "device": "src", "target": "tgt", "sync": "full"},
      until=[st("ready", "m")]),
    C("job-pause", {"id": "m"}, until=[st("standby", "m")]),
    C("job-complete", {"id": "m"}),
    C("query-block-jobs"),
    C("job-resume", {"id": "m"}, until=[st("null", "m")]),
])
W("p-mirror-cancel-ready-manual2", [
    C("blockdev-mirror", {"job-id": "m", "device": "src", "target": "tgt", "sync": "full",
                          "auto-finalize": False},
      until=[st("ready", "m")]),
    C("job-cancel", {"id": "m"}, id="c1"),
    {"wait_event": "BLOCK_JOB_PENDING"},
    C("query-jobs"),
    C("job-finalize", {"id": "m"}, until=[st("null", "m")]),
])

W("p-job-ids", [
    C("blockdev-backup", {"job-id": "", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("blockdev-backup", {"job-id": "1abc", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("blockdev-backup", {"job-id": "a b", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("blockdev-backup", {"job-id": "#x", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("blockdev-backup", {"job-id": "x" * 200, "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("blockdev-backup", {"job-id": "a.b-c_d", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("query-jobs", record={"pick": ["id", "type"]}),
    C("blockdev-backup", {"device": "src", "target": "tgt2", "sync": "full", "speed": 1}),
    C("job-cancel", {"id": "a.b-c_d"}, until=[st("null", "a.b-c_d")]),
    C("blockdev-backup", {"device": "src", "target": "tgt2", "sync": "full", "speed": 1}),
    C("query-jobs", record={"pick": ["id", "type"]}),
    C("job-cancel", {"id": "src"}, until=[st("null", "src")]),
])

# ---------------- batch 2: block layer ----------------
BM = lambda node="src": C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]})
W("b-bitmap-cmds", [
    C("block-dirty-bitmap-add", {"node": "src", "name": "b0"}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "b0"}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "g1", "granularity": 512}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "g2", "granularity": 256}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "g3", "granularity": 3000}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "g4", "granularity": 2147483648}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "g5", "granularity": 4294967296}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "d", "disabled": True}),
    C("block-dirty-bitmap-add", {"node": "src", "name": ""}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "x" * 1100}),
    C("block-dirty-bitmap-add", {"node": "nosuch", "name": "z"}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "p", "persistent": True}),
    C("block-dirty-bitmap-add", {"node": "tgt", "name": "q", "persistent": False, "granularity": 131072}),
    hmp("qemu-io src \"write -P 1 0 64k\""),
    BM(),
    C("block-dirty-bitmap-disable", {"node": "src", "name": "b0"}),
    C("block-dirty-bitmap-disable", {"node": "src", "name": "b0"}),
    C("block-dirty-bitmap-enable", {"node": "src", "name": "d"}),
    C("block-dirty-bitmap-enable", {"node": "src", "name": "d"}),
    C("block-dirty-bitmap-enable", {"node": "src", "name": "nope"}),
    hmp("qemu-io src \"write -P 2 1M 128k\""),
    BM(),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "d", "bitmaps": ["b0", "g1"]}),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "d", "bitmaps": [{"node": "tgt", "name": "q"}]}),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "d", "bitmaps": ["nope"]}),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "nope", "bitmaps": ["b0"]}),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "d", "bitmaps": [{"node": "nosuch", "name": "q"}]}),
    BM(),
    C("block-dirty-bitmap-clear", {"node": "src", "name": "b0"}),
    C("block-dirty-bitmap-clear", {"node": "src", "name": "nope"}),
    C("block-dirty-bitmap-remove", {"node": "src", "name": "g1"}),
    C("block-dirty-bitmap-remove", {"node": "src", "name": "g1"}),
    C("block-dirty-bitmap-remove", {"node": "nosuch", "name": "g1"}),
    BM(),
    C("query-block"),
])

W("b-bitmap-busy", [
    C("block-dirty-bitmap-add", {"node": "src", "name": "b"}),
    hmp("qemu-io src \"write -P 1 0 4M\""),
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "incremental", "bitmap": "b", "speed": 1}),
    {"wait_job": "j", "status": "running"},
    BM(),
    C("block-dirty-bitmap-remove", {"node": "src", "name": "b"}),
    C("block-dirty-bitmap-clear", {"node": "src", "name": "b"}),
    C("block-dirty-bitmap-disable", {"node": "src", "name": "b"}),
    C("block-dirty-bitmap-enable", {"node": "src", "name": "b"}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "c"}),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "b", "bitmaps": ["c"]}),
    C("block-dirty-bitmap-merge", {"node": "src", "target": "c", "bitmaps": ["b"]}),
    C("blockdev-backup", {"job-id": "j2", "device": "src", "target": "tgt2", "sync": "incremental", "bitmap": "b"}),
    BM(),
    C("job-cancel", {"id": "j"}, until=[st("null", "j")]),
    BM(),
])

W("b-bitmap-persistent", [
    C("block-dirty-bitmap-add", {"node": "src", "name": "p1", "persistent": True}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "p2", "persistent": True, "disabled": True, "granularity": 1048576}),
    hmp("qemu-io src \"write -P 1 0 2M\""),
    C("blockdev-add", {"driver": "raw", "node-name": "r", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("block-dirty-bitmap-add", {"node": "r", "name": "rp", "persistent": True}),
    C("block-dirty-bitmap-add", {"node": "r", "name": "rn"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "ro", "read-only": True, "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2", "read-only": True}}),
    C("block-dirty-bitmap-add", {"node": "ro", "name": "rop", "persistent": True}),
    C("block-dirty-bitmap-add", {"node": "ro", "name": "ron"}),
    BM(),
    C("block-dirty-bitmap-remove", {"node": "src", "name": "p2"}),
    C("quit"), {"wait_eof": True},
], blockdev=BD[:2], post=["qemu-img info --output=json src.qcow2", "qemu-img check --output=json src.qcow2"])

W("b-blockdev-add-edge", [
    C("blockdev-add", {"driver": "qcow2", "node-name": "ro1", "read-only": True, "file": {"driver": "file", "filename": "{dir}/tgt.qcow2"}}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "aro", "auto-read-only": True, "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2", "auto-read-only": True}}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "dz", "detect-zeroes": "unmap", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "dz2", "detect-zeroes": "unmap", "discard": "unmap", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "dz3", "detect-zeroes": "on", "discard": "ignore", "cache": {"direct": False, "no-flush": True}, "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "x" * 32, "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "x" * 31, "read-only": True, "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-add", {"driver": "qcow2", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-add", {"driver": "file", "node-name": "f1", "filename": "{dir}/tgt2.qcow2", "read-only": True}),
    C("blockdev-add", {"driver": "file", "node-name": "f1", "filename": "{dir}/tgt2.qcow2"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "src", "file": "f1"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "q1", "file": "f1"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "q2", "file": "nonode"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "q3", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}, "bogus": 1}),
    C("blockdev-add", {"driver": "file", "node-name": "f2", "filename": "{dir}/nonexist", "read-only": True}),
    C("blockdev-add", {"driver": "raw", "node-name": "r1", "file": {"driver": "file", "filename": "{dir}/src.qcow2"}, "offset": 512, "size": 1024}),
    C("blockdev-add", {"driver": "raw", "node-name": "r2", "file": {"driver": "file", "filename": "{dir}/src.qcow2"}, "offset": 100}),
    C("blockdev-add", {"driver": "raw", "node-name": "r3", "file": {"driver": "file", "filename": "{dir}/src.qcow2"}, "size": 1000000000000}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "bk", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}, "backing": "src"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "bk2", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}, "backing": None}),
    NQ(),
    C("blockdev-del", {"node-name": "f1"}),
    C("blockdev-del", {"node-name": "src"}),
    C("blockdev-del", {"node-name": "bk"}),
    C("blockdev-del", {"node-name": "src"}),
    C("query-block"),
], blockdev=BD[:1])

W("b-block-resize", [
    C("block_resize", {"node-name": "src", "size": 33554432}),
    C("block_resize", {"node-name": "src", "size": 33554433}),
    C("block_resize", {"node-name": "src", "size": 8388608}),
    C("block_resize", {"node-name": "src", "size": -1}),
    C("block_resize", {"node-name": "src", "size": 0}),
    C("block_resize", {"node-name": "nosuch", "size": 1048576}),
    C("block_resize", {"device": "nosuch", "size": 1048576}),
    C("block_resize", {"size": 1048576}),
    C("block_resize", {"device": "src", "node-name": "src", "size": 1048576}),
    C("block_resize", {"node-name": "ro", "size": 33554432}),
    C("block_resize", {"node-name": "rawf", "size": 2000001}),
    C("block_resize", {"node-name": "rawf", "size": 1048576}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "image"]}),
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    C("block_resize", {"node-name": "src", "size": 67108864}),
    C("block_resize", {"node-name": "tgt", "size": 67108864}),
    C("job-cancel", {"id": "j"}, until=[st("null", "j")]),
], setup=SETUP + ["qemu-img create -q -f raw raw.img 1M"],
   blockdev=BD[:2] + ["driver=qcow2,node-name=ro,read-only=on,file.driver=file,file.filename={dir}/tgt2.qcow2",
                      "driver=file,node-name=rawf,filename={dir}/raw.img"],
   post=["qemu-img info --output=json src.qcow2", "qemu-img info --output=json -f raw raw.img"])

W("b-snapshot-sync", [
    C("blockdev-snapshot-sync", {"node-name": "src", "snapshot-file": "{dir}/ov1.qcow2", "snapshot-node-name": "ov1"}),
    C("blockdev-snapshot-sync", {"node-name": "ov1", "snapshot-file": "{dir}/ov2.qcow2", "snapshot-node-name": "ov1"}),
    C("blockdev-snapshot-sync", {"node-name": "ov1", "snapshot-file": "{dir}/ov2.qcow2", "snapshot-node-name": "src"}),
    C("blockdev-snapshot-sync", {"node-name": "ov1", "snapshot-file": "{dir}/ov2.qcow2", "format": "raw", "snapshot-node-name": "ov2"}),
    C("blockdev-snapshot-sync", {"node-name": "src", "snapshot-file": "{dir}/ov3.qcow2"}),
    C("blockdev-snapshot-sync", {"node-name": "ov1", "snapshot-file": "{dir}/ov3.qcow2", "mode": "existing", "snapshot-node-name": "ov3"}),
    C("blockdev-snapshot-sync", {"node-name": "ov2", "snapshot-file": "{dir}/tgt.qcow2", "mode": "existing", "snapshot-node-name": "ov4"}),
    C("blockdev-snapshot-sync", {"node-name": "ov4", "snapshot-file": "{dir}/ov5.qcow2", "mode": "absolute-paths", "snapshot-node-name": "ov5"}),
    C("blockdev-snapshot-sync", {"node-name": "nosuch", "snapshot-file": "{dir}/ov6.qcow2"}),
    C("blockdev-snapshot-sync", {"device": "nosuch", "snapshot-file": "{dir}/ov6.qcow2"}),
    C("blockdev-snapshot-sync", {"snapshot-file": "{dir}/ov6.qcow2"}),
    C("blockdev-snapshot-sync", {"node-name": "ov5", "snapshot-file": "{dir}/ov6.qcow2", "format": "nosuchfmt"}),
    C("blockdev-snapshot-sync", {"node-name": "ov5", "snapshot-file": "{dir}/nodir/ov6.qcow2"}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "backing_file", "backing_file_depth", "ro"]}),
    C("x-debug-query-block-graph"),
], blockdev=BD[:1], post=["qemu-img info --output=json ov2.qcow2"])

W("b-snapshot-blockdev", [
    C("blockdev-add", {"driver": "qcow2", "node-name": "ov", "file": {"driver": "file", "filename": "{dir}/tgt.qcow2"}, "backing": None}),
    C("blockdev-snapshot", {"node": "src", "overlay": "nosuch"}),
    C("blockdev-snapshot", {"node": "nosuch", "overlay": "ov"}),
    C("blockdev-snapshot", {"node": "src", "overlay": "src"}),
    C("blockdev-snapshot", {"node": "src", "overlay": "tgt"}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "ovb", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-snapshot", {"node": "src", "overlay": "ovb"}),
    C("blockdev-snapshot", {"node": "src", "overlay": "ov"}),
    C("blockdev-snapshot", {"node": "src", "overlay": "ov"}),
    C("blockdev-snapshot", {"node": "ov", "overlay": "src"}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth", "ro"]}),
    C("blockdev-del", {"node-name": "src"}),
    C("blockdev-del", {"node-name": "ov"}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth", "ro"]}),
], blockdev=BD[:1])

W("b-queries", [
    C("query-block"),
    C("query-named-block-nodes"),
    C("query-named-block-nodes", {"flat": False}, record="keys"),
    C("query-blockstats"),
    C("query-blockstats", {"query-nodes": True}),
    C("x-debug-query-block-graph"),
    hmp("info block"), hmp("info block -n"), hmp("info block -v"), hmp("info block src"), hmp("info blockstats"),
    hmp("info block nosuch"),
], blockdev=BD[:2])

W("b-queries-drive", [
    C("query-block"),
    C("query-blockstats"),
    hmp("qemu-io d0 \"write 0 64k\""),
    hmp("qemu-io d0 \"read 0 128k\""),
    C("query-blockstats", record={"pick": ["device", "node-name", "qdev"]}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "ro", "file", "cache", "detect_zeroes"]}),
    hmp("info block"), hmp("info blockstats"),
    C("x-debug-query-block-graph"),
], blockdev=None, drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=d0"])

W("b-snapshot-blockdev2", [
    C("blockdev-add", {"driver": "qcow2", "node-name": "ov", "file": {"driver": "file", "filename": "{dir}/tgt.qcow2"}, "backing": None}),
    C("blockdev-add", {"driver": "qcow2", "node-name": "ovb", "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-snapshot", {"node": "src", "overlay": "ovb"}),
    C("blockdev-snapshot", {"node": "src", "overlay": "ov"}),
    C("blockdev-snapshot", {"node": "ovb", "overlay": "ov"}),
    C("blockdev-snapshot", {"node": "ov", "overlay": "src"}),
    C("blockdev-snapshot", {"node": "ov", "overlay": "ovb"}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth", "ro"]}),
    C("query-block"),
    C("blockdev-del", {"node-name": "src"}),
    C("blockdev-del", {"node-name": "ovb"}),
    C("blockdev-del", {"node-name": "ov"}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file", "backing_file_depth", "ro"]}),
], blockdev=BD[:1])

# ---------------- batch 3: create ----------------
def create_steps(jid, opts, dismiss=True):
    s = [C("blockdev-create", {"job-id": jid, "options": opts},
           until=[st("concluded", jid)], until_on_error=False, timeout=10)]
    s = [C("blockdev-create", {"job-id": jid, "options": opts}),
         {"wait_job": jid, "status": ["concluded"], "timeout": 10},
         C("query-jobs")]
    if dismiss: s.append(C("job-dismiss", {"id": jid}))
    return s
W("c-create-qcow2-variants", [
    C("blockdev-create", {"job-id": "f", "options": {"driver": "file", "filename": "{dir}/a.qcow2", "size": 0}}),
    {"wait_job": "f", "status": "concluded"}, C("job-dismiss", {"id": "f"}),
    C("blockdev-add", {"driver": "file", "node-name": "fa", "filename": "{dir}/a.qcow2"}),
] + create_steps("c1", {"driver": "qcow2", "file": "fa", "size": 1048576, "cluster-size": 256})
  + create_steps("c2", {"driver": "qcow2", "file": "fa", "size": 1048576, "cluster-size": 3072})
  + create_steps("c3", {"driver": "qcow2", "file": "fa", "size": 1048576, "cluster-size": 4194304})
  + create_steps("c4", {"driver": "qcow2", "file": "fa", "size": 1000})
  + create_steps("c5", {"driver": "qcow2", "file": "fa", "size": 1048576, "extended-l2": True, "cluster-size": 8192})
  + create_steps("c6", {"driver": "qcow2", "file": "fa", "size": 1048576, "extended-l2": True, "version": "v2"})
  + create_steps("c7", {"driver": "qcow2", "file": "fa", "size": 1048576, "refcount-bits": 128})
  + create_steps("c8", {"driver": "qcow2", "file": "fa", "size": 1048576, "refcount-bits": 8, "version": "v2"})
  + create_steps("c9", {"driver": "qcow2", "file": "fa", "size": 1048576, "preallocation": "falloc", "backing-file": "{dir}/x"})
  + create_steps("c10", {"driver": "qcow2", "file": "fa", "size": 1048576, "data-file": "nosuch"})
  + create_steps("c11", {"driver": "qcow2", "file": "fa", "size": 1048576, "data-file-raw": True})
  + [C("blockdev-create", {"job-id": "c12", "options": {"driver": "qcow2", "file": "fa", "size": 1048576, "encrypt": {"format": "aes"}}})]
  + create_steps("c12b", {"driver": "qcow2", "file": "fa", "size": 1048576, "encrypt": {"format": "luks", "key-secret": "nosuch"}})
  + create_steps("c13", {"driver": "qcow2", "file": "nosuch", "size": 1048576})
  + [C("blockdev-create", {"job-id": "c14", "options": {"driver": "qcow2", "file": "fa", "size": -1}})]
  + create_steps("c14b", {"driver": "qcow2", "file": "fa", "size": 18446744073709551104})
  + create_steps("c14c", {"driver": "qcow2", "file": "fa", "size": 9223372036854775296})
  + create_steps("c15", {"driver": "qcow2", "file": "fa", "size": 1048576, "compression-type": "zlib", "version": "v3"})
  + create_steps("c16", {"driver": "qcow2", "file": "fa", "size": 1048576, "extended-l2": True, "cluster-size": 16384})
  + [C("blockdev-add", {"driver": "qcow2", "node-name": "q", "file": "fa"}),
     C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "image"]})],
  setup=None, blockdev=None, post=["qemu-img info --output=json a.qcow2", "qemu-img check --output=json a.qcow2"])

W("c-create-qcow2-ok-variants", [
    C("blockdev-create", {"job-id": "f", "options": {"driver": "file", "filename": "{dir}/a.qcow2", "size": 0}}),
    {"wait_job": "f", "status": "concluded"}, C("job-dismiss", {"id": "f"}),
    C("blockdev-add", {"driver": "file", "node-name": "fa", "filename": "{dir}/a.qcow2"}),
] + create_steps("c1", {"driver": "qcow2", "file": "fa", "size": 4194304, "cluster-size": 512, "refcount-bits": 1, "lazy-refcounts": True})
  + [C("blockdev-add", {"driver": "qcow2", "node-name": "q", "file": "fa"}),
     C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "image"]}),
     C("blockdev-del", {"node-name": "q"})]
  + create_steps("c2", {"driver": "qcow2", "file": "fa", "size": 2097152, "extended-l2": True, "preallocation": "metadata", "compression-type": "zlib"})
  + [C("blockdev-add", {"driver": "qcow2", "node-name": "q", "file": "fa"}),
     C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "image"]})],
  setup=None, blockdev=None, post=["qemu-img info --output=json a.qcow2", "qemu-img check --output=json a.qcow2"])

W("c-create-file-raw", [
] + create_steps("f1", {"driver": "file", "filename": "{dir}/r1.img", "size": 1048576, "preallocation": "falloc"})
  + create_steps("f2", {"driver": "file", "filename": "{dir}/r2.img", "size": 1000, "nocow": True})
  + create_steps("f3", {"driver": "file", "filename": "{dir}/nodir/r3.img", "size": 1048576})
  + create_steps("f4", {"driver": "file", "filename": "{dir}/r4.img", "size": -5})
  + create_steps("f5", {"driver": "file", "filename": "{dir}/r5.img", "size": 1048576, "preallocation": "metadata"})
  + create_steps("f6", {"driver": "file", "filename": "{dir}/r6.img", "size": 1048576, "extent-size-hint": 1048576})
  + create_steps("f7", {"driver": "null-co", "size": 1})
  + create_steps("f8", {"driver": "vmdk", "file": "x", "size": 1})
  + [C("blockdev-create", {"job-id": "f9", "options": {"driver": "file", "filename": "{dir}/r9.img"}}),
     C("blockdev-create", {"job-id": "f9", "options": {"driver": "nosuch", "size": 1}}),
     C("blockdev-create", {"options": {"driver": "file", "filename": "{dir}/r9.img", "size": 1}}),
     C("blockdev-create", {"job-id": "f9", "options": {"driver": "file", "filename": "{dir}/r9.img", "size": 1, "bogus": 1}}),
     C("blockdev-create", {"job-id": "f10", "options": {"driver": "file", "filename": "{dir}/r10.img", "size": 1048576}}),
     C("blockdev-create", {"job-id": "f10", "options": {"driver": "file", "filename": "{dir}/r11.img", "size": 1048576}}),
     {"wait_job": "f10", "status": "concluded"},
     C("job-cancel", {"id": "f10"}),
     C("job-complete", {"id": "f10"}),
     C("job-pause", {"id": "f10"}),
     C("query-block-jobs"),
     C("job-dismiss", {"id": "f10"}),
     C("query-jobs")],
  setup=None, blockdev=None, post=["ls -s --block-size=1 r1.img r2.img", "stat -c %s r1.img r2.img r5.img r6.img"])

# ---------------- batch 4: protocol ----------------
R = lambda raw, n=1: {"raw": raw, "responses": n}
W("q-malformed-more", [
    R('{"execute": "query-status", "id": 1e999}\n'),
    R('{"execute": "query-status", "id": 18446744073709551616}\n'),
    R('{"execute": "query-status", "id": -9223372036854775809}\n'),
    R('{"execute": "query-status", "id": 9223372036854775807}\n'),
    R('{"execute": "query-status", "id": 1.0e2}\n'),
    R('{"execute": "query-status", "id": "\\u00e9\\ud83d\\ude00"}\n'),
    R('{"execute": "query-status", "id": "a\\u0000b"}\n'),
    R("{'execute': 'query-status', 'id': 'sq'}\n"),
    R('{"execute": "query-status", "id": tru}\n'),
    R('[1, 2]\n'),
    R('"str"\n'),
    R('42\n'),
    R('null\n'),
    R('{"execute": "query-status", "id": "dup", "id": "dup2"}\n'),
    R('{"execute": "query-status", "arguments": {"a": 1, "a": 2}}\n'),
    R('{"execute": "query-status"} {"execute": "query-status", "id": "second"}\n', 2),
    R('{"execute": "query-status", "id": "x"}}\n', 2),
    R('{"execute":"query-status","id":"esc\\q"}\n'),
    C("query-status", id="end"),
])
W("q-args-types", [
    C("query-status", {}),
    {"send": {"execute": "query-status", "arguments": None}},
    {"send": {"execute": "query-status", "arguments": []}},
    {"send": {"execute": "query-status", "arguments": "x"}},
    {"send": {"execute": "query-status", "arguments": {"x": 1}}},
    {"send": {"execute": "query-named-block-nodes", "arguments": {"flat": "yes"}}},
    {"send": {"execute": "query-named-block-nodes", "arguments": {"flat": 1}}},
    {"send": {"execute": "query-named-block-nodes", "arguments": {"flat": None}}},
    {"send": {"execute": "block-dirty-bitmap-add", "arguments": {"node": ["x"], "name": "b"}}},
    {"send": {"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": {"a": 1}}}},
    {"send": {"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b", "granularity": 1.5}}},
    {"send": {"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b", "granularity": -512}}},
    {"send": {"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b", "granularity": 18446744073709551615}}},
    {"send": {"execute": "block-job-set-speed", "arguments": {"device": "x", "speed": 1.0}}},
    {"send": {"execute": "block-job-set-speed", "arguments": {"device": "x", "speed": True}}},
    {"send": {"execute": "blockdev-backup", "arguments": {"device": "x", "target": "y", "sync": "nosuch"}}},
    {"send": {"execute": "blockdev-backup", "arguments": {"device": "x", "target": "y", "sync": 1}}},
    {"send": {"execute": "blockdev-backup", "arguments": {"device": "x", "target": "y"}}},
    {"send": {"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n", "file": 5}}},
    {"send": {"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "n", "file": {"driver": "file"}}}},
    {"send": {"execute": "blockdev-add", "arguments": {"node-name": "n"}}},
    {"send": {"execute": "blockdev-add", "arguments": {"driver": "file", "node-name": "n", "filename": "/x", "cache": {"direct": "on"}}}},
    {"send": {"execute": "blockdev-add", "arguments": {"driver": "file", "node-name": "n", "filename": "/x", "aio": "bogus"}}},
    {"send": {"execute": "transaction", "arguments": {"actions": [{"type": "nosuch", "data": {}}]}}},
    {"send": {"execute": "transaction", "arguments": {"actions": [{"type": "abort"}]}}},
    {"send": {"execute": "transaction", "arguments": {"actions": [{"type": "abort", "data": {}}]}}},
    {"send": {"execute": "transaction", "arguments": {"actions": []}}},
    {"send": {"execute": "transaction", "arguments": {"actions": {}}}},
    {"send": {"execute": "transaction", "arguments": {"actions": [], "properties": {"completion-mode": "bogus"}}}},
    {"send": {"execute": "job-cancel", "arguments": {"id": 5}}},
    {"send": {"execute": "job-cancel", "arguments": {"id": "x", "force": "yes"}}},
    {"send": {"execute": "human-monitor-command", "arguments": {}}},
    {"send": {"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": "0"}}},
    {"send": {"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": 0}}},
    {"send": {"execute": "query-qmp-schema", "arguments": {"x": 1}}},
], blockdev=BD[:1])
W("q-oob-errors", [
    C("qmp_capabilities", {"enable": ["oob"]}, id="caps"),
    {"send": {"exec-oob": "query-status", "id": "o1"}},
    {"send": {"exec-oob": "migrate-recover", "id": "o2", "arguments": {"uri": 5}}},
    {"send": {"exec-oob": "x-oob-test", "id": "o3"}},
    {"send": {"exec-oob": "nosuch", "id": "o4"}},
    {"send": {"exec-oob": "qmp_capabilities", "id": "o5"}},
    {"send": {"exec-oob": 5, "id": "o6"}},
    {"send": {"exec-oob": "query-status", "execute": "query-status", "id": "o7"}},
    {"send": {"exec-oob": "query-status", "id": "o8", "control": {}}},
    {"send": {"execute": "query-status", "id": "i1", "control": {}}},
    C("query-status", id="end"),
], extra_args=[], greeting_caps=None)
W("q-hmp-variants", [
    hmp("help"), hmp("help info"), hmp("info"), hmp(""), hmp("   "), hmp("info version"), hmp("info jobs"),
    hmp("info block-jobs"), hmp("info block -n -v"), hmp("info block nosuch"), hmp("info blockstats"),
    hmp("info status extra"), hmp("info nosuchsub"), hmp("help nosuch"), hmp("info name"),
    hmp("block_resize src 32M"), hmp("block_resize nosuch 32M"), hmp("block_job_set_speed nosuch 1"),
    hmp("info block"), hmp("info block-jobs"),
    hmp("drive_del nosuch"), hmp("commit nosuch"), hmp("stop"), hmp("info status"), hmp("cont"), hmp("info status"),
    hmp("qemu-io src \"read 0 512\""), hmp("qemu-io nosuch \"read 0 512\""), hmp("qemu-io src \"bogus\""),
])
W("q-schema-pieces", [
    C("query-qmp-schema", record={"names": ["blockdev-add", "blockdev-create", "job-finalize", "block-job-set-speed", "x-debug-query-block-graph", "JOB_STATUS_CHANGE", "BLOCK_JOB_PENDING", "query-blockstats", "block-dirty-bitmap-merge", "block-latency-histogram-set", "block-set-write-threshold", "BLOCK_WRITE_THRESHOLD", "blockdev-change-medium", "x-blockdev-reopen", "blockdev-reopen", "block-export-add", "nbd-server-start", "query-jobs", "calc-dirty-rate", "x-blockdev-change", "blockdev-snapshot-delete-internal-sync"]}),
    C("query-commands", record={"names": ["blockdev-add", "blockdev-reopen", "x-blockdev-change", "block-export-add", "block-set-write-threshold", "block-latency-histogram-set", "blockdev-snapshot-internal-sync", "blockdev-snapshot-delete-internal-sync", "block-stream", "drive-mirror", "x-blockdev-insert-medium", "query-block-exports", "nbd-server-add", "calc-dirty-rate", "x-query-virtio", "query-yank", "yank"]}),
    C("query-events", record="none"),
])

# ---------------- batch 5: misc jobs ----------------
W("j-backup-bitmap-sync-modes", [
    C("block-dirty-bitmap-add", {"node": "src", "name": "b"}),
    hmp("qemu-io src \"write -P 7 0 128k\""),
    C("blockdev-backup", {"job-id": "x1", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "b"}),
    C("blockdev-backup", {"job-id": "x2", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "bogus"}),
    C("blockdev-backup", {"job-id": "x3", "device": "src", "target": "tgt", "sync": "full", "bitmap": "b", "bitmap-mode": "never"}),
    C("blockdev-backup", {"job-id": "x4", "device": "src", "target": "tgt", "sync": "top", "bitmap": "b", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x5", "device": "src", "target": "tgt", "sync": "none", "bitmap": "b", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x6", "device": "src", "target": "tgt", "sync": "incremental", "bitmap": "b", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x7", "device": "src", "target": "tgt", "sync": "full", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x8", "device": "src", "target": "tgt", "sync": "incremental"}),
    C("blockdev-backup", {"job-id": "x9", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "nope", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "ok1", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "never"},
      until=[st("null", "ok1")]),
    BM(),
    C("blockdev-backup", {"job-id": "ok2", "device": "src", "target": "tgt2", "sync": "full", "bitmap": "b", "bitmap-mode": "on-success"},
      until=[st("null", "ok2")]),
    BM(),
    hmp("qemu-io src \"write -P 8 1M 64k\""),
    C("block-dirty-bitmap-disable", {"node": "src", "name": "b"}),
    C("blockdev-backup", {"job-id": "ok3", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "always"},
      until=[st("null", "ok3")]),
    BM(),
], post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt2.qcow2"])

W("j-mirror-param-errors", [
    C("blockdev-mirror", {"job-id": "m1", "device": "src", "target": "tgt", "sync": "full", "granularity": 1000}),
    C("blockdev-mirror", {"job-id": "m2", "device": "src", "target": "tgt", "sync": "full", "granularity": 256}),
    C("blockdev-mirror", {"job-id": "m3", "device": "src", "target": "tgt", "sync": "full", "granularity": 134217728}),
    C("blockdev-mirror", {"job-id": "m4", "device": "src", "target": "tgt", "sync": "full", "buf-size": -1}),
    C("blockdev-mirror", {"job-id": "m5", "device": "src", "target": "tgt", "sync": "full", "buf-size": 0, "granularity": 65536, "speed": -1}),
    C("blockdev-mirror", {"job-id": "m6", "device": "src", "target": "tgt", "sync": "incremental"}),
    C("blockdev-mirror", {"job-id": "m7", "device": "src", "target": "tgt", "sync": "full", "replaces": "nosuch"}),
    C("blockdev-mirror", {"job-id": "m8", "device": "src", "target": "tgt", "sync": "full", "copy-mode": "write-blocking", "on-source-error": "enospc"}),
    C("blockdev-mirror", {"job-id": "m9", "device": "src", "target": "tgt", "sync": "full", "on-target-error": "enospc", "filter-node-name": "src"}),
    C("blockdev-mirror", {"job-id": "m10", "device": "src", "target": "tgt", "sync": "full", "granularity": 4096, "buf-size": 1000, "auto-dismiss": False},
      until=[st("ready", "m10")]),
    C("query-block-jobs"),
    C("job-complete", {"id": "m10"}, until=[st("concluded", "m10")]),
    C("query-block-jobs"),
    C("job-dismiss", {"id": "m10"}),
])

W("j-quit-pending", [
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "auto-finalize": False},
      until=[ev("BLOCK_JOB_PENDING")]),
    C("quit"), {"wait_eof": True},
])

W("j-del-in-use", [
    C("blockdev-add", {"driver": "qcow2", "node-name": "rot", "read-only": True, "file": {"driver": "file", "filename": "{dir}/tgt2.qcow2"}}),
    C("blockdev-backup", {"job-id": "r", "device": "src", "target": "rot", "sync": "full"}),
    C("blockdev-mirror", {"job-id": "r", "device": "src", "target": "rot", "sync": "full"}),
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    {"wait_job": "j", "status": "running"},
    C("blockdev-del", {"node-name": "src"}),
    C("blockdev-del", {"node-name": "tgt"}),
    C("block_resize", {"node-name": "src", "size": 33554432}),
    C("blockdev-snapshot-sync", {"node-name": "src", "snapshot-file": "{dir}/ov.qcow2", "snapshot-node-name": "ov"}),
    C("blockdev-backup", {"job-id": "j2", "device": "tgt", "target": "tgt2", "sync": "full"}),
    C("blockdev-backup", {"job-id": "j3", "device": "src", "target": "tgt", "sync": "full"}),
    C("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "ro", "backing_file"]}),
    C("job-cancel", {"id": "j"}, until=[st("null", "j")]),
    C("blockdev-del", {"node-name": "tgt"}),
])
W("j-drain-events-errors", [
    C("block-dirty-bitmap-add", {"node": "src", "name": "b"}),
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    {"wait_job": "j", "status": "running"},
    C("blockdev-backup", {"job-id": "x2", "device": "src", "target": "tgt2", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "bogus"}),
    C("blockdev-backup", {"job-id": "x5", "device": "src", "target": "tgt2", "sync": "none", "bitmap": "b", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x6", "device": "src", "target": "tgt2", "sync": "incremental", "bitmap": "b", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x7", "device": "src", "target": "tgt2", "sync": "full", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x8", "device": "src", "target": "tgt2", "sync": "incremental"}),
    C("blockdev-backup", {"job-id": "x9", "device": "src", "target": "tgt2", "sync": "bitmap", "bitmap": "nope", "bitmap-mode": "always"}),
    C("blockdev-backup", {"job-id": "x10", "device": "src", "target": "nosuch", "sync": "full"}),
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt2", "sync": "full"}),
    C("blockdev-backup", {"job-id": "x11", "device": "src", "target": "tgt2", "sync": "full", "compress": True}),
    C("blockdev-mirror", {"job-id": "x12", "device": "src", "target": "tgt2", "sync": "full", "granularity": 1000}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "b"}),
    C("block-dirty-bitmap-add", {"node": "src", "name": "c"}),
    C("block-dirty-bitmap-remove", {"node": "src", "name": "c"}),
    C("transaction", {"actions": [{"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "d"}}]}),
    C("job-cancel", {"id": "j"}, until=[st("null", "j")]),
])
W("j-txn-created-abort", [
    C("transaction", {"actions": [
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "full"}},
        {"type": "blockdev-backup", "data": {"job-id": "b", "device": "src", "target": "nosuch", "sync": "full"}}]}),
    C("query-jobs"),
    C("transaction", {"actions": [
        {"type": "blockdev-mirror", "data": {"job-id": "m", "device": "src", "target": "tgt", "sync": "full"}} if False else
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "full", "speed": 1}},
        {"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "bm"}},
        {"type": "abort", "data": {}}]}),
    C("query-jobs"),
    BM(),
    C("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "bm"}},
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "incremental", "bitmap": "bm"}},
        {"type": "blockdev-backup", "data": {"job-id": "c", "device": "src", "target": "tgt2", "sync": "full", "auto-finalize": False}}],
        "properties": {"completion-mode": "grouped"}}),
    C("transaction", {"actions": [
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt", "sync": "full", "speed": 1}},
        {"type": "blockdev-backup", "data": {"job-id": "a", "device": "src", "target": "tgt2", "sync": "full"}}]}),
    C("query-jobs"),
    {"drain": 0.5},
])
W("q-hmp-jobs-running", [
    C("blockdev-backup", {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    {"wait_job": "j", "status": "running"},
    hmp("info jobs"), hmp("info block-jobs"),
    hmp("block_job_set_speed j 2048"), hmp("info block-jobs"),
    hmp("block_job_pause j"), {"wait_job": "j", "status": "paused"}, hmp("info block-jobs"), hmp("info jobs"),
    hmp("block_job_pause j"),
    hmp("block_job_complete j"),
    hmp("block_job_resume j"), {"wait_job": "j", "status": "running"},
    hmp("block_job_cancel nosuch"),
    hmp("block_job_cancel j"),
    {"wait_event": "JOB_STATUS_CHANGE", "match": {"status": "null", "id": "j"}},
    hmp("info block-jobs"), hmp("info jobs"),
])
