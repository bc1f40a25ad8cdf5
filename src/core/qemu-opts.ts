/**
 * QEMU's QemuOpts syntax (-chardev, -mon, -drive, -name, -machine...): `key=value,...`,
 * where `,,` stands for a literal comma, a bare first item is the "implied"
 * key's value, a bare `flag` means `flag=on` and `noflag` means `flag=off`
 * (both deprecated short forms), and `help` / `?` asks for help.
 *
 * The order of pairs is kept: QEMU lets a later duplicate win.
 */
export interface QemuOpts {
  /** Pairs in command-line order; duplicates are kept (the last one wins on lookup). */
  pairs: [string, string][];
  /** `help` or `?` appeared as an item. */
  help: boolean;
}

/** Splits at single commas; `,,` is an escaped comma. */
export function splitOptItems(text: string): string[] {
  const items: string[] = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === ",") {
      if (text[i + 1] === ",") {
        cur += ",";
        i++;
        continue;
      }
      items.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  items.push(cur);
  return items;
}

/** Splits one item at its first `=` (QEMU reads the key up to `=` or `,`). */
function splitPair(item: string): [string, string | undefined] {
  const eq = item.indexOf("=");
  return eq < 0 ? [item, undefined] : [item.slice(0, eq), item.slice(eq + 1)];
}

/**
 * Warnings raised while parsing (short-form booleans), collected by the
 * caller around a synchronous parse: see withWarnings().
 */
let warningSink: string[] | undefined;

/** Runs `fn`, returning what it returned plus the warnings QemuOpts parsing raised. */
export function withWarnings<T>(fn: () => T): { value: T; warnings: string[] } {
  const outer = warningSink;
  const warnings: string[] = [];
  warningSink = warnings;
  try {
    return { value: fn(), warnings };
  } finally {
    warningSink = outer;
  }
}

function shortForm(item: string, key: string, value: string): void {
  warningSink?.push(`warning: short-form boolean option '${item}' deprecated\nPlease use ${key}=${value} instead`);
}

export function parseQemuOpts(text: string, impliedKey?: string): QemuOpts {
  const pairs: [string, string][] = [];
  let help = false;
  const items = splitOptItems(text);
  // A trailing comma leaves an empty last item, which QEMU ignores.
  if (items.length > 1 && items[items.length - 1] === "") items.pop();
  items.forEach((item, i) => {
    const [key, value] = splitPair(item);
    if (value !== undefined) {
      pairs.push([key, value]);
    } else if (key === "help" || key === "?") {
      help = true;
    } else if (i === 0 && impliedKey) {
      pairs.push([impliedKey, key]);
    } else if (key.startsWith("no") && key.length > 2) {
      shortForm(key, key.slice(2), "off");
      pairs.push([key.slice(2), "off"]);
    } else {
      shortForm(key, key, "on");
      pairs.push([key, "on"]);
    }
  });
  return { pairs, help };
}

/** Last value of `key` (QEMU's qemu_opt_get: later duplicates win). */
export function optGet(opts: QemuOpts, key: string): string | undefined {
  for (let i = opts.pairs.length - 1; i >= 0; i--) if (opts.pairs[i][0] === key) return opts.pairs[i][1];
  return undefined;
}
