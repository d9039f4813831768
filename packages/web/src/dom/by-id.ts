/** Typed access to the page's fixed elements (static/index.html). */

/** The element with id `id`, checked to be a `type`; throws naming both when the page differs. */
export function byID<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`playground page: #${id} is missing or not a ${type.name}`);
  return el;
}
