"""A QMP conversation with qemu-system-x86_64 -M none (7.2), for the record-*.py scripts."""
import json, os, socket, subprocess, tempfile, time


def start_qemu():
    """Starts QEMU, negotiates, and returns (process, cmd) where cmd(name, args) returns the reply."""
    sock = os.path.join(tempfile.mkdtemp(), "q.sock")
    p = subprocess.Popen(["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
                          "-qmp", f"unix:{sock},server=on,wait=on"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(sock):
        time.sleep(0.02)
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rwb")
    f.readline()

    def cmd(c, a=None):
        f.write(json.dumps({"execute": c, **({"arguments": a} if a else {})}).encode() + b"\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "event" not in r:
                return r

    cmd("qmp_capabilities")
    return p, cmd
