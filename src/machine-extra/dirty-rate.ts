/**
 * calc-dirty-rate under -M none: QEMU's measuring thread finds no RAM to
 * sample and reports at once (dirty rate -1). The state is what
 * query-dirty-rate and `info dirty_rate` show.
 */
import { genericError } from "../core/error.ts";

export type DirtyRateMode = "page-sampling" | "dirty-ring" | "dirty-bitmap";

export interface DirtyRateInfo {
  status: "unstarted" | "measuring" | "measured";
  "sample-pages": number;
  "dirty-rate"?: number;
  mode: DirtyRateMode;
  "start-time": number;
  "calc-time": number;
}

/** MIN/MAX_FETCH_DIRTYRATE_TIME_SEC, MIN/MAX_SAMPLE_PAGE_COUNT, DIRTYRATE_DEFAULT_SAMPLE_PAGES. */
const CALC_TIME = [1, 60] as const;
const SAMPLE_PAGES = [128, 16384] as const;
const DEFAULT_SAMPLE_PAGES = 512;

export class DirtyRate {
  private info: DirtyRateInfo = { status: "unstarted", "sample-pages": 0, mode: "page-sampling", "start-time": 0, "calc-time": 0 };

  /** `nowSeconds`: QEMU_CLOCK_REALTIME in seconds (the host's monotonic clock). */
  constructor(private readonly nowSeconds: () => number) {}

  query(): DirtyRateInfo {
    return { ...this.info };
  }

  /** qmp_calc_dirty_rate's checks in its order; without KVM the dirty ring is never enabled. */
  start(calcTime: number, samplePages: number | undefined, mode: DirtyRateMode = "page-sampling"): void {
    if (calcTime < CALC_TIME[0] || calcTime > CALC_TIME[1]) {
      throw genericError(`calc-time is out of range[${CALC_TIME[0]}, ${CALC_TIME[1]}].`);
    }
    if (samplePages !== undefined && mode === "dirty-ring") throw genericError("either sample-pages or dirty-ring can be specified.");
    if (samplePages !== undefined && (samplePages < SAMPLE_PAGES[0] || samplePages > SAMPLE_PAGES[1])) {
      throw genericError(`sample-pages is out of range[${SAMPLE_PAGES[0]}, ${SAMPLE_PAGES[1]}].`);
    }
    // QEMU 7.2 -M none asks KVM here and crashes without it; the answer it means is this one.
    if (mode === "dirty-ring") throw genericError("mode dirty-ring is not enabled, use other method instead.");
    this.info = {
      status: "measured",
      "sample-pages": samplePages ?? DEFAULT_SAMPLE_PAGES,
      "dirty-rate": -1,
      mode,
      "start-time": Math.floor(this.nowSeconds()),
      "calc-time": calcTime,
    };
  }

  /** hmp_info_dirty_rate. */
  report(): string {
    const i = this.info;
    const rate = i.status === "measured" ? `${i["dirty-rate"]} (MB/s)` : "(not ready)";
    return (
      `Status: ${i.status}\nStart Time: ${i["start-time"]} (ms)\nSample Pages: ${i["sample-pages"]} (per GB)\n` +
      `Period: ${i["calc-time"]} (sec)\nMode: ${i.mode}\nDirty rate: ${rate}\n`
    );
  }
}
