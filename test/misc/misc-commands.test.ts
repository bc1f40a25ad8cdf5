/**
 * Differential: the machine / QOM / migration command surface against real
 * QEMU 7.2 (-M none -nodefaults -display none), compared line by line as
 * exact bytes after masking timestamps, the per-run socket directory and
 * host thread ids. Where QEMU's order comes from a hash table of runtime
 * names (children of /objects, iothreads), the reply's list is compared as
 * a sorted set instead; those steps are marked `unordered`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { exchange, haveQemu, startEmu, startQemu, type Peer } from "../protocol/harness.ts";

type Step = { execute: string; arguments?: Record<string, unknown>; id?: unknown; unordered?: boolean };
type Conversation = { name: string; paused?: boolean; steps: Step[] };

const caps: Step = { execute: "qmp_capabilities" };
const q = (execute: string, args?: Record<string, unknown>, extra: Partial<Step> = {}): Step =>
  args === undefined ? { execute, ...extra } : { execute, arguments: args, ...extra };

const CONVERSATIONS: Conversation[] = [
  {
    name: "machine queries",
    steps: [
      caps,
      q("system_powerdown"),
      q("system_reset"),
      q("system_wakeup"),
      q("inject-nmi"),
      q("query-hotpluggable-cpus"),
      q("query-current-machine"),
      q("query-machines"),
      q("query-cpu-definitions"),
      q("query-chardev"),
      q("query-chardev-backends"),
      q("query-command-line-options"),
      q("query-command-line-options", { option: "name" }),
      q("query-command-line-options", { option: "nope" }),
      q("query-display-options"),
      q("query-memdev"),
      q("query-memory-devices"),
      q("query-memory-size-summary"),
      q("query-balloon"),
      q("balloon", { value: 1 }),
      q("query-pci"),
      q("query-acpi-ospm-status"),
      q("query-fdsets"),
      q("getfd", { fdname: "x" }),
      q("closefd", { fdname: "x" }),
      q("add-fd", { "fdset-id": 1 }),
      q("add-fd"),
      q("remove-fd", { "fdset-id": 1 }),
      q("remove-fd", { "fdset-id": 1, fd: 3 }),
      q("query-vnc"),
      q("query-vnc-servers"),
      q("query-spice"),
      q("query-sev"),
      q("query-sev-capabilities"),
      q("query-sev-launch-measure"),
      q("query-sgx"),
      q("query-sgx-capabilities"),
      q("query-tpm"),
      q("query-tpm-models"),
      q("query-tpm-types"),
      q("query-mice"),
      q("query-replay"),
      q("query-dump"),
      q("query-dump-guest-memory-capability"),
      q("query-colo-status"),
      q("query-xen-replication-status"),
      q("query-pr-managers"),
      q("query-vm-generation-id"),
      q("query-events"),
      q("query-gic-capabilities"),
      q("query-cpus-fast"),
      q("query-status"),
    ],
  },
  { name: "machine queries with -S", paused: true, steps: [caps, q("system_reset"), q("system_powerdown"), q("query-hotpluggable-cpus"), q("query-status")] },
  {
    name: "migration settings",
    steps: [
      caps,
      q("query-migrate"),
      q("query-migrate-capabilities"),
      q("query-migrate-parameters"),
      q("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }, { capability: "xbzrle", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "nope", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "postcopy-ram", state: true }, { capability: "x-ignore-shared", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "zero-copy-send", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "multifd", state: true }, { capability: "compress", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "postcopy-preempt", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "background-snapshot", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [{ capability: "block", state: true }, { capability: "dirty-bitmaps", state: true }] }),
      q("migrate-set-capabilities", { capabilities: [] }),
      q("query-migrate-capabilities"),
      q("migrate-set-parameters", { "max-bandwidth": 1000, "downtime-limit": 100, "tls-creds": "abc" }),
      q("migrate-set-parameters", { "compress-level": 10 }),
      q("migrate-set-parameters", { "compress-level": 300 }),
      q("migrate-set-parameters", { "downtime-limit": 2000001 }),
      q("migrate-set-parameters", { "cpu-throttle-initial": 0 }),
      q("migrate-set-parameters", { "cpu-throttle-increment": 100 }),
      q("migrate-set-parameters", { "max-cpu-throttle": 100 }),
      q("migrate-set-parameters", { "multifd-channels": 0 }),
      q("migrate-set-parameters", { "multifd-zstd-level": 21 }),
      q("migrate-set-parameters", { "throttle-trigger-threshold": 101 }),
      q("migrate-set-parameters", { "xbzrle-cache-size": 100 }),
      q("migrate-set-parameters", { "xbzrle-cache-size": 65536 }),
      q("migrate-set-parameters", { "tls-creds": null, "multifd-compression": "zstd" }),
      q("migrate-set-parameters", { "block-bitmap-mapping": [{ "node-name": "n", alias: "a", bitmaps: [] }] }),
      q("migrate-set-parameters", { "announce-initial": 1, "announce-step": 0 }),
      q("migrate-set-parameters", { "announce-initial": 100001 }),
      q("migrate-set-parameters", { "announce-rounds": 1001 }),
      q("migrate-set-parameters", { "compress-threads": 0 }),
      q("migrate-set-parameters", { "decompress-threads": 0 }),
      q("migrate-set-parameters", { "multifd-zlib-level": 10 }),
      q("migrate-set-parameters", { "cpu-throttle-initial": 50, "max-cpu-throttle": 40 }),
      q("migrate-set-parameters", { "compress-level": 10, "compress-threads": 0 }),
      q("migrate-set-parameters", { nope: 1 }),
      q("query-migrate-parameters"),
      q("query-migrate"),
      q("migrate-start-postcopy"),
      q("migrate-set-capabilities", { capabilities: [{ capability: "dirty-bitmaps", state: false }] }),
      q("migrate_cancel"),
      q("migrate-continue", { state: "pre-switchover" }),
      q("migrate-start-postcopy"),
      q("migrate-pause"),
      q("migrate-recover", { uri: "unix:/nowhere" }),
    ],
  },
  {
    name: "objects and QOM paths",
    steps: [
      caps,
      q("object-add", { "qom-type": "iothread", id: "io0" }),
      q("object-add", { "qom-type": "iothread", id: "io0" }),
      q("object-add", { "qom-type": "iothread", id: "io1", "poll-max-ns": 1000, "poll-grow": 2, "poll-shrink": 3, "aio-max-batch": 4 }),
      q("object-add", { "qom-type": "iothread", id: "io2", "poll-max-ns": -1 }),
      q("object-add", { "qom-type": "iothread", id: "io2", "poll-max-ns": "5" }),
      q("object-add", { "qom-type": "iothread", id: "io2", "thread-pool-min": 5, "thread-pool-max": 2 }),
      q("object-add", { "qom-type": "iothread", id: "io3", bogus: 1 }),
      q("object-add", { "qom-type": "nosuch", id: "x" }),
      q("object-add", { "qom-type": "iothread" }),
      q("object-add", { "qom-type": "iothread", id: "1bad" }),
      q("object-add", { "qom-type": "secret", id: "s0", data: "hello" }),
      q("object-add", { "qom-type": "secret", id: "s1" }),
      q("object-add", { "qom-type": "secret", id: "s1", data: "x", file: "/etc/hostname" }),
      q("object-add", { "qom-type": "secret", id: "s1", data: "!!", format: "base64" }),
      q("object-add", { "qom-type": "secret", id: "s2", data: "aGVsbG8=", format: "base64" }),
      q("object-add", { "qom-type": "memory-backend-ram", id: "m0", size: 1048576 }),
      q("object-add", { "qom-type": "memory-backend-ram", id: "m1" }),
      q("object-add", { "qom-type": "memory-backend-ram", id: "m1", size: 0 }),
      q("object-add", { "qom-type": "authz-simple", id: "a0", identity: "bob" }),
      q("query-iothreads", undefined, { unordered: true }),
      q("query-memdev"),
      q("qom-list", { path: "/objects" }, { unordered: true }),
      q("qom-list", { path: "/objects/io0" }),
      q("qom-list", { path: "io0" }),
      q("qom-list", { path: "m0" }),
      q("qom-list", { path: "/objects/s2" }),
      q("qom-list", { path: "a0" }),
      q("qom-get", { path: "/objects/io1", property: "poll-max-ns" }),
      q("qom-get", { path: "io0", property: "thread-pool-max" }),
      q("qom-set", { path: "/objects/io1", property: "poll-grow", value: 7 }),
      q("qom-set", { path: "/objects/io1", property: "poll-grow", value: "x" }),
      q("qom-set", { path: "/objects/io1", property: "poll-grow", value: -1 }),
      q("qom-set", { path: "/objects/io1", property: "type", value: "x" }),
      q("qom-set", { path: "/objects/io1", property: "nope", value: "x" }),
      q("qom-get", { path: "/objects/io1", property: "poll-grow" }),
      q("qom-get", { path: "s2", property: "format" }),
      q("qom-get", { path: "s2", property: "data" }),
      q("qom-get", { path: "s2", property: "loaded" }),
      q("qom-get", { path: "m0", property: "size" }),
      q("qom-get", { path: "m0", property: "host-nodes" }),
      q("qom-get", { path: "m0", property: "prealloc-threads" }),
      q("qom-set", { path: "m0", property: "size", value: 4096 }),
      q("qom-set", { path: "a0", property: "identity", value: "alice" }),
      q("qom-get", { path: "a0", property: "identity" }),
      q("query-iothreads", undefined, { unordered: true }),
      q("object-del", { id: "io0" }),
      q("object-del", { id: "io0" }),
      q("object-del", { id: "s0" }),
      q("query-iothreads"),
      q("qom-get", { path: "/objects/io0", property: "type" }),
    ],
  },
  {
    name: "more object types",
    steps: [
      caps,
      q("object-add", { "qom-type": "main-loop", id: "ml" }),
      q("object-add", { "qom-type": "main-loop", id: "ml2" }),
      q("object-add", { "qom-type": "main-loop", id: "ml3", "thread-pool-min": 3, "thread-pool-max": 2 }),
      q("qom-list", { path: "ml" }),
      q("qom-get", { path: "ml", property: "thread-pool-max" }),
      q("object-del", { id: "ml" }),
      q("object-add", { "qom-type": "rng-random", id: "r0" }),
      q("object-add", { "qom-type": "rng-random", id: "rx", filename: "/nonexistent" }),
      q("object-add", { "qom-type": "rng-random", id: "rx", opened: true }),
      q("qom-list", { path: "r0" }),
      q("qom-get", { path: "r0", property: "filename" }),
      q("qom-get", { path: "r0", property: "opened" }),
      q("qom-set", { path: "r0", property: "filename", value: "/x" }),
      q("qom-set", { path: "r0", property: "opened", value: false }),
      q("object-add", { "qom-type": "rng-builtin", id: "r1" }),
      q("object-add", { "qom-type": "rng-builtin", id: "rx", opened: false }),
      q("qom-list", { path: "r1" }),
      q("object-add", { "qom-type": "tls-creds-anon", id: "t0", endpoint: "server", dir: "/nonexistent" }),
      q("object-add", { "qom-type": "tls-creds-anon", id: "t1" }),
      q("object-add", { "qom-type": "tls-creds-anon", id: "tx", loaded: true }),
      q("qom-list", { path: "t1" }),
      ...["endpoint", "dir", "verify-peer", "priority", "loaded"].map((property) => q("qom-get", { path: "t1", property })),
      q("qom-set", { path: "t1", property: "dir", value: "/x" }),
      q("qom-get", { path: "t1", property: "dir" }),
      q("qom-set", { path: "t1", property: "loaded", value: false }),
      q("object-add", { "qom-type": "thread-context", id: "tc", "cpu-affinity": [0] }),
      q("qom-list", { path: "tc" }),
      q("qom-get", { path: "tc", property: "node-affinity" }),
      q("qom-get", { path: "tc", property: "cpu-affinity" }),
      q("object-add", { "qom-type": "secret", id: "sx", file: "/nonexistent" }),
      q("object-add", { "qom-type": "secret", id: "sf", file: "/etc/hostname" }),
      q("qom-get", { path: "sf", property: "data" }),
      q("qom-list", { path: "/objects" }, { unordered: true }),
      q("object-del", { id: "r0" }),
      q("object-del", { id: "tc" }),
    ],
  },
  {
    name: "the composition tree",
    steps: [
      caps,
      q("qom-list", { path: "/" }),
      q("qom-list", { path: "/machine" }),
      q("qom-list", { path: "machine" }),
      q("qom-list", { path: "//machine/" }),
      q("qom-list", { path: "" }),
      q("qom-list", { path: "/nope" }),
      q("qom-list", { path: "nope" }),
      q("qom-list", { path: "/objects" }),
      q("qom-list", { path: "/chardevs" }),
      q("qom-list", { path: "/chardevs/compat_monitor0" }),
      q("qom-get", { path: "/chardevs/compat_monitor0", property: "addr" }),
      q("qom-list", { path: "/machine/unattached" }),
      q("qom-list", { path: "/machine/unattached/sysbus" }),
      q("qom-list", { path: "/machine/peripheral" }),
      ...["type", "memory", "smp", "boot", "usb", "kernel", "peripheral", "memory-backend", "phandle-start", "dump-guest-core", "graphics", "nope"].map(
        (property) => q("qom-get", { path: "/machine", property }),
      ),
      q("qom-get", { path: "/", property: "type" }),
      q("qom-get", { path: "/nope", property: "type" }),
      q("qom-set", { path: "/machine", property: "usb", value: true }),
      q("qom-get", { path: "/machine", property: "usb" }),
      q("qom-set", { path: "/machine", property: "usb", value: "x" }),
      q("qom-set", { path: "/machine", property: "phandle-start", value: "x" }),
      q("qom-set", { path: "/machine", property: "kernel", value: 1 }),
      q("qom-set", { path: "/machine", property: "firmware", value: "fw" }),
      q("qom-get", { path: "/machine", property: "firmware" }),
      q("qom-set", { path: "/machine", property: "peripheral", value: 1 }),
    ],
  },
  {
    name: "type introspection",
    steps: [
      caps,
      q("query-chardev-backends"),
      ...["iothread", "secret", "none-machine", "object", "memory-backend-ram", "memory-backend", "container", "authz-simple", "nope", "user-creatable"].map(
        (typename) => q("qom-list-properties", { typename }),
      ),
      q("qom-list-types"),
      q("qom-list-types", { abstract: true }),
      q("qom-list-types", { implements: "iothread" }),
      q("qom-list-types", { implements: "nope" }),
      q("qom-list-types", { implements: "memory-backend", abstract: true }),
      q("qom-list-types", { implements: "memory-backend" }),
      q("qom-list-types", { implements: "user-creatable" }),
      q("qom-list-types", { implements: "machine" }),
      q("qom-list-types", { implements: "device", abstract: false }),
      q("qom-list-types", { implements: "x86_64-cpu" }),
      q("qom-list-types", { implements: "secret_common", abstract: true }),
      // Listing all types loads QEMU's modules: their chardev backends appear.
      q("query-chardev-backends"),
    ],
  },
];

/** What legitimately differs between two runs: socket directories, host thread ids. */
function mask(line: string): string {
  return line.replace(/\/tmp\/qmpemu-diff-[^/"]+\//g, "<dir>/").replace(/"thread-id": \d+/g, '"thread-id": "<tid>"');
}

/** A reply whose list order comes from a hash of runtime names: compared as a sorted list. */
function sortReturn(line: string): string {
  const msg = JSON.parse(line);
  if (!Array.isArray(msg.return)) return line;
  return JSON.stringify({ ...msg, return: msg.return.map((x: unknown) => JSON.stringify(x)).sort() });
}

let peers: Peer[] = [];
afterEach(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  peers = [];
});

describe.skipIf(!haveQemu)("machine, QOM and migration commands vs real QEMU 7.2", () => {
  for (const conv of CONVERSATIONS) {
    it(conv.name, async () => {
      const [qemu, emu] = await Promise.all([startQemu(conv.paused ? ["-S"] : []), startEmu({ startPaused: conv.paused })]);
      peers = [qemu, emu];
      const steps = conv.steps.map(({ unordered: _u, ...s }) => s);
      const [theirs, ours] = [await exchange(qemu, steps), await exchange(emu, steps)];
      conv.steps.forEach((st, i) => {
        const norm = (lines: string[]) => lines.map((l) => (st.unordered ? sortReturn(mask(l)) : mask(l)));
        expect(norm(ours[i]!), `${JSON.stringify(st)}`).toEqual(norm(theirs[i]!));
      });
    }, 30000);
  }
});
