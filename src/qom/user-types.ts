/**
 * The user-creatable object types qmpemu emulates (object-add): for each,
 * its place in the type hierarchy, how object-add's arguments become an
 * object, and the property list in QEMU 7.2's qom-list order.
 */
import { Buffer } from "node:buffer";
import * as fs from "node:fs";
import * as os from "node:os";
import { genericError } from "../core/error.ts";
import { QomObject, field, invalidType, visitScalar, type QomProperty } from "./object.ts";
import { throttleGroup } from "./throttle-group.ts";
import { UserObject, completeError, strerror, type UserType } from "./user-types-base.ts";

export { UserObject, failedWhenCompleting, type UserType } from "./user-types-base.ts";

const INT64_MAX = "9223372036854775807";

/** A property object-add may not set (QEMU: "not writable"), readable afterwards. */
function readOnly(name: string, type: string, get: () => unknown): QomProperty {
  return { name, type, get };
}

function refuseReadOnlyArgs(typename: string, args: Record<string, unknown>, names: readonly string[]): void {
  for (const n of names) if (n in args) throw genericError(`Property '${typename}.${n}' is not writable`);
}

function nonNegative(name: string) {
  return (v: number) => {
    if (v < 0) throw genericError(`${name} value must be in range [0, ${INT64_MAX}]`);
  };
}

let nextThreadId = 1;

type EventLoopSettings = Record<"thread-pool-min" | "thread-pool-max" | "aio-max-batch", { value: number }>;

const INT_MAX = 2147483647;
/** aio_context_set_thread_pool_params: the pool sizes must fit an int. */
const poolIsValid = (min: number, max: number) => !(min > max || min < 0 || max <= 0 || min > INT_MAX || max > INT_MAX);

/** event-loop-base's settings from object-add's arguments, checked as QEMU completes the object. */
function eventLoopSettings(args: Record<string, unknown>): EventLoopSettings {
  const num = (k: string, d: number) => ({ value: (args[k] as number | undefined) ?? d });
  const s = { "thread-pool-min": num("thread-pool-min", 0), "thread-pool-max": num("thread-pool-max", 64), "aio-max-batch": num("aio-max-batch", 0) };
  // Each property's setter refuses negatives before completion checks the pool.
  for (const k of ["aio-max-batch", "thread-pool-min", "thread-pool-max"] as const) nonNegative(k)(s[k].value);
  if (!poolIsValid(s["thread-pool-min"].value, s["thread-pool-max"].value)) {
    throw completeError("bad thread-pool-min/thread-pool-max values");
  }
  return s;
}

/** event-loop-base's properties, in qom-list order. */
function eventLoopProps(s: EventLoopSettings): QomProperty[] {
  const poolCheck = (min: number, max: number) => {
    if (!poolIsValid(min, max)) throw genericError("bad thread-pool-min/thread-pool-max values");
  };
  return [
    field("thread-pool-min", "int", s["thread-pool-min"], { check: (v) => poolCheck(v, s["thread-pool-max"].value) }),
    field("aio-max-batch", "int", s["aio-max-batch"], { check: nonNegative("aio-max-batch") }),
    field("thread-pool-max", "int", s["thread-pool-max"], { check: (v) => poolCheck(s["thread-pool-min"].value, v) }),
  ];
}

