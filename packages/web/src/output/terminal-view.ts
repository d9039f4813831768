/**
 * The output pane: stdout and stderr as they arrive, with their ANSI colours, one line element
 * per line. A carriage return followed by more text redraws the line in place (as Jupyter
 * does: progress bars that rewrite a line show its latest state); erase-line clears it. Text
 * goes in through text nodes only. Bounded: past `maxLines` the oldest lines leave the page
 * (a note says how many).
 */
import { assertNever } from '../assert-never.js';
import { el } from '../dom/el.js';
import { AnsiParser, type AnsiToken } from './ansi.js';
import { paint, styleKey } from './ansi-style.js';

/** A stream of program output. */
export type Stream = 'stdout' | 'stderr';

interface OpenLine {
  el: HTMLDivElement;
  /** The last span written, to extend while the style and stream stay the same. */
  last: { key: string; text: Text } | null;
  /** A carriage return came: the next text replaces the line. */
  redraw: boolean;
}

export class TerminalView {
  private readonly parsers: Record<Stream, AnsiParser> = { stdout: new AnsiParser(), stderr: new AnsiParser() };
  private line: OpenLine | null = null;
  private lineCount = 0;
  private dropped = 0;
  private droppedNote: HTMLDivElement | null = null;
  private readonly disposers: Array<() => void> = [];

  constructor(
    readonly root: HTMLElement,
    private readonly maxLines = 5000,
  ) {}

  /** Writes a chunk of one stream. */
  write(stream: Stream, chunk: string): void {
    const follow = this.atBottom();
    for (const token of this.parsers[stream].feed(chunk)) this.apply(stream, token);
    if (follow) this.scrollDown();
  }

  /** A line of the page's own (an output limit, a gap, an error): not program output. */
  note(text: string, className = 'note'): void {
    this.block(el('div', { className: `line ${className}`, text }));
  }

  /** A block (a result) after the output so far; `dispose` runs when the pane is cleared. */
  block(node: HTMLElement, dispose?: () => void): void {
    const follow = this.atBottom();
    this.line = null;
    this.root.append(node);
    this.count();
    if (dispose) this.disposers.push(dispose);
    if (follow) this.scrollDown();
  }

  /** Empties the pane and forgets any unfinished escape sequence. */
  clear(): void {
    for (const d of this.disposers.splice(0)) d();
    this.root.replaceChildren();
    this.parsers.stdout = new AnsiParser();
    this.parsers.stderr = new AnsiParser();
    this.line = null;
    this.lineCount = 0;
    this.dropped = 0;
    this.droppedNote = null;
  }

  private apply(stream: Stream, token: AnsiToken): void {
    switch (token.kind) {
      case 'text': {
        const line = this.openLine();
        if (line.redraw) {
          line.el.replaceChildren();
          line.last = null;
          line.redraw = false;
        }
        const key = `${stream}|${styleKey(token.style)}`;
        if (line.last?.key === key) {
          line.last.text.appendData(token.text);
        } else {
          const text = document.createTextNode(token.text);
          const span = el('span', { className: stream });
          paint(span, token.style);
          span.append(text);
          line.el.append(span);
          line.last = { key, text };
        }
        break;
      }
      case 'newline':
        this.openLine();
        this.line = null;
        break;
      case 'carriage-return':
        this.openLine().redraw = true;
        break;
      case 'erase-line': {
        // Only whole-line erasure is kept apart from a redraw: the cursor column is not modelled.
        const line = this.openLine();
        if (token.mode === 0 && !line.redraw) break;
        line.el.replaceChildren();
        line.last = null;
        break;
      }
      default:
        assertNever(token, 'ANSI token');
    }
  }

  private openLine(): OpenLine {
    if (this.line) return this.line;
    const div = el('div', { className: 'line' });
    this.root.append(div);
    this.line = { el: div, last: null, redraw: false };
    this.count();
    return this.line;
  }

  /** Counts a new line or block and drops the oldest past the bound. */
  private count(): void {
    this.lineCount++;
    while (this.lineCount > this.maxLines) {
      const first = this.droppedNote ? this.droppedNote.nextElementSibling : this.root.firstElementChild;
      if (!first) break;
      first.remove();
      this.lineCount--;
      this.dropped++;
    }
    if (this.dropped > 0) {
      this.droppedNote ??= el('div', { className: 'line note' });
      if (this.root.firstElementChild !== this.droppedNote) this.root.prepend(this.droppedNote);
      this.droppedNote.textContent = `… ${this.dropped} earlier line${this.dropped === 1 ? '' : 's'} not shown (the page keeps the last ${this.maxLines})`;
    }
  }

  private atBottom(): boolean {
    return this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 24;
  }

  private scrollDown(): void {
    this.root.scrollTop = this.root.scrollHeight;
  }
}
