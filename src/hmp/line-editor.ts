/**
 * The monitor's line editor, byte by byte, as QEMU's readline drives a
 * terminal on a chardev: every keystroke is echoed by redrawing the line
 * (cursor back over the old text, the new text, erase to end of line, then
 * cursor to its column), so a raw byte transcript matches QEMU's.
 *
 * Bytes, not characters: the buffer holds what was typed, and the line is
 * decoded only when Enter hands it over.
 */

/** QEMU's READLINE_CMD_BUF_SIZE: longer input is dropped. */
const LINE_MAX = 4096;
/** QEMU's READLINE_MAX_CMDS: history entries kept. */
const HISTORY_MAX = 64;

const CURSOR_LEFT = "\x1b[D";
const CURSOR_RIGHT = "\x1b[C";
const ERASE_TO_EOL = "\x1b[K";
const CLEAR_SCREEN = "\x1b[2J\x1b[1;1H";

type EscState = "norm" | "esc" | "csi" | "ss3";

export class LineEditor {
  private buf: number[] = [];
  private cursor = 0;
  /** What the terminal shows now (QEMU's last_cmd_buf / last_cmd_buf_index). */
  private shown: number[] = [];
  private shownCursor = 0;
  private esc: EscState = "norm";
  private escParam = 0;
  private readonly history: string[] = [];
  /** Index into history while browsing it, -1 when editing a fresh line. */
  private histEntry = -1;

  constructor(private readonly prompt: string) {}

  /** The prompt was just printed: the terminal line is empty. */
  promptShown(): void {
    this.shown = [];
    this.shownCursor = 0;
    this.esc = "norm";
  }

  /**
   * Feeds one byte; returns the echo to write (one byte per char, latin1)
   * and, on Enter, the line.
   */
  key(ch: number): { echo: string; line?: string } {
    let line: string | undefined;
    let echo = "";
    switch (this.esc) {
      case "norm":
        switch (ch) {
          case 1:
            this.cursor = 0;
            break;
          case 4:
            this.deleteChar();
            break;
          case 5:
            this.cursor = this.buf.length;
            break;
          case 12:
            // Ctrl-L: clear the screen, home the cursor, prompt; the line is redrawn below.
            echo += CLEAR_SCREEN + this.prompt;
            this.promptShown();
            break;
          case 10:
          case 13:
            line = Buffer.from(this.buf).toString("utf8");
            this.addHistory(line);
            echo += "\r\n";
            this.buf = [];
            this.cursor = 0;
            this.shown = [];
            this.shownCursor = 0;
            break;
          case 14:
            this.historyDown();
            break;
          case 16:
            this.historyUp();
            break;
          case 23:
            this.deleteWord();
            break;
          case 27:
            this.esc = "esc";
            break;
          case 8:
          case 127:
            if (this.cursor > 0) {
              this.cursor--;
              this.deleteChar();
            }
            break;
          case 155:
            this.esc = "csi";
            this.escParam = 0;
            break;
          default:
            // Tab (completion) and the other control characters are ignored.
            if (ch >= 32) this.insert(ch);
        }
        break;
      case "esc":
        this.esc = ch === 0x5b ? "csi" : ch === 0x4f ? "ss3" : "norm";
        this.escParam = 0;
        break;
      case "csi":
        if (ch >= 0x30 && ch <= 0x39) {
          this.escParam = this.escParam * 10 + (ch - 0x30);
          return { echo: "" };
        }
        this.csi(String.fromCharCode(ch));
        this.esc = "norm";
        break;
      case "ss3":
        if (ch === 0x46) this.cursor = this.buf.length;
        else if (ch === 0x48) this.cursor = 0;
        this.esc = "norm";
        break;
    }
    echo += this.redraw();
    return line === undefined ? { echo } : { echo, line };
  }

  private csi(final: string): void {
    switch (final) {
      // QEMU 7.2 takes CSI F and E as history keys too (not End / next line).
      case "A":
      case "F":
        this.historyUp();
        break;
      case "B":
      case "E":
        this.historyDown();
        break;
      case "C":
        if (this.cursor < this.buf.length) this.cursor++;
        break;
      case "D":
        if (this.cursor > 0) this.cursor--;
        break;
      case "~":
        if (this.escParam === 1) this.cursor = 0;
        else if (this.escParam === 3) this.deleteChar();
        else if (this.escParam === 4) this.cursor = this.buf.length;
        break;
    }
  }

  private insert(ch: number): void {
    if (this.buf.length >= LINE_MAX) return;
    this.buf.splice(this.cursor++, 0, ch);
  }

  private deleteChar(): void {
    if (this.cursor < this.buf.length) this.buf.splice(this.cursor, 1);
  }

  /** Ctrl-W: the word before the cursor, and the blanks after it. */
  private deleteWord(): void {
    if (this.cursor === 0) return;
    const blank = (c: number) => c === 32 || (c >= 9 && c <= 13);
    let start = this.cursor - 1;
    while (start >= 0 && blank(this.buf[start]!)) start--;
    while (start >= 0 && !blank(this.buf[start]!)) start--;
    start++;
    this.buf.splice(start, this.cursor - start);
    this.cursor = start;
  }

  private addHistory(line: string): void {
    this.histEntry = -1;
    if (!line) return;
    const i = this.history.indexOf(line);
    if (i >= 0) this.history.splice(i, 1);
    else if (this.history.length === HISTORY_MAX) this.history.shift();
    this.history.push(line);
  }

  private historyUp(): void {
    if (this.histEntry === 0) return;
    if (this.histEntry === -1) this.histEntry = this.history.length;
    this.histEntry--;
    if (this.histEntry >= 0) this.load(this.history[this.histEntry]!);
  }

  private historyDown(): void {
    if (this.histEntry === -1) return;
    this.histEntry++;
    if (this.histEntry < this.history.length) {
      this.load(this.history[this.histEntry]!);
    } else {
      this.load("");
      this.histEntry = -1;
    }
  }

  private load(line: string): void {
    this.buf = [...Buffer.from(line, "utf8")].slice(0, LINE_MAX);
    this.cursor = this.buf.length;
  }

  /** What the terminal needs to show the buffer and the cursor. */
  private redraw(): string {
    let out = "";
    const same = this.shown.length === this.buf.length && this.shown.every((c, i) => c === this.buf[i]);
    if (!same) {
      out += CURSOR_LEFT.repeat(this.shownCursor) + Buffer.from(this.buf).toString("latin1") + ERASE_TO_EOL;
      this.shown = [...this.buf];
      this.shownCursor = this.buf.length;
    }
    const delta = this.cursor - this.shownCursor;
    out += (delta > 0 ? CURSOR_RIGHT : CURSOR_LEFT).repeat(Math.abs(delta));
    this.shownCursor = this.cursor;
    return out;
  }
}
