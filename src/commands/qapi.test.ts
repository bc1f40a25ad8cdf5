import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { int, memberFeatures, optional, qapiMeta, str, struct, union, enumOf, withFeatures } from "./qapi.ts";
import { validateArgs } from "./validate.ts";

describe("qapi schema constructors", () => {
  it("share leaf schemas, and withFeatures tags a copy that keeps the leaf's meaning", () => {
    expect(int("uint64")).toBe(int("uint64"));
    expect(int("uint64")).not.toBe(int("uint32"));
    expect(str()).toBe(str());
    const tagged = withFeatures(int("uint64"), ["deprecated"]);
    expect(memberFeatures(tagged)).toEqual(["deprecated"]);
    expect(memberFeatures(int("uint64"))).toBeUndefined();
    expect(qapiMeta(tagged)).toEqual({ kind: "int", int: "uint64" });
    expect(v.safeParse(tagged, 5).success).toBe(true);
    expect(v.safeParse(tagged, "5").success).toBe(false);
  });

  it("build a union's valibot schema on first use, and it validates by the discriminator", () => {
    const U = union("U", "kind", { kind: enumOf("UKind", ["a", "b"]) }, { a: { x: int() }, b: { y: optional(str()) } });
    expect(qapiMeta(U)).toMatchObject({ kind: "union", name: "U", discriminator: "kind" });
    expect(v.safeParse(U, { kind: "a", x: 1 }).success).toBe(true);
    expect(v.safeParse(U, { kind: "a", x: "1" }).success).toBe(false);
    expect(v.safeParse(U, { kind: "b" }).success).toBe(true);
    expect(v.safeParse(U, { kind: "c" }).success).toBe(false);
  });

  it("a member with features does not lend them to other members of the same type", () => {
    const S = struct("S", { old: withFeatures(int("uint64"), ["deprecated"]), plain: int("uint64") });
    expect(memberFeatures(S.entries.old)).toEqual(["deprecated"]);
    expect(memberFeatures(S.entries.plain)).toBeUndefined();
    expect(validateArgs(S, { old: 1, plain: 2 })).toEqual({ old: 1, plain: 2 });
  });
});
