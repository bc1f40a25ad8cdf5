/** glibc's strerror() texts for what opening files and sockets commonly fails with. */
const STRERROR: Record<string, string> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long",
  ENXIO: "No such device or address",
  EROFS: "Read-only file system",
  ECONNREFUSED: "Connection refused",
  ECONNRESET: "Connection reset by peer",
  EADDRINUSE: "Address already in use",
  EADDRNOTAVAIL: "Cannot assign requested address",
  ENETUNREACH: "Network is unreachable",
  EHOSTUNREACH: "No route to host",
  ETIMEDOUT: "Connection timed out",
  EINVAL: "Invalid argument",
  ENOTSOCK: "Socket operation on non-socket",
  EAFNOSUPPORT: "Address family not supported by protocol",
};

export function strerror(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return STRERROR[code] ?? (e as Error).message;
}
