import json, os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
SRC_SETUP = [
    "qemu-img create -q -f qcow2 src.qcow2 16M",
    "qemu-io -f qcow2 -c \"write -P 0xab 0 4M\" -c \"write -P 0xcd 8M 1M\" src.qcow2",
    "qemu-img create -q -f qcow2 tgt.qcow2 16M",
    "qemu-img create -q -f qcow2 tgt2.qcow2 16M",
]
def bd(name, file, fmt="qcow2", extra=""):
    return f"driver={fmt},node-name={name},file.driver=file,file.filename={{dir}}/{file}{extra}"
SRC_BD = [bd("src", "src.qcow2"), bd("tgt", "tgt.qcow2"), bd("tgt2", "tgt2.qcow2")]
def done(jid, status="null"):
    return [{"event": "JOB_STATUS_CHANGE", "match": {"status": status, "id": jid}}]
def cmd(c, args=None, **kw):
    d = {"cmd": c}
    if args is not None: d["args"] = args
    d.update(kw); return d
def hmp(line, **kw): return cmd("human-monitor-command", {"command-line": line}, **kw)
def scen(name, steps, setup=SRC_SETUP, blockdev=SRC_BD, drive=None, post=None, **kw):
    s = {"setup": setup, "blockdev": blockdev, "steps": steps, "name": name, "servers": ["qemu", "custom"]}
    if drive: s["drive"] = drive
    if post: s["post"] = post
    s.update(kw)
    with open(os.path.join(OUT, name + ".json"), "w") as f: json.dump(s, f, indent=1)

BB = "blockdev-backup"
# 1. validation order and texts
scen("x-backup-validation", [
    cmd(BB, {"device": "nosrc", "target": "nothere", "sync": "full"}),
    cmd(BB, {"device": "src", "target": "nothere", "sync": "full"}),
    cmd(BB, {"device": "src", "target": "tgt", "sync": "full"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "incremental"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "bitmap"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "incremental", "bitmap": "nb", "bitmap-mode": "never"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "incremental", "bitmap": "nb"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "bitmap-mode": "always"}),
    cmd("block-dirty-bitmap-add", {"node": "src", "name": "b0"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "b0"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "none", "bitmap": "b0", "bitmap-mode": "always"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "bitmap": "b0", "bitmap-mode": "never"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "top", "bitmap": "b0", "bitmap-mode": "never"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "src", "sync": "full", "speed": -1}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "traw", "sync": "full", "compress": True, "x-perf": {"max-workers": 0}}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "small", "sync": "full", "x-perf": {"max-workers": 0}}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "x-perf": {"max-chunk": -1}}),
    cmd(BB, {"job-id": "9", "device": "src", "target": "small", "sync": "full", "speed": -1}),
    cmd(BB, {"job-id": "9", "device": "src", "target": "tgt", "sync": "full", "speed": -1}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "filter-node-name": "src"}),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "filter-node-name": "9x"}),
    cmd("query-jobs"),
], setup=SRC_SETUP + ["qemu-img create -q -f raw tgt.raw 16M", "qemu-img create -q -f qcow2 small.qcow2 8M"],
   blockdev=SRC_BD + [bd("traw", "tgt.raw", "raw"), bd("small", "small.qcow2")])

# 2. error action stop, then resume; enospc with EIO -> report; target error
BADSET = ["qemu-img create -q -f qcow2 bad.qcow2 1M", "qemu-io -f qcow2 -c \"write -P 0x5a 0 1M\" bad.qcow2",
          "qemu-img create -q -f qcow2 badtgt.qcow2 1M", "qemu-img create -q -f qcow2 good.qcow2 1M",
          "qemu-io -f qcow2 -c \"write -P 0x5a 0 1M\" good.qcow2"]
