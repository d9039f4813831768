/** Picks the response format of a run or events request from its `Accept` header. */

export type StreamFormat = 'sse' | 'ndjson';
export type ResponseFormat = StreamFormat | 'json';

const TYPES: Record<string, ResponseFormat> = {
  'text/event-stream': 'sse',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'application/json': 'json',
};

/**
 * The acceptable format with the highest q-value (ties go to the earliest listed);
 * `fallback` when the header names none of ours (absent, `*\/*`, …).
 */
export function negotiate(accept: string | undefined, fallback: ResponseFormat): ResponseFormat {
  if (!accept) return fallback;
  let best: { format: ResponseFormat; q: number } | null = null;
  for (const part of accept.split(',')) {
    const [rawType, ...params] = part.split(';');
    const format = TYPES[(rawType ?? '').trim().toLowerCase()];
    if (!format) continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (q > 0 && (!best || q > best.q)) best = { format, q };
  }
  return best?.format ?? fallback;
}