const iothread: UserType = {
  name: "iothread",
  parent: "event-loop-base",
  create(args) {
    const num = (k: string, d: number) => ({ value: (args[k] as number | undefined) ?? d });
    const poll = { "poll-max-ns": num("poll-max-ns", 32768), "poll-grow": num("poll-grow", 0), "poll-shrink": num("poll-shrink", 0) };
    // Property setters run first (range errors), then completion (the pool check).
    for (const k of ["poll-max-ns", "poll-grow", "poll-shrink"] as const) nonNegative(k)(poll[k].value);
    const s = { ...eventLoopSettings(args), ...poll };
    const props = [
      ...eventLoopProps(s),
      ...(["poll-max-ns", "poll-grow", "poll-shrink"] as const).map((k) => field(k, "int", s[k], { check: nonNegative(k) })),
    ];
    return new UserObject("iothread", props, { values: s, threadId: process.pid + nextThreadId++ });
  },
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const secret: UserType = {
  name: "secret",
  parent: "secret_common",
  create(args) {
    const data = args.data as string | undefined;
    const file = args.file as string | undefined;
    const format = (args.format as string | undefined) ?? "raw";
    if (data !== undefined && file !== undefined) throw completeError("'file' and 'data' are mutually exclusive");
    if (data === undefined && file === undefined) throw completeError("Either 'file' or 'data' must be provided");
    if (format === "base64" && data !== undefined && (!BASE64.test(data) || data.length % 4 !== 0)) {
      throw completeError("Base64 data contains invalid characters");
    }
    if (file !== undefined) {
      try {
        fs.readFileSync(file);
      } catch (e) {
        // glib's g_file_get_contents message, typographic quotes included.
        throw completeError(`Unable to read ${file}: Failed to open file \u201C${file}\u201D: ${strerror(e)}`);
      }
    }
    const s = {
      iv: { value: (args.iv as string | undefined) ?? "" },
      keyid: { value: (args.keyid as string | undefined) ?? "" },
      format: { value: format },
      file: { value: file ?? "" },
      data: { value: data ?? "" },
    };
    const props: QomProperty[] = [
      field("iv", "string", s.iv),
      field("keyid", "string", s.keyid),
      { name: "loaded", type: "bool", get: () => true, set: (v) => void visitScalar("loaded", "bool", v) },
      {
        name: "format",
        type: "QCryptoSecretFormat",
        get: () => s.format.value,
        set: (v) => {
          const f = visitScalar("format", "str", v) as string;
          if (f !== "raw" && f !== "base64") throw genericError(`Parameter 'format' does not accept value '${f}'`);
          s.format.value = f;
        },
      },
      field("file", "string", s.file),
      field("data", "string", s.data),
    ];
    return new UserObject("secret", props, { secret: s, bytes: () => (s.format.value === "base64" ? Buffer.from(s.data.value, "base64") : Buffer.from(s.data.value)) });
  },
};

const memoryBackendRam: UserType = {
  name: "memory-backend-ram",
  parent: "memory-backend",
  create(args, id) {
    const size = args.size as number;
    if (size === 0) throw completeError("property 'size' of memory-backend-ram doesn't take value '0'");
    const flag = (k: string, d: boolean) => ({ value: (args[k] as boolean | undefined) ?? d });
    const s = {
      share: flag("share", false),
      dump: flag("dump", true),
      prealloc: flag("prealloc", false),
      reserve: flag("reserve", true),
      merge: flag("merge", true),
      "x-use-canonical-path-for-ramblock-id": flag("x-use-canonical-path-for-ramblock-id", true),
      "prealloc-threads": { value: (args["prealloc-threads"] as number | undefined) ?? 1 },
      policy: (args.policy as string | undefined) ?? "default",
      "host-nodes": (args["host-nodes"] as number[] | undefined) ?? [],
    };
    // Properties that shape the RAM block are fixed once the backend exists.
    const frozen = (name: string, get: () => unknown, type: string): QomProperty => ({
      name,
      type,
      get,
      set: () => {
        throw genericError(`cannot change property ${name} of memory-backend-ram `);
      },
    });
    const props: QomProperty[] = [
      frozen("share", () => s.share.value, "bool"),
      frozen("size", () => size, "int"),
      field("dump", "bool", s.dump),
      field("prealloc-threads", "int", s["prealloc-threads"]),
      frozen("x-use-canonical-path-for-ramblock-id", () => s["x-use-canonical-path-for-ramblock-id"].value, "bool"),
      frozen("policy", () => s.policy, "HostMemPolicy"),
      { name: "prealloc-context", type: "link<thread-context>", get: () => "" },
      field("prealloc", "bool", s.prealloc),
      frozen("reserve", () => s.reserve.value, "bool"),
      frozen("host-nodes", () => s["host-nodes"], "int"),
      field("merge", "bool", s.merge),
    ];
    const obj = new UserObject("memory-backend-ram", props, { memdev: () => ({ id, size, ...s }) });
    obj.addChild(`${id}[0]`, new QomObject("memory-region"));
    return obj;
  },
};

const authzSimple: UserType = {
  name: "authz-simple",
  parent: "authz",
  create(args) {
    const identity = { value: args.identity as string };
    return new UserObject("authz-simple", [field("identity", "string", identity)], {});
  },
};

const mainLoop: UserType = {
  name: "main-loop",
  parent: "event-loop-base",
  create(args, _id, siblings = []) {
    const s = eventLoopSettings(args);
    // Checked when the object completes, after its properties were set.
    for (const o of siblings) if (o.typename === "main-loop") throw completeError("only one main-loop instance allowed");
    return new UserObject("main-loop", eventLoopProps(s), {}, false);
  },
};

const rngRandom: UserType = {
  name: "rng-random",
  parent: "rng-backend",
  create(args) {
    refuseReadOnlyArgs("rng-random", args, ["opened"]);
    const filename = (args.filename as string | undefined) ?? "/dev/urandom";
    try {
      fs.closeSync(fs.openSync(filename, "r"));
    } catch (e) {
      throw completeError(`Could not open '${filename}': ${strerror(e)}`);
    }
    return new UserObject(
      "rng-random",
      [
        readOnly("opened", "bool", () => true),
        {
          name: "filename",
          type: "string",
          get: () => filename,
          set: () => {
            throw genericError("Property 'filename' can no longer be set");
          },
        },
      ],
      {},
    );
  },
};

const rngBuiltin: UserType = {
  name: "rng-builtin",
  parent: "rng-backend",
  create(args) {
    refuseReadOnlyArgs("rng-builtin", args, ["opened"]);
    return new UserObject("rng-builtin", [readOnly("opened", "bool", () => true)], {});
  },
};

const tlsCredsAnon: UserType = {
  name: "tls-creds-anon",
  parent: "tls-creds",
  create(args) {
    refuseReadOnlyArgs("tls-creds-anon", args, ["loaded"]);
    const s = {
      endpoint: (args.endpoint as string | undefined) ?? "client",
      dir: { value: (args.dir as string | undefined) ?? "" },
      "verify-peer": { value: (args["verify-peer"] as boolean | undefined) ?? true },
      priority: { value: (args.priority as string | undefined) ?? "" },
    };
    return new UserObject(
      "tls-creds-anon",
      [
        {
          name: "endpoint",
          type: "QCryptoTLSCredsEndpoint",
          get: () => s.endpoint,
          set: (v) => {
            const e = visitScalar("endpoint", "str", v) as string;
            if (e !== "client" && e !== "server") throw genericError(`Parameter 'endpoint' does not accept value '${e}'`);
            s.endpoint = e;
          },
        },
        field("dir", "string", s.dir),
        field("verify-peer", "bool", s["verify-peer"]),
        field("priority", "string", s.priority),
        readOnly("loaded", "bool", () => true),
      ],
      {},
    );
  },
};

const threadContext: UserType = {
  name: "thread-context",
  parent: "object",
  create(args) {
    const threadId = process.pid + nextThreadId++;
    // The context's thread may run on every host CPU until told otherwise.
    let cpus = (args["cpu-affinity"] as number[] | undefined) ?? os.cpus().map((_c, i) => i);
    return new UserObject(
      "thread-context",
      [
        { name: "thread-id", type: "int", get: () => threadId },
        { name: "node-affinity", type: "int", set: () => {} },
        {
          name: "cpu-affinity",
          type: "int",
          get: () => [...cpus],
          set: (v) => {
            if (!Array.isArray(v)) throw invalidType("cpu-affinity", "array");
            cpus = v.map((x) => visitScalar("cpu-affinity", "int", x) as number);
          },
        },
      ],
      {},
    );
  },
};

export const USER_TYPES: ReadonlyMap<string, UserType> = new Map(
  [iothread, mainLoop, secret, memoryBackendRam, authzSimple, rngRandom, rngBuiltin, tlsCredsAnon, threadContext, throttleGroup].map((t) => [t.name, t]),
);

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'. */
export function isWellFormedId(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(id);
}
