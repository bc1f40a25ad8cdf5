/**
 * HMP migration commands against QEMU 7.2: each parameter read the way
 * hmp_migrate_set_parameter reads it (uint8/uint32/bool/size/MiB sizes),
 * capabilities as 'b' arguments, then the QMP command's own checks.
 */
import { describe, expect, it } from "vitest";
import { differential, hasQemuSystem } from "../block/helpers.ts";

describe.skipIf(!hasQemuSystem)("HMP migration commands against QEMU 7.2", { timeout: 60_000 }, () => {
  it("every command, its argument errors and what info migrate_parameters shows afterwards", async () => {
    const steps: [string][] = [
        ["hmp migrate_cancel"],
        ["hmp migrate_continue pre-switchover"],
        ["hmp migrate_continue"],
        ["hmp migrate_continue bogus"],
        ["hmp migrate_pause"],
        ["hmp migrate_recover tcp:127.0.0.1:1"],
        ["hmp migrate_set_capability xbzrle on"],
        ["hmp migrate_set_capability nosuch on"],
        ["hmp migrate_set_capability xbzrle maybe"],
        ["hmp migrate_set_capability"],
        ["hmp migrate_set_capability xbzrle"],
        ["hmp migrate_set_parameter downtime-limit 500"],
        ["hmp migrate_set_parameter max-bandwidth 1G"],
        ["hmp migrate_set_parameter nosuch 1"],
        ["hmp migrate_set_parameter compress-level 99"],
        ["hmp migrate_set_parameter compress-level x"],
        ["hmp migrate_set_parameter compress-level 300"],
        ["hmp migrate_set_parameter compress-level -1"],
        ["hmp migrate_set_parameter compress-level 0x5"],
        ["hmp migrate_set_parameter compress-wait-thread maybe"],
        ["hmp migrate_set_parameter compress-wait-thread yes"],
        ["hmp migrate_set_parameter downtime-limit x"],
        ["hmp migrate_set_parameter downtime-limit 1k"],
        ["hmp migrate_set_parameter max-bandwidth x"],
        ["hmp migrate_set_parameter max-bandwidth 10"],
        ["hmp migrate_set_parameter xbzrle-cache-size 1"],
        ["hmp migrate_set_parameter x-checkpoint-delay x"],
        ["hmp migrate_set_parameter multifd-compression x"],
        ["hmp migrate_set_parameter multifd-compression zlib"],
        ["hmp migrate_set_parameter tls-creds abc"],
        ["hmp migrate_set_parameter block-bitmap-mapping x"],
        ["hmp migrate_set_parameter announce-rounds 3"],
        ["hmp migrate_set_parameter"],
        ["hmp migrate_set_parameter compress-level"],
        ["hmp info migrate_parameters"],
        ["hmp info migrate_capabilities"],
        ["hmp help migrate_start_postcopy"],
        ["hmp help migrate_set_parameter"],
        ["hmp migrate_start_postcopy"],
    ];
    const { ours, theirs } = await differential({ steps });
    steps.forEach((s, i) => expect(ours.replies[i], s[0]).toEqual(theirs.replies[i]));
  });
});
