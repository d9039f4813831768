/**
 * Remembers which execution a run request with an `Idempotency-Key` created, per client, for
 * 24 hours, so a retried request replays that execution instead of running the code twice.
 * The entry is made before the execution exists (a pending promise), so two requests with one
 * key that race each other still share one execution. A key names one request: reusing it for
 * a different one (another session, other code or options) is refused, never answered with the
 * first run. Bounded: at most `maxEntries` keys, the oldest forgotten first.
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../api-error.js';

interface Entry {
  executionID: Promise<string>;
  /** Digest of what the request asked for (see `requestFingerprint`). */
  fingerprint: string;
  at: number;
}

export class IdempotencyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs = 24 * 3600 * 1000,
    private readonly maxEntries = 100_000,
  ) {}

  /**
   * The execution id remembered for this key, or the one `start` creates (remembered at once).
   * `fingerprint` identifies the request (`requestFingerprint`); a remembered key with another
   * fingerprint throws INVALID_REQUEST. `start` failing forgets the key, so a retry can succeed.
   * `isLive` says whether a remembered execution can still be replayed; if not, `start` runs
   * afresh under the same key.
   */
  async resolve(owner: string | null, key: string, fingerprint: string, isLive: (id: string) => boolean | Promise<boolean>, start: () => Promise<string>): Promise<string> {
    const k = `${owner ?? ''}\u0000${key}`;
    const known = this.entries.get(k);
    if (known && Date.now() - known.at <= this.ttlMs) {
      if (known.fingerprint !== fingerprint) {
        throw new ApiError(
          'INVALID_REQUEST',
          'Idempotency-Key: already used within 24 h for a different request (another session, code or options); ' +
            'send a new key for a new request, and the same body to the same session to retry',
        );
      }
      const id = await known.executionID.catch(() => null);
      if (id !== null && (await isLive(id))) return id;
      if (this.entries.get(k) !== known) return this.resolve(owner, key, fingerprint, isLive, start);
    }
    const executionID = start();
    const entry: Entry = { executionID, fingerprint, at: Date.now() };
    this.entries.delete(k);
    this.entries.set(k, entry);
    executionID.catch(() => {
      if (this.entries.get(k) === entry) this.entries.delete(k);
    });
    // Maps iterate in insertion order: the first keys are the oldest.
    for (const old of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(old);
    }
    return executionID;
  }
}

/**
 * A digest of a run request for idempotency: the session and every field of the validated
 * body, with object keys sorted so that field order does not matter. A digest, not the body,
 * is kept: bodies may be megabytes and the cache holds up to `maxEntries` of them.
 */
export function requestFingerprint(sessionID: string, body: object): string {
  return createHash('sha256').update(canonicalJSON([sessionID, body])).digest('base64');
}

/** JSON with object keys in sorted order at every level. */
function canonicalJSON(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJSON(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The `Idempotency-Key` header: 1 to 255 characters, or absent. */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined || v.length === 0 || v.length > 255) {
    throw new ApiError('INVALID_REQUEST', `Idempotency-Key: expected 1 to 255 characters, got ${v?.length ?? 0}`);
  }
  return v;
}
