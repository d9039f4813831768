/**
 * One line of text for a `progress` event, fitted to a terminal's width: a bar and the percent
 * when the event has one, then its message. Pure, so the drawing (terminal.ts) stays simple.
 */

/** What a progress bar shows (the fields of a `progress` event). */
export interface ProgressState {
  percent?: number | undefined;
  message?: string | undefined;
}

/** Widest bar, in cells: long enough to see motion, short enough to leave room for the message. */
const MAX_BAR_CELLS = 30;

/**
 * The bar line for `p` in at most `columns - 1` characters (a line that fills the last column
 * wraps on some terminals, and a wrapped line cannot be redrawn with `\r`), or null when the
 * event has nothing to show (only `data`).
 */
export function renderProgressBar(p: ProgressState, columns: number): string | null {
  const width = Math.max(10, Math.floor(columns) - 1);
  const message = p.message === undefined ? '' : printable(p.message);
  let line: string;
  if (p.percent !== undefined && Number.isFinite(p.percent)) {
    const percent = Math.min(100, Math.max(0, p.percent));
    const label = `${Math.floor(percent)}%`.padStart(4);
    const cells = Math.min(MAX_BAR_CELLS, width - label.length - 3);
    const bar = cells >= 5 ? `[${'#'.repeat(Math.round((percent / 100) * cells)).padEnd(cells, '-')}] ` : '';
    line = `${bar}${label}${message === '' ? '' : ` ${message}`}`;
  } else if (message !== '') {
    line = `... ${message}`;
  } else {
    return null;
  }
  return truncate(line, width);
}

/** Control characters (a newline in a message would break the one-line bar) become spaces. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

function truncate(text: string, width: number): string {
  const chars = Array.from(text);
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join('')}…`;
}
