"""Extra oracle scenarios for mirror / stream / commit (block jobs II).

    python3 gen.py
    python3 ../../../../shared/oracle/oracle.py run --server qemu --scenarios scenarios --out golden
"""
import json, os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
SRC_SETUP = [
    "qemu-img create -q -f qcow2 src.qcow2 16M",
    "qemu-io -f qcow2 -c \"write -P 0xab 0 4M\" -c \"write -P 0xcd 8M 1M\" src.qcow2",
    "qemu-img create -q -f qcow2 tgt.qcow2 16M",
    "qemu-img create -q -f qcow2 small.qcow2 8M",
]
CHAIN_SETUP = [
    "qemu-img create -q -f qcow2 base.qcow2 4M",
    "qemu-io -f qcow2 -c \"write -P 0x11 0 1M\" -c \"write -P 0x12 3M 512k\" base.qcow2",
    "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2",
    "qemu-io -f qcow2 -c \"write -P 0x22 1M 1M\" -c \"write -P 0x23 0 64k\" mid.qcow2",
    "qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2",
    "qemu-io -f qcow2 -c \"write -P 0x33 2M 512k\" -c \"write -P 0x34 1M 64k\" top.qcow2",
    "qemu-img create -q -f raw ref.raw 4M",
    "qemu-io -f raw -c \"write -P 0x11 0 1M\" -c \"write -P 0x12 3M 512k\" -c \"write -P 0x22 1M 1M\" -c \"write -P 0x23 0 64k\" -c \"write -P 0x33 2M 512k\" -c \"write -P 0x34 1M 64k\" ref.raw",
    "qemu-img create -q -f qcow2 other.qcow2 4M",
]
def bd(name, file, extra=""):
    return f"driver=qcow2,node-name={name},file.driver=file,file.filename={{dir}}/{file}{extra}"
SRC_BD = [bd("src", "src.qcow2", ",file.node-name=srcf"), bd("tgt", "tgt.qcow2"), bd("small", "small.qcow2")]
CHAIN_BD = [bd("base", "base.qcow2"), bd("mid", "mid.qcow2", ",backing=base"),
            bd("top", "top.qcow2", ",backing=mid,file.node-name=topf"), bd("other", "other.qcow2")]
def done(jid, status="null"):
    return [{"event": "JOB_STATUS_CHANGE", "match": {"status": status, "id": jid}}]
def ready(jid):
    return done(jid, "ready") + [{"event": "BLOCK_JOB_READY"}]
STEP_KEYS = ("until", "record")
def split(a):
    return {k: v for k, v in a.items() if k not in STEP_KEYS}, {k: v for k, v in a.items() if k in STEP_KEYS}
def cmd(c, args=None, **kw):
    d = {"cmd": c}
    if args is not None: d["args"] = args
    d.update(kw); return d
def scen(name, steps, setup=SRC_SETUP, blockdev=SRC_BD, drive=None, post=None, **kw):
    s = {"setup": setup, "blockdev": blockdev, "steps": steps, "name": name}
    if drive: s["drive"] = drive
    if post: s["post"] = post
    s.update(kw)
    with open(os.path.join(OUT, name + ".json"), "w") as f: json.dump(s, f, indent=1)

BM, DM, ST, CM = "blockdev-mirror", "drive-mirror", "block-stream", "block-commit"
def m(**a):
    a, k = split(a); return cmd(BM, dict({"job-id": "m", "device": "src", "target": "tgt", "sync": "full"}, **a), **k)

scen("s-mirror-validation", [
    m(device="nosuch"), m(target="nosuch"), m(device="srcf", target="nosuch"), m(target="src"),
    m(granularity=100), m(granularity=1000), m(granularity=134217728), m(**{"buf-size": -1}),
    m(sync="incremental"), m(sync="bitmap"), m(sync="incremental", granularity=1000),
    m(sync="incremental", **{"buf-size": -1}), m(target="src", granularity=1000),
    m(**{"job-id": "1m"}), cmd(BM, {"device": "src", "target": "tgt", "sync": "full"}),
    m(replaces="nosuch"), m(replaces="srcf"), m(replaces="small"),
    m(**{"filter-node-name": "bad name"}), m(**{"filter-node-name": "tgt"}),
    m(speed=-5), cmd("query-jobs"), cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
])

