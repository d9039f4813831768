/**
 * A JSON value as a collapsible tree: objects and arrays are `<details>` (open for the first
 * levels), leaves are text. Bounded in depth and in entries per level, so a huge value cannot
 * stall the page.
 */
import { el } from '../dom/el.js';

const MAX_DEPTH = 40;
const MAX_ENTRIES = 500;
const OPEN_LEVELS = 2;

/** The tree of `value`. */
export function jsonTree(value: unknown): HTMLElement {
  const root = el('div', { className: 'json-tree' });
  root.append(node(value, 0));
  return root;
}

function node(value: unknown, depth: number): Node {
  if (value === null) return el('span', { className: 'null', text: 'null' });
  if (typeof value === 'string') return el('span', { className: 'string', text: JSON.stringify(value) });
  if (typeof value === 'number') return el('span', { className: 'number', text: String(value) });
  if (typeof value === 'boolean') return el('span', { className: 'boolean', text: String(value) });
  if (typeof value !== 'object') return el('span', { text: String(value) });
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const open = Array.isArray(value) ? '[' : '{';
  const close = Array.isArray(value) ? ']' : '}';
  if (entries.length === 0) return el('span', { text: `${open}${close}` });
  if (depth >= MAX_DEPTH) return el('span', { text: `${open}… ${entries.length} entries${close}` });
  const details = el('details');
  details.open = depth < OPEN_LEVELS;
  details.append(el('summary', { text: `${open} ${entries.length} ${Array.isArray(value) ? 'items' : 'keys'}` }));
  for (const [key, v] of entries.slice(0, MAX_ENTRIES)) {
    const row = el('div', { className: 'entry' });
    row.append(el('span', { className: 'key', text: Array.isArray(value) ? `${key}: ` : `${JSON.stringify(key)}: ` }), node(v, depth + 1));
    details.append(row);
  }
  if (entries.length > MAX_ENTRIES) details.append(el('div', { className: 'entry', text: `… ${entries.length - MAX_ENTRIES} more` }));
  details.append(el('span', { text: close }));
  return details;
}
