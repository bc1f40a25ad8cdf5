#!/usr/bin/env python3
"""Records QEMU 7.2's static answers (-M none -nodefaults) into recorded.ts.

These answers describe the binary (its CPU models, machine types and
command-line option groups), not any state, so qmpemu replays them. Members
are re-ordered into QAPI schema order: qmpemu's JSON writer then prints them
in QEMU's QDict order itself.

Run: python3 src/machine-extra/data/record.py   (needs qemu-system-x86_64)
"""
import json, os, socket, subprocess, tempfile, time

ORDER = {
    "query-cpu-definitions": ["name", "migration-safe", "static", "unavailable-features", "typename", "alias-of", "deprecated"],
    "query-machines": ["name", "alias", "is-default", "cpu-max", "hotpluggable-cpus", "numa-mem-supported", "deprecated",
                       "default-cpu-type", "default-ram-id"],
    "query-command-line-options": ["option", "parameters"],
    "parameters": ["name", "type", "help", "default"],
}
EXPORTS = {
    "query-cpu-definitions": ("CPU_DEFINITIONS", "CpuDefinitionInfo"),
    "query-machines": ("MACHINES", "MachineInfo"),
    "query-command-line-options": ("COMMAND_LINE_OPTIONS", "CommandLineOptionInfo"),
}


def ts_literal(value):
    """JSON text as a TypeScript literal: integers beyond 2^53 become bigint literals."""
    big = []

    def mark(v):
        if isinstance(v, bool) or not isinstance(v, int) or abs(v) <= 2**53 - 1:
            if isinstance(v, dict):
                return {k: mark(x) for k, x in v.items()}
            if isinstance(v, list):
                return [mark(x) for x in v]
            return v
        big.append(v)
        return f"@@BIG{len(big) - 1}@@"

    text = json.dumps(mark(value), ensure_ascii=False)
    for i, v in enumerate(big):
        text = text.replace(f'"@@BIG{i}@@"', f"{v}n")
    return text


def ordered(obj, keys):
    return {k: obj[k] for k in keys if k in obj}


