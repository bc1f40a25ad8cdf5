/**
 * The anonymous bitmaps QEMU's backup keeps while it runs, as
 * query-named-block-nodes shows them (the frozen bitmap's successor is the
 * block layer's): on the source, block-copy's bitmap of clusters still to copy; on the copy-before-write filter, its "access"
 * (whole disk) and "done" (copied before a guest write) bitmaps. They are
 * views: counts come from the live objects, nothing records through them.
 */
import { DirtyBitmap } from "../bitmap.ts";
import type { BlockNode } from "../index.ts";

class BitmapView extends DirtyBitmap {
  constructor(
    length: number,
    granularity: number,
    private readonly countNow: () => number,
    private readonly recordingNow: () => boolean = () => false,
  ) {
    super("", granularity, length, { enabled: false });
  }
  override count(): number {
    return this.countNow();
  }
  override get recording(): boolean {
    return this.recordingNow();
  }
  override markWrite(): void {}
  override info(): Record<string, unknown> {
    const { name: _anonymous, ...rest } = super.info();
    return { ...rest, recording: this.recording, count: this.count() };
  }
}

/** Shows `views` first in `node`'s list (QEMU lists the newest first); returns their removal. */
function show(node: BlockNode, views: DirtyBitmap[]): () => void {
  node.bitmaps.unshift(...views);
  return () => {
    for (const v of views) {
      const i = node.bitmaps.indexOf(v);
      if (i >= 0) node.bitmaps.splice(i, 1);
    }
  };
}

export function showCopyBitmap(source: BlockNode, clusterSize: number, remaining: () => number): () => void {
  return show(source, [new BitmapView(source.size(), clusterSize, remaining)]);
}

export function showFilterBitmaps(filter: BlockNode, clusterSize: number, doneBytes: () => number): () => void {
  const length = filter.size();
  return show(filter, [new BitmapView(length, clusterSize, () => length), new BitmapView(length, clusterSize, doneBytes)]);
}
