/**
 * Every character device of one emulator, by id: the monitors' (which the
 * command line made and which a monitor holds) and those chardev-add made.
 * Insertion order is creation order, the order QEMU's yank instances
 * keep; query-chardev's order is the QOM container's, kept by the caller.
 */
import type { Chardev } from "./backends.ts";

export interface MonitorChardev {
  id: string;
  filename: string;
}

export class ChardevRegistry {
  private readonly devs = new Map<string, Chardev>();
  private seeded = false;

  constructor(
    private readonly monitorChardevs: () => readonly MonitorChardev[],
    private readonly stdioMonitor: () => boolean,
  ) {}

  /** The monitors' chardevs enter on first use: the options are read after construction. */
  private seed(): void {
    if (this.seeded) return;
    this.seeded = true;
    for (const m of this.monitorChardevs()) {
      this.devs.set(m.id, {
        id: m.id,
        kind: "socket",
        typename: "chardev-socket",
        filename: () => m.filename,
        frontendOpen: true,
        busy: true,
        pinned: true,
        isMux: false,
        // The monitor's listener answers for its yank instance.
        yankable: false,
        close: async () => {},
      });
    }
  }

  get(id: string): Chardev | undefined {
    this.seed();
    return this.devs.get(id);
  }

  add(dev: Chardev): void {
    this.seed();
    this.devs.set(dev.id, dev);
  }

  /** Forgets and closes it. */
  async remove(id: string): Promise<void> {
    const dev = this.get(id);
    this.devs.delete(id);
    await dev?.close();
  }

  stdioInUse(): boolean {
    this.seed();
    return this.stdioMonitor() || [...this.devs.values()].some((d) => d.kind === "stdio");
  }

  /** Ids of the added chardevs that registered a yank instance, in creation order. */
  yankIds(): string[] {
    return [...this.devs.values()].filter((d) => d.yankable).map((d) => d.id);
  }

  yank(id: string): void {
    this.devs.get(id)?.socket?.kick();
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.devs.keys()]) await this.remove(id);
  }
}
