/** Puts an {@link AnsiStyle} on a span: classes for the 16 named colours, CSSOM colours for RGB (allowed under the page's CSP). */
import type { AnsiColour, AnsiStyle } from './ansi.js';

/** A key that is equal for equal styles, so adjacent text of one style shares a span. */
export function styleKey(style: AnsiStyle): string {
  const c = (x: AnsiColour | null): string => (x === null ? '-' : x.kind === 'named' ? String(x.index) : `${x.r},${x.g},${x.b}`);
  return `${c(style.fg)}/${c(style.bg)}/${Number(style.bold)}${Number(style.dim)}${Number(style.italic)}${Number(style.underline)}${Number(style.inverse)}`;
}

/** Applies `style` to `span`. */
export function paint(span: HTMLElement, style: AnsiStyle): void {
  let fg = style.fg;
  let bg = style.bg;
  // Inverse video: the terminal's default colours stand in for the unset ones.
  if (style.inverse) [fg, bg] = [bg ?? { kind: 'named', index: 0 }, fg ?? { kind: 'named', index: 7 }];
  if (fg !== null) {
    if (fg.kind === 'named') span.classList.add(`ansi-fg-${fg.index}`);
    else span.style.color = `rgb(${fg.r}, ${fg.g}, ${fg.b})`;
  }
  if (bg !== null) {
    if (bg.kind === 'named') span.classList.add(`ansi-bg-${bg.index}`);
    else span.style.backgroundColor = `rgb(${bg.r}, ${bg.g}, ${bg.b})`;
  }
  if (style.bold) span.classList.add('ansi-bold');
  if (style.dim) span.classList.add('ansi-dim');
  if (style.italic) span.classList.add('ansi-italic');
  if (style.underline) span.classList.add('ansi-underline');
}
