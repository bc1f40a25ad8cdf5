/**
 * Scalars as QEMU's keyval visitor reads them from option strings
 * (-blockdev a=b, -object x=y): booleans spelled on/off and friends,
 * integers by qemu_strtoi64 (base 0) and sizes by qemu_strtosz.
 */
export const KEYVAL_TRUE: ReadonlySet<string> = new Set(["on", "yes", "true", "y"]);
export const KEYVAL_FALSE: ReadonlySet<string> = new Set(["off", "no", "false", "n"]);

/** The number a keyval string spells, or undefined when it spells none. */
export function parseKeyvalNumber(s: string, size: boolean): number | undefined {
  if (!size) {
    const m = /^(-?)(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)$/i.exec(s.trim());
    if (!m) return undefined;
    const t = m[2]!.toLowerCase();
    const v = t.startsWith("0x") ? parseInt(t, 16) : t.length > 1 && t.startsWith("0") ? parseInt(t, 8) : Number(t);
    return m[1] ? -v : v;
  }
  const m = /^(0x[0-9a-f]+|\d+(?:\.\d+)?)([kmgtpe]?)b?$/i.exec(s.trim());
  if (!m) return undefined;
  const base = m[1]!.toLowerCase().startsWith("0x") ? parseInt(m[1]!, 16) : Number(m[1]);
  const shift = m[2] ? "kmgtpe".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.floor(base * 2 ** (10 * shift));
}