def ask(commands, extra=()):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "qmp.sock")
    proc = subprocess.Popen(["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none",
                             "-qmp", f"unix:{path},server=on,wait=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(path):
            time.sleep(0.01)
        time.sleep(0.1)
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        f = s.makefile("rwb")
        f.readline()
        out = {}
        def call(req):
            f.write(json.dumps(req).encode() + b"\n")
            f.flush()
            while True:
                m = json.loads(f.readline())
                if "return" in m or "error" in m:
                    return m.get("return")
        for c in ["qmp_capabilities", *commands]:
            out[c] = call({"execute": c})
        for key, req in extra:
            out[key] = call(req)
        return out
    finally:
        proc.kill()


# Types whose qom-list-properties answer qmpemu replays.
PROPERTY_TYPES = ["object", "container", "none-machine", "iothread", "main-loop", "event-loop-base", "secret",
                  "secret_common", "memory-backend", "memory-backend-ram", "authz", "authz-simple", "chardev-socket",
                  "rng-random", "rng-builtin", "tls-creds-anon", "thread-context", "throttle-group",
                  # What libvirt's capability probe asks about.
                  "memory-backend-file", "memory-backend-memfd", "max-x86_64-cpu"]

# Device types whose device-list-properties answer qmpemu replays: the ones
# libvirt's capability probe asks about (that this x86_64 build has) and a
# few other common ones. All ~450 device types would be about 3 MB.
DEVICE_TYPES = [
    "virtio-blk-pci", "virtio-net-pci", "virtio-scsi-pci", "vfio-pci", "scsi-hd", "ide-hd", "PIIX4_PM", "usb-redir",
    "usb-storage", "kvm-pit", "VGA", "vmware-svga", "qxl", "virtio-gpu-pci", "virtio-gpu-device", "ICH9-LPC",
    "virtio-balloon-pci", "virtio-balloon-device", "intel-iommu", "mch", "nvdimm", "pcie-root-port", "usb-host",
    "vhost-user-fs-device", "virtio-mem-pci", "virtio-iommu-pci",
    "virtio-blk-device", "scsi-cd", "ide-cd", "virtio-serial-pci", "virtio-rng-pci", "nvme", "qemu-xhci", "usb-tablet",
    "e1000", "pci-bridge",
]


# CPU models whose query-cpu-model-expansion answers are recorded (static and full).
EXPANDED_CPU_MODELS = ["max", "host", "base", "qemu64"]


def main():
    first = ask([], [("types", {"execute": "qom-list-types", "arguments": {"abstract": True}})])
    interfaces = sorted({t["name"] for t in first["types"] if t.get("parent") == "interface"})
    extra = [(f"impl:{i}", {"execute": "qom-list-types", "arguments": {"implements": i, "abstract": True}}) for i in interfaces]
    extra += [(f"props:{t}", {"execute": "qom-list-properties", "arguments": {"typename": t}}) for t in PROPERTY_TYPES]
    extra += [(f"dev:{t}", {"execute": "device-list-properties", "arguments": {"typename": t}}) for t in DEVICE_TYPES]
    extra += [
        (f"cpu:{kind}:{m}", {"execute": "query-cpu-model-expansion", "arguments": {"type": kind, "model": {"name": m}}})
        for m in EXPANDED_CPU_MODELS
        for kind in ("static", "full")
    ]
    answers = ask(list(EXPORTS), [("types", {"execute": "qom-list-types", "arguments": {"abstract": True}}), *extra])
    answers["query-cpu-definitions"] = [ordered(x, ORDER["query-cpu-definitions"]) for x in answers["query-cpu-definitions"]]
    answers["query-machines"] = [ordered(x, ORDER["query-machines"]) for x in answers["query-machines"]]
    answers["query-command-line-options"] = [
        {"option": o["option"], "parameters": [ordered(p, ORDER["parameters"]) for p in o["parameters"]]}
        for o in answers["query-command-line-options"]
    ]
    lines = [
        "// Generated by record.py from QEMU 7.2 (-M none -nodefaults); do not edit.",
        "// Answers that describe the binary, replayed as recorded (list order included).",
        'import type { CommandLineOptionInfo, CpuDefinitionInfo, CpuModelInfo, MachineInfo, ObjectPropertyInfo, QomTypeInfo } from "../static-types.ts";',
        "",
        "/**",
        " * Each table is built on first use: as top-level literals they about doubled",
        " * the compiled binary's startup (dist/qmpemu --version: ~50 ms CPU, ~25 ms lazy).",
        " */",
        "function lazy<T>(make: () => T): () => T {",
        "  let value: T | undefined;",
        "  return () => (value ??= make());",
        "}",
        "",
    ]
    for cmd, (name, typ) in EXPORTS.items():
        lines.append(f"export const {name} = lazy((): readonly {typ}[] => [")
        for item in answers[cmd]:
            lines.append("  " + ts_literal(item) + ",")
        lines.append("]);")
        lines.append("")
    lines.append("/** qom-list-types {abstract: true}, in QEMU's order. */")
    lines.append("export const QOM_TYPES = lazy((): readonly QomTypeInfo[] => [")
    for t in answers["types"]:
        lines.append("  " + json.dumps(ordered(t, ["name", "abstract", "parent"])) + ",")
    lines.append("]);")
    lines.append("")
    lines.append("/** For each interface type, the types implementing it (directly or through a parent). */")
    lines.append("export const INTERFACE_IMPLEMENTERS = lazy((): Readonly<Record<string, readonly string[]>> => ({")
    for i in interfaces:
        names = [t["name"] for t in answers[f"impl:{i}"] if t["name"] != i]
        lines.append(f"  {json.dumps(i)}: {json.dumps(names)},")
    lines.append("}));")
    lines.append("")
    lines.append("/** qom-list-properties answers for the types qmpemu models. */")
    lines.append("export const TYPE_PROPERTIES = lazy((): Readonly<Record<string, readonly ObjectPropertyInfo[]>> => ({")
    for t in PROPERTY_TYPES:
        props = [ordered(p, ["name", "type", "description", "default-value"]) for p in answers[f"props:{t}"]]
        lines.append(f"  {json.dumps(t)}: {ts_literal(props)},")
    lines.append("}));")
    lines.append("")
    lines.append("/** query-cpu-model-expansion answers without props: model -> {static, full} (name and props). */")
    lines.append("export const CPU_EXPANSIONS = lazy((): Readonly<Record<string, { static: CpuModelInfo; full: CpuModelInfo }>> => ({")
    for m in EXPANDED_CPU_MODELS:
        st = answers[f"cpu:static:{m}"]["model"]
        fu = answers[f"cpu:full:{m}"]["model"]
        lines.append(f"  {json.dumps(m)}: {{ static: {ts_literal(st)}, full: {ts_literal(fu)} }},")
    lines.append("}));")
    lines.append("")
    lines.append("/** device-list-properties answers for the device types in DEVICE_TYPES of record.py. */")
    lines.append("export const DEVICE_PROPERTIES = lazy((): Readonly<Record<string, readonly ObjectPropertyInfo[]>> => ({")
    for t in DEVICE_TYPES:
        props = [ordered(p, ["name", "type", "description", "default-value"]) for p in answers[f"dev:{t}"]]
        lines.append(f"  {json.dumps(t)}: {ts_literal(props)},")
    lines.append("}));")
    lines.append("")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "recorded.ts"), "w") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
