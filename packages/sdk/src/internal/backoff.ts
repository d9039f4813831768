/**
 * Reconnection delays: exponential backoff with "equal jitter" (half the step fixed, half
 * random), so many clients cut at once by the same failure do not come back in lockstep, while
 * each still waits at least half the step.
 */

/** How a stream reconnects after its connection drops. */
export interface ReconnectOptions {
  /** Consecutive failed attempts before giving up with a ConnectionError (default 8; 0 disables resuming). */
  maxAttempts?: number | undefined;
  /** Step of the first retry, milliseconds (default 250). */
  initialDelayMs?: number | undefined;
  /** Largest step, milliseconds (default 5000). */
  maxDelayMs?: number | undefined;
}

/** {@link ReconnectOptions} with every default filled in. */
export interface ReconnectPolicy {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { maxAttempts: 8, initialDelayMs: 250, maxDelayMs: 5000 };

/** Merges options over the defaults, checking each value (messages name the option). */
export function reconnectPolicy(options: ReconnectOptions | undefined, base: ReconnectPolicy = DEFAULT_RECONNECT): ReconnectPolicy {
  const p: ReconnectPolicy = { ...base };
  if (options?.maxAttempts !== undefined) p.maxAttempts = options.maxAttempts;
  if (options?.initialDelayMs !== undefined) p.initialDelayMs = options.initialDelayMs;
  if (options?.maxDelayMs !== undefined) p.maxDelayMs = options.maxDelayMs;
  if (!Number.isSafeInteger(p.maxAttempts) || p.maxAttempts < 0) {
    throw new RangeError(`reconnect.maxAttempts: expected an integer >= 0, got ${String(p.maxAttempts)}`);
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (!Number.isFinite(p[key]) || p[key] < 0) throw new RangeError(`reconnect.${key}: expected a number of milliseconds >= 0, got ${String(p[key])}`);
  }
  return p;
}

/**
 * The wait before retry number `attempt` (1 for the first retry): the step doubles from
 * `initialDelayMs` up to `maxDelayMs`, and the wait is uniform in [step/2, step].
 * A server's `Retry-After` (seconds) raises it, still capped by `maxDelayMs`.
 */
export function backoffDelay(attempt: number, policy: ReconnectPolicy, random: () => number = Math.random, retryAfterSec?: number): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 30);
  const step = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  const jittered = step / 2 + random() * (step / 2);
  const floor = retryAfterSec === undefined ? 0 : Math.min(policy.maxDelayMs, retryAfterSec * 1000);
  return Math.round(Math.max(jittered, floor));
}
