/**
 * QAPI's socket address types (qapi/sockets.json), shared by the commands that
 * listen or connect: nbd-server-start, migration parameters.
 */
import { bool, enumOf, int, optional, str, struct, union } from "./qapi.ts";

const SocketAddressType = enumOf("SocketAddressType", ["inet", "unix", "vsock", "fd"]);
const InetSocketAddress = struct("InetSocketAddress", {
  host: str(),
  port: str(),
  numeric: optional(bool()),
  to: optional(int("uint16")),
  ipv4: optional(bool()),
  ipv6: optional(bool()),
  "keep-alive": optional(bool()),
  mptcp: optional(bool()),
});
const UnixSocketAddress = struct("UnixSocketAddress", { path: str(), abstract: optional(bool()), tight: optional(bool()) });
const VsockSocketAddress = struct("VsockSocketAddress", { cid: str(), port: str() });
const StringWrapper = struct("String", { str: str() });

export const SocketAddressLegacy = union("SocketAddressLegacy", "type", { type: SocketAddressType }, {
  inet: { data: InetSocketAddress },
  unix: { data: UnixSocketAddress },
  vsock: { data: VsockSocketAddress },
  fd: { data: StringWrapper },
});

export const SocketAddress = union("SocketAddress", "type", { type: SocketAddressType }, {
  inet: InetSocketAddress.entries,
  unix: UnixSocketAddress.entries,
  vsock: VsockSocketAddress.entries,
  fd: StringWrapper.entries,
});

