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
import { any, array, bool, enumOf, int, optional, str, struct, union, withFeatures } from "./qapi.ts";

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

export const commands: CommandDef[] = [
  defineCommand({
    name: "object-add",
    args: ObjectOptions,
    handler: (args, { emu }) => {
      const { "qom-type": type, id } = args as { "qom-type": string; id: string };
      if (!isWellFormedId(id)) throw genericError("Parameter 'id' expects an identifier");
      const kind = USER_TYPES.get(type);
      if (!kind) throw genericError(`qmpemu does not emulate objects of type '${type}'`);
      const objects = extraState(emu).qom.objects();
      // QEMU sets the properties, adds the object under /objects, then completes it:
      // property errors come before a duplicate id, completion errors after.
      const duplicate = () => genericError(`attempt to add duplicate property '${id}' to object (type 'container')`);
      let obj;
      try {
        obj = kind.create(args as Record<string, unknown>, id, objects.children.values());
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