scen("s-mirror-size-mismatch", [
    m(target="small", until=done("m")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
])

scen("s-mirror-none-complete", [
    m(sync="none", until=ready("m")),
    cmd("query-block-jobs"),
    cmd("job-complete", {"id": "m"}, until=done("m")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
])

scen("s-mirror-running-cancel", [
    m(speed=1, until=done("m", "running")),
    cmd("job-complete", {"id": "m"}),
    cmd("block-job-complete", {"device": "m"}),
    cmd("query-block-jobs"),
    cmd("block-job-cancel", {"device": "m"}, until=done("m")),
    cmd("query-jobs"),
])

scen("s-mirror-manual-finalize", [
    m(**{"auto-finalize": False, "auto-dismiss": False}, until=ready("m")),
    cmd("job-complete", {"id": "m"}, until=[{"event": "BLOCK_JOB_PENDING"}]),
    cmd("query-jobs"),
    cmd("job-finalize", {"id": "m"}, until=done("m", "concluded")),
    cmd("query-jobs"),
    cmd("job-dismiss", {"id": "m"}, until=done("m")),
], post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2"])

scen("s-mirror-drive-default-id", [
    cmd(BM, {"device": "drive0", "target": "tgt", "sync": "full"}, until=ready("drive0")),
    cmd(BM, {"device": "drive0", "target": "small", "sync": "full"}),
    cmd("query-block", record={"pick": ["device"]}),
    cmd("job-complete", {"id": "drive0"}, until=done("drive0")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
], blockdev=[bd("tgt", "tgt.qcow2"), bd("small", "small.qcow2")],
   drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0,node-name=src"],
   post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2"])

def dm(**a):
    a, k = split(a); return cmd(DM, dict({"device": "top", "target": "{dir}/t.qcow2", "sync": "full"}, **a), **k)
scen("s-drive-mirror-validation", [
    dm(device="nosuch"), dm(device="mid"), dm(replaces="top"),
    dm(**{"job-id": "j", "mode": "existing", "target": "{dir}/nothere.qcow2"}),
    dm(**{"job-id": "j", "target": "{dir}/nodir/t.qcow2"}),
    dm(**{"job-id": "j", "format": "bogus"}),
    dm(**{"job-id": "j", "target": "{dir}/t2.qcow2", "granularity": 1000}),
    dm(**{"job-id": "j", "target": "{dir}/t3.raw", "format": "raw", "node-name": "base"}),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD)

scen("s-drive-mirror-top", [
    dm(**{"job-id": "j", "sync": "top", "node-name": "t6", "target": "{dir}/t6.qcow2"}, until=ready("j")),
    cmd("job-complete", {"id": "j"}, until=done("j")),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD,
   post=["qemu-img info --output=json t6.qcow2", "qemu-img map --output=json t6.qcow2"])

scen("s-drive-mirror-full-drive", [
    cmd(DM, {"device": "drive0", "target": "{dir}/copy.qcow2", "sync": "full", "format": "qcow2"}, until=ready("drive0")),
    cmd("job-complete", {"id": "drive0"}, until=done("drive0")),
    cmd("query-block", record={"pick": ["device"]}),
], blockdev=[], drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0"],
   post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 copy.qcow2", "qemu-img info --output=json copy.qcow2",
         "qemu-img map --output=json copy.qcow2", "qemu-img check --output=json copy.qcow2"])

def st(**a):
    a, k = split(a); return cmd(ST, dict({"device": "top"}, **a), **k)
scen("s-stream-validation", [
    st(device="nosuch", base="x", **{"base-node": "y"}), st(device="nosuch", base="x", bottom="y"),
    st(device="nosuch", bottom="x", **{"base-node": "y"}), st(device="nosuch"),
    st(base="nosuch.qcow2"), st(base="base.qcow2", **{"job-id": "1x"}),
    st(**{"base-node": "nosuch"}), st(**{"base-node": "other"}), st(**{"base-node": "top"}),
    st(bottom="nosuch"), st(bottom="other"), st(bottom="topf"),
    st(**{"backing-file": "foo"}), st(), st(**{"job-id": "s", "speed": -1}),
    st(device="mid", **{"job-id": "s", "base-node": "base", "filter-node-name": "base"}),
    cmd("query-jobs"),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD)

scen("s-stream-bottom", [
    st(**{"job-id": "s", "bottom": "mid"}, until=done("s")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "backing_file"]}),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD,
   post=["qemu-img info --output=json top.qcow2", "qemu-img map --output=json top.qcow2",
         "qemu-img compare -f qcow2 -F raw top.qcow2 ref.raw"])

scen("s-stream-backing-file", [
    st(**{"job-id": "s", "base-node": "base", "backing-file": "renamed.qcow2"}, until=done("s")),
    st(**{"job-id": "s2", "bottom": "base", "backing-file": "x.qcow2"}),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD,
   post=["qemu-img info --output=json top.qcow2"])

def cm(**a):
    a, k = split(a); return cmd(CM, dict({"device": "top"}, **a), **k)
scen("s-commit-validation", [
    cm(device="nosuch"), cm(device="mid"), cm(device="topf"),
    cm(top="a", **{"top-node": "b"}), cm(**{"top-node": "nosuch"}), cm(**{"top-node": "other"}),
    cm(top="nosuch.qcow2"), cm(base="a", **{"base-node": "b"}), cm(**{"base-node": "nosuch"}),
    cm(**{"base-node": "other"}), cm(**{"top-node": "mid", "base-node": "top"}), cm(base="nosuch.qcow2"),
    cm(**{"base-node": "top"}), cm(device="other"), cm(**{"backing-file": "x"}),
    cm(**{"backing-file": "x", "top-node": "top"}), cm(), cm(**{"top-node": "mid"}),
    cm(**{"job-id": "c", "speed": -1}), cm(**{"top-node": "mid", "job-id": "c", "speed": -1}),
    cm(**{"top-node": "mid", "job-id": "c", "filter-node-name": "base"}),
    cm(**{"job-id": "c", "filter-node-name": "base"}),
    cmd("query-jobs"),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD)

scen("s-commit-active-soft-cancel", [
    cm(**{"job-id": "c", "base-node": "base"}, until=ready("c")),
    cmd("block-job-cancel", {"device": "c"}, until=done("c")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv"]}),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD,
   post=["qemu-img compare -f qcow2 -F raw base.qcow2 ref.raw", "qemu-img compare -f qcow2 -F raw top.qcow2 ref.raw"])

scen("s-commit-intermediate-backing-file", [
    cm(**{"job-id": "c", "top-node": "mid", "base-node": "base", "backing-file": "renamed.qcow2"}, until=done("c")),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD,
   post=["qemu-img info --output=json top.qcow2", "qemu-img compare -f qcow2 -F raw base.qcow2 ref.raw"])

def hmp(line, **kw): return cmd("human-monitor-command", {"command-line": line}, **kw)
scen("s-mirror-guest-writes", [
    cmd(BM, {"device": "drive0", "target": "tgt", "sync": "full"}, until=ready("drive0")),
    hmp("qemu-io drive0 \"write -P 0x55 1M 64k\""),
    hmp("qemu-io src \"write -P 0x66 2M 64k\""),
    hmp("qemu-io tgt \"write -P 0x66 2M 64k\""),
    {"sleep": 0.3},
    cmd("query-block-jobs"),
    cmd("job-complete", {"id": "drive0"}, until=done("drive0")),
    cmd("query-block", record={"pick": ["device", "inserted"]}),
], blockdev=[bd("tgt", "tgt.qcow2")],
   drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0,node-name=src"],
   post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2", "qemu-img check --output=json tgt.qcow2"])

scen("s-commit-active-guest-writes", [
    cm(**{"job-id": "c", "base-node": "base"}, until=ready("c")),
    hmp("qemu-io top \"write -P 0x77 3M 4k\""),
    {"sleep": 0.3},
    cmd("job-complete", {"id": "c"}, until=done("c")),
], setup=CHAIN_SETUP + ["qemu-io -f raw -c \"write -P 0x77 3M 4k\" ref.raw"], blockdev=CHAIN_BD,
   post=["qemu-img compare -f qcow2 -F raw base.qcow2 ref.raw", "qemu-img check --output=json base.qcow2"])

def dbg_src(extra_rule=None):
    rule = {"event": "read_aio", "errno": 5, "once": True}
    if extra_rule: rule.update(extra_rule)
    return {"driver": "qcow2", "node-name": "src",
            "file": {"driver": "blkdebug", "node-name": "dbg", "inject-error": [rule],
                     "image": {"driver": "file", "filename": "{dir}/src.qcow2"}}}
scen("s-mirror-ioerror-report", [
    m(until=done("m")),
    cmd("query-jobs"),
], blockdev=[dbg_src(), bd("tgt", "tgt.qcow2")])
scen("s-mirror-ioerror-ignore", [
    m(**{"on-source-error": "ignore"}, until=ready("m")),
    cmd("job-complete", {"id": "m"}, until=done("m")),
], blockdev=[dbg_src(), bd("tgt", "tgt.qcow2")], post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2"])
scen("s-mirror-ioerror-stop", [
    m(**{"on-source-error": "stop"}, until=done("m", "paused")),
    cmd("query-block-jobs"),
    cmd("block-job-cancel", {"device": "m"}),
    cmd("job-resume", {"id": "m"}, until=ready("m")),
    cmd("job-complete", {"id": "m"}, until=done("m")),
], blockdev=[dbg_src(), bd("tgt", "tgt.qcow2")], post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2"])
scen("s-mirror-target-error-enospc", [
    cmd(BM, {"job-id": "m", "device": "src", "target": "tgt", "sync": "full", "on-target-error": "enospc"}, until=done("m", "paused")),
    cmd("query-block-jobs"),
    cmd("job-resume", {"id": "m"}, until=ready("m")),
    cmd("job-cancel", {"id": "m"}, until=done("m")),
], blockdev=[bd("src", "src.qcow2"),
             {"driver": "qcow2", "node-name": "tgt",
              "file": {"driver": "blkdebug", "inject-error": [{"event": "write_aio", "errno": 28, "once": True}],
                       "image": {"driver": "file", "filename": "{dir}/tgt.qcow2"}}}])

def dbg_mid():
    return {"driver": "qcow2", "node-name": "mid", "backing": "base",
            "file": {"driver": "blkdebug", "inject-error": [{"event": "read_aio", "errno": 5, "once": True}],
                     "image": {"driver": "file", "filename": "{dir}/mid.qcow2"}}}
CHAIN_DBG = [bd("base", "base.qcow2"), dbg_mid(), bd("top", "top.qcow2", ",backing=mid")]
scen("s-stream-ioerror", [
    st(**{"job-id": "s"}, until=done("s")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "backing_file"]}),
], setup=CHAIN_SETUP, blockdev=CHAIN_DBG, post=["qemu-img info --output=json top.qcow2"])
scen("s-stream-ioerror-ignore", [
    st(**{"job-id": "s", "on-error": "ignore"}, until=done("s")),
], setup=CHAIN_SETUP, blockdev=CHAIN_DBG, post=["qemu-img info --output=json top.qcow2"])
scen("s-commit-ioerror", [
    cm(**{"job-id": "c", "top-node": "mid"}, until=done("c")),
], setup=CHAIN_SETUP, blockdev=CHAIN_DBG, post=["qemu-img info --output=json top.qcow2"])
scen("s-commit-ioerror-stop", [
    cm(**{"job-id": "c", "top-node": "mid", "on-error": "stop"}, until=done("c", "paused")),
    cmd("query-jobs"),
    cmd("job-resume", {"id": "c"}, until=done("c")),
], setup=CHAIN_SETUP, blockdev=CHAIN_DBG,
   post=["qemu-img info --output=json top.qcow2", "qemu-img compare -f qcow2 -F raw top.qcow2 ref.raw"])

scen("s-mirror-write-blocking", [
    cmd(BM, {"device": "drive0", "target": "tgt", "sync": "none", "copy-mode": "write-blocking"}, until=ready("drive0")),
    hmp("qemu-io drive0 \"write -P 0x55 1M 64k\""),
    hmp("qemu-io drive0 \"write -P 0x56 3M 4k\""),
    cmd("block-job-cancel", {"device": "drive0"}, until=done("drive0")),
], blockdev=[bd("tgt", "tgt.qcow2")],
   setup=SRC_SETUP + ["qemu-img create -q -f qcow2 ref.qcow2 16M",
                      "qemu-io -f qcow2 -c \"write -P 0x55 1M 64k\" -c \"write -P 0x56 3M 4k\" ref.qcow2"],
   drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0,node-name=src"],
   post=["qemu-img compare -f qcow2 -F qcow2 tgt.qcow2 ref.qcow2", "qemu-img check --output=json tgt.qcow2"])

scen("s-drive-mirror-none", [
    cmd(DM, {"device": "drive0", "target": "{dir}/ov.qcow2", "sync": "none"}, until=ready("drive0")),
    hmp("qemu-io drive0 \"write -P 0x55 1M 64k\""),
    cmd("job-complete", {"id": "drive0"}, until=done("drive0")),
    cmd("query-block", record={"pick": ["device"]}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "backing_file"]}),
], blockdev=[], drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0"],
   post=["qemu-img info --output=json ov.qcow2", "qemu-img map --output=json ov.qcow2", "qemu-img check --output=json ov.qcow2"])

scen("s-drive-mirror-existing", [
    cmd(DM, {"device": "drive0", "target": "{dir}/tgt.qcow2", "sync": "full", "mode": "existing", "format": "qcow2"}, until=ready("drive0")),
    cmd("job-complete", {"id": "drive0"}, until=done("drive0")),
], blockdev=[], drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0"],
   post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2", "qemu-img map --output=json tgt.qcow2"])

scen("s-mirror-speed", [
    # (job-pause right now would be timing dependent: QEMU's mirror is often busy issuing I/O)
    m(speed=4194304, until=done("m", "running")),
    cmd("query-block-jobs"),
    cmd("block-job-set-speed", {"device": "m", "speed": 0}, until=ready("m")),
    cmd("job-complete", {"id": "m"}, until=done("m")),
], blockdev=[bd("src", "src.qcow2"), bd("tgt", "tgt.qcow2")],
   post=["qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2"])

scen("s-queries-during-jobs", [
    m(speed=1, **{"filter-node-name": "mtop"}, until=done("m", "running")),
    # (the target's actual-size depends on how far the first request got)
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "backing_file", "ro", "dirty-bitmaps", "backing_file_depth"]}),
    cmd("query-block"),
    cmd("job-cancel", {"id": "m"}, until=done("m")),
    m(speed=1, until=done("m", "running")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "ro"]}),
    cmd("job-cancel", {"id": "m"}, until=done("m")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "ro"]}),
], blockdev=[bd("tgt", "tgt.qcow2")],
   drive=["file={dir}/src.qcow2,format=qcow2,if=none,id=drive0,node-name=src"])

scen("s-queries-during-stream-commit", [
    st(**{"job-id": "s", "speed": 1, "filter-node-name": "cor"}, until=done("s", "running")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "backing_file", "ro"]}),
    cmd("job-cancel", {"id": "s"}, until=done("s")),
    cm(**{"job-id": "c", "speed": 1, "top-node": "mid", "filter-node-name": "ctop"}, until=done("c", "running")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "backing_file", "ro"]}),
    cmd("job-cancel", {"id": "c"}, until=done("c")),
    cm(**{"job-id": "a", "speed": 1, "filter-node-name": "atop"}, until=done("a", "running")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "backing_file", "ro"]}),
    cmd("job-cancel", {"id": "a"}, until=done("a")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "file", "backing_file", "ro"]}),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD)

