/**
 * Admission caps counted in Redis, so that every API node enforces the same ones: sessions per
 * owner and in total (counted from session-registry's indexes, checked atomically by its claim),
 * and sandbox slots per owner and in total. The limits and messages are SessionManager's.
 *
 * A slot is what SessionManager counts as running: a session with at least one execution queued
 * or running holds one slot, however many it has queued. Keys (RedisConnection.key):
 *   - `slot:<o>:<sid>`: ZSET of the session's executions queued or running, score = when each
 *     lapses (Redis ms): `pendingMs` (2 min) from acquire, renewed by its worker while it holds
 *     it (renew), so a node that died between acquire and release leaves one member that lapses
 *     on its own, and a long queue never outlives its slot. Release removes one; the slot is
 *     freed with the last.
 *   - `running`: ZSET of `[owner, sid]`, the sessions holding a slot; `running:<o>`: the owner's,
 *     members = session ids. Score = when the session's last member lapses.
 * The reaper frees a dead worker's sessions' slots with releaseSession.
 */
import { ApiError } from '../api-error.js';
import { sessionMember } from './cluster-registry.js';
import type { RedisConnection } from './redis-connection.js';
import { runScript } from './run-script.js';

/** The session caps (ServerConfig's fields of the same names). */
export interface SessionCaps {
  maxSessions: number;
  maxSessionsPerTenant: number;
}

/** The sandbox caps (ServerConfig's fields of the same names). */
export interface RunCaps {
  maxRunning: number;
  maxRunningPerTenant: number;
}

/** RATE_LIMITED for a new session past a cap, as SessionManager words it. */
export function sessionCapError(which: 'total' | 'tenant', n: number): ApiError {
  if (which === 'total') return new ApiError('RATE_LIMITED', `the server has ${n} sessions, its maximum (SLUICE_MAX_SESSIONS); retry later`, { retryAfter: 5 });
  return new ApiError(
    'RATE_LIMITED',
    `this API key already has ${n} sessions, its maximum (SLUICE_MAX_SESSIONS_PER_TENANT); delete one (DELETE /api/sessions/{id}) or let one expire`,
    { retryAfter: 5 },
  );
}

/** RATE_LIMITED for a run that needs a slot past a cap, as SessionManager words it. */
export function runCapError(which: 'total' | 'tenant', n: number): ApiError {
  if (which === 'total') {
    return new ApiError('RATE_LIMITED', `the server is running ${n} sandboxes, its maximum (SLUICE_MAX_RUNNING); retry when one has finished`, { retryAfter: 1 });
  }
  return new ApiError(
    'RATE_LIMITED',
    `this API key already has ${n} sandboxes running, its maximum (SLUICE_MAX_RUNNING_PER_TENANT); wait for one to finish or cancel one`,
    { retryAfter: 1 },
  );
}

const NOW = `local function now() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end`;

/**
 * After the slot's members changed: the session's score in the indexes follows its last member,
 * or it leaves them with the last. KEYS: running, running:<o>, slot. ARGV: member, sid.
 */
const SETTLE = `
local function settle(t)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', t)
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('DEL', KEYS[3])
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[2])
    return 0
  end
  local until_ = tonumber(last[2])
  redis.call('ZADD', KEYS[1], until_, ARGV[1])
  redis.call('ZADD', KEYS[2], until_, ARGV[2])
  for i = 1, 3 do if redis.call('PTTL', KEYS[i]) < until_ - t then redis.call('PEXPIRE', KEYS[i], until_ - t) end end
  return redis.call('ZCARD', KEYS[3])
end
`;

/**
 * KEYS: running, running:<o>, slot. ARGV: member, sid, max total, max per owner (0 = none),
 * pending ms, execution id ('' = only check).
 * Returns {'ok', executions} | {'total', n} | {'tenant', n}.
 */
const ACQUIRE = `
${NOW}
${SETTLE}
local t = now()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', t)
local n = redis.call('ZCARD', KEYS[3])
if n == 0 or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  n = 0
  local total = redis.call('ZCARD', KEYS[1])
  if total >= tonumber(ARGV[3]) then return {'total', total} end
  local mine = redis.call('ZCARD', KEYS[2])
  if tonumber(ARGV[4]) > 0 and mine >= tonumber(ARGV[4]) then return {'tenant', mine} end
end
if ARGV[6] == '' then return {'ok', n} end
redis.call('ZADD', KEYS[3], t + tonumber(ARGV[5]), ARGV[6])
return {'ok', settle(t)}
`;

/**
 * KEYS: running, running:<o>, slot. ARGV: member, sid, execution id ('' = free the whole slot).
 * Returns the executions still counted (0: the slot is free).
 */
const RELEASE = `
${NOW}
${SETTLE}
if ARGV[3] == '' then redis.call('DEL', KEYS[3]) else redis.call('ZREM', KEYS[3], ARGV[3]) end
return settle(now())
`;

