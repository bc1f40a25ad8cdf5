/**
 * QEMU's keyval syntax (-blockdev, --blockdev, --monitor, -audiodev...):
 * `a=1,b.c=2` becomes `{a: "1", b: {c: "2"}}`.
 *
 * Rules (util/keyval.c in QEMU 7.2, re-stated):
 * - items are separated by `,`; `,,` is a literal comma inside a value;
 * - a key is dot-separated fragments; a fragment is a QAPI name (letter
 *   first, then letters, digits, `-`, `_`) or, after the first fragment, a
 *   list index (`0`, `1`, ... without leading zeros);
 * - the first item may omit `key=`: its text is the implied key's value;
 * - a later duplicate replaces the earlier value;
 * - a dictionary whose keys are all indexes becomes a list; the indexes must
 *   be 0..n-1.
 *
 * Every scalar stays a string: QEMU's keyval input visitor converts strings
 * per the QAPI schema ("on"/"off" booleans, integer and size texts), so the
 * consumer (the block layer's blockdev-add in keyval mode) does that.
 * The JSON form (`{...}`) of -blockdev keeps JSON types instead.
 */
import { CliError } from "./errors.ts";

export type KeyvalValue = string | KeyvalDict | KeyvalValue[];
export interface KeyvalDict {
  [key: string]: KeyvalValue;
}

const QAPI_NAME = /^[A-Za-z][A-Za-z0-9_-]*/;
const INDEX = /^(0|[1-9][0-9]*)(?![A-Za-z0-9_-])/;
const MAX_FRAGMENT = 127;

function isIndex(key: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(key) && Number(key) < 2 ** 31 - 1;
}

/** Reads a value up to an unescaped comma; returns it and where the next item starts. */
function readValue(text: string, start: number): [string, number] {
  let value = "";
  let i = start;
  while (i < text.length) {
    if (text[i] === ",") {
      if (text[i + 1] !== ",") return [value, i + 1];
      i++;
    }
    value += text[i++];
  }
  return [value, i];
}

function put(cur: KeyvalDict, name: string, value: string | undefined, keyText: string): KeyvalDict | undefined {
  const old = Object.hasOwn(cur, name) ? cur[name] : undefined;
  if (old !== undefined) {
    if ((typeof old === "string") !== (value !== undefined)) {
      throw new CliError(`Parameters '${keyText}.*' used inconsistently`);
    }
    if (value === undefined) return old as KeyvalDict;
  }
  if (value !== undefined) {
    cur[name] = value;
    return undefined;
  }
  const dict: KeyvalDict = {};
  cur[name] = dict;
  return dict;
}

/** Parses one item starting at `start`; returns the index after it. */
function parseItem(root: KeyvalDict, text: string, start: number, impliedKey: string | undefined): number {
  const rest = text.slice(start);
  const keyLen = rest.search(/[=,]|$/);
  if (impliedKey && keyLen > 0 && rest[keyLen] !== "=") {
    const [value, next] = readValue(text, start);
    put(root, impliedKey, value, impliedKey);
    return next;
  }
  const key = rest.slice(0, keyLen);
  let cur = root;
  let pos = 0;
  let fragment = "";
  for (;;) {
    const tail = key.slice(pos);
    const m = (pos > 0 ? INDEX.exec(tail) : null) ?? QAPI_NAME.exec(tail);
    const len = m ? m[0].length : 0;
    if (!len || (pos + len < key.length && key[pos + len] !== ".")) {
      throw new CliError(`Invalid parameter '${key}'`);
    }
    if (len > MAX_FRAGMENT) {
      const whole = pos === 0 && len === key.length;
      throw new CliError(`Parameter${whole ? "" : " fragment"} '${tail.slice(0, len)}' is too long`);
    }
    if (pos > 0) cur = put(cur, fragment, undefined, key.slice(0, pos - 1))!;
    fragment = tail.slice(0, len);
    pos += len;
    if (key[pos] !== ".") break;
    pos++;
  }
  if (rest[keyLen] !== "=") throw new CliError(`Expected '=' after parameter '${key}'`);
  const [value, next] = readValue(text, start + keyLen + 1);
  put(cur, fragment, value, key);
  return next;
}

/** Turns dictionaries keyed 0..n-1 into lists, depth first. */
function listify(cur: KeyvalDict, path: string[]): KeyvalDict | KeyvalValue[] {
  let hasIndex = false;
  let hasMember = false;
  for (const [k, v] of Object.entries(cur)) {
    if (isIndex(k)) hasIndex = true;
    else hasMember = true;
    if (typeof v === "object" && !Array.isArray(v)) cur[k] = listify(v, [...path, k]);
  }
  if (hasIndex && hasMember) throw new CliError(`Parameters '${path.join(".")}.*' used inconsistently`);
  if (!hasIndex) return cur;
  const n = Object.keys(cur).length;
  const list: KeyvalValue[] = [];
  for (let i = 0; i < n; i++) {
    if (!Object.hasOwn(cur, String(i))) throw new CliError(`Parameter '${[...path, String(i)].join(".")}' missing`);
    list.push(cur[String(i)]);
  }
  return list;
}

export function parseKeyval(text: string, impliedKey?: string): KeyvalDict {
  const root: KeyvalDict = {};
  let pos = 0;
  let implied = impliedKey;
  while (pos < text.length) {
    pos = parseItem(root, text, pos, implied);
    implied = undefined;
  }
  return listify(root, []) as KeyvalDict;
}

/**
 * -blockdev's argument: JSON when it starts with `{`, else keyval with the
 * implied key "driver".
 */
export function parseBlockdevArg(text: string): Record<string, unknown> {
  if (text.trimStart().startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CliError("JSON parse error, premature EOI");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new CliError("Invalid parameter type, expected: object");
    }
    return parsed as Record<string, unknown>;
  }
  return parseKeyval(text, "driver");
}
