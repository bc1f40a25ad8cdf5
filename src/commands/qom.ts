/**
 * QOM commands: object-add / object-del for the emulated user-creatable
 * types (../qom/user-types.ts), qom-list / qom-get / qom-set over the
 * composition tree, and type introspection (qom-list-types,
 * qom-list-properties) answered from QEMU 7.2's recorded type table.
 * query-iothreads lives here because iothreads are objects.
 */
import { QmpError, genericError } from "../core/error.ts";
import { DEVICE_PROPERTIES, INTERFACE_IMPLEMENTERS, QOM_TYPES, TYPE_PROPERTIES } from "../machine-extra/data/recorded.ts";
import type { ObjectPropertyInfo, QomTypeInfo } from "../machine-extra/static-types.ts";
import { extraState } from "../machine-extra/state.ts";
import { resolvePath } from "../qom/object.ts";
import { THROTTLE_LIMIT_NAMES } from "../qom/throttle-group.ts";
import { USER_TYPES, UserObject, failedWhenCompleting, isWellFormedId } from "../qom/user-types.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import type { HmpCommand } from "./hmp-command.ts";
import type * as v from "valibot";
import type { Emulator } from "../emulator.ts";
import { KEYVAL_FALSE, KEYVAL_TRUE, parseKeyvalNumber } from "../core/keyval-scalars.ts";
import { any, array, bool, enumOf, int, optional, str, struct, union, withFeatures } from "./qapi.ts";
import { metaOf, validateArgs } from "./validate.ts";

const OBJECT_TYPES = [
  "authz-list", "authz-listfile", "authz-pam", "authz-simple", "can-bus", "can-host-socketcan", "colo-compare",
  "cryptodev-backend", "cryptodev-backend-builtin", "cryptodev-backend-lkcf", "cryptodev-vhost-user", "dbus-vmstate",
  "filter-buffer", "filter-dump", "filter-mirror", "filter-redirector", "filter-replay", "filter-rewriter",
  "input-barrier", "input-linux", "iothread", "main-loop", "memory-backend-epc", "memory-backend-file",
  "memory-backend-memfd", "memory-backend-ram", "pef-guest", "pr-manager-helper", "qtest", "rng-builtin", "rng-egd",
  "rng-random", "secret", "secret_keyring", "sev-guest", "thread-context", "s390-pv-guest", "throttle-group",
  "tls-creds-anon", "tls-creds-psk", "tls-creds-x509", "tls-cipher-suites", "x-remote-object", "x-vfio-user-server",
] as const;

const deprecated = <S extends Parameters<typeof withFeatures>[0]>(s: S) => withFeatures(s, ["deprecated"]);

const ObjectOptions = union(
  "ObjectOptions",
  "qom-type",
  { "qom-type": enumOf("ObjectType", OBJECT_TYPES), id: str() },
  {
    "authz-simple": { identity: str() },
    "main-loop": {
      "aio-max-batch": optional(int()),
      "thread-pool-min": optional(int()),
      "thread-pool-max": optional(int()),
    },
    "rng-builtin": { opened: deprecated(optional(bool())) },
    "rng-random": { opened: deprecated(optional(bool())), filename: optional(str()) },
    "throttle-group": {
      limits: optional(struct("ThrottleLimits", Object.fromEntries(THROTTLE_LIMIT_NAMES.map((n) => [n, optional(int())])))),
      ...Object.fromEntries(THROTTLE_LIMIT_NAMES.map((n) => [`x-${n}`, withFeatures(optional(int()), ["unstable"])])),
    },
    "thread-context": { "cpu-affinity": optional(array(int("uint16"))), "node-affinity": optional(array(int("uint16"))) },
    "tls-creds-anon": {
      "verify-peer": optional(bool()),
      dir: optional(str()),
      endpoint: optional(enumOf("QCryptoTLSCredsEndpoint", ["client", "server"])),
      priority: optional(str()),
      loaded: deprecated(optional(bool())),
    },
    iothread: {
      "aio-max-batch": optional(int()),
      "thread-pool-min": optional(int()),
      "thread-pool-max": optional(int()),
      "poll-max-ns": optional(int()),
      "poll-grow": optional(int()),
      "poll-shrink": optional(int()),
    },
    "memory-backend-ram": {
      dump: optional(bool()),
      "host-nodes": optional(array(int("uint16"))),
      merge: optional(bool()),
      policy: optional(enumOf("HostMemPolicy", ["default", "preferred", "bind", "interleave"])),
      prealloc: optional(bool()),
      "prealloc-threads": optional(int("uint32")),
      "prealloc-context": optional(str()),
      share: optional(bool()),
      reserve: optional(bool()),
      size: int("size"),
      "x-use-canonical-path-for-ramblock-id": optional(bool()),
    },
    secret: {
      loaded: deprecated(optional(bool())),
      format: optional(enumOf("QCryptoSecretFormat", ["raw", "base64"])),
      keyid: optional(str()),
      iv: optional(str()),
      data: optional(str()),
      file: optional(str()),
    },
  },
);

