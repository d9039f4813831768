/**
 * Whether a request for `GET /` wants the playground page rather than the JSON endpoint list:
 * only when its `Accept` names `text/html` with a q-value above zero and at least that of
 * `application/json`. No `Accept`, `*\/*` alone, or JSON first keep the JSON (what the SDK, the
 * CLI, curl and scripts send), so existing clients see no change.
 */
export function wantsHTML(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [rawType, ...params] = part.split(';');
    const type = (rawType ?? '').trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, q);
    else if (type === 'application/json') json = Math.max(json, q);
  }
  return html > 0 && html >= json;
}
