/** Serialises async operations on one image (metadata is shared state). */
export class AsyncLock {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  run<T>(fn: () => Promise<T>): Promise<T> {
    // Uncontended, fn starts at once instead of a microtask later: the
    // common case of one request at a time pays for no extra promise hop.
    let result: Promise<T>;
    if (this.queued > 0) result = this.tail.then(fn);
    else {
      try {
        result = fn();
      } catch (e) {
        result = Promise.reject(e);
      }
    }
    this.queued++;
    const done = () => void this.queued--;
    this.tail = result.then(done, done);
    return result;
  }
}