const ObjectPropertyInfoSchema = struct("ObjectPropertyInfo", {
  name: str(),
  type: str(),
  description: optional(str()),
  "default-value": optional(any()),
});

let typesByNameMap: Map<string, QomTypeInfo> | undefined;
const typesByName = (): Map<string, QomTypeInfo> => (typesByNameMap ??= new Map(QOM_TYPES().map((t) => [t.name, t])));

function ancestors(name: string): string[] {
  const out: string[] = [];
  for (let t = typesByName().get(name); t; t = t.parent ? typesByName().get(t.parent) : undefined) out.push(t.name);
  return out;
}

function implementsType(type: string, wanted: string): boolean {
  const chain = ancestors(type);
  if (chain.includes(wanted)) return true;
  const implementers = INTERFACE_IMPLEMENTERS()[wanted];
  return implementers !== undefined && chain.some((t) => implementers.includes(t));
}

/**
 * device-list-properties: replayed for the recorded device types (those
 * libvirt probes and a few common ones); QEMU's errors for the rest.
 */
function deviceProperties(typename: string): ObjectPropertyInfo[] {
  const t = typesByName().get(typename);
  if (!t) throw new QmpError("DeviceNotFound", `Device '${typename}' not found`);
  if (t.abstract || !ancestors(typename).includes("device")) {
    throw genericError("Parameter 'typename' expects a non-abstract device type");
  }
  const props = DEVICE_PROPERTIES()[typename];
  if (!props) throw genericError(`qmpemu has no record of the properties of device type '${typename}'`);
  return structuredClone(props) as ObjectPropertyInfo[];
}

/**
 * qom-list-properties: recorded for the modelled types; others get their
 * nearest recorded ancestor's list (a subset of the truth: properties are inherited).
 */
function classProperties(typename: string): ObjectPropertyInfo[] {
  const t = typesByName().get(typename);
  if (!t) throw new QmpError("DeviceNotFound", `Class '${typename}' not found`);
  if (t.name === "interface" || t.parent === "interface") throw genericError("Parameter 'typename' expects a QOM type");
  for (const a of ancestors(typename)) {
    const props = TYPE_PROPERTIES()[a];
    if (props) return structuredClone(props) as ObjectPropertyInfo[];
  }
  return [{ name: "type", type: "string" }];
}

/**
 * How an -object option's keyval strings are read. qemu-system 7.2 sets each
 * member as a flat property ("flat": no nested members, its own texts);
 * qemu-storage-daemon visits ObjectOptions with the keyval visitor ("qapi").
 */
export type ObjectOptionDialect = "flat" | "qapi";

const KEYVAL_TEXTS: Record<ObjectOptionDialect, { int: string; size: string; unknown: (path: string) => string | undefined }> = {
  flat: { int: "an int64 value", size: "a size value", unknown: (path) => `Invalid parameter '${path}'` },
  // unknown members stay for validateArgs, which names them as QEMU does
  qapi: { int: "integer", size: "size", unknown: () => undefined },
};

