/**
 * Differential: whole QMP conversations against real QEMU 7.2 and our
 * emulator, compared as exact bytes per line (member order included), with
 * only timestamps and the version's package string masked.
 */
import { afterEach, describe, expect, it } from "vitest";
import { exchange, haveQemu, prettyMessage, startEmu, startQemu, type Peer, type Step } from "./harness.ts";

type Conversation = { name: string; paused?: boolean; steps: Step[] };

const caps = { execute: "qmp_capabilities" };
const capsOob = { execute: "qmp_capabilities", arguments: { enable: ["oob"] } };

const CONVERSATIONS: Conversation[] = [
  {
    name: "negotiation mode",
    steps: [
      { execute: "query-status", id: 1 },
      { execute: "no-such", id: 2 },
      { "exec-oob": "migrate-pause", id: 3 },
      { execute: "qmp_capabilities", arguments: { enable: ["foo"] }, id: 4 },
      { execute: "qmp_capabilities", arguments: { enable: "oob" }, id: 5 },
      { execute: "qmp_capabilities", arguments: { disable: [] }, id: 6 },
      { execute: "x", foo: 1, id: 7 },
      { execute: "qmp_capabilities", id: 8 },
      { execute: "qmp_capabilities", id: 9 },
      { execute: "qmp_capabilities", arguments: { enable: ["oob"] }, id: 10 },
      { execute: "qmp_capabilities", arguments: { enable: ["bad"] }, id: 11 },
    ],
  },
  {
    name: "request shape",
    steps: [
      caps,
      "[1]",
      '"s"',
      "{}",
      { id: "only-id" },
      { execute: 1, id: [1, { a: null }] },
      { execute: "query-status", arguments: [], id: 2 },
      { execute: "query-status", arguments: null, id: 3 },
      { execute: "query-status", bogus: 1, id: 4 },
      { execute: "query-status", zzz: 1, arguments: 5, id: 5 },
      { execute: "query-status", "exec-oob": "x", id: 6 },
      { execute: "query-status", id: { nested: [1, 2.5, "é", true, null] } },
      { execute: "", id: 7 },
      { execute: "QUERY-STATUS", id: 8 },
      { execute: "query-version", arguments: { x: 1 }, id: 9 },
      { execute: "query-status", arguments: { a: 1, b: 2, zz: 3 }, id: 10 },
    ],
  },
  {
    name: "out of band",
    steps: [
      capsOob,
      { "exec-oob": "migrate-pause" },
      { "exec-oob": "migrate-pause", id: 1 },
      { "exec-oob": "migrate-recover", arguments: { uri: "unix:/nowhere" }, id: 2 },
      { "exec-oob": "migrate-recover", id: 3 },
      { "exec-oob": "query-status", id: 4 },
      { "exec-oob": "qmp_capabilities", id: 5 },
      { "exec-oob": "nope", id: 6 },
      { "exec-oob": 5, id: 7 },
      { execute: "migrate-pause", "exec-oob": "migrate-pause", id: 8 },
      { "exec-oob": "query-yank", id: 9 },
      { "exec-oob": "yank", arguments: { instances: [] }, id: 10 },
      { "exec-oob": "yank", arguments: { instances: [{ type: "block-node", "node-name": "x" }] }, id: 11 },
      { execute: "yank", arguments: { instances: [{ type: "migration" }] }, id: 12 },
      { execute: "migrate-pause", id: 13 },
    ],
  },
  {
    name: "oob not negotiated",
    steps: [caps, { "exec-oob": "migrate-pause", id: 1 }, { "exec-oob": "query-status", id: 2 }],
  },
  {
    name: "run state and events",
    steps: [
      caps,
      { execute: "query-status", id: 1 },
      { execute: "stop", id: 2 },
      { execute: "stop", id: 3 },
      { execute: "query-status", id: 4 },
      { execute: "human-monitor-command", arguments: { "command-line": "info status" }, id: 5 },
      { execute: "cont", id: 6 },
      { execute: "cont", id: 7 },
      { execute: "cont", arguments: { x: 1 }, id: 8 },
    ],
  },
  {
    name: "prelaunch (-S)",
    paused: true,
    steps: [
      caps,
      { execute: "query-status", id: 1 },
      { execute: "stop", id: 2 },
      { execute: "human-monitor-command", arguments: { "command-line": "info status" }, id: 3 },
      { execute: "cont", id: 4 },
      { execute: "query-status", id: 5 },
    ],
  },
  {
    name: "identity queries",
    steps: [
      caps,
      { execute: "query-name", id: 1 },
      { execute: "query-uuid", id: 2 },
      { execute: "query-kvm", id: 3 },
      { execute: "query-target", id: 4 },
      { execute: "query-yank", id: 5 },
      { execute: "query-version", id: 6 },
      { execute: "query-cpus-fast", id: 7 },
      { execute: "query-iothreads", id: 8 },
    ],
  },
  {
    name: "human monitor",
    steps: [
      caps,
      { execute: "human-monitor-command", arguments: { "command-line": "no-such-hmp" }, id: 1 },
      { execute: "human-monitor-command", arguments: { "command-line": "info jobs" }, id: 2 },
      { execute: "human-monitor-command", arguments: { "command-line": "help info status" }, id: 3 },
      { execute: "human-monitor-command", arguments: { "command-line": "help info version" }, id: 4 },
      { execute: "human-monitor-command", arguments: { "command-line": "help foo" }, id: 5 },
      { execute: "human-monitor-command", arguments: { "command-line": "" }, id: 6 },
      { execute: "human-monitor-command", arguments: { "command-line": "info status", "cpu-index": 0 }, id: 7 },
      { execute: "human-monitor-command", arguments: { "command-line": "info name" }, id: 8 },
      { execute: "human-monitor-command", arguments: { "command-line": "info uuid" }, id: 9 },
      { execute: "human-monitor-command", arguments: {}, id: 10 },
      { execute: "human-monitor-command", arguments: { "command-line": 5 }, id: 11 },
    ],
  },
  {
    name: "quit: SHUTDOWN before the reply",
    steps: [caps, { execute: "quit", id: "bye" }],
  },
  {
    name: "pipelined in one write",
    steps: [
      caps,
      {
        raw: '{"execute":"query-status","id":1}{"execute":"stop","id":2}{"execute":"nope","id":3}{"execute":"cont","id":4}{"id":TRUE}{"execute":"query-status","id":5}',
        untilId: 5,
      },
    ],
  },
];

