/**
 * Removes a secret from text that may echo it (an upstream error body, a network error's
 * message), so it can go into an error message or a log line.
 */

/** The placeholder a redacted secret becomes. */
export const REDACTED = '[REDACTED]';

/**
 * Returns `text` with every occurrence of `secret` replaced by {@link REDACTED}, in its raw,
 * JSON-escaped and URL-encoded spellings (how an upstream body may quote it). An empty or
 * undefined secret leaves the text as it is.
 */
export function redactSecret(text: string, secret: string | undefined): string {
  if (secret === undefined || secret.length === 0) return text;
  const spellings = new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]);
  let out = text;
  for (const s of spellings) out = out.split(s).join(REDACTED);
  return out;
}
