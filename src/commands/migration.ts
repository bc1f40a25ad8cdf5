/**
 * Migration settings commands. No migration ever starts here, so the
 * state is always "none": query-migrate answers {}, and the commands that
 * need a running migration fail with QEMU's texts. (migrate-pause and
 * migrate-recover, allow-oob, live in ./machine.ts.)
 */
import { genericError } from "../core/error.ts";
import { MIGRATION_CAPABILITIES, MIGRATION_STATUSES, type MigrationCapability } from "../machine-extra/migration.ts";
import { extraState } from "../machine-extra/state.ts";
import { defineCommand, type CommandDef } from "./command.ts";
import { SocketAddress } from "./socket-address.ts";
import { alternate, array, bool, enumOf, int, nil, num, optional, str, struct, union, withFeatures } from "./qapi.ts";

const MigrationStatus = enumOf("MigrationStatus", [...MIGRATION_STATUSES]);
const MigrationCapabilityEnum = enumOf("MigrationCapability", MIGRATION_CAPABILITIES);
const CapabilityStatus = struct("MigrationCapabilityStatus", { capability: MigrationCapabilityEnum, state: bool() });
const MultiFDCompression = enumOf("MultiFDCompression", ["none", "zlib", "zstd"]);

const MigrationStats = struct("MigrationStats", {
  transferred: int(),
  remaining: int(),
  total: int(),
  duplicate: int(),
  skipped: int(),
  normal: int(),
  "normal-bytes": int(),
  "dirty-pages-rate": int(),
  mbps: num(),
  "dirty-sync-count": int(),
  "postcopy-requests": int(),
  "page-size": int(),
  "multifd-bytes": int("uint64"),
  "pages-per-second": int("uint64"),
  "precopy-bytes": int("uint64"),
  "downtime-bytes": int("uint64"),
  "postcopy-bytes": int("uint64"),
  "dirty-sync-missed-zero-copy": int("uint64"),
});

const MigrationInfo = struct("MigrationInfo", {
  status: optional(MigrationStatus),
  ram: optional(MigrationStats),
  disk: optional(MigrationStats),
  vfio: optional(struct("VfioStats", { transferred: int() })),
  "xbzrle-cache": optional(
    struct("XBZRLECacheStats", {
      "cache-size": int("size"),
      bytes: int(),
      pages: int(),
      "cache-miss": int(),
      "cache-miss-rate": num(),
      "encoding-rate": num(),
      overflow: int(),
    }),
  ),
  "total-time": optional(int()),
  "expected-downtime": optional(int()),
  downtime: optional(int()),
  "setup-time": optional(int()),
  "cpu-throttle-percentage": optional(int()),
  "error-desc": optional(str()),
  "blocked-reasons": optional(array(str())),
  "postcopy-blocktime": optional(int("uint32")),
  "postcopy-vcpu-blocktime": optional(array(int("uint32"))),
  compression: optional(
    struct("CompressionStats", {
      pages: int(),
      busy: int(),
      "busy-rate": num(),
      "compressed-size": int(),
      "compression-rate": num(),
    }),
  ),
  "socket-address": optional(array(SocketAddress)),
});

const BitmapMigrationNodeAlias = struct("BitmapMigrationNodeAlias", {
  "node-name": str(),
  alias: str(),
  bitmaps: array(
    struct("BitmapMigrationBitmapAlias", {
      name: str(),
      alias: str(),
      transform: optional(struct("BitmapMigrationBitmapAliasTransform", { persistent: optional(bool()) })),
    }),
  ),
});

/** MigrationParameters / MigrateSetParameters: the same members; the set form takes null for the TLS strings. */
function parameterMembers(tlsString: () => ReturnType<typeof str> | ReturnType<typeof alternate>) {
  return {
    "announce-initial": optional(int("size")),
    "announce-max": optional(int("size")),
    "announce-rounds": optional(int("size")),
    "announce-step": optional(int("size")),
    "compress-level": optional(int("uint8")),
    "compress-threads": optional(int("uint8")),
    "compress-wait-thread": optional(bool()),
    "decompress-threads": optional(int("uint8")),
    "throttle-trigger-threshold": optional(int("uint8")),
    "cpu-throttle-initial": optional(int("uint8")),
    "cpu-throttle-increment": optional(int("uint8")),
    "cpu-throttle-tailslow": optional(bool()),
    "tls-creds": optional(tlsString()),
    "tls-hostname": optional(tlsString()),
    "tls-authz": optional(tlsString()),
    "max-bandwidth": optional(int("size")),
    "downtime-limit": optional(int("uint64")),
    "x-checkpoint-delay": withFeatures(optional(int("uint32")), ["unstable"]),
    "block-incremental": optional(bool()),
    "multifd-channels": optional(int("uint8")),
    "xbzrle-cache-size": optional(int("size")),
    "max-postcopy-bandwidth": optional(int("size")),
    "max-cpu-throttle": optional(int("uint8")),
    "multifd-compression": optional(MultiFDCompression),
    "multifd-zlib-level": optional(int("uint8")),
    "multifd-zstd-level": optional(int("uint8")),
    "block-bitmap-mapping": optional(array(BitmapMigrationNodeAlias)),
  };
}

const StrOrNull = alternate("StrOrNull", [str(), nil()]);

export const commands: CommandDef[] = [
  defineCommand({ name: "query-migrate", returns: MigrationInfo, handler: () => ({}) }),
  defineCommand({
    name: "query-migrate-capabilities",
    returns: array(CapabilityStatus),
    handler: (_a, { emu }) => extraState(emu).migration.capabilities(),
  }),
  defineCommand({
    name: "migrate-set-capabilities",
    args: struct("q_obj_migrate-set-capabilities-arg", { capabilities: array(CapabilityStatus) }),
    handler: ({ capabilities }, { emu }) =>
      void extraState(emu).migration.setCapabilities(
        capabilities as { capability: MigrationCapability; state: boolean }[],
      ),
  }),
  defineCommand({
    name: "query-migrate-parameters",
    returns: struct("MigrationParameters", parameterMembers(str)),
    handler: (_a, { emu }) => extraState(emu).migration.parameters(),
  }),
  defineCommand({
    name: "migrate-set-parameters",
    args: struct("MigrateSetParameters", parameterMembers(() => StrOrNull)),
    handler: (args, { emu }) => void extraState(emu).migration.setParameters(args as Record<string, unknown>),
  }),
  // Cancelling when nothing migrates is a no-op in QEMU too.
  defineCommand({ name: "migrate_cancel", handler: () => {} }),
  defineCommand({
    name: "migrate-continue",
    args: struct("q_obj_migrate-continue-arg", { state: MigrationStatus }),
    handler: () => {
      throw genericError("Migration not in expected state: none");
    },
  }),
  defineCommand({
    name: "migrate-start-postcopy",
    handler: (_a, { emu }) => {
      const m = extraState(emu).migration;
      // Bitmap migration runs in the postcopy phase too, so either capability enables it.
      if (!m.capability("postcopy-ram") && !m.capability("dirty-bitmaps")) {
        throw genericError("Enable postcopy with migrate_set_capability before the start of migration");
      }
      throw genericError("Postcopy must be started after migration has been started");
    },
  }),
];

export { hmpCommands } from "./migration-hmp.ts";