/** One member of a keyval -object option, typed as its schema says. */
function keyvalMember(path: string, value: unknown, sch: v.GenericSchema, dialect: ObjectOptionDialect): unknown {
  let m = metaOf(sch);
  if (m.kind === "optional") {
    sch = m.wrapped;
    m = metaOf(sch);
  }
  const texts = KEYVAL_TEXTS[dialect];
  if (typeof value !== "string") {
    if (dialect === "qapi" && value && typeof value === "object" && (m.kind === "struct" || m.kind === "object")) {
      const entries = m.kind === "object" ? m.entries : (sch as { entries?: Record<string, v.GenericSchema> }).entries;
      return keyvalStruct(value as Record<string, unknown>, entries ?? {}, path, dialect);
    }
    const sub = value && typeof value === "object" ? Object.keys(value)[0] : undefined;
    throw genericError(`Invalid parameter '${sub === undefined ? path : `${path}.${sub}`}'`);
  }
  if (m.kind === "bool") {
    if (KEYVAL_TRUE.has(value)) return true;
    if (KEYVAL_FALSE.has(value)) return false;
    throw genericError(`Parameter '${path}' expects 'on' or 'off'`);
  }
  if (m.kind === "int") {
    const size = m.int === "size";
    const n = parseKeyvalNumber(value, size);
    if (n === undefined) throw genericError(`Parameter '${path}' expects ${size ? texts.size : texts.int}`);
    return n;
  }
  return value;
}

function keyvalStruct(
  dict: Record<string, unknown>,
  members: Record<string, v.GenericSchema>,
  prefix: string,
  dialect: ObjectOptionDialect,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(dict)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const sch = members[key];
    if (sch) out[key] = keyvalMember(path, value, sch, dialect);
    else {
      const text = KEYVAL_TEXTS[dialect].unknown(path);
      if (text) throw genericError(text);
      out[key] = value;
    }
  }
  return out;
}

/** A keyval -object option (`throttle-group,id=tg0,x-bps-total=1048576`): every value a string until typed here. */
function objectArgsFromKeyval(dict: Record<string, unknown>, dialect: ObjectOptionDialect): Record<string, unknown> {
  const m = metaOf(ObjectOptions) as Extract<ReturnType<typeof metaOf>, { kind: "union" }>;
  const members = (m.variants[dict["qom-type"] as string] ?? {}) as Record<string, v.GenericSchema>;
  const { "qom-type": type, id, ...rest } = dict;
  return { "qom-type": type, id, ...keyvalStruct(rest, members, "", dialect) };
}

/**
 * What QEMU checks of an -object option while it parses the command line:
 * the type, the id and, for the types modelled here, every member (keyval
 * strings typed as above). Returns object-add's arguments, or undefined for
 * a type that is only recorded.
 */
export function parseObjectOption(
  dict: Record<string, unknown>,
  form: { keyval: boolean; dialect: ObjectOptionDialect },
): Record<string, unknown> | undefined {
  const type = dict["qom-type"];
  if (typeof type !== "string") throw genericError("Parameter 'qom-type' is missing");
  if (!(OBJECT_TYPES as readonly string[]).includes(type)) throw genericError(`Parameter 'qom-type' does not accept value '${type}'`);
  if (dict.id === undefined) throw genericError("Parameter 'id' is missing");
  if (!USER_TYPES.has(type)) return undefined;
  const args = validateArgs(ObjectOptions, form.keyval ? objectArgsFromKeyval(dict, form.dialect) : dict);
  if (!isWellFormedId(args.id as string)) throw genericError("Parameter 'id' expects an identifier");
  return args;
}

/** object-add, for the command and for -object: validated arguments in, the object under /objects. */
export function addObject(emu: Emulator, args: Record<string, unknown>): void {
  const valid = validateArgs(ObjectOptions, args);
  createObject(emu, valid, valid["qom-type"] as string, valid.id as string);
}

function createObject(emu: Emulator, args: Record<string, unknown>, type: string, id: string): void {
  if (!isWellFormedId(id)) throw genericError("Parameter 'id' expects an identifier");
  const kind = USER_TYPES.get(type);
  if (!kind) throw genericError(`qmpemu does not emulate objects of type '${type}'`);
  const objects = extraState(emu).qom.objects();
  // QEMU sets the properties, adds the object under /objects, then completes it:
  // property errors come before a duplicate id, completion errors after.
  const duplicate = () => genericError(`attempt to add duplicate property '${id}' to object (type 'container')`);
  let obj;
  try {
    obj = kind.create(args, id, objects.children.values(), { throttleGroupExists: (n) => emu.block.throttleGroups.madeByBackend(n) });
  } catch (e) {
    if (failedWhenCompleting(e)) {
      if (objects.children.has(id)) throw duplicate();
      // Added, then removed when completion failed: it leaves its trace in the hash table.
      objects.noteTransientChild(id);
    }
    throw e;
  }
  if (objects.children.has(id)) throw duplicate();
  objects.addChild(id, obj);
}