DRIVE_CHAIN = ["file={dir}/top.qcow2,format=qcow2,if=none,id=drive0"]
scen("s-drive-chain-commit-active", [
    cm(device="drive0", until=ready("drive0")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["drv", "file", "backing_file", "ro"]}),
    cmd("job-complete", {"id": "drive0"}, until=done("drive0")),
    # (inserted.image.actual-size depends on the image library's host layout)
    cmd("query-block", record={"pick": ["device"]}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["drv", "file", "backing_file", "ro"]}),
], setup=CHAIN_SETUP, blockdev=[], drive=DRIVE_CHAIN,
   post=["qemu-img compare -f qcow2 -F raw base.qcow2 ref.raw", "qemu-img check --output=json base.qcow2"])
scen("s-drive-chain-commit-by-filename", [
    cm(device="drive0", top="mid.qcow2", speed=1, until=done("drive0", "running")),
    cm(device="drive0", top="{dir}/mid.qcow2", base="{dir}/base.qcow2", **{"job-id": "c"}),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["drv", "file", "backing_file", "ro"]}),
    cmd("block-job-set-speed", {"device": "drive0", "speed": 0}, until=done("drive0")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["drv", "file", "backing_file", "ro"]}),
], setup=CHAIN_SETUP, blockdev=[], drive=DRIVE_CHAIN,
   post=["qemu-img info --output=json top.qcow2", "qemu-img compare -f qcow2 -F raw top.qcow2 ref.raw"])
