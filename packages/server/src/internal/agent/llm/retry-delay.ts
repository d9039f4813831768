/**
 * How long to wait before the next attempt of a model call: the endpoint's own `Retry-After`
 * when it sent one, otherwise exponential backoff with jitter.
 */

/** Bounds of the retry loop; every field has a default. */
export interface RetryOptions {
  /** Attempts in all, including the first (default 3; 1 disables retries). */
  maxAttempts?: number;
  /** Delay before the second attempt, doubled for each later one (default 500 ms). */
  baseDelayMs?: number;
  /** Longest backoff delay (default 8 s). */
  maxDelayMs?: number;
  /** Longest `Retry-After` honoured; an endpoint asking for more is not retried (default 60 s). */
  maxRetryAfterMs?: number;
}

/** {@link RetryOptions} with the defaults filled in. */
export type RetryPolicy = Required<RetryOptions>;

/** The defaults of {@link RetryOptions}. */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 500, maxDelayMs: 8000, maxRetryAfterMs: 60_000 };

/** Fills in defaults and checks each bound, naming the option that is wrong. */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...options };
  for (const [name, value] of Object.entries(p)) {
    const min = name === 'maxAttempts' ? 1 : 0;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(`retry.${name} must be an integer >= ${min}, got ${String(value)}`);
    }
  }
  return p;
}

/** Backoff before attempt `attempt + 1` (attempt counts from 1): half to all of `base * 2^(attempt-1)`, capped. */
export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const full = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(full * (0.5 + random() / 2));
}

/**
 * The wait an endpoint asks for, in milliseconds: `retry-after-ms` (OpenAI's), else
 * `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable.
 */
export function parseRetryAfterMs(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