BADBD = ["driver=qcow2,node-name=bad,file.driver=blkdebug,file.image.driver=file,file.image.filename={dir}/bad.qcow2,file.inject-error.0.event=read_aio,file.inject-error.0.errno=5,file.inject-error.0.once=on",
         bd("badtgt", "badtgt.qcow2"), bd("good", "good.qcow2"),
         "driver=qcow2,node-name=wbad,file.driver=blkdebug,file.image.driver=file,file.image.filename={dir}/wbad.qcow2,file.inject-error.0.event=write_aio,file.inject-error.0.errno=28,file.inject-error.0.once=on",
         ]
scen("x-backup-error-stop", [
    cmd(BB, {"job-id": "j", "device": "bad", "target": "badtgt", "sync": "full", "on-source-error": "stop"},
        until=[{"event": "BLOCK_JOB_ERROR"}, {"event": "JOB_STATUS_CHANGE", "match": {"status": "paused", "id": "j"}}]),
    cmd("query-block-jobs"),
    cmd("query-jobs"),
    cmd("job-resume", {"id": "j"}, until=done("j")),
    cmd(BB, {"job-id": "k", "device": "good", "target": "wbad", "sync": "full", "on-target-error": "enospc"},
        until=[{"event": "BLOCK_JOB_ERROR"}, {"event": "JOB_STATUS_CHANGE", "match": {"status": "paused", "id": "k"}}]),
    cmd("query-block-jobs"),
    cmd("block-job-cancel", {"device": "k"}),
    cmd("block-job-cancel", {"device": "k", "force": True}, until=done("k")),
], setup=BADSET + ["qemu-img create -q -f qcow2 wbad.qcow2 1M"], blockdev=BADBD,
   post=["qemu-img compare -f qcow2 -F qcow2 bad.qcow2 badtgt.qcow2"])

scen("x-backup-error-enospc-eio", [
    cmd(BB, {"job-id": "j", "device": "bad", "target": "badtgt", "sync": "full", "on-source-error": "enospc"},
        until=[{"event": "BLOCK_JOB_ERROR"}] + done("j")),
    cmd(BB, {"job-id": "k", "device": "good", "target": "wbad", "sync": "full", "on-target-error": "ignore"},
        until=[{"event": "BLOCK_JOB_ERROR"}] + done("k")),
], setup=BADSET + ["qemu-img create -q -f qcow2 wbad.qcow2 1M"], blockdev=BADBD,
   post=["qemu-img compare -f qcow2 -F qcow2 good.qcow2 wbad.qcow2"])