scen("s-drive-chain-stream-by-filename", [
    st(device="drive0", base="base.qcow2", until=done("drive0")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["drv", "file", "backing_file", "ro"]}),
    st(device="drive0", base="nosuch.qcow2"),
], setup=CHAIN_SETUP, blockdev=[], drive=DRIVE_CHAIN,
   post=["qemu-img info --output=json top.qcow2", "qemu-img compare -f qcow2 -F raw top.qcow2 ref.raw"])

scen("s-quit-with-mirror", [
    m(until=ready("m")),
    cmd("quit", until=[{"event": "SHUTDOWN"}]),
    {"wait_eof": True},
], blockdev=[bd("src", "src.qcow2"), bd("tgt", "tgt.qcow2")],
   post=["qemu-img check --output=json tgt.qcow2", "qemu-img compare -f qcow2 -F qcow2 src.qcow2 tgt.qcow2"])
scen("s-quit-with-stream", [
    st(**{"job-id": "s", "speed": 1}, until=done("s", "running")),
    cmd("quit", until=[{"event": "SHUTDOWN"}]),
    {"wait_eof": True},
], setup=CHAIN_SETUP, blockdev=CHAIN_BD,
   post=["qemu-img check --output=json top.qcow2", "qemu-img info --output=json top.qcow2"])

