/**
 * A monitor runs on any byte stream through this interface: sockets
 * (./server.ts), stdio and inherited descriptors (src/cli), or an in-process
 * pair (./in-process.ts). `pause`/`resume` are the monitor's flow control:
 * a paused transport delivers no more data until resumed (QEMU's
 * monitor_suspend: input waits in the kernel, nothing is dropped).
 */
import type { Socket } from "node:net";

export interface Transport {
  /**
   * Sends bytes. May return false, like a Node stream, when its buffer is
   * full: the monitor then stops reading input until onDrain fires, so a
   * client that floods without reading cannot grow our memory.
   */
  write(data: string | Uint8Array): boolean | void;
  /** Optional: called when a write that returned false has drained. */
  onDrain?(cb: () => void): void;
  pause(): void;
  resume(): void;
  /** Flushes what was written, then ends the stream. */
  close(): void;
  onData(cb: (chunk: Uint8Array) => void): void;
  /** Called once, when the peer goes away or close() completes. */
  onClose(cb: () => void): void;
}

export interface MonitorOptions {
  /** QEMU's pretty=on: multi-line replies. */
  pretty?: boolean;
  /**
   * Whether the greeting offers "oob". QEMU offers it on monitors served by
   * its I/O thread (socket and stdio chardevs); default true.
   */
  oobCapable?: boolean;
  /** A chardev id for query-yank / yank (e.g. "compat_monitor0"). */
  chardevId?: string;
}

/** Adapts a connected node:net socket (unix, tcp, or one built on an fd). */
export function socketTransport(sock: Socket): Transport {
  sock.setNoDelay?.(true);
  return {
    write: (data) => sock.write(data),
    onDrain: (cb) => void sock.on("drain", cb),
    pause: () => void sock.pause(),
    resume: () => void sock.resume(),
    close: () => {
      // Let queued output reach the peer, then release the descriptor.
      if (!sock.destroyed) sock.end(() => sock.destroy());
    },
    onData: (cb) => void sock.on("data", cb),
    onClose: (cb) => {
      let done = false;
      const once = () => {
        if (!done) {
          done = true;
          cb();
        }
      };
      sock.on("close", once);
      // An abrupt reset (ECONNRESET, EPIPE) is just a disconnect for a monitor.
      sock.on("error", () => sock.destroy());
    },
  };
}
