/**
 * A command-line error: printed as `<prog>: <location>: <message>` (QEMU's
 * error_report with the option as location) and exit status 1.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly more: {
      /** Further messages QEMU reports at the same location. */
      located?: string[];
      /** Hint lines printed as they are (no prefix). */
      hints?: string[];
    } = {},
  ) {
    super(message);
    this.name = "CliError";
  }

  /** The full text QEMU writes to stderr, without the final newline. */
  format(prefix: string): string {
    return [
      ...[this.message, ...(this.more.located ?? [])].map((m) => `${prefix}${m}`),
      ...(this.more.hints ?? []),
    ].join("\n");
  }
}