SMALL_BASE_SETUP = [
    "qemu-img create -q -f qcow2 base.qcow2 2M",
    "qemu-io -f qcow2 -c \"write -P 0x11 0 1M\" base.qcow2",
    "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 4M",
    "qemu-io -f qcow2 -c \"write -P 0x22 3M 512k\" mid.qcow2",
    "qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 4M",
    "qemu-io -f qcow2 -c \"write -P 0x33 1M 64k\" top.qcow2",
    "qemu-img create -q -f raw ref.raw 4M",
    "qemu-io -f raw -c \"write -P 0x11 0 1M\" -c \"write -P 0x22 3M 512k\" -c \"write -P 0x33 1M 64k\" ref.raw",
]
scen("s-commit-grows-base", [
    cm(**{"job-id": "c", "top-node": "mid"}, until=done("c")),
    cm(**{"job-id": "a"}, until=ready("a")),
    cmd("job-complete", {"id": "a"}, until=done("a")),
], setup=SMALL_BASE_SETUP, blockdev=[bd("base", "base.qcow2"), bd("mid", "mid.qcow2", ",backing=base"), bd("top", "top.qcow2", ",backing=mid")],
   post=["qemu-img info --output=json base.qcow2", "qemu-img compare -f qcow2 -F raw base.qcow2 ref.raw", "qemu-img check --output=json base.qcow2"])

