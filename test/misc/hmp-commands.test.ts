/**
 * HMP commands against QEMU 7.2. Migration: each parameter read the way
 * hmp_migrate_set_parameter reads it (uint8/uint32/bool/size/MiB sizes),
 * capabilities as 'b' arguments, then the QMP command's own checks.
 * Machine and devices: the monitor's integer expressions ('i', 'M'), on/off
 * words, and what -M none answers.
 */
import { describe, expect, it } from "vitest";
import { differential, hasQemuSystem } from "../block/helpers.ts";

describe.skipIf(!hasQemuSystem)("HMP commands against QEMU 7.2", { timeout: 60_000 }, () => {
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

  it("machine and device commands, integer expressions and their errors", async () => {
    const steps: [string][] = [
      ["hmp set_link nic0 on"],
      ["hmp set_link nic0"],
      ["hmp set_link nic0 maybe"],
      ["hmp set_link"],
      ["hmp netdev_del n0"],
      ["hmp netdev_del"],
      ["hmp device_del d0"],
      ["hmp getfd fd0"],
      ["hmp closefd fd0"],
      ["hmp balloon 100"],
      ["hmp balloon -1"],
      ["hmp balloon x"],
      ["hmp balloon 1+1"],
      ["hmp balloon 0x10"],
      ["hmp system_wakeup"],
      ["hmp nmi"],
      ["hmp nmi 1"],
      ["hmp watchdog_action pause"],
      ["hmp watchdog_action nosuch"],
      ["hmp watchdog_action inject-nmi"],
      ["hmp cpu 0"],
      ["hmp cpu 5000000000"],
      ["hmp cpu -1"],
      ["hmp cpu (1"],
      ["hmp cpu 1/0"],
      ["hmp cpu 'a'"],
      ["hmp cpu 'ab'"],
      ["hmp cpu $pc"],
      ["hmp cpu"],
      ["hmp boot_set c"],
      ["hmp stopcapture 0"],
      ["hmp sum 0 10"],
      ["hmp sum 0"],
      ["hmp help set_link"],
      ["hmp help balloon"],
    ];
    const { ours, theirs } = await differential({ steps });
    steps.forEach((s, i) => expect(ours.replies[i], s[0]).toEqual(theirs.replies[i]));
  });

  it("commands without parameters refuse extra words, aliases named as QEMU names them", async () => {
    const steps: [string][] = [
      ["hmp info status extra"],
      ["hmp info version x"],
      ["hmp info name x"],
      ["hmp info kvm x"],
      ["hmp info jobs x"],
      ["hmp info block-jobs x"],
      ["hmp info cpus x"],
      ["hmp stop x"],
      ["hmp cont x"],
      ["hmp system_reset x"],
      ["hmp info snapshots x"],
      ["hmp info uuid x"],
      ["hmp info chardev x"],
      ["hmp info migrate x"],
      ["hmp info mtree -f"],
      ["hmp migrate_cancel x"],
      ["hmp nmi x"],
    ];
    const { ours, theirs } = await differential({ steps });
    steps.forEach((s, i) => expect(ours.replies[i], s[0]).toEqual(theirs.replies[i]));
  });

  it("calc-dirty-rate and calc_dirty_rate: their checks (the measurement itself races QEMU's thread)", async () => {
    const steps: [string, Record<string, unknown>?][] = [
      ["query-dirty-rate"],
      ["calc-dirty-rate", { "calc-time": 0 }],
      ["calc-dirty-rate", { "calc-time": 61 }],
      ["calc-dirty-rate", { "calc-time": 1, "sample-pages": 100 }],
      ["calc-dirty-rate", { "calc-time": 1, "sample-pages": 1000000 }],
      ["calc-dirty-rate", { "calc-time": 1, "sample-pages": 128, mode: "dirty-ring" }],
      ["calc-dirty-rate", { "calc-time": 1, "sample-pages": 128 }],
      ["hmp calc_dirty_rate 0"],
      ["hmp calc_dirty_rate"],
      ["hmp calc_dirty_rate -r -b 1"],
      ["hmp calc_dirty_rate 2 300"],
      ["hmp calc_dirty_rate 2 3"],
      ["hmp help calc_dirty_rate"],
    ];
    const { ours, theirs } = await differential({ steps });
    steps.forEach((s, i) => expect(ours.replies[i], s[0]).toEqual(theirs.replies[i]));
  });
});
