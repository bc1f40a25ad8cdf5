/**
 * The transition and verb matrices, checked cell by cell against the
 * tables of spec/jobs.md §3 and §4 (copied here as text, so a change to
 * either side shows up).
 */
import { describe, expect, it } from "vitest";
import { JOB_STATUSES, JOB_VERBS, allowVerb, transition, type JobStatus } from "../../src/job/index.ts";

const LETTER: Record<string, JobStatus> = {
  U: "undefined", C: "created", R: "running", P: "paused", Y: "ready", S: "standby",
  W: "waiting", D: "pending", X: "aborting", E: "concluded", N: "null",
};

// spec/jobs.md §3: row = from, columns U C R P Y S W D X E N.
const STT = `
U . 1 . . . . . . . . .
C . . 1 . . . . . 1 . 1
R . . . 1 1 . 1 . 1 . .
P . . 1 . . . . . . . .
Y . . . . . 1 1 . 1 . .
S . . . . 1 . . . . . .
W . . . . . . . 1 1 . .
D . . . . . . . . 1 1 .
X . . . . . . . . 1 1 .
E . . . . . . . . . . 1
N . . . . . . . . . . .
`;

// spec/jobs.md §4: columns C R P Y S W D X E N.
const VERBS = `
cancel    1 1 1 1 1 1 1 . . .
pause     1 1 1 1 1 . . . . .
resume    1 1 1 1 1 . . . . .
set-speed 1 1 1 1 1 . . . . .
complete  . . . 1 1 . . . . .
finalize  . . . . . . 1 . . .
dismiss   . . . . . . . . 1 .
`;

describe("transition matrix", () => {
  const rows = STT.trim().split("\n").map((l) => l.trim().split(/\s+/));
  it("has a row for every status", () => {
    expect(rows.map((r) => LETTER[r[0]!])).toEqual([...JOB_STATUSES]);
  });
  for (const row of rows) {
    const from = LETTER[row[0]!]!;
    it(`from ${from}`, () => {
      JOB_STATUSES.forEach((to, i) => {
        const allowed = row[i + 1] === "1";
        if (allowed) expect(transition(from, to)).toBe(to);
        else expect(() => transition(from, to), `${from} -> ${to}`).toThrow(/illegal transition/);
      });
    });
  }
});

describe("verb matrix", () => {
  const states = JOB_STATUSES.filter((s) => s !== "undefined");
  const rows = VERBS.trim().split("\n").map((l) => l.trim().split(/\s+/));
  it("has a row for every verb", () => {
    expect(rows.map((r) => r[0])).toEqual([...JOB_VERBS]);
  });
  for (const row of rows) {
    it(`verb ${row[0]}`, () => {
      states.forEach((state, i) => {
        expect(allowVerb(row[0] as (typeof JOB_VERBS)[number], state), `${row[0]} in ${state}`).toBe(row[i + 1] === "1");
      });
    });
  }
  it("no verb is accepted in undefined", () => {
    for (const v of JOB_VERBS) expect(allowVerb(v, "undefined")).toBe(false);
  });
});