scen("s-stream-readonly-intermediate", [
    st(device="mid", **{"job-id": "s"}, until=done("s")),
    cmd("query-named-block-nodes", {"flat": True}, record={"pick": ["node-name", "drv", "backing_file", "ro"]}),
], setup=CHAIN_SETUP,
   blockdev=[bd("base", "base.qcow2", ",read-only=on"), bd("mid", "mid.qcow2", ",backing=base,read-only=on"),
             bd("top", "top.qcow2", ",backing=mid")],
   post=["qemu-img info --output=json mid.qcow2", "qemu-img check --output=json mid.qcow2"])

scen("s-mirror-busy-nodes", [
    m(until=ready("m")),
    cmd("blockdev-del", {"node-name": "tgt"}),
    cmd("blockdev-del", {"node-name": "src"}),
    cmd("blockdev-backup", {"job-id": "b", "device": "src", "target": "small", "sync": "full"}),
    cmd("blockdev-backup", {"job-id": "b", "device": "tgt", "target": "small", "sync": "full"}),
    cmd(ST, {"job-id": "s", "device": "src"}),
    cmd(BM, {"job-id": "m2", "device": "small", "target": "tgt", "sync": "full"}),
    cmd(CM, {"job-id": "c", "device": "src"}),
    cmd("block-dirty-bitmap-add", {"node": "src", "name": "b0"}),
    cmd("job-cancel", {"id": "m"}, until=done("m")),
    cmd("blockdev-del", {"node-name": "tgt"}, until=[]),
])

scen("s-jobs-next-to-backup", [
    cmd("blockdev-backup", {"job-id": "j1", "device": "mid", "target": "other", "sync": "full", "speed": 1}),
    {"wait_job": "j1", "status": "running"},
    cm(**{"job-id": "a", "base-node": "base"}, until=ready("a")),
    cmd("job-complete", {"id": "a"}, until=done("a")),
    st(**{"job-id": "s"}, until=done("s")),
    cmd("job-cancel", {"id": "j1"}, until=done("j1")),
], setup=CHAIN_SETUP, blockdev=CHAIN_BD)
