/**
 * A `result` event's data (MIME type → value) as one element, richest type first. None of it is
 * put into the page as markup: raster images are `data:` URLs in an `<img>`; SVG too (an image
 * document runs no script; and not a `blob:` URL, which has this page's origin: opened in a tab
 * of its own, its scripts would run as this origin, outside the CSP); HTML is the `srcdoc`
 * of an iframe with an empty `sandbox` (no scripts, an opaque origin: it cannot read this page,
 * its sessionStorage key or cookies, and the page's CSP, which it inherits, keeps it off the
 * network); JSON is a collapsible tree; text is text.
 */
import { el } from '../dom/el.js';
import { jsonTree } from './json-tree.js';

/** A rendered result and what frees it (blob URLs). */
export interface RenderedResult {
  node: HTMLElement;
  dispose(): void;
}

const RASTER = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'] as const;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Renders `data`; an unknown set of types shows as its JSON. */
export function renderResult(data: Record<string, unknown>): RenderedResult {
  const box = el('div', { className: 'result' });
  const none = (): void => undefined;
  for (const type of RASTER) {
    const v = data[type];
    if (typeof v === 'string' && BASE64.test(v.replace(/\s+/g, ''))) {
      box.append(el('img', { attrs: { src: `data:${type};base64,${v.replace(/\s+/g, '')}`, alt: altText(data, 'image') } }));
      return { node: box, dispose: none };
    }
  }
  const svg = data['image/svg+xml'];
  if (typeof svg === 'string') {
    box.append(el('img', { attrs: { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`, alt: altText(data, 'SVG image') } }));
    return { node: box, dispose: none };
  }
  const html = data['text/html'];
  if (typeof html === 'string') {
    const frame = el('iframe', { attrs: { sandbox: '', title: 'HTML result (sandboxed)', referrerpolicy: 'no-referrer' } });
    frame.srcdoc = html;
    box.append(frame);
    return { node: box, dispose: none };
  }
  if ('application/json' in data) {
    box.append(jsonTree(data['application/json']));
    return { node: box, dispose: none };
  }
  const text = data['text/markdown'] ?? data['text/plain'];
  if (typeof text === 'string') {
    box.append(el('pre', { text }));
    return { node: box, dispose: none };
  }
  box.append(jsonTree(data));
  return { node: box, dispose: none };
}

/** The result's `text/plain` (e.g. `<Figure size 640x480 with 1 Axes>`) as the image's alternative text. */
function altText(data: Record<string, unknown>, fallback: string): string {
  const t = data['text/plain'];
  return typeof t === 'string' && t !== '' ? t : fallback;
}