describe.skipIf(!haveQemu)("conversations vs real QEMU", () => {
  const peers: Peer[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.stop()));
  });

  for (const conv of CONVERSATIONS) {
    it(conv.name, async () => {
      const [qemu, emu] = await Promise.all([startQemu(conv.paused ? ["-S"] : []), startEmu({ startPaused: conv.paused })]);
      peers.push(qemu, emu);
      expect(maskGreeting(emu.greeting)).toEqual(maskGreeting(qemu.greeting));
      const theirs = await exchange(qemu, conv.steps);
      const ours = await exchange(emu, conv.steps);
      expect(ours.flat().length).toBeGreaterThanOrEqual(conv.steps.length);
      expect(ours).toEqual(theirs);
    });
  }
});

function maskGreeting(g: unknown): unknown {
  return JSON.parse(JSON.stringify(g));
}

describe.skipIf(!haveQemu)("pretty=on monitor vs real QEMU", () => {
  it("prints every message exactly alike", async () => {
    const [qemu, emu] = await Promise.all([startQemu([], { pretty: true }), startEmu({ pretty: true })]);
    try {
      expect(emu.greeting.replace(/"package": <pkg>/, "")).toEqual(qemu.greeting.replace(/"package": <pkg>/, ""));
      const requests = [
        { execute: "qmp_capabilities" },
        { execute: "query-status", id: { a: {}, b: [], c: [1, { d: 2 }], e: "é" } },
        { execute: "stop", id: 1 },
        { execute: "nope", id: 2 },
        { execute: "human-monitor-command", arguments: { "command-line": "info status" }, id: 3 },
      ];
      const counts = [1, 1, 2, 1, 1]; // stop also sends the STOP event
      for (const [i, r] of requests.entries()) {
        qemu.client.send(JSON.stringify(r));
        emu.client.send(JSON.stringify(r));
        for (let k = 0; k < counts[i]!; k++) expect(await prettyMessage(emu.client)).toEqual(await prettyMessage(qemu.client));
      }
    } finally {
      await Promise.all([qemu.stop(), emu.stop()]);
    }
  });
});
