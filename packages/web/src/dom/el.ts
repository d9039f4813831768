/**
 * Builds DOM elements. Text always goes in through `textContent`: nothing here (or anywhere in
 * the playground) turns a string into markup, so program output and model text stay text.
 */

/** Properties `el()` sets: a class, text, attributes and children. */
export interface ElementSpec {
  className?: string;
  text?: string;
  attrs?: Record<string, string>;
  children?: ReadonlyArray<Node>;
}

/** A new `<tag>` with `spec` applied. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, spec: ElementSpec = {}): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (spec.className !== undefined) node.className = spec.className;
  if (spec.text !== undefined) node.textContent = spec.text;
  for (const [name, value] of Object.entries(spec.attrs ?? {})) node.setAttribute(name, value);
  for (const child of spec.children ?? []) node.append(child);
  return node;
}