# 3. default job id from -drive, filter node name, bitmaps during the job, copy-before-write
DRV = ["if=none,id=drive0,file={dir}/src.qcow2,format=qcow2,node-name=src"]
scen("x-backup-drive-default-id", [
    cmd("block-dirty-bitmap-add", {"node": "drive0", "name": "bm0"}),
    cmd(BB, {"device": "drive0", "target": "tgt", "sync": "full", "speed": 65536, "filter-node-name": "flt"}),
    {"wait_job": "drive0", "status": "running"},
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
    cmd("query-block", record={"pick": ["device"]}),
    hmp("qemu-io drive0 \"write -P 0x77 12M 64k\""),
    hmp("qemu-io src \"write -P 0x77 12M 64k\""),
    hmp("qemu-io flt \"write -P 0x66 13M 64k\""),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd("block-dirty-bitmap-clear", {"node": "drive0", "name": "bm0"}),
    cmd(BB, {"job-id": "j2", "device": "flt", "target": "tgt2", "sync": "full"}),
    cmd(BB, {"job-id": "j2", "device": "src", "target": "tgt", "sync": "full"}),
    cmd("block-job-set-speed", {"device": "drive0", "speed": 0}, until=done("drive0")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
], blockdev=SRC_BD[1:], drive=DRV,
   post=["qemu-img map --output=json tgt.qcow2", "qemu-img check --output=json tgt.qcow2"])

# 4. sync none with guest writes: the target receives the old data
scen("x-backup-sync-none-cbw", [
    cmd(BB, {"job-id": "n", "device": "drive0", "target": "tgt", "sync": "none"}),
    hmp("qemu-io drive0 \"write -P 0x11 0 64k\""),
    hmp("qemu-io drive0 \"write -P 0x12 8M 128k\""),
    hmp("qemu-io drive0 \"write -P 0x13 14M 64k\""),
    hmp("qemu-io drive0 \"write -P 0x14 0 64k\""),
    cmd("query-jobs"),
    cmd("job-cancel", {"id": "n"}, until=done("n")),
], blockdev=SRC_BD[1:], drive=DRV,
   post=["qemu-img map --output=json tgt.qcow2"])

# 5. bitmap modes
def bm_steps(mode, fail=False):
    pass
scen("x-backup-bitmap-modes", [
    cmd("block-dirty-bitmap-add", {"node": "src", "name": "b"}),
    hmp("qemu-io src \"write -P 0x21 0 64k\""),
    hmp("qemu-io src \"write -P 0x22 1M 192k\""),
    cmd(BB, {"job-id": "a", "device": "src", "target": "tgt", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "never", "auto-finalize": False},
        until=[{"event": "BLOCK_JOB_PENDING"}]),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd("block-dirty-bitmap-remove", {"node": "src", "name": "b"}),
    cmd("block-dirty-bitmap-clear", {"node": "src", "name": "b"}),
    cmd("job-finalize", {"id": "a"}, until=done("a")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd(BB, {"job-id": "b", "device": "src", "target": "tgt2", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "always"}, until=done("b")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    hmp("qemu-io src \"write -P 0x23 2M 64k\""),
    hmp("qemu-io src \"write -P 0x24 6M 64k\""),
    cmd(BB, {"job-id": "c", "device": "src", "target": "tgt2", "sync": "bitmap", "bitmap": "b", "bitmap-mode": "on-success", "speed": 1}),
    {"wait_job": "c", "status": "running"},
    cmd("job-cancel", {"id": "c"}, until=done("c")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd(BB, {"job-id": "d", "device": "src", "target": "tgt2", "sync": "incremental", "bitmap": "b"}, until=done("d")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
], post=["qemu-img map --output=json tgt.qcow2", "qemu-img map --output=json tgt2.qcow2"])

# 6. transactions with bitmap actions, abort, grouped refusal
TX = "transaction"
scen("x-txn-actions", [
    cmd(TX, {"actions": [{"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "t0"}},
                         {"type": "abort", "data": {}}]}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd(TX, {"actions": [{"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "t0"}}],
             "properties": {"completion-mode": "grouped"}}),
    cmd(TX, {"actions": [{"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "t0"}},
                         {"type": BB, "data": {"job-id": "f", "device": "src", "target": "tgt", "sync": "full"}}]},
        until=done("f")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd(TX, {"actions": [{"type": BB, "data": {"job-id": "g1", "device": "src", "target": "tgt", "sync": "full", "auto-finalize": False}},
                         {"type": BB, "data": {"job-id": "g2", "device": "src", "target": "tgt2", "sync": "full", "auto-finalize": False, "speed": 4194304}}],
             "properties": {"completion-mode": "grouped"}},
        until=[{"event": "BLOCK_JOB_PENDING", "match": {"id": "g1"}}, {"event": "BLOCK_JOB_PENDING", "match": {"id": "g2"}}]),
    cmd("job-finalize", {"id": "g1"}, until=done("g1") + done("g2")),
    cmd(TX, {"actions": [{"type": BB, "data": {"job-id": "h", "device": "src", "target": "tgt", "sync": "full"}},
                         {"type": "abort", "data": {}}]}),
    cmd(TX, {"actions": [{"type": "block-dirty-bitmap-clear", "data": {"node": "src", "name": "t0"}},
                         {"type": "block-dirty-bitmap-disable", "data": {"node": "src", "name": "t0"}},
                         {"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "t1", "disabled": True}},
                         {"type": "block-dirty-bitmap-merge", "data": {"node": "src", "target": "t1", "bitmaps": ["t0"]}},
                         {"type": "block-dirty-bitmap-remove", "data": {"node": "src", "name": "t0"}}]}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
    cmd(TX, {"actions": [{"type": "block-dirty-bitmap-remove", "data": {"node": "src", "name": "nope"}}]}),
    cmd(TX, {"actions": [{"type": "block-dirty-bitmap-enable", "data": {"node": "src", "name": "t1"}},
                         {"type": "block-dirty-bitmap-add", "data": {"node": "src", "name": "t1"}}]}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "dirty-bitmaps"]}),
])

# 7. drive-backup
DB = "drive-backup"
scen("x-drive-backup", [
    cmd(DB, {"device": "drive0", "target": "{dir}/full.qcow2", "sync": "full", "format": "qcow2"}, until=done("drive0")),
    cmd(DB, {"job-id": "t", "device": "drive0", "target": "{dir}/top.qcow2", "sync": "top", "format": "qcow2"}, until=done("t")),
    cmd(DB, {"job-id": "r", "device": "drive0", "target": "{dir}/full.raw", "sync": "full", "format": "raw"}, until=done("r")),
    cmd(DB, {"job-id": "e", "device": "drive0", "target": "{dir}/ex.qcow2", "sync": "full", "mode": "existing"}, until=done("e")),
    cmd(DB, {"job-id": "m", "device": "drive0", "target": "{dir}/missing.qcow2", "sync": "full", "mode": "existing"}),
    cmd(DB, {"job-id": "n", "device": "drive0", "target": "{dir}/none.qcow2", "sync": "none", "format": "qcow2"}),
    hmp("qemu-io drive0 \"write -P 0x44 0 64k\""),
    cmd("job-cancel", {"id": "n"}, until=done("n")),
    cmd(DB, {"job-id": "c", "device": "drive0", "target": "{dir}/c.raw", "sync": "full", "format": "raw", "compress": True}),
    cmd(DB, {"job-id": "x", "device": "nodev", "target": "{dir}/x.qcow2", "sync": "full"}),
    cmd(DB, {"job-id": "d", "device": "drive0", "target": "{dir}/d.qcow2", "sync": "full"}, until=done("d")),
], setup=["qemu-img create -q -f qcow2 base.qcow2 16M",
          "qemu-io -f qcow2 -c \"write -P 0xab 0 4M\" base.qcow2",
          "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 src.qcow2",
          "qemu-io -f qcow2 -c \"write -P 0xcd 8M 1M\" src.qcow2",
          "qemu-img create -q -f qcow2 ex.qcow2 16M"],
   blockdev=[], drive=["if=none,id=drive0,file={dir}/src.qcow2,format=qcow2"],
   post=["qemu-img info --output=json full.qcow2", "qemu-img map --output=json full.qcow2",
         "qemu-img info --output=json top.qcow2", "qemu-img map --output=json top.qcow2",
         "qemu-img info --output=json none.qcow2", "qemu-img map --output=json none.qcow2",
         "qemu-img info --output=json d.qcow2",
         "qemu-img compare -f qcow2 -F raw src.qcow2 full.raw", "qemu-img compare src.qcow2 ex.qcow2",
         "qemu-img compare src.qcow2 top.qcow2", "qemu-img compare src.qcow2 full.qcow2"])

# 8. blockdev-create options
BC = "blockdev-create"
def create(jid, opts): return cmd(BC, {"job-id": jid, "options": opts}, until=done(jid, "concluded"))
scen("x-blockdev-create-options", [
    create("f1", {"driver": "file", "filename": "{dir}/a.qcow2", "size": 0}), cmd("query-jobs"), cmd("job-dismiss", {"id": "f1"}),
    create("f2", {"driver": "file", "filename": "{dir}/b.qcow2", "size": 0}), cmd("job-dismiss", {"id": "f2"}),
    create("f3", {"driver": "file", "filename": "{dir}/c.raw", "size": 1048576, "preallocation": "full"}), cmd("job-dismiss", {"id": "f3"}),
    cmd("blockdev-add", {"driver": "file", "node-name": "fa", "filename": "{dir}/a.qcow2"}),
    cmd("blockdev-add", {"driver": "file", "node-name": "fb", "filename": "{dir}/b.qcow2"}),
    create("q1", {"driver": "qcow2", "file": "fa", "size": 1048576, "version": "v2", "lazy-refcounts": True}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q1"}),
    create("q2", {"driver": "qcow2", "file": "fa", "size": 1048576, "refcount-bits": 3}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q2"}),
    create("q3", {"driver": "qcow2", "file": "fa", "size": 1048576, "backing-fmt": "qcow2"}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q3"}),
    create("q4", {"driver": "qcow2", "file": "fa", "size": 1048576, "cluster-size": 4194304}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q4"}),
    create("q5", {"driver": "qcow2", "file": "fa", "size": 1048576, "version": "v2", "compression-type": "zstd"}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q5"}),
    create("q6", {"driver": "qcow2", "file": "fa", "size": 33554432, "version": "v2", "cluster-size": 4096, "refcount-bits": 16}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q6"}),
    create("q7", {"driver": "qcow2", "file": "fb", "size": 16777216, "backing-file": "{dir}/a.qcow2", "backing-fmt": "qcow2", "lazy-refcounts": True, "refcount-bits": 64}), cmd("query-jobs"), cmd("job-dismiss", {"id": "q7"}),
    create("q8", {"driver": "qcow2", "file": "fb", "size": 1048576, "preallocation": "metadata"}), cmd("job-dismiss", {"id": "q8"}),
    cmd(BC, {"job-id": "r", "options": {"driver": "raw", "file": "fa"}}),
    cmd(BC, {"options": {"driver": "file", "filename": "{dir}/zz", "size": 0}}),
    cmd(BC, {"job-id": "q9", "options": {"driver": "qcow2", "file": "fa"}}),
], setup=[], blockdev=[],
   post=["qemu-img info --output=json a.qcow2", "qemu-img check --output=json a.qcow2",
         "qemu-img info --output=json b.qcow2", "qemu-img check --output=json b.qcow2",
         "qemu-img map --output=json b.qcow2", "stat -c %s c.raw"])
print("ok")

# 9. HMP views of a running backup
scen("x-backup-hmp-info", [
    hmp("info block-jobs"),
    cmd(BB, {"job-id": "j", "device": "src", "target": "tgt", "sync": "full", "speed": 1}),
    {"wait_job": "j", "status": "running", "min_progress": 1048576},
    hmp("info block-jobs"),
    cmd("job-pause", {"id": "j"}),
    hmp("info block-jobs"),
    cmd("job-cancel", {"id": "j"}, until=done("j")),
    hmp("info block-jobs"),
])
print("ok")

# 10. snapshots inside transactions
SS = "blockdev-snapshot-sync"
scen("x-txn-snapshot", [
    cmd(TX, {"actions": [{"type": SS, "data": {"device": "drive0", "snapshot-file": "{dir}/ov1.qcow2", "snapshot-node-name": "ov1", "format": "qcow2"}},
                         {"type": "abort", "data": {}}]}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "backing_file"]}),
    cmd(TX, {"actions": [{"type": SS, "data": {"device": "drive0", "snapshot-file": "{dir}/ov2.qcow2", "snapshot-node-name": "ov2", "format": "qcow2"}},
                         {"type": BB, "data": {"job-id": "b", "device": "drive0", "target": "tgt", "sync": "full"}}]},
        until=done("b")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "backing_file"]}),
    cmd("query-block", record={"pick": ["device"]}),
], blockdev=SRC_BD[1:], drive=DRV,
   post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2", "qemu-img info --output=json ov2.qcow2"])
print("ok")