/** KEYS: running, running:<o>, slot. ARGV: member, sid, ttl ms, execution id. Renews it if still counted. */
const RENEW = `
${NOW}
${SETTLE}
local t = now()
redis.call('ZADD', KEYS[3], 'XX', t + tonumber(ARGV[3]), ARGV[4])
return settle(t)
`;

/** The caps of every node, counted in one Redis. */
export class Admission {
  /** How long an execution counts without renewal, ms. */
  readonly pendingMs: number;

  constructor(
    private readonly conn: RedisConnection,
    private readonly caps: RunCaps & SessionCaps,
    opts: {
      /** How long an execution counts unless its worker renews it, ms: longer than a run command's wait. 120 000. */
      pendingMs?: number;
    } = {},
  ) {
    this.pendingMs = opts.pendingMs ?? 120_000;
  }

  /** The session caps, for SessionRegistry.claim (which checks them atomically with the creation). */
  get sessionCaps(): SessionCaps {
    return { maxSessions: this.caps.maxSessions, maxSessionsPerTenant: this.caps.maxSessionsPerTenant };
  }

  /** Refuses early (RATE_LIMITED) a session that would not fit now; claim checks again, atomically. */
  async checkSession(owner: string | null): Promise<void> {
    const o = this.conn.ownerPart(owner);
    const r = (await this.conn.reader.multi().zcount(this.conn.key('sessions'), '(' + String(Date.now()), '+inf').zcount(this.conn.key(`sessions:${o}`), '(' + String(Date.now()), '+inf').exec()) ?? [];
    const total = Number(r[0]?.[1] ?? 0);
    const mine = Number(r[1]?.[1] ?? 0);
    if (total >= this.caps.maxSessions) throw sessionCapError('total', total);
    if (owner !== null && mine >= this.caps.maxSessionsPerTenant) throw sessionCapError('tenant', mine);
  }

  /**
   * Counts execution `executionID` of the session: free when the session holds a slot already,
   * else a new slot if one is free server-wide and for the owner, else RATE_LIMITED. It counts
   * for `pendingMs` unless renewed (renewRun); releaseRun ends it (once: a second is a no-op).
   */
  async acquireRun(owner: string | null, sessionID: string, executionID: string): Promise<void> {
    await this.slot(owner, sessionID, executionID);
  }

  /** Refuses early (RATE_LIMITED) a run that would need a slot none is free for; takes nothing. */
  async checkRun(owner: string | null, sessionID: string): Promise<void> {
    await this.slot(owner, sessionID, '');
  }

  /** The execution still runs or waits (its worker says so): it counts `pendingMs` more. */
  async renewRun(owner: string | null, sessionID: string, executionID: string): Promise<void> {
    const k = this.keys(owner, sessionID);
    await runScript(this.conn.writer, RENEW, [k.running, k.mine, k.slot], [sessionMember(owner, sessionID), sessionID, this.pendingMs, executionID]);
  }

  /** The execution ended (or never started): the session's slot is freed with its last. */
  async releaseRun(owner: string | null, sessionID: string, executionID: string): Promise<void> {
    await this.release(owner, sessionID, executionID);
  }

  /** Frees the session's slot whatever it counted (its worker died, or it was deleted). */
  async releaseSession(owner: string | null, sessionID: string): Promise<void> {
    await this.release(owner, sessionID, '');
  }

  /** Sessions holding a slot: in total, or the owner's. */
  async running(owner?: string | null): Promise<number> {
    const key = owner === undefined ? this.conn.key('running') : this.conn.key(`running:${this.conn.ownerPart(owner)}`);
    return this.conn.reader.zcount(key, `(${Date.now()}`, '+inf');
  }

  private async slot(owner: string | null, sessionID: string, executionID: string): Promise<void> {
    const k = this.keys(owner, sessionID);
    const r = await runScript(this.conn.writer, ACQUIRE, [k.running, k.mine, k.slot], [
      sessionMember(owner, sessionID), sessionID, this.caps.maxRunning, owner === null ? 0 : this.caps.maxRunningPerTenant, this.pendingMs, executionID,
    ]);
    if (!Array.isArray(r)) throw new Error(`unexpected admission reply ${JSON.stringify(r)}`);
    const [what, n] = r as unknown[];
    if (what === 'total' || what === 'tenant') throw runCapError(what, Number(n));
  }

  private async release(owner: string | null, sessionID: string, executionID: string): Promise<void> {
    const k = this.keys(owner, sessionID);
    await runScript(this.conn.writer, RELEASE, [k.running, k.mine, k.slot], [sessionMember(owner, sessionID), sessionID, executionID]);
  }

  private keys(owner: string | null, sessionID: string): { running: string; mine: string; slot: string } {
    const o = this.conn.ownerPart(owner);
    return { running: this.conn.key('running'), mine: this.conn.key(`running:${o}`), slot: this.conn.key(`slot:${o}:${sessionID}`) };
  }
}
