/**
 * `Idempotency-Key` across API nodes, with internal/http/idempotency-cache.ts's semantics: a
 * retried run request replays the execution the first one created (24 h), a different request
 * under the same key is refused, and a duplicate arriving while the first is still starting
 * waits for its execution id instead of running the code twice.
 *
 * Key `idem:<o>:<key>` (RedisConnection.key), JSON `{fingerprint, execution_id, claim}`:
 *   - while the first request starts its execution: `execution_id` null, `claim` its random
 *     token, TTL `pendingMs` (60 s), so a node that died meanwhile does not hold the key for a day;
 *   - then the id, TTL 24 h.
 * Only the claimant (compare-and-set on `claim`) may set the id or give the key up. Once its
 * execution may have started it never gives the key up: a start that failed with OutcomeUnknown
 * (inbox.ts) still records its execution id, and setting the id is retried through a Redis blip.
 * Every Redis call is bounded: Redis down, paused or half-open answers SANDBOX_UNAVAILABLE.
 */
import { ApiError } from '../api-error.js';
import { OutcomeUnknown } from './inbox.js';
import { within, type RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';
import { randomBase64url } from '@sluice/sandbox';

interface Stored {
  fingerprint: string;
  execution_id: string | null;
  claim: string;
}

/**
 * Compare-and-set on the JSON value. KEYS: key. ARGV: expected value ('' = must not exist),
 * new value ('' = delete), ttl ms. Returns 1 when set, 0 when the value was not the expected one.
 */
const CAS = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

/** One Redis call's bound, ms. */
const CALL_MS = 5000;
/** How long the execution id is retried into the key once the execution started, ms. */
const RECORD_MS = 10_000;

export class RedisIdempotency {
  private readonly ttlMs: number;
  private readonly pendingMs: number;

  constructor(
    private readonly conn: RedisConnection,
    opts: {
      /** How long a key is remembered, ms. 24 h. */
      ttlMs?: number;
      /** How long a first request may take to get its execution id before a duplicate takes over, ms. 60 000. */
      pendingMs?: number;
    } = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 24 * 3600 * 1000;
    this.pendingMs = opts.pendingMs ?? 60_000;
  }

  /**
   * The execution id remembered for this key, or the one `start` creates (claimed first, so a
   * concurrent duplicate on any node waits for it). A remembered key with another `fingerprint`
   * (requestFingerprint) throws INVALID_REQUEST. `start` failing gives the key up, so a retry can
   * succeed. `isLive` says whether a remembered execution can still be replayed; if not, `start`
   * runs afresh under the same key. `signal` ends a wait.
   */
  async resolve(
    owner: string | null,
    key: string,
    fingerprint: string,
    isLive: (id: string) => boolean | Promise<boolean>,
    start: () => Promise<string>,
    signal?: AbortSignal,
  ): Promise<string> {
    const k = this.conn.key(`idem:${this.conn.ownerPart(owner)}:${key}`);
    for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
      signal?.throwIfAborted();
      const raw = await this.call(() => this.conn.writer.get(k));
      const known = raw === null ? null : parse(raw);
      if (known && known.fingerprint !== fingerprint) {
        throw new ApiError(
          'INVALID_REQUEST',
          'Idempotency-Key: already used within 24 h for a different request (another session, code or options); ' +
            'send a new key for a new request, and the same body to the same session to retry',
        );
      }
      if (known && known.execution_id === null) {
        // Another request is starting it: wait for its id (or for it to give the key up).
        await sleep(wait, signal);
        continue;
      }
      if (known && known.execution_id !== null && (await isLive(known.execution_id))) return known.execution_id;
      // Nothing usable: claim the key (replacing a dead execution's entry), then start.
      const claim = randomBase64url(12);
      const pending = JSON.stringify({ fingerprint, execution_id: null, claim } satisfies Stored);
      if ((await this.call(() => runScript(this.conn.writer, CAS, [k], [raw ?? '', pending, this.pendingMs]))) !== 1) continue;
      let id: string;
      try {
        id = await start();
      } catch (err) {
        // It may have started: a retry must find its id, not start another.
        if (err instanceof OutcomeUnknown && err.executionID !== undefined) await this.record(k, pending, fingerprint, err.executionID, claim).catch(() => {});
        else await this.call(() => runScript(this.conn.writer, CAS, [k], [pending, '', 0])).catch(() => {});
        throw err;
      }
      // The execution runs: its id is the answer even when Redis does not take it now (the
      // pending key then lapses in `pendingMs`, and the request still gets its execution).
      await this.record(k, pending, fingerprint, id, claim).catch(() => {});
      return id;
    }
  }

  /** Sets the key from `pending` to `id`, retried for RECORD_MS (a blip, a reply lost after it was made). */
  private async record(k: string, pending: string, fingerprint: string, id: string, claim: string): Promise<void> {
    const done = JSON.stringify({ fingerprint, execution_id: id, claim } satisfies Stored);
    const until = Date.now() + RECORD_MS;
    for (let wait = 25; ; wait = Math.min(wait * 2, 1000)) {
      try {
        const r = await within(Math.max(1, Math.min(CALL_MS, until - Date.now())), this.conn.writer, () => runScript(this.conn.writer, CAS, [k], [pending, done, this.ttlMs]));
        // 0: not `pending` any more; done when an earlier attempt made it (its reply was lost).
        if (r === 1 || (await within(CALL_MS, this.conn.writer, () => this.conn.writer.get(k))) === done) return;
        throw new TakenOver();
      } catch (err) {
        if (err instanceof TakenOver) throw err;
        if (Date.now() + wait >= until) throw err;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /** A Redis call, bounded; a failure is SANDBOX_UNAVAILABLE (never a 500, never a hang). */
  private async call<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await within(CALL_MS, this.conn.writer, op);
    } catch (err) {
      throw new ApiError('SANDBOX_UNAVAILABLE', `Redis is not reachable (Idempotency-Key): ${err instanceof Error ? err.message : String(err)}; retry shortly`, { retryAfter: 5 });
    }
  }
}

function parse(raw: string): Stored | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  const id = r['execution_id'];
  if (typeof r['fingerprint'] !== 'string' || typeof r['claim'] !== 'string' || (id !== null && typeof id !== 'string')) return null;
  return { fingerprint: r['fingerprint'], execution_id: id, claim: r['claim'] };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The key no longer holds this request's pending claim: another request owns it now. */
class TakenOver extends Error {
  override readonly name = 'TakenOver';
  constructor() {
    super('the Idempotency-Key was taken over');
  }
}