export const commands: CommandDef[] = [
  defineCommand({
    name: "object-add",
    args: ObjectOptions,
    handler: (args, { emu }) => {
      const { "qom-type": type, id } = args as { "qom-type": string; id: string };
      createObject(emu, args as Record<string, unknown>, type, id);
    },
  }),
  defineCommand({
    name: "object-del",
    args: struct("q_obj_object-del-arg", { id: str() }),
    handler: ({ id }, { emu }) => {
      const objects = extraState(emu).qom.objects();
      const obj = objects.children.get(id);
      if (!obj) throw genericError(`object '${id}' not found`);
      if (obj instanceof UserObject && !obj.deletable) throw genericError(`object '${id}' is in use, can not be deleted`);
      objects.removeChild(id);
    },
  }),
  defineCommand({
    name: "qom-list",
    args: struct("q_obj_qom-list-arg", { path: str() }),
    returns: array(ObjectPropertyInfoSchema),
    handler: ({ path }, { emu }) =>
      resolvePath(extraState(emu).qom.root, path)
        .properties()
        .map((p) => ({ name: p.name, type: p.type })),
  }),
  defineCommand({
    name: "qom-get",
    args: struct("q_obj_qom-get-arg", { path: str(), property: str() }),
    returns: any(),
    handler: ({ path, property }, { emu }) => resolvePath(extraState(emu).qom.root, path).getProperty(property),
  }),
  defineCommand({
    name: "qom-set",
    args: struct("q_obj_qom-set-arg", { path: str(), property: str(), value: any() }),
    handler: ({ path, property, value }, { emu }) =>
      void resolvePath(extraState(emu).qom.root, path).setProperty(property, value),
  }),
  defineCommand({
    name: "qom-list-types",
    args: struct("q_obj_qom-list-types-arg", { implements: optional(str()), abstract: optional(bool()) }),
    returns: array(struct("ObjectTypeInfo", { name: str(), abstract: optional(bool()), parent: optional(str()) })),
    handler: ({ implements: wanted, abstract }, { emu }) => {
      extraState(emu).modulesLoaded = true;
      return QOM_TYPES().filter((t) => (abstract || !t.abstract) && (wanted === undefined || implementsType(t.name, wanted))).map((t) =>
        structuredClone(t),
      );
    },
  }),
  defineCommand({
    name: "qom-list-properties",
    args: struct("q_obj_qom-list-properties-arg", { typename: str() }),
    returns: array(ObjectPropertyInfoSchema),
    handler: ({ typename }) => classProperties(typename),
  }),
  defineCommand({
    name: "device-list-properties",
    args: struct("q_obj_device-list-properties-arg", { typename: str() }),
    returns: array(ObjectPropertyInfoSchema),
    handler: ({ typename }) => deviceProperties(typename),
  }),
  defineCommand({
    name: "query-iothreads",
    returns: array(
      struct("IOThreadInfo", {
        id: str(),
        "thread-id": int(),
        "poll-max-ns": int(),
        "poll-grow": int(),
        "poll-shrink": int(),
        "aio-max-batch": int(),
      }),
    ),
    // Appended while walking /objects: plain hash-table order.
    handler: (_a, { emu }) =>
      extraState(emu).qom.objects().childrenInHashOrder()
        .filter((e): e is [string, UserObject] => e[1] instanceof UserObject && e[1].typename === "iothread")
        .map(([id, o]) => {
          const v = o.state.values as Record<string, { value: number }>;
          return {
            id,
            "thread-id": o.state.threadId as number,
            "poll-max-ns": v["poll-max-ns"]!.value,
            "poll-grow": v["poll-grow"]!.value,
            "poll-shrink": v["poll-shrink"]!.value,
            "aio-max-batch": v["aio-max-batch"]!.value,
          };
        }),
  }),
];

export const hmpCommands: HmpCommand[] = [];
